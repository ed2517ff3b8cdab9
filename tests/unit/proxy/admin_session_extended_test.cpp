// serve_admin: the extended query protocol, as psycopg 3 and Go drivers speak it.

#include "tests/support/admin_session_harness.hpp"

#include <doctest/doctest.h>

using namespace proxy;
using namespace proxy::test;
namespace fe = wire::fe;
using wire::FormatCode;

namespace {

const fe::Parse show_pools{"", "SHOW POOLS", {}};
const fe::Bind bind_unnamed{"", "", {}, {}, {}};
const auto describe_unnamed = fe::Describe::portal("");
const fe::Execute execute_unnamed{"", 0};

// What SHOW POOLS answers to Describe and then to Execute.
constexpr std::string_view pools_columns = "RowDescription database:25/-1 cl_active:20/8";
constexpr std::string_view pools_row_1 = "DataRow app 3";
constexpr std::string_view pools_row_2 = "DataRow pgbouncer NULL";

} // namespace

TEST_SUITE("proxy.admin_session.extended") {
    TEST_CASE("Parse, Bind, Describe, Execute, Sync run a SHOW once") {
        const auto t = run_session(sends(batch(show_pools, bind_unnamed, describe_unnamed,
                                               execute_unnamed, fe::Sync{}, fe::Terminate{})));
        CHECK(t.replies == lines({"ParseComplete", "BindComplete", pools_columns, pools_row_1,
                                  pools_row_2, "CommandComplete SHOW", "ReadyForQuery I"}));
        CHECK(t.reason == "client close request");
        REQUIRE(t.ran.size() == 1);
        CHECK(t.ran[0] == AdminCommand{AdminVerb::show, "POOLS", ""});
    }

    TEST_CASE("a portal's rows are sent once, its notices when it runs") {
        const auto t = run_session(sends(batch(
            show_pools, bind_unnamed, execute_unnamed, execute_unnamed, fe::Parse{"", "RELOAD", {}},
            bind_unnamed, describe_unnamed, execute_unnamed, fe::Sync{}, fe::Terminate{})));
        CHECK(t.replies == lines({
                               "ParseComplete",
                               "BindComplete",
                               pools_row_1,
                               pools_row_2,
                               "CommandComplete SHOW",
                               "CommandComplete SHOW",
                               "ParseComplete",
                               "BindComplete",
                               "NoticeResponse NOTICE 00000 config file changed",
                               "NoData",
                               "CommandComplete RELOAD",
                               "ReadyForQuery I",
                           }));
        CHECK(t.ran.size() == 2);
    }

    TEST_CASE("Describe of a statement runs a SHOW to learn its columns, and nothing else") {
        const auto t = run_session(sends(batch(
            fe::Parse{"pools", "SHOW POOLS", {}}, fe::Describe::statement("pools"),
            fe::Parse{"pause", "PAUSE app", {}}, fe::Describe::statement("pause"),
            fe::Parse{"", ";", {}}, fe::Describe::statement(""), fe::Parse{"help", "SHOW HELP", {}},
            fe::Describe::statement("help"), fe::Parse{"bad", "SHOW NOTHING", {}},
            fe::Describe::statement("bad"), fe::Sync{}, fe::Bind{"", "pools", {}, {}, {}},
            execute_unnamed, fe::Sync{}, fe::Terminate{})));
        CHECK(t.replies == lines({
                               "ParseComplete",
                               "ParameterDescription 0",
                               pools_columns,
                               "ParseComplete",
                               "ParameterDescription 0",
                               "NoData",
                               "ParseComplete",
                               "ParameterDescription 0",
                               "NoData",
                               "ParseComplete",
                               "ParameterDescription 0",
                               "NoData",
                               "ParseComplete",
                               "ErrorResponse ERROR 42704 unknown SHOW subject NOTHING",
                               "ReadyForQuery I",
                               "BindComplete",
                               pools_row_1,
                               pools_row_2,
                               "CommandComplete SHOW",
                               "ReadyForQuery I",
                           }));
        // PAUSE was described, never run; SHOW POOLS ran for Describe and again for Execute.
        REQUIRE(t.ran.size() == 4);
        CHECK(t.ran[0].argument == "POOLS");
        CHECK(t.ran[1].argument == "HELP");
        CHECK(t.ran[2].argument == "NOTHING");
        CHECK(t.ran[3].argument == "POOLS");
    }

    TEST_CASE("the empty query answers NoData and EmptyQueryResponse") {
        const auto t =
            run_session(sends(batch(fe::Parse{"", "", {}}, bind_unnamed, describe_unnamed,
                                    execute_unnamed, fe::Sync{}, fe::Terminate{})));
        CHECK(t.replies == lines({"ParseComplete", "BindComplete", "NoData", "EmptyQueryResponse",
                                  "ReadyForQuery I"}));
        CHECK(t.ran.empty());
    }

    TEST_CASE("after an error everything up to Sync is skipped, unread") {
        // The Bind after the error is garbage: skipped messages are not even parsed.
        const auto garbage_bind = wire::test::msg('B', "\xff\xff");
        auto bytes = batch(fe::Parse{"", "FOO", {}});
        bytes.insert(bytes.end(), garbage_bind.begin(), garbage_bind.end());
        const auto rest = batch(describe_unnamed, execute_unnamed, fe::Query{"PAUSE"}, fe::Flush{},
                                fe::Sync{}, fe::Query{"PAUSE"}, fe::Terminate{});
        bytes.insert(bytes.end(), rest.begin(), rest.end());
        const auto t = run_session(sends(bytes));
        CHECK(t.replies == lines({
                               "ErrorResponse ERROR 42601 syntax error: unknown command 'FOO'",
                               "ReadyForQuery I",
                               "CommandComplete PAUSE",
                               "ReadyForQuery I",
                           }));
        CHECK(t.ran.size() == 1);
    }

    TEST_CASE("a command's error comes at the Describe that runs it, and skips the Execute") {
        const auto t = run_session(
            sends(batch(fe::Parse{"", "show nothing", {}}, bind_unnamed, describe_unnamed,
                        execute_unnamed, fe::Sync{}, fe::Terminate{})));
        CHECK(t.replies == lines({
                               "ParseComplete",
                               "BindComplete",
                               "ErrorResponse ERROR 42704 unknown SHOW subject NOTHING",
                               "ReadyForQuery I",
                           }));
        CHECK(t.ran.size() == 1);
    }

    TEST_CASE("results are text only") {
        SUBCASE("binary is refused") {
            const auto t =
                run_session(sends(batch(show_pools, fe::Bind{"", "", {}, {}, {FormatCode::binary}},
                                        execute_unnamed, fe::Sync{}, fe::Terminate{})));
            CHECK(t.replies ==
                  lines({"ParseComplete",
                         "ErrorResponse ERROR 0A000 the admin console sends text only: binary "
                         "results are not supported",
                         "ReadyForQuery I"}));
            CHECK(t.ran.empty());
        }
        SUBCASE("text, for all columns or one by one, is fine") {
            const auto t = run_session(sends(
                batch(show_pools, fe::Bind{"", "", {}, {}, {FormatCode::text}}, execute_unnamed,
                      fe::Bind{"", "", {}, {}, {FormatCode::text, FormatCode::text}},
                      execute_unnamed, fe::Sync{}, fe::Terminate{})));
            CHECK(t.replies == lines({"ParseComplete", "BindComplete", pools_row_1, pools_row_2,
                                      "CommandComplete SHOW", "BindComplete", pools_row_1,
                                      pools_row_2, "CommandComplete SHOW", "ReadyForQuery I"}));
        }
    }

    TEST_CASE("parameters are refused") {
        SUBCASE("declared by Parse") {
            const auto t = run_session(
                sends(batch(fe::Parse{"", "SHOW POOLS", {23}}, fe::Sync{}, fe::Terminate{})));
            CHECK(t.replies ==
                  lines({"ErrorResponse ERROR 0A000 the admin console does not support parameters",
                         "ReadyForQuery I"}));
        }
        SUBCASE("supplied by Bind") {
            const wire::Value one = wire::as_bytes("1");
            const auto t = run_session(sends(
                batch(show_pools, fe::Bind{"", "", {}, {one}, {}}, fe::Sync{}, fe::Terminate{})));
            CHECK(t.replies == lines({"ParseComplete",
                                      "ErrorResponse ERROR 08P01 bind message supplies 1 "
                                      "parameters, but unnamed prepared statement requires 0",
                                      "ReadyForQuery I"}));
        }
    }

    TEST_CASE("statements and portals by name") {
        const auto pools = fe::Parse{"s", "SHOW POOLS", {}};
        const auto bind_p = fe::Bind{"p", "s", {}, {}, {}};
        const auto execute_p = fe::Execute{"p", 0};
        std::string expected;
        wire::test::Bytes bytes;
        SUBCASE("a named statement outlives Sync; a portal does not") {
            bytes = batch(pools, fe::Sync{}, bind_p, execute_p, fe::Sync{}, execute_p, fe::Sync{});
            expected =
                lines({"ParseComplete", "ReadyForQuery I", "BindComplete", pools_row_1, pools_row_2,
                       "CommandComplete SHOW", "ReadyForQuery I",
                       "ErrorResponse ERROR 34000 portal \"p\" does not exist", "ReadyForQuery I"});
        }
        SUBCASE("a named statement must be closed before it is parsed again") {
            bytes = batch(pools, pools, fe::Sync{}, fe::Close::statement("s"), pools, fe::Sync{});
            expected =
                lines({"ParseComplete",
                       "ErrorResponse ERROR 42P05 prepared statement \"s\" already exists",
                       "ReadyForQuery I", "CloseComplete", "ParseComplete", "ReadyForQuery I"});
        }
        SUBCASE("the unnamed statement is replaced by each Parse") {
            bytes = batch(show_pools, fe::Parse{"", "PAUSE", {}}, bind_unnamed, execute_unnamed,
                          fe::Sync{});
            expected = lines({"ParseComplete", "ParseComplete", "BindComplete",
                              "CommandComplete PAUSE", "ReadyForQuery I"});
        }
        SUBCASE("Bind needs the statement, and a new portal name") {
            bytes = batch(fe::Bind{"", "nope", {}, {}, {}}, fe::Sync{}, pools, bind_p, bind_p,
                          fe::Sync{}, bind_unnamed, fe::Sync{});
            expected =
                lines({"ErrorResponse ERROR 26000 prepared statement \"nope\" does not exist",
                       "ReadyForQuery I", "ParseComplete", "BindComplete",
                       "ErrorResponse ERROR 42P03 portal \"p\" already exists", "ReadyForQuery I",
                       "ErrorResponse ERROR 26000 unnamed prepared statement does not exist",
                       "ReadyForQuery I"});
        }
        SUBCASE("closed statements and portals are gone; closing nothing is no error") {
            bytes = batch(pools, bind_p, fe::Close::portal("p"), execute_p, fe::Sync{},
                          fe::Close::statement("s"), fe::Close::statement("s"),
                          fe::Close::portal("none"), fe::Describe::statement("s"), fe::Sync{});
            expected = lines({"ParseComplete", "BindComplete", "CloseComplete",
                              "ErrorResponse ERROR 34000 portal \"p\" does not exist",
                              "ReadyForQuery I", "CloseComplete", "CloseComplete", "CloseComplete",
                              "ErrorResponse ERROR 26000 prepared statement \"s\" does not exist",
                              "ReadyForQuery I"});
        }
        const auto end = batch(fe::Terminate{});
        bytes.insert(bytes.end(), end.begin(), end.end());
        CHECK(run_session(sends(bytes)).replies == expected);
    }

    TEST_CASE("Flush gets the replies so far, without ReadyForQuery") {
        const auto t = run_session([](Client& client) -> asio::awaitable<void> {
            co_await client.send(batch(show_pools, bind_unnamed, execute_unnamed, fe::Flush{}));
            const auto flushed = co_await client.receive(5);
            CHECK(flushed == lines({"ParseComplete", "BindComplete", pools_row_1, pools_row_2,
                                    "CommandComplete SHOW"}));
            co_await client.send(batch(fe::Sync{}, fe::Terminate{}));
        });
        CHECK(t.replies == lines({"ReadyForQuery I"}));
    }
}
