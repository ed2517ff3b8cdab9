// Read/write routing through pgmarina over a real primary and two streaming replicas (issue 7):
// read-only transactions reach replicas, everything that may write reaches the primary, reads
// spread over the replicas, a client reads its own writes, and a lagging replica is skipped.
// Which server answered is told by inet_server_port(), which every node answers for itself.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;

std::string host_list(const PgCluster& cluster) {
    std::string hosts = "hosts = [";
    for (int node = 0; node < cluster.node_count(); ++node) {
        hosts += (node ? ", " : "") + std::string("\"127.0.0.1:") +
                 std::to_string(cluster.port(node)) + "\"";
    }
    return hosts + "]\n";
}

// `app` splits reads from writes; `app_ro` is its read-only alias; `app_rw` keeps everything on
// the primary; `app_lag` skips replicas more than 64 kB behind.
std::string config_for(const PgCluster& cluster, std::uint16_t port) {
    const std::string hosts = host_list(cluster);
    return "[pgmarina]\nlisten = [\"127.0.0.1:" + std::to_string(port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "workers = 2\n"
           "default_pool_size = 4\n"
           "query_wait_timeout = 10\n"
           "health_check_user = \"postgres\"\n"
           "health_check_password = \"" +
           cluster.password("postgres") +
           "\"\n"
           "health_check_interval = \"200ms\"\n"
           "[databases.app]\nrouting = \"read_write_split\"\n" +
           hosts + "[databases.app_ro]\ndbname = \"app\"\nrouting = \"replicas_only\"\n" + hosts +
           "[databases.app_rw]\ndbname = \"app\"\n" + hosts +
           "[databases.app_lag]\ndbname = \"app\"\nrouting = \"read_write_split\"\n"
           "max_replica_lag = \"64kB\"\n" +
           hosts + "[users.scram_user]\npassword = \"" + cluster.password("scram_user") + "\"\n";
}

struct Setup {
    PgCluster cluster{{.replicas = 2}};
    std::uint16_t port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, port), port};

    Setup() {
        auto primary = pq::Connection::connect(cluster.conninfo(0, "scram_user", "app"));
        REQUIRE(primary.ok());
        REQUIRE(primary
                    .exec("CREATE TABLE IF NOT EXISTS marks (id serial PRIMARY KEY, note text);"
                          "CREATE SEQUENCE IF NOT EXISTS s")
                    .ok());
    }

    pq::Connection connect(const std::string& database = "app") {
        auto conn = pq::Connection::connect(
            pgmarina.conninfo("scram_user", cluster.password("scram_user"), database));
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        return conn;
    }
};

Setup& setup() {
    static Setup instance;
    return instance;
}

std::string value(pq::Connection& conn, const std::string& sql) {
    const auto result = conn.exec(sql);
    REQUIRE_MESSAGE(result.ok(), sql << ": " << result.error_message());
    REQUIRE(result.ntuples() >= 1);
    return result.value(0, 0);
}

// The node whose port answered.
int node_of(pq::Connection& conn, const std::string& sql) {
    const int port = std::stoi(value(conn, sql));
    for (int node = 0; node < setup().cluster.node_count(); ++node) {
        if (setup().cluster.port(node) == port) return node;
    }
    FAIL("no node has port " << port);
    return -1;
}

template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!predicate()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(50ms);
    }
    return true;
}

} // namespace

