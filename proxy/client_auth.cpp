#include "proxy/client_auth.hpp"

#include "proxy/auth_file.hpp"
#include "proxy/stream_io.hpp"
#include "wire/be_auth.hpp"
#include "wire/be_error.hpp"
#include "wire/fe_auth.hpp"
#include "wire/md5.hpp"
#include "wire/scram.hpp"
#include "wire/writer.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

namespace proxy {
namespace {

// SQLSTATEs as PostgreSQL uses them during authentication (errcodes.txt).
constexpr std::string_view invalid_password = "28P01";
constexpr std::string_view protocol_violation = "08P01";
constexpr std::string_view invalid_authorization = "28000";

// Why an exchange stopped: what the client is told, or nothing when it is gone. It has
// constructors rather than being an aggregate so that Step<std::string> can tell a value from an
// error: C++20 would build an aggregate Refusal from a lone std::string.
struct Refusal {
    Refusal() = default;
    Refusal(std::string_view code, std::string text, std::string more = {})
        : sqlstate(code), message(std::move(text)), detail(std::move(more)) {}

    std::string sqlstate; // empty: the client closed or the socket failed
    std::string message;
    std::string detail; // sent as the D field when not empty
};

template <class T>
using Step = boost::system::result<T, Refusal>;

// A SCRAM salt for `user` that stays the same for the life of the process and that nobody can
// predict: HMAC-SHA-256 of the name under a key drawn at startup (PostgreSQL's mock salt works
// the same way). Users without a stored verifier get it, so that no one can tell them from
// users with one by asking twice.
std::vector<std::byte> stable_salt(std::string_view user) {
    static const std::array<unsigned char, 32> key = [] {
        std::array<unsigned char, 32> drawn{};
        if (RAND_bytes(drawn.data(), static_cast<int>(drawn.size())) != 1) {
            throw std::runtime_error("no randomness for the SCRAM salt key");
        }
        return drawn;
    }();
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(user.data()), user.size(), digest.data(), &length);
    constexpr std::size_t salt_size = 16; // PostgreSQL's SCRAM_DEFAULT_SALT_LEN
    std::vector<std::byte> salt(salt_size);
    std::memcpy(salt.data(), digest.data(), salt_size);
    return salt;
}

// The client of one login and the state its messages are read through.
struct Login {
    ClientStream& socket;
    wire::Framer& framer;
    std::string_view user;
};

Refusal client_gone() {
    return {{}, "client gone"};
}

Refusal wrong_password(const Login& login) {
    return {invalid_password,
            "password authentication failed for user \"" + std::string(login.user) + "\""};
}

template <class Message>
asio::awaitable<Step<void>> send(Login& login, const Message& message) {
    wire::Writer writer;
    message.encode(writer);
    if (!co_await write_all(login.socket, writer.bytes())) co_return client_gone();
    co_return Step<void>{};
}

// The client's answer to an Authentication request: always a 'p' message, whose meaning depends
// on the request (protocol docs, "Message Formats"). `what` names the expected answer as
// PostgreSQL's recv_password_packet() and CheckSASLAuth() do in their error messages.
asio::awaitable<Step<wire::Frame>> read_answer(Login& login, std::string_view what) {
    auto frame = co_await read_frame(login.socket, login.framer);
    if (!frame) co_return Refusal{protocol_violation, "invalid message length"};
    if (!*frame) co_return client_gone();
    if ((*frame)->type != wire::fe::PasswordMessage::type) {
        co_return Refusal{protocol_violation,
                          "expected " + std::string(what) + " response, got message type " +
                              std::to_string(static_cast<unsigned char>((*frame)->type))};
    }
    co_return **frame;
}

// Equal length and equal bytes, the bytes compared in constant time. The length of a plain
// secret is not hidden: PgBouncer compares with strcmp(), which leaks more.
bool same_bytes(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool same_key(const wire::scram::Key& a, const wire::scram::Key& b) {
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view as_text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// A cleartext password against any form of stored secret. Empty passwords never match, on either
// side, as in PgBouncer's check_client_passwd() (and PostgreSQL refuses to store one).
bool password_matches(std::string_view password, std::string_view user, std::string_view secret) {
    if (password.empty() || secret.empty()) return false;
    switch (classify_secret(secret)) {
    case SecretKind::plain:
        return same_bytes(password, secret);
    case SecretKind::md5:
        return same_bytes(wire::md5::stored_secret(password, user), secret);
    case SecretKind::scram_sha_256: {
        // What PostgreSQL's scram_verify_plain_password() does: derive the keys from the
        // password with the stored salt and iteration count, and compare both.
        const auto verifier = wire::scram::parse_verifier(secret);
        if (!verifier) return false;
        const auto candidate =
            wire::scram::make_verifier(password, verifier->salt, verifier->iterations);
        return same_key(candidate.stored_key, verifier->stored_key) &&
               same_key(candidate.server_key, verifier->server_key);
    }
    }
    return false;
}

Refusal invalid_password_packet() {
    // PostgreSQL's recv_password_packet(): a PasswordMessage is one String filling the message.
    return {protocol_violation, "invalid password packet size"};
}

// AuthenticationCleartextPassword: the one exchange that reveals the password itself, which is
// kept so that servers can be logged in to with it.
asio::awaitable<Step<ClientAuthenticated>> check_plain(Login& login, std::string_view secret) {
    if (auto sent = co_await send(login, wire::be::AuthenticationCleartextPassword{}); !sent) {
        co_return sent.error();
    }
    const auto frame = co_await read_answer(login, "password");
    if (!frame) co_return frame.error();
    const auto answer = wire::fe::PasswordMessage::parse(*frame);
    if (!answer) co_return invalid_password_packet();
    if (!password_matches(answer->password, login.user, secret)) {
        co_return wrong_password(login);
    }
    co_return ClientAuthenticated{std::string(answer->password), std::nullopt};
}

// AuthenticationMD5Password with a fresh salt per login, so a recorded answer cannot be
// replayed. A plain secret is hashed on the spot; an md5 secret answers the salt by itself.
asio::awaitable<Step<ClientAuthenticated>> check_md5(Login& login, std::string_view secret) {
    wire::be::AuthenticationMD5Password request;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(request.salt.data()),
                   static_cast<int>(request.salt.size())) != 1) {
        throw std::runtime_error("client_auth: RAND_bytes failed");
    }
    if (auto sent = co_await send(login, request); !sent) co_return sent.error();
    const auto frame = co_await read_answer(login, "password");
    if (!frame) co_return frame.error();
    const auto answer = wire::fe::PasswordMessage::parse(*frame);
    if (!answer) co_return invalid_password_packet();

    std::string expected;
    if (classify_secret(secret) == SecretKind::md5) {
        expected = wire::md5::salted_response(secret, request.salt).value();
    } else if (!secret.empty()) {
        expected = wire::md5::salted_response(secret, login.user, request.salt);
    }
    if (expected.empty() || !same_bytes(answer->password, expected)) {
        co_return wrong_password(login);
    }
    co_return ClientAuthenticated{};
}

// A SCRAM message the exchange refused. A wrong proof is a wrong password; anything else is a
// client that does not follow RFC 5802, which PostgreSQL reports as "malformed SCRAM message".
Refusal scram_refusal(const Login& login, const boost::system::error_code& ec) {
    if (ec == wire::errc::scram_proof_mismatch) return wrong_password(login);
    return {protocol_violation, "malformed SCRAM message", ec.message()};
}

Refusal invalid_message_format() {
    // What PostgreSQL's pq_getmsg*() report for a message whose fields do not fit its length.
    return {protocol_violation, "invalid message format"};
}

// A SASLResponse's data: a SCRAM client-first-message or client-final-message.
asio::awaitable<Step<std::string>> read_sasl_response(Login& login) {
    const auto frame = co_await read_answer(login, "SASL");
    if (!frame) co_return frame.error();
    const auto response = wire::fe::SASLResponse::parse(*frame);
    if (!response) co_return invalid_message_format();
    co_return std::string(as_text(response->data));
}

// The SASLInitialResponse answering AuthenticationSASL: the chosen mechanism, and normally the
// client-first-message with it.
asio::awaitable<Step<std::string>> read_client_first(Login& login) {
    const auto frame = co_await read_answer(login, "SASL");
    if (!frame) co_return frame.error();
    const auto initial = wire::fe::SASLInitialResponse::parse(*frame);
    if (!initial) co_return invalid_message_format();
    if (initial->mechanism != wire::scram::mechanism) {
        co_return Refusal{protocol_violation,
                          "client selected an invalid SASL authentication mechanism"};
    }
    if (initial->data) co_return std::string(as_text(*initial->data));
    // No initial response (length -1): the server then sends an empty AuthenticationSASLContinue
    // and the client-first-message comes in a SASLResponse (docs, "SASL Authentication").
    if (auto sent = co_await send(login, wire::be::AuthenticationSASLContinue{}); !sent) {
        co_return sent.error();
    }
    co_return co_await read_sasl_response(login);
}

// The exchange that checks `user` against `secret`, a plain password or a SCRAM verifier.
// std::nullopt for a secret that can check no password: an empty one (as for plain and md5), or a
// verifier that classify_secret() accepts but parse_verifier() refuses (an iteration count of 0
// or above INT32_MAX). A plain password gets the user's stable salt, so that it shows the same
// salt on every attempt, as a stored verifier (and a decoy) does.
std::optional<wire::scram::ServerExchange> make_exchange(std::string_view user,
                                                         std::string_view secret) {
    if (secret.empty()) return std::nullopt;
    if (classify_secret(secret) != SecretKind::scram_sha_256) {
        return wire::scram::ServerExchange(wire::scram::make_verifier(secret, stable_salt(user)));
    }
    auto verifier = wire::scram::parse_verifier(secret);
    if (!verifier) return std::nullopt;
    return wire::scram::ServerExchange(std::move(*verifier));
}

// The SCRAM messages after AuthenticationSASL (PostgreSQL docs, "SASL Authentication"): the
// client-first-message, AuthenticationSASLContinue with server-first-message, the
// client-final-message, AuthenticationSASLFinal with server-final-message.
asio::awaitable<Step<void>> run_scram(Login& login, wire::scram::ServerExchange& exchange) {
    const auto client_first = co_await read_client_first(login);
    if (!client_first) co_return client_first.error();
    const auto server_first = exchange.handle_client_first(*client_first);
    if (!server_first) co_return scram_refusal(login, server_first.error());

    const wire::be::AuthenticationSASLContinue challenge{wire::as_bytes(*server_first)};
    if (auto sent = co_await send(login, challenge); !sent) co_return sent.error();
    const auto client_final = co_await read_sasl_response(login);
    if (!client_final) co_return client_final.error();
    const auto server_final = exchange.handle_client_final(*client_final);
    if (!server_final) co_return scram_refusal(login, server_final.error());

    const wire::be::AuthenticationSASLFinal outcome{wire::as_bytes(*server_final)};
    co_return co_await send(login, outcome);
}

// SCRAM-SHA-256, offered as the only SASL mechanism. The keys are kept only when the secret is a
// verifier: with a plain secret the proxy has the password itself.
asio::awaitable<Step<ClientAuthenticated>> check_scram(Login& login, std::string_view secret) {
    auto exchange = make_exchange(login.user, secret);
    if (!exchange) co_return wrong_password(login);
    const wire::be::AuthenticationSASL request{{wire::scram::mechanism}};
    if (auto sent = co_await send(login, request); !sent) co_return sent.error();
    if (auto done = co_await run_scram(login, *exchange); !done) co_return done.error();

    ClientAuthenticated authenticated;
    if (classify_secret(secret) == SecretKind::scram_sha_256) {
        authenticated.scram_keys =
            ScramKeys{*exchange->client_key(), exchange->verifier().server_key};
    }
    co_return authenticated;
}

// cert: the client's verified TLS certificate names the user in its CommonName, as PostgreSQL's
// cert method with the default map. No password is asked for.
Step<ClientAuthenticated> check_certificate(const Login& login) {
    const TlsEngine* tls = login.socket.tls();
    const auto name = tls != nullptr ? tls->peer_common_name() : std::nullopt;
    if (name == login.user) return ClientAuthenticated{};
    return Refusal{invalid_authorization,
                   "certificate authentication failed for user \"" + std::string(login.user) + "\"",
                   tls == nullptr ? "The connection is not encrypted."
                   : name         ? "The certificate's common name does not match the user name."
                                  : "No verified client certificate was presented."};
}

// Which exchange `auth_type` and the secret's form call for (client_auth.hpp).
asio::awaitable<Step<ClientAuthenticated>> run_exchange(Login& login, AuthType auth_type,
                                                        std::string_view secret) {
    const SecretKind kind = classify_secret(secret);
    switch (auth_type) {
    case AuthType::trust:
        co_return ClientAuthenticated{};
    case AuthType::plain:
        co_return co_await check_plain(login, secret);
    case AuthType::md5:
        if (kind == SecretKind::scram_sha_256) co_return co_await check_scram(login, secret);
        co_return co_await check_md5(login, secret);
    case AuthType::scram_sha_256:
        if (kind == SecretKind::md5) {
            co_return Refusal{invalid_authorization,
                              "SCRAM-SHA-256 authentication is not possible for user \"" +
                                  std::string(login.user) + "\": its stored secret is an md5 hash"};
        }
        co_return co_await check_scram(login, secret);
    case AuthType::cert:
        co_return check_certificate(login);
    case AuthType::hba:
        break; // the caller resolves hba to the method of the matching line
    }
    co_return Refusal{invalid_authorization, "authentication method \"" +
                                                 std::string(to_string(auth_type)) +
                                                 "\" is not supported"};
}

} // namespace

