#include "pool/core.hpp"

#include "tests/support/pool_harness.hpp"

#include <doctest/doctest.h>

namespace {

using namespace pool;
using namespace pool::test;

} // namespace

TEST_SUITE("pool.janitor") {
    TEST_CASE("query_wait_timeout fails waiters that waited longer, oldest first") {
        Limits limits = quiet();
        limits.pool_size = 1;
        limits.query_wait_timeout = 10s;
        SUBCASE("10s") {
            Pool pool(limits);
            (void)active_server(pool.core, w(1), 0, t(0s));
            REQUIRE(pool.core.acquire(w(2), 0, t(1s)).empty());
            REQUIRE(pool.core.acquire(w(3), 0, t(5s)).empty());
            CHECK(pool.core.tick(t(11s)).empty()); // exactly 10s is not longer
            CHECK(pool.core.tick(t(11s) + 1us) ==
                  Actions{FailWaiter{w(2), reason::query_wait_timeout}});
            CHECK(pool.core.stats(t(12s)).cl_waiting == 1);
            CHECK(pool.core.tick(t(16s)) == Actions{FailWaiter{w(3), reason::query_wait_timeout}});
            CHECK(pool.core.stats(t(16s)).cl_waiting == 0);
        }
        SUBCASE("0 waits forever") {
            limits.query_wait_timeout = 0s;
            Pool pool(limits);
            (void)active_server(pool.core, w(1), 0, t(0s));
            REQUIRE(pool.core.acquire(w(2), 0, t(1s)).empty());
            CHECK(pool.core.tick(t(100h)).empty());
            CHECK(pool.core.stats(t(100h)).cl_waiting == 1);
        }
    }

    TEST_CASE("server_idle_timeout closes the least recently used servers, keeping "
              "min_pool_size") {
        struct Row {
            int min_pool_size;
            std::size_t closed; // the oldest `closed` of the three
        };
        for (const Row row : {Row{0, 3}, Row{1, 2}, Row{3, 0}}) {
            CAPTURE(row.min_pool_size);
            Limits limits = quiet();
            limits.pool_size = 3;
            limits.min_pool_size = row.min_pool_size;
            limits.server_idle_timeout = 60s;
            Pool pool(limits);
            const auto servers = idle_servers(pool.core, {0, 0, 0}, t(0s));
            CHECK(pool.core.tick(t(60s)).empty());
            Actions expected;
            for (std::size_t i = 0; i < row.closed; ++i) {
                expected.push_back(Close{servers[i], reason::server_idle_timeout});
            }
            CHECK(pool.core.tick(t(61s)) == expected);
        }
    }

    TEST_CASE("idle time counts from the last use") {
        Limits limits = quiet();
        limits.server_idle_timeout = 60s;
        Pool pool(limits);
        const ServerId server = idle_servers(pool.core, {0}, t(0s)).front();
        REQUIRE(pool.core.acquire(w(1), 0, t(50s)).size() == 1);
        REQUIRE(pool.core.release(server, Release::clean, t(55s)).empty());
        CHECK(pool.core.tick(t(115s)).empty());
        CHECK(pool.core.tick(t(116s)) == Actions{Close{server, reason::server_idle_timeout}});
    }

    TEST_CASE("server_lifetime closes unused servers one per lifetime / pool_size") {
        Limits limits = quiet();
        limits.server_lifetime = 100s; // pool_size 2: at least 50s between closes
        Pool pool(limits);
        const auto servers = idle_servers(pool.core, {0, 0}, t(0s));
        CHECK(pool.core.tick(t(99s)).empty());
        CHECK(pool.core.tick(t(100s)) == Actions{Close{servers[0], reason::server_lifetime}});
        CHECK(pool.core.tick(t(149s)).empty());
        CHECK(pool.core.tick(t(150s)) == Actions{Close{servers[1], reason::server_lifetime}});
    }

    TEST_CASE("server_lifetime counts from the open and is enforced on release") {
        Limits limits = quiet();
        limits.server_lifetime = 100s;
        Pool pool(limits);
        const ServerId server = active_server(pool.core, w(1), 0, t(0s));
        REQUIRE(pool.core.release(server, Release::clean, t(99s)).empty());
        REQUIRE(pool.core.acquire(w(2), 0, t(99s)) == Actions{Assign{w(2), server}});
        CHECK(pool.core.tick(t(100s)).empty()); // active: not the janitor's
        CHECK(pool.core.release(server, Release::clean, t(101s)) ==
              Actions{Close{server, reason::server_lifetime}});
    }

    TEST_CASE("server_lifetime 0 uses each server once") {
        Limits limits = quiet();
        limits.pool_size = 1;
        limits.server_lifetime = 0s;
        Pool pool(limits);
        const ServerId first = active_server(pool.core, w(1), 0, t(0s));
        REQUIRE(pool.core.acquire(w(2), 0, t(1s)).empty());
        CHECK(pool.core.release(first, Release::clean, t(2s)) ==
              Actions{Close{first, reason::server_lifetime}});
        const ServerId second = only<Open>(pool.core.closed(first, t(3s))).server;
        CHECK(pool.core.connected(second, 0, t(4s)) == Actions{Assign{w(2), second}});
        CHECK(pool.core.release(second, Release::clean, t(4s)) ==
              Actions{Close{second, reason::server_lifetime}});
    }

    TEST_CASE("server_check_delay: a server unused for longer is checked before its next client") {
        Limits limits = quiet();
        limits.server_check_delay = 30s;
        Pool pool(limits);
        const ServerId server = idle_servers(pool.core, {0}, t(0s)).front();
        CHECK(pool.core.tick(t(30s)).empty());
        CHECK(pool.core.state(server) == ServerState::idle);
        CHECK(pool.core.tick(t(31s)).empty());
        CHECK(pool.core.state(server) == ServerState::used);
        CHECK(pool.core.stats(t(31s)).sv_used == 1);

        CHECK(pool.core.acquire(w(1), 0, t(32s)) == Actions{Check{server}});
        CHECK(pool.core.state(server) == ServerState::tested);
        CHECK(pool.core.stats(t(32s)).cl_waiting == 1);
        CHECK(pool.core.tested(server, t(33s)) == Actions{Assign{w(1), server}});
    }

    TEST_CASE("a waiter gets one used server checked, the most recently used") {
        Limits limits = quiet();
        limits.server_check_delay = 5s;
        Pool pool(limits);
        const auto servers = idle_servers(pool.core, {0, 0}, t(0s));
        REQUIRE(pool.core.tick(t(6s)).empty());
        CHECK(pool.core.acquire(w(1), 0, t(7s)) == Actions{Check{servers[1]}});
        CHECK(pool.core.acquire(w(2), 0, t(7s)) == Actions{Check{servers[0]}});
        CHECK(pool.core.acquire(w(3), 0, t(7s)).empty()); // pool_size reached
    }

    TEST_CASE("server_check_delay 0 checks before every reuse; no check query, never") {
        Limits limits = quiet();
        limits.pool_size = 1;
        SUBCASE("0") {
            limits.server_check_delay = 0s;
            Pool pool(limits);
            const ServerId server = active_server(pool.core, w(1), 0, t(0s));
            CHECK(pool.core.release(server, Release::clean, t(1s)).empty());
            CHECK(pool.core.state(server) == ServerState::used);
            CHECK(pool.core.acquire(w(2), 0, t(1s)) == Actions{Check{server}});
            CHECK(pool.core.tested(server, t(1s)) == Actions{Assign{w(2), server}});
            REQUIRE(pool.core.acquire(w(3), 0, t(2s)).empty());
            CHECK(pool.core.release(server, Release::clean, t(2s)) == Actions{Check{server}});
        }
        SUBCASE("no server_check_query") {
            limits.server_check_delay = std::nullopt;
            Pool pool(limits);
            const ServerId server = idle_servers(pool.core, {0}, t(0s)).front();
            CHECK(pool.core.tick(t(100h)).empty());
            CHECK(pool.core.acquire(w(1), 0, t(100h)) == Actions{Assign{w(1), server}});
        }
    }

    TEST_CASE("min_pool_size is opened by the janitor, up to pool_size") {
        struct Row {
            int pool_size;
            int min_pool_size;
            std::size_t opened;
        };
        for (const Row row : {Row{3, 2, 2}, Row{3, 0, 0}, Row{2, 5, 2}}) {
            CAPTURE(row.min_pool_size);
            Limits limits = quiet();
            limits.pool_size = row.pool_size;
            limits.min_pool_size = row.min_pool_size;
            Pool pool(limits);
            const Actions opens = pool.core.tick(t(0s));
            REQUIRE(opens.size() == row.opened);
            for (const Action& action : opens) {
                CHECK(std::get<Open>(action).worker == std::nullopt);
                CHECK(pool.core.connected(std::get<Open>(action).server, 0, t(1s)).empty());
            }
            CHECK(pool.core.tick(t(2s)).empty());
            CHECK(pool.core.stats(t(2s)).sv_idle == row.opened);
        }
    }

    TEST_CASE("the reserve opens only after the oldest waiter has waited reserve_pool_timeout") {
        Limits limits = quiet();
        limits.pool_size = 1;
        limits.reserve_pool_size = 1;
        limits.reserve_pool_timeout = 5s;
        SUBCASE("5s") {
            Pool pool(limits);
            (void)active_server(pool.core, w(1), 0, t(0s));
            REQUIRE(pool.core.acquire(w(2), 4, t(1s)).empty());
            REQUIRE(pool.core.acquire(w(3), 0, t(2s)).empty());
            CHECK(pool.core.tick(t(5s)).empty());
            const Open open = only<Open>(pool.core.tick(t(6s)));
            CHECK(open.worker == 4);
            CHECK(open.reserve);
            CHECK(pool.core.tick(t(60s)).empty()); // pool_size + reserve_pool_size reached
        }
        SUBCASE("reserve_pool_timeout 0 disables it") {
            limits.reserve_pool_timeout = 0s;
            Pool pool(limits);
            (void)active_server(pool.core, w(1), 0, t(0s));
            REQUIRE(pool.core.acquire(w(2), 0, t(1s)).empty());
            CHECK(pool.core.tick(t(100h)).empty());
        }
    }

    TEST_CASE("evict closes the least recently used unused server") {
        Limits limits = quiet();
        limits.pool_size = 3;
        Pool pool(limits);
        CHECK(pool.core.evictable_since() == std::nullopt);
        CHECK(pool.core.evict().empty());
        const auto servers = idle_servers(pool.core, {0, 0}, t(1s));
        const ServerId older = servers[0];
        REQUIRE(pool.core.acquire(w(1), 0, t(2s)) == Actions{Assign{w(1), servers[1]}});
        REQUIRE(pool.core.release(servers[1], Release::clean, t(2s)).empty());
        CHECK(pool.core.evictable_since() == t(1s));
        CHECK(pool.core.evict() == Actions{Close{older, reason::evicted}});
        CHECK(pool.core.evictable_since() == t(2s));
    }

    TEST_CASE("evict spares used servers while clients wait") {
        Limits limits = quiet();
        limits.server_check_delay = 5s;
        Pool pool(limits);
        const auto servers = idle_servers(pool.core, {0, 0}, t(0s));
        REQUIRE(pool.core.tick(t(6s)).empty());
        REQUIRE(pool.core.acquire(w(1), 0, t(7s)) == Actions{Check{servers[1]}});
        CHECK(pool.core.state(servers[0]) == ServerState::used);
        CHECK(pool.core.evictable_since() == std::nullopt);
        CHECK(pool.core.evict().empty());
        REQUIRE(pool.core.tested(servers[1], t(8s)) == Actions{Assign{w(1), servers[1]}});
        CHECK(pool.core.evictable_since() == t(0s));
        CHECK(pool.core.evict() == Actions{Close{servers[0], reason::evicted}});
    }
}
