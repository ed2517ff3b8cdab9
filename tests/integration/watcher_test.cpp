// routing::Watcher against real PostgreSQL: roles, timelines and WAL positions of a primary and
// its replicas, a non-superuser with pg_monitor, hosts that stop, fail over, hang or are
// reconfigured away. The watcher runs in this process on its own io_context thread.

#include "routing/watcher.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/pq.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using routing::HostState;
using routing::Role;
using routing::WatchedHost;
using routing::WatcherSettings;
using support::PgCluster;
using support::StopMode;
namespace asio = boost::asio;
namespace pq = support::pq;

// The watcher probes asynchronously, so tests poll with a deadline rather than sleep and hope.
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!predicate()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

WatchedHost node_host(const PgCluster& cluster, int node) {
    const auto port = static_cast<std::uint16_t>(cluster.port(node));
    return {
        .name = cluster.host() + ":" + std::to_string(port), .host = cluster.host(), .port = port};
}

std::vector<WatchedHost> node_hosts(const PgCluster& cluster, std::vector<int> nodes) {
    std::vector<WatchedHost> hosts;
    for (const int node : nodes)
        hosts.push_back(node_host(cluster, node));
    return hosts;
}

WatcherSettings superuser_settings(const PgCluster& cluster) {
    WatcherSettings settings;
    settings.interval = 200ms;
    settings.timeout = 1000ms;
    settings.user = "postgres";
    settings.password = cluster.password("postgres");
    return settings;
}

pq::Connection connect_ok(const std::string& conninfo) {
    pq::Connection conn = pq::Connection::connect(conninfo);
    REQUIRE_MESSAGE(conn.ok(), conninfo << ": " << conn.error_message());
    return conn;
}

std::string query_value(pq::Connection& conn, const std::string& sql) {
    const pq::Result result = conn.exec(sql);
    REQUIRE_MESSAGE(result.ok(), sql << ": " << result.error_message());
    REQUIRE(result.ntuples() == 1);
    return result.value(0, 0);
}

routing::Lsn current_lsn(pq::Connection& primary) {
    const auto lsn = routing::parse_lsn(query_value(primary, "SELECT pg_current_wal_lsn()"));
    REQUIRE(lsn.has_value());
    return *lsn;
}

// The pid of the watcher's connection to a node, "" when it has none: whether a connection is
// kept between probes, and closed when the host is no longer watched.
std::string watcher_backend(const PgCluster& cluster, int node) {
    pq::Connection conn = connect_ok(cluster.conninfo(node));
    return query_value(conn, "SELECT coalesce(string_agg(pid::text, ','), '') "
                             "FROM pg_stat_activity WHERE application_name = 'pgmarina-watcher'");
}

// A Watcher run by an io_context on its own thread, as the proxy would run it, keeping the
// states of its last report. Destroying it cancels run() and checks that run() returns.
class WatcherRun {
public:
    WatcherRun(WatcherSettings settings, std::vector<WatchedHost> hosts)
        : watcher_(io_.get_executor(), std::move(settings), std::move(hosts),
                   [this](const std::vector<HostState>& states) {
                       std::lock_guard lock{mutex_};
                       states_ = states;
                   }) {
        asio::co_spawn(io_, watcher_.run(),
                       asio::bind_cancellation_slot(stop_.slot(), [this](std::exception_ptr error) {
                           run_error_ = error;
                           run_ended_ = true;
                       }));
        thread_ = std::thread{[this] { io_.run(); }};
    }
    WatcherRun(const WatcherRun&) = delete;
    WatcherRun& operator=(const WatcherRun&) = delete;

    ~WatcherRun() {
        asio::post(io_, [this] { stop_.emit(asio::cancellation_type::terminal); });
        CHECK_MESSAGE(eventually([this] { return run_ended_.load(); }, 5s),
                      "run() did not return once cancelled");
        CHECK_FALSE(run_error_);
        // run() waits for its host loops, so nothing is left to run.
        CHECK(eventually([this] { return io_.stopped(); }, 5s));
        io_.stop();
        thread_.join();
    }

    [[nodiscard]] routing::Watcher& watcher() { return watcher_; }

