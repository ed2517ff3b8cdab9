#include "proxy/client_auth.hpp"

#include "proxy/stream_io.hpp"
#include "tests/support/wire_builders.hpp"
#include "wire/be_auth.hpp"
#include "wire/be_error.hpp"
#include "wire/fe_auth.hpp"
#include "wire/md5.hpp"
#include "wire/scram.hpp"
#include "wire/writer.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace proxy;
using local_socket = asio::local::stream_protocol::socket;
using wire::test::msg;

constexpr std::string_view user = "alice";
constexpr std::string_view password = "correct horse";
constexpr std::string_view failed = "password authentication failed for user \"alice\"";
constexpr std::uint32_t iterations = 4096;

std::vector<std::byte> test_salt() {
    return wire::test::raw("sixteen byte slt");
}

std::string scram_secret() {
    return wire::scram::make_verifier(password, test_salt(), iterations).to_string();
}

std::string md5_secret() {
    return wire::md5::stored_secret(password, user);
}

std::string_view as_text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// HMAC(SaltedPassword, name) of RFC 5802 section 3, computed here without wire::scram.
wire::scram::Key derived_key(std::string_view name) {
    unsigned char salted[wire::scram::key_size];
    const auto salt = test_salt();
    REQUIRE(PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                              reinterpret_cast<const unsigned char*>(salt.data()),
                              static_cast<int>(salt.size()), static_cast<int>(iterations),
                              EVP_sha256(), sizeof salted, salted) == 1);
    wire::scram::Key key{};
    unsigned int size = 0;
    REQUIRE(HMAC(EVP_sha256(), salted, sizeof salted,
                 reinterpret_cast<const unsigned char*>(name.data()), name.size(),
                 reinterpret_cast<unsigned char*>(key.data()), &size) != nullptr);
    REQUIRE(size == key.size());
    return key;
}

// The client's end of the socket pair, driven by a test's script.
class Client {
public:
    explicit Client(local_socket socket) : socket_(std::move(socket)) {}

    template <class Message>
    asio::awaitable<void> send(const Message& message) {
        wire::Writer writer;
        message.encode(writer);
        co_await send_raw(writer.take());
    }
    asio::awaitable<void> send_raw(std::vector<std::byte> bytes) {
        const bool sent = co_await write_all(socket_, bytes);
        REQUIRE(sent);
    }
    // The next message, or std::nullopt once the proxy closed the connection.
    asio::awaitable<std::optional<wire::Frame>> receive() {
        auto frame = co_await read_frame(socket_, framer_);
        REQUIRE(frame.has_value());
        co_return *frame;
    }
    // The next message as `Message`; the views in it last until the next receive().
    template <class Message>
    asio::awaitable<Message> expect() {
        const auto frame = co_await receive();
        REQUIRE(frame.has_value());
        auto message = Message::parse(*frame);
        REQUIRE_MESSAGE(message.has_value(), "got message type ", frame->type);
        co_return *message;
    }
    void shutdown_send() { socket_.shutdown(local_socket::shutdown_send); }
    void close() { socket_.close(); }

private:
    local_socket socket_;
    wire::Framer framer_{wire::Phase::typed};
};

// What the client received after its script ran, up to the proxy closing the connection.
struct Ending {
    int messages = 0;
    bool ok = false; // one of them was AuthenticationOk
    std::string severity, sqlstate, message;
};

struct Run {
    ClientAuthResult result;
    Ending ending;
};

asio::awaitable<Ending> read_ending(Client& client) {
    Ending ending;
    while (auto frame = co_await client.receive()) {
        ++ending.messages;
        if (wire::be::AuthenticationOk::parse(*frame)) ending.ok = true;
        if (const auto error = wire::be::ErrorResponse::parse(*frame)) {
            ending.severity = error->field(wire::be::FieldType::severity_nonlocalized).value_or("");
            ending.sqlstate = error->code();
            ending.message = error->message();
        }
    }
    co_return ending;
}

