// The admin console's command parser (proxy/admin_command.cpp) on arbitrary query text, as a
// client's Query message brings it. Checked: nothing crashes, a refusal is a syntax error
// (42601) with a message, and a parsed command is stable: its argument is what the grammar
// allows (a SHOW subject in upper case, a SET name in lower case).

#include "proxy/admin_command.hpp"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

namespace {

void require(bool condition) {
    if (!condition) {
        std::abort();
    }
}

bool has_lower(std::string_view s) {
    return std::ranges::any_of(s, [](unsigned char c) { return c >= 'a' && c <= 'z'; });
}

bool has_upper(std::string_view s) {
    return std::ranges::any_of(s, [](unsigned char c) { return c >= 'A' && c <= 'Z'; });
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view sql(reinterpret_cast<const char*>(data), size);
    auto parsed = proxy::parse_admin_command(sql);
    if (const auto* error = std::get_if<proxy::AdminError>(&parsed)) {
        require(error->sqlstate == "42601" && !error->message.empty());
        return 0;
    }
    if (const auto* command = std::get_if<proxy::AdminCommand>(&parsed)) {
        if (command->verb == proxy::AdminVerb::show) require(!has_lower(command->argument));
        if (command->verb == proxy::AdminVerb::set) require(!has_upper(command->argument));
    }
    return 0;
}
