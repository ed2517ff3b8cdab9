// auth_type = "hba" through a real pgmarina in front of PostgreSQL 15: the auth_hba_file picks
// each connection's method by user, database, address and transport, refuses what it rejects or
// does not list with PostgreSQL's messages, and is read again on RELOAD.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"
#include "tests/support/raw_client.hpp"
#include "tests/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>

namespace {

using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;
namespace raw = support::raw;

// Comments and alignment as operators write them; the test cases refer to these lines.
constexpr std::string_view hba_conf = R"(# TYPE  DATABASE   USER     ADDRESS        METHOD
host    pgbouncer  admin    127.0.0.1/32   trust
local   all        alice                   password
local   all        bob                     md5
host    all        mallory  0.0.0.0/0      reject
host    app        alice    127.0.0.1/32   scram-sha-256
host    app        bob      127.0.0.0/8    trust   # the office
)";

// A directory for the auth_hba_file and the Unix socket, removed last.
struct ScratchDir {
    std::filesystem::path path =
        support::make_temp_dir(std::filesystem::temp_directory_path(), "pgmarina-hba.");
    ScratchDir() = default;
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    ~ScratchDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
};

void write_file(const std::filesystem::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

// The clients log in under their own names; the servers are logged in to as scram_user, the
// database's forced user, so alice, bob, carol and mallory need not exist in PostgreSQL.
std::string config_for(const PgCluster& cluster, std::uint16_t port,
                       const std::filesystem::path& dir) {
    return "[pgmarina]\n"
           "listen = [\"127.0.0.1:" +
           std::to_string(port) + "\"]\nunix_socket_dir = \"" + dir.string() +
           "\"\n"
           "workers = 2\n"
           "client_login_timeout = 5\n"
           "auth_type = \"hba\"\n"
           "auth_hba_file = \"" +
           (dir / "hba.conf").string() +
           "\"\n"
           "admin_users = [\"admin\"]\n"
           "[databases.app]\n"
           "hosts = [\"127.0.0.1:" +
           std::to_string(cluster.port(0)) +
           "\"]\n"
           "user = \"scram_user\"\n"
           "password = \"" +
           cluster.password("scram_user") +
           "\"\n"
           "[users.admin]\npassword = \"admin-password\"\n"
           "[users.alice]\npassword = \"alice-password\"\n"
           "[users.bob]\npassword = \"bob-password\"\n"
           "[users.carol]\npassword = \"carol-password\"\n"
           "[users.mallory]\npassword = \"mallory-password\"\n";
}

struct Setup {
    ScratchDir dir;
    PgCluster cluster{{.replicas = 0}};
    std::uint16_t port = PgmarinaProcess::free_port();
    bool written = (write_file(dir.path / "hba.conf", hba_conf), true);
    PgmarinaProcess pgmarina{config_for(cluster, port, dir.path), port};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

#define PGMARINA_LOG_ON_FAILURE()                                                                  \
    INFO("end of pgmarina's log:" << support::log_tail(setup().pgmarina))

std::filesystem::path unix_socket() {
    return setup().dir.path / (".s.PGSQL." + std::to_string(setup().port));
}

std::string tcp_conninfo(std::string_view user, std::string_view password) {
    return setup().pgmarina.conninfo(user, password, "app");
}

std::string unix_conninfo(std::string_view user, std::string_view password) {
    return "host=" + setup().dir.path.string() + " port=" + std::to_string(setup().port) +
           " user=" + std::string(user) + " password=" + std::string(password) +
           " dbname=app connect_timeout=5";
}

// What pgmarina answers a StartupMessage for `user` to database app with: "R<n>" for an
// Authentication message (0 ok, 3 cleartext password, 5 md5, 10 SASL), "E<SQLSTATE>: <message>"
// for an ErrorResponse.
std::string first_reply(raw::Client& client, std::string_view user) {
    REQUIRE(client.send(raw::startup_message({{"user", std::string(user)}, {"database", "app"}})));
    const auto reply = client.read();
    REQUIRE(reply.has_value());
    if (reply->type == 'E') return "E" + reply->field('C') + ": " + reply->field('M');
    REQUIRE(reply->type == 'R');
    REQUIRE(reply->body.size() >= 4);
    std::uint32_t code = 0;
    for (std::size_t i = 0; i < 4; ++i)
        code = (code << 8) | static_cast<unsigned char>(reply->body[i]);
    return "R" + std::to_string(code);
}

std::string first_reply_over_tcp(std::string_view user) {
    raw::Client client(setup().port);
    return first_reply(client, user);
}

std::string first_reply_over_unix(std::string_view user) {
    raw::Client client(unix_socket());
    return first_reply(client, user);
}

// A refusal is the last thing said: an ErrorResponse, then the connection closes.
void check_refused_and_closed(raw::Client& client, std::string_view user,
                              std::string_view expected) {
    REQUIRE(client.send(raw::startup_message({{"user", std::string(user)}, {"database", "app"}})));
    const auto messages = client.read_until_closed();
    CHECK(client.closed());
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].type == 'E');
    CHECK(messages[0].field('S') == "FATAL");
    CHECK(messages[0].field('C') == "28000");
    CHECK(messages[0].field('M') == expected);
}

pq::Result reload() {
    auto admin = pq::Connection::connect(
        setup().pgmarina.conninfo("admin", "unused-with-trust", "pgbouncer"));
    REQUIRE_MESSAGE(admin.ok(), admin.error_message());
    return admin.exec("RELOAD");
}

} // namespace

