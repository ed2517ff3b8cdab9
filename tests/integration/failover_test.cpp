// Failover through pgmarina over real PostgreSQL (issue 8): when the primary stops and a replica
// is promoted, writes follow the new primary on the same client connections, nothing
// acknowledged is lost, and with two hosts claiming to be primary writes go only where fencing
// allows.

#include "tests/support/command.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
using support::StopMode;
namespace pq = support::pq;
using Clock = std::chrono::steady_clock;

std::string config_for(const PgCluster& cluster, std::uint16_t port, int query_wait_timeout) {
    std::string hosts = "hosts = [";
    for (int node = 0; node < cluster.node_count(); ++node) {
        hosts += (node ? ", " : "") + std::string("\"127.0.0.1:") +
                 std::to_string(cluster.port(node)) + "\"";
    }
    hosts += "]\n";
    return "[pgmarina]\nlisten = [\"127.0.0.1:" + std::to_string(port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "workers = 2\n"
           "default_pool_size = 4\n"
           "server_connect_timeout = 1\n"
           "query_wait_timeout = " +
           std::to_string(query_wait_timeout) +
           "\n"
           "health_check_user = \"postgres\"\n"
           "health_check_password = \"" +
           cluster.password("postgres") +
           "\"\n"
           "health_check_interval = \"100ms\"\n"
           "health_check_timeout = \"500ms\"\n"
           "admin_users = [\"postgres\"]\n"
           "[databases.app]\nrouting = \"read_write_split\"\n" +
           hosts + "[users.scram_user]\npassword = \"" + cluster.password("scram_user") +
           "\"\n[users.postgres]\npassword = \"" + cluster.password("postgres") + "\"\n";
}

pq::Connection connect_ok(const std::string& conninfo) {
    auto conn = pq::Connection::connect(conninfo);
    REQUIRE_MESSAGE(conn.ok(), conninfo << ": " << conn.error_message());
    return conn;
}

void exec_ok(pq::Connection& conn, const std::string& sql) {
    const auto result = conn.exec(sql);
    REQUIRE_MESSAGE(result.ok(), sql << ": " << result.error_message());
}

template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 15s) {
    const auto deadline = Clock::now() + timeout;
    while (!predicate()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(50ms);
    }
    return true;
}

// Inserts one row every 10 ms through pgmarina on one connection, recording what happened.
class Writer {
public:
    explicit Writer(std::string conninfo)
        : conn_(connect_ok(conninfo)), thread_([this] { run(); }) {}
    ~Writer() { stop(); }

    void stop() {
        running_ = false;
        if (thread_.joinable()) thread_.join();
    }

    struct Attempt {
        Clock::time_point started;
        Clock::time_point ended;
        bool ok = false;
        std::string id;    // the row's id when ok
        std::string error; // when not
    };
    std::vector<Attempt> attempts() {
        std::lock_guard lock{mutex_};
        return attempts_;
    }

private:
    void run() {
        while (running_) {
            Attempt attempt;
            attempt.started = Clock::now();
            const auto result =
                conn_.exec("INSERT INTO beats (at) VALUES (clock_timestamp()) RETURNING id", 30s);
            attempt.ended = Clock::now();
            attempt.ok = result.ok();
            if (attempt.ok) {
                attempt.id = result.value(0, 0);
            } else {
                attempt.error = result.error_message();
            }
            {
                std::lock_guard lock{mutex_};
                attempts_.push_back(attempt);
            }
            std::this_thread::sleep_for(10ms);
        }
    }

    pq::Connection conn_;
    std::atomic<bool> running_{true};
    std::mutex mutex_;
    std::vector<Attempt> attempts_;
    std::thread thread_;
};

std::string node_answering(pq::Connection& conn, const PgCluster& cluster) {
    const auto result = conn.exec("SELECT inet_server_port(), nextval('s')");
    if (!result.ok()) return "error: " + result.error_message();
    const int port = std::stoi(result.value(0, 0));
    for (int node = 0; node < cluster.node_count(); ++node) {
        if (cluster.port(node) == port) return "node" + std::to_string(node);
    }
    return "unknown port";
}

} // namespace

