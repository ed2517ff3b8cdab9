#include "pool/core.hpp"

#include "tests/support/pool_harness.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>

namespace {

using namespace pool;
using namespace pool::test;

Limits with_pool_size(int size) {
    Limits limits = quiet();
    limits.pool_size = size;
    return limits;
}

} // namespace

TEST_SUITE("pool.core") {
    TEST_CASE("a waiter on an empty pool gets a server opened on its worker") {
        Pool pool;
        const Open open = only<Open>(pool.core.acquire(w(1), 3, t(0s)));
        CHECK(open.worker == 3);
        CHECK_FALSE(open.reserve);
        CHECK(pool.core.state(open.server) == ServerState::login);
        CHECK(pool.core.stats(t(0s)).cl_waiting == 1);

        CHECK(pool.core.connected(open.server, 3, t(1s)) == Actions{Assign{w(1), open.server}});
        CHECK(pool.core.state(open.server) == ServerState::active);
        CHECK(pool.core.stats(t(1s)).cl_waiting == 0);
    }

    TEST_CASE("an idle server is assigned at once") {
        Pool pool;
        const ServerId server = idle_servers(pool.core, {0}, t(0s)).front();
        CHECK(pool.core.acquire(w(1), 0, t(1s)) == Actions{Assign{w(1), server}});
        CHECK(pool.core.state(server) == ServerState::active);
    }

    TEST_CASE("idle servers are reused last in, first out") {
        Pool pool;
        const auto servers = idle_servers(pool.core, {0, 0}, t(0s));
        CHECK(pool.core.acquire(w(1), 0, t(1s)) == Actions{Assign{w(1), servers[1]}});
        CHECK(pool.core.acquire(w(2), 0, t(1s)) == Actions{Assign{w(2), servers[0]}});
        // servers[0] comes back last, so it goes out first.
        CHECK(pool.core.release(servers[1], Release::clean, t(2s)).empty());
        CHECK(pool.core.release(servers[0], Release::clean, t(3s)).empty());
        CHECK(pool.core.acquire(w(3), 0, t(4s)) == Actions{Assign{w(3), servers[0]}});
    }

    TEST_CASE("acquire prefers the client's worker, then the most recently used server") {
        struct Row {
            const char* name;
            int worker;
            std::size_t expected; // in release order: 0 on worker 0, then 1 and 2 on worker 1
        };
        for (const Row& row : {Row{"own worker, though less recent", 0, 0},
                               Row{"own worker, most recent there", 1, 2},
                               Row{"no idle server on its worker: most recent anywhere", 2, 2}}) {
            CAPTURE(row.name);
            Pool pool(with_pool_size(3));
            const auto servers = idle_servers(pool.core, {0, 1, 1}, t(0s));
            CHECK(pool.core.acquire(w(1), row.worker, t(1s)) ==
                  Actions{Assign{w(1), servers[row.expected]}});
        }
    }

    TEST_CASE("an assigned server moves to the waiter's worker") {
        Pool pool;
        const auto servers = idle_servers(pool.core, {0, 0}, t(0s));
        const ServerId moved = servers[1];
        REQUIRE(pool.core.acquire(w(1), 2, t(1s)) == Actions{Assign{w(1), moved}});
        REQUIRE(pool.core.release(moved, Release::clean, t(2s)).empty());
        REQUIRE(pool.core.acquire(w(2), 0, t(3s)) == Actions{Assign{w(2), servers[0]}});
        REQUIRE(pool.core.release(servers[0], Release::clean, t(4s)).empty());
        // servers[0] is the most recently used, but `moved` now lives on worker 2.
        CHECK(pool.core.acquire(w(3), 2, t(5s)) == Actions{Assign{w(3), moved}});
    }

    TEST_CASE("waiters are served first in, first out, whatever their worker") {
        Pool pool(with_pool_size(1));
        const ServerId server = active_server(pool.core, w(1), 0, t(0s));
        CHECK(pool.core.acquire(w(2), 1, t(1s)).empty());
        CHECK(pool.core.acquire(w(3), 0, t(2s)).empty());
        CHECK(pool.core.acquire(w(4), 0, t(3s)).empty());
        CHECK(pool.core.release(server, Release::clean, t(4s)) == Actions{Assign{w(2), server}});
        CHECK(pool.core.release(server, Release::clean, t(5s)) == Actions{Assign{w(3), server}});
        CHECK(pool.core.release(server, Release::clean, t(6s)) == Actions{Assign{w(4), server}});
        CHECK(pool.core.release(server, Release::clean, t(7s)).empty());
        CHECK(pool.core.state(server) == ServerState::idle);
    }

    TEST_CASE("a server logging in counts as coming: no second one is opened for one waiter") {
        Pool pool; // pool_size 2
        const ServerId first = only<Open>(pool.core.acquire(w(1), 0, t(0s))).server;
        CHECK(pool.core.cancel_wait(w(1)));
        CHECK(pool.core.acquire(w(2), 0, t(1s)).empty());
        CHECK(pool.core.connected(first, 0, t(2s)) == Actions{Assign{w(2), first}});
    }

    TEST_CASE("pool_size caps the servers") {
        Pool pool; // pool_size 2
        CHECK(only<Open>(pool.core.acquire(w(1), 0, t(0s))).worker == 0);
        CHECK(only<Open>(pool.core.acquire(w(2), 1, t(0s))).worker == 1);
        CHECK(pool.core.acquire(w(3), 0, t(0s)).empty());
        const Stats stats = pool.core.stats(t(0s));
        CHECK(stats.sv_login == 2);
        CHECK(stats.servers == 2);
        CHECK(stats.cl_waiting == 3);
        CHECK(pool.core.needs_servers());
    }

    TEST_CASE("a cancelled waiter is never assigned") {
        Pool pool(with_pool_size(1));
        const ServerId server = active_server(pool.core, w(1), 0, t(0s));
        REQUIRE(pool.core.acquire(w(2), 0, t(1s)).empty());
        REQUIRE(pool.core.acquire(w(3), 0, t(1s)).empty());
        CHECK(pool.core.cancel_wait(w(2)));
        CHECK_FALSE(pool.core.cancel_wait(w(2)));
        CHECK_FALSE(pool.core.cancel_wait(w(1))); // linked, not waiting
        CHECK(pool.core.release(server, Release::clean, t(2s)) == Actions{Assign{w(3), server}});
    }

    TEST_CASE("a server opened for a waiter that left becomes idle") {
        Pool pool;
        const ServerId opened = only<Open>(pool.core.acquire(w(1), 0, t(0s))).server;
        CHECK(pool.core.cancel_wait(w(1)));
        CHECK(pool.core.connected(opened, 0, t(1s)).empty());
        CHECK(pool.core.state(opened) == ServerState::idle);
    }

    TEST_CASE("release outcomes") {
        Pool pool;
        const ServerId server = active_server(pool.core, w(1), 0, t(0s));
        SUBCASE("clean: idle") {
            CHECK(pool.core.release(server, Release::clean, t(1s)).empty());
            CHECK(pool.core.state(server) == ServerState::idle);
        }
        SUBCASE("reset: reset query, then idle") {
            CHECK(pool.core.release(server, Release::reset, t(1s)) == Actions{Reset{server}});
            CHECK(pool.core.state(server) == ServerState::tested);
            CHECK(pool.core.tested(server, t(2s)).empty());
            CHECK(pool.core.state(server) == ServerState::idle);
        }
        SUBCASE("close: closing until closed()") {
            CHECK(pool.core.release(server, Release::close, t(1s)) ==
                  Actions{Close{server, reason::server_not_ready}});
            CHECK(pool.core.state(server) == ServerState::closing);
            CHECK(pool.core.stats(t(1s)).servers == 1);
            CHECK(pool.core.closed(server, t(2s)).empty());
            CHECK(pool.core.state(server) == std::nullopt);
            CHECK(pool.core.stats(t(2s)).servers == 0);
        }
        SUBCASE("a failed reset: the driver closes it") {
            REQUIRE(pool.core.release(server, Release::reset, t(1s)) == Actions{Reset{server}});
            CHECK(pool.core.closed(server, t(2s)).empty());
            CHECK(pool.core.state(server) == std::nullopt);
        }
    }

    TEST_CASE("the next waiter gets a reset server only after the reset") {
        Pool pool(with_pool_size(1));
        const ServerId server = active_server(pool.core, w(1), 0, t(0s));
        REQUIRE(pool.core.acquire(w(2), 0, t(1s)).empty());
        CHECK(pool.core.release(server, Release::reset, t(2s)) == Actions{Reset{server}});
        CHECK(pool.core.stats(t(2s)).cl_waiting == 1);
        CHECK(pool.core.tested(server, t(3s)) == Actions{Assign{w(2), server}});
    }

    TEST_CASE("a server being reset counts as coming: no server is opened for its waiter") {
        Pool pool; // pool_size 2: room for another
        const ServerId server = active_server(pool.core, w(1), 0, t(0s));
        REQUIRE(pool.core.release(server, Release::reset, t(1s)) == Actions{Reset{server}});
        CHECK(pool.core.acquire(w(2), 0, t(2s)).empty());
        CHECK_FALSE(pool.core.needs_servers());
        CHECK(only<Open>(pool.core.acquire(w(3), 0, t(3s))).worker == 0);
        CHECK(pool.core.tested(server, t(4s)) == Actions{Assign{w(2), server}});
    }

    TEST_CASE("a closed server's slot goes to a waiter") {
        Pool pool(with_pool_size(1));
        const ServerId server = active_server(pool.core, w(1), 0, t(0s));
        REQUIRE(pool.core.acquire(w(2), 5, t(1s)).empty());
        REQUIRE(pool.core.release(server, Release::close, t(2s)).size() == 1);
        const Open open = only<Open>(pool.core.closed(server, t(3s)));
        CHECK(open.worker == 5);
    }

    TEST_CASE("close_needed servers are closed instead of reused") {
        Limits limits = with_pool_size(4);
        limits.min_pool_size = 3;
        Pool pool(limits);
        const auto servers = idle_servers(pool.core, {0, 0}, t(0s));
        const ServerId unused = servers[0];
        const ServerId active = servers[1];
        REQUIRE(pool.core.acquire(w(1), 0, t(1s)) == Actions{Assign{w(1), active}});
        const ServerId login = only<Open>(pool.core.tick(t(1s))).server; // for min_pool_size

        // Unused: at once. Linked or logging in: when they come back.
        CHECK(pool.core.mark_close_needed() == Actions{Close{unused, reason::close_needed}});
        CHECK(pool.core.release(active, Release::clean, t(2s)) ==
              Actions{Close{active, reason::close_needed}});
        CHECK(pool.core.connected(login, 0, t(3s)) == Actions{Close{login, reason::close_needed}});
        CHECK(pool.core.state(login) == ServerState::closing);
        // Servers opened afterwards are not affected.
        REQUIRE(pool.core.closed(unused, t(4s)).empty());
        const ServerId fresh = only<Open>(pool.core.acquire(w(2), 0, t(5s))).server;
        CHECK(pool.core.connected(fresh, 0, t(6s)) == Actions{Assign{w(2), fresh}});
        CHECK(pool.core.release(fresh, Release::clean, t(7s)).empty());
        CHECK(pool.core.state(fresh) == ServerState::idle);
    }

    TEST_CASE("a server with a cancel in flight is never handed to another client") {
        Pool pool(with_pool_size(1));
        const ServerId server = active_server(pool.core, w(1), 0, t(0s));
        REQUIRE(pool.core.acquire(w(2), 0, t(1s)).empty());

        CHECK_FALSE(pool.core.begin_cancel(server, w(2))); // not w(2)'s server
        CHECK_FALSE(pool.core.begin_cancel(ServerId{999}, w(1)));
        CHECK(pool.core.begin_cancel(server, w(1)));
        CHECK(pool.core.begin_cancel(server, w(1)));
        CHECK(pool.core.stats(t(1s)).sv_active_cancel == 2);

        CHECK(pool.core.release(server, Release::clean, t(2s)).empty());
        CHECK(pool.core.state(server) == ServerState::being_canceled);
        CHECK(pool.core.stats(t(2s)).sv_being_canceled == 1);
        CHECK_FALSE(pool.core.begin_cancel(server, w(1))); // its query is over
        CHECK(pool.core.tick(t(3s)).empty());
        CHECK(pool.core.end_cancel(server, t(4s)).empty()); // one still in flight
        CHECK(pool.core.end_cancel(server, t(5s)) == Actions{Assign{w(2), server}});
        CHECK(pool.core.stats(t(5s)).sv_active_cancel == 0);
        CHECK_FALSE(pool.core.begin_cancel(server, w(1)));
    }

    TEST_CASE("after its cancels a released server continues its release") {
        Pool pool;
        const ServerId server = active_server(pool.core, w(1), 0, t(0s));
        REQUIRE(pool.core.begin_cancel(server, w(1)));
        SUBCASE("reset") {
            CHECK(pool.core.release(server, Release::reset, t(1s)).empty());
            CHECK(pool.core.end_cancel(server, t(2s)) == Actions{Reset{server}});
        }
        SUBCASE("close_needed") {
            CHECK(pool.core.release(server, Release::clean, t(1s)).empty());
            CHECK(pool.core.mark_close_needed().empty());
            CHECK(pool.core.end_cancel(server, t(2s)) ==
                  Actions{Close{server, reason::close_needed}});
        }
        SUBCASE("close does not wait") {
            CHECK(pool.core.release(server, Release::close, t(1s)) ==
                  Actions{Close{server, reason::server_not_ready}});
            CHECK(pool.core.end_cancel(server, t(2s)).empty());
            CHECK(pool.core.state(server) == ServerState::closing);
        }
    }

    TEST_CASE("sv_active_cancel counts a cancel until it ends, even if its server is gone") {
        Pool pool;
        const ServerId server = active_server(pool.core, w(1), 0, t(0s));
        REQUIRE(pool.core.begin_cancel(server, w(1)));
        CHECK(pool.core.closed(server, t(1s)).empty()); // the backend died
        CHECK(pool.core.stats(t(1s)).sv_active_cancel == 1);
        CHECK(pool.core.end_cancel(server, t(2s)).empty());
        CHECK(pool.core.stats(t(2s)).sv_active_cancel == 0);
    }

    TEST_CASE("after a failed login no server is opened for server_login_retry") {
        Pool pool; // server_login_retry 15s
        const ServerId a = only<Open>(pool.core.acquire(w(1), 0, t(0s))).server;
        const ServerId b = only<Open>(pool.core.acquire(w(2), 1, t(0s))).server;
        CHECK(pool.core.login_retry_at() == std::nullopt);
        CHECK(pool.core.connect_failed(a, t(1s)).empty());
        CHECK(pool.core.connect_failed(b, t(2s)).empty());
        CHECK(pool.core.login_retry_at() == t(17s));
        CHECK(pool.core.state(a) == std::nullopt);

        // Waiters keep waiting through the backoff.
        CHECK(pool.core.tick(t(16s)).empty());
        CHECK(pool.core.stats(t(16s)).cl_waiting == 2);
        // Then one attempt at a time until a login succeeds.
        const Open c = only<Open>(pool.core.tick(t(17s)));
        CHECK(c.worker == 0);
        CHECK(pool.core.tick(t(18s)).empty());
        CHECK(pool.core.connect_failed(c.server, t(20s)).empty());
        CHECK(pool.core.tick(t(34s)).empty());
        const ServerId d = only<Open>(pool.core.tick(t(35s))).server;
        const Actions after_login = pool.core.connected(d, 0, t(36s));
        REQUIRE(after_login.size() == 2);
        CHECK(after_login[0] == Action{Assign{w(1), d}});
        CHECK(std::get<Open>(after_login[1]).worker == 1);
        CHECK(pool.core.login_retry_at() == std::nullopt);
    }

    TEST_CASE("retry_login_now ends the backoff: the host is known to be back") {
        Pool pool; // server_login_retry 15s
        const ServerId a = only<Open>(pool.core.acquire(w(1), 0, t(0s))).server;
        CHECK(pool.core.connect_failed(a, t(1s)).empty());
        CHECK(pool.core.tick(t(2s)).empty());
        const Open retry = only<Open>(pool.core.retry_login_now(t(3s)));
        CHECK(pool.core.login_retry_at() == std::nullopt);
        CHECK(pool.core.state(retry.server) == ServerState::login);
    }

    TEST_CASE("maxwait is the oldest waiter's wait, in seconds and microseconds") {
        Pool pool(with_pool_size(0));
        REQUIRE(pool.core.acquire(w(1), 0, t(1s)).empty());
        REQUIRE(pool.core.acquire(w(2), 0, t(2s)).empty());
        Stats expected;
        expected.cl_waiting = 2;
        expected.maxwait = 2;
        expected.maxwait_us = 500'000;
        CHECK(pool.core.stats(t(3500ms)) == expected);
    }

    TEST_CASE("driver mistakes throw and change nothing") {
        Limits limits = with_pool_size(3);
        limits.min_pool_size = 3;
        Pool pool(limits);
        const Actions opens = pool.core.tick(t(0s));
        REQUIRE(opens.size() == 3);
        const ServerId idle = std::get<Open>(opens[0]).server;
        const ServerId active = std::get<Open>(opens[1]).server;
        const ServerId login = std::get<Open>(opens[2]).server;
        REQUIRE(pool.core.connected(idle, 0, t(0s)).empty());
        REQUIRE(pool.core.connected(active, 0, t(0s)).empty());
        REQUIRE(pool.core.acquire(w(1), 0, t(0s)) == Actions{Assign{w(1), active}});

        const auto throws_and_keeps = [&pool](auto call) {
            const Stats before = pool.core.stats(t(1s));
            CHECK_THROWS_AS(call(), std::logic_error);
            CHECK(pool.core.stats(t(1s)) == before);
        };
        SUBCASE("unknown server") {
            throws_and_keeps(
                [&] { (void)pool.core.release(ServerId{999}, Release::clean, t(1s)); });
            throws_and_keeps([&] { (void)pool.core.closed(ServerId{999}, t(1s)); });
        }
        SUBCASE("releasing an idle server") {
            throws_and_keeps([&] { (void)pool.core.release(idle, Release::clean, t(1s)); });
        }
        SUBCASE("connected twice") {
            throws_and_keeps([&] { (void)pool.core.connected(active, 0, t(1s)); });
        }
        SUBCASE("closed while logging in") {
            throws_and_keeps([&] { (void)pool.core.closed(login, t(1s)); });
        }
        SUBCASE("tested without a test") {
            throws_and_keeps([&] { (void)pool.core.tested(idle, t(1s)); });
        }
        SUBCASE("end_cancel without begin_cancel") {
            throws_and_keeps([&] { (void)pool.core.end_cancel(active, t(1s)); });
        }
        SUBCASE("end_cancel for another server") {
            REQUIRE(pool.core.begin_cancel(active, w(1)));
            throws_and_keeps([&] { (void)pool.core.end_cancel(idle, t(1s)); });
        }
        SUBCASE("a waiter waiting twice") {
            REQUIRE(pool.core.acquire(w(2), 0, t(1s)) == Actions{Assign{w(2), idle}});
            REQUIRE(pool.core.acquire(w(3), 0, t(1s)).empty()); // `login` is coming
            throws_and_keeps([&] { (void)pool.core.acquire(w(3), 0, t(1s)); });
        }
        CHECK(pool.core.state(login) == ServerState::login);
    }

    TEST_CASE("a Core needs its shared objects") {
        CHECK_THROWS_AS(Core({"app", "alice"}, quiet(), nullptr, std::make_shared<Caps>(),
                             std::make_shared<ServerIds>()),
                        std::logic_error);
    }

    TEST_CASE("state names are SHOW SERVERS'") {
        CHECK(to_string(ServerState::login) == "new");
        CHECK(to_string(ServerState::idle) == "idle");
        CHECK(to_string(ServerState::used) == "used");
        CHECK(to_string(ServerState::tested) == "tested");
        CHECK(to_string(ServerState::active) == "active");
        CHECK(to_string(ServerState::being_canceled) == "being_canceled");
        CHECK(to_string(ServerState::closing) == "closing");
    }
}

TEST_SUITE("pool.core servers") {
    TEST_CASE("servers() shows each server's state, times and linked client") {
        Pool pool;
        const auto servers = idle_servers(pool.core, {0, 0}, t(0s));
        CHECK(pool.core.acquire(w(7), 0, t(5s)) == Actions{Assign{w(7), servers[1]}});
        auto views = pool.core.servers();
        REQUIRE(views.size() == 2);
        std::ranges::sort(views, {}, [](const ServerView& view) { return view.id; });
        CHECK(views[0].state == ServerState::idle);
        CHECK_FALSE(views[0].client);
        CHECK(views[1].state == ServerState::active);
        CHECK(views[1].client == w(7));
        CHECK(views[1].last_used == t(0s)); // request_time: its last release
        CHECK_FALSE(views[1].close_needed);

        CHECK(pool.core.mark_close_needed().size() == 1); // the idle one closes now
        views = pool.core.servers();
        std::ranges::sort(views, {}, [](const ServerView& view) { return view.id; });
        CHECK(views[0].state == ServerState::closing);
        CHECK(views[1].close_needed);
    }
}
