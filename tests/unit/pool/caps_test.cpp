#include "pool/caps.hpp"

#include "pool/core.hpp"

#include "tests/support/pool_harness.hpp"

#include <doctest/doctest.h>

#include <memory>

namespace {

using namespace pool;
using namespace pool::test;

Limits pool_size_5() {
    Limits limits = quiet();
    limits.pool_size = 5;
    return limits;
}

// Two pools sharing one Caps of limit 2: either a database's (two users) or a user's (two
// databases).
struct TwoPools {
    explicit TwoPools(bool share_database)
        : shared(std::make_shared<Caps>(2)),
          first(pool_size_5(), {"app", "alice"}, shared, std::make_shared<Caps>(), ids),
          second(pool_size_5(), share_database ? Key{"app", "bob"} : Key{"reports", "alice"},
                 share_database ? shared : std::make_shared<Caps>(),
                 share_database ? std::make_shared<Caps>() : shared, ids) {}

    std::shared_ptr<ServerIds> ids = std::make_shared<ServerIds>();
    std::shared_ptr<Caps> shared;
    Pool first;
    Pool second;
};

} // namespace

TEST_SUITE("pool.caps") {
    TEST_CASE("a Caps limit spans every pool that shares it") {
        for (const bool share_database : {true, false}) {
            CAPTURE(share_database);
            TwoPools pools(share_database);
            Core& first = pools.first.core;
            Core& second = pools.second.core;
            CHECK(first.key() == Key{"app", "alice"});
            const ServerId a = only<Open>(first.acquire(w(1), 0, t(0s))).server;
            const ServerId b = only<Open>(first.acquire(w(2), 0, t(0s))).server;
            CHECK(pools.shared->current() == 2);
            CHECK(pools.shared->full());

            // The second pool is far below its pool_size, yet waits.
            CHECK(second.acquire(w(1), 0, t(1s)).empty());
            CHECK(second.needs_servers());
            CHECK(second.tick(t(2s)).empty());

            // What the driver does for it: evict the least recently used idle server of a
            // sibling, and when that is closed, retry.
            REQUIRE(first.connected(a, 0, t(3s)).size() == 1);
            REQUIRE(first.connected(b, 0, t(3s)).size() == 1);
            REQUIRE(first.release(a, Release::clean, t(4s)).empty());
            REQUIRE(first.release(b, Release::clean, t(5s)).empty());
            CHECK(first.evictable_since() == t(4s));
            CHECK(first.evict() == Actions{Close{a, reason::evicted}});
            CHECK(second.retry(t(6s)).empty()); // closing still holds the slot
            CHECK(first.closed(a, t(7s)).empty());
            CHECK(pools.shared->current() == 1);
            const Open open = only<Open>(second.retry(t(7s)));
            CHECK(pools.shared->current() == 2);
            CHECK(second.connected(open.server, 0, t(8s)) == Actions{Assign{w(1), open.server}});
            CHECK_FALSE(second.needs_servers());
        }
    }

    TEST_CASE("a slot is held from the Open until the server is forgotten") {
        auto database = std::make_shared<Caps>();
        auto user = std::make_shared<Caps>();
        {
            Pool pool(quiet(), {"app", "alice"}, database, user);
            const ServerId failing = only<Open>(pool.core.acquire(w(1), 0, t(0s))).server;
            CHECK(database->current() == 1);
            CHECK(user->current() == 1);
            REQUIRE(pool.core.connect_failed(failing, t(1s)).empty());
            CHECK(database->current() == 0);
            CHECK(user->current() == 0);

            const ServerId server = only<Open>(pool.core.tick(t(16s))).server;
            REQUIRE(pool.core.connected(server, 0, t(17s)).size() == 1);
            REQUIRE(pool.core.release(server, Release::close, t(18s)).size() == 1);
            CHECK(database->current() == 1); // closing
            REQUIRE(pool.core.closed(server, t(19s)).empty());
            CHECK(database->current() == 0);

            (void)active_server(pool.core, w(2), 0, t(20s));
            CHECK(user->current() == 1);
        }
        // A Core that goes away gives back the slots of the servers it still knew.
        CHECK(database->current() == 0);
        CHECK(user->current() == 0);
    }

    TEST_CASE("0 means no limit; set_max applies to the next open") {
        auto database = std::make_shared<Caps>(0);
        Pool pool(pool_size_5(), {"app", "alice"}, database);
        for (std::uint64_t i = 1; i <= 3; ++i) {
            CHECK(only<Open>(pool.core.acquire(w(i), 0, t(0s))).reserve == false);
        }
        CHECK_FALSE(database->full());
        database->set_max(3);
        CHECK(database->max() == 3);
        CHECK(database->full());
        CHECK(pool.core.acquire(w(4), 0, t(0s)).empty());
        database->set_max(4);
        CHECK(only<Open>(pool.core.retry(t(1s))).worker == 0);
    }
}
