#include "proxy/config.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using proxy::Config;
using proxy::Endpoint;
using proxy::PoolMode;

namespace {

const std::filesystem::path source_root = PGMARINA_SOURCE_ROOT;

// Loads `toml`, which must be valid.
std::shared_ptr<const Config> load(std::string_view toml) {
    auto result = proxy::load_config_string(toml, "test.toml");
    for (const auto& error : result.errors()) {
        FAIL_CHECK(error.to_string());
    }
    REQUIRE(result.ok());
    return result.config();
}

// Loads `toml`, which must be invalid, and returns its errors as "test.toml:L:C: message".
std::vector<std::string> errors_of(std::string_view toml) {
    auto result = proxy::load_config_string(toml, "test.toml");
    REQUIRE_FALSE(result.ok());
    REQUIRE_FALSE(result.errors().empty());
    std::vector<std::string> out;
    for (const auto& error : result.errors()) {
        out.push_back(error.to_string());
    }
    return out;
}

// The one error of an invalid `toml`.
std::string error_of(std::string_view toml) {
    auto errors = errors_of(toml);
    CHECK_MESSAGE(errors.size() == 1, errors.back());
    return errors.front();
}

std::vector<std::filesystem::path> toml_files(const std::filesystem::path& directory) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(directory)) {
        if (entry.path().extension() == ".toml") {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::string first_line(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

} // namespace

TEST_SUITE("proxy.config") {
    TEST_CASE("an empty file gives the defaults") {
        auto config = load("");
        CHECK(config->settings == proxy::Settings{});
        CHECK(config->metrics == proxy::MetricsSettings{});
        CHECK(config->databases.empty());
        CHECK(config->users.empty());
        CHECK(config->source == "test.toml");
    }

    TEST_CASE("the built-in defaults are an empty file's") {
        Config expected = *load("");
        expected.source.clear();
        CHECK(*proxy::default_config() == expected);
    }

    // The documented defaults, spelled out: PgBouncer's unless the settings table says why not.
    // Changing a default must change this test too.
    TEST_CASE("defaults are PgBouncer's, except where we say so") {
        const proxy::Settings s;
        CHECK(s.listen == std::vector{Endpoint{"127.0.0.1", 6432}});
        CHECK(s.unix_socket_dir == "/tmp");
        CHECK(s.workers == 0);
        CHECK(s.pool_mode == PoolMode::transaction); // PgBouncer: session
        CHECK(s.default_pool_size == 20);
        CHECK(s.min_pool_size == 0);
        CHECK(s.reserve_pool_size == 0);
        CHECK(s.reserve_pool_timeout == 5s);
        CHECK(s.max_client_conn == 100);
        CHECK(s.max_db_connections == 0);
        CHECK(s.max_user_connections == 0);
        CHECK(s.auth_type == proxy::AuthType::md5);
        CHECK(s.auth_file.empty());
        CHECK(s.auth_hba_file.empty());
        CHECK(s.admin_users.empty());
        CHECK(s.stats_users.empty());
        CHECK(s.ignore_startup_parameters.empty());
        CHECK(s.server_reset_query == "DISCARD ALL");
        CHECK_FALSE(s.server_reset_query_always);
        CHECK(s.server_check_query == "<empty>");
        CHECK(s.server_check_delay == 30s);
        CHECK(s.server_lifetime == 3600s);
        CHECK(s.server_idle_timeout == 600s);
        CHECK(s.server_connect_timeout == 15s);
        CHECK(s.server_login_retry == 15s);
        CHECK(s.query_timeout == 0s);
        CHECK(s.query_wait_timeout == 120s);
        CHECK(s.cancel_wait_timeout == 10s);
        CHECK(s.client_idle_timeout == 0s);
        CHECK(s.client_login_timeout == 60s);
        CHECK(s.idle_transaction_timeout == 0s);
        CHECK(s.tcp_keepalive);
        CHECK(s.tcp_keepidle == 0);
        CHECK(s.tcp_keepintvl == 0);
        CHECK(s.tcp_keepcnt == 0);
        CHECK(s.max_prepared_statements == 200);
        CHECK(s.max_packet_size.bytes == 2147483647);
        CHECK(s.pkt_buf.bytes == 4096);
        CHECK_FALSE(s.application_name_add_host);
        CHECK(s.log_connections);
        CHECK(s.log_disconnections);
        CHECK(s.stats_period == 60s);
        CHECK(s.shutdown_timeout == 30s); // pgmarina only
        CHECK(proxy::MetricsSettings{}.listen == Endpoint{"0.0.0.0", 9127});
    }

    TEST_CASE("global settings of every type") {
        auto config = load(R"(
            [pgmarina]
            listen = ["0.0.0.0:7432", "[::]"]
            unix_socket_dir = ""
            workers = 4
            pool_mode = "session"
            default_pool_size = 50
            auth_type = "scram-sha-256"
            admin_users = ["admin", "ops"]
            server_reset_query_always = true
            query_wait_timeout = "2min"
            server_lifetime = 1800
            reserve_pool_timeout = 0.5
            max_packet_size = "64MB"
            pkt_buf = 8192

            [metrics]
            listen = ""
        )");
        const auto& s = config->settings;
        CHECK(s.listen == std::vector{Endpoint{"0.0.0.0", 7432}, Endpoint{"::", 6432}});
        CHECK(s.unix_socket_dir.empty());
        CHECK(s.workers == 4);
        CHECK(s.pool_mode == PoolMode::session);
        CHECK(s.default_pool_size == 50);
        CHECK(s.auth_type == proxy::AuthType::scram_sha_256);
        CHECK(s.admin_users == std::vector<std::string>{"admin", "ops"});
        CHECK(s.server_reset_query_always);
        CHECK(s.query_wait_timeout == 120s);
        CHECK(s.server_lifetime == 1800s);
        CHECK(s.reserve_pool_timeout == 500ms);
        CHECK(s.max_packet_size.bytes == 64 * 1024 * 1024);
        CHECK(s.pkt_buf.bytes == 8192);
        CHECK_FALSE(config->metrics.listen.has_value());
    }

    TEST_CASE("databases: dbname defaults to the name, unset values stay unset") {
        auto config = load(R"(
            [databases.app]
            hosts = ["pg-0", "pg-1:5433", "[fd00::1]"]
            routing = "read_write_split"
            max_replica_lag = "16MB"
            pool_size = 30

            [databases.reports]
            dbname = "app"
            hosts = ["pg-1"]
            routing = "replicas_only"
            min_pool_size = 2
            pool_mode = "session"
            max_db_connections = 40
            user = "reporter"
            password = "secret"
        )");
        REQUIRE(config->databases.size() == 2);
        const auto& app = config->databases.at("app");
        CHECK(app.dbname == "app");
        CHECK(app.hosts == std::vector{Endpoint{"pg-0", 5432}, Endpoint{"pg-1", 5433},
                                       Endpoint{"fd00::1", 5432}});
        CHECK(app.routing == proxy::Routing::read_write_split);
        CHECK(app.max_replica_lag.bytes == 16 * 1024 * 1024);
        CHECK(app.pool_size == 30);
        CHECK_FALSE(app.min_pool_size);
        CHECK_FALSE(app.reserve_pool_size);
        CHECK_FALSE(app.pool_mode);
        CHECK_FALSE(app.max_db_connections);
        CHECK_FALSE(app.user);
        CHECK_FALSE(app.password);

        const auto& reports = config->databases.at("reports");
        CHECK(reports.dbname == "app");
        CHECK(reports.routing == proxy::Routing::replicas_only);
        CHECK(reports.max_replica_lag.bytes == 1024 * 1024);
        CHECK(reports.min_pool_size == 2);
        CHECK(reports.pool_mode == PoolMode::session);
        CHECK(reports.max_db_connections == 40);
        CHECK(reports.user == "reporter");
        CHECK(reports.password == "secret");
    }

    TEST_CASE("users") {
        auto config = load(R"(
            [users.alice]
            pool_size = 30
            [users."bob smith"]
            password = "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5"
            pool_mode = "statement"
            max_user_connections = 5
            [users.carol]
        )");
        REQUIRE(config->users.size() == 3);
        CHECK(config->users.at("alice").pool_size == 30);
        CHECK_FALSE(config->users.at("alice").password);
        const auto& bob = config->users.at("bob smith");
        CHECK(bob.password == "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5");
        CHECK(bob.pool_mode == PoolMode::statement);
        CHECK(bob.max_user_connections == 5);
        CHECK(config->users.at("carol") == proxy::UserConfig{});
    }

    TEST_CASE("relative auth files are relative to the configuration file") {
        auto nested = proxy::load_config_string(
            "[pgmarina]\nauth_file = \"users.txt\"\nauth_hba_file = \"../hba.conf\"\n",
            "/etc/pgmarina/pgmarina.toml");
        REQUIRE(nested.ok());
        CHECK(nested.config()->settings.auth_file == "/etc/pgmarina/users.txt");
        CHECK(nested.config()->settings.auth_hba_file == "/etc/hba.conf");

        auto absolute = proxy::load_config_string("[pgmarina]\nauth_file = \"/srv/users.txt\"\n",
                                                  "/etc/pgmarina/pgmarina.toml");
        REQUIRE(absolute.ok());
        CHECK(absolute.config()->settings.auth_file == "/srv/users.txt");

        CHECK(load("[pgmarina]\nauth_file = \"users.txt\"\n")->settings.auth_file == "users.txt");
    }

    TEST_CASE("errors name the file, line and column") {
        SUBCASE("unknown key") {
            CHECK(error_of("[pgmarina]\npool_sise = 3\n") ==
                  "test.toml:2:1: unknown key 'pool_sise' in [pgmarina]");
        }
        SUBCASE("a likely typo gets a suggestion") {
            CHECK(error_of("[pgmarina]\n  pool_mdoe = \"session\"\n") ==
                  "test.toml:2:3: unknown key 'pool_mdoe' in [pgmarina]; did you mean "
                  "'pool_mode'?");
        }
        SUBCASE("wrong type points at the value") {
            CHECK(error_of("[pgmarina]\ndefault_pool_size = \"20\"\n") ==
                  "test.toml:2:21: 'default_pool_size' must be an integer, not a string");
        }
        SUBCASE("array elements are checked one by one") {
            CHECK(error_of("[pgmarina]\nadmin_users = [\"a\",\n  7]\n") ==
                  "test.toml:3:3: elements of 'admin_users' must be non-empty strings, not an "
                  "integer");
        }
        SUBCASE("a missing key points at its table") {
            CHECK(error_of("\n[databases.app]\ndbname = \"x\"\n") ==
                  "test.toml:2:1: missing required key 'hosts' in [databases.app]");
        }
        SUBCASE("syntax errors come from the TOML parser, with its position") {
            CHECK(error_of("[pgmarina]\nworkers = = 2\n").starts_with("test.toml:2:"));
        }
    }

    TEST_CASE("all errors are reported, in file order") {
        auto errors = errors_of(R"([users.bob]
pool_size = -1
[pgmarina]
workers = 1000
bogus = 1
[databases.app]
hosts = []
)");
        REQUIRE(errors.size() == 4);
        CHECK(errors[0] == "test.toml:2:13: 'pool_size' must be at least 0, not -1");
        CHECK(errors[1] == "test.toml:4:11: 'workers' must be between 0 and 256, not 1000");
        CHECK(errors[2] == "test.toml:5:1: unknown key 'bogus' in [pgmarina]");
        CHECK(errors[3] == "test.toml:7:9: 'hosts' must not be empty");
    }

    TEST_CASE("integers beyond the field's range") {
        CHECK(error_of("[pgmarina]\ndefault_pool_size = 3000000000\n") ==
              "test.toml:2:21: 'default_pool_size' must be between 0 and 2147483647, not "
              "3000000000");
        CHECK(error_of("[pgmarina]\nmax_client_conn = 0\n") ==
              "test.toml:2:19: 'max_client_conn' must be at least 1, not 0");
        CHECK(error_of("[pgmarina]\npkt_buf = \"32MB\"\n") ==
              "test.toml:2:11: 'pkt_buf' must be between 1kB and 16MB, not 32MB");
    }

    TEST_CASE("rules across keys are checked once every key is valid") {
        CHECK(error_of("[pgmarina]\nmin_pool_size = 30\n") ==
              "test.toml:2:17: min_pool_size (30) must not exceed default_pool_size (20)");
        CHECK(error_of("[pgmarina]\nlisten = []\nunix_socket_dir = \"\"\n") ==
              "test.toml:1:1: clients could not connect: listen is [] and unix_socket_dir is \"\"");
        CHECK(error_of("[pgmarina]\nauth_type = \"hba\"\n") ==
              "test.toml:2:13: auth_type \"hba\" needs auth_hba_file");
        CHECK(error_of("[databases.app]\nhosts = [\"pg\"]\npool_size = 2\n[pgmarina]\n"
                       "min_pool_size = 5\ndefault_pool_size = 10\n") ==
              "test.toml:3:13: min_pool_size (5) must not exceed pool_size (2) in "
              "[databases.app]");
        CHECK(error_of("[databases.pgbouncer]\nhosts = [\"pg\"]\n") ==
              "test.toml:1:1: database name 'pgbouncer' is reserved for the admin console");
        // The rules wait for the keys: an unknown key is the only error here.
        CHECK(error_of("[pgmarina]\nmin_pool_size = 30\nbogus = 1\n") ==
              "test.toml:3:1: unknown key 'bogus' in [pgmarina]");
    }

    TEST_CASE("files that cannot be read") {
        auto missing = proxy::load_config("/nonexistent/pgmarina.toml");
        REQUIRE(missing.errors().size() == 1);
        CHECK(missing.errors()[0].to_string() ==
              "/nonexistent/pgmarina.toml: cannot open: No such file or directory");

        auto directory = proxy::load_config(source_root / "tests");
        REQUIRE(directory.errors().size() == 1);
        CHECK(directory.errors()[0].message == "is a directory");
    }

    TEST_CASE("corpus: every valid file loads") {
        auto files = toml_files(source_root / "tests/config/valid");
        CHECK(files.size() >= 8);
        for (const auto& file : files) {
            CAPTURE(file);
            auto result = proxy::load_config(file);
            for (const auto& error : result.errors()) {
                FAIL_CHECK(error.to_string());
            }
            CHECK(result.ok());
        }
    }

    // Each invalid file starts with "# expect: LINE:COL: message" and must fail with exactly one
    // error at that position whose message starts with that text.
    TEST_CASE("corpus: every invalid file fails with the error it expects") {
        auto files = toml_files(source_root / "tests/config/invalid");
        CHECK(files.size() >= 20);
        for (const auto& file : files) {
            CAPTURE(file);
            std::string header = first_line(file);
            constexpr std::string_view tag = "# expect: ";
            auto result = proxy::load_config(file);
            if (!header.starts_with(tag) || result.ok()) {
                FAIL_CHECK("needs a first line \"# expect: LINE:COL: message\" and must fail");
                continue;
            }
            std::string expected = file.string() + ":" + header.substr(tag.size());
            CHECK(result.errors().size() == 1);
            std::string actual = result.errors().front().to_string();
            CAPTURE(actual);
            CHECK(actual.starts_with(expected));
        }
    }
}
