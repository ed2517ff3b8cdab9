// The start of a client connection, up to an accepted StartupMessage (protocol docs,
// "Start-up"): TLS, started by an SSLRequest or directly by a TLS ClientHello (PostgreSQL 17's
// sslnegotiation=direct) when client_tls_sslmode allows it, and required before the
// StartupMessage from `require` up; GSSENCRequest is refused with 'N'. A CancelRequest is handed
// back to the caller, protocol 2 and malformed packets are refused, and the StartupMessage must
// name a user, a configured database and only parameters we can honour (or that
// ignore_startup_parameters lists, as in PgBouncer).
#pragma once

#include "proxy/asio.hpp"
#include "proxy/cancel_registry.hpp"
#include "proxy/config.hpp"
#include "proxy/startup_request.hpp"
#include "proxy/stream.hpp"
#include "proxy/tls_context.hpp"
#include "wire/framer.hpp"

#include <string>
#include <variant>
#include <vector>

namespace proxy {

// The connection was opened to cancel a query.
struct CancelRequested {
    CancelKey key;
};

// The connection is over: the client left, or was sent an ErrorResponse (logged with its
// `reason`).
struct StartupEnded {
    std::string reason;
};

using StartupOutcome = std::variant<AcceptedStartup, CancelRequested, StartupEnded>;

// Reads startup-phase packets from `socket` through `framer` (startup phase) until one decides
// the connection's purpose; on AcceptedStartup the framer is switched to the typed phase. No
// timeout of its own: the caller bounds it with client_login_timeout.
[[nodiscard]] asio::awaitable<StartupOutcome> read_startup(ClientStream& socket,
                                                           wire::Framer& framer,
                                                           const Config& config,
                                                           const TlsContexts& tls);

// A FATAL ErrorResponse, as PostgreSQL ends a session it refuses.
[[nodiscard]] std::vector<std::byte> fatal_error(std::string_view sqlstate,
                                                 std::string_view message);

} // namespace proxy