TEST_SUITE("failover") {
    TEST_CASE("writes follow a promoted replica; nothing acknowledged is lost") {
        PgCluster cluster{{.replicas = 2}};
        {
            auto primary = connect_ok(cluster.conninfo(0, "postgres", "app"));
            exec_ok(primary, "CREATE TABLE beats (id serial PRIMARY KEY, at timestamptz)");
            exec_ok(primary, "CREATE SEQUENCE s");
            exec_ok(primary, "GRANT ALL ON beats, beats_id_seq, s TO scram_user");
            // Every acknowledged commit is on node1 before the client hears of it.
            exec_ok(primary, "ALTER SYSTEM SET synchronous_standby_names = 'node1'");
            exec_ok(primary, "SELECT pg_reload_conf()");
            auto node1 = connect_ok(cluster.conninfo(1));
            REQUIRE(eventually([&] {
                return primary
                           .exec("SELECT 1 FROM pg_stat_replication WHERE application_name = "
                                 "'node1' AND sync_state = 'sync'")
                           .ntuples() == 1;
            }));
        }
        const std::uint16_t port = PgmarinaProcess::free_port();
        PgmarinaProcess pgmarina{config_for(cluster, port, 60), port};
        Writer writer{pgmarina.conninfo("scram_user", cluster.password("scram_user"), "app")};
        // A client in the middle of a transaction on the primary when it stops.
        auto inside =
            connect_ok(pgmarina.conninfo("scram_user", cluster.password("scram_user"), "app"));
        exec_ok(inside, "BEGIN");
        exec_ok(inside, "INSERT INTO beats (at) VALUES (clock_timestamp())");

        std::this_thread::sleep_for(1s);
        cluster.stop(0, StopMode::immediate);
        const auto stopped = Clock::now(); // node0 is gone: writes started now must wait
        std::this_thread::sleep_for(500ms);
        // pg-cluster's promote returns some time after node1 accepts writes: the clock starts
        // when the promotion is asked for.
        const auto promoted = Clock::now();
        cluster.promote(1);
        std::this_thread::sleep_for(3s);
        writer.stop();

        // Its transaction is lost with the server, its connection is not: it is told at its
        // next statement, its block stays failed until it ends it, and its next transaction
        // runs on the new primary.
        const auto lost = inside.exec("INSERT INTO beats (at) VALUES (clock_timestamp())");
        CHECK_FALSE(lost.ok());
        CHECK(lost.sqlstate() == "08006");
        const auto refused = inside.exec("SELECT 1");
        CHECK(refused.sqlstate() == "25P02");
        const auto commit = inside.exec("COMMIT");
        CHECK(commit.sqlstate() == "08006"); // nothing of the block was committed
        CHECK(PQtransactionStatus(inside.native()) == PQTRANS_IDLE);
        CHECK(node_answering(inside, cluster) == "node1");

        const auto attempts = writer.attempts();
        std::set<std::string> acknowledged;
        std::optional<Clock::time_point> first_write_after;
        for (const auto& attempt : attempts) {
            if (attempt.ok) acknowledged.insert(attempt.id);
            // A transaction that started after the stop waits for the new primary.
            if (attempt.started > stopped) {
                CHECK_MESSAGE(attempt.ok, attempt.error);
                if (attempt.ok && !first_write_after) first_write_after = attempt.ended;
            }
        }
        REQUIRE(first_write_after.has_value());
        const auto resumed =
            std::chrono::duration_cast<std::chrono::milliseconds>(*first_write_after - promoted);
        MESSAGE("first write " << resumed.count() << " ms after the promotion");
        // No write succeeds between the stop and the promotion: there is no primary then.
        CHECK(*first_write_after > promoted);
        CHECK(resumed < 2s);
        CHECK(acknowledged.size() > 200);

        auto new_primary = connect_ok(cluster.conninfo(1, "postgres", "app"));
        const auto stored = new_primary.exec("SELECT id FROM beats");
        REQUIRE(stored.ok());
        std::set<std::string> on_new_primary;
        for (int row = 0; row < stored.ntuples(); ++row)
            on_new_primary.insert(stored.value(row, 0));
        for (const auto& id : acknowledged)
            CHECK_MESSAGE(on_new_primary.count(id) == 1, "acknowledged row " << id << " lost");
    }

    TEST_CASE("fencing: the higher timeline gets the writes; a tie gets none") {
        PgCluster cluster{{.replicas = 2}};
        {
            auto primary = connect_ok(cluster.conninfo(0, "postgres", "app"));
            exec_ok(primary, "CREATE SEQUENCE s; GRANT ALL ON s TO scram_user");
        }
        const std::uint16_t port = PgmarinaProcess::free_port();
        PgmarinaProcess pgmarina{config_for(cluster, port, 2), port};
        auto conn =
            connect_ok(pgmarina.conninfo("scram_user", cluster.password("scram_user"), "app"));
        CHECK(node_answering(conn, cluster) == "node0");

        // node1 is promoted (timeline 2) while node0 is down, then node0 comes back as the
        // primary of timeline 1: two hosts claim the primary.
        cluster.stop(0, StopMode::immediate);
        cluster.promote(1);
        cluster.start(0);
        auto node0 = connect_ok(cluster.conninfo(0));
        REQUIRE(node0.exec("SELECT pg_is_in_recovery()").value(0, 0) == "f");
        CHECK(eventually([&] { return node_answering(conn, cluster) == "node1"; }));
        for (int i = 0; i < 20; ++i)
            CHECK(node_answering(conn, cluster) == "node1");

        // node2 also promoted from the same history: node1 and node2 both on timeline 2.
        cluster.promote(2);
        auto fresh =
            connect_ok(pgmarina.conninfo("scram_user", cluster.password("scram_user"), "app"));
        CHECK(eventually([&] { return node_answering(fresh, cluster).starts_with("error"); }));
    }

    TEST_CASE("switchover and back under 50 pgbench clients with PAUSE and RESUME: none fails") {
        PgCluster cluster{{.replicas = 2}};
        const std::uint16_t port = PgmarinaProcess::free_port();
        PgmarinaProcess pgmarina{config_for(cluster, port, 60), port};
        const auto pgbench = [&](int to_port, const std::string& args) {
            return "PGPASSWORD=" + cluster.password("scram_user") + " pgbench -h 127.0.0.1 -p " +
                   std::to_string(to_port) + " -U scram_user " + args + " app 2>&1";
        };
        const auto init = support::run_command(pgbench(cluster.port(0), "-i -s 1 -q"));
        REQUIRE_MESSAGE(init.status == 0, init.output);
        auto load = std::async(std::launch::async, [&] {
            return support::run_command(pgbench(port, "-n -c 50 -j 2 -T 14"));
        });
        auto console =
            connect_ok(pgmarina.conninfo("postgres", cluster.password("postgres"), "pgbouncer"));
        // A planned switchover, as operators run it with PgBouncer: PAUSE lets running
        // transactions finish and holds new ones; the promotion happens; RESUME sends them on.
        const auto switch_to = [&](int from, int to) {
            exec_ok(console, "PAUSE app");
            cluster.stop(from, StopMode::fast);
            cluster.promote(to);
            exec_ok(console, "RESUME app");
        };
        std::this_thread::sleep_for(2s);
        switch_to(0, 1);
        std::this_thread::sleep_for(2s);
        cluster.follow(0, 1); // the old primary comes back as a standby of the new one
        switch_to(1, 0);

        const auto run = load.get();
        MESSAGE(run.output);
        CHECK(run.status == 0);
        CHECK(run.output.find("number of failed transactions: 0 ") != std::string::npos);
        CHECK(run.output.find("aborted") == std::string::npos);
        auto primary = connect_ok(cluster.conninfo(0, "postgres", "app"));
        CHECK(primary.exec("SELECT pg_is_in_recovery()").value(0, 0) == "f");
    }
}