    [[nodiscard]] std::vector<HostState> states() const {
        std::lock_guard lock{mutex_};
        return states_;
    }
    // The state of the host called `name` in the last report; a default one (unknown, not
    // healthy) before it was in a report.
    [[nodiscard]] HostState state(const std::string& name) const {
        std::lock_guard lock{mutex_};
        for (const HostState& state : states_) {
            if (state.name == name) return state;
        }
        return HostState{};
    }
    [[nodiscard]] std::vector<std::string> names() const {
        std::vector<std::string> names;
        for (const HostState& state : states())
            names.push_back(state.name);
        return names;
    }
    [[nodiscard]] bool healthy(const std::string& name, Role role) const {
        const HostState found = state(name);
        return found.healthy && found.role == role;
    }

private:
    asio::io_context io_;
    mutable std::mutex mutex_;
    std::vector<HostState> states_; // guarded by mutex_
    routing::Watcher watcher_;
    asio::cancellation_signal stop_; // io_ thread only
    std::atomic<bool> run_ended_{false};
    std::exception_ptr run_error_; // written before run_ended_
    std::thread thread_;
};

// Waits for a probe of `name` that starts from now on.
void probed_again(const WatcherRun& run, const std::string& name) {
    const auto now = routing::Clock::now();
    REQUIRE(eventually([&] { return run.state(name).probe_started > now; }, 5s));
}

} // namespace