// Runs authenticate_client against `script` on a connected pair of Unix sockets. The proxy's
// end is closed once authenticate_client returns, so the client reads up to EOF.
template <class Script>
Run run(AuthType auth_type, std::string_view secret, Script script) {
    asio::io_context io;
    local_socket proxy_end(io);
    local_socket client_end(io);
    asio::local::connect_pair(proxy_end, client_end);
    ClientStream socket(ClientSocket(std::move(proxy_end)));
    wire::Framer framer(wire::Phase::typed);
    Client client(std::move(client_end));

    std::optional<ClientAuthResult> result;
    std::optional<Ending> ending;
    asio::co_spawn(io, authenticate_client(socket, framer, auth_type, user, secret),
                   [&](std::exception_ptr e, ClientAuthResult r) {
                       socket.socket().close();
                       if (e) std::rethrow_exception(e);
                       result = std::move(r);
                   });
    auto client_side = [&]() -> asio::awaitable<void> {
        co_await script(client);
        ending = co_await read_ending(client);
    };
    asio::co_spawn(io, client_side(), [&](std::exception_ptr e) {
        client.close();
        if (e) std::rethrow_exception(e);
    });
    io.run_for(std::chrono::seconds(30));
    REQUIRE(result.has_value());
    REQUIRE(ending.has_value());
    return Run{std::move(*result), std::move(*ending)};
}

void check_ok(const Run& run) {
    CHECK(run.ending.ok);
    CHECK(run.ending.messages == 1);
    REQUIRE(run.result.has_value());
}

void check_refused(const Run& run, std::string_view sqlstate, std::string_view message) {
    CHECK(run.result.has_error());
    CHECK(run.ending.messages == 1);
    CHECK(run.ending.severity == "FATAL");
    CHECK(run.ending.sqlstate == sqlstate);
    CHECK(run.ending.message == message);
}

// Scripts: each answers the proxy's first request and leaves the rest to read_ending().

auto answer_plain(std::string answer) {
    return [answer](Client& client) -> asio::awaitable<void> {
        (void)co_await client.expect<wire::be::AuthenticationCleartextPassword>();
        co_await client.send(wire::fe::PasswordMessage{answer});
    };
}

auto answer_md5(std::string answer_password) {
    return [answer_password](Client& client) -> asio::awaitable<void> {
        const auto request = co_await client.expect<wire::be::AuthenticationMD5Password>();
        const auto answer = wire::md5::salted_response(answer_password, user, request.salt);
        co_await client.send(wire::fe::PasswordMessage{answer});
    };
}

// A full SCRAM exchange; `initial_response` false sends SASLInitialResponse without data, as the
// docs allow, and client-first-message in the SASLResponse that follows.
auto answer_scram(std::string answer_password, bool initial_response = true) {
    return [answer_password, initial_response](Client& client) -> asio::awaitable<void> {
        const auto request = co_await client.expect<wire::be::AuthenticationSASL>();
        REQUIRE(request.mechanisms.size() == 1);
        CHECK(request.mechanisms[0] == "SCRAM-SHA-256");
        wire::scram::ClientExchange exchange(answer_password);
        const auto first = wire::as_bytes(exchange.client_first_message());
        if (initial_response) {
            co_await client.send(wire::fe::SASLInitialResponse{wire::scram::mechanism, first});
        } else {
            co_await client.send(wire::fe::SASLInitialResponse{wire::scram::mechanism, {}});
            const auto empty = co_await client.expect<wire::be::AuthenticationSASLContinue>();
            CHECK(empty.data.empty());
            co_await client.send(wire::fe::SASLResponse{first});
        }
        const auto challenge = co_await client.expect<wire::be::AuthenticationSASLContinue>();
        const auto final_message = exchange.handle_server_first(as_text(challenge.data));
        REQUIRE(final_message.has_value());
        co_await client.send(wire::fe::SASLResponse{wire::as_bytes(*final_message)});
        if (answer_password != password) co_return;
        const auto outcome = co_await client.expect<wire::be::AuthenticationSASLFinal>();
        CHECK(exchange.handle_server_final(as_text(outcome.data)).has_value());
        CHECK(exchange.authenticated());
    };
}

