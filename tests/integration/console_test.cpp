// The admin console through real clients: psql's view of every SHOW table's columns, values
// checked against PostgreSQL's own pg_stat_activity, counters under load, the commands that
// operators script (PAUSE, RESUME, DISABLE, KILL_CLIENT, RECONNECT) against live clients, and
// psycopg 3 speaking the extended protocol to it.

#include "tests/support/http.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;

std::string config_for(const PgCluster& cluster, std::uint16_t port, std::uint16_t metrics_port) {
    const std::string hosts = "hosts = [\"127.0.0.1:" + std::to_string(cluster.port(0)) + "\"]\n";
    return "[pgmarina]\n"
           "listen = [\"127.0.0.1:" +
           std::to_string(port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "workers = 2\n"
           "default_pool_size = 4\n"
           "auth_type = \"scram-sha-256\"\n"
           "admin_users = [\"scram_user\"]\n"
           "stats_users = [\"md5_user\"]\n"
           "[metrics]\nlisten = \"127.0.0.1:" +
           std::to_string(metrics_port) +
           "\"\n"
           "[databases.app]\n" +
           hosts + "[databases.other]\ndbname = \"app\"\n" + hosts +
           "[users.scram_user]\npassword = \"" + cluster.password("scram_user") +
           "\"\n"
           "[users.md5_user]\npassword = \"" +
           cluster.password("md5_user") + "\"\n";
}

struct Setup {
    PgCluster cluster{{.replicas = 0}};
    std::uint16_t port = PgmarinaProcess::free_port();
    std::uint16_t metrics_port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, port, metrics_port), port};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

#define PGMARINA_LOG_ON_FAILURE()                                                                  \
    INFO("end of pgmarina's log:" << support::log_tail(setup().pgmarina))

pq::Connection connect_as(std::string_view user, std::string_view dbname) {
    auto conn = pq::Connection::connect(
        setup().pgmarina.conninfo(user, setup().cluster.password(user), dbname));
    REQUIRE_MESSAGE(conn.ok(), conn.error_message());
    return conn;
}

pq::Connection console() {
    return connect_as("scram_user", "pgbouncer");
}

pq::Result show(pq::Connection& conn, const std::string& what) {
    auto result = conn.exec("SHOW " + what);
    REQUIRE_MESSAGE(result.ok(), what << ": " << result.error_message());
    return result;
}

// The rows of `result` whose column `column` equals `value`.
std::vector<int> rows_where(const pq::Result& result, std::string_view column,
                            std::string_view value) {
    std::vector<int> rows;
    for (int row = 0; row < result.ntuples(); ++row) {
        if (result.value(row, column) == value) rows.push_back(row);
    }
    return rows;
}

// Runs a command line, returning its standard output; fails the test on a non-zero exit.
std::string run(const std::string& command) {
    std::string output;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::array<char, 4096> buffer{};
    while (const auto n = std::fread(buffer.data(), 1, buffer.size(), pipe))
        output.append(buffer.data(), n);
    const int status = ::pclose(pipe);
    INFO(command << "\n" << output);
    REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    return output;
}

std::string psql(const std::string& sql) {
    return run("PGPASSWORD='" + setup().cluster.password("scram_user") +
               "' psql -X --csv -h 127.0.0.1 -p " + std::to_string(setup().port) +
               " -U scram_user -d pgbouncer -c '" + sql + "'");
}

std::string first_line(const std::string& text) {
    return text.substr(0, text.find('\n'));
}

// One HTTP/1.1 GET to the metrics endpoint: the whole response, status line first.
std::string http_get(const std::string& path) {
    return support::http_get(setup().metrics_port, path);
}

// The process has ended: gone, or a zombie its parent has not reaped.
bool exited(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_field;
    std::string name;
    char state = 'X';
    if (!(stat >> pid_field >> name >> state)) return true;
    return state == 'Z' || state == 'X';
}