TEST_SUITE("routing") {
    TEST_CASE("read-only transactions run on replicas, the others on the primary") {
        auto conn = setup().connect();
        // The watcher must have found the roles first; until then reads go to the primary.
        REQUIRE(eventually([&] { return value(conn, "SELECT pg_is_in_recovery()") == "t"; }));
        CHECK(value(conn, "SELECT pg_is_in_recovery()") == "t");
        REQUIRE(conn.exec("BEGIN READ ONLY").ok());
        CHECK(value(conn, "SELECT pg_is_in_recovery()") == "t");
        REQUIRE(conn.exec("COMMIT").ok());
        REQUIRE(conn.exec("START TRANSACTION READ ONLY").ok());
        CHECK(value(conn, "SELECT pg_is_in_recovery()") == "t");
        REQUIRE(conn.exec("COMMIT").ok());
        REQUIRE(conn.exec("BEGIN").ok());
        CHECK(value(conn, "SELECT pg_is_in_recovery()") == "f");
        REQUIRE(conn.exec("COMMIT").ok());
        CHECK(value(conn, "/* pgmarina:primary */ SELECT pg_is_in_recovery()") == "f");
    }

    TEST_CASE("what may write runs on the primary") {
        auto conn = setup().connect();
        CHECK(node_of(conn, "SELECT inet_server_port(), nextval('s')") == 0);
        CHECK(node_of(conn, "WITH added AS (INSERT INTO marks (note) VALUES ('cte') RETURNING id) "
                            "SELECT inet_server_port() FROM added") == 0);
        CHECK(node_of(conn, "SELECT inet_server_port() FROM marks FOR UPDATE LIMIT 1") == 0);
        CHECK(node_of(conn, "SELECT inet_server_port(), pg_advisory_xact_lock(1)") == 0);
        CHECK(node_of(conn, "SELECT inet_server_port(); SELECT inet_server_port()") == 0);
    }

    TEST_CASE("the extended protocol and prepared statements are routed too") {
        auto conn = setup().connect();
        REQUIRE(eventually([&] { return value(conn, "SELECT pg_is_in_recovery()") == "t"; }));
        PGconn* native = conn.native();
        PGresult* prepared =
            PQprepare(native, "where_am_i", "SELECT pg_is_in_recovery()", 0, nullptr);
        REQUIRE(PQresultStatus(prepared) == PGRES_COMMAND_OK);
        PQclear(prepared);
        for (int i = 0; i < 5; ++i) {
            PGresult* result =
                PQexecPrepared(native, "where_am_i", 0, nullptr, nullptr, nullptr, 0);
            REQUIRE(PQresultStatus(result) == PGRES_TUPLES_OK);
            CHECK(std::string(PQgetvalue(result, 0, 0)) == "t");
            PQclear(result);
        }
        PGresult* write = PQexecParams(native, "SELECT nextval('s') > 0, pg_is_in_recovery()", 0,
                                       nullptr, nullptr, nullptr, nullptr, 0);
        REQUIRE(PQresultStatus(write) == PGRES_TUPLES_OK);
        CHECK(std::string(PQgetvalue(write, 0, 1)) == "f");
        PQclear(write);
    }

    TEST_CASE("reads spread evenly over both replicas") {
        auto conn = setup().connect("app_ro");
        REQUIRE(eventually([&] { return node_of(conn, "SELECT inet_server_port()") != 0; }));
        std::map<int, int> reads;
        constexpr int total = 400;
        for (int i = 0; i < total; ++i)
            ++reads[node_of(conn, "SELECT inet_server_port()")];
        CHECK(reads[0] == 0);
        // Round robin over two replicas: each within 20% of an even share.
        CHECK(reads[1] >= total / 2 * 8 / 10);
        CHECK(reads[2] >= total / 2 * 8 / 10);
    }

    TEST_CASE("primary_only keeps reads on the primary") {
        auto conn = setup().connect("app_rw");
        for (int i = 0; i < 10; ++i)
            CHECK(node_of(conn, "SELECT inet_server_port()") == 0);
    }

    TEST_CASE("a client reads its own writes, even from a replica that lags") {
        auto& cluster = setup().cluster;
        auto delayed = pq::Connection::connect(cluster.conninfo(2));
        REQUIRE(delayed.ok());
        REQUIRE(delayed.exec("ALTER SYSTEM SET recovery_min_apply_delay = '2s'").ok());
        REQUIRE(delayed.exec("SELECT pg_reload_conf()").ok());

        auto conn = setup().connect();
        REQUIRE(eventually([&] { return value(conn, "SELECT pg_is_in_recovery()") == "t"; }));
        int seen = 0;
        constexpr int rounds = 1000;
        for (int i = 0; i < rounds; ++i) {
            const std::string id =
                value(conn, "INSERT INTO marks (note) VALUES ('mine') RETURNING id");
            const auto read = conn.exec("SELECT count(*) FROM marks WHERE id = " + id);
            REQUIRE(read.ok());
            if (read.value(0, 0) == "1") ++seen;
        }
        CHECK(seen == rounds);

        REQUIRE(delayed.exec("ALTER SYSTEM RESET recovery_min_apply_delay").ok());
        REQUIRE(delayed.exec("SELECT pg_reload_conf()").ok());
    }

    TEST_CASE("a replica further behind than max_replica_lag gets no reads") {
        auto& cluster = setup().cluster;
        auto delayed = pq::Connection::connect(cluster.conninfo(2));
        REQUIRE(delayed.ok());
        REQUIRE(delayed.exec("ALTER SYSTEM SET recovery_min_apply_delay = '1h'").ok());
        REQUIRE(delayed.exec("SELECT pg_reload_conf()").ok());
        auto primary = pq::Connection::connect(cluster.conninfo(0, "scram_user", "app"));
        REQUIRE(primary.ok());
        // The delay holds a replica at the next commit record it meets, so a first small
        // transaction stops node 2 before the megabyte of WAL of the second.
        REQUIRE(primary.exec("INSERT INTO marks (note) VALUES ('stop here')").ok());
        REQUIRE(primary
                    .exec("INSERT INTO marks (note) SELECT repeat('x', 1000) "
                          "FROM generate_series(1, 1000)")
                    .ok());

        auto conn = setup().connect("app_lag");
        const auto only_node1 = [&] {
            for (int i = 0; i < 20; ++i) {
                if (node_of(conn, "SELECT inet_server_port()") != 1) return false;
            }
            return true;
        };
        CHECK(eventually(only_node1));

        REQUIRE(delayed.exec("ALTER SYSTEM RESET recovery_min_apply_delay").ok());
        REQUIRE(delayed.exec("SELECT pg_reload_conf()").ok());
        // Back within the limit once it replays: both replicas serve again.
        CHECK(eventually([&] {
            for (int i = 0; i < 20; ++i) {
                if (node_of(conn, "SELECT inet_server_port()") == 2) return true;
            }
            return false;
        }));
    }
}
