#pragma once

// Backend replies to the simple and extended query protocols and to FunctionCall (protocol
// docs, "Simple Query", "Extended Query", "Function Call").

#include "wire/message.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace wire::be {

struct ParseComplete : detail::Bodiless<ParseComplete> {
    static constexpr char type = '1';
};

struct BindComplete : detail::Bodiless<BindComplete> {
    static constexpr char type = '2';
};

struct CloseComplete : detail::Bodiless<CloseComplete> {
    static constexpr char type = '3';
};

// Describe of a statement or portal that returns no rows.
struct NoData : detail::Bodiless<NoData> {
    static constexpr char type = 'n';
};

// Replaces CommandComplete when the query string was empty.
struct EmptyQueryResponse : detail::Bodiless<EmptyQueryResponse> {
    static constexpr char type = 'I';
};

// Execute stopped at its row limit; the portal can be executed again for more.
struct PortalSuspended : detail::Bodiless<PortalSuspended> {
    static constexpr char type = 's';
};

struct CommandComplete {
    static constexpr char type = 'C';
    std::string_view tag; // e.g. "SELECT 5", "INSERT 0 1", "DISCARD ALL"

    static auto layout(auto& m) { return detail::layout(m.tag); }
    [[nodiscard]] static Result<CommandComplete> parse(const Frame& frame) {
        return detail::parse<CommandComplete>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

struct ParameterDescription {
    static constexpr char type = 't';
    std::vector<std::uint32_t> parameter_types; // type OIDs

    static auto layout(auto& m) { return detail::layout(m.parameter_types); }
    [[nodiscard]] static Result<ParameterDescription> parse(const Frame& frame) {
        return detail::parse<ParameterDescription>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

inline constexpr std::uint32_t text_oid = 25; // pg_type.dat

struct RowDescription {
    struct Field {
        std::string_view name;
        std::uint32_t table_oid = 0;       // 0 when the column is not a table column
        std::int16_t column_attribute = 0; // 0 when the column is not a table column
        std::uint32_t type_oid = 0;
        std::int16_t type_size = 0;           // pg_type.typlen; negative: variable width
        std::int32_t type_modifier = -1;      // pg_attribute.atttypmod; -1: none
        FormatCode format = FormatCode::text; // always text in a Describe reply (not known yet)

        // A computed text column, as psql and PgBouncer's console show them.
        [[nodiscard]] static constexpr Field text(std::string_view column) noexcept {
            return {column, 0, 0, text_oid, -1, -1, FormatCode::text};
        }

        static auto layout(auto& m) {
            return detail::layout(m.name, m.table_oid, m.column_attribute, m.type_oid, m.type_size,
                                  m.type_modifier, m.format);
        }
    };

    static constexpr char type = 'T';
    std::vector<Field> fields;

    [[nodiscard]] static RowDescription text_columns(std::span<const std::string_view> names);

    static auto layout(auto& m) { return detail::layout(m.fields); }
    [[nodiscard]] static Result<RowDescription> parse(const Frame& frame) {
        return detail::parse<RowDescription>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

struct DataRow {
    static constexpr char type = 'D';
    std::vector<Value> values; // one per column, in RowDescription order

    // A row of text values (std::nullopt: NULL) to go with RowDescription::text_columns.
    [[nodiscard]] static DataRow text(std::span<const std::optional<std::string_view>> values);

    static auto layout(auto& m) { return detail::layout(m.values); }
    [[nodiscard]] static Result<DataRow> parse(const Frame& frame) {
        return detail::parse<DataRow>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

struct FunctionCallResponse {
    static constexpr char type = 'V';
    Value result;

    static auto layout(auto& m) { return detail::layout(m.result); }
    [[nodiscard]] static Result<FunctionCallResponse> parse(const Frame& frame) {
        return detail::parse<FunctionCallResponse>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

} // namespace wire::be