const std::string connection_columns =
    "type,user,database,replication,state,addr,port,local_addr,local_port,connect_time,"
    "request_time,wait,wait_us,close_needed,ptr,link,remote_pid,tls,application_name,"
    "prepared_statements,id";

} // namespace

TEST_SUITE("console") {
    TEST_CASE("psql sees PgBouncer 1.25's columns in PgBouncer's order") {
        PGMARINA_LOG_ON_FAILURE();
        const std::map<std::string, std::string> expected = {
            {"POOLS", "database,user,cl_active,cl_waiting,cl_active_cancel_req,"
                      "cl_waiting_cancel_req,sv_active,sv_active_cancel,sv_being_canceled,"
                      "sv_idle,sv_used,sv_tested,sv_login,maxwait,maxwait_us,pool_mode,"
                      "load_balance_hosts"},
            {"STATS", "database,total_server_assignment_count,total_xact_count,"
                      "total_query_count,total_received,total_sent,total_xact_time,"
                      "total_query_time,total_wait_time,total_client_parse_count,"
                      "total_server_parse_count,total_bind_count,avg_server_assignment_count,"
                      "avg_xact_count,avg_query_count,avg_recv,avg_sent,avg_xact_time,"
                      "avg_query_time,avg_wait_time,avg_client_parse_count,"
                      "avg_server_parse_count,avg_bind_count"},
            {"STATS_TOTALS", "database,server_assignment_count,xact_count,query_count,"
                             "bytes_received,bytes_sent,xact_time,query_time,wait_time,"
                             "client_parse_count,server_parse_count,bind_count"},
            {"STATS_AVERAGES", "database,server_assignment_count,xact_count,query_count,"
                               "bytes_received,bytes_sent,xact_time,query_time,wait_time,"
                               "avg_client_parse_count,avg_server_parse_count,avg_bind_count"},
            {"TOTALS", "name,value"},
            {"CLIENTS", connection_columns},
            {"SERVERS", connection_columns},
            {"SOCKETS", connection_columns + ",recv_pos,pkt_pos,pkt_remain,send_pos,"
                                             "send_remain,pkt_avail,send_avail"},
            {"DATABASES", "name,host,port,database,force_user,pool_size,min_pool_size,"
                          "reserve_pool_size,server_lifetime,pool_mode,load_balance_hosts,"
                          "max_connections,current_connections,max_client_connections,"
                          "current_client_connections,paused,disabled"},
            {"USERS", "name,pool_size,reserve_pool_size,pool_mode,max_user_connections,"
                      "current_connections,max_user_client_connections,"
                      "current_client_connections"},
            {"CONFIG", "key,value,default,changeable"},
            {"LISTS", "list,items"},
            {"VERSION", "version"},
            {"STATE", "key,value"},
            {"HOSTS", "database,host,port,role,health,timeline,lsn,lag_bytes,lag_seconds,"
                      "last_probe_ms_ago,error,sv_active,sv_idle,sv_used,sv_tested,sv_login"},
        };
        for (const auto& [subject, columns] : expected) {
            CAPTURE(subject);
            CHECK(first_line(psql("SHOW " + subject)) == columns);
        }
        CHECK(psql("SHOW LISTS") ==
              "list,items\ndatabases,3\nusers,0\npeers,0\npools,0\npeer_pools,0\n"
              "free_clients,0\nused_clients,1\nlogin_clients,0\nfree_servers,0\n"
              "used_servers,0\ndns_names,0\ndns_zones,0\ndns_queries,0\ndns_pending,0\n");
    }

    TEST_CASE("SHOW SERVERS matches pg_stat_activity, SHOW CLIENTS and POOLS the clients") {
        PGMARINA_LOG_ON_FAILURE();
        auto admin = console();
        // Three clients inside transactions hold three servers; a fourth idles without one.
        std::vector<pq::Connection> busy;
        for (int i = 0; i < 3; ++i) {
            busy.push_back(connect_as("scram_user", "app"));
            REQUIRE(busy.back().exec("BEGIN").ok());
            REQUIRE(busy.back().exec("SELECT 1").ok());
        }
        auto idle = connect_as("scram_user", "app");

        auto direct = pq::Connection::connect(setup().cluster.conninfo(0, "postgres", "app"));
        REQUIRE(direct.ok());
        const auto activity =
            direct.exec("SELECT pid, state FROM pg_stat_activity WHERE usename = 'scram_user' "
                        "AND datname = 'app' AND backend_type = 'client backend'");
        REQUIRE(activity.ok());
        std::map<std::string, std::string> backends; // pid → state
        for (int row = 0; row < activity.ntuples(); ++row)
            backends[activity.value(row, 0)] = activity.value(row, 1);

        const auto servers = show(admin, "SERVERS");
        std::map<std::string, std::string> listed; // remote_pid → state
        for (const int row : rows_where(servers, "database", "app"))
            listed[servers.value(row, "remote_pid")] = servers.value(row, "state");
        REQUIRE(listed.size() == backends.size());
        int active = 0;
        for (const auto& [pid, state] : listed) {
            CAPTURE(pid);
            REQUIRE(backends.contains(pid));
            // Our active servers are PostgreSQL's "idle in transaction" backends.
            CHECK((state == "active") == (backends[pid] == "idle in transaction"));
            active += state == "active" ? 1 : 0;
        }
        CHECK(active == 3);

        const auto pools = show(admin, "POOLS");
        const auto app_pool = rows_where(pools, "database", "app");
        REQUIRE(app_pool.size() == 1);
        CHECK(pools.value(app_pool[0], "user") == "scram_user");
        CHECK(pools.value(app_pool[0], "cl_active") == "4");
        CHECK(pools.value(app_pool[0], "cl_waiting") == "0");
        CHECK(pools.value(app_pool[0], "sv_active") == "3");
        CHECK(pools.value(app_pool[0], "pool_mode") == "transaction");

        // One row per database and host, with the servers of every user's pool on that host.
        const auto hosts = show(admin, "HOSTS");
        const auto app_hosts = rows_where(hosts, "database", "app");
        REQUIRE(app_hosts.size() == 1);
        CHECK(hosts.value(app_hosts[0], "host") == "127.0.0.1");
        CHECK(hosts.value(app_hosts[0], "port") == std::to_string(setup().cluster.port(0)));
        CHECK(hosts.value(app_hosts[0], "sv_active") == "3");
        CHECK(hosts.value(app_hosts[0], "sv_idle") == pools.value(app_pool[0], "sv_idle"));
        CHECK(rows_where(hosts, "database", "other").size() == 1);

        const auto clients = show(admin, "CLIENTS");
        const auto app_clients = rows_where(clients, "database", "app");
        CHECK(app_clients.size() == 4);
        int linked = 0;
        for (const int row : app_clients) {
            const bool has_link = !clients.value(row, "link").empty();
            CHECK((clients.value(row, "state") == "active") == has_link);
            CHECK(clients.value(row, "addr") == "127.0.0.1");
            linked += has_link ? 1 : 0;
        }
        CHECK(linked == 3);
        CHECK(rows_where(clients, "database", "pgbouncer").size() == 1);

        for (auto& conn : busy)
            REQUIRE(conn.exec("COMMIT").ok());
        // The client has its reply a moment before its session gives the server back.
        std::string active_after;
        for (int attempt = 0; attempt < 50 && active_after != "0"; ++attempt) {
            if (attempt > 0) std::this_thread::sleep_for(20ms);
            const auto after = show(admin, "POOLS");
            active_after = after.value(rows_where(after, "database", "app").at(0), "sv_active");
        }
        CHECK(active_after == "0");
    }

    TEST_CASE("SHOW STATS counts transactions, queries, bytes and waits") {
        PGMARINA_LOG_ON_FAILURE();
        auto admin = console();
        const auto before = show(admin, "STATS_TOTALS");
        const int row = rows_where(before, "database", "other").at(0);
        const auto count = [&](const pq::Result& result, std::string_view column) {
            return std::stoll(result.value(row, column));
        };
        auto client = connect_as("scram_user", "other");
        for (int i = 0; i < 20; ++i)
            REQUIRE(client.exec("SELECT " + std::to_string(i)).ok());
        REQUIRE(client.exec("BEGIN").ok());
        REQUIRE(client.exec("SELECT 1").ok());
        REQUIRE(client.exec("COMMIT").ok());
        const auto after = show(admin, "STATS_TOTALS");
        CHECK(count(after, "xact_count") - count(before, "xact_count") == 21);
        CHECK(count(after, "query_count") - count(before, "query_count") == 23);
        CHECK(count(after, "server_assignment_count") - count(before, "server_assignment_count") ==
              21);
        CHECK(count(after, "bytes_received") > count(before, "bytes_received"));
        CHECK(count(after, "bytes_sent") > count(before, "bytes_sent"));
        CHECK(count(after, "xact_time") >=
              count(after, "query_time") - count(before, "query_time"));
    }

    TEST_CASE("psycopg 3 uses the console over the extended protocol") {
        PGMARINA_LOG_ON_FAILURE();
        // The Debian package installs psycopg for the system interpreter.
        const std::string script =
            std::string(std::getenv("PGMARINA_DRIVERS")) + "/psycopg_console.py";
        const auto output =
            run("PGHOST=127.0.0.1 PGPORT=" + std::to_string(setup().port) +
                " PGUSER=scram_user PGDATABASE=pgbouncer PGPASSWORD='" +
                setup().cluster.password("scram_user") + "' /usr/bin/python3 " + script);
        CHECK(output == "ok\n");
    }

    TEST_CASE("prepared statements show in SHOW STATS, CLIENTS and SERVERS") {
        PGMARINA_LOG_ON_FAILURE();
        auto admin = console();
        const auto totals = [&] {
            const auto stats = show(admin, "STATS");
            const int row = rows_where(stats, "database", "other").at(0);
            return std::array{std::stoll(stats.value(row, "total_client_parse_count")),
                              std::stoll(stats.value(row, "total_server_parse_count")),
                              std::stoll(stats.value(row, "total_bind_count"))};
        };
        const auto before = totals();
        auto client = connect_as("scram_user", "other");
        pq::OwnedResult prepared{PQprepare(client.native(), "s1", "SELECT $1::int", 0, nullptr)};
        REQUIRE(PQresultStatus(prepared.get()) == PGRES_COMMAND_OK);
        for (int i = 0; i < 3; ++i) {
            const char* value = "7";
            pq::OwnedResult executed{
                PQexecPrepared(client.native(), "s1", 1, &value, nullptr, nullptr, 0)};
            REQUIRE(PQresultStatus(executed.get()) == PGRES_TUPLES_OK);
        }
        const auto after = totals();
        CHECK(after[0] - before[0] == 1);
        CHECK(after[1] - before[1] >= 1);
        CHECK(after[2] - before[2] == 3);

        const auto clients = show(admin, "CLIENTS");
        const auto mine = rows_where(clients, "database", "other");
        REQUIRE(mine.size() == 1);
        CHECK(clients.value(mine[0], "prepared_statements") == "1");
        const auto servers = show(admin, "SERVERS");
        bool prepared_on_a_server = false;
        for (const int row : rows_where(servers, "database", "other"))
            prepared_on_a_server |= servers.value(row, "prepared_statements") != "0";
        CHECK(prepared_on_a_server);
    }

    TEST_CASE("stats users may only look; other users may not come in") {
        PGMARINA_LOG_ON_FAILURE();
        auto stats = connect_as("md5_user", "pgbouncer");
        CHECK(stats.exec("SHOW POOLS").ok());
        const auto refused = stats.exec("PAUSE");
        CHECK(refused.sqlstate() == "42501");
        const auto bad = stats.exec("SHOW NOTHING");
        CHECK(bad.sqlstate() == "42601");
        CHECK(stats.exec("SHOW VERSION").ok()); // the session goes on after errors

        auto outsider = pq::Connection::connect(setup().pgmarina.conninfo(
            "plain_user", setup().cluster.password("plain_user"), "pgbouncer"));
        CHECK_FALSE(outsider.ok());
    }

    TEST_CASE("PAUSE waits for running transactions, holds new ones until RESUME") {
        PGMARINA_LOG_ON_FAILURE();
        auto admin = console();
        auto running = connect_as("scram_user", "app");
        REQUIRE(running.exec("BEGIN").ok());
        REQUIRE(running.exec("SELECT 1").ok());

        // PAUSE returns only once the open transaction has ended.
        auto pauser = console();
        REQUIRE(PQsendQuery(pauser.native(), "PAUSE app") == 1);
        std::this_thread::sleep_for(300ms);
        REQUIRE(PQconsumeInput(pauser.native()) == 1);
        CHECK(PQisBusy(pauser.native()) == 1);
        REQUIRE(running.exec("COMMIT").ok());
        const auto paused = pq::all_results(pauser.native());
        REQUIRE_FALSE(paused.empty());
        CHECK(pq::status_of(paused.front()) == "PGRES_COMMAND_OK");

        const auto databases = show(admin, "DATABASES");
        CHECK(databases.value(rows_where(databases, "name", "app").at(0), "paused") == "1");
        CHECK(databases.value(rows_where(databases, "name", "other").at(0), "paused") == "0");
        // Its servers are gone, as PgBouncer's are after PAUSE.
        const auto pools = show(admin, "POOLS");
        CHECK(pools.value(rows_where(pools, "database", "app").at(0), "sv_idle") == "0");

        // A new transaction waits, and is counted as waiting; another database is not held.
        REQUIRE(PQsendQuery(running.native(), "SELECT 42") == 1);
        auto other = connect_as("scram_user", "other");
        CHECK(other.exec("SELECT 1").ok());
        std::this_thread::sleep_for(300ms);
        REQUIRE(PQconsumeInput(running.native()) == 1);
        CHECK(PQisBusy(running.native()) == 1);
        const auto waiting = show(admin, "CLIENTS");
        CHECK_FALSE(rows_where(waiting, "state", "waiting").empty());

        REQUIRE(admin.exec("RESUME app").ok());
        const auto resumed = pq::all_results(running.native());
        REQUIRE_FALSE(resumed.empty());
        CHECK(pq::value_of(resumed.front()) == "42");
    }

    TEST_CASE("DISABLE refuses new clients of a database until ENABLE") {
        PGMARINA_LOG_ON_FAILURE();
        auto admin = console();
        REQUIRE(admin.exec("DISABLE other").ok());
        auto refused = pq::Connection::connect(setup().pgmarina.conninfo(
            "scram_user", setup().cluster.password("scram_user"), "other"));
        CHECK_FALSE(refused.ok());
        CHECK(refused.sqlstate() == "55000");
        REQUIRE(admin.exec("ENABLE other").ok());
        auto welcome = connect_as("scram_user", "other");
        CHECK(welcome.exec("SELECT 1").ok());
        CHECK(admin.exec("DISABLE nosuchdb").sqlstate() == "3D000");
    }

    TEST_CASE("KILL_CLIENT closes that client only; RECONNECT and WAIT_CLOSE renew servers") {
        PGMARINA_LOG_ON_FAILURE();
        auto admin = console();
        auto victim = connect_as("scram_user", "app");
        auto bystander = connect_as("scram_user", "app");
        REQUIRE(victim.exec("SELECT 1").ok());
        const auto clients = show(admin, "CLIENTS");
        std::string victim_id;
        const std::string victim_port = std::to_string([&] {
            sockaddr_storage address{};
            socklen_t length = sizeof address;
            ::getsockname(PQsocket(victim.native()), reinterpret_cast<sockaddr*>(&address),
                          &length);
            return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
        }());
        for (const int row : rows_where(clients, "port", victim_port))
            victim_id = clients.value(row, "id");
        REQUIRE_FALSE(victim_id.empty());
        REQUIRE(admin.exec("KILL_CLIENT " + victim_id).ok());
        std::this_thread::sleep_for(200ms);
        CHECK_FALSE(victim.exec("SELECT 1").ok());
        CHECK(bystander.exec("SELECT 1").ok());
        CHECK(admin.exec("KILL_CLIENT 999999").sqlstate() == "08P01");

        auto direct = pq::Connection::connect(setup().cluster.conninfo(0, "postgres", "app"));
        const auto pids = [&] {
            std::set<std::string> all;
            const auto servers = show(admin, "SERVERS");
            for (const int row : rows_where(servers, "database", "app"))
                all.insert(servers.value(row, "remote_pid"));
            return all;
        };
        const auto old_pids = pids();
        REQUIRE_FALSE(old_pids.empty());
        REQUIRE(admin.exec("RECONNECT app").ok());
        REQUIRE(admin.exec("WAIT_CLOSE app").ok());
        REQUIRE(bystander.exec("SELECT 1").ok());
        for (const auto& pid : pids())
            CHECK_FALSE(old_pids.contains(pid));
    }

    TEST_CASE("/metrics has the exporter's names and ours, and passes promtool") {
        PGMARINA_LOG_ON_FAILURE();
        auto client = connect_as("scram_user", "app");
        REQUIRE(client.exec("SELECT 1").ok());
        const auto response = http_get("/metrics");
        REQUIRE(response.starts_with("HTTP/1.1 200"));
        const auto body = response.substr(response.find("\r\n\r\n") + 4);
        for (const char* expected :
             {"pgbouncer_up 1", "pgbouncer_pools_client_active_connections{",
              "pgbouncer_stats_totals_queries_pooled_total{database=\"app\"}",
              "pgbouncer_databases_pool_size{", "pgbouncer_used_clients ",
              "pgbouncer_config_max_client_connections ", "pgbouncer_client_connections{",
              "pgbouncer_version_info{", "pgmarina_query_duration_seconds_bucket{database=\"app\"",
              "pgmarina_pool_wait_seconds_count{database=\"app\"}"}) {
            CAPTURE(expected);
            CHECK(body.find(expected) != std::string::npos);
        }
        const auto file = std::filesystem::temp_directory_path() / "pgmarina-console-metrics.txt";
        std::ofstream(file) << body;
        CHECK(run("promtool check metrics < " + file.string()).empty());
        std::filesystem::remove(file);

        CHECK(http_get("/healthz").starts_with("HTTP/1.1 200"));
        CHECK(http_get("/readyz").starts_with("HTTP/1.1 200"));
    }

    TEST_CASE("a wrong password counts as an auth failure in /metrics") {
        PGMARINA_LOG_ON_FAILURE();
        auto refused = pq::Connection::connect(
            setup().pgmarina.conninfo("scram_user", "not-the-password", "app"));
        CHECK_FALSE(refused.ok());
        const auto body = http_get("/metrics");
        const auto at = body.find("pgmarina_auth_failures_total{database=\"app\",method=\"scram-"
                                  "sha-256\",user=\"scram_user\"} ");
        INFO(body.substr(body.find("pgmarina_auth")));
        CHECK(at != std::string::npos);
    }

    TEST_CASE("Debian's prometheus-pgbouncer-exporter scrapes a pgmarina with legacy columns") {
        PGMARINA_LOG_ON_FAILURE();
        // The 2015 exporter Debian ships reads SHOW STATS total_requests and SHOW DATABASES
        // reserve_pool, which PgBouncer itself no longer has: admin_legacy_columns adds them.
        const std::uint16_t port = PgmarinaProcess::free_port();
        std::string config = config_for(setup().cluster, port, PgmarinaProcess::free_port());
        config.replace(config.find("[metrics]"), 0, "admin_legacy_columns = true\n");
        PgmarinaProcess legacy{config, port};
        const std::uint16_t exporter_port = PgmarinaProcess::free_port();
        const std::string exporter_log =
            (std::filesystem::temp_directory_path() / "pgmarina-exporter.log").string();
        const std::string environment =
            "PGPASSWORD='" + setup().cluster.password("scram_user") +
            "' PGBOUNCER_HOST=127.0.0.1 PGBOUNCER_PORT=" + std::to_string(port) +
            " PGBOUNCER_USER=scram_user HOST=127.0.0.1 PORT=" + std::to_string(exporter_port);
        run(environment + " setsid prometheus-pgbouncer-exporter > " + exporter_log +
            " 2>&1 & echo $! > " + exporter_log + ".pid");
        std::string scrape;
        for (int attempt = 0; attempt < 50 && scrape.empty(); ++attempt) {
            std::this_thread::sleep_for(100ms);
            scrape = run("/usr/bin/python3 -c \"import urllib.request,sys; "
                         "sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:" +
                         std::to_string(exporter_port) +
                         "/metrics').read().decode())\" 2>/dev/null || true");
        }
        run("kill $(cat " + exporter_log + ".pid)");
        INFO(run("cat " + exporter_log));
        CHECK(scrape.find("pgbouncer_requests_total{database=\"app\"}") != std::string::npos);
        CHECK(scrape.find("# TYPE pgbouncer_active_clients gauge") != std::string::npos);
        CHECK(scrape.find("pgbouncer_reserve_pool{database=\"app\"}") != std::string::npos);
        CHECK(scrape.find("pgbouncer_used_clients") != std::string::npos);
        const auto stats =
            legacy.conninfo("scram_user", setup().cluster.password("scram_user"), "pgbouncer");
        auto admin = pq::Connection::connect(stats);
        REQUIRE(admin.ok());
        CHECK(show(admin, "STATS").field_names().back() == "total_requests");
        CHECK(show(admin, "DATABASES").field_names().back() == "reserve_pool");
    }

    TEST_CASE("SET and RELOAD change settings live; a broken file changes nothing") {
        PGMARINA_LOG_ON_FAILURE();
        const std::uint16_t port = PgmarinaProcess::free_port();
        const std::string config = config_for(setup().cluster, port, PgmarinaProcess::free_port());
        PgmarinaProcess own{config, port};
        const auto connect = [&](std::string_view user, std::string_view dbname) {
            return pq::Connection::connect(
                own.conninfo(user, setup().cluster.password(user), dbname));
        };
        auto admin = connect("scram_user", "pgbouncer");
        REQUIRE(admin.ok());
        const auto setting = [&](std::string_view key) {
            const auto table = show(admin, "CONFIG");
            return table.value(rows_where(table, "key", key).at(0), "value");
        };
        const auto pool_size = [&](std::string_view database) {
            const auto table = show(admin, "DATABASES");
            return table.value(rows_where(table, "name", database).at(0), "pool_size");
        };

        // A client holds a server of the old pool across the change.
        auto client = connect("scram_user", "app");
        REQUIRE(client.ok());
        REQUIRE(client.exec("SELECT 1").ok());
        REQUIRE(admin.exec("SET default_pool_size = 2").ok());
        CHECK(setting("default_pool_size") == "2");
        CHECK(pool_size("app") == "2");
        CHECK(admin.exec("SET pool_mode = 'session'").ok());
        CHECK(setting("pool_mode") == "session");
        CHECK(admin.exec("SET default_pool_size = -5").sqlstate() == "22023");
        CHECK(admin.exec("SET workers = 3").sqlstate() == "55P02");
        CHECK(admin.exec("SET no_such_thing = 1").sqlstate() == "42704");
        // The client moves to the new pool at its next transaction.
        CHECK(client.exec("SELECT 2").ok());

        // RELOAD reads the file again: a new database appears, and the SETs are undone.
        std::ofstream(own.config_path(), std::ios::app)
            << "\n[databases.added]\ndbname = \"app\"\nhosts = [\"127.0.0.1:"
            << setup().cluster.port(0) << "\"]\n";
        REQUIRE(admin.exec("RELOAD").ok());
        CHECK(setting("default_pool_size") == "4");
        auto added = connect("scram_user", "added");
        REQUIRE_MESSAGE(added.ok(), added.error_message());
        CHECK(added.exec("SELECT 1").ok());

        std::ofstream(own.config_path(), std::ios::app) << "\nnot toml at all [\n";
        const auto broken = admin.exec("RELOAD");
        CHECK(broken.sqlstate() == "F0000");
        CHECK(setting("default_pool_size") == "4");
        CHECK(client.exec("SELECT 3").ok());

        // SIGHUP reloads too, and does not end the process.
        std::ofstream(own.config_path()) << config;
        REQUIRE(::kill(own.pid(), SIGHUP) == 0);
        std::this_thread::sleep_for(300ms);
        auto again = connect("scram_user", "app");
        CHECK(again.ok());
        CHECK_FALSE(connect("scram_user", "added").ok());
    }

    TEST_CASE("SIGTERM waits for clients and stops listening; SIGUSR1 pauses, SIGUSR2 resumes") {
        PGMARINA_LOG_ON_FAILURE();
        const std::uint16_t port = PgmarinaProcess::free_port();
        PgmarinaProcess own{config_for(setup().cluster, port, PgmarinaProcess::free_port()), port};
        const auto connect = [&](std::string_view dbname) {
            return pq::Connection::connect(
                own.conninfo("scram_user", setup().cluster.password("scram_user"), dbname));
        };
        std::optional<pq::Connection> admin = connect("pgbouncer");
        REQUIRE(admin->ok());
        const auto state = [&](std::string_view key) {
            const auto table = show(*admin, "STATE");
            return table.value(rows_where(table, "key", key).at(0), "value");
        };
        REQUIRE(::kill(own.pid(), SIGUSR1) == 0);
        std::this_thread::sleep_for(200ms);
        CHECK(state("paused") == "yes");
        REQUIRE(::kill(own.pid(), SIGUSR2) == 0);
        std::this_thread::sleep_for(200ms);
        CHECK(state("paused") == "no");

        std::optional<pq::Connection> client = connect("app");
        REQUIRE(client->ok());
        REQUIRE(client->exec("SELECT 1").ok());
        // A transaction that ends once the shutdown has begun closes its client (57P01 after
        // its ReadyForQuery); this client must be idle before it: its session looks at the
        // shutdown a little after the client has read the ReadyForQuery (longer under ASan).
        std::this_thread::sleep_for(100ms);
        REQUIRE(::kill(own.pid(), SIGTERM) == 0);
        std::this_thread::sleep_for(300ms);
        // Nothing listens any more (restart_test.cpp: another process on the port takes over).
        const auto refused = connect("app");
        CHECK_FALSE(refused.ok());
        CHECK(refused.sqlstate().empty());
        CHECK(client->exec("SELECT 2").ok()); // the clients already in are served
        CHECK_FALSE(exited(own.pid()));
        client.reset();
        admin.reset();
        // Every client gone: the process exits by itself (a zombie until the test reaps it).
        bool gone = false;
        for (int attempt = 0; attempt < 50 && !gone; ++attempt) {
            std::this_thread::sleep_for(100ms);
            gone = exited(own.pid());
        }
        CHECK(gone);
    }
}
