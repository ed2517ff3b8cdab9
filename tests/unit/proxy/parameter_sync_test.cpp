#include "proxy/parameter_sync.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

using proxy::ParameterSet;
using proxy::StartupOption;

namespace {

ParameterSet set_of(std::initializer_list<std::pair<std::string_view, std::string_view>> values) {
    ParameterSet set;
    for (const auto& [name, value] : values) {
        REQUIRE(set.set(name, value));
    }
    return set;
}

// The SET a client value produces against a server that has none.
std::string set_query(std::string_view name, std::string_view value) {
    return proxy::build_sync_query(set_of({{name, value}}), ParameterSet{});
}

wire::fe::StartupMessage startup(std::vector<wire::fe::Parameter> parameters) {
    return wire::fe::StartupMessage{wire::fe::protocol_3_0, std::move(parameters)};
}

} // namespace

TEST_SUITE("proxy.parameter_sync") {
    TEST_CASE("only the tracked parameters are kept, by case-insensitive name") {
        ParameterSet set;
        CHECK(set.set("datestyle", "ISO, MDY"));
        CHECK(set.set("TIMEZONE", "UTC"));
        CHECK(set.get("DateStyle") == "ISO, MDY");
        CHECK(set.get("timezone") == "UTC");
        CHECK_FALSE(set.get("application_name"));
        for (std::string_view reported :
             {"server_version", "server_encoding", "is_superuser", "in_hot_standby",
              "session_authorization", "integer_datetimes", "default_transaction_read_only",
              "scram_iterations", "statement_timeout"}) {
            CAPTURE(reported);
            CHECK_FALSE(set.set(reported, "x"));
            CHECK_FALSE(set.get(reported));
        }
        CHECK(set == set_of({{"DateStyle", "ISO, MDY"}, {"TimeZone", "UTC"}}));
    }

    TEST_CASE("SET for every tracked parameter that differs, in a fixed order") {
        auto client = set_of({{"application_name", "app"},
                              {"DateStyle", "ISO, MDY"},
                              {"TimeZone", "Europe/Berlin"},
                              {"client_encoding", "UTF8"}});
        auto server = set_of({{"DateStyle", "ISO, MDY"},
                              {"TimeZone", "UTC"},
                              {"client_encoding", "UTF8"},
                              {"IntervalStyle", "postgres"}});
        // The server's IntervalStyle stays: the client has no opinion on it.
        CHECK(proxy::build_sync_query(client, server) ==
              "SET TimeZone='Europe/Berlin';SET application_name='app';");
        CHECK(proxy::build_sync_query(client, client) == "");
        CHECK(proxy::build_sync_query(ParameterSet{}, server) == "");
        CHECK(proxy::build_sync_query(server, ParameterSet{}) ==
              "SET DateStyle='ISO, MDY';SET client_encoding='UTF8';SET TimeZone='UTC';SET "
              "IntervalStyle='postgres';");
    }

    TEST_CASE("a sync that sets a parameter the server never reported leaves it to reset") {
        const auto server = set_of({{"application_name", "psql"}, {"TimeZone", "UTC"}});
        // Reported parameters: the ParameterStatus replies record the new values.
        CHECK_FALSE(proxy::sync_sets_unreported(set_of({{"application_name", "pgbench"}}), server));
        CHECK_FALSE(proxy::sync_sets_unreported(server, server));
        CHECK_FALSE(proxy::sync_sets_unreported(ParameterSet{}, server));
        // search_path before PostgreSQL 18: nothing would record it.
        CHECK(proxy::sync_sets_unreported(set_of({{"search_path", "app"}}), server));
        CHECK(proxy::sync_sets_unreported(set_of({{"IntervalStyle", "iso_8601"}}), server));
    }

    TEST_CASE("values compare case-insensitively, as PgBouncer's strcasecmp") {
        auto client = set_of({{"client_encoding", "utf8"}, {"DateStyle", "iso, mdy"}});
        auto server = set_of({{"client_encoding", "UTF8"}, {"DateStyle", "ISO, MDY"}});
        CHECK(proxy::build_sync_query(client, server) == "");
        server.set("DateStyle", "ISO, DMY");
        CHECK(proxy::build_sync_query(client, server) == "SET DateStyle='iso, mdy';");
    }

    TEST_CASE("regression pgbouncer#999: an empty value is replayed when it differs") {
        auto client = set_of({{"application_name", ""}});
        CHECK(proxy::build_sync_query(client, set_of({{"application_name", "psql"}})) ==
              "SET application_name='';");
        CHECK(proxy::build_sync_query(client, ParameterSet{}) == "SET application_name='';");
        CHECK(proxy::build_sync_query(client, set_of({{"application_name", ""}})) == "");
    }

    TEST_CASE("values are quoted as string literals") {
        struct Row {
            std::string_view value;
            std::string_view sql;
        };
        const Row rows[] = {
            {"plain", "'plain'"},
            {"it's", "'it''s'"},
            {"''", "''''''"},
            {"a;SET role=admin;--", "'a;SET role=admin;--'"},
            {"back\\slash", "E'back\\\\slash'"},
            {"\\'", "E'\\\\'''"},
            {"\\", "E'\\\\'"},
            {"日本語 ünï", "'日本語 ünï'"},
            {"\"double\"", "'\"double\"'"},
            {"$$x$$", "'$$x$$'"},
        };
        for (const Row& row : rows) {
            CAPTURE(row.value);
            CHECK(set_query("application_name", row.value) ==
                  "SET application_name=" + std::string(row.sql) + ";");
        }
    }

    TEST_CASE("search_path is sent as a list of schemas, never as one literal") {
        struct Row {
            std::string_view value;
            std::string_view sql;
        };
        const Row rows[] = {
            {"\"$user\", public", "'$user', 'public'"}, // what PostgreSQL reports by default
            {"public", "'public'"},
            {"Sales,  \"Sales\"", "'sales', 'Sales'"}, // unquoted names are lowercased
            {"\"a,b\" , \"say \"\"hi\"\"\"", "'a,b', 'say \"hi\"'"},
            {"\"it's\"", "'it''s'"},
            {"\"back\\slash\"", "E'back\\\\slash'"},
            {"schema;drop", "'schema;drop'"},
            {"\"\"", "''"},
            {"", "''"},
            {"  ", "''"},
            {"\tfoo\n,\fbar\v", "'foo', 'bar'"},
        };
        for (const Row& row : rows) {
            CAPTURE(row.value);
            CHECK(set_query("search_path", row.value) ==
                  "SET search_path=" + std::string(row.sql) + ";");
        }
    }

    TEST_CASE("search_path values PostgreSQL refuses are not learnt") {
        for (std::string_view value :
             {"\"unclosed", "a,", ",a", "a,,b", "\"a\"b", "a b", "public; DROP TABLE t"}) {
            CAPTURE(value);
            ParameterSet set = set_of({{"search_path", "public"}});
            CHECK_FALSE(set.set("search_path", value));
            CHECK_FALSE(set.get("search_path"));
        }
    }

    TEST_CASE("search_path compares schemas, not spelling or case") {
        auto client = set_of({{"search_path", "\"$user\",public"}});
        CHECK(proxy::build_sync_query(client, set_of({{"search_path", "\"$user\", PUBLIC"}})) ==
              "");
        CHECK(proxy::build_sync_query(client, set_of({{"search_path", "\"$user\", \"Public\""}})) ==
              "SET search_path='$user', 'public';");
        // SET search_path='' is reported as "": the same (empty) search.
        CHECK(proxy::build_sync_query(set_of({{"search_path", ""}}),
                                      set_of({{"search_path", "\"\""}})) == "");
    }

    TEST_CASE("options: -c and -- settings, split as PostgreSQL splits them") {
        using Options = std::vector<StartupOption>;
        struct Row {
            std::string_view options;
            Options settings;
        };
        const Row rows[] = {
            {"", Options{}},
            {"   ", Options{}},
            {"-c search_path=app", Options{{"search_path", "app"}}},
            {"-csearch_path=app", Options{{"search_path", "app"}}},
            {"--search_path=app", Options{{"search_path", "app"}}},
            {"--search-path=a-b", Options{{"search_path", "a-b"}}}, // '-' means '_' in names only
            {"  -c\tDateStyle=ISO  --TimeZone=UTC ",
             Options{{"DateStyle", "ISO"}, {"TimeZone", "UTC"}}},
            {"-c application_name=my\\ app", Options{{"application_name", "my app"}}},
            {"-c application_name=a\\\\b", Options{{"application_name", "a\\b"}}},
            {"-c application_name=\\x\\", Options{{"application_name", "x"}}},
            {"-c application_name=", Options{{"application_name", ""}}},
            {"-c application_name=a=b", Options{{"application_name", "a=b"}}},
        };
        for (const Row& row : rows) {
            CAPTURE(row.options);
            auto parsed = proxy::parse_startup_options(row.options);
            REQUIRE(parsed);
            CHECK(*parsed == row.settings);
        }
    }

    TEST_CASE("options: anything but a setting is refused") {
        for (std::string_view options :
             {"-c", "-c application_name", "--application_name", "--", "-e", "-B 128",
              "-c a=b stray", "application_name=x", "-x"}) {
            CAPTURE(options);
            CHECK_FALSE(proxy::parse_startup_options(options));
        }
    }

    TEST_CASE("learn_startup: parameters and options, and what it did not learn") {
        ParameterSet client;
        auto not_learned =
            proxy::learn_startup(client, startup({{"user", "alice"},
                                                  {"database", "app"},
                                                  {"application_name", "psql"},
                                                  {"extra_float_digits", "3"},
                                                  {"options", "-c TimeZone=UTC -c search_path=app"},
                                                  {"datestyle", "ISO"}}));
        CHECK(not_learned == std::vector<std::string>{"extra_float_digits"});
        CHECK(client == set_of({{"application_name", "psql"},
                                {"TimeZone", "UTC"},
                                {"search_path", "app"},
                                {"DateStyle", "ISO"}}));
    }

    TEST_CASE("learn_startup: a parameter sent on its own wins over options") {
        ParameterSet client;
        auto not_learned = proxy::learn_startup(
            client, startup({{"application_name", "direct"},
                             {"options", "--application-name=from\\ options"}}));
        CHECK(not_learned.empty());
        CHECK(client.get("application_name") == "direct");
    }

    TEST_CASE("learn_startup: options we cannot learn are reported as \"options\"") {
        for (std::string_view options :
             {"-c statement_timeout=5s", "-e", "-c search_path=a,,b", "-c TimeZone"}) {
            CAPTURE(options);
            ParameterSet client;
            auto not_learned = proxy::learn_startup(
                client, startup({{"options", options}, {"application_name", "a"}}));
            CHECK(not_learned == std::vector<std::string>{"options"});
            CHECK(client.get("application_name") == "a");
        }
        // The tracked settings beside an untracked one are still learnt.
        ParameterSet client;
        auto not_learned = proxy::learn_startup(
            client, startup({{"options", "-c statement_timeout=5s -c TimeZone=UTC"}}));
        CHECK(not_learned == std::vector<std::string>{"options"});
        CHECK(client.get("TimeZone") == "UTC");
    }

    TEST_CASE("learn_parameter_status keeps the server's spelling and ignores the rest") {
        ParameterSet server;
        proxy::learn_parameter_status(server, {"DateStyle", "ISO, MDY"});
        proxy::learn_parameter_status(server, {"server_version", "17.2"});
        proxy::learn_parameter_status(server, {"search_path", "\"$user\", public"});
        CHECK(server == set_of({{"DateStyle", "ISO, MDY"}, {"search_path", "\"$user\", public"}}));
        proxy::learn_parameter_status(server, {"DateStyle", "Postgres, DMY"});
        CHECK(server.get("DateStyle") == "Postgres, DMY");
    }
}
