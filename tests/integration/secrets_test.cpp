// What pgmarina must never give away or let through, with real clients in front of PostgreSQL 15:
// no secret it knows (passwords in [users], the auth_file's md5 hash, SCRAM verifiers and their
// keys, a database's forced-user password, health_check_password, the TLS private key) in a log
// line, a console answer or /metrics, whatever logins, reloads and console commands happened;
// the console only for admin_users (everything) and stats_users (SHOW only); and no client
// reaching a database or user the configuration does not define.

#include "tests/support/http.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_certificates.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;

const std::string admin_password = "Admin-Console-Secret-5417";
const std::string watcher_password = "Stats-Watcher-Secret-9023";
const std::string outsider_password = "Outsider-Secret-3388";
// What an admin SETs health_check_password to, late in a test.
const std::string set_password = "Set-Through-Console-Secret-6142";

pq::Connection superuser(const PgCluster& cluster) {
    auto conn = pq::Connection::connect(cluster.conninfo(0, "postgres", "app"));
    if (!conn.ok()) throw std::runtime_error("superuser connection: " + conn.error_message());
    return conn;
}

std::string stored_secret(const PgCluster& cluster, const std::string& user) {
    auto admin = superuser(cluster);
    const auto result =
        admin.exec("SELECT rolpassword FROM pg_authid WHERE rolname = '" + user + "'");
    if (!result.ok() || result.ntuples() != 1) throw std::runtime_error("no secret of " + user);
    return result.value(0, 0);
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

struct Setup {
    Setup() {
        // A role PostgreSQL knows and pgmarina does not: its right password must get nowhere.
        auto admin = superuser(cluster);
        const auto made =
            admin.exec("CREATE ROLE outsider LOGIN PASSWORD '" + outsider_password + "'");
        if (!made.ok()) throw std::runtime_error("outsider: " + made.error_message());
        std::ofstream(dir / "userlist.txt") << "\"md5_user\" \"" << md5_hash << "\"\n";
        std::ofstream(dir / "pgmarina.toml") << config();
        pgmarina.emplace(read_file(dir / "pgmarina.toml"), port);
    }
    Setup(const Setup&) = delete;
    Setup& operator=(const Setup&) = delete;
    ~Setup() {
        pgmarina.reset();
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }

    std::string config() const {
        const std::string hosts =
            "hosts = [\"127.0.0.1:" + std::to_string(cluster.port(0)) + "\"]\n";
        return "[pgmarina]\nlisten = [\"127.0.0.1:" + std::to_string(port) +
               "\"]\nunix_socket_dir = \"\"\nworkers = 2\n"
               "auth_type = \"md5\"\n"
               "auth_file = \"" +
               (dir / "userlist.txt").string() +
               "\"\n"
               "admin_users = [\"admin\"]\nstats_users = [\"watcher\"]\n"
               "client_tls_sslmode = \"allow\"\n"
               "client_tls_cert_file = \"" +
               tls.cert.string() + "\"\nclient_tls_key_file = \"" + tls.key.string() +
               "\"\n"
               "health_check_user = \"postgres\"\nhealth_check_password = \"" +
               cluster.password("postgres") +
               "\"\n"
               "log_connections = true\nlog_disconnections = true\n"
               "[metrics]\nlisten = \"127.0.0.1:" +
               std::to_string(metrics_port) + "\"\n[databases.app]\n" + hosts +
               "[databases.forced]\ndbname = \"app\"\nuser = \"plain_user\"\npassword = \"" +
               cluster.password("plain_user") + "\"\n" + hosts +
               "[users.scram_user]\npassword = \"" + scram_verifier +
               "\"\n[users.plain_user]\npassword = \"" + cluster.password("plain_user") +
               "\"\n[users.admin]\npassword = \"" + admin_password +
               "\"\n[users.watcher]\npassword = \"" + watcher_password + "\"\n";
    }

    // Every secret pgmarina knows, as it knows it and in the pieces that are secrets too.
    std::vector<std::string> secrets() const {
        std::vector<std::string> out{cluster.password("postgres"),
                                     cluster.password("scram_user"),
                                     cluster.password("md5_user"),
                                     cluster.password("plain_user"),
                                     admin_password,
                                     watcher_password,
                                     outsider_password,
                                     md5_hash,
                                     md5_hash.substr(3),
                                     scram_verifier};
        // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
        const auto dollar = scram_verifier.rfind('$');
        const auto colon = scram_verifier.rfind(':');
        out.push_back(scram_verifier.substr(dollar + 1, colon - dollar - 1));
        out.push_back(scram_verifier.substr(colon + 1));
        // The private key's base64 lines (its PEM armour is no secret).
        std::istringstream key(read_file(tls.key));
        for (std::string line; std::getline(key, line);) {
            if (!line.starts_with("-----") && line.size() >= 16) out.push_back(line);
        }
        return out;
    }

    PgCluster cluster{{.replicas = 0}};
    std::string md5_hash = stored_secret(cluster, "md5_user");
    std::string scram_verifier = stored_secret(cluster, "scram_user");
    std::filesystem::path dir =
        support::make_temp_dir(std::filesystem::temp_directory_path(), "pgmarina-secrets.");
    support::TestAuthority authority{dir, "secrets-ca"};
    support::CertificateFiles tls = authority.server("pgmarina");
    std::uint16_t port = PgmarinaProcess::free_port();
    std::uint16_t metrics_port = PgmarinaProcess::free_port();
    std::optional<PgmarinaProcess> pgmarina;
};

Setup& setup() {
    static Setup instance;
    return instance;
}

#define PGMARINA_LOG_ON_FAILURE()                                                                  \
    INFO("end of pgmarina's log:" << support::log_tail(*setup().pgmarina))

std::string password_of(const std::string& user) {
    if (user == "admin") return admin_password;
    if (user == "watcher") return watcher_password;
    if (user == "outsider") return outsider_password;
    return setup().cluster.password(user);
}

pq::Connection connect(const std::string& user, const std::string& password,
                       const std::string& dbname) {
    return pq::Connection::connect(setup().pgmarina->conninfo(user, password, dbname));
}

pq::Connection console(const std::string& user) {
    auto conn = connect(user, password_of(user), "pgbouncer");
    REQUIRE_MESSAGE(conn.ok(), conn.error_message());
    return conn;
}

// A result as text: every column name and cell, and the error, for a search.
std::string text_of(const pq::Result& result) {
    std::string text = result.error_message();
    for (const auto& name : result.field_names())
        text += name + "|";
    for (int r = 0; r < result.ntuples(); ++r) {
        for (int c = 0; c < result.nfields(); ++c)
            text += result.value(r, c) + "|";
        text += "\n";
    }
    return text;
}

const std::vector<std::string> show_subjects{
    "POOLS",   "STATS",   "STATS_TOTALS", "STATS_AVERAGES", "TOTALS", "CLIENTS",
    "SERVERS", "SOCKETS", "DATABASES",    "USERS",          "CONFIG", "LISTS",
    "VERSION", "STATE",   "HELP",         "HOSTS"};

// Everything the console shows `user`, SHOW by SHOW, into `seen` (subject → text).
void show_everything(const std::string& user, std::map<std::string, std::string>& seen) {
    auto conn = console(user);
    for (const auto& subject : show_subjects) {
        const auto result = conn.exec("SHOW " + subject);
        CHECK_MESSAGE(result.ok(), subject << ": " << result.error_message());
        seen[user + " SHOW " + subject] += text_of(result);
    }
}

void check_no_secret(const std::map<std::string, std::string>& seen,
                     const std::vector<std::string>& secrets) {
    for (const auto& entry : seen) {
        for (const auto& secret : secrets) {
            if (entry.second.find(secret) != std::string::npos)
                FAIL_CHECK("a secret (" << secret.substr(0, 4) << "...) is in " << entry.first);
        }
    }
}

} // namespace

