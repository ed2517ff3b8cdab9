#include "proxy/admin_command.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using proxy::AdminCommand;
using proxy::AdminError;
using proxy::AdminVerb;

namespace {

AdminCommand command(std::string_view sql) {
    CAPTURE(sql);
    auto parsed = proxy::parse_admin_command(sql);
    if (const auto* error = std::get_if<AdminError>(&parsed)) FAIL(error->message);
    REQUIRE(std::holds_alternative<AdminCommand>(parsed));
    return std::get<AdminCommand>(parsed);
}

AdminCommand make(AdminVerb verb, std::string argument = {}, std::string value = {}) {
    return AdminCommand{verb, std::move(argument), std::move(value)};
}

// The message of a query the grammar refuses, which must be a syntax error.
std::string refusal(std::string_view sql) {
    CAPTURE(sql);
    auto parsed = proxy::parse_admin_command(sql);
    REQUIRE(std::holds_alternative<AdminError>(parsed));
    const auto& error = std::get<AdminError>(parsed);
    CHECK(error.sqlstate == "42601");
    return error.message;
}

bool is_empty(std::string_view sql) {
    return std::holds_alternative<proxy::EmptyAdminQuery>(proxy::parse_admin_command(sql));
}

} // namespace

TEST_SUITE("proxy.admin_command") {
    TEST_CASE("SHOW takes a subject, upper-cased; SELECT is its alias") {
        CHECK(command("SHOW POOLS") == make(AdminVerb::show, "POOLS"));
        CHECK(command("show pools") == make(AdminVerb::show, "POOLS"));
        CHECK(command("Show Stats_Totals") == make(AdminVerb::show, "STATS_TOTALS"));
        CHECK(command("SELECT version") == make(AdminVerb::show, "VERSION"));
        CHECK(command("select clients;") == make(AdminVerb::show, "CLIENTS"));
        CHECK(refusal("SHOW") == "SHOW needs a subject, e.g. SHOW POOLS");
        CHECK(refusal("select ;") == "SELECT needs a subject, e.g. SELECT POOLS");
        CHECK(refusal("SHOW 'pools'") ==
              "syntax error: SHOW expects a word such as POOLS, not ''pools''");
        CHECK(refusal("SHOW \"pools\"") ==
              "syntax error: SHOW expects a word such as POOLS, not '\"pools\"'");
        CHECK(refusal("SHOW pools extra") == "syntax error: unexpected 'extra' after SHOW");
        CHECK(refusal("SHOW po-ols") == "syntax error: SHOW expects a word such as POOLS, not "
                                        "'po-ols'");
    }

    TEST_CASE("verbs with an optional database name") {
        const std::pair<std::string_view, AdminVerb> verbs[] = {
            {"PAUSE", AdminVerb::pause},           {"RESUME", AdminVerb::resume},
            {"RECONNECT", AdminVerb::reconnect},   {"KILL", AdminVerb::kill},
            {"WAIT_CLOSE", AdminVerb::wait_close},
        };
        for (const auto& [name, verb] : verbs) {
            const std::string spelled(name);
            CAPTURE(spelled);
            CHECK(command(spelled) == make(verb));
            CHECK(command(spelled + ";") == make(verb));
            CHECK(command(spelled + " app") == make(verb, "app"));
            CHECK(command(spelled + " App_1 ;") == make(verb, "app_1"));
            CHECK(command(spelled + " \"App\"") == make(verb, "App"));
            CHECK(refusal(spelled + " app other") ==
                  "syntax error: unexpected 'other' after " + spelled);
            CHECK(refusal(spelled + " 'app'") ==
                  "syntax error: " + spelled + " expects a database name, not ''app''");
        }
    }

    TEST_CASE("DISABLE and ENABLE need a database name") {
        CHECK(command("DISABLE app") == make(AdminVerb::disable, "app"));
        CHECK(command("enable APP;") == make(AdminVerb::enable, "app"));
        CHECK(refusal("DISABLE") == "DISABLE needs a database name");
        CHECK(refusal("disable ;") == "DISABLE needs a database name");
        CHECK(refusal("ENABLE") == "ENABLE needs a database name");
    }

    TEST_CASE("database names follow identifier rules") {
        SUBCASE("bare names fold ASCII only") {
            CHECK(command("PAUSE ÄppDB") == make(AdminVerb::pause, "Äppdb"));
        }
        SUBCASE("a doubled quote inside quotes is one quote") {
            CHECK(command(R"(PAUSE "my""db")") == make(AdminVerb::pause, "my\"db"));
            CHECK(command(R"(PAUSE "has space; and =")") ==
                  make(AdminVerb::pause, "has space; and ="));
        }
        SUBCASE("names PgBouncer accepts unquoted stay accepted") {
            CHECK(command("PAUSE my-db") == make(AdminVerb::pause, "my-db"));
        }
        SUBCASE("quoting errors") {
            CHECK(refusal(R"(PAUSE "app)") == "syntax error: unterminated quoted identifier");
            CHECK(refusal(R"(PAUSE "")") == "zero-length delimited identifier");
        }
    }

    TEST_CASE("KILL_CLIENT needs a numeric id") {
        CHECK(command("KILL_CLIENT 17") == make(AdminVerb::kill_client, "17"));
        CHECK(command("kill_client 0042;") == make(AdminVerb::kill_client, "0042"));
        CHECK(refusal("KILL_CLIENT") ==
              "KILL_CLIENT needs a client id (the id column of SHOW CLIENTS)");
        CHECK(refusal("KILL_CLIENT abc") ==
              "syntax error: KILL_CLIENT expects a numeric client id, not 'abc'");
        CHECK(refusal("KILL_CLIENT -1") ==
              "syntax error: KILL_CLIENT expects a numeric client id, not '-1'");
        CHECK(refusal("KILL_CLIENT \"17\"") ==
              "syntax error: KILL_CLIENT expects a numeric client id, not '\"17\"'");
        CHECK(refusal("KILL_CLIENT 17 18") == "syntax error: unexpected '18' after KILL_CLIENT");
    }

    TEST_CASE("SUSPEND and RELOAD take no argument") {
        CHECK(command("SUSPEND") == make(AdminVerb::suspend));
        CHECK(command("reload;") == make(AdminVerb::reload));
        CHECK(refusal("RELOAD app") == "syntax error: unexpected 'app' after RELOAD");
        CHECK(refusal("suspend now") == "syntax error: unexpected 'now' after SUSPEND");
    }

    TEST_CASE("SHUTDOWN takes an optional mode") {
        CHECK(command("SHUTDOWN") == make(AdminVerb::shutdown));
        CHECK(command("SHUTDOWN WAIT_FOR_SERVERS") ==
              make(AdminVerb::shutdown, "WAIT_FOR_SERVERS"));
        CHECK(command("shutdown wait_for_clients;") ==
              make(AdminVerb::shutdown, "WAIT_FOR_CLIENTS"));
        CHECK(refusal("SHUTDOWN NOW") ==
              "syntax error: SHUTDOWN accepts WAIT_FOR_SERVERS or WAIT_FOR_CLIENTS, not 'NOW'");
    }

    TEST_CASE("SET key = value and SET key TO value") {
        CHECK(command("SET default_pool_size = 10") ==
              make(AdminVerb::set, "default_pool_size", "10"));
        CHECK(command("set Default_Pool_Size=10;") ==
              make(AdminVerb::set, "default_pool_size", "10"));
        CHECK(command("SET query_timeout TO 1.5") == make(AdminVerb::set, "query_timeout", "1.5"));
        CHECK(command("SET auth_type to md5") == make(AdminVerb::set, "auth_type", "md5"));
        SUBCASE("bare values keep their case") {
            CHECK(command("SET pool_mode = Session") ==
                  make(AdminVerb::set, "pool_mode", "Session"));
        }
        SUBCASE("quoted values are unquoted, '' is one quote") {
            CHECK(command("SET server_reset_query = 'DISCARD ALL'") ==
                  make(AdminVerb::set, "server_reset_query", "DISCARD ALL"));
            CHECK(command("SET application_name_add_host = 'it''s; = \"x\"';") ==
                  make(AdminVerb::set, "application_name_add_host", "it's; = \"x\""));
            CHECK(command("SET server_reset_query = ''") ==
                  make(AdminVerb::set, "server_reset_query", ""));
        }
        SUBCASE("refusals say what was expected") {
            CHECK(refusal("SET") == "SET needs a setting: SET key = value");
            CHECK(refusal("SET 'key' = 1") ==
                  "syntax error: SET expects a setting name, not ''key''");
            CHECK(refusal("SET key") == "SET needs '=' or TO after 'key'");
            CHECK(refusal("SET key 1") ==
                  "syntax error: SET expects '=' or TO after 'key', not '1'");
            CHECK(refusal("SET key =") == "SET needs a value for 'key'");
            CHECK(refusal("SET key = ;") == "SET needs a value for 'key'");
            CHECK(refusal("SET key = \"v\"") ==
                  "syntax error: SET expects a 'quoted string' or a bare word as the value, "
                  "not '\"v\"'");
            CHECK(refusal("SET key = 'v") == "syntax error: unterminated quoted string");
            CHECK(refusal("SET key = 1 2") == "syntax error: unexpected '2' after SET");
        }
    }

    TEST_CASE("blanks around the command and one trailing semicolon") {
        CHECK(command(" \t\r\n PAUSE \n app \t;\n ") == make(AdminVerb::pause, "app"));
        CHECK(command("PAUSE app;") == make(AdminVerb::pause, "app"));
        CHECK(refusal("PAUSE app;;") == "syntax error: one command per query, found ';' after ';'");
        CHECK(refusal("PAUSE; RESUME") ==
              "syntax error: one command per query, found 'RESUME' after ';'");
        CHECK(refusal("; PAUSE") == "syntax error: one command per query, found 'PAUSE' after ';'");
    }

    TEST_CASE("only blanks and semicolons is the empty query") {
        CHECK(is_empty(""));
        CHECK(is_empty("   \n\t"));
        CHECK(is_empty(";"));
        CHECK(is_empty(" ; ;; "));
    }

    TEST_CASE("unknown commands are named in the error") {
        CHECK(refusal("FOO") == "syntax error: unknown command 'FOO'");
        CHECK(refusal("foo bar") == "syntax error: unknown command 'foo'");
        CHECK(refusal("SHOWPOOLS") == "syntax error: unknown command 'SHOWPOOLS'");
        CHECK(refusal("'SHOW' POOLS") == "syntax error: unknown command ''SHOW''");
        CHECK(refusal("= 1") == "syntax error: unknown command '='");
        CHECK(refusal("PAUSE-ALL") == "syntax error: unknown command 'PAUSE-ALL'");
    }

    TEST_CASE("a long bad word comes back cut short, not inside a UTF-8 character") {
        const std::string word = std::string(59, 'x') + "é" + std::string(1000, 'y');
        CHECK(refusal(word) == "syntax error: unknown command '" + std::string(59, 'x') + "...'");
    }
}
