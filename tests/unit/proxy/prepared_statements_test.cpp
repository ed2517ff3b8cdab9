#include "proxy/prepared_statements.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

using namespace wire::test;

std::string as_string(const Bytes& bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
namespace asio = proxy::asio;
using proxy::PreparedStatements;
using wire::Frame;
using wire::Phase;

// A server connection that is never connected: the class under test only reads its tracker and
// statement cache.
struct Fixture {
    asio::io_context io;
    proxy::ServerConn server{
        pool::ServerId{1}, "S-1", proxy::ServerStream{proxy::tcp::socket(io)}, {}, 1 << 20, 2};
    pool::StatementRegistry registry;
    proxy::TrafficStats stats;
    PreparedStatements prepared{registry, stats};
    std::vector<asio::const_buffer> to_server;
    std::vector<wire::FakeReply> to_client;

    // Hands `message` to on_client() and returns what goes to the server instead, as one
    // string of bytes (empty: forwarded untouched, so "untouched" is returned).
    std::string client(const Bytes& message) {
        to_server.clear();
        to_client.clear();
        prepared.begin_step();
        const Frame frame = frame_of(message, Phase::typed);
        const wire::Framer::Piece piece{.frame = frame, .bytes = frame.raw, .rest = 0};
        if (!prepared.on_client(piece, server, {to_server, to_client})) return "untouched";
        std::string out;
        for (const auto& buffer : to_server)
            out.append(static_cast<const char*>(buffer.data()), buffer.size());
        return out;
    }

    // Like client(), but a message forwarded untouched is recorded with the tracker, as the
    // session does, and returned.
    std::string forward(const Bytes& message) {
        std::string out = client(message);
        if (out != "untouched") return out;
        server.tracker().on_frontend(frame_of(message, Phase::typed));
        return as_string(message);
    }

    // The type of `message` if it reaches the client, then the replies made up after it.
    std::string reply(const Bytes& message) {
        const Frame frame = frame_of(message, Phase::typed);
        const auto disposition = server.tracker().on_backend(frame);
        const bool withheld = prepared.on_server(frame, true, disposition, server);
        std::string out = disposition.route == wire::Route::forward && !withheld
                              ? std::string(1, frame.type)
                              : "";
        for (const auto fake : disposition.fakes)
            out += static_cast<char>(fake);
        return out;
    }

    // ReadyForQuery says idle; the other replies here have no body.
    std::string reply(char type) { return reply(type == 'Z' ? msg('Z', "I") : msg(type, Bytes())); }

    // reply() for each of `messages` in turn.
    std::string replies(std::initializer_list<Bytes> messages) {
        std::string out;
        for (const auto& message : messages)
            out += reply(message);
        return out;
    }

    std::string due_closes() {
        const auto bytes = prepared.due_closes(server);
        return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
    }
};

const Bytes types_none = i16(0);
Bytes parse(std::string_view name, std::string_view sql) {
    return msg('P', cat({str(name), str(sql), types_none}));
}
Bytes bind(std::string_view statement) {
    return msg('B', cat({str(""), str(statement), i16(0), i16(0), i16(0)}));
}
const Bytes sync_message = msg('S', Bytes());
const Bytes describe_portal = msg('D', cat({u8('P'), str("")}));
const Bytes execute_message = msg('E', cat({str(""), i32(0)}));
Bytes close_statement(std::string_view name) {
    return msg('C', cat({u8('S'), str(name)}));
}
const Bytes stale_plan = error_response()
                             .severity("ERROR")
                             .code("0A000")
                             .message("cached plan must not change result type")
                             .bytes();
Bytes ready(char status) {
    return msg('Z', std::string(1, status));
}
// A reply with no body.
Bytes bare(char type) {
    return msg(type, Bytes());
}

// A server that has PGMARINA_1, `SELECT * FROM t`, prepared for client name "s" and is idle.
void prepare_star(Fixture& f) {
    (void)f.forward(parse("s", "SELECT * FROM t"));
    (void)f.forward(sync_message);
    REQUIRE(f.replies({bare('1'), ready('I')}) == "1Z");
    f.prepared.on_released(f.server);
}

// What libpq's PQexecPrepared sends for "s", as it reaches the server.
std::string exec_star(Fixture& f) {
    std::string out;
    for (const auto& message : {bind("s"), describe_portal, execute_message, sync_message})
        out += f.forward(message);
    return out;
}
const std::string star_execution =
    as_string(cat({bind("PGMARINA_1"), msg('D', cat({u8('P'), str("")})),
                   msg('E', cat({str(""), i32(0)})), msg('S', Bytes())}));

} // namespace

