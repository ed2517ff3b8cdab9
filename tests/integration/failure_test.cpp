// What pgmarina does when things break: a server killed under a client, PostgreSQL restarted,
// clients that send bytes no PostgreSQL client would or vanish mid-message. In each case the
// client concerned gets the error PostgreSQL would send and is closed, every other client goes
// on, pgmarina stays up, and no server is lent to the next client in the state the failure left.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"
#include "tests/support/raw_client.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;
namespace raw = support::raw;

constexpr std::uint32_t max_packet_size = 1024 * 1024;

// auth_type trust, so that raw clients log in with a StartupMessage alone; `solo` is `app`
// with one server, so that the next client gets the very server a failed client had.
std::string config_for(const PgCluster& cluster, std::uint16_t listen_port) {
    const std::string hosts = "[\"127.0.0.1:" + std::to_string(cluster.port(0)) + "\"]\n";
    return "[pgmarina]\nworkers = 2\nlisten = [\"127.0.0.1:" + std::to_string(listen_port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "auth_type = \"trust\"\n"
           "max_packet_size = " +
           std::to_string(max_packet_size) +
           "\n"
           "default_pool_size = 5\n"
           "client_login_timeout = 2\n"
           "server_connect_timeout = 2\n"
           "[databases.app]\nhosts = " +
           hosts + "[databases.solo]\ndbname = \"app\"\npool_size = 1\nhosts = " + hosts +
           "[databases.solo_long]\ndbname = \"app\"\npool_size = 1\nhosts = " + hosts +
           "[users.scram_user]\npassword = \"" + cluster.password("scram_user") + "\"\n";
}

pq::Connection superuser(const PgCluster& cluster) {
    auto conn = pq::Connection::connect(cluster.conninfo(0, "postgres", "app"));
    if (!conn.ok()) throw std::runtime_error("superuser connection: " + conn.error_message());
    return conn;
}

struct Setup {
    Setup() {
        // A table for the rows a failed client inserted and must not have committed.
        auto admin = superuser(cluster);
        const auto made = admin.exec("CREATE TABLE dirty_check (id int); "
                                     "GRANT ALL ON dirty_check TO scram_user");
        if (!made.ok()) throw std::runtime_error("dirty_check: " + made.error_message());
    }

    PgCluster cluster{{.replicas = 0}};
    std::uint16_t port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, port), port};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

// With verbose errors: when a session ends with a FATAL, libpq returns a later "server closed
// the connection" as the query's result and keeps the FATAL only in the connection's message,
// where Connection::sqlstate() finds its code in verbose form.
pq::Connection connect(const std::string& dbname = "app") {
    auto conn = pq::Connection::connect(setup().pgmarina.conninfo("scram_user", "unused", dbname));
    if (conn.ok()) PQsetErrorVerbosity(conn.native(), PQERRORS_VERBOSE);
    return conn;
}

// Polls pg_stat_activity until scram_user has `expected` backends; returns the last count.
int wait_for_backends(int expected, Clock::duration timeout = 5s) {
    auto admin = superuser(setup().cluster);
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const int count = std::stoi(admin
                                        .exec("SELECT count(*) FROM pg_stat_activity WHERE "
                                              "usename = 'scram_user' AND backend_type = "
                                              "'client backend'")
                                        .value(0, 0));
        if (count == expected || Clock::now() >= deadline) return count;
        std::this_thread::sleep_for(50ms);
    }
}

// What a client may do wrong once logged in.
struct BadInput {
    const char* what;
    std::string bytes;
    bool answered; // false: the client is gone before pgmarina could answer
};

std::vector<BadInput> bad_inputs() {
    return {
        // 'h' and a length of 0x656c6c6f ("ello"), far beyond max_packet_size.
        {"garbage text", "hello, this is not the PostgreSQL protocol\n", true},
        {"a length below 4", "Q" + raw::int32(3), true},
        {"a length beyond max_packet_size", "Q" + raw::int32(max_packet_size + 100) + "SELECT 1",
         true},
        {"an unknown message type '!'", "!" + raw::int32(4), true},
        {"a Query without its last bytes, then disconnect", "Q" + raw::int32(100) + "SELECT",
         false},
        {"nothing, just disconnect", "", false},
    };
}

