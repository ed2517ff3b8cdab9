// Checking a client's password before it may use a pool, as PgBouncer does with auth_type
// (reference.md; PostgreSQL docs, "Password Authentication" and "SASL Authentication").
//
// Which exchange runs depends on auth_type and on the form of the stored secret, as in
// PgBouncer:
// - trust: none; the user only has to be known (a secret exists for it).
// - plain: AuthenticationCleartextPassword; the password is checked against a plain, md5 or
//   SCRAM secret.
// - md5: AuthenticationMD5Password with a random salt against a plain or md5 secret; a SCRAM
//   secret gets a SCRAM-SHA-256 exchange instead (an md5 answer cannot be checked against it).
// - scram-sha-256: SCRAM-SHA-256 against a plain or SCRAM secret; an md5 secret cannot be used.
// - cert: the verified TLS client certificate's CommonName must equal the user; no password.
// hba is no exchange of its own: the session first turns it into one of the methods above with
// the auth_hba_file (hba.hpp).
#pragma once

#include "proxy/asio.hpp"
#include "proxy/config.hpp"
#include "proxy/server_login.hpp"
#include "proxy/stream.hpp"
#include "wire/framer.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace proxy {

// What a successful login leaves behind for the server side: a server that stores a SCRAM
// verifier can be logged in to with what the client revealed.
struct ClientAuthenticated {
    // The cleartext password the client sent and we verified (plain, or md5/scram with a plain
    // secret gives nothing new), when there was one.
    std::optional<std::string> password;
    // From a SCRAM exchange against a SCRAM verifier.
    std::optional<ScramKeys> scram_keys;
};

// Why the login failed. The client has already been sent its ErrorResponse, unless it is gone.
struct ClientAuthError {
    std::string reason;   // for the log line ("password authentication failed", "client gone")
    bool refused = false; // the credentials were wrong, not the connection: an auth failure
};

using ClientAuthResult = boost::system::result<ClientAuthenticated, ClientAuthError>;

// A secret for a user we do not know, so that it goes through the same exchange as a known user
// and fails it: a random password, or under scram-sha-256 a verifier of a random password with
// the stable salt a known user's exchange shows too. Nothing about the answer tells whether the
// user exists.
[[nodiscard]] std::string decoy_secret(AuthType auth_type, std::string_view user);

// Runs the exchange `auth_type` calls for with the client on `socket`, reading its replies
// through `framer` (typed phase), and ends with AuthenticationOk on success. On failure it sends
// the client a FATAL ErrorResponse as PostgreSQL does (28P01 `password authentication failed for
// user "alice"`; 08P01 for a reply that is not valid protocol; 28000 for a method this issue does
// not support) unless the client is gone. `secret` is the user's stored secret (find_secret).
// No timeout of its own: the caller bounds the login with client_login_timeout.
[[nodiscard]] asio::awaitable<ClientAuthResult>
authenticate_client(ClientStream& socket, wire::Framer& framer, AuthType auth_type,
                    std::string_view user, std::string_view secret);

} // namespace proxy
