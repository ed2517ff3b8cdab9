#include "proxy/cancel_peering.hpp"
#include "proxy/config.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <map>
#include <string>

using proxy::CancelKey;
using proxy::CancelRoute;
using proxy::Endpoint;

namespace {

CancelKey key_of(std::uint32_t random, int peer_id) {
    CancelKey key;
    key.process_id = proxy::make_process_id(random, peer_id);
    key.secret = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    return key;
}

const std::map<int, Endpoint> peers{
    {1, Endpoint{"pgmarina-0", 6432}},
    {2, Endpoint{"pgmarina-1", 6432}},
    {3, Endpoint{"10.0.0.7", 7432}},
};

} // namespace

TEST_SUITE("proxy.cancel_peering") {

    TEST_CASE("a key carries its issuer's peer_id, is never negative and starts unforwarded") {
        for (const std::uint32_t random : {0U, 1U, 0xffffU, 0x1234'5678U, 0xffff'ffffU}) {
            for (const int peer : {1, 2, 255, 8191, proxy::max_peer_id}) {
                const CancelKey key = key_of(random, peer);
                CAPTURE(random);
                CAPTURE(peer);
                CHECK(key.process_id >= 0);
                CHECK(proxy::key_owner(key) == peer);
                CHECK_FALSE(proxy::key_forwarded(key));
                // The low 16 bits are the random ones.
                CHECK((static_cast<std::uint32_t>(key.process_id) & 0xffffU) == (random & 0xffffU));
            }
        }
    }

    TEST_CASE("without peering the process id is 31 random bits, as before") {
        CHECK(proxy::make_process_id(0xffff'ffffU, 0) == 0x7fff'ffff);
        CHECK(proxy::make_process_id(0x1234'5678U, 0) == 0x1234'5678);
        const CancelKey key = key_of(0x7abc'def0U, 0);
        const CancelRoute route = proxy::route_cancel(key, 0, peers);
        CHECK(route.kind == CancelRoute::Kind::local);
        CHECK(route.key == key); // looked up exactly as given, whatever its bits say
    }

    TEST_CASE("marking a key forwarded keeps its owner and random bits, and stays positive") {
        const CancelKey key = key_of(0xbeefU, 2);
        const CancelKey marked = proxy::mark_forwarded(key);
        CHECK(proxy::key_forwarded(marked));
        CHECK(proxy::key_owner(marked) == 2);
        CHECK(marked.process_id > 0);
        CHECK(marked.secret == key.secret);
        CHECK(marked != key);
    }

    TEST_CASE("our own key is looked up here") {
        const CancelKey key = key_of(0x4242U, 1);
        const CancelRoute route = proxy::route_cancel(key, 1, peers);
        CHECK(route.kind == CancelRoute::Kind::local);
        CHECK(route.key == key);
        CHECK(route.owner == 1);
    }

    TEST_CASE("a forwarded key of ours is looked up without the mark") {
        const CancelKey key = key_of(0x4242U, 1);
        const CancelRoute route = proxy::route_cancel(proxy::mark_forwarded(key), 1, peers);
        CHECK(route.kind == CancelRoute::Kind::local);
        CHECK(route.key == key);
    }

    TEST_CASE("another instance's key goes to it, marked") {
        const CancelKey key = key_of(0x0101U, 3);
        const CancelRoute route = proxy::route_cancel(key, 1, peers);
        REQUIRE(route.kind == CancelRoute::Kind::forward);
        CHECK(route.owner == 3);
        CHECK(route.peer == Endpoint{"10.0.0.7", 7432});
        CHECK(route.key == proxy::mark_forwarded(key));
    }

    TEST_CASE("a forwarded key of another instance is never forwarded again: one hop at most") {
        const CancelKey key = proxy::mark_forwarded(key_of(0x0101U, 3));
        CHECK(proxy::route_cancel(key, 2, peers).kind == CancelRoute::Kind::drop);
    }

    TEST_CASE("a key of an instance not in [peers] is dropped") {
        CHECK(proxy::route_cancel(key_of(0x0101U, 9), 1, peers).kind == CancelRoute::Kind::drop);
        CHECK(proxy::route_cancel(key_of(0x0101U, 2), 1, {}).kind == CancelRoute::Kind::drop);
    }

    TEST_CASE("[peers] in the configuration") {
        const auto loaded = proxy::load_config_string(
            "[pgmarina]\npeer_id = 2\n[peers.1]\nhost = \"pgmarina-0.pgmarina:6432\"\n"
            "[peers.2]\nhost = \"pgmarina-1.pgmarina\"\n",
            "test.toml");
        REQUIRE(loaded.ok());
        const auto& config = *loaded.config();
        CHECK(config.settings.peer_id == 2);
        CHECK(config.peers.size() == 2);
        CHECK(config.peers.at(1) == Endpoint{"pgmarina-0.pgmarina", 6432});
        CHECK(config.peers.at(2) == Endpoint{"pgmarina-1.pgmarina", 6432});

        const auto error = [](const std::string& toml) {
            const auto result = proxy::load_config_string(toml, "test.toml");
            REQUIRE_FALSE(result.ok());
            return result.errors().front().message;
        };
        CHECK(error("[pgmarina]\npeer_id = 1\n[peers.0]\nhost = \"a\"\n")
                  .find("named by its peer_id") != std::string::npos);
        CHECK(error("[pgmarina]\npeer_id = 1\n[peers.x]\nhost = \"a\"\n")
                  .find("named by its peer_id") != std::string::npos);
        CHECK(error("[pgmarina]\npeer_id = 1\n[peers.16384]\nhost = \"a\"\n")
                  .find("named by its peer_id") != std::string::npos);
        CHECK(error("[peers.1]\nhost = \"a\"\n").find("peer_id") != std::string::npos);
        CHECK(error("[pgmarina]\npeer_id = 16384\n").find("16383") != std::string::npos);
        CHECK(error("[pgmarina]\npeer_id = 1\n[peers.1]\n").find("host") != std::string::npos);
    }
}