TEST_SUITE("proxy.prepared_statements") {
    TEST_CASE("message_hold holds Parse, Describe and Close whole, streams the rest") {
        CHECK(proxy::message_hold('P', 64, 1000) == 1000);
        CHECK(proxy::message_hold('D', 64, 1000) == 1000);
        CHECK(proxy::message_hold('C', 64, 1000) == 1000);
        CHECK(proxy::message_hold('B', 64, 1000) == 64);
        CHECK(proxy::message_hold(std::nullopt, 64, 1000) == 64);
    }

    TEST_CASE("a named Parse is renamed, the same text from elsewhere answered here") {
        Fixture f;
        CHECK(f.client(parse("s", "SELECT 1")) == as_string(parse("PGMARINA_1", "SELECT 1")));
        CHECK(f.client(sync_message) == "untouched");
        f.server.tracker().on_frontend(frame_of(sync_message, Phase::typed));
        CHECK(f.reply('1') == "1");
        CHECK(f.reply('Z') == "Z");
        f.prepared.on_released(f.server);
        CHECK(f.prepared.size() == 1);
        CHECK(f.stats.client_parses == 1);
        CHECK(f.stats.server_parses == 1);

        // Another client, same text: nothing to send, ParseComplete made up at once.
        PreparedStatements other{f.registry, f.stats};
        std::vector<asio::const_buffer> out;
        std::vector<wire::FakeReply> fakes;
        const Bytes again = parse("t", "SELECT 1");
        const Frame frame = frame_of(again, Phase::typed);
        CHECK(other.on_client({.frame = frame, .bytes = frame.raw}, f.server, {out, fakes}));
        CHECK(out.empty());
        REQUIRE(fakes.size() == 1);
        CHECK(fakes[0] == wire::FakeReply::parse_complete);
        CHECK(f.stats.server_parses == 1);
    }

    TEST_CASE("a Bind on a server without the statement gets a Parse before it") {
        Fixture f;
        (void)f.client(parse("s", "SELECT 1"));
        // The server dropped it (DISCARD ALL from someone else, say).
        f.server.statements().clear();
        CHECK(f.client(bind("s")) ==
              as_string(cat({parse("PGMARINA_1", "SELECT 1"), bind("PGMARINA_1")})));
        CHECK(f.client(bind("unnamed-by-us")) == "untouched");
        CHECK(f.client(bind("")) == "untouched");
        CHECK(f.stats.binds == 1);
    }

    TEST_CASE("a failed Parse leaves neither the server's cache nor the client's name") {
        Fixture f;
        (void)f.client(parse("s", "SELEKT"));
        f.server.tracker().on_frontend(frame_of(sync_message, Phase::typed));
        CHECK(f.reply('E') == "E");
        CHECK(f.reply('Z') == "Z");
        CHECK(f.prepared.size() == 0);
        CHECK(f.server.statements().size() == 0);
    }

    TEST_CASE("the third statement on a server of capacity 2 closes the oldest") {
        Fixture f;
        for (const char* name : {"a", "b"})
            (void)f.client(parse(name, name));
        f.server.tracker().on_frontend(frame_of(sync_message, Phase::typed));
        CHECK(f.reply('1') + f.reply('1') + f.reply('Z') == "11Z");
        f.prepared.on_released(f.server);
        const Bytes close_a = msg('C', cat({u8('S'), str("PGMARINA_1")}));
        CHECK(f.client(parse("c", "c")) == as_string(cat({close_a, parse("PGMARINA_3", "c")})));
        CHECK(f.server.statements().size() == 2);
    }

    TEST_CASE("a stale plan in an implicit transaction: closed, prepared again, sent again") {
        Fixture f;
        prepare_star(f);
        CHECK(exec_star(f) == star_execution);
        CHECK(f.due_closes().empty());
        // Neither the error nor its ReadyForQuery reaches the client.
        CHECK(f.reply(stale_plan).empty());
        CHECK(f.reply(ready('I')).empty());
        CHECK(f.due_closes() == as_string(cat({close_statement("PGMARINA_1"),
                                               parse("PGMARINA_1", "SELECT * FROM t")})) +
                                    star_execution);
        CHECK(f.stats.server_parses == 2);
        CHECK(f.stats.binds == 1);
        // The Close's and Parse's replies are ours; the rest answers the client, as if first.
        CHECK(f.replies({bare('3'), bare('1')}).empty());
        CHECK(f.replies({bare('2'), bare('T'), bare('D'), bare('C'), ready('I')}) == "2TDCZ");
        CHECK(f.server.tracker().releasable());
        CHECK(f.server.statements().contains(pool::StatementId{1}));
        CHECK(f.due_closes().empty());
    }

    TEST_CASE("a request sent again gets no second chance") {
        Fixture f;
        prepare_star(f);
        (void)exec_star(f);
        CHECK(f.replies({stale_plan, ready('I')}).empty());
        CHECK_FALSE(f.due_closes().empty());
        CHECK(f.replies({bare('3'), bare('1')}).empty());
        CHECK(f.replies({stale_plan, ready('I')}) == "EZ");
        // The statement is dropped again, its Close written after the client's Sync.
        CHECK(f.due_closes() == as_string(cat({close_statement("PGMARINA_1"), sync_message})));
        CHECK_FALSE(f.server.statements().contains(pool::StatementId{1}));
    }

    TEST_CASE("inside a transaction block the stale plan error reaches the client") {
        Fixture f;
        prepare_star(f);
        (void)f.forward(msg('Q', str("BEGIN")));
        CHECK(f.replies({bare('C'), ready('T')}) == "CZ");
        (void)exec_star(f);
        CHECK(f.replies({stale_plan, ready('E')}) == "EZ");
        CHECK(f.due_closes() == as_string(cat({close_statement("PGMARINA_1"), sync_message})));
    }

    TEST_CASE("a stale plan error for a request that was not kept reaches the client") {
        Fixture f;
        prepare_star(f);
        SUBCASE("another request pipelined after it") {
            (void)exec_star(f);
            (void)f.forward(msg('Q', str("SELECT 1")));
        }
        SUBCASE("a Parse before it in the batch") {
            (void)f.forward(parse("u", "SELECT 2"));
            CHECK(f.reply('1') == "1");
            (void)exec_star(f);
        }
        CHECK(f.replies({stale_plan, ready('I')}) == "EZ");
        CHECK(f.due_closes() == as_string(cat({close_statement("PGMARINA_1"), sync_message})));
    }
}
