#include "proxy/console_rows.hpp"
#include "tests/support/host_states.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using proxy::Cell;

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
    return support::host_view(std::move(name), role, healthy);
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

    TEST_CASE("SHOW HOSTS roles: primary, replica, fenced, unknown") {
        routing::DatabaseTopology topology;
        topology.hosts = {host("a:1", routing::Role::primary), host("b:1", routing::Role::replica),
                          host("c:1", routing::Role::primary), host("d:1", routing::Role::unknown)};
        topology.primary = 0;
        CHECK(proxy::host_role(topology, 0) == "primary");
        CHECK(proxy::host_role(topology, 1) == "replica");
        CHECK(proxy::host_role(topology, 2) == "fenced");
        CHECK(proxy::host_role(topology, 3) == "unknown");
        SUBCASE("split brain: every claimant is fenced") {
            topology.primary.reset();
            topology.split_brain = true;
            CHECK(proxy::host_role(topology, 0) == "fenced");
            CHECK(proxy::host_role(topology, 2) == "fenced");
        }
    }

    TEST_CASE("SHOW HOSTS status of a probed replica") {
        const auto now = routing::Clock::now();
        routing::DatabaseTopology topology;
        topology.hosts = {host("a:1", routing::Role::primary), host("b:1", routing::Role::replica)};
        topology.primary = 0;
        routing::HostView& replica = topology.hosts[1];
        replica.state.timeline = 3;
        replica.state.wal_lsn = 0x16'B374D848;
        replica.state.replay_delay_seconds = 0.25;
        replica.state.probed_at = now - 1500ms;
        replica.lag_bytes = 8192;
        CHECK(proxy::host_status(&topology, "b:1", now) ==
              std::vector<Cell>{"replica", "up", "3", "16/B374D848", "8192", "0.25", "1500",
                                std::nullopt});
    }

    TEST_CASE("SHOW HOSTS status of a host whose last probe failed") {
        const auto now = routing::Clock::now();
        routing::DatabaseTopology topology;
        topology.hosts = {host("a:1", routing::Role::unknown, false)};
        topology.hosts[0].state.probed_at = now - 20ms;
        topology.hosts[0].state.error = "connection refused";
        CHECK(proxy::host_status(&topology, "a:1", now) ==
              std::vector<Cell>{"unknown", "down", std::nullopt, std::nullopt, std::nullopt,
                                std::nullopt, "20", "connection refused"});
    }

    TEST_CASE("SHOW HOSTS status of a primary, and of hosts never probed") {
        const auto now = routing::Clock::now();
        routing::DatabaseTopology topology;
        topology.hosts = {host("a:1", routing::Role::primary), host("b:1", routing::Role::replica)};
        topology.primary = 0;
        topology.hosts[0].state.timeline = 1;
        topology.hosts[0].state.wal_lsn = 0x3000060;
        topology.hosts[0].state.probed_at = now;
        topology.hosts[1].lag_bytes = 0; // configured roles: no lag known, none assumed
        CHECK(proxy::host_status(&topology, "a:1", now) ==
              std::vector<Cell>{"primary", "up", "1", "0/3000060", std::nullopt, std::nullopt, "0",
                                std::nullopt});
        CHECK(proxy::host_status(&topology, "b:1", now) ==
              std::vector<Cell>{"replica", "unknown", std::nullopt, std::nullopt, "0", "0",
                                std::nullopt, std::nullopt});
        const std::vector<Cell> unknown{"unknown",    "unknown",    std::nullopt, std::nullopt,
                                        std::nullopt, std::nullopt, std::nullopt, std::nullopt};
        CHECK(proxy::host_status(&topology, "c:1", now) == unknown);
        CHECK(proxy::host_status(nullptr, "a:1", now) == unknown);
    }

    TEST_CASE("float8 cells read back as the same number") {
        CHECK(proxy::decimal(0.25) == "0.25");
        CHECK(proxy::decimal(12) == "12");
        CHECK(proxy::decimal(1e-05) == "1e-05");
    }
}
