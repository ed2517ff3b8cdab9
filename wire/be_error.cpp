#include "wire/be_error.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace wire::be {
namespace {

using SeverityName = std::pair<Severity, std::string_view>;

constexpr std::array<SeverityName, 8> severity_names{{
    {Severity::error, "ERROR"},
    {Severity::fatal, "FATAL"},
    {Severity::panic, "PANIC"},
    {Severity::warning, "WARNING"},
    {Severity::notice, "NOTICE"},
    {Severity::debug, "DEBUG"},
    {Severity::info, "INFO"},
    {Severity::log, "LOG"},
}};

} // namespace

std::string_view to_string(Severity s) noexcept {
    const auto found = std::ranges::find(severity_names, s, &SeverityName::first);
    return found == severity_names.end() ? std::string_view() : found->second;
}

std::optional<Severity> severity_from_string(std::string_view s) noexcept {
    const auto found = std::ranges::find(severity_names, s, &SeverityName::second);
    if (found == severity_names.end()) {
        return std::nullopt;
    }
    return found->first;
}

} // namespace wire::be

namespace wire::detail {

std::optional<std::string_view> find_field(std::span<const be::NoticeField> fields,
                                           be::FieldType type) noexcept {
    const auto found = std::ranges::find(fields, type, &be::NoticeField::type);
    if (found == fields.end()) {
        return std::nullopt;
    }
    return found->value;
}

std::optional<be::Severity> severity_of(std::span<const be::NoticeField> fields) noexcept {
    auto text = find_field(fields, be::FieldType::severity_nonlocalized);
    if (!text) {
        text = find_field(fields, be::FieldType::severity);
    }
    return text ? be::severity_from_string(*text) : std::nullopt;
}

std::vector<be::NoticeField> basic_fields(be::Severity severity, std::string_view code,
                                          std::string_view message) {
    const auto name = be::to_string(severity);
    return {
        {be::FieldType::severity, name},
        {be::FieldType::severity_nonlocalized, name},
        {be::FieldType::code, code},
        {be::FieldType::message, message},
    };
}

} // namespace wire::detail
