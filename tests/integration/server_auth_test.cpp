// wire::scram and wire::md5 against a real PostgreSQL 15: a plain blocking socket speaks the
// startup and authentication messages (protocol docs, "Start-up" and "SASL Authentication")
// with the wire types, and PostgreSQL decides whether the exchange was right.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pq.hpp"
#include "wire/be_auth.hpp"
#include "wire/be_error.hpp"
#include "wire/fe_auth.hpp"
#include "wire/fe_startup.hpp"
#include "wire/framer.hpp"
#include "wire/md5.hpp"
#include "wire/scram.hpp"
#include "wire/writer.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace {

using support::PgCluster;
namespace pq = support::pq;
namespace scram = wire::scram;

struct Setup {
    PgCluster cluster{{.replicas = 0}};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

std::string_view text_of(std::span<const std::byte> data) {
    return {reinterpret_cast<const char*>(data.data()), data.size()};
}

// One message, copied out of the framer so that it outlives the next read.
struct Message {
    char type = '\0';
    std::vector<std::byte> body;

    [[nodiscard]] wire::Frame frame() const { return {type, body, body}; }
};

// A blocking TCP connection to the primary; every read gives up after 10 seconds so that a
// server that stops answering fails the test instead of hanging it.
class Socket {
public:
    Socket() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        const timeval timeout{.tv_sec = 10, .tv_usec = 0};
        REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(setup().cluster.port(0)));
        REQUIRE(::inet_pton(AF_INET, setup().cluster.host().c_str(), &address.sin_addr) == 1);
        REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket() { ::close(fd_); }

    void send(wire::Writer& writer) {
        const std::vector<std::byte> bytes = writer.take();
        REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(bytes.size()));
    }

    Message receive() {
        for (;;) {
            const auto frame = framer_.next();
            REQUIRE(frame.has_value());
            if (*frame) {
                return {(**frame).type, {(**frame).body.begin(), (**frame).body.end()}};
            }
            const std::span<std::byte> space = framer_.prepare(4096);
            const ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
            REQUIRE_MESSAGE(n > 0, "the server closed the connection or did not answer");
            framer_.commit(static_cast<std::size_t>(n));
        }
    }

private:
    int fd_ = -1;
    wire::Framer framer_{wire::Phase::typed};
};

// How to answer the server's authentication requests.
struct Credentials {
    std::string password{};                  // SCRAM from a password, md5 from a password
    std::optional<std::string> md5_secret{}; // md5 from the stored secret instead
    std::optional<scram::Key> client_key{};  // SCRAM pass-through instead of the password
    std::optional<scram::Key> server_key{};
};

struct Outcome {
    std::string method;   // "SCRAM-SHA-256" or "md5": what the server asked for
    bool server_verified; // SCRAM only: the server-final-message's signature was right
    bool ready;           // AuthenticationOk, then ReadyForQuery
    std::string sqlstate; // of the ErrorResponse that ended the attempt, if one did
};

Outcome log_in(std::string_view user, const Credentials& credentials) {
    Socket socket;
    wire::Writer writer;
    wire::fe::StartupMessage{wire::fe::protocol_3_0, {{"user", user}, {"database", "postgres"}}}
        .encode(writer);
    socket.send(writer);

    Outcome outcome{};
    bool authenticated = false;
    std::optional<scram::ClientExchange> exchange;
    for (;;) {
        const Message message = socket.receive();
        if (message.type == 'E') {
            const auto error = wire::be::ErrorResponse::parse(message.frame());
            REQUIRE(error.has_value());
            outcome.sqlstate = std::string(error->code());
            return outcome;
        }
        if (message.type == 'Z') {
            outcome.ready = authenticated;
            return outcome;
        }
        if (message.type != 'R') {
            continue; // ParameterStatus, BackendKeyData
        }
        const auto request = wire::be::parse_authentication(message.frame());
        REQUIRE(request.has_value());
        std::visit(
            [&]<class Request>(const Request& r) {
                using namespace wire::be;
                if constexpr (std::is_same_v<Request, AuthenticationSASL>) {
                    REQUIRE(std::ranges::find(r.mechanisms, scram::mechanism) !=
                            r.mechanisms.end());
                    outcome.method = scram::mechanism;
                    if (credentials.client_key) {
                        exchange.emplace(*credentials.client_key, *credentials.server_key);
                    } else {
                        exchange.emplace(credentials.password);
                    }
                    wire::fe::SASLInitialResponse{scram::mechanism,
                                                  wire::as_bytes(exchange->client_first_message())}
                        .encode(writer);
                } else if constexpr (std::is_same_v<Request, AuthenticationSASLContinue>) {
                    REQUIRE(exchange);
                    const auto final_message = exchange->handle_server_first(text_of(r.data));
                    REQUIRE(final_message.has_value());
                    wire::fe::SASLResponse{wire::as_bytes(*final_message)}.encode(writer);
                } else if constexpr (std::is_same_v<Request, AuthenticationSASLFinal>) {
                    REQUIRE(exchange);
                    outcome.server_verified =
                        exchange->handle_server_final(text_of(r.data)).has_value();
                } else if constexpr (std::is_same_v<Request, AuthenticationMD5Password>) {
                    outcome.method = "md5";
                    std::string response;
                    if (credentials.md5_secret) {
                        const auto from_secret =
                            wire::md5::salted_response(*credentials.md5_secret, r.salt);
                        REQUIRE(from_secret.has_value());
                        response = *from_secret;
                    } else {
                        response = wire::md5::salted_response(credentials.password, user, r.salt);
                    }
                    wire::fe::PasswordMessage{response}.encode(writer);
                } else if constexpr (std::is_same_v<Request, AuthenticationOk>) {
                    authenticated = true;
                } else {
                    FAIL("unexpected authentication request");
                }
            },
            *request);
        if (!writer.bytes().empty()) {
            socket.send(writer);
        }
    }
}