TEST_SUITE("integration.secrets") {

    TEST_CASE("no secret in a log line, a console answer or /metrics, after logins and RELOAD") {
        PGMARINA_LOG_ON_FAILURE();
        std::map<std::string, std::string> seen;
        // Logins, good and bad, of every kind of user and secret; the forced user's database.
        for (const std::string user : {"scram_user", "md5_user", "plain_user"}) {
            CAPTURE(user);
            auto good = connect(user, password_of(user), "app");
            REQUIRE_MESSAGE(good.ok(), good.error_message());
            CHECK(good.exec("SELECT current_user").value(0, 0) == user);
            auto bad = connect(user, "wrong-" + user, "app");
            CHECK(bad.sqlstate() == "28P01");
            seen["login errors"] += bad.error_message();
        }
        auto forced = connect("scram_user", password_of("scram_user"), "forced");
        REQUIRE_MESSAGE(forced.ok(), forced.error_message());
        CHECK(forced.exec("SELECT current_user").value(0, 0) == "plain_user");
        for (const std::string user : {"admin", "watcher"}) {
            auto bad = connect(user, "wrong-" + user, "pgbouncer");
            CHECK(bad.sqlstate() == "28P01");
            seen["login errors"] += bad.error_message();
        }
        auto outsider = connect("outsider", outsider_password, "app");
        CHECK_FALSE(outsider.ok());
        seen["login errors"] += outsider.error_message();
        // A client over TLS, so that the key has been used.
        auto tls = pq::Connection::connect(
            setup().pgmarina->conninfo("scram_user", password_of("scram_user"), "app") +
            " sslmode=require");
        CHECK_MESSAGE(tls.ok(), tls.error_message());

        show_everything("admin", seen);
        show_everything("watcher", seen);
        {
            auto admin = console("admin");
            CHECK(admin.exec("SET default_pool_size = 7").ok());
            const auto set = admin.exec("SET health_check_password = '" + set_password + "'");
            CHECK_MESSAGE(set.ok(), set.error_message());
            seen["SET"] += text_of(set);
            const auto reload = admin.exec("RELOAD");
            CHECK_MESSAGE(reload.ok(), reload.error_message());
            seen["RELOAD"] += text_of(reload);
        }
        show_everything("admin", seen);
        seen["/metrics"] = support::http_get(setup().metrics_port, "/metrics");
        // Whatever was logged for all that: the login lines show that there is a log to search.
        const std::string log = setup().pgmarina->log();
        REQUIRE(log.find("login attempt: ok") != std::string::npos);
        seen["pgmarina's log"] = log;

        auto secrets = setup().secrets();
        secrets.push_back(set_password);
        check_no_secret(seen, secrets);
    }

    TEST_CASE("stats_users may only SHOW: every other console command is refused") {
        PGMARINA_LOG_ON_FAILURE();
        auto victim = connect("scram_user", password_of("scram_user"), "app");
        REQUIRE_MESSAGE(victim.ok(), victim.error_message());
        REQUIRE(victim.exec("SELECT 1").ok());
        auto admin = console("admin");
        const auto clients = admin.exec("SHOW CLIENTS");
        REQUIRE(clients.ok());
        std::string victim_id;
        for (int r = 0; r < clients.ntuples(); ++r) {
            if (clients.value(r, "database") == "app") victim_id = clients.value(r, "id");
        }
        REQUIRE_FALSE(victim_id.empty());
        const auto pool_size = [&admin] {
            const auto config = admin.exec("SHOW CONFIG");
            for (int r = 0; r < config.ntuples(); ++r) {
                if (config.value(r, "key") == "default_pool_size") return config.value(r, "value");
            }
            return std::string("(none)");
        };
        const std::string pool_size_before = pool_size();

        auto watcher = console("watcher");
        const std::vector<std::string> commands{"PAUSE",
                                                "PAUSE app",
                                                "RESUME",
                                                "DISABLE app",
                                                "ENABLE app",
                                                "RECONNECT",
                                                "RECONNECT app",
                                                "KILL app",
                                                "KILL_CLIENT " + victim_id,
                                                "SUSPEND",
                                                "RELOAD",
                                                "WAIT_CLOSE",
                                                "SET default_pool_size = 1",
                                                "SHUTDOWN",
                                                "SHUTDOWN WAIT_FOR_CLIENTS"};
        for (const auto& command : commands) {
            CAPTURE(command);
            const auto refused = watcher.exec(command);
            CHECK_FALSE(refused.ok());
            CHECK_MESSAGE(refused.sqlstate() == "42501", refused.error_message());
        }
        // None of it happened: the victim goes on, the setting is as it was, pgmarina is up.
        const auto after = victim.exec("SELECT 2", 3s);
        CHECK_MESSAGE(after.ok(), after.error_message());
        CHECK(pool_size() == pool_size_before);
        CHECK(setup().pgmarina->running());
        for (const auto& subject : show_subjects)
            CHECK_MESSAGE(watcher.exec("SHOW " + subject).ok(), subject);

        // An admin may: KILL_CLIENT closes the victim.
        CHECK(admin.exec("KILL_CLIENT " + victim_id).ok());
        const auto killed = victim.exec("SELECT 3", 3s);
        CHECK_FALSE(killed.ok());
    }

    TEST_CASE("only configured databases and users: no fallthrough to PostgreSQL's own") {
        PGMARINA_LOG_ON_FAILURE();
        struct Attempt {
            std::string user;
            std::string password;
            std::string dbname;
            std::string sqlstate;
        };
        const std::vector<Attempt> attempts{
            // PostgreSQL has the database "postgres"; pgmarina does not define it.
            {"scram_user", password_of("scram_user"), "postgres", "3D000"},
            {"scram_user", password_of("scram_user"), "no_such_db", "3D000"},
            // PostgreSQL's roles with their right passwords, unknown to pgmarina.
            {"outsider", outsider_password, "app", "28P01"},
            {"postgres", setup().cluster.password("postgres"), "app", "28P01"},
            // The console: users on neither list, even with their right password.
            {"scram_user", password_of("scram_user"), "pgbouncer", "28000"},
            {"md5_user", password_of("md5_user"), "pgmarina", "28000"},
            {"outsider", outsider_password, "pgbouncer", "28P01"},
            {"postgres", setup().cluster.password("postgres"), "pgmarina", "28P01"},
        };
        auto direct = superuser(setup().cluster);
        const auto outsider_backends = [&direct] {
            return direct.exec("SELECT count(*) FROM pg_stat_activity WHERE usename = 'outsider'")
                .value(0, 0);
        };
        for (const auto& attempt : attempts) {
            CAPTURE(attempt.user);
            CAPTURE(attempt.dbname);
            auto conn = connect(attempt.user, attempt.password, attempt.dbname);
            CHECK_FALSE(conn.ok());
            CHECK_MESSAGE(conn.sqlstate() == attempt.sqlstate, conn.error_message());
            CHECK(outsider_backends() == "0");
        }
        // The console users reach the console only, not a database as themselves.
        auto admin = console("admin");
        CHECK(admin.exec("SHOW VERSION").ok());
        CHECK_FALSE(admin.exec("SELECT current_user").ok());
    }
}
