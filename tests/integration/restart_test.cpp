// Rolling restarts (issue 10): a second pgmarina binds the same port (SO_REUSEPORT) and the first
// gets SIGTERM. The first stops listening at once, says so on /readyz, lets every transaction run
// to its end, closes its clients at a transaction boundary with 57P01, and exits; the second gets
// every new connection. pgbench connecting per transaction sees no error through it all.

#include "tests/support/command.hpp"
#include "tests/support/http.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;

// Long enough that a test reaching it has failed: the drains below take about a second.
constexpr int shutdown_timeout_seconds = 20;

// `listen`: the ports, on 127.0.0.1; metrics on `metrics_port`.
std::string config_for(const PgCluster& cluster, const std::vector<std::uint16_t>& listen,
                       std::uint16_t metrics_port) {
    std::string addresses;
    for (const auto port : listen) {
        addresses +=
            (addresses.empty() ? "\"127.0.0.1:" : ", \"127.0.0.1:") + std::to_string(port) + "\"";
    }
    return "[pgmarina]\nlisten = [" + addresses +
           "]\n"
           "unix_socket_dir = \"\"\n"
           "workers = 2\n"
           "default_pool_size = 4\n"
           "admin_users = [\"scram_user\"]\n"
           "shutdown_timeout = " +
           std::to_string(shutdown_timeout_seconds) +
           "\n"
           "[metrics]\nlisten = \"127.0.0.1:" +
           std::to_string(metrics_port) +
           "\"\n[databases.app]\nhosts = [\"127.0.0.1:" + std::to_string(cluster.port(0)) +
           "\"]\n[users.scram_user]\npassword = \"" + cluster.password("scram_user") + "\"\n";
}

// What the README tells operators to set for rolling restarts (Linux 5.14+): a connection the
// kernel queued for a listener in the microseconds between its last accept() and its close() is
// handed to the other process's listener instead of reset. Set for this test's run when the
// file is writable (root), and put back as it was.
class MigrateQueuedConnections {
public:
    MigrateQueuedConnections() {
        std::ifstream in{path};
        if (!(in >> before_)) return;
        std::ofstream out{path};
        changed_ = static_cast<bool>(out << "1\n");
    }
    ~MigrateQueuedConnections() {
        if (changed_) std::ofstream{path} << before_ << "\n";
    }
    MigrateQueuedConnections(const MigrateQueuedConnections&) = delete;
    MigrateQueuedConnections& operator=(const MigrateQueuedConnections&) = delete;

private:
    static constexpr const char* path = "/proc/sys/net/ipv4/tcp_migrate_req";
    std::string before_;
    bool changed_ = false;
};

struct Setup {
    PgCluster cluster{{.replicas = 0}};
    MigrateQueuedConnections migrate;
};

Setup& setup() {
    static Setup instance;
    return instance;
}

std::string conninfo(std::uint16_t port, std::string_view dbname = "app") {
    return "host=127.0.0.1 port=" + std::to_string(port) +
           " user=scram_user password=" + setup().cluster.password("scram_user") +
           " dbname=" + std::string(dbname) + " sslmode=disable connect_timeout=5";
}

pq::Connection connect(std::uint16_t port, std::string_view dbname = "app") {
    auto conn = pq::Connection::connect(conninfo(port, dbname));
    REQUIRE_MESSAGE(conn.ok(), conn.error_message());
    return conn;
}

// A SHOW STATS counter of database app, from the console reached on `port`.
long stat(std::uint16_t port, std::string_view column) {
    auto console = connect(port, "pgbouncer");
    const auto stats = console.exec("SHOW STATS");
    REQUIRE_MESSAGE(stats.ok(), stats.error_message());
    for (int row = 0; row < stats.ntuples(); ++row) {
        if (stats.value(row, "database") == "app") return std::stol(stats.value(row, column));
    }
    return 0;
}

// Clients of database app logged in to the pgmarina whose console is on `port`.
int app_clients(std::uint16_t port) {
    auto console = connect(port, "pgbouncer");
    const auto clients = console.exec("SHOW CLIENTS");
    REQUIRE_MESSAGE(clients.ok(), clients.error_message());
    int count = 0;
    for (int row = 0; row < clients.ntuples(); ++row)
        count += clients.value(row, "database") == "app" ? 1 : 0;
    return count;
}

bool readyz_refuses(std::uint16_t metrics_port) {
    return support::http_get(metrics_port, "/readyz").starts_with("HTTP/1.1 503");
}

} // namespace

