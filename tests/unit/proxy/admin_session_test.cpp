// serve_admin: the simple query protocol, and how a session ends. The extended protocol is in
// admin_session_extended_test.cpp.

#include "tests/support/admin_session_harness.hpp"

#include <doctest/doctest.h>

using namespace proxy;
using namespace proxy::test;
namespace fe = wire::fe;
using wire::test::msg;
using wire::test::raw;

TEST_SUITE("proxy.admin_session") {
    TEST_CASE("a SHOW query answers a table whose columns say their types") {
        const auto t = run_session(sends(batch(fe::Query{"show pools;"}, fe::Terminate{})));
        CHECK(t.replies == lines({
                               "RowDescription database:25/-1 cl_active:20/8",
                               "DataRow app 3",
                               "DataRow pgbouncer NULL",
                               "CommandComplete SHOW",
                               "ReadyForQuery I",
                           }));
        CHECK(t.reason == "client close request");
        REQUIRE(t.ran.size() == 1);
        CHECK(t.ran[0] == AdminCommand{AdminVerb::show, "POOLS", ""});
    }

    TEST_CASE("replies go out before the console waits for the next query") {
        const auto t = run_session([](Client& client) -> asio::awaitable<void> {
            co_await client.send(batch(fe::Query{"PAUSE app"}));
            const auto first = co_await client.receive(2);
            CHECK(first == lines({"CommandComplete PAUSE", "ReadyForQuery I"}));
            co_await client.send(batch(fe::Query{"RESUME"}));
            const auto second = co_await client.receive(2);
            CHECK(second == lines({"CommandComplete DONE", "ReadyForQuery I"}));
            co_await client.send(batch(fe::Terminate{}));
        });
        CHECK(t.replies.empty());
        CHECK(t.reason == "client close request");
        REQUIRE(t.ran.size() == 2);
        CHECK(t.ran[0] == AdminCommand{AdminVerb::pause, "app", ""});
        CHECK(t.ran[1] == AdminCommand{AdminVerb::resume, "", ""});
    }

    TEST_CASE("notices come before the command's result") {
        const auto t =
            run_session(sends(batch(fe::Query{"SHOW HELP"}, fe::Query{"RELOAD"}, fe::Terminate{})));
        CHECK(t.replies == lines({
                               "NoticeResponse NOTICE 00000 Console usage",
                               "NoticeResponse NOTICE 00000 SHOW POOLS",
                               "CommandComplete SHOW",
                               "ReadyForQuery I",
                               "NoticeResponse NOTICE 00000 config file changed",
                               "CommandComplete RELOAD",
                               "ReadyForQuery I",
                           }));
    }

    TEST_CASE("a syntax error is an ERROR and the session goes on") {
        const auto t =
            run_session(sends(batch(fe::Query{"FOO"}, fe::Query{"PAUSE app"}, fe::Terminate{})));
        CHECK(t.replies == lines({
                               "ErrorResponse ERROR 42601 syntax error: unknown command 'FOO'",
                               "ReadyForQuery I",
                               "CommandComplete PAUSE",
                               "ReadyForQuery I",
                           }));
        REQUIRE(t.ran.size() == 1);
        CHECK(t.ran[0].verb == AdminVerb::pause);
    }

    TEST_CASE("a command that fails is an ERROR with the console's SQLSTATE") {
        const auto t = run_session(sends(batch(fe::Query{"SHOW NOTHING"}, fe::Terminate{})));
        CHECK(t.replies == lines({
                               "ErrorResponse ERROR 42704 unknown SHOW subject NOTHING",
                               "ReadyForQuery I",
                           }));
        CHECK(t.reason == "client close request");
    }

    TEST_CASE("an empty query answers EmptyQueryResponse without running anything") {
        const auto t = run_session(sends(batch(fe::Query{""}, fe::Query{" ; ;"}, fe::Terminate{})));
        CHECK(t.replies == lines({
                               "EmptyQueryResponse",
                               "ReadyForQuery I",
                               "EmptyQueryResponse",
                               "ReadyForQuery I",
                           }));
        CHECK(t.ran.empty());
    }

    TEST_CASE("EOF ends the session after the replies owed") {
        const auto t = run_session([](Client& client) -> asio::awaitable<void> {
            co_await client.send(batch(fe::Query{"PAUSE"}));
            client.shutdown_send();
            co_return;
        });
        CHECK(t.replies == lines({"CommandComplete PAUSE", "ReadyForQuery I"}));
        CHECK(t.reason == "client unexpected eof");
    }

    TEST_CASE("a message the console does not speak is FATAL and ends the session") {
        std::string type;
        wire::test::Bytes message;
        SUBCASE("FunctionCall") {
            message = wire::test::encoded(fe::FunctionCall{});
            type = "'F'";
        }
        SUBCASE("CopyData") {
            message = msg('d', "data");
            type = "'d'";
        }
        SUBCASE("a type byte that is no character") {
            message = msg('\x01', "");
            type = "byte 1";
        }
        wire::test::Bytes bytes = message;
        const auto after = batch(fe::Query{"PAUSE"}, fe::Terminate{});
        bytes.insert(bytes.end(), after.begin(), after.end());
        const auto t = run_session(sends(bytes));
        const std::string error = "unsupported frontend message type " + type;
        CHECK(t.replies == lines({"ErrorResponse FATAL 08P01 " + error}));
        CHECK(t.reason == error);
        CHECK(t.ran.empty());
    }

    TEST_CASE("a malformed message is FATAL and ends the session") {
        std::string error;
        wire::test::Bytes bytes;
        wire::Limits limits;
        SUBCASE("a Query without its terminator") {
            bytes = msg('Q', raw("SHOW POOLS"));
            error = "invalid client message: missing NUL terminator";
        }
        SUBCASE("a Sync with a body") {
            bytes = msg('S', raw("x"));
            error = "invalid client message: trailing bytes after message";
        }
        SUBCASE("a Flush with a body") {
            bytes = msg('H', raw("x"));
            error = "invalid client message: trailing bytes after message";
        }
        SUBCASE("a Describe of neither a statement nor a portal") {
            bytes = msg('D', wire::test::str("Xname"));
            error = "invalid client message: invalid field value";
        }
        SUBCASE("a length word below 4") {
            bytes = wire::test::cat({raw("Q"), wire::test::i32(3)});
            error = "invalid client message: message length too small";
        }
        SUBCASE("a length word over the limit, refused before its body arrives") {
            limits.max_message_size = 1024;
            bytes = wire::test::cat({raw("Q"), wire::test::i32(1 << 30)});
            error = "invalid client message: message length exceeds limit";
        }
        const auto t = run_session(sends(bytes), limits);
        CHECK(t.replies == lines({"ErrorResponse FATAL 08P01 " + error}));
        CHECK(t.reason == error);
        CHECK(t.ran.empty());
    }
}