// Longer than pgmarina holds whole (64 kB): its first pieces reach the server before the end.
std::string half_of_a_long_query() {
    const std::string long_query = "SELECT '" + std::string(200'000, 'x') + "'";
    return "Q" + raw::int32(static_cast<std::uint32_t>(long_query.size() + 5)) +
           long_query.substr(0, 100'000);
}

// The next client of a pool of one server: it must not land in what a failed client left.
void check_clean(const std::string& dbname) {
    CHECK(setup().pgmarina.running());
    auto next = connect(dbname);
    REQUIRE_MESSAGE(next.ok(), next.error_message());
    const auto rows = next.exec("SELECT count(*) FROM dirty_check", 5s);
    REQUIRE_MESSAGE(rows.ok(), rows.error_message());
    CHECK(rows.value(0, 0) == "0");
    CHECK(PQtransactionStatus(next.native()) == PQTRANS_IDLE);
}

} // namespace

TEST_SUITE("integration.failure") {

    TEST_CASE("a server killed under a client: that client gets 57P01 and is closed, others go "
              "on") {
        auto victim = connect();
        auto bystander = connect();
        REQUIRE_MESSAGE(victim.ok(), victim.error_message());
        REQUIRE_MESSAGE(bystander.ok(), bystander.error_message());
        REQUIRE(victim.exec("BEGIN").ok());
        const std::string pid = victim.exec("SELECT pg_backend_pid()").value(0, 0);
        REQUIRE(bystander.exec("SELECT 1").ok());

        auto admin = superuser(setup().cluster);
        CHECK(admin.exec("SELECT pg_terminate_backend(" + pid + ")").value(0, 0) == "t");
        // The backend is gone, its FATAL sent, before the client says anything more: the
        // server died while its client sat idle in a transaction.
        const std::string gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid;
        for (auto deadline = Clock::now() + 5s;
             admin.exec(gone).value(0, 0) != "0" && Clock::now() < deadline;) {
            std::this_thread::sleep_for(20ms);
        }
        REQUIRE(admin.exec(gone).value(0, 0) == "0");
        const auto result = victim.exec("SELECT 1");
        CHECK_FALSE(result.ok());
        CHECK_MESSAGE(victim.sqlstate() == "57P01", victim.error_message());
        CHECK(PQstatus(victim.native()) == CONNECTION_BAD);

        CHECK(bystander.exec("SELECT 2").value(0, 0) == "2");
        CHECK(setup().pgmarina.running());
        for (int i = 0; i < 3; ++i) {
            auto fresh = connect();
            const auto served = fresh.exec("SELECT pg_backend_pid()");
            REQUIRE_MESSAGE(served.ok(), served.error_message());
            CHECK(served.value(0, 0) != pid);
        }
    }

    TEST_CASE("servers killed while idle in the pool are not lent to clients") {
        auto client = connect();
        REQUIRE(client.exec("SELECT 1").ok());
        auto admin = superuser(setup().cluster);
        // In the select list, after WHERE: PostgreSQL may evaluate a WHERE clause's function
        // before its other conditions, for every backend, this one included.
        const auto killed = admin.exec("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                                       "FROM pg_stat_activity WHERE usename = 'scram_user'");
        REQUIRE_MESSAGE(killed.ok(), killed.error_message());
        CHECK(std::stoi(killed.value(0, 0)) >= 1);
        REQUIRE(wait_for_backends(0) == 0);
        // The client had no server between transactions: it goes on with a new one.
        const auto result = client.exec("SELECT 1");
        CHECK_MESSAGE(result.ok(), result.error_message());
        CHECK(PQstatus(client.native()) == CONNECTION_OK);
    }

    TEST_CASE("a message just below max_packet_size passes") {
        auto conn = connect();
        const auto result =
            conn.exec("SELECT length('" + std::string(max_packet_size - 100, 'y') + "')", 5s);
        REQUIRE_MESSAGE(result.ok(), result.error_message());
        CHECK(result.value(0, 0) == std::to_string(max_packet_size - 100));
    }

    TEST_CASE("hostile client input: 08P01 where it can be answered, and no dirty server") {
        for (const bool in_transaction : {false, true}) {
            for (const BadInput& bad : bad_inputs()) {
                CAPTURE(in_transaction);
                CAPTURE(std::string(bad.what));
                {
                    raw::Client client{setup().port};
                    client.log_in_trusted("scram_user", "solo");
                    if (in_transaction) {
                        REQUIRE(client.run("BEGIN").back().body == "T");
                        REQUIRE(client.run("INSERT INTO dirty_check VALUES (1)").back().body ==
                                "T");
                    }
                    client.send(bad.bytes);
                    if (bad.answered) {
                        const auto replies = client.read_until_closed(3s);
                        CHECK(client.closed());
                        REQUIRE(replies.size() == 1);
                        CHECK(replies[0].type == 'E');
                        CHECK(replies[0].field('S') == "FATAL");
                        CHECK_MESSAGE(replies[0].field('C') == "08P01", replies[0].field('M'));
                    }
                }
                // pool_size 1: the next client of solo gets the same server or a new one,
                // never one inside the failed client's transaction or message.
                check_clean("solo");
            }
        }
    }

    // The case has a database of its own, so that a server it left stuck would block no other.
    TEST_CASE("a client gone in the middle of a 200 kB message leaves no stuck or dirty server") {
        for (const bool in_transaction : {false, true}) {
            CAPTURE(in_transaction);
            {
                raw::Client client{setup().port};
                client.log_in_trusted("scram_user", "solo_long");
                if (in_transaction) {
                    REQUIRE(client.run("BEGIN").back().body == "T");
                    REQUIRE(client.run("INSERT INTO dirty_check VALUES (1)").back().body == "T");
                }
                client.send(half_of_a_long_query());
            }
            check_clean("solo_long");
        }
    }

    TEST_CASE("PostgreSQL restarts: new clients and clients idle across it carry on") {
        // Once under ThreadSanitizer (CI, 2026-11-22) both clients found their connection
        // closed after a fast restart, without a message; pgmarina's log says why next time.
        INFO("end of pgmarina's log:" << support::log_tail(setup().pgmarina, 60));
        for (const auto mode : {support::StopMode::fast, support::StopMode::immediate}) {
            CAPTURE(mode == support::StopMode::fast ? "fast" : "immediate");
            auto idle = connect();
            REQUIRE(idle.exec("SELECT 1").ok());
            setup().cluster.restart(0, mode);
            REQUIRE(setup().pgmarina.running());
            auto fresh = connect();
            REQUIRE_MESSAGE(fresh.ok(), fresh.error_message());
            const auto result = fresh.exec("SELECT 1");
            CHECK_MESSAGE(result.ok(), result.error_message());
            const auto carried = idle.exec("SELECT 2");
            CHECK_MESSAGE(carried.ok(), carried.error_message());
        }
        CHECK(setup().pgmarina.running());
    }
}
