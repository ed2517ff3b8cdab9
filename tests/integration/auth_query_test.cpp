// auth_user + auth_query through a real pgmarina in front of PostgreSQL 15: users that are in
// neither [users] nor an auth_file log in with the secret PostgreSQL stores for them, and the
// pool logs in to PostgreSQL for them with SCRAM pass-through (or md5), so no password of theirs
// is written anywhere in pgmarina's configuration.
//
// Two pgmarina processes share one cluster: one runs PgBouncer's default auth_query (pg_authid,
// readable by a superuser only) as a superuser auth_user; the other runs the kind operators
// deploy, a SECURITY DEFINER function that a plain auth_user may only execute.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;

constexpr std::string_view auth_password = "auth-secret";
constexpr std::string_view lookup_password = "lookup-secret";
constexpr std::string_view app_password = "app-secret";
constexpr std::string_view legacy_password = "legacy-secret";

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

void run_sql(const std::string& conninfo, const std::string& sql) {
    auto conn = pq::Connection::connect(conninfo);
    if (!conn.ok()) throw std::runtime_error("connect: " + conn.error_message());
    const auto result = conn.exec(sql);
    if (!result.ok()) throw std::runtime_error(sql + ": " + result.error_message());
}

// The roles of the test. Their passwords never appear in pgmarina's configuration, except the
// auth_users' own.
void create_roles(const PgCluster& cluster) {
    run_sql(cluster.conninfo(0), "CREATE ROLE pgmarina_auth LOGIN SUPERUSER PASSWORD '" +
                                     std::string(auth_password) +
                                     "';"
                                     "CREATE ROLE lookup_auth LOGIN PASSWORD '" +
                                     std::string(lookup_password) +
                                     "';"
                                     "CREATE ROLE app_user LOGIN PASSWORD '" +
                                     std::string(app_password) +
                                     "';"
                                     "CREATE ROLE storm_user LOGIN PASSWORD 'storm-secret';"
                                     "CREATE ROLE expired LOGIN PASSWORD 'expired-secret' "
                                     "VALID UNTIL '2001-01-01';"
                                     "SET password_encryption = 'md5';"
                                     "CREATE ROLE legacy_md5 LOGIN PASSWORD '" +
                                     std::string(legacy_password) + "';");
    // The function runs as its owner (a superuser) and reads only what the lookup needs; the
    // search_path is pinned so that a caller cannot slip its own pg_authid in front.
    run_sql(cluster.conninfo(0, "postgres", "app"),
            "CREATE SCHEMA pgmarina;"
            "CREATE FUNCTION pgmarina.user_lookup(name text, OUT user_name text, OUT secret text) "
            "RETURNS record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$ "
            "SELECT rolname::text, "
            "CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END "
            "FROM pg_authid WHERE rolname = name AND rolcanlogin $$;"
            "REVOKE ALL ON FUNCTION pgmarina.user_lookup(text) FROM PUBLIC;"
            "GRANT USAGE ON SCHEMA pgmarina TO lookup_auth;"
            "GRANT EXECUTE ON FUNCTION pgmarina.user_lookup(text) TO lookup_auth;");
    // The cluster asks every other role for scram-sha-256, which an md5-stored password cannot
    // answer: legacy_md5 gets method md5, as a server with old roles would have.
    const auto hba_path = cluster.dir() / "node0" / "data" / "pg_hba.conf";
    std::ifstream in(hba_path);
    std::stringstream rules;
    rules << in.rdbuf();
    in.close();
    std::string text = rules.str();
    const auto first_host = text.find("\nhost");
    if (first_host == std::string::npos) throw std::runtime_error("pg_hba.conf: no host line");
    text.insert(first_host + 1, "host all legacy_md5 " + cluster.host() + "/32 md5\n");
    std::ofstream(hba_path) << text;
    run_sql(cluster.conninfo(0), "SELECT pg_reload_conf()");
    // The reload is asynchronous: wait until the new rule lets legacy_md5 in.
    for (int attempt = 0;; ++attempt) {
        auto conn =
            pq::Connection::connect(cluster.conninfo(0, "postgres", "app") +
                                    " user=legacy_md5 password=" + std::string(legacy_password));
        if (conn.ok()) break;
        if (attempt == 50) throw std::runtime_error("legacy_md5: " + conn.error_message());
        std::this_thread::sleep_for(100ms);
    }
}

std::string config_for(const PgCluster& cluster, std::uint16_t listen_port, std::uint16_t dead_port,
                       bool via_function) {
    const std::string primary = "127.0.0.1:" + std::to_string(cluster.port(0));
    std::string config = "[pgmarina]\n"
                         "workers = 2\n"
                         "listen = [\"127.0.0.1:" +
                         std::to_string(listen_port) +
                         "\"]\n"
                         "unix_socket_dir = \"\"\n"
                         "auth_type = \"md5\"\n"
                         "client_login_timeout = 10\n"
                         "server_connect_timeout = 2\n";
    if (via_function) {
        config += "auth_user = \"lookup_auth\"\n"
                  "auth_query = \"SELECT user_name, secret FROM pgmarina.user_lookup($1)\"\n"
                  "[users.lookup_auth]\n"
                  "password = \"" +
                  std::string(lookup_password) + "\"\n";
    } else {
        config += "auth_user = \"pgmarina_auth\"\n"
                  "[users.pgmarina_auth]\n"
                  "password = \"" +
                  std::string(auth_password) + "\"\n";
    }
    // `plain` has no auth_query function (it lives in `app`): every lookup there fails.
    return config + "[databases.app]\nhosts = [\"" + primary +
           "\"]\n"
           "[databases.plain]\ndbname = \"postgres\"\nhosts = [\"" +
           primary +
           "\"]\n"
           "[databases.down]\nhosts = [\"127.0.0.1:" +
           std::to_string(dead_port) + "\"]\n";
}

