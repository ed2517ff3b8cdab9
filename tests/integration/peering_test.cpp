// Two pgmarina instances in front of one PostgreSQL, peers of each other (issue 10): a
// CancelRequest that reaches the instance its client is not connected to is forwarded to the
// right one, once, and cancels the query there.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq_async.hpp"
#include "tests/support/raw_client.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using support::PgCluster;
using support::PgmarinaProcess;
namespace raw = support::raw;

constexpr std::uint32_t cancel_request_code = 80877102;

std::string config_for(const PgCluster& cluster, std::uint16_t port, int peer_id,
                       std::uint16_t peer_1_port, std::uint16_t peer_2_port) {
    return "[pgmarina]\nlisten = [\"127.0.0.1:" + std::to_string(port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "workers = 2\n"
           "auth_type = \"trust\"\n"
           "peer_id = " +
           std::to_string(peer_id) +
           "\n"
           "[databases.app]\nhosts = [\"127.0.0.1:" +
           std::to_string(cluster.port(0)) + "\"]\n[users.scram_user]\npassword = \"" +
           cluster.password("scram_user") +
           "\"\n"
           "[peers.1]\nhost = \"127.0.0.1:" +
           std::to_string(peer_1_port) +
           "\"\n"
           "[peers.2]\nhost = \"127.0.0.1:" +
           std::to_string(peer_2_port) + "\"\n";
}

struct Setup {
    PgCluster cluster{{.replicas = 0}};
    std::uint16_t port_a = PgmarinaProcess::free_port();
    std::uint16_t port_b = PgmarinaProcess::free_port();
    PgmarinaProcess a{config_for(cluster, port_a, 1, port_a, port_b), port_a};
    PgmarinaProcess b{config_for(cluster, port_b, 2, port_a, port_b), port_b};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

// The key of a BackendKeyData body: process id and secret, in wire order.
struct Key {
    std::uint32_t process_id = 0;
    std::string secret;
};

std::uint32_t read_i32(std::string_view bytes) {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i)
        value = (value << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
    return value;
}

// A client logged in to `port`, and the key its welcome gave it.
std::pair<std::unique_ptr<raw::Client>, Key> log_in(std::uint16_t port) {
    auto client = std::make_unique<raw::Client>(port);
    REQUIRE(client->send(raw::startup_message({{"user", "scram_user"}, {"database", "app"}})));
    std::optional<Key> key;
    for (const auto& message : client->read_until('Z')) {
        REQUIRE_MESSAGE(message.type != 'E', message.field('M'));
        if (message.type == 'K' && message.body.size() == 8) {
            key = Key{read_i32(message.body), message.body.substr(4)};
        }
    }
    REQUIRE(key.has_value());
    return {std::move(client), *key};
}

// Sends a CancelRequest for `key` to `port`, on a connection of its own.
void cancel(std::uint16_t port, const Key& key) {
    raw::Client canceller(port);
    REQUIRE(canceller.send(raw::int32(16) + raw::int32(cancel_request_code) +
                           raw::int32(key.process_id) + key.secret));
    // The server answers nothing and closes.
    canceller.read_until_closed(2s);
}

// The SQLSTATE the query in flight on `client` ended with ("" for none), and how long it took to
// end from now; nullopt while it has not ended within `timeout`.
std::optional<std::pair<std::string, Clock::duration>> outcome(raw::Client& client,
                                                               std::chrono::milliseconds timeout) {
    const auto start = Clock::now();
    std::string sqlstate;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(timeout - (Clock::now() - start));
        if (left.count() <= 0) return std::nullopt;
        auto message = client.read(left);
        if (!message) return std::nullopt;
        if (message->type == 'E') sqlstate = message->field('C');
        if (message->type == 'Z') return std::pair{sqlstate, Clock::now() - start};
    }
}

} // namespace

TEST_SUITE("integration.peering") {

    TEST_CASE("a key carries the peer_id of the instance that issued it") {
        INFO("A's log:" << support::log_tail(setup().a));
        const auto [client_a, key_a] = log_in(setup().port_a);
        const auto [client_b, key_b] = log_in(setup().port_b);
        CHECK(((key_a.process_id >> 16) & 0x3fffU) == 1);
        CHECK(((key_b.process_id >> 16) & 0x3fffU) == 2);
        CHECK((key_a.process_id & 0xc000'0000U) == 0); // positive, not marked forwarded
    }

    TEST_CASE("a cancel sent to the other instance is forwarded and cancels the query") {
        INFO("A's log:" << support::log_tail(setup().a));
        INFO("B's log:" << support::log_tail(setup().b));
        auto [client, key] = log_in(setup().port_a);
        REQUIRE(client->send(raw::query("SELECT pg_sleep(30)")));
        std::this_thread::sleep_for(300ms); // the query is running on a server
        const auto sent = Clock::now();
        cancel(setup().port_b, key);
        const auto ended = outcome(*client, 5s);
        REQUIRE(ended.has_value());
        CHECK(ended->first == "57014");
        const auto took = Clock::now() - sent;
        MESSAGE("cancelled through the peer in "
                << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
        CHECK(took < 1s);
        // The connection goes on.
        REQUIRE(client->send(raw::query("SELECT 1")));
        const auto next = outcome(*client, 5s);
        REQUIRE(next.has_value());
        CHECK(next->first.empty());
    }

    TEST_CASE("the owner cancels its own client's query, and B's clients are B's") {
        auto [client, key] = log_in(setup().port_b);
        REQUIRE(client->send(raw::query("SELECT pg_sleep(30)")));
        std::this_thread::sleep_for(300ms);
        cancel(setup().port_b, key);
        const auto ended = outcome(*client, 5s);
        REQUIRE(ended.has_value());
        CHECK(ended->first == "57014");

        auto [other, other_key] = log_in(setup().port_b);
        REQUIRE(other->send(raw::query("SELECT pg_sleep(30)")));
        std::this_thread::sleep_for(300ms);
        cancel(setup().port_a, other_key); // A forwards to B
        const auto forwarded = outcome(*other, 5s);
        REQUIRE(forwarded.has_value());
        CHECK(forwarded->first == "57014");
    }

    TEST_CASE("a cancel already forwarded once is not forwarded again") {
        INFO("B's log:" << support::log_tail(setup().b));
        auto [client, key] = log_in(setup().port_a);
        REQUIRE(client->send(raw::query("SELECT pg_sleep(30)")));
        std::this_thread::sleep_for(300ms);
        Key marked = key;
        marked.process_id |= 1U << 30; // as A's peer would send it on
        cancel(setup().port_b, marked);
        CHECK_FALSE(outcome(*client, 1500ms).has_value()); // still sleeping
        CHECK(setup().b.log().find("forwarded already") != std::string::npos);
        // Marked, but sent to its owner: honoured, since it ends there.
        cancel(setup().port_a, marked);
        const auto ended = outcome(*client, 5s);
        REQUIRE(ended.has_value());
        CHECK(ended->first == "57014");
    }
}