TEST_SUITE("integration.watcher") {
    TEST_CASE("a primary and two replicas: roles, one timeline, WAL positions that advance") {
        PgCluster cluster{{.replicas = 2}};
        const auto hosts = node_hosts(cluster, {0, 1, 2});
        WatcherRun run{superuser_settings(cluster), hosts};

        REQUIRE(eventually([&] {
            return run.healthy(hosts[0].name, Role::primary) &&
                   run.healthy(hosts[1].name, Role::replica) &&
                   run.healthy(hosts[2].name, Role::replica);
        }));
        CHECK(run.names() == std::vector<std::string>{hosts[0].name, hosts[1].name, hosts[2].name});
        const HostState primary = run.state(hosts[0].name);
        CHECK(primary.timeline >= 1);
        CHECK(primary.wal_lsn > 0);
        CHECK(primary.replay_delay_seconds == 0);
        CHECK(primary.failures == 0);
        CHECK(primary.error.empty());
        CHECK(primary.probe_started <= primary.probed_at);
        CHECK(primary.probe_started > routing::Clock::time_point{});
        for (const auto& host : {hosts[1], hosts[2]}) {
            CAPTURE(host.name);
            const HostState replica = run.state(host.name);
            CHECK(replica.timeline == primary.timeline);
            CHECK(replica.replay_delay_seconds >= 0);
        }

        // One connection per host, kept from one probe to the next.
        const std::string backend = watcher_backend(cluster, 0);
        CHECK(backend.find(',') == std::string::npos);
        CHECK_FALSE(backend.empty());

        // A write moves the primary's position; the replicas replay up to it.
        pq::Connection writer = connect_ok(cluster.conninfo(0));
        const routing::Lsn before = current_lsn(writer);
        REQUIRE(writer.exec("CREATE TABLE marks AS SELECT generate_series(1, 1000) AS id").ok());
        const routing::Lsn written = current_lsn(writer);
        REQUIRE(written > before);
        CHECK(eventually([&] { return run.state(hosts[0].name).wal_lsn >= written; }, 5s));
        for (const auto& host : {hosts[1], hosts[2]}) {
            CAPTURE(host.name);
            CHECK(eventually([&] { return run.state(host.name).wal_lsn >= written; }, 5s));
            // Everything received is replayed: no delay, however old the last commit.
            CHECK(eventually([&] { return run.state(host.name).replay_delay_seconds == 0; }, 5s));
        }

        probed_again(run, hosts[0].name);
        CHECK(watcher_backend(cluster, 0) == backend);
    }

    TEST_CASE("a role with pg_monitor, not a superuser, can probe primary and replicas") {
        PgCluster cluster{{.replicas = 2}};
        {
            pq::Connection admin = connect_ok(cluster.conninfo(0));
            REQUIRE(admin
                        .exec("CREATE ROLE watcher_monitor LOGIN NOSUPERUSER "
                              "PASSWORD 'monitor-secret' IN ROLE pg_monitor")
                        .ok());
        }
        const auto hosts = node_hosts(cluster, {0, 1, 2});
        WatcherSettings settings = superuser_settings(cluster);
        settings.user = "watcher_monitor";
        settings.password = "monitor-secret";
        WatcherRun run{settings, hosts};

        // The role reaches the replicas through replication; until then their logins fail.
        REQUIRE(eventually([&] {
            return run.healthy(hosts[0].name, Role::primary) &&
                   run.healthy(hosts[1].name, Role::replica) &&
                   run.healthy(hosts[2].name, Role::replica);
        }));
        const HostState primary = run.state(hosts[0].name);
        for (const auto& host : {hosts[1], hosts[2]}) {
            CAPTURE(host.name);
            const HostState replica = run.state(host.name);
            CHECK(replica.timeline == primary.timeline);
            CHECK(replica.wal_lsn > 0);
            CHECK(replica.error.empty());
        }
    }

    TEST_CASE("a stopped host is unhealthy with an error and failures counting, then recovers") {
        PgCluster cluster{{.replicas = 1}};
        const auto hosts = node_hosts(cluster, {0, 1});
        WatcherRun run{superuser_settings(cluster), hosts};
        REQUIRE(eventually([&] {
            return run.healthy(hosts[0].name, Role::primary) &&
                   run.healthy(hosts[1].name, Role::replica);
        }));

        cluster.stop(1);
        REQUIRE(eventually([&] { return run.state(hosts[1].name).failures >= 3; }, 5s));
        const HostState stopped = run.state(hosts[1].name);
        CHECK_FALSE(stopped.healthy);
        CHECK(stopped.role == Role::unknown);
        CHECK_FALSE(stopped.error.empty());
        CHECK(stopped.error.find('\n') == std::string::npos);
        CHECK(stopped.error.find(cluster.password("postgres")) == std::string::npos);
        MESSAGE("error of a stopped host: " << stopped.error);
        CHECK(run.healthy(hosts[0].name, Role::primary));

        cluster.start(1);
        CHECK(eventually([&] { return run.healthy(hosts[1].name, Role::replica); }, 5s));
        const HostState back = run.state(hosts[1].name);
        CHECK(back.failures == 0);
        CHECK(back.error.empty());
        CHECK(back.probe_started > stopped.probed_at);
    }

    TEST_CASE("failover: the promoted replica is reported primary on a higher timeline") {
        PgCluster cluster{{.replicas = 2}};
        const auto hosts = node_hosts(cluster, {0, 1, 2});
        WatcherRun run{superuser_settings(cluster), hosts};
        REQUIRE(eventually([&] {
            return run.healthy(hosts[0].name, Role::primary) &&
                   run.healthy(hosts[1].name, Role::replica);
        }));
        const std::uint32_t timeline = run.state(hosts[0].name).timeline;
        // Pages that node1 replays and keeps dirty: the checkpoint that follows its promotion
        // is spread over minutes, and until it ends pg_control_checkpoint() shows the old
        // timeline.
        {
            pq::Connection writer = connect_ok(cluster.conninfo(0));
            REQUIRE(
                writer
                    .exec("CREATE TABLE ballast AS "
                          "SELECT g, repeat('x', 100) AS filler FROM generate_series(1, 50000) g")
                    .ok());
            const routing::Lsn written = current_lsn(writer);
            REQUIRE(eventually([&] { return run.state(hosts[1].name).wal_lsn >= written; }, 5s));
        }

        cluster.stop(0, StopMode::immediate);
        cluster.promote(1);
        // A few intervals (200 ms): no checkpoint is needed for the new timeline to show.
        CHECK(eventually(
            [&] {
                const HostState promoted = run.state(hosts[1].name);
                return promoted.healthy && promoted.role == Role::primary &&
                       promoted.timeline > timeline;
            },
            1500ms));
        CHECK_FALSE(run.state(hosts[0].name).healthy);
        CHECK(run.state(hosts[0].name).role == Role::unknown);
    }

    TEST_CASE("probe_now probes that host at once, long before its interval") {
        PgCluster cluster{{.replicas = 1}};
        const auto hosts = node_hosts(cluster, {0, 1});
        WatcherSettings settings = superuser_settings(cluster);
        settings.interval = 10s;
        WatcherRun run{settings, hosts};
        // The first round starts at once.
        REQUIRE(eventually(
            [&] {
                return run.healthy(hosts[0].name, Role::primary) &&
                       run.healthy(hosts[1].name, Role::replica);
            },
            5s));
        const HostState primary = run.state(hosts[0].name);

        cluster.stop(1);
        run.watcher().probe_now("nowhere:5432"); // ignored
        run.watcher().probe_now(hosts[1].name);
        CHECK(eventually([&] { return !run.state(hosts[1].name).healthy; }, 1s));
        CHECK(run.state(hosts[1].name).failures == 1);
        // The other host keeps to its interval.
        CHECK(run.state(hosts[0].name).probed_at == primary.probed_at);
    }

    TEST_CASE("a host that accepts TCP but never answers is unhealthy after the timeout, alone") {
        PgCluster cluster{{.replicas = 0}};
        // The kernel completes connections into the backlog; nothing ever reads them.
        asio::io_context io;
        asio::ip::tcp::acceptor silent{io, {asio::ip::make_address("127.0.0.1"), 0}};
        const auto silent_port = silent.local_endpoint().port();
        const WatchedHost hung{.name = "127.0.0.1:" + std::to_string(silent_port),
                               .host = "127.0.0.1",
                               .port = silent_port};
        const WatchedHost primary = node_host(cluster, 0);
        WatcherSettings settings = superuser_settings(cluster);
        settings.timeout = 500ms;

        const auto started = std::chrono::steady_clock::now();
        {
            WatcherRun run{settings, {hung, primary}};
            // A hung host does not hold up the probes of the others.
            REQUIRE(eventually([&] { return run.healthy(primary.name, Role::primary); }, 5s));
            CHECK(run.state(hung.name).failures == 0);

            REQUIRE(eventually([&] { return run.state(hung.name).failures >= 1; }, 3s));
            const auto elapsed = std::chrono::steady_clock::now() - started;
            const HostState state = run.state(hung.name);
            CHECK_FALSE(state.healthy);
            CHECK(state.error.find("timed out") != std::string::npos);
            MESSAGE("error of a hung host: " << state.error);
            CHECK(elapsed >= 450ms);
            CHECK(elapsed < 1500ms);
            // The next login is under way when run() is cancelled: it must end at once.
        }

        // Destroying the io_context with logins in flight, without cancelling run(), is safe too:
        // the coroutines own what they use.
        {
            asio::io_context abandoned;
            auto watcher = std::make_unique<routing::Watcher>(abandoned.get_executor(), settings,
                                                              std::vector<WatchedHost>{hung},
                                                              [](const std::vector<HostState>&) {});
            asio::co_spawn(abandoned, watcher->run(), asio::detached);
            abandoned.run_for(100ms);
            watcher.reset();
        }
    }

    TEST_CASE("reconfigure adds and removes hosts; kept hosts keep their connection") {
        PgCluster cluster{{.replicas = 2}};
        const auto hosts = node_hosts(cluster, {0, 1, 2});
        WatcherSettings settings = superuser_settings(cluster);
        WatcherRun run{settings, {hosts[0], hosts[1]}};
        REQUIRE(eventually([&] {
            return run.healthy(hosts[0].name, Role::primary) &&
                   run.healthy(hosts[1].name, Role::replica);
        }));
        const std::string kept_backend = watcher_backend(cluster, 1);
        REQUIRE_FALSE(kept_backend.empty());
        CHECK(watcher_backend(cluster, 2).empty());

        run.watcher().reconfigure(settings, {hosts[1], hosts[2]});
        CHECK(eventually([&] {
            return run.names() == std::vector<std::string>{hosts[1].name, hosts[2].name} &&
                   run.healthy(hosts[2].name, Role::replica);
        }));
        CHECK(run.healthy(hosts[1].name, Role::replica));
        probed_again(run, hosts[1].name);
        CHECK(watcher_backend(cluster, 1) == kept_backend);
        // The removed host's loop ended and closed its connection.
        CHECK(eventually([&] { return watcher_backend(cluster, 0).empty(); }, 5s));

        // New settings: the kept hosts log in again with them.
        settings.interval = 300ms;
        run.watcher().reconfigure(settings, {hosts[1], hosts[2]});
        CHECK(eventually([&] {
            const std::string backend = watcher_backend(cluster, 1);
            return !backend.empty() && backend != kept_backend;
        }));
        CHECK(run.healthy(hosts[1].name, Role::replica));
    }
}
