#pragma once

// ErrorResponse and NoticeResponse: a list of (field type, value) pairs ended by a zero byte
// (protocol docs, "Message Formats" and "Error and Notice Message Fields").

#include "wire/message.hpp"

#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace wire::be {

enum class FieldType : char {
    severity = 'S',              // localized: do not match on it
    severity_nonlocalized = 'V', // since PostgreSQL 9.6
    code = 'C',                  // SQLSTATE
    message = 'M',
    detail = 'D',
    hint = 'H',
    position = 'P',
    internal_position = 'p',
    internal_query = 'q',
    where = 'W',
    schema_name = 's',
    table_name = 't',
    column_name = 'c',
    data_type_name = 'd',
    constraint_name = 'n',
    file = 'F',
    line = 'L',
    routine = 'R',
};

// Frontends must silently ignore field types they do not recognize (the docs reserve the right
// to add more), so every non-zero type byte is accepted.
[[nodiscard]] constexpr bool is_valid(FieldType) noexcept {
    return true;
}

enum class Severity { error, fatal, panic, warning, notice, debug, info, log };

// The protocol spelling: "ERROR", "FATAL", ...
[[nodiscard]] std::string_view to_string(Severity s) noexcept;
[[nodiscard]] std::optional<Severity> severity_from_string(std::string_view s) noexcept;

struct NoticeField {
    FieldType type = FieldType::message;
    std::string_view value;

    static auto layout(auto& m) { return detail::layout(m.type, m.value); }
};

} // namespace wire::be

namespace wire::detail {

[[nodiscard]] std::optional<std::string_view> find_field(std::span<const be::NoticeField> fields,
                                                         be::FieldType type) noexcept;
[[nodiscard]] std::optional<be::Severity>
severity_of(std::span<const be::NoticeField> fields) noexcept;
[[nodiscard]] std::vector<be::NoticeField>
basic_fields(be::Severity severity, std::string_view code, std::string_view message);

} // namespace wire::detail

namespace wire::be {

// ErrorResponse and NoticeResponse differ only in their type byte.
template <char Type>
struct DiagnosticMessage {
    static constexpr char type = Type;
    std::vector<NoticeField> fields; // in the order sent; a type may repeat

    // Severity (both the S and V fields), SQLSTATE and message: what the docs say is always
    // present. The views must outlive the message.
    [[nodiscard]] static DiagnosticMessage make(Severity severity, std::string_view code,
                                                std::string_view message) {
        return {detail::basic_fields(severity, code, message)};
    }
    DiagnosticMessage& with(FieldType which, std::string_view value) {
        fields.push_back({which, value});
        return *this;
    }

    // The first field of that type.
    [[nodiscard]] std::optional<std::string_view> field(FieldType which) const noexcept {
        return detail::find_field(fields, which);
    }
    // From the V field, or from S for servers before 9.6 that send no V.
    [[nodiscard]] std::optional<Severity> severity() const noexcept {
        return detail::severity_of(fields);
    }
    [[nodiscard]] std::string_view code() const noexcept {
        return field(FieldType::code).value_or(std::string_view());
    }
    [[nodiscard]] std::string_view message() const noexcept {
        return field(FieldType::message).value_or(std::string_view());
    }

    static auto layout(auto& m) { return detail::layout(detail::Terminated{m.fields}); }
    [[nodiscard]] static Result<DiagnosticMessage> parse(const Frame& frame) {
        return detail::parse<DiagnosticMessage>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

using ErrorResponse = DiagnosticMessage<'E'>;
using NoticeResponse = DiagnosticMessage<'N'>;

} // namespace wire::be
