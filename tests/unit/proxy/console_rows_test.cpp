#include "proxy/console_rows.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

namespace {

proxy::PoolSnapshot snapshot(std::string database, std::string user, pool::Stats stats) {
    return proxy::PoolSnapshot{pool::Key{std::move(database), std::move(user)}, stats, {}, {}};
}

pool::Stats stats(std::size_t sv_active, std::size_t sv_idle, std::int64_t maxwait,
                  std::int64_t maxwait_us) {
    pool::Stats s;
    s.cl_waiting = 1;
    s.sv_active = sv_active;
    s.sv_active_cancel = 1;
    s.sv_being_canceled = 1;
    s.sv_idle = sv_idle;
    s.sv_used = 1;
    s.sv_tested = 1;
    s.sv_login = 1;
    s.sv_closing = 1;
    s.maxwait = maxwait;
    s.maxwait_us = maxwait_us;
    s.servers = sv_active + sv_idle;
    return s;
}

routing::HostView host(std::string name, routing::Role role, bool healthy = true) {
    routing::HostView view;
    view.state.name = std::move(name);
    view.state.role = role;
    view.state.healthy = healthy;
    return view;
}

proxy::DatabaseConfig database_on(std::vector<proxy::Endpoint> hosts) {
    proxy::DatabaseConfig database;
    database.hosts = std::move(hosts);
    return database;
}

} // namespace

TEST_SUITE("proxy.console_rows") {
    TEST_CASE("the pools of every host of a (database, user) make one SHOW POOLS row") {
        const auto totals = proxy::stats_by_key({
            snapshot("app", "alice", stats(2, 3, 0, 500'000)),
            snapshot("app", "alice", stats(1, 4, 1, 20)),
            snapshot("app", "alice", stats(0, 0, 0, 900'000)),
            snapshot("app", "bob", stats(5, 0, 0, 0)),
            snapshot("reports", "alice", stats(0, 1, 2, 0)),
        });
        REQUIRE(totals.size() == 3);
        const pool::Stats& alice = totals.at(pool::Key{"app", "alice"});
        CHECK(alice.cl_waiting == 3);
        CHECK(alice.sv_active == 3);
        CHECK(alice.sv_active_cancel == 3);
        CHECK(alice.sv_being_canceled == 3);
        CHECK(alice.sv_idle == 7);
        CHECK(alice.sv_used == 3);
        CHECK(alice.sv_tested == 3);
        CHECK(alice.sv_login == 3);
        CHECK(alice.sv_closing == 3);
        CHECK(alice.servers == 10);
        // The longest wait, seconds and microseconds together: 1 s 20 µs beats 0.9 s.
        CHECK(alice.maxwait == 1);
        CHECK(alice.maxwait_us == 20);
        CHECK(totals.at(pool::Key{"app", "bob"}) == stats(5, 0, 0, 0));
        CHECK(totals.at(pool::Key{"reports", "alice"}) == stats(0, 1, 2, 0));
    }

    TEST_CASE("maxwait compares microseconds when the seconds tie") {
        pool::Stats total = stats(0, 0, 3, 100);
        proxy::add_pool_stats(total, stats(0, 0, 3, 99));
        CHECK(total.maxwait_us == 100);
        proxy::add_pool_stats(total, stats(0, 0, 3, 101));
        CHECK(total.maxwait_us == 101);
        CHECK(total.maxwait == 3);
    }

    TEST_CASE("no pools, no rows") {
        CHECK(proxy::stats_by_key({}).empty());
    }

    TEST_CASE("SHOW DATABASES names the elected primary, else the first host") {
        const auto database = database_on({{"pg-0", 5432}, {"pg-1", 5433}, {"pg-2", 5434}});
        routing::DatabaseTopology topology;
        topology.hosts = {host("pg-0:5432", routing::Role::replica),
                          host("pg-1:5433", routing::Role::primary),
                          host("pg-2:5434", routing::Role::replica)};
        SUBCASE("elected") {
            topology.primary = 1;
            CHECK(proxy::shown_host(database, &topology) == proxy::Endpoint{"pg-1", 5433});
        }
        SUBCASE("none elected") {
            CHECK(proxy::shown_host(database, &topology) == proxy::Endpoint{"pg-0", 5432});
        }
        SUBCASE("not in the topology yet") {
            CHECK(proxy::shown_host(database, nullptr) == proxy::Endpoint{"pg-0", 5432});
        }
        SUBCASE("a primary the configuration no longer has") {
            topology.hosts[1].state.name = "old:5432";
            topology.primary = 1;
            CHECK(proxy::shown_host(database, &topology) == proxy::Endpoint{"pg-0", 5432});
        }
    }
}
