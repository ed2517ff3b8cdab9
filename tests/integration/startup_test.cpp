// pgmarina in front of a real PostgreSQL 15: what the start of a connection promises (database
// lookup, authentication, refusals with the right SQLSTATE, cancel, hostile first packets) and
// that a client that behaves gets to PostgreSQL.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "wire/be_error.hpp"
#include "wire/framer.hpp"
#include "wire/writer.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;

// The proxy's config: `app` and its alias `alias` on the primary, `down` on a port nobody
// listens on.
std::string config_for(const PgCluster& cluster, std::uint16_t listen_port,
                       std::uint16_t dead_port) {
    const std::string primary = "127.0.0.1:" + std::to_string(cluster.port(0));
    return "[pgmarina]\n"
           "workers = 2\n"
           "listen = [\"127.0.0.1:" +
           std::to_string(listen_port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "client_login_timeout = 2\n"
           "server_connect_timeout = 2\n"
           "[databases.app]\n"
           "hosts = [\"" +
           primary +
           "\"]\n"
           "[databases.alias]\n"
           "dbname = \"app\"\n"
           "hosts = [\"" +
           primary +
           "\"]\n"
           "[databases.down]\n"
           "hosts = [\"127.0.0.1:" +
           std::to_string(dead_port) +
           "\"]\n"
           "[users.scram_user]\n"
           "password = \"" +
           cluster.password("scram_user") + "\"\n";
}

// One cluster and one pgmarina for every case: starting them is most of a case's cost.
struct Setup {
    PgCluster cluster{{.replicas = 0}};
    std::uint16_t port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, port, PgmarinaProcess::free_port()), port};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

std::string scram_conninfo(std::string_view dbname) {
    return setup().pgmarina.conninfo("scram_user", setup().cluster.password("scram_user"), dbname);
}

// What a raw client sees: the bytes pgmarina sent before it closed the connection.
std::vector<std::byte> exchange(const std::vector<std::byte>& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(setup().pgmarina.port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
    std::vector<std::byte> reply;
    pollfd readable{.fd = fd, .events = POLLIN, .revents = 0};
    std::byte chunk[4096];
    while (::poll(&readable, 1, 5000) == 1) {
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        reply.insert(reply.end(), chunk, chunk + n);
    }
    ::close(fd);
    return reply;
}

// The SQLSTATE of the ErrorResponse pgmarina answers `request` with, or nullopt if it answers
// something else.
std::optional<std::string> error_code(const std::vector<std::byte>& request) {
    const auto reply = exchange(request);
    wire::Framer framer{wire::Phase::typed};
    framer.feed(reply);
    const auto frame = framer.next();
    if (!frame || !*frame || (**frame).type != 'E') return std::nullopt;
    const auto error = wire::be::ErrorResponse::parse(**frame);
    if (!error) return std::nullopt;
    return std::string(error->code());
}

std::vector<std::byte> bytes(std::initializer_list<int> values) {
    std::vector<std::byte> out;
    for (const int value : values)
        out.push_back(static_cast<std::byte>(value));
    return out;
}

std::vector<std::byte> startup_packet(std::int32_t code, const std::vector<std::string>& body) {
    wire::Writer writer;
    writer.begin_untyped().put_i32(code);
    for (const auto& text : body)
        writer.put_cstr(text);
    writer.put_u8(0).end();
    return writer.take();
}

} // namespace

TEST_SUITE("integration.startup") {

    TEST_CASE("a client reaches its database through pgmarina, by name and by alias") {
        for (const char* name : {"app", "alias"}) {
            CAPTURE(name);
            auto conn = pq::Connection::connect(scram_conninfo(name));
            REQUIRE_MESSAGE(conn.ok(), conn.error_message());
            const auto result = conn.exec("SELECT current_user, current_database()");
            REQUIRE(result.ok());
            CHECK(result.value(0, 0) == "scram_user");
            CHECK(result.value(0, 1) == "app");
        }
    }

    TEST_CASE("an SSLRequest is refused with N and the client goes on in plaintext") {
        auto conn = pq::Connection::connect(scram_conninfo("app") + " sslmode=prefer");
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        CHECK(PQsslInUse(conn.native()) == 0);
        CHECK(conn.exec("SELECT 1").value(0, 0) == "1");
    }

    TEST_CASE("an unknown database is refused with 3D000") {
        auto conn = pq::Connection::connect(scram_conninfo("nosuchdb"));
        CHECK_FALSE(conn.ok());
        CHECK(conn.sqlstate() == "3D000");
        CHECK(conn.error_message().find("no such database: nosuchdb") != std::string::npos);
    }

    TEST_CASE("a wrong password is refused with 28P01") {
        auto conn = pq::Connection::connect(
            setup().pgmarina.conninfo("scram_user", "not-the-password", "app"));
        CHECK_FALSE(conn.ok());
        CHECK(conn.sqlstate() == "28P01");
    }

    TEST_CASE("a server that cannot be reached gives 08006") {
        auto conn = pq::Connection::connect(scram_conninfo("down"));
        CHECK_FALSE(conn.ok());
        CHECK(conn.sqlstate() == "08006");
    }

    TEST_CASE("a CancelRequest stops the running query within a second") {
        auto conn = pq::Connection::connect(scram_conninfo("app"));
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        REQUIRE(PQsendQuery(conn.native(), "SELECT pg_sleep(10)") == 1);
        std::this_thread::sleep_for(200ms);
        const auto started = std::chrono::steady_clock::now();
        PGcancel* cancel = PQgetCancel(conn.native());
        char why[256];
        REQUIRE(PQcancel(cancel, why, sizeof why) == 1);
        PQfreeCancel(cancel);
        PGresult* result = PQgetResult(conn.native());
        const auto elapsed = std::chrono::steady_clock::now() - started;
        REQUIRE(result != nullptr);
        CHECK(std::string(PQresultErrorField(result, PG_DIAG_SQLSTATE)) == "57014");
        PQclear(result);
        while ((result = PQgetResult(conn.native())) != nullptr)
            PQclear(result);
        CHECK(elapsed < 1s);
    }

    TEST_CASE("hostile first packets get an ErrorResponse and pgmarina stays up") {
        SUBCASE("length below the minimum") {
            CHECK(error_code(bytes({0, 0, 0, 3, 0, 0, 0, 0})) == "08P01");
        }
        SUBCASE("length above the 10 000-byte startup cap") {
            CHECK(error_code(bytes({0, 0, 0x4e, 0x21, 0, 3, 0, 0})) == "08P01");
        }
        SUBCASE("protocol 2") {
            CHECK(error_code(startup_packet(0x20000, {"user", "scram_user"})) == "0A000");
        }
        SUBCASE("no user name") {
            CHECK(error_code(startup_packet(196608, {"database", "app"})) == "28000");
        }
        SUBCASE("startup packet cut short, then silence until client_login_timeout") {
            CHECK(error_code(bytes({0, 0, 0, 40, 0, 3, 0, 0})) == "08P01");
        }
        SUBCASE("plaintext sent behind an SSLRequest is not answered") {
            auto request = bytes({0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); // SSLRequest
            const auto query = startup_packet(196608, {"user", "scram_user"});
            request.insert(request.end(), query.begin(), query.end());
            CHECK(exchange(request).empty());
        }
        CHECK(setup().pgmarina.running());
        auto conn = pq::Connection::connect(scram_conninfo("app"));
        CHECK_MESSAGE(conn.ok(), conn.error_message());
    }
}
