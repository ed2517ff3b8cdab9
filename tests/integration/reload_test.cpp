// RELOAD without dropping anyone (issue 10): a transaction running across a reload finishes on
// the server it started on; the next one follows the new file (a database moved to another
// host, a pool size changed); servers of the old host close when they come back; a database
// taken out of the file lets its running transactions end, then refuses its clients (3D000).

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;

// `app` and `gone` on node `app_node`; `gone` only while `with_gone`.
std::string config_for(const PgCluster& cluster, std::uint16_t port, int app_node, int pool_size,
                       bool with_gone) {
    const auto hosts = [&](int node) {
        return "hosts = [\"127.0.0.1:" + std::to_string(cluster.port(node)) + "\"]\n";
    };
    std::string config = "[pgmarina]\n"
                         "listen = [\"127.0.0.1:" +
                         std::to_string(port) +
                         "\"]\n"
                         "unix_socket_dir = \"\"\n"
                         "workers = 2\n"
                         "default_pool_size = " +
                         std::to_string(pool_size) +
                         "\n"
                         "admin_users = [\"scram_user\"]\n"
                         "[databases.app]\n" +
                         hosts(app_node);
    if (with_gone) config += "[databases.gone]\ndbname = \"app\"\n" + hosts(0);
    return config + "[users.scram_user]\npassword = \"" + cluster.password("scram_user") + "\"\n";
}

std::string server_port(pq::Connection& conn) {
    const auto row = conn.exec("SELECT inet_server_port()");
    REQUIRE_MESSAGE(row.ok(), row.error_message());
    return row.value(0, 0);
}

// Client backends of scram_user on `node`, asked of PostgreSQL directly (as the superuser, so
// that this connection is not one of them).
int backends_on(const PgCluster& cluster, int node) {
    auto direct = pq::Connection::connect(cluster.conninfo(node, "postgres", "app"));
    REQUIRE_MESSAGE(direct.ok(), direct.error_message());
    return std::stoi(direct
                         .exec("SELECT count(*) FROM pg_stat_activity WHERE usename = "
                               "'scram_user' AND backend_type = 'client backend'")
                         .value(0, 0));
}

} // namespace

TEST_SUITE("integration.reload") {
    TEST_CASE("RELOAD moves a database to another host and removes one, dropping no one") {
        PgCluster cluster{{.replicas = 1}};
        const std::uint16_t port = PgmarinaProcess::free_port();
        PgmarinaProcess pgmarina{config_for(cluster, port, 0, 4, true), port};
        INFO("end of pgmarina's log:" << support::log_tail(pgmarina));
        const auto connect = [&](std::string_view dbname) {
            auto conn = pq::Connection::connect(
                pgmarina.conninfo("scram_user", cluster.password("scram_user"), dbname));
            REQUIRE_MESSAGE(conn.ok(), conn.error_message());
            return conn;
        };
        const std::string node0 = std::to_string(cluster.port(0));
        const std::string node1 = std::to_string(cluster.port(1));

        auto admin = connect("pgbouncer");
        auto moving = connect("app");
        std::optional<pq::Connection> leaving = connect("gone");
        REQUIRE(moving.exec("BEGIN").ok());
        CHECK(server_port(moving) == node0);
        REQUIRE(leaving->exec("BEGIN").ok());
        CHECK(server_port(*leaving) == node0);

        std::ofstream(pgmarina.config_path()) << config_for(cluster, port, 1, 3, false);
        const auto reloaded = admin.exec("RELOAD");
        REQUIRE_MESSAGE(reloaded.ok(), reloaded.error_message());

        // The transactions that were running end where they started.
        CHECK(server_port(moving) == node0);
        CHECK(moving.exec("COMMIT").ok());
        CHECK(server_port(*leaving) == node0);
        CHECK(leaving->exec("COMMIT").ok());

        // The next ones follow the file: app on node1; gone is refused, to its client at its
        // next transaction and to a new one at login.
        CHECK(server_port(moving) == node1);
        auto arriving = connect("app");
        CHECK(server_port(arriving) == node1);
        // libpq keeps the FATAL in the connection's message, the result says "closed".
        CHECK_FALSE(leaving->exec("SELECT 1").ok());
        CHECK(leaving->error_message().find("no such database: gone") != std::string::npos);
        leaving.reset();
        const auto refused = pq::Connection::connect(
            pgmarina.conninfo("scram_user", cluster.password("scram_user"), "gone"));
        CHECK(refused.sqlstate() == "3D000");

        // The servers left on node0 closed when they came back to their retired pools.
        for (int tries = 0; tries < 50 && backends_on(cluster, 0) != 0; ++tries)
            std::this_thread::sleep_for(100ms);
        CHECK(backends_on(cluster, 0) == 0);
        CHECK(backends_on(cluster, 1) >= 1);
        const auto sizes = admin.exec("SHOW CONFIG");
        REQUIRE(sizes.ok());
        bool found = false;
        for (int row = 0; row < sizes.ntuples(); ++row) {
            if (sizes.value(row, 0) == "default_pool_size") {
                found = true;
                CHECK(sizes.value(row, 1) == "3");
            }
        }
        CHECK(found);
    }
}