TEST_SUITE("integration.hba") {

    TEST_CASE("over TCP alice must use SCRAM-SHA-256: a wrong password is refused, hers works") {
        PGMARINA_LOG_ON_FAILURE();
        CHECK(first_reply_over_tcp("alice") == "R10");
        auto wrong = pq::Connection::connect(tcp_conninfo("alice", "not-her-password"));
        CHECK_FALSE(wrong.ok());
        CHECK(wrong.sqlstate() == "28P01");
        CHECK(wrong.error_message().find("password authentication failed for user \"alice\"") !=
              std::string::npos);
        auto right = pq::Connection::connect(tcp_conninfo("alice", "alice-password"));
        REQUIRE_MESSAGE(right.ok(), right.error_message());
        CHECK(right.exec("SELECT current_user").value(0, 0) == "scram_user");
    }

    TEST_CASE("over TCP bob is trusted") {
        PGMARINA_LOG_ON_FAILURE();
        CHECK(first_reply_over_tcp("bob") == "R0");
        auto conn = pq::Connection::connect(tcp_conninfo("bob", "anything-at-all"));
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        CHECK(conn.exec("SELECT 1").value(0, 0) == "1");
    }

    TEST_CASE("mallory's reject line refuses her with 28000 before any password exchange") {
        PGMARINA_LOG_ON_FAILURE();
        raw::Client client(setup().port);
        check_refused_and_closed(client, "mallory",
                                 "pg_hba.conf rejects connection for host \"127.0.0.1\", user "
                                 "\"mallory\", database \"app\", no encryption");
        auto conn = pq::Connection::connect(tcp_conninfo("mallory", "mallory-password"));
        CHECK_FALSE(conn.ok());
        CHECK(conn.sqlstate() == "28000");
    }

    TEST_CASE("a connection no line matches gets \"no pg_hba.conf entry\"") {
        PGMARINA_LOG_ON_FAILURE();
        SUBCASE("a known user without a line, over TCP") {
            raw::Client client(setup().port);
            check_refused_and_closed(client, "carol",
                                     "no pg_hba.conf entry for host \"127.0.0.1\", user "
                                     "\"carol\", database \"app\", no encryption");
        }
        SUBCASE("a user with only a host line, over the Unix socket") {
            raw::Client client(unix_socket());
            check_refused_and_closed(client, "mallory",
                                     "no pg_hba.conf entry for host \"[local]\", user "
                                     "\"mallory\", database \"app\", no encryption");
        }
    }

    TEST_CASE("over the Unix socket the local lines apply, not the host lines") {
        PGMARINA_LOG_ON_FAILURE();
        CHECK(first_reply_over_unix("alice") == "R3");
        CHECK(first_reply_over_unix("bob") == "R5");
        auto alice = pq::Connection::connect(unix_conninfo("alice", "alice-password"));
        REQUIRE_MESSAGE(alice.ok(), alice.error_message());
        CHECK(alice.exec("SELECT 1").value(0, 0) == "1");
        auto bob_wrong = pq::Connection::connect(unix_conninfo("bob", "not-his-password"));
        CHECK_FALSE(bob_wrong.ok());
        CHECK(bob_wrong.sqlstate() == "28P01");
        auto bob = pq::Connection::connect(unix_conninfo("bob", "bob-password"));
        REQUIRE_MESSAGE(bob.ok(), bob.error_message());
    }

    TEST_CASE("RELOAD reads the auth_hba_file again; a broken file keeps the rules in force") {
        PGMARINA_LOG_ON_FAILURE();
        const auto path = setup().dir.path / "hba.conf";
        std::string broken(hba_conf);
        broken.replace(broken.find("127.0.0.0/8"), 11, "127.0.0.0/99");
        write_file(path, broken);
        const auto refused = reload();
        CHECK_FALSE(refused.ok());
        CHECK(refused.error_message().find(path.string() + ":7:29: invalid CIDR mask in address "
                                                           "\"127.0.0.0/99\"") !=
              std::string::npos);
        CHECK(first_reply_over_tcp("bob") == "R0");

        std::string stricter(hba_conf);
        stricter.replace(stricter.find("trust   # the office"), 5, "reject");
        write_file(path, stricter);
        const auto applied = reload();
        CHECK_MESSAGE(applied.ok(), applied.error_message());
        CHECK(first_reply_over_tcp("bob") ==
              "E28000: pg_hba.conf rejects connection for host \"127.0.0.1\", user \"bob\", "
              "database \"app\", no encryption");

        write_file(path, hba_conf);
        const auto restored = reload();
        CHECK_MESSAGE(restored.ok(), restored.error_message());
        CHECK(first_reply_over_tcp("bob") == "R0");
    }

    TEST_CASE("pgmarina does not start with an invalid auth_hba_file") {
        ScratchDir dir;
        write_file(dir.path / "hba.conf", "local all all trust\nhost all all example.com md5\n");
        const std::uint16_t port = PgmarinaProcess::free_port();
        std::string error;
        try {
            PgmarinaProcess refused{config_for(setup().cluster, port, dir.path), port};
        } catch (const std::runtime_error& e) {
            error = e.what();
        }
        CHECK(error.find((dir.path / "hba.conf").string() +
                         ":2:14: host names (\"example.com\") are not supported") !=
              std::string::npos);
    }
}