std::string decoy_secret(AuthType auth_type, std::string_view user) {
    std::array<unsigned char, 24> random{};
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
        throw std::runtime_error("no randomness for a decoy secret");
    }
    std::string password;
    for (unsigned char c : random)
        password += static_cast<char>('a' + c % 26);
    if (auth_type != AuthType::scram_sha_256) return password;
    return wire::scram::make_verifier(password, stable_salt(user)).to_string();
}

asio::awaitable<ClientAuthResult> authenticate_client(ClientStream& socket, wire::Framer& framer,
                                                      AuthType auth_type, std::string_view user,
                                                      std::string_view secret) {
    Login login{socket, framer, user};
    auto outcome = co_await run_exchange(login, auth_type, secret);
    if (outcome) {
        if (auto sent = co_await send(login, wire::be::AuthenticationOk{}); !sent) {
            co_return ClientAuthError{sent.error().message};
        }
        co_return std::move(*outcome);
    }
    const Refusal refusal = outcome.error();
    if (!refusal.sqlstate.empty()) {
        auto error = wire::be::ErrorResponse::make(wire::be::Severity::fatal, refusal.sqlstate,
                                                   refusal.message);
        if (!refusal.detail.empty()) error.with(wire::be::FieldType::detail, refusal.detail);
        // The client may already be gone; the login failed either way.
        (void)co_await send(login, error);
    }
    co_return ClientAuthError{refusal.message, !refusal.sqlstate.empty()};
}

} // namespace proxy
