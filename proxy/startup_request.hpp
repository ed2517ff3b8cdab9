// The decision on a client's StartupMessage, as pure code: no socket, no TLS, no config file.
// proxy/client_startup.cpp reads the packets and sends the refusals; this file decides what a
// StartupMessage means (tests/fuzz/fuzz_startup.cpp drives it with arbitrary packets).
#pragma once

#include "proxy/config.hpp"
#include "proxy/parameter_sync.hpp"
#include "wire/fe_startup.hpp"

#include <string>
#include <variant>
#include <vector>

namespace proxy {

// A StartupMessage we accept.
struct AcceptedStartup {
    std::string user;
    std::string database; // a key of Config::databases, or an admin database
    ParameterSet parameters;
    std::string application_name;
    // Set when the client asked for a newer 3.x minor version or sent `_pq_.` options: the
    // caller answers with NegotiateProtocolVersion, once, before authentication.
    bool negotiate = false;
    std::vector<std::string> unrecognized_options;
};

// A StartupMessage we refuse: the FATAL ErrorResponse's SQLSTATE and message, which is also the
// reason logged.
struct StartupRefused {
    std::string sqlstate;
    std::string reason;
};

// Accepts a StartupMessage that names a user, a configured (or admin) database and only
// parameters we can honour or that ignore_startup_parameters lists (as PgBouncer); refuses it
// with the error PostgreSQL or PgBouncer would send otherwise.
[[nodiscard]] std::variant<AcceptedStartup, StartupRefused>
decide_startup(const wire::fe::StartupMessage& startup, const Config& config);

} // namespace proxy
