// The start of a client connection as pgmarina reads it (proxy/client_startup.cpp): the input is
// what a client sends before authentication, cut into startup packets by the Framer, each
// classified by parse_startup_packet; SSLRequest and GSSENCRequest are answered 'N' and reading
// goes on, a CancelRequest ends the connection, and a StartupMessage is decided on by
// decide_startup against a configuration with two databases.
//
// Checked: nothing crashes; an accepted startup names a user and a database the configuration
// knows (or an admin database), and keeps only tracked parameters; a refusal carries one of the
// SQLSTATEs PostgreSQL uses for it and a non-empty message.

#include "proxy/config.hpp"
#include "proxy/startup_request.hpp"
#include "wire/fe_startup.hpp"
#include "wire/framer.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <variant>

namespace {

void require(bool condition) {
    if (!condition) {
        std::abort();
    }
}

const proxy::Config& fuzz_config() {
    static const proxy::Config config = [] {
        proxy::Config c;
        c.settings.ignore_startup_parameters = {"extra_float_digits", "search_path"};
        proxy::DatabaseConfig app;
        app.hosts = {proxy::Endpoint{"127.0.0.1", 5432}};
        c.databases.emplace("app", app);
        c.databases.emplace("Mixed Case", app);
        return c;
    }();
    return config;
}

void check_decision(const wire::fe::StartupMessage& startup) {
    const proxy::Config& config = fuzz_config();
    auto decision = proxy::decide_startup(startup, config);
    if (const auto* accepted = std::get_if<proxy::AcceptedStartup>(&decision)) {
        require(!accepted->user.empty());
        require(config.databases.contains(accepted->database) ||
                proxy::is_admin_database(config, accepted->database));
        require(accepted->negotiate ==
                (startup.version.minor > 0 || !accepted->unrecognized_options.empty()));
        return;
    }
    const auto& refused = std::get<proxy::StartupRefused>(decision);
    require(refused.sqlstate == "08P01" || refused.sqlstate == "28000" ||
            refused.sqlstate == "3D000");
    require(!refused.reason.empty());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    wire::Framer framer(wire::Phase::startup);
    framer.feed(std::as_bytes(std::span(data, size)));
    // A client gets at most this many 'N' answers before the proxy stops reading (it reads on
    // until a packet decides, so the loop is bounded by the input's size anyway).
    for (;;) {
        auto frame = framer.next();
        if (!frame || !*frame) return 0; // framing error (refused 08P01) or need more
        auto packet = wire::fe::parse_startup_packet(**frame);
        if (!packet) return 0; // refused 08P01 / 0A000
        if (std::holds_alternative<wire::fe::SSLRequest>(*packet) ||
            std::holds_alternative<wire::fe::GSSENCRequest>(*packet)) {
            continue;
        }
        if (const auto* cancel = std::get_if<wire::fe::CancelRequest>(&*packet)) {
            require(cancel->secret_key.size() >= 4 && cancel->secret_key.size() <= 256);
            return 0;
        }
        check_decision(std::get<wire::fe::StartupMessage>(*packet));
        return 0;
    }
}