TEST_SUITE("integration.restart") {

    TEST_CASE("SIGTERM: /readyz says no, new connections go to the process sharing the port, a "
              "transaction runs to its end, clients are closed between transactions") {
        const std::uint16_t port = PgmarinaProcess::free_port();
        const std::uint16_t own_port = PgmarinaProcess::free_port();
        const std::uint16_t metrics_a = PgmarinaProcess::free_port();
        const std::uint16_t metrics_b = PgmarinaProcess::free_port();
        PgmarinaProcess a{config_for(setup().cluster, {port}, metrics_a), port};
        INFO("end of A's log:" << support::log_tail(a));

        auto in_transaction = connect(port);
        REQUIRE(in_transaction.exec("BEGIN").ok());
        REQUIRE(in_transaction.exec("SELECT 1").ok());
        auto idle = connect(port);
        REQUIRE(idle.exec("SELECT 1").ok());
        REQUIRE(support::http_get(metrics_a, "/readyz").starts_with("HTTP/1.1 200"));

        // B listens on the shared port and on its own, where its console is reached.
        PgmarinaProcess b{config_for(setup().cluster, {port, own_port}, metrics_b), own_port};
        INFO("end of B's log:" << support::log_tail(b));
        const auto signalled = Clock::now();
        a.signal(SIGTERM);
        bool refused = false;
        while (!refused && Clock::now() - signalled < 2s) {
            refused = readyz_refuses(metrics_a);
            if (!refused) std::this_thread::sleep_for(20ms);
        }
        CHECK(refused);
        CHECK(support::http_get(metrics_b, "/readyz").starts_with("HTTP/1.1 200"));

        // A's listeners are closed: a new client on the shared port is B's.
        std::this_thread::sleep_for(200ms);
        CHECK(app_clients(own_port) == 0);
        {
            auto newcomer = connect(port);
            CHECK(newcomer.exec("SELECT 1").ok());
            CHECK(app_clients(own_port) == 1);
        }

        // Past the idle grace, the transaction still runs on A, and ends as its client says.
        std::this_thread::sleep_for(1500ms);
        CHECK(a.running());
        const auto inside = in_transaction.exec("SELECT 2");
        CHECK_MESSAGE(inside.ok(), inside.error_message());
        const auto committed = in_transaction.exec("COMMIT");
        CHECK_MESSAGE(committed.ok(), committed.error_message());
        // Then, between transactions, A closed both clients with a FATAL 57P01 (which libpq, idle
        // when it comes, prints as a notice before it finds the connection closed).
        CHECK_FALSE(in_transaction.exec("SELECT 3").ok());
        CHECK_FALSE(idle.exec("SELECT 1").ok());
        const std::string log = a.log();
        std::size_t closed = 0;
        for (auto at = log.find("closing because: pgmarina is shutting down");
             at != std::string::npos;
             at = log.find("closing because: pgmarina is shutting down", at + 1)) {
            ++closed;
        }
        CHECK(closed == 2);

        // No client left: A exits by itself, well before shutdown_timeout.
        CHECK(a.wait_exit(5s) == std::optional<int>(0));
        CHECK(Clock::now() - signalled < std::chrono::seconds(shutdown_timeout_seconds));
        CHECK(a.log().find("shutdown_timeout reached") == std::string::npos);
        CHECK(a.log().find("closing the listening sockets") != std::string::npos);
    }

    TEST_CASE("a rolling restart under pgbench connecting per transaction: no failed transaction") {
        const auto init =
            support::run_command("PGPASSWORD=" + setup().cluster.password("scram_user") +
                                 " pgbench -i -s 1 -q -h 127.0.0.1 -U scram_user -p " +
                                 std::to_string(setup().cluster.port(0)) + " app");
        REQUIRE_MESSAGE(init.status == 0, init.output);

        const std::uint16_t port = PgmarinaProcess::free_port();
        const std::uint16_t own_port = PgmarinaProcess::free_port();
        const std::uint16_t metrics_a = PgmarinaProcess::free_port();
        const std::uint16_t metrics_b = PgmarinaProcess::free_port();
        PgmarinaProcess a{config_for(setup().cluster, {port}, metrics_a), port};
        INFO("end of A's log:" << support::log_tail(a));

        // -C: a new connection for every transaction, as clients that reconnect do.
        support::CommandRun bench;
        std::thread runner([&bench, port] {
            bench = support::run_command("PGPASSWORD=" + setup().cluster.password("scram_user") +
                                         " pgbench -n -C -c 4 -j 2 -T 8 -h 127.0.0.1 -U "
                                         "scram_user -p " +
                                         std::to_string(port) + " app");
        });
        struct Join {
            std::thread& thread;
            ~Join() {
                if (thread.joinable()) thread.join();
            }
        } join{runner};

        std::this_thread::sleep_for(1500ms);
        const long served_by_a = stat(port, "total_xact_count"); // only A listens there yet
        CHECK(served_by_a > 0);
        PgmarinaProcess b{config_for(setup().cluster, {port, own_port}, metrics_b), own_port};
        INFO("end of B's log:" << support::log_tail(b));
        std::this_thread::sleep_for(500ms);

        a.signal(SIGTERM);
        const auto exit_code = a.wait_exit(10s);
        CHECK(exit_code == std::optional<int>(0));
        CHECK(a.log().find("shutdown_timeout reached") == std::string::npos);
        const long b_when_a_left = stat(own_port, "total_xact_count");

        runner.join();
        INFO("pgbench:\n" << bench.output);
        CHECK(bench.status == 0);
        CHECK(bench.output.find("number of failed transactions: 0 ") != std::string::npos);
        CHECK(bench.output.find("aborted") == std::string::npos);
        // B went on serving once A was gone.
        CHECK(stat(own_port, "total_xact_count") > b_when_a_left);
    }
}
