// FirstReadable over real sockets: a Unix socket pair for the client (as a Unix-socket client
// is), loopback TCP for the server. The peers' ends are written to or closed before the wait
// starts, so what each side has to say is known when it begins.
#include "proxy/first_readable.hpp"

#include <doctest/doctest.h>

#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <array>
#include <string>
#include <string_view>

namespace asio = proxy::asio;
using proxy::FirstReadable;
using proxy::tcp;
using Ready = FirstReadable::Ready;
using namespace std::chrono_literals;

namespace {

struct Sockets {
    asio::io_context io{1};
    proxy::ClientSocket client{io};
    asio::local::stream_protocol::socket client_peer{io};
    tcp::socket server{io};
    tcp::socket server_peer{io};
    std::array<char, 64> client_room{};
    std::array<char, 64> server_room{};

    Sockets() {
        asio::local::stream_protocol::socket ours{io};
        asio::local::connect_pair(ours, client_peer);
        client.assign(asio::generic::stream_protocol(AF_UNIX, SOCK_STREAM), ours.release());
        tcp::acceptor acceptor{io, {asio::ip::address_v4::loopback(), 0}};
        server_peer.connect(acceptor.local_endpoint());
        acceptor.accept(server);
    }

    FirstReadable::Side<proxy::ClientSocket> client_side(bool with_room = true) {
        if (!with_room) return {&client, std::nullopt};
        return {&client, asio::buffer(client_room)};
    }
    FirstReadable::Side<tcp::socket> server_side(bool with_room = true) {
        if (!with_room) return {&server, std::nullopt};
        return {&server, asio::buffer(server_room)};
    }

    FirstReadable::Outcome wait(FirstReadable::Side<proxy::ClientSocket> client_side,
                                FirstReadable::Side<tcp::socket> server_side,
                                proxy::Duration timeout = proxy::Duration{0}) {
        FirstReadable readable;
        std::optional<FirstReadable::Outcome> outcome;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                outcome = co_await readable.wait(client_side, server_side, timeout);
            },
            asio::detached);
        io.run_for(5s);
        REQUIRE(outcome);
        return *outcome;
    }
};

std::size_t bytes(const std::optional<proxy::IoResult>& read) {
    REQUIRE(read);
    CHECK_FALSE(std::get<0>(*read));
    return std::get<1>(*read);
}

} // namespace

TEST_SUITE("FirstReadable") {
    TEST_CASE("the server's reply is read into its room; the idle client's read is cancelled") {
        Sockets sockets;
        asio::write(sockets.server_peer, asio::buffer(std::string_view("reply")));
        const auto outcome = sockets.wait(sockets.client_side(), sockets.server_side());
        CHECK(outcome.ready == Ready::server);
        CHECK_FALSE(outcome.client_read);
        REQUIRE(bytes(outcome.server_read) == 5);
        CHECK(std::string_view(sockets.server_room.data(), 5) == "reply");
    }

    TEST_CASE("a client that sent something wins over a silent server") {
        Sockets sockets;
        asio::write(sockets.client_peer, asio::buffer(std::string_view("Q...")));
        const auto outcome = sockets.wait(sockets.client_side(), sockets.server_side());
        CHECK(outcome.ready == Ready::client);
        CHECK(bytes(outcome.client_read) == 4);
        CHECK_FALSE(outcome.server_read);
    }

    TEST_CASE("when both spoke, both reads are kept and the server's comes first") {
        Sockets sockets;
        asio::write(sockets.client_peer, asio::buffer(std::string_view("next")));
        asio::write(sockets.server_peer, asio::buffer(std::string_view("reply")));
        const auto outcome = sockets.wait(sockets.client_side(), sockets.server_side());
        CHECK(outcome.ready == Ready::server);
        CHECK(bytes(outcome.client_read) == 4);
        CHECK(bytes(outcome.server_read) == 5);
    }

    TEST_CASE("a client that closes ends the wait with its end of file") {
        Sockets sockets;
        sockets.client_peer.close();
        const auto outcome = sockets.wait(sockets.client_side(), sockets.server_side());
        CHECK(outcome.ready == Ready::client);
        REQUIRE(outcome.client_read);
        CHECK(std::get<0>(*outcome.client_read) == asio::error::eof);
    }

    TEST_CASE("a deadline ends the wait with nothing read") {
        Sockets sockets;
        const auto outcome =
            sockets.wait(sockets.client_side(), sockets.server_side(), proxy::Duration{20ms});
        CHECK(outcome.ready == Ready::timeout);
        CHECK_FALSE(outcome.client_read);
        CHECK_FALSE(outcome.server_read);
    }

    TEST_CASE("without room a side is waited for and its bytes stay in the socket") {
        Sockets sockets;
        asio::write(sockets.server_peer, asio::buffer(std::string_view("reply")));
        const auto outcome = sockets.wait(sockets.client_side(false), sockets.server_side(false));
        CHECK(outcome.ready == Ready::server);
        CHECK_FALSE(outcome.server_read);
        CHECK(sockets.server.available() == 5);
    }

    TEST_CASE("without a client only the server is watched") {
        Sockets sockets;
        asio::write(sockets.client_peer, asio::buffer(std::string_view("held")));
        asio::write(sockets.server_peer, asio::buffer(std::string_view("reply")));
        const auto outcome = sockets.wait({}, sockets.server_side());
        CHECK(outcome.ready == Ready::server);
        CHECK_FALSE(outcome.client_read);
        CHECK(sockets.client.available() == 4);
    }
}
