#include "proxy/prepared_statements.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

using namespace wire::test;
namespace asio = proxy::asio;
using proxy::PreparedStatements;
using wire::Frame;
using wire::Phase;

// A server connection that is never connected: the class under test only reads its tracker and
// statement cache.
struct Fixture {
    asio::io_context io;
    proxy::ServerConn server{pool::ServerId{1}, "S-1", proxy::tcp::socket(io), {}, 1 << 20, 2};
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

    std::string reply(char type) {
        // ReadyForQuery says idle; the other replies here have no body.
        const Bytes message = type == 'Z' ? msg('Z', "I") : msg(type, Bytes());
        const Frame frame = frame_of(message, Phase::typed);
        const auto disposition = server.tracker().on_backend(frame);
        prepared.on_server(frame, true, disposition, server);
        std::string out = disposition.route == wire::Route::forward ? std::string(1, type) : "";
        for (const auto fake : disposition.fakes)
            out += static_cast<char>(fake);
        return out;
    }
};

std::string as_string(const Bytes& bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

const Bytes types_none = i16(0);
Bytes parse(std::string_view name, std::string_view sql) {
    return msg('P', cat({str(name), str(sql), types_none}));
}
Bytes bind(std::string_view statement) {
    return msg('B', cat({str(""), str(statement), i16(0), i16(0), i16(0)}));
}
const Bytes sync_message = msg('S', Bytes());

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
}
