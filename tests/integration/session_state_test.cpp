// Session state under transaction pooling: clients of a one-server pool share that server, yet
// each must only ever see its own settings. A client's startup parameters and the SETs that
// PostgreSQL reports (ParameterStatus) follow the client from transaction to transaction; any
// other SET must not reach the next client (pgmarina resets the server with DISCARD ALL).

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
using support::pq::Clock;
namespace pq = support::pq;

// One pool of one server, so that consecutive transactions of two clients run on the same
// PostgreSQL backend.
std::string config_for(const PgCluster& cluster, std::uint16_t port) {
    return "[pgmarina]\n"
           "listen = [\"127.0.0.1:" +
           std::to_string(port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "workers = 2\n"
           "default_pool_size = 1\n"
           "server_connect_timeout = 2\n"
           "[databases.app]\n"
           "hosts = [\"127.0.0.1:" +
           std::to_string(cluster.port(0)) +
           "\"]\n"
           "[users.scram_user]\n"
           "password = \"" +
           cluster.password("scram_user") + "\"\n";
}

// What a session that sets nothing sees, asked of PostgreSQL directly.
struct Defaults {
    std::string time_zone;
    std::string date_style;
    std::string interval_style;
    std::string search_path;
    std::string work_mem;
};

Defaults read_defaults(const PgCluster& cluster) {
    auto conn = pq::Connection::connect(cluster.conninfo(0, "scram_user", "app"));
    if (!conn.ok()) throw std::runtime_error("direct connection: " + conn.error_message());
    // Also a schema of the user's own, for a startup search_path to name.
    conn.exec("CREATE SCHEMA IF NOT EXISTS schema_a");
    const auto row = conn.exec("SELECT current_setting('TimeZone'), current_setting('DateStyle'), "
                               "current_setting('IntervalStyle'), current_setting('search_path'), "
                               "current_setting('work_mem')");
    return {row.value(0, 0), row.value(0, 1), row.value(0, 2), row.value(0, 3), row.value(0, 4)};
}

// One cluster and one pgmarina for every case: starting them is most of a case's cost.
struct Setup {
    PgCluster cluster{{.replicas = 0}};
    Defaults defaults = read_defaults(cluster);
    std::uint16_t port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, port), port};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

#define PGMARINA_LOG_ON_FAILURE()                                                                  \
    INFO("end of pgmarina's log:" << support::log_tail(setup().pgmarina))

// A client of `app`; `extra` adds conninfo keywords (application_name, options).
pq::Connection connect(const std::string& extra = "") {
    auto conn = pq::Connection::connect(
        setup().pgmarina.conninfo("scram_user", setup().cluster.password("scram_user"), "app") +
        " " + extra);
    REQUIRE_MESSAGE(conn.ok(), conn.error_message());
    return conn;
}

// The values one transaction sees, plus the backend it ran on.
struct Seen {
    std::string application_name;
    std::string time_zone;
    std::string backend;
};

Seen seen_by(pq::Connection& conn) {
    const auto row = conn.exec("SELECT current_setting('application_name'), "
                               "current_setting('TimeZone'), pg_backend_pid()");
    REQUIRE_MESSAGE(row.ok(), row.error_message());
    return {row.value(0, 0), row.value(0, 1), row.value(0, 2)};
}

std::string backend_of(pq::Connection& conn) {
    return conn.exec("SELECT pg_backend_pid()").value(0, 0);
}

} // namespace