std::string rolpassword(std::string_view user) {
    pq::Connection conn = pq::Connection::connect(setup().cluster.conninfo(0));
    REQUIRE_MESSAGE(conn.ok(), conn.error_message());
    const pq::Result result =
        conn.exec("SELECT rolpassword FROM pg_authid WHERE rolname = '" + std::string(user) + "'");
    REQUIRE_MESSAGE(result.ok(), result.error_message());
    REQUIRE(result.ntuples() == 1);
    return result.value(0, 0);
}

scram::Verifier stored_verifier() {
    const auto verifier = scram::parse_verifier(rolpassword("scram_user"));
    REQUIRE(verifier.has_value());
    return *verifier;
}

} // namespace

TEST_SUITE("integration.server_auth") {
    TEST_CASE("ClientExchange logs in to PostgreSQL with SCRAM-SHA-256") {
        const Outcome outcome = log_in("scram_user", {.password = "scram-secret"});
        CHECK(outcome.method == scram::mechanism);
        CHECK(outcome.server_verified);
        CHECK(outcome.ready);
        CHECK(outcome.sqlstate.empty());
    }

    TEST_CASE("a wrong SCRAM password is refused with 28P01") {
        const Outcome outcome = log_in("scram_user", {.password = "not-the-secret"});
        CHECK(outcome.method == scram::mechanism);
        CHECK_FALSE(outcome.ready);
        CHECK(outcome.sqlstate == "28P01");
    }

    TEST_CASE("md5 logs in from the password and from the stored secret") {
        const std::string secret = rolpassword("md5_user");
        CHECK(secret == wire::md5::stored_secret("md5-secret", "md5_user"));
        for (const Credentials& credentials :
             {Credentials{.password = "md5-secret"}, Credentials{.md5_secret = secret}}) {
            const Outcome outcome = log_in("md5_user", credentials);
            CHECK(outcome.method == "md5");
            CHECK(outcome.ready);
            CHECK(outcome.sqlstate.empty());
        }
    }

    TEST_CASE("a wrong md5 password is refused with 28P01") {
        const Outcome outcome = log_in("md5_user", {.password = "not-the-secret"});
        CHECK(outcome.method == "md5");
        CHECK_FALSE(outcome.ready);
        CHECK(outcome.sqlstate == "28P01");
    }

    TEST_CASE("PostgreSQL's stored verifier is what make_verifier derives") {
        const scram::Verifier stored = stored_verifier();
        CHECK(stored.iterations == scram::default_iterations);
        CHECK(stored.salt.size() == scram::default_salt_size);
        CHECK(scram::make_verifier("scram-secret", stored.salt, stored.iterations) == stored);
        CHECK(stored.to_string() == rolpassword("scram_user"));
    }

    TEST_CASE("ServerExchange with PostgreSQL's verifier accepts the password, and the recovered "
              "ClientKey logs in to PostgreSQL") {
        scram::ServerExchange server(stored_verifier());
        scram::ClientExchange client("scram-secret");
        const auto server_first = server.handle_client_first(client.client_first_message());
        REQUIRE(server_first.has_value());
        const auto client_final = client.handle_server_first(*server_first);
        REQUIRE(client_final.has_value());
        const auto server_final = server.handle_client_final(*client_final);
        REQUIRE(server_final.has_value());
        CHECK(client.handle_server_final(*server_final).has_value());
        REQUIRE(server.client_key());

        const Outcome outcome = log_in("scram_user", {.client_key = server.client_key(),
                                                      .server_key = server.verifier().server_key});
        CHECK(outcome.server_verified);
        CHECK(outcome.ready);
    }

    TEST_CASE("ServerExchange with PostgreSQL's verifier refuses a wrong password") {
        scram::ServerExchange server(stored_verifier());
        scram::ClientExchange client("scram-secreT");
        const auto server_first = server.handle_client_first(client.client_first_message());
        REQUIRE(server_first.has_value());
        const auto client_final = client.handle_server_first(*server_first);
        REQUIRE(client_final.has_value());
        CHECK(server.handle_client_final(*client_final).error() ==
              wire::errc::scram_proof_mismatch);
        CHECK_FALSE(server.client_key());
    }
}
