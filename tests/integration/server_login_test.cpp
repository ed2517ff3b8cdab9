// proxy::log_in_server against a real PostgreSQL 15 (SCRAM, md5, cleartext password), and
// against scripted servers on a local acceptor for what PostgreSQL never sends: trust without a
// password, methods we do not support, broken or vanished servers, a wrong SCRAM signature.

#include "proxy/server_login.hpp"
#include "proxy/stream_io.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/wire_builders.hpp"
#include "wire/be_auth.hpp"
#include "wire/fe_auth.hpp"
#include "wire/fe_startup.hpp"
#include "wire/md5.hpp"
#include "wire/scram.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using proxy::ServerCredentials;
using proxy::ServerLoginResult;
using proxy::tcp;
using support::PgCluster;
using wire::test::Bytes;
using wire::test::cat;
using wire::test::i32;
using wire::test::msg;
using wire::test::str;
namespace asio = proxy::asio;
namespace pq = support::pq;
namespace scram = wire::scram;

struct Setup {
    PgCluster cluster{{.replicas = 0}};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

ServerCredentials credentials(std::string user, std::optional<std::string> secret,
                              std::string database = "app") {
    return {.user = std::move(user),
            .database = std::move(database),
            .secret = std::move(secret),
            .scram_keys = std::nullopt};
}

std::string query_value(const std::string& sql) {
    pq::Connection conn = pq::Connection::connect(setup().cluster.conninfo(0));
    REQUIRE_MESSAGE(conn.ok(), conn.error_message());
    const pq::Result result = conn.exec(sql);
    REQUIRE_MESSAGE(result.ok(), result.error_message());
    REQUIRE(result.ntuples() == 1);
    return result.value(0, 0);
}

std::string rolpassword(std::string_view user) {
    return query_value("SELECT rolpassword FROM pg_authid WHERE rolname = '" + std::string(user) +
                       "'");
}

Bytes authentication(std::int32_t code, const Bytes& data = {}) {
    return msg('R', cat({i32(code), data}));
}

Bytes parameter_status(std::string_view name, std::string_view value) {
    return msg('S', cat({str(name), str(value)}));
}

const Bytes authentication_ok = authentication(0);
const Bytes ready_for_query = msg('Z', "I");

// A socket and the login run over it on the test's own io_context; the socket stays open
// afterwards so that a test can look at the backend it reached.
struct Connection {
    asio::io_context io;
    proxy::ServerStream socket{tcp::socket{io}};
    wire::Framer framer{wire::Phase::typed};