struct Setup {
    PgCluster cluster{{.replicas = 0}};
    bool roles = (create_roles(cluster), true);
    std::uint16_t dead_port = PgmarinaProcess::free_port();
    std::uint16_t port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, port, dead_port, false), port};
    std::uint16_t function_port = PgmarinaProcess::free_port();
    PgmarinaProcess via_function{config_for(cluster, function_port, dead_port, true),
                                 function_port};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

pq::Connection connect(const PgmarinaProcess& proxy, std::string_view user,
                       std::string_view password, std::string_view dbname = "app") {
    return pq::Connection::connect(proxy.conninfo(user, password, dbname));
}

// The login worked and PostgreSQL took the session for `user`: the pool logged in as it.
void check_logged_in(pq::Connection& conn, std::string_view user) {
    REQUIRE_MESSAGE(conn.ok(), conn.error_message());
    const auto result = conn.exec("SELECT current_user, count(*) FROM pg_class");
    REQUIRE_MESSAGE(result.ok(), result.error_message());
    CHECK(result.value(0, 0) == user);
    CHECK(conn.exec("SELECT 2 + 2").value(0, 0) == "4");
}

void check_refused(pq::Connection& conn, std::string_view user) {
    CHECK_FALSE(conn.ok());
    CHECK(conn.sqlstate() == "28P01");
    CHECK(contains(conn.error_message(),
                   "password authentication failed for user \"" + std::string(user) + "\""));
}

// Both proxies, for the cases that must hold whichever auth_query runs.
std::vector<const PgmarinaProcess*> proxies() {
    return {&setup().pgmarina, &setup().via_function};
}

} // namespace

TEST_SUITE("integration.auth_query") {
    TEST_CASE("a user known only to PostgreSQL logs in and its pool logs in with SCRAM "
              "pass-through") {
        for (const auto* proxy : proxies()) {
            auto conn = connect(*proxy, "app_user", app_password);
            check_logged_in(conn, "app_user");
            // Again, from the cache; and a second client of the same pool.
            auto again = connect(*proxy, "app_user", app_password);
            check_logged_in(again, "app_user");
        }
    }

    TEST_CASE("a wrong password, an unknown user and an expired role all get the same 28P01") {
        for (const auto* proxy : proxies()) {
            auto wrong = connect(*proxy, "app_user", "not-the-password");
            check_refused(wrong, "app_user");
            auto unknown = connect(*proxy, "nobody_here", "whatever");
            check_refused(unknown, "nobody_here");
            auto expired = connect(*proxy, "expired", "expired-secret");
            check_refused(expired, "expired");
        }
    }

    TEST_CASE("a role whose password PostgreSQL stores as md5 logs in too") {
        for (const auto* proxy : proxies()) {
            auto conn = connect(*proxy, "legacy_md5", legacy_password);
            check_logged_in(conn, "legacy_md5");
            auto wrong = connect(*proxy, "legacy_md5", "not-the-password");
            check_refused(wrong, "legacy_md5");
        }
    }

    TEST_CASE("a failing auth_query refuses the client as a wrong password and is logged") {
        auto conn = connect(setup().via_function, "app_user", app_password, "plain");
        check_refused(conn, "app_user");
        // The schema (and its function) exists only in `app`.
        CHECK(
            contains(setup().via_function.log(), "auth_query for user \"app_user\" failed: 3F000"));
    }

    TEST_CASE("a server that cannot be reached gives 08006") {
        auto conn = connect(setup().pgmarina, "app_user", app_password, "down");
        CHECK_FALSE(conn.ok());
        CHECK(conn.sqlstate() == "08006");
    }

    TEST_CASE("a storm of logins of a user not yet cached shares one auth connection") {
        constexpr int clients = 24;
        std::vector<std::thread> threads;
        std::vector<int> ok(clients, 0);
        for (int i = 0; i < clients; ++i) {
            threads.emplace_back([i, &ok] {
                auto conn = connect(setup().pgmarina, "storm_user", "storm-secret");
                ok[static_cast<std::size_t>(i)] =
                    conn.ok() && conn.exec("SELECT 1").value(0, 0) == "1" ? 1 : 0;
            });
        }
        for (auto& thread : threads)
            thread.join();
        for (int i = 0; i < clients; ++i)
            CHECK(ok[static_cast<std::size_t>(i)] == 1);
        auto admin = pq::Connection::connect(setup().cluster.conninfo(0));
        REQUIRE(admin.ok());
        CHECK(admin.exec("SELECT count(*) FROM pg_stat_activity WHERE usename = 'pgmarina_auth'")
                  .value(0, 0) == "1");
    }

    TEST_CASE("a role created after a refused login can log in once the answer expires") {
        auto before = connect(setup().pgmarina, "newcomer", "newcomer-secret");
        check_refused(before, "newcomer");
        run_sql(setup().cluster.conninfo(0),
                "CREATE ROLE newcomer LOGIN PASSWORD 'newcomer-secret'");
        // "No such user" is believed for negative_ttl (5 s), then asked again.
        auto cached = connect(setup().pgmarina, "newcomer", "newcomer-secret");
        check_refused(cached, "newcomer");
        std::this_thread::sleep_for(5500ms);
        auto after = connect(setup().pgmarina, "newcomer", "newcomer-secret");
        check_logged_in(after, "newcomer");
    }

    TEST_CASE("no secret reaches the log") {
        for (const auto* proxy : proxies()) {
            const auto log = proxy->log();
            CHECK_FALSE(contains(log, "SCRAM-SHA-256$"));
            CHECK_FALSE(contains(log, app_password));
            CHECK_FALSE(contains(log, legacy_password));
        }
    }
}