TEST_SUITE("integration.session_state") {

    TEST_CASE("a SET of statement_timeout does not reach the next client of the server") {
        PGMARINA_LOG_ON_FAILURE();
        auto a = connect();
        auto b = connect();
        const std::string backend = backend_of(a);
        SUBCASE("outside a transaction") {
            REQUIRE(a.exec("SET statement_timeout = '1ms'").ok());
        }
        SUBCASE("inside a committed transaction") {
            REQUIRE(a.exec("BEGIN").ok());
            REQUIRE(a.exec("SET statement_timeout = '1ms'").ok());
            REQUIRE(a.exec("COMMIT").ok());
        }
        CHECK(backend_of(b) == backend); // the very server A set it on
        CHECK(b.exec("SHOW statement_timeout").value(0, 0) == "0");
        const auto slept = b.exec("SELECT pg_sleep(0.1)");
        CHECK_MESSAGE(slept.ok(), slept.error_message());
    }

    TEST_CASE("SETs of parameters PostgreSQL does not report do not reach the next client") {
        PGMARINA_LOG_ON_FAILURE();
        const Defaults& defaults = setup().defaults;
        REQUIRE(defaults.work_mem != "7MB");
        auto a = connect();
        auto b = connect();
        const std::string backend = backend_of(a);
        REQUIRE(a.exec("SET work_mem = '7MB'; SET search_path = schema_a").ok());
        CHECK(backend_of(b) == backend);
        const auto row = b.exec("SELECT current_setting('work_mem'), "
                                "current_setting('search_path'), current_schema()");
        CHECK(row.value(0, 0) == defaults.work_mem);
        CHECK(row.value(0, 1) == defaults.search_path);
        CHECK(row.value(0, 2) == "public");
    }

    TEST_CASE("startup application_name and TimeZone hold for two clients taking turns") {
        PGMARINA_LOG_ON_FAILURE();
        const std::string default_zone = setup().defaults.time_zone;
        REQUIRE(default_zone != "Asia/Tokyo");
        auto a = connect("application_name=a options='-c TimeZone=Asia/Tokyo'");
        auto b = connect("application_name=b");
        CHECK(std::string(PQparameterStatus(a.native(), "TimeZone")) == "Asia/Tokyo");
        CHECK(std::string(PQparameterStatus(b.native(), "TimeZone")) == default_zone);
        for (int turn = 0; turn < 20; ++turn) {
            CAPTURE(turn);
            const Seen by_a = seen_by(a);
            const Seen by_b = seen_by(b);
            CHECK(by_a.application_name == "a");
            CHECK(by_a.time_zone == "Asia/Tokyo");
            CHECK(by_b.application_name == "b");
            CHECK(by_b.time_zone == default_zone);
            CHECK(by_a.backend == by_b.backend);
        }
    }

    // The SETs pgmarina sends to bring a server in line are recorded by the ParameterStatus
    // replies, so they do not make the server dirty: it changes hands without DISCARD ALL, as
    // under PgBouncer (before, every pgbench transaction cost SET + DISCARD ALL). A session
    // advisory lock, which DISCARD ALL would release, shows whether the server was reset.
    TEST_CASE("taking turns with another application_name does not reset the server") {
        PGMARINA_LOG_ON_FAILURE();
        auto a = connect("application_name=a");
        auto b = connect("application_name=b");
        REQUIRE(a.exec("SELECT pg_advisory_lock(4242)").ok());
        const Seen by_b = seen_by(b);
        CHECK(by_b.application_name == "b");
        auto direct = pq::Connection::connect(setup().cluster.conninfo(0, "scram_user", "app"));
        REQUIRE_MESSAGE(direct.ok(), direct.error_message());
        const auto held = direct.exec("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND "
                                      "objid = 4242 AND granted");
        REQUIRE(held.ntuples() == 1);
        CHECK(held.value(0, 0) == by_b.backend);
        CHECK(seen_by(a).application_name == "a");
        CHECK(a.exec("SELECT pg_advisory_unlock(4242)").value(0, 0) == "t");
    }

    TEST_CASE("a client's SET TimeZone stays with it; the other client keeps its own") {
        PGMARINA_LOG_ON_FAILURE();
        const std::string default_zone = setup().defaults.time_zone;
        REQUIRE(default_zone != "Europe/Paris");
        auto a = connect("application_name=a");
        auto b = connect("application_name=b");
        REQUIRE(a.exec("SET TimeZone = 'Europe/Paris'").ok());
        CHECK(std::string(PQparameterStatus(a.native(), "TimeZone")) == "Europe/Paris");
        for (int turn = 0; turn < 5; ++turn) {
            CAPTURE(turn);
            const Seen by_b = seen_by(b);
            const Seen by_a = seen_by(a);
            CHECK(by_a.time_zone == "Europe/Paris");
            CHECK(by_a.application_name == "a");
            CHECK(by_b.time_zone == default_zone);
            CHECK(by_b.application_name == "b");
            CHECK(by_a.backend == by_b.backend);
        }
        // A transaction that changes it again, then rolls back: PostgreSQL reports the value
        // going back, and so A keeps Europe/Paris.
        REQUIRE(a.exec("BEGIN").ok());
        REQUIRE(a.exec("SET TimeZone = 'America/Chicago'").ok());
        REQUIRE(a.exec("ROLLBACK").ok());
        CHECK(std::string(PQparameterStatus(a.native(), "TimeZone")) == "Europe/Paris");
        CHECK(seen_by(b).time_zone == default_zone);
        CHECK(seen_by(a).time_zone == "Europe/Paris");
    }

    TEST_CASE("DateStyle, IntervalStyle and search_path from startup options apply to each of "
              "the client's transactions") {
        PGMARINA_LOG_ON_FAILURE();
        const Defaults& defaults = setup().defaults;
        REQUIRE(defaults.date_style != "German, DMY");
        REQUIRE(defaults.interval_style != "sql_standard");
        auto a = connect("options='-c DateStyle=German -c IntervalStyle=sql_standard "
                         "-c search_path=schema_a,public'");
        auto b = connect();
        const std::string sql = "SELECT current_setting('DateStyle'), "
                                "current_setting('IntervalStyle'), current_setting('search_path'), "
                                "current_schema(), '2024-03-01'::date::text, pg_backend_pid()";
        for (int turn = 0; turn < 5; ++turn) {
            CAPTURE(turn);
            const auto by_a = a.exec(sql);
            const auto by_b = b.exec(sql);
            REQUIRE_MESSAGE(by_a.ok(), by_a.error_message());
            REQUIRE_MESSAGE(by_b.ok(), by_b.error_message());
            CHECK(by_a.value(0, 0) == "German, DMY");
            CHECK(by_a.value(0, 1) == "sql_standard");
            CHECK(by_a.value(0, 2) == "schema_a, public");
            CHECK(by_a.value(0, 3) == "schema_a");
            CHECK(by_a.value(0, 4) == "01.03.2024");
            CHECK(by_b.value(0, 0) == defaults.date_style);
            CHECK(by_b.value(0, 1) == defaults.interval_style);
            CHECK(by_b.value(0, 2) == defaults.search_path);
            CHECK(by_b.value(0, 3) == "public");
            CHECK(by_a.value(0, 5) == by_b.value(0, 5));
        }
    }

    TEST_CASE("the settings pgmarina restores come before a client's pipelined extended queries") {
        PGMARINA_LOG_ON_FAILURE();
        auto a = connect("application_name=a options='-c TimeZone=Asia/Tokyo'");
        auto b = connect("application_name=b");
        PGconn* raw = a.native();
        for (int turn = 0; turn < 3; ++turn) {
            CAPTURE(turn);
            // B's transaction leaves the server with B's settings: A's first message finds it so.
            CHECK(seen_by(b).application_name == "b");
            REQUIRE(PQenterPipelineMode(raw) == 1);
            for (const char* sql : {"SELECT current_setting('TimeZone')",
                                    "SELECT current_setting('application_name')"}) {
                REQUIRE(PQsendQueryParams(raw, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1);
                REQUIRE(PQpipelineSync(raw) == 1);
            }
            REQUIRE(PQflush(raw) == 0);
            const auto deadline = Clock::now() + 10s;
            std::vector<std::string> seen;
            for (int i = 0; i < 6; ++i)
                seen.push_back(pq::describe(pq::next_result(raw, deadline)));
            const std::vector<std::string> expected = {
                "PGRES_TUPLES_OK Asia/Tokyo", "(no result)", "PGRES_PIPELINE_SYNC",
                "PGRES_TUPLES_OK a",          "(no result)", "PGRES_PIPELINE_SYNC"};
            CHECK(seen == expected);
            REQUIRE(PQexitPipelineMode(raw) == 1);
        }
    }

    TEST_CASE("concurrent clients of one server each see only their own application_name") {
        PGMARINA_LOG_ON_FAILURE();
        constexpr int clients = 4;
        constexpr int transactions = 25;
        std::vector<pq::Connection> conns;
        for (int i = 0; i < clients; ++i)
            conns.push_back(connect("application_name=client" + std::to_string(i)));
        // Per client: the values it saw that were not its own, and the backends it ran on.
        std::vector<std::vector<std::string>> wrong(clients);
        std::vector<std::vector<std::string>> backends(clients);
        std::vector<std::thread> threads;
        for (int i = 0; i < clients; ++i) {
            threads.emplace_back([i, &conns, &wrong, &backends] {
                const std::string own = "client" + std::to_string(i);
                for (int t = 0; t < transactions; ++t) {
                    const auto row = conns[i].exec(
                        "SELECT current_setting('application_name'), pg_backend_pid()");
                    const std::string seen = row.ok() ? row.value(0, 0) : row.error_message();
                    if (seen != own) wrong[i].push_back(seen);
                    if (row.ok()) backends[i].push_back(row.value(0, 1));
                }
            });
        }
        for (auto& thread : threads)
            thread.join();
        for (int i = 0; i < clients; ++i) {
            CAPTURE(i);
            CHECK(wrong[i] == std::vector<std::string>{});
            REQUIRE(backends[i].size() == transactions);
            // One pool of one server: every transaction of every client ran on it.
            CHECK(backends[i].front() == backends[0].front());
            CHECK(backends[i].back() == backends[0].front());
        }
    }

    TEST_CASE("a client that leaves inside a transaction leaves nothing to the next client") {
        PGMARINA_LOG_ON_FAILURE();
        REQUIRE(connect().exec("CREATE TABLE left_behind (v int)").ok());
        {
            auto a = connect();
            REQUIRE(a.exec("BEGIN").ok());
            REQUIRE(a.exec("INSERT INTO left_behind VALUES (1)").ok());
            REQUIRE(a.exec("SET LOCAL statement_timeout = '1ms'").ok());
        } // Terminate in the middle of the transaction
        auto b = connect();
        CHECK(b.exec("SELECT count(*) FROM left_behind").value(0, 0) == "0");
        // Its own transaction, not the rest of A's.
        CHECK(b.exec("SELECT now() = statement_timestamp()").value(0, 0) == "t");
        CHECK(PQtransactionStatus(b.native()) == PQTRANS_IDLE);
        const auto slept = b.exec("SELECT pg_sleep(0.05)");
        CHECK_MESSAGE(slept.ok(), slept.error_message());
    }

    TEST_CASE("a client that leaves while its query runs does not hold up the next client") {
        PGMARINA_LOG_ON_FAILURE();
        {
            auto a = connect();
            REQUIRE(PQsendQuery(a.native(), "SELECT pg_sleep(5)") == 1);
            std::this_thread::sleep_for(100ms);
        } // gone while the one server of the pool is busy for 5 s
        auto b = connect();
        const auto started = Clock::now();
        const auto next = b.exec("SELECT 'next'", 4s);
        CHECK_MESSAGE(next.ok(), next.error_message());
        CHECK(next.value(0, 0) == "next");
        CHECK(Clock::now() - started < 2s);
    }
}
