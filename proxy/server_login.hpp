// Logging in to PostgreSQL as one of a pool's server connections (protocol docs, "Start-up"):
// the StartupMessage, whichever authentication the server asks for (SCRAM-SHA-256, md5,
// cleartext), then the ParameterStatus reports and BackendKeyData up to the first
// ReadyForQuery. PostgreSQL 15 asks for SCRAM by default.
#pragma once

#include "proxy/asio.hpp"
#include "proxy/stream.hpp"
#include "wire/framer.hpp"
#include "wire/scram.hpp"

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace proxy {

// SCRAM keys recovered from a client's SCRAM login (wire::scram::ServerExchange::client_key()
// and the verifier's server_key): enough to log in to a server that stores the same verifier,
// without the password (PgBouncer's SCRAM pass-through).
struct ScramKeys {
    wire::scram::Key client_key{};
    wire::scram::Key server_key{};
};

// Who a server connection logs in as, and with what.
struct ServerCredentials {
    std::string user;
    std::string database; // the dbname on the server
    // The secret as the configuration holds it: a plain password, an md5 secret ("md5" + 32
    // hex digits) or a SCRAM verifier ("SCRAM-SHA-256$..."); std::nullopt when none is known,
    // which only works against a server that trusts the user.
    std::optional<std::string> secret;
    // Used when `secret` is a SCRAM verifier, which cannot answer a challenge by itself.
    std::optional<ScramKeys> scram_keys;
};

struct ServerParameter {
    std::string name;
    std::string value;

    friend bool operator==(const ServerParameter&, const ServerParameter&) = default;
};

// What PostgreSQL told a connection that logged in.
struct ServerWelcome {
    std::vector<ServerParameter> parameters; // every ParameterStatus, in the order received
    std::int32_t process_id = 0;             // from BackendKeyData: what a CancelRequest names
    std::vector<std::byte> secret_key;
};

// Why a login failed, worded for the client that waited for it.
struct ServerLoginError {
    // The server's own SQLSTATE when it sent an ErrorResponse (28P01 wrong password, 3D000 no
    // such database, 53300 too many connections, ...); otherwise 08006 for a lost connection,
    // 08P01 for a message that is not valid protocol, 28000 for an authentication method or a
    // secret we cannot answer with.
    std::string sqlstate;
    std::string message;
};

using ServerLoginResult = boost::system::result<ServerWelcome, ServerLoginError>;

// Runs the login on a connected `socket` (TLS already negotiated, if any), reading through `framer`
// (typed phase). Returns once the first ReadyForQuery arrived; any bytes after it stay in `framer`.
// Never throws on what the server sends. No timeout of its own: the caller bounds the whole login
// with server_connect_timeout.
[[nodiscard]] asio::awaitable<ServerLoginResult>
log_in_server(ServerStream& socket, wire::Framer& framer, const ServerCredentials& credentials);

} // namespace proxy
