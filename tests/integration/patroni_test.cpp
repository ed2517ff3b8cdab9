// Failover with a real Patroni cluster behind pgmarina (issue 8): the leader's PostgreSQL is
// killed, Patroni promotes a replica, and pgmarina, which knows nothing of Patroni (its watcher
// probes every host for recovery and timeline), sends writes to the new leader, on new client
// connections and on one opened before. No write is acknowledged by a node that is not the
// leader. tests/fixture/patroni-cluster runs the cluster.

#include "tests/support/patroni_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"
#include "tests/support/unavailable.hpp"

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using support::PatroniCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;
using Clock = std::chrono::steady_clock;

std::string config_for(const PatroniCluster& cluster, std::uint16_t port) {
    std::string hosts = "hosts = [";
    for (int node = 0; node < PatroniCluster::node_count; ++node) {
        hosts += (node ? ", \"" : "\"") + cluster.host() + ":" +
                 std::to_string(cluster.port(node)) + "\"";
    }
    hosts += "]\n";
    return "[pgmarina]\nlisten = [\"127.0.0.1:" + std::to_string(port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "workers = 2\n"
           "default_pool_size = 4\n"
           "server_connect_timeout = 1\n"
           // Writes wait for a primary while there is none; Patroni elects one in seconds.
           "query_wait_timeout = 20\n"
           "health_check_user = \"postgres\"\n"
           "health_check_password = \"" +
           cluster.password("postgres") +
           "\"\n"
           "health_check_interval = \"200ms\"\n"
           "health_check_timeout = \"1s\"\n"
           "[databases.app]\nrouting = \"primary_only\"\n" +
           hosts + "[users.scram_user]\npassword = \"" + cluster.password("scram_user") + "\"\n";
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

// Polls predicate every 50 ms until it holds (true) or deadline passes (false).
template <class Predicate>
bool holds_by(Clock::time_point deadline, Predicate predicate) {
    while (!predicate()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(50ms);
    }
    return true;
}

// One INSERT through pgmarina, and which PostgreSQL acknowledged it.
struct Write {
    Clock::time_point started;
    Clock::time_point ended;
    std::optional<int> port; // inet_server_port() of the node that committed it
    std::string error;       // when it failed
    std::string sqlstate;    // of the failure, when the server or pgmarina gave one
};

Write write_row(pq::Connection& conn) {
    Write write;
    write.started = Clock::now();
    const auto result =
        conn.exec("INSERT INTO beats (port) VALUES (inet_server_port()) RETURNING port", 30s);
    write.ended = Clock::now();
    if (result.ok()) {
        write.port = std::stoi(result.value(0, 0));
    } else {
        write.error = result.error_message();
        write.sqlstate = result.sqlstate();
    }
    return write;
}

// A write on a fresh connection through pgmarina.
Write write_on_new_connection(const std::string& conninfo) {
    auto conn = pq::Connection::connect(conninfo);
    if (!conn.ok()) {
        Write failed;
        failed.started = failed.ended = Clock::now();
        failed.error = conn.error_message();
        failed.sqlstate = conn.sqlstate();
        return failed;
    }
    return write_row(conn);
}

// Writes one row every 20 ms on one connection, opened before anything fails, recording every
// attempt.
class Writer {
public:
    explicit Writer(const std::string& conninfo)
        : conn_(connect_ok(conninfo)), thread_([this] { run(); }) {}
    ~Writer() { stop(); }

    void stop() {
        running_ = false;
        if (thread_.joinable()) thread_.join();
    }

    [[nodiscard]] std::vector<Write> writes() {
        std::lock_guard lock{mutex_};
        return writes_;
    }

    // True once a write acknowledged by the PostgreSQL on port has started after `after`.
    [[nodiscard]] bool acknowledged_on(int port, Clock::time_point after) {
        std::lock_guard lock{mutex_};
        for (const Write& write : writes_) {
            if (write.started > after && write.port == port) return true;
        }
        return false;
    }

private:
    void run() {
        while (running_) {
            Write write = write_row(conn_);
            {
                std::lock_guard lock{mutex_};
                writes_.push_back(std::move(write));
            }
            std::this_thread::sleep_for(20ms);
        }
    }

    pq::Connection conn_;
    std::atomic<bool> running_{true};
    std::mutex mutex_;
    std::vector<Write> writes_;
    std::thread thread_;
};

long long ms_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

} // namespace

TEST_SUITE("patroni") {
    TEST_CASE("the leader's PostgreSQL is killed: writes follow the leader Patroni promotes") {
        PatroniCluster cluster;
        const std::optional<int> first_leader = cluster.leader();
        REQUIRE_MESSAGE(first_leader.has_value(), cluster.status());
        const int old_leader = *first_leader;
        const int old_port = cluster.port(old_leader);
        {
            auto owner = connect_ok(cluster.conninfo(old_leader, "scram_user", "app"));
            exec_ok(owner, "CREATE TABLE beats (id serial PRIMARY KEY, port int NOT NULL)");
            // Whichever replica Patroni promotes must have the table.
            auto superuser = connect_ok(cluster.conninfo(old_leader));
            const std::string lsn = superuser.exec("SELECT pg_current_wal_lsn()").value(0, 0);
            REQUIRE(holds_by(Clock::now() + 30s, [&] {
                return superuser
                           .exec("SELECT count(*) FROM pg_stat_replication WHERE replay_lsn >= '" +
                                 lsn + "'")
                           .value(0, 0) == "2";
            }));
        }

        const std::uint16_t port = PgmarinaProcess::free_port();
        PgmarinaProcess pgmarina{config_for(cluster, port), port};
        INFO("pgmarina's log:\n" << support::log_tail(pgmarina, 40));
        const std::string through_pgmarina =
            pgmarina.conninfo("scram_user", cluster.password("scram_user"), "app");
        const Write before = write_on_new_connection(through_pgmarina);
        REQUIRE_MESSAGE(before.port == old_port, before.error);
        Writer kept{through_pgmarina};
        REQUIRE(holds_by(Clock::now() + 20s,
                         [&] { return kept.acknowledged_on(old_port, before.ended); }));

        // "Kill the leader's postgres", literally: SIGKILL to its postmaster, with Patroni left
        // running. With Patroni's default primary_start_timeout (300 s) it would restart
        // PostgreSQL in place and the leader would not change; the fixture sets it to 0, so
        // Patroni releases the leader key at once and a replica is promoted, the failover a
        // crashed PostgreSQL gets in a cluster tuned for it. (Killing Patroni too would only
        // add the wait for the key's ttl.) The old node's PostgreSQL then comes back as a
        // replica, which must get no writes either.
        cluster.kill_postgres(old_leader);
        const auto killed = Clock::now();
        const auto deadline = killed + cluster.ttl() + 15s;

        std::optional<int> new_leader;
        const auto leader_changed = [&] {
            new_leader = cluster.leader();
            return new_leader && *new_leader != old_leader;
        };
        REQUIRE_MESSAGE(holds_by(deadline, leader_changed), "no new leader:\n" << cluster.status());
        const auto elected = Clock::now();
        const int new_port = cluster.port(*new_leader);
        MESSAGE("node" << old_leader << " killed; Patroni's leader is node" << *new_leader
                       << " after " << ms_between(killed, elected) << " ms");

        // Fresh connections: every write that succeeds lands on the new leader. The first may
        // wait in pgmarina until its watcher sees the promotion.
        std::vector<Write> fresh;
        const auto fresh_write_on_new_leader = [&] {
            fresh.push_back(write_on_new_connection(through_pgmarina));
            return fresh.back().port == new_port;
        };
        const bool fresh_resumed = holds_by(deadline, fresh_write_on_new_leader);
        CHECK_MESSAGE(fresh_resumed, "no write through pgmarina reached node"
                                         << *new_leader << ": " << fresh.back().error);
        if (fresh_resumed) {
            MESSAGE("first write on a new connection acknowledged by node"
                    << *new_leader << " " << ms_between(killed, fresh.back().ended)
                    << " ms after the kill");
            // holds_by only looks at the clock between writes, and a write may wait in pgmarina.
            CHECK(fresh.back().ended <= deadline);
        }
        const auto kept_write_on_new_leader = [&] {
            return kept.acknowledged_on(new_port, elected);
        };
        CHECK_MESSAGE(holds_by(deadline, kept_write_on_new_leader),
                      "the connection opened before the kill never wrote on node" << *new_leader);
        for (const Write& write : kept.writes()) {
            if (write.port == new_port) {
                MESSAGE("first write on the kept connection acknowledged by node"
                        << *new_leader << " " << ms_between(killed, write.ended)
                        << " ms after the kill");
                CHECK(write.ended <= deadline);
                break;
            }
        }

        // The old leader's PostgreSQL comes back, in recovery: still no writes for it.
        auto old_node = pq::Connection::connect(cluster.conninfo(old_leader));
        const auto old_node_in_recovery = [&] {
            if (!old_node.ok()) old_node = pq::Connection::connect(cluster.conninfo(old_leader));
            const auto in_recovery = old_node.exec("SELECT pg_is_in_recovery()");
            return in_recovery.ok() && in_recovery.value(0, 0) == "t";
        };
        CHECK_MESSAGE(holds_by(Clock::now() + 30s, old_node_in_recovery),
                      "node" << old_leader << " did not come back as a replica:\n"
                             << cluster.status());
        const auto old_node_back = Clock::now();
        std::vector<Write> after_return;
        for (int i = 0; i < 5; ++i) {
            after_return.push_back(write_on_new_connection(through_pgmarina));
        }
        CHECK(holds_by(Clock::now() + 10s,
                       [&] { return kept.acknowledged_on(new_port, old_node_back); }));
        kept.stop();
        CHECK(cluster.leader() == new_leader);

        // Every acknowledged write came from the leader of its time: the old leader before
        // the kill (none of its writes after Patroni named the new one), the new leader after.
        // The only failure allowed is the 08006 of a transaction that was on the killed server.
        int errors = 0;
        const auto check_write = [&](const Write& write, const char* connection) {
            if (!write.port) {
                ++errors;
                CHECK_MESSAGE(write.sqlstate == "08006", connection << " write failed with "
                                                                    << write.sqlstate << ": "
                                                                    << write.error);
                return;
            }
            CHECK_MESSAGE((*write.port == old_port || *write.port == new_port),
                          connection << " write acknowledged by port " << *write.port
                                     << ", neither the old leader nor the new one");
            if (write.started > elected) {
                CHECK_MESSAGE(*write.port == new_port,
                              connection << " write acknowledged by port " << *write.port << ", "
                                         << ms_between(elected, write.started)
                                         << " ms after the new leader was elected");
            }
        };
        bool on_new_leader = false;
        for (const Write& write : kept.writes()) {
            check_write(write, "a kept connection's");
            on_new_leader = on_new_leader || write.port == new_port;
            CHECK_MESSAGE(!(on_new_leader && write.port == old_port),
                          "the old leader acknowledged a write after the new leader did");
        }
        for (const Write& write : fresh) {
            check_write(write, "a new connection's");
        }
        for (const Write& write : after_return) {
            CHECK_MESSAGE(write.port == new_port, write.error);
        }
        MESSAGE(kept.writes().size()
                << " writes on the kept connection, " << fresh.size() + after_return.size() + 1
                << " on new ones, " << errors << " failed with 08006");
    }
}

int main(int argc, char** argv) {
    if (const auto reason = PatroniCluster::unavailable_reason()) {
        return support::exit_code_when_unavailable(
            "the Patroni test needs patroni, etcd-server and PostgreSQL 15", *reason);
    }
    doctest::Context context(argc, argv);
    return context.run();
}