    // Runs the login, and any scripted server spawned on `io`, to completion within 30 s, so
    // that a login that never ends fails the test instead of hanging it.
    ServerLoginResult log_in(const ServerCredentials& credentials) {
        std::optional<ServerLoginResult> result;
        asio::co_spawn(io, proxy::log_in_server(socket, framer, credentials),
                       [&result](std::exception_ptr error, ServerLoginResult outcome) {
                           if (error) std::rethrow_exception(error);
                           result = std::move(outcome);
                       });
        io.run_for(std::chrono::seconds(30));
        REQUIRE_MESSAGE(result.has_value(), "the login did not finish within 30 s");
        return std::move(*result);
    }
};

tcp::endpoint primary() {
    return {asio::ip::make_address(setup().cluster.host()),
            static_cast<unsigned short>(setup().cluster.port(0))};
}

ServerLoginResult log_in_to_postgres(const ServerCredentials& credentials) {
    Connection connection;
    connection.socket.socket().connect(primary());
    return connection.log_in(credentials);
}

void check_refused(const ServerLoginResult& result, std::string_view sqlstate,
                   std::string_view words) {
    REQUIRE(result.has_error());
    CHECK(result.error().sqlstate == sqlstate);
    CHECK_MESSAGE(result.error().message.find(words) != std::string::npos, result.error().message);
}

void rethrow(std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
}

// A pretend PostgreSQL: accepts one connection, keeps its StartupMessage in `startup`, sends
// `script` all at once and closes.
asio::awaitable<void> serve_script(tcp::acceptor& acceptor, Bytes script, Bytes& startup) {
    auto peer = co_await acceptor.async_accept(asio::use_awaitable);
    wire::Framer framer(wire::Phase::startup);
    const auto frame = co_await proxy::read_frame(peer, framer);
    if (frame && *frame) startup.assign((**frame).raw.begin(), (**frame).raw.end());
    co_await proxy::write_all(peer, script);
}

struct ScriptedLogin {
    ServerLoginResult result;
    Bytes startup;  // what the server received
    Bytes leftover; // what stayed in the framer after the login
};

ScriptedLogin log_in_to_script(const Bytes& script, const ServerCredentials& credentials) {
    Connection connection;
    tcp::acceptor acceptor(connection.io, {asio::ip::make_address("127.0.0.1"), 0});
    connection.socket.socket().connect(acceptor.local_endpoint());
    Bytes startup;
    asio::co_spawn(connection.io, serve_script(acceptor, script, startup), rethrow);
    ServerLoginResult result = connection.log_in(credentials);
    const auto leftover = connection.framer.buffered();
    return {std::move(result), startup, Bytes(leftover.begin(), leftover.end())};
}

std::string_view text_of(std::span<const std::byte> data) {
    return {reinterpret_cast<const char*>(data.data()), data.size()};
}

// Fails the test from inside a scripted server: the exception reaches it through the
// completion handler. (doctest's REQUIRE in a coroutine trips gcc's -Wmismatched-new-delete.)
void require(bool condition, std::string_view what) {
    if (!condition) throw std::runtime_error("scripted server: expected " + std::string(what));
}

// A pretend PostgreSQL that runs a SCRAM exchange with `verifier` as PostgreSQL would, up to
// and including the server-final-message.
asio::awaitable<void> serve_scram(tcp::acceptor& acceptor, scram::Verifier verifier) {
    auto peer = co_await acceptor.async_accept(asio::use_awaitable);
    wire::Framer framer(wire::Phase::startup);
    const auto startup = co_await proxy::read_frame(peer, framer);
    require(startup && *startup, "a StartupMessage");
    framer.set_phase(wire::Phase::typed);
    scram::ServerExchange exchange(std::move(verifier));
    wire::Writer out;
    wire::be::AuthenticationSASL{{scram::mechanism}}.encode(out);
    co_await proxy::write_all(peer, out.take());

    const auto initial_frame = co_await proxy::read_frame(peer, framer);
    require(initial_frame && *initial_frame, "SASLInitialResponse");
    const auto initial = wire::fe::SASLInitialResponse::parse(**initial_frame);
    require(initial && initial->data, "a valid SASLInitialResponse");
    const auto server_first = exchange.handle_client_first(text_of(*initial->data));
    require(server_first.has_value(), "a valid client-first-message");
    wire::be::AuthenticationSASLContinue{wire::as_bytes(*server_first)}.encode(out);
    co_await proxy::write_all(peer, out.take());

    const auto response_frame = co_await proxy::read_frame(peer, framer);
    require(response_frame && *response_frame, "SASLResponse");
    const auto response = wire::fe::SASLResponse::parse(**response_frame);
    require(response.has_value(), "a valid SASLResponse");
    const auto server_final = exchange.handle_client_final(text_of(response->data));
    require(server_final.has_value(), "a valid client proof");
    wire::be::AuthenticationSASLFinal{wire::as_bytes(*server_final)}.encode(out);
    // What PostgreSQL sends next, so that a login that accepted the signature would succeed.
    // (Appended rather than cat()ed: gcc rejects an initializer_list of vectors in a coroutine.)
    out.put_bytes(authentication_ok).put_bytes(ready_for_query);
    co_await proxy::write_all(peer, out.take());
}

} // namespace

