#include "proxy/startup_request.hpp"

#include <algorithm>
#include <cctype>

namespace proxy {
namespace {

constexpr std::string_view protocol_option_prefix = "_pq_.";

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    return std::ranges::equal(
        a, b, [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

bool ignored(const Config& config, std::string_view name) {
    return std::ranges::any_of(
        config.settings.ignore_startup_parameters,
        [name](const std::string& i) { return equal_ignoring_case(i, name); });
}

} // namespace

std::variant<AcceptedStartup, StartupRefused>
decide_startup(const wire::fe::StartupMessage& startup, const Config& config) {
    AcceptedStartup accepted;
    accepted.user = std::string(startup.parameter("user").value_or(""));
    accepted.database = std::string(startup.parameter("database").value_or(""));
    if (accepted.database.empty()) accepted.database = accepted.user; // libpq's rule
    accepted.application_name = std::string(startup.parameter("application_name").value_or(""));
    accepted.negotiate = startup.version.minor > 0;

    // `_pq_.` options are protocol extensions, answered by NegotiateProtocolVersion rather than
    // refused (reference.md 2.1); everything else must be a parameter we keep in step.
    wire::fe::StartupMessage settings = startup;
    std::erase_if(settings.parameters, [&accepted](const wire::fe::Parameter& p) {
        if (!p.name.starts_with(protocol_option_prefix)) return false;
        accepted.unrecognized_options.emplace_back(p.name);
        accepted.negotiate = true;
        return true;
    });
    for (const auto& name : learn_startup(accepted.parameters, settings)) {
        if (!ignored(config, name)) {
            return StartupRefused{"08P01", "unsupported startup parameter: " + name};
        }
    }
    if (accepted.user.empty()) {
        return StartupRefused{"28000", "no PostgreSQL user name specified in startup packet"};
    }
    if (!config.databases.contains(accepted.database) &&
        !is_admin_database(config, accepted.database)) {
        return StartupRefused{"3D000", "no such database: " + accepted.database};
    }
    return accepted;
}

} // namespace proxy