// Waits for a request of type `Request`, then sends `bytes` instead of the expected answer.
template <class Request>
auto answer_raw(std::vector<std::byte> bytes) {
    return [bytes](Client& client) -> asio::awaitable<void> {
        (void)co_await client.expect<Request>();
        co_await client.send_raw(bytes);
    };
}

asio::awaitable<void> say_nothing(Client&) {
    co_return;
}

} // namespace

TEST_SUITE("proxy.client_auth") {
    TEST_CASE("trust sends AuthenticationOk without asking for a password") {
        const Run r = run(AuthType::trust, "anything", say_nothing);
        check_ok(r);
        CHECK_FALSE(r.result->password.has_value());
        CHECK_FALSE(r.result->scram_keys.has_value());
    }

    TEST_CASE("plain checks the cleartext password against every secret form") {
        for (const std::string& secret : {std::string(password), md5_secret(), scram_secret()}) {
            CAPTURE(secret);
            const Run right = run(AuthType::plain, secret, answer_plain(std::string(password)));
            check_ok(right);
            // Kept for logging in to servers.
            CHECK(right.result->password == std::optional<std::string>(password));
            CHECK_FALSE(right.result->scram_keys.has_value());

            check_refused(run(AuthType::plain, secret, answer_plain("correct horsf")), "28P01",
                          failed);
            check_refused(run(AuthType::plain, secret, answer_plain("")), "28P01", failed);
        }
    }

    TEST_CASE("plain never accepts an empty stored password") {
        check_refused(run(AuthType::plain, "", answer_plain("")), "28P01", failed);
    }

    TEST_CASE("md5 checks the salted answer against plain and md5 secrets") {
        for (const std::string& secret : {std::string(password), md5_secret()}) {
            CAPTURE(secret);
            const Run right = run(AuthType::md5, secret, answer_md5(std::string(password)));
            check_ok(right);
            CHECK_FALSE(right.result->password.has_value());
            CHECK_FALSE(right.result->scram_keys.has_value());

            check_refused(run(AuthType::md5, secret, answer_md5("Correct horse")), "28P01", failed);
        }
    }

    TEST_CASE("md5 salts differ between logins") {
        std::vector<wire::md5::Salt> salts;
        for (int i = 0; i < 2; ++i) {
            auto script = [&salts](Client& client) -> asio::awaitable<void> {
                const auto request = co_await client.expect<wire::be::AuthenticationMD5Password>();
                salts.push_back(request.salt);
                client.shutdown_send();
            };
            CHECK(run(AuthType::md5, password, script).result.has_error());
        }
        REQUIRE(salts.size() == 2);
        CHECK(salts[0] != salts[1]);
    }

    TEST_CASE("md5 with a SCRAM secret runs SCRAM and recovers the keys") {
        const Run r = run(AuthType::md5, scram_secret(), answer_scram(std::string(password)));
        check_ok(r);
        CHECK_FALSE(r.result->password.has_value());
        REQUIRE(r.result->scram_keys.has_value());
        CHECK(r.result->scram_keys->client_key == derived_key("Client Key"));
        CHECK(r.result->scram_keys->server_key == derived_key("Server Key"));
    }

    TEST_CASE("scram-sha-256 against a SCRAM secret") {
        SUBCASE("right password: the keys for server logins") {
            const Run r =
                run(AuthType::scram_sha_256, scram_secret(), answer_scram(std::string(password)));
            check_ok(r);
            CHECK_FALSE(r.result->password.has_value());
            REQUIRE(r.result->scram_keys.has_value());
            CHECK(r.result->scram_keys->client_key == derived_key("Client Key"));
            CHECK(r.result->scram_keys->server_key == derived_key("Server Key"));
        }
        SUBCASE("right password without an initial response") {
            check_ok(run(AuthType::scram_sha_256, scram_secret(),
                         answer_scram(std::string(password), false)));
        }
        SUBCASE("wrong password") {
            check_refused(
                run(AuthType::scram_sha_256, scram_secret(), answer_scram("correct horse ")),
                "28P01", failed);
        }
    }

    TEST_CASE("scram-sha-256 against a plain secret") {
        SUBCASE("right password: no keys, the proxy has the password") {
            const Run r =
                run(AuthType::scram_sha_256, password, answer_scram(std::string(password)));
            check_ok(r);
            CHECK_FALSE(r.result->password.has_value());
            CHECK_FALSE(r.result->scram_keys.has_value());
        }
        SUBCASE("wrong password") {
            check_refused(run(AuthType::scram_sha_256, password, answer_scram("wrong")), "28P01",
                          failed);
        }
        SUBCASE("empty stored password: refused before any exchange") {
            check_refused(run(AuthType::scram_sha_256, "", say_nothing), "28P01", failed);
        }
    }

    TEST_CASE("scram-sha-256 cannot use an md5 secret") {
        check_refused(run(AuthType::scram_sha_256, md5_secret(), say_nothing), "28000",
                      "SCRAM-SHA-256 authentication is not possible for user \"alice\": its "
                      "stored secret is an md5 hash");
    }

    TEST_CASE("cert without TLS and an unresolved hba are refused") {
        check_refused(run(AuthType::cert, password, say_nothing), "28000",
                      "certificate authentication failed for user \"alice\"");
        check_refused(run(AuthType::hba, password, say_nothing), "28000",
                      "authentication method \"hba\" is not supported");
    }

    TEST_CASE("an answer that is not valid protocol is 08P01") {
        using wire::be::AuthenticationCleartextPassword;
        using wire::be::AuthenticationSASL;
        const auto query = msg('Q', wire::test::str("SELECT 1"));

        SUBCASE("a Query instead of a password") {
            check_refused(
                run(AuthType::plain, password, answer_raw<AuthenticationCleartextPassword>(query)),
                "08P01", "expected password response, got message type 81");
        }
        SUBCASE("a Query instead of a SASL response") {
            check_refused(
                run(AuthType::scram_sha_256, password, answer_raw<AuthenticationSASL>(query)),
                "08P01", "expected SASL response, got message type 81");
        }
        SUBCASE("a password without its terminator") {
            check_refused(run(AuthType::plain, password,
                              answer_raw<AuthenticationCleartextPassword>(msg('p', "secret"))),
                          "08P01", "invalid password packet size");
        }
        SUBCASE("a length word below 4") {
            check_refused(
                run(AuthType::plain, password,
                    answer_raw<AuthenticationCleartextPassword>(wire::test::hex("70 00000003"))),
                "08P01", "invalid message length");
        }
        SUBCASE("another SASL mechanism") {
            wire::Writer writer;
            wire::fe::SASLInitialResponse{"SCRAM-SHA-256-PLUS", wire::as_bytes("n,,n=,r=abc")}
                .encode(writer);
            check_refused(run(AuthType::scram_sha_256, password,
                              answer_raw<AuthenticationSASL>(writer.take())),
                          "08P01", "client selected an invalid SASL authentication mechanism");
        }
        SUBCASE("a client-first-message that is not SCRAM") {
            wire::Writer writer;
            wire::fe::SASLInitialResponse{wire::scram::mechanism, wire::as_bytes("hello")}.encode(
                writer);
            check_refused(run(AuthType::scram_sha_256, password,
                              answer_raw<AuthenticationSASL>(writer.take())),
                          "08P01", "malformed SCRAM message");
        }
    }

    TEST_CASE("a client that leaves mid-exchange is told nothing") {
        AuthType auth_type = AuthType::plain;
        SUBCASE("plain") {
            auth_type = AuthType::plain;
        }
        SUBCASE("md5") {
            auth_type = AuthType::md5;
        }
        SUBCASE("scram-sha-256") {
            auth_type = AuthType::scram_sha_256;
        }
        CAPTURE(auth_type);

        const Run r = run(auth_type, password, [](Client& client) -> asio::awaitable<void> {
            (void)co_await client.receive();
            client.shutdown_send();
        });
        REQUIRE(r.result.has_error());
        CHECK(r.result.error().reason == "client gone");
        CHECK(r.ending.messages == 0);
    }
}
