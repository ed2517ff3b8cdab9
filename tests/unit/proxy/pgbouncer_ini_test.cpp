#include "proxy/pgbouncer_ini.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using proxy::pgbouncer::parse_connection_string;
using proxy::pgbouncer::parse_ini;

TEST_SUITE("proxy.pgbouncer_ini") {
    TEST_CASE("sections, keys, comments with ; and #, blank lines, CRLF") {
        const auto file = parse_ini("; comment\r\n"
                                    "  # another comment\n"
                                    "\n"
                                    "[databases]\r\n"
                                    "App = host=pg-1 dbname=app\r\n"
                                    "[PgBouncer]\n"
                                    "  Listen_Port   =   6432  \n"
                                    "server_reset_query = DISCARD ALL ; kept: not a comment\n"
                                    "empty =\n");
        CHECK(file.problems.empty());
        CHECK(file.includes.empty());
        REQUIRE(file.entries.size() == 4);
        CHECK(file.entries[0].section == "databases");
        CHECK(file.entries[0].key == "App"); // database names keep their case
        CHECK(file.entries[0].value == "host=pg-1 dbname=app");
        CHECK(file.entries[0].line == 5);
        CHECK(file.entries[1].section == "pgbouncer");
        CHECK(file.entries[1].key == "listen_port"); // [pgbouncer] keys are case-insensitive
        CHECK(file.entries[1].value == "6432");
        CHECK(file.entries[1].line == 7);
        CHECK(file.entries[2].value == "DISCARD ALL ; kept: not a comment");
        CHECK(file.entries[3].key == "empty");
        CHECK(file.entries[3].value.empty());
    }

    TEST_CASE("a value in double quotes loses them") {
        const auto file = parse_ini("[pgbouncer]\nserver_check_query = \"select 1\"\n");
        REQUIRE(file.entries.size() == 1);
        CHECK(file.entries[0].value == "select 1");
    }

    TEST_CASE("%include is reported with its file, not followed") {
        const auto file = parse_ini("[pgbouncer]\n%include /etc/pgbouncer/extra.ini\n");
        CHECK(file.entries.empty());
        REQUIRE(file.includes.size() == 1);
        CHECK(file.includes[0].value == "/etc/pgbouncer/extra.ini");
        CHECK(file.includes[0].line == 2);
    }

    TEST_CASE("lines that are not key = value are problems with their line") {
        const auto file = parse_ini("[pgbouncer\njust words\n= value\n[ok]\n");
        REQUIRE(file.problems.size() == 3);
        CHECK(file.problems[0].line == 1);
        CHECK(file.problems[1].line == 2);
        CHECK(file.problems[2].line == 3);
        CHECK(file.entries.empty());
    }

    TEST_CASE("connection strings: pairs, quoted values, escapes") {
        const auto conn = parse_connection_string(
            "host=pg-1,pg-2  port = 5432 dbname='my db' password='it''s \\'x\\' \\\\'");
        REQUIRE_FALSE(conn.error);
        REQUIRE(conn.params.size() == 4);
        CHECK(conn.params[0].key == "host");
        CHECK(conn.params[0].value == "pg-1,pg-2");
        CHECK(conn.params[1].key == "port");
        CHECK(conn.params[1].value == "5432");
        CHECK(conn.params[2].value == "my db");
        CHECK(conn.params[3].value == "it's 'x' \\");

        CHECK(parse_connection_string("").params.empty());
        CHECK(parse_connection_string("Pool_Size=5").params.at(0).key == "pool_size");
    }

    TEST_CASE("connection strings that cannot be read say why") {
        const auto unterminated = parse_connection_string("host=pg password='abc");
        REQUIRE(unterminated.error);
        CHECK(unterminated.error->find("password") != std::string::npos);
        CHECK(parse_connection_string("host").error);
        CHECK(parse_connection_string("=x").error);
    }
}