TEST_SUITE("integration.server_login") {
    TEST_CASE("SCRAM user logs in with its password; the welcome names its backend") {
        Connection connection;
        connection.socket.socket().connect(primary());
        const ServerLoginResult result =
            connection.log_in(credentials("scram_user", "scram-secret"));
        REQUIRE_MESSAGE(result.has_value(), result.error().message);
        const proxy::ServerWelcome& welcome = *result;
        auto parameter = [&welcome](std::string_view name) {
            for (const proxy::ServerParameter& p : welcome.parameters) {
                if (p.name == name) return p.value;
            }
            return std::string("(missing)");
        };
        CHECK(parameter("server_version").starts_with("15."));
        CHECK(parameter("client_encoding") == "UTF8");
        CHECK(parameter("server_encoding") == "UTF8");
        CHECK(parameter("session_authorization") == "scram_user");
        CHECK(parameter("is_superuser") == "off");
        CHECK(welcome.parameters.size() >= 10);
        CHECK(welcome.process_id > 0);
        CHECK(welcome.secret_key.size() == 4);
        CHECK(connection.framer.buffered().empty());
        // The process id is the backend's: PostgreSQL knows it as scram_user's session on app.
        const std::string pid = std::to_string(welcome.process_id);
        CHECK(query_value("SELECT usename || '/' || datname FROM pg_stat_activity WHERE pid = " +
                          pid) == "scram_user/app");
    }

    TEST_CASE("md5 user logs in with its password and with its stored md5 secret") {
        const std::string secret = rolpassword("md5_user");
        REQUIRE(secret == wire::md5::stored_secret("md5-secret", "md5_user"));
        SUBCASE("password") {
            const auto result = log_in_to_postgres(credentials("md5_user", "md5-secret"));
            CHECK_MESSAGE(result.has_value(), result.error().message);
        }
        SUBCASE("stored secret") {
            const auto result = log_in_to_postgres(credentials("md5_user", secret));
            CHECK_MESSAGE(result.has_value(), result.error().message);
        }
        SUBCASE("a SCRAM verifier cannot answer md5") {
            const std::string verifier =
                scram::make_verifier("md5-secret", wire::test::raw("salt")).to_string();
            check_refused(log_in_to_postgres(credentials("md5_user", verifier)), "28000",
                          "cannot be computed from its SCRAM verifier");
        }
    }

    TEST_CASE("plain_user logs in with a cleartext password, which only a password answers") {
        const auto result = log_in_to_postgres(credentials("plain_user", "plain-secret"));
        CHECK_MESSAGE(result.has_value(), result.error().message);
        check_refused(log_in_to_postgres(credentials(
                          "plain_user", wire::md5::stored_secret("plain-secret", "plain_user"))),
                      "28000", "cleartext password, but only its md5 secret");
        check_refused(log_in_to_postgres(credentials("plain_user", rolpassword("plain_user"))),
                      "28000", "cleartext password, but only its SCRAM verifier");
        check_refused(log_in_to_postgres(credentials("plain_user", std::nullopt)), "28000",
                      "no password is configured");
    }

    TEST_CASE("SCRAM user logs in with its verifier and the keys a client's login revealed") {
        const std::string stored = rolpassword("scram_user");
        const auto verifier = scram::parse_verifier(stored);
        REQUIRE(verifier.has_value());
        scram::ServerExchange server(*verifier);
        scram::ClientExchange client("scram-secret");
        const auto server_first = server.handle_client_first(client.client_first_message());
        REQUIRE(server_first.has_value());
        const auto client_final = client.handle_server_first(*server_first);
        REQUIRE(client_final.has_value());
        REQUIRE(server.handle_client_final(*client_final).has_value());
        REQUIRE(server.client_key().has_value());

        ServerCredentials with_keys = credentials("scram_user", stored);
        with_keys.scram_keys = proxy::ScramKeys{*server.client_key(), verifier->server_key};
        const auto result = log_in_to_postgres(with_keys);
        CHECK_MESSAGE(result.has_value(), result.error().message);

        check_refused(log_in_to_postgres(credentials("scram_user", stored)), "28000",
                      "keys from a client's SCRAM login are missing");
    }

    TEST_CASE("SCRAM user without a usable secret is refused with 28000") {
        check_refused(log_in_to_postgres(credentials(
                          "scram_user", wire::md5::stored_secret("scram-secret", "scram_user"))),
                      "28000", "which its md5 secret cannot answer");
        check_refused(log_in_to_postgres(credentials("scram_user", std::nullopt)), "28000",
                      "no password is configured");
    }

    TEST_CASE("PostgreSQL's own errors come back with its SQLSTATE") {
        SUBCASE("wrong SCRAM password") {
            check_refused(log_in_to_postgres(credentials("scram_user", "wrong")), "28P01",
                          "password authentication failed for user \"scram_user\"");
        }
        SUBCASE("wrong md5 password") {
            check_refused(log_in_to_postgres(credentials("md5_user", "wrong")), "28P01",
                          "password authentication failed for user \"md5_user\"");
        }
        SUBCASE("wrong cleartext password") {
            check_refused(log_in_to_postgres(credentials("plain_user", "wrong")), "28P01",
                          "password authentication failed for user \"plain_user\"");
        }
        SUBCASE("unknown database") {
            check_refused(
                log_in_to_postgres(credentials("scram_user", "scram-secret", "no_such_db")),
                "3D000", "database \"no_such_db\" does not exist");
        }
    }

    TEST_CASE("trust: no password, notices and NegotiateProtocolVersion ignored, bytes after "
              "ReadyForQuery stay in the framer") {
        const Bytes after = parameter_status("application_name", "late");
        const ScriptedLogin login = log_in_to_script(
            cat({msg('v', cat({i32(0), i32(0)})),
                 wire::test::notice_response().severity("NOTICE").message("hi").bytes(),
                 authentication_ok, parameter_status("server_version", "15.0"),
                 parameter_status("client_encoding", "UTF8"),
                 msg('K', cat({i32(4242), wire::test::raw("abcd")})), ready_for_query, after}),
            credentials("alice", std::nullopt, "app_db"));
        REQUIRE_MESSAGE(login.result.has_value(), login.result.error().message);
        CHECK(login.result->parameters ==
              std::vector<proxy::ServerParameter>{{"server_version", "15.0"},
                                                  {"client_encoding", "UTF8"}});
        CHECK(login.result->process_id == 4242);
        CHECK(login.result->secret_key == wire::test::raw("abcd"));
        CHECK(login.leftover == after);

        const auto startup = wire::test::parse_as<wire::fe::StartupMessage>(login.startup);
        REQUIRE(startup.has_value());
        CHECK(startup->version == wire::fe::protocol_3_0);
        CHECK(startup->parameters ==
              std::vector<wire::fe::Parameter>{{"user", "alice"}, {"database", "app_db"}});
    }

    TEST_CASE("authentication methods we cannot speak are refused with 28000") {
        const ServerCredentials alice = credentials("alice", "secret");
        check_refused(log_in_to_script(authentication(2), alice).result, "28000", "Kerberos V5");
        check_refused(log_in_to_script(authentication(7), alice).result, "28000", "GSSAPI");
        check_refused(log_in_to_script(authentication(9), alice).result, "28000", "SSPI");
        check_refused(
            log_in_to_script(
                authentication(10, cat({str("SCRAM-SHA-256-PLUS"), str("OTHER"), str("")})), alice)
                .result,
            "28000", "only the SASL mechanisms SCRAM-SHA-256-PLUS, OTHER");
    }

    TEST_CASE("a server that goes away mid-login gives 08006") {
        const ServerCredentials alice = credentials("alice", "secret");
        SUBCASE("closed right after the StartupMessage") {
            check_refused(log_in_to_script({}, alice).result, "08006", "closed");
        }
        SUBCASE("closed inside a message") {
            const Bytes ok = authentication_ok;
            check_refused(log_in_to_script(Bytes(ok.begin(), ok.begin() + 6), alice).result,
                          "08006", "closed");
        }
        SUBCASE("closed before ReadyForQuery") {
            check_refused(
                log_in_to_script(cat({authentication_ok, parameter_status("a", "b")}), alice)
                    .result,
                "08006", "closed");
        }
    }

    TEST_CASE("a server whose SCRAM signature is wrong is refused with 28000") {
        // StoredKey from the password, so the server accepts our proof, but a ServerKey from
        // another one: the server-final-message proves knowledge of a different secret.
        scram::Verifier verifier = scram::make_verifier("secret", wire::test::raw("salt"));
        verifier.server_key = scram::make_verifier("other", wire::test::raw("salt")).server_key;
        Connection connection;
        tcp::acceptor acceptor(connection.io, {asio::ip::make_address("127.0.0.1"), 0});
        connection.socket.socket().connect(acceptor.local_endpoint());
        asio::co_spawn(connection.io, serve_scram(acceptor, verifier), rethrow);
        check_refused(connection.log_in(credentials("alice", "secret")), "28000",
                      "failed to prove that it knows the SCRAM secret");
    }

    TEST_CASE("the server's ErrorResponse is passed on") {
        const Bytes error = wire::test::error_response()
                                .severity("FATAL")
                                .code("53300")
                                .message("sorry, too many clients already")
                                .bytes();
        const ScriptedLogin login = log_in_to_script(error, credentials("alice", "secret"));
        check_refused(login.result, "53300", "sorry, too many clients already");
    }

    TEST_CASE("invalid or out-of-order protocol gives 08P01") {
        const ServerCredentials alice = credentials("alice", "secret");
        Bytes script;
        SUBCASE("length word below 4") {
            script = cat({wire::test::raw("R"), i32(2)});
        }
        SUBCASE("a message type login does not use") {
            script = msg('D', i32(0));
        }
        SUBCASE("unknown authentication code") {
            script = authentication(99);
        }
        SUBCASE("ParameterStatus before AuthenticationOk") {
            script = parameter_status("server_version", "15.0");
        }
        SUBCASE("ReadyForQuery before AuthenticationOk") {
            script = ready_for_query;
        }
        SUBCASE("AuthenticationOk instead of the SCRAM exchange") {
            script = cat({authentication(10, cat({str("SCRAM-SHA-256"), str("")})),
                          authentication_ok, ready_for_query});
        }
        SUBCASE("a SCRAM server-first-message that ignores our nonce") {
            script = cat({authentication(10, cat({str("SCRAM-SHA-256"), str("")})),
                          authentication(11, wire::test::raw("r=abc,s=c2FsdA==,i=4096"))});
        }
        SUBCASE("a second request after the password") {
            script = cat({authentication(3), authentication(3)});
        }
        SUBCASE("a short BackendKeyData") {
            script = cat({authentication_ok, msg('K', cat({i32(1), wire::test::raw("ab")}))});
        }
        SUBCASE("an ErrorResponse without SQLSTATE") {
            script = wire::test::error_response().severity("FATAL").message("no code").bytes();
        }
        check_refused(log_in_to_script(script, alice).result, "08P01", "invalid");
    }
}
