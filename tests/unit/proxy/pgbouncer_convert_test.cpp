// convert-pgbouncer on the sample files in tests/config/pgbouncer/: the TOML it writes must load
// with the real config loader and give the values the pgbouncer.ini meant, and whatever it
// cannot carry must be listed.
#include "proxy/pgbouncer_convert.hpp"

#include "proxy/config.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using proxy::AuthType;
using proxy::Endpoint;
using proxy::PoolMode;
using proxy::TlsMode;
using proxy::pgbouncer::Conversion;
using proxy::pgbouncer::ConvertInput;

namespace {

const std::filesystem::path samples =
    std::filesystem::path(PGMARINA_SOURCE_ROOT) / "tests/config/pgbouncer";

std::string read(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in, path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

struct Converted {
    Conversion conversion;
    std::shared_ptr<const proxy::Config> config;
};

// Converts the sample `name` (with the sample userlist when `with_userlist`) and loads the result,
// which must load.
Converted convert_sample(const std::string& name, bool with_userlist = false) {
    const std::string ini = read(samples / name);
    const std::string userlist = read(samples / "userlist.txt");
    ConvertInput input;
    input.ini = ini;
    input.ini_origin = name;
    input.base_directory = samples;
    if (with_userlist) input.userlist = userlist;
    Converted out{proxy::pgbouncer::convert(input), nullptr};
    for (const auto& error : out.conversion.errors)
        FAIL_CHECK(error);
    REQUIRE(out.conversion.errors.empty());
    auto loaded = proxy::load_config_string(out.conversion.toml, "converted.toml");
    for (const auto& error : loaded.errors())
        FAIL_CHECK(error.to_string());
    REQUIRE(loaded.ok());
    out.config = loaded.config();
    return out;
}

// The not-carried item about `what` ("pgbouncer.ini:LINE: what: why"); it must be listed once
// and also be a comment in the TOML.
std::string dropped(const Conversion& conversion, const std::string& what) {
    std::vector<std::string> found;
    for (const auto& item : conversion.not_carried) {
        if (item.find(": " + what + ": ") != std::string::npos) found.push_back(item);
    }
    CAPTURE(what);
    REQUIRE(found.size() == 1);
    CHECK(conversion.toml.find("#   " + found.front() + "\n") != std::string::npos);
    return found.front();
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_SUITE("proxy.pgbouncer_convert") {
    TEST_CASE("minimal: one database, PgBouncer's defaults written where pgmarina's differ") {
        const Converted converted = convert_sample("minimal.ini");
        const Conversion& conversion = converted.conversion;
        const auto& config = converted.config;
        CHECK(conversion.not_carried.empty());
        CHECK(contains(conversion.toml, "# Not carried over: nothing.\n"));
        const auto& s = config->settings;
        CHECK(s.listen == std::vector{Endpoint{"127.0.0.1", 6432}});
        CHECK(s.pool_mode == PoolMode::session); // PgBouncer's default, not pgmarina's
        CHECK(s.auth_type == AuthType::trust);
        // Relative to the ini's directory, as PgBouncer started there would read it.
        CHECK(s.auth_file == (samples / "userlist.txt").lexically_normal().string());
        CHECK(s.default_pool_size == 20);
        REQUIRE(config->databases.size() == 1);
        const auto& app = config->databases.at("app");
        CHECK(app.dbname == "app");
        CHECK(app.hosts == std::vector{Endpoint{"127.0.0.1", 5432}});
        CHECK_FALSE(app.user);
        CHECK(config->users.empty());
    }

    TEST_CASE("a userlist becomes [users] passwords: plain, md5 and SCRAM secrets as written") {
        const Converted converted = convert_sample("minimal.ini", true);
        const Conversion& conversion = converted.conversion;
        const auto& config = converted.config;
        CHECK(config->settings.auth_file.empty()); // the users are in the TOML now
        REQUIRE(config->users.size() == 4);
        CHECK(config->users.at("alice").password == "alice-secret");
        CHECK(config->users.at("bob").password == "md5a2b3c7c5a3f1e1c0a8d5b8e3b3c2d1e0");
        CHECK(config->users.at("carol").password ==
              "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$8n3fSbVlqvyzMNqVpBgA6U3HZWFsPsQE3v9UFIHtpmc=:"
              "P/iWQ1d6ne9lbVYVfKVfU8X8n1hAclR1xSOGcfFjB0k=");
        CHECK(conversion.not_carried.empty());
        CHECK(std::any_of(conversion.notes.begin(), conversion.notes.end(),
                          [](const std::string& note) { return contains(note, "private"); }));
    }

    TEST_CASE("production: transaction pooling, limits, timeouts, SCRAM with auth_file") {
        const Converted converted = convert_sample("production.ini");
        const Conversion& conversion = converted.conversion;
        const auto& config = converted.config;
        const auto& s = config->settings;
        CHECK(s.listen == std::vector{Endpoint{"0.0.0.0", 6432}});
        CHECK(s.unix_socket_dir == "/var/run/postgresql");
        CHECK(s.pool_mode == PoolMode::transaction);
        CHECK(s.default_pool_size == 25);
        CHECK(s.max_client_conn == 1000);
        CHECK(s.reserve_pool_size == 5);
        CHECK(s.reserve_pool_timeout == 3s);
        CHECK(s.max_db_connections == 80);
        CHECK(s.server_reset_query == "DISCARD ALL");
        CHECK(s.server_check_query == "select 1");
        CHECK(s.server_idle_timeout == 300s);
        CHECK(s.server_lifetime == 1800s);
        CHECK(s.server_connect_timeout == 5s);
        CHECK(s.query_wait_timeout == 60s);
        CHECK(s.client_login_timeout == 30s);
        CHECK(s.auth_type == AuthType::scram_sha_256);
        CHECK(s.auth_file == "/etc/pgbouncer/userlist.txt");
        CHECK(s.admin_users == std::vector<std::string>{"postgres"});
        CHECK(s.stats_users == std::vector<std::string>{"stats", "pgbouncer_exporter"});
        CHECK(s.ignore_startup_parameters ==
              std::vector<std::string>{"extra_float_digits", "options"});
        CHECK(s.max_prepared_statements == 100);
        CHECK(s.tcp_keepalive);
        CHECK(s.tcp_keepidle == 60);
        CHECK_FALSE(s.log_connections);
        CHECK_FALSE(s.log_disconnections);

        REQUIRE(config->databases.size() == 3);
        CHECK(config->databases.at("orders").hosts == std::vector{Endpoint{"10.0.1.10", 5432}});
        CHECK(config->databases.at("billing").dbname == "billing_prod");
        const auto& reporting = config->databases.at("reporting");
        CHECK(reporting.hosts == std::vector{Endpoint{"10.0.1.11", 5433}});
        CHECK(reporting.dbname == "orders");
        CHECK(reporting.pool_size == 5);

        CHECK(conversion.not_carried.size() == 2);
        CHECK(dropped(conversion, "logfile").starts_with("production.ini:10: logfile: "));
        CHECK(contains(dropped(conversion, "pidfile"), "production.ini:11: pidfile: "));
    }

    TEST_CASE("auth_query with auth_user, and TLS toward clients and servers") {
        const Converted converted = convert_sample("auth_query_tls.ini");
        const Conversion& conversion = converted.conversion;
        const auto& config = converted.config;
        const auto& s = config->settings;
        CHECK(s.listen == std::vector{Endpoint{"*", 5439}});
        CHECK(s.pool_mode == PoolMode::transaction);
        CHECK(s.auth_type == AuthType::md5);
        CHECK(s.auth_user == "pgbouncer_auth");
        CHECK(s.auth_query == "SELECT usename, passwd FROM pgbouncer.get_auth($1)");
        CHECK(s.auth_dbname == "postgres");
        CHECK(s.client_tls_sslmode == TlsMode::require);
        CHECK(s.client_tls_key_file == "/etc/pgbouncer/tls/server.key");
        CHECK(s.client_tls_cert_file == "/etc/pgbouncer/tls/server.crt");
        CHECK(s.client_tls_ca_file == "/etc/pgbouncer/tls/ca.crt");
        CHECK(s.server_tls_sslmode == TlsMode::verify_full);
        CHECK(s.server_tls_ca_file == (samples / "tls/db-ca.crt").lexically_normal().string());
        CHECK(s.server_tls_protocols == "tlsv1.3");
        CHECK(config->databases.at("app").auth_user == "pgbouncer_auth");
        CHECK(config->databases.at("analytics").hosts ==
              std::vector{Endpoint{"db.internal", 5432}});

        CHECK(conversion.not_carried.size() == 1);
        dropped(conversion, "client_tls_dheparams");
    }

    TEST_CASE("per-database and per-user overrides; everything without a counterpart listed") {
        const Converted converted = convert_sample("overrides.ini");
        const Conversion& conversion = converted.conversion;
        const auto& config = converted.config;
        const auto& s = config->settings;
        CHECK(s.listen == std::vector{Endpoint{"10.0.0.1", 6432}, Endpoint{"::1", 6432}});
        CHECK(s.min_pool_size == 8);

        const auto& legacy = config->databases.at("legacy");
        CHECK(legacy.hosts == std::vector{Endpoint{"10.0.2.5", 6543}});
        CHECK(legacy.dbname == "legacy db");
        CHECK(legacy.user == "legacy_app");
        CHECK(legacy.password == "it's a secret");
        CHECK(legacy.pool_mode == PoolMode::session);
        CHECK(legacy.reserve_pool_size == 2);
        // pool_size=4 is below the global min_pool_size = 8, which pgmarina refuses: the
        // conversion takes it out and says so, with the loader's own message.
        CHECK_FALSE(legacy.pool_size);
        CHECK(contains(dropped(conversion, "[databases.legacy] pool_size"),
                       "refused by pgmarina: min_pool_size (8) must not exceed pool_size (4)"));

        const auto& ha = config->databases.at("ha");
        CHECK(ha.hosts == std::vector{Endpoint{"10.0.3.1", 5432}, Endpoint{"10.0.3.2", 5433}});
        CHECK(ha.max_db_connections == 40);
        CHECK(ha.min_pool_size == 2);

        CHECK(config->databases.at("tz").hosts == std::vector{Endpoint{"10.0.2.6", 5432}});
        dropped(conversion, "[databases] tz timezone");
        dropped(conversion, "[databases] tz application_name");
        dropped(conversion, "[databases] tz connect_query");

        CHECK_FALSE(config->databases.contains("local"));
        CHECK(contains(dropped(conversion, "[databases] local"), "Unix socket"));
        CHECK_FALSE(config->databases.contains("*"));
        CHECK(contains(dropped(conversion, "[databases] *"), "fallback database"));
        CHECK(config->databases.size() == 3);

        CHECK(config->users.at("alice").pool_mode == PoolMode::statement);
        CHECK(config->users.at("alice").max_user_connections == 10);
        CHECK(config->users.at("bob").pool_size == 3);
        dropped(conversion, "[users] bob max_user_client_connections");

        for (const char* key : {"so_reuseport", "peer_id", "track_extra_parameters",
                                "server_round_robin", "dns_max_ttl", "unknown_future_key",
                                "%include /etc/pgbouncer/pgbouncer-other.ini", "[peers] 2"}) {
            dropped(conversion, key);
        }
        CHECK(conversion.not_carried.size() == 15);
        // In line order, so that the list reads along the ini file.
        CHECK(std::is_sorted(conversion.not_carried.begin(), conversion.not_carried.end(),
                             [](const std::string& a, const std::string& b) {
                                 auto line = [](const std::string& item) {
                                     const auto colon = item.find(':');
                                     return std::stoi(item.substr(colon + 1));
                                 };
                                 return line(a) < line(b);
                             }));
    }

    TEST_CASE("values pgmarina refuses are taken out and listed, the rest still loads") {
        ConvertInput input;
        input.ini = "[pgbouncer]\n"
                    "listen_addr = 127.0.0.1\n"
                    "default_pool_size = lots\n"
                    "pool_mode = sometimes\n"
                    "tcp_keepalive = maybe\n"
                    "max_client_conn = 10\n"
                    "[databases]\n"
                    "bad = host=pg_1! port=5432\n";
        const Conversion conversion = proxy::pgbouncer::convert(input);
        REQUIRE(conversion.errors.empty());
        auto loaded = proxy::load_config_string(conversion.toml, "converted.toml");
        REQUIRE(loaded.ok());
        CHECK(loaded.config()->settings.max_client_conn == 10);
        CHECK(loaded.config()->databases.empty());
        for (const char* what : {"[pgmarina] default_pool_size", "[pgmarina] pool_mode",
                                 "[pgmarina] tcp_keepalive", "[databases.bad] hosts"}) {
            CHECK(contains(dropped(conversion, what), "refused by pgmarina: "));
        }
    }

    TEST_CASE("PgBouncer's Unix-socket-only default: listen = []") {
        ConvertInput input;
        input.ini = "[pgbouncer]\npool_mode = transaction\n";
        const Conversion conversion = proxy::pgbouncer::convert(input);
        auto loaded = proxy::load_config_string(conversion.toml, "converted.toml");
        REQUIRE(loaded.ok());
        CHECK(loaded.config()->settings.listen.empty());
        CHECK(loaded.config()->settings.unix_socket_dir == "/tmp");
        CHECK(conversion.not_carried.empty());
    }

    TEST_CASE("a userlist that is not one is an error, and there is no output") {
        ConvertInput input;
        input.ini = "[pgbouncer]\n";
        input.userlist = "\"alice\" \"secret\"\n# not a userlist comment\n";
        const Conversion conversion = proxy::pgbouncer::convert(input);
        REQUIRE(conversion.errors.size() == 1);
        CHECK(conversion.errors.front().starts_with("userlist.txt:2:"));
        CHECK(conversion.toml.empty());
    }

    TEST_CASE("names that are not bare TOML keys are quoted") {
        ConvertInput input;
        input.ini = "[databases]\n"
                    "my.db = host=pg-1 dbname=x\n"
                    "[users]\n"
                    "\"odd \"\"name\" = pool_size=2\n";
        const Conversion conversion = proxy::pgbouncer::convert(input);
        auto loaded = proxy::load_config_string(conversion.toml, "converted.toml");
        REQUIRE(loaded.ok());
        CHECK(loaded.config()->databases.contains("my.db"));
        CHECK(loaded.config()->users.size() == 1);
    }

    TEST_CASE("TLS versions and cipher keywords: only what pgmarina offers") {
        ConvertInput input;
        input.ini = "[pgbouncer]\n"
                    "client_tls_protocols = all\n"
                    "server_tls_protocols = tlsv1.1, tlsv1.2\n"
                    "client_tls_ciphers = fast\n"
                    "server_tls_ciphers = ECDHE-RSA-AES256-GCM-SHA384\n";
        const Conversion conversion = proxy::pgbouncer::convert(input);
        auto loaded = proxy::load_config_string(conversion.toml, "converted.toml");
        REQUIRE(loaded.ok());
        const auto& s = loaded.config()->settings;
        CHECK(s.client_tls_protocols == "secure");
        CHECK(s.server_tls_protocols == "tlsv1.2");
        CHECK(s.client_tls_ciphers == "default");
        CHECK(s.server_tls_ciphers == "ECDHE-RSA-AES256-GCM-SHA384");
        CHECK(contains(dropped(conversion, "client_tls_ciphers = fast"), "OpenSSL cipher list"));
        CHECK(conversion.not_carried.size() == 1);
        CHECK(conversion.notes.size() == 4); // two protocol changes, pool_mode and listen
    }
}
