// routing/router: where each mode sends reads and writes with and without a primary or a usable
// replica, how reads spread (round robin, least connections), which replicas are skipped (down,
// lagging in bytes or seconds, behind the client's writes), and reads during a failover.

#include "routing/router.hpp"

#include "tests/support/host_states.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace routing;

using support::down;
using support::primary;
using support::replica;

RoutePolicy policy(Mode mode, bool fall_back = true) {
    RoutePolicy result;
    result.mode = mode;
    result.reads_fall_back_to_primary = fall_back;
    return result;
}

RouteRequest read(Lsn min_replay_lsn = 0) {
    return RouteRequest{true, min_replay_lsn};
}

RouteRequest write() {
    return RouteRequest{false, 0};
}

RouteDecision on_primary(std::size_t host, RouteReason reason) {
    return RouteDecision{host, Role::primary, reason};
}

RouteDecision on_replica(std::size_t host) {
    return RouteDecision{host, Role::replica, RouteReason::read};
}

RouteDecision nowhere(RouteReason reason) {
    return RouteDecision{std::nullopt, Role::unknown, reason};
}

// How many of `turns` consecutive decisions went to each host (index: host, last: none).
std::vector<int> spread(const DatabaseTopology& topology, const RouteRequest& request,
                        const RoutePolicy& policy, std::span<const int> busy, int turns) {
    std::vector<int> counts(topology.hosts.size() + 1, 0);
    for (int turn = 0; turn < turns; ++turn) {
        const auto decision =
            route(topology, request, policy, busy, static_cast<std::uint64_t>(turn));
        ++counts[decision.host.value_or(topology.hosts.size())];
    }
    return counts;
}

// The clusters of the mode table: host 0 the primary (when there is one), hosts 1 and 2 its
// replicas.
enum class Cluster {
    healthy,         // primary and both replicas up
    replicas_down,   // primary up, both replicas down
    primary_down,    // a failover: replicas up, no primary, lag unknown
    everything_down, // no host answers
};

DatabaseTopology cluster(Cluster kind) {
    switch (kind) {
    case Cluster::healthy:
        return elect({primary("p", 1, 1000), replica("r1", 990), replica("r2", 1000)});
    case Cluster::replicas_down:
        return elect({primary("p", 1, 1000), down(replica("r1", 990)), down(replica("r2", 1000))});
    case Cluster::primary_down:
        return elect({down(primary("p", 1, 1000)), replica("r1", 990), replica("r2", 1000)});
    case Cluster::everything_down:
        return elect(
            {down(primary("p", 1, 1000)), down(replica("r1", 990)), down(replica("r2", 1000))});
    }
    return {};
}

} // namespace

// Failures print the decision ("host 1 as replica: read") rather than "{?}".
template <>
struct doctest::StringMaker<RouteDecision> {
    static String convert(const RouteDecision& decision) {
        std::string text = decision.host ? "host " + std::to_string(*decision.host) : "no host";
        text += " as ";
        text += to_string(decision.role);
        text += ": ";
        text += to_string(decision.reason);
        return String(text.c_str());
    }
};

TEST_SUITE("routing.router") {
    TEST_CASE("every mode, read and write, with and without fallback, with and without hosts") {
        struct Case {
            Mode mode;
            bool read_only;
            bool fall_back;
            Cluster cluster;
            RouteDecision expected;
        };
        constexpr auto split = Mode::read_write_split;
        constexpr auto replicas = Mode::replicas_only;
        constexpr auto only = Mode::primary_only;
        using C = Cluster;
        using R = RouteReason;
        const Case cases[] = {
            // primary_only: reads and writes alike, whether reads may fall back or not.
            {only, false, true, C::healthy, on_primary(0, R::primary_only)},
            {only, false, false, C::healthy, on_primary(0, R::primary_only)},
            {only, true, true, C::healthy, on_primary(0, R::primary_only)},
            {only, true, false, C::healthy, on_primary(0, R::primary_only)},
            {only, false, true, C::replicas_down, on_primary(0, R::primary_only)},
            {only, false, false, C::replicas_down, on_primary(0, R::primary_only)},
            {only, true, true, C::replicas_down, on_primary(0, R::primary_only)},
            {only, true, false, C::replicas_down, on_primary(0, R::primary_only)},
            {only, false, true, C::primary_down, nowhere(R::no_primary)},
            {only, false, false, C::primary_down, nowhere(R::no_primary)},
            {only, true, true, C::primary_down, nowhere(R::no_primary)},
            {only, true, false, C::primary_down, nowhere(R::no_primary)},
            {only, false, true, C::everything_down, nowhere(R::no_primary)},
            {only, false, false, C::everything_down, nowhere(R::no_primary)},
            {only, true, true, C::everything_down, nowhere(R::no_primary)},
            {only, true, false, C::everything_down, nowhere(R::no_primary)},

            // read_write_split: writes on the primary or nowhere, never on a replica; reads on a
            // replica, else on the primary if they may fall back.
            {split, false, true, C::healthy, on_primary(0, R::write)},
            {split, false, false, C::healthy, on_primary(0, R::write)},
            {split, true, true, C::healthy, on_replica(1)},
            {split, true, false, C::healthy, on_replica(1)},
            {split, false, true, C::replicas_down, on_primary(0, R::write)},
            {split, false, false, C::replicas_down, on_primary(0, R::write)},
            {split, true, true, C::replicas_down, on_primary(0, R::no_usable_replica)},
            {split, true, false, C::replicas_down, nowhere(R::no_replica)},
            {split, false, true, C::primary_down, nowhere(R::no_primary)},
            {split, false, false, C::primary_down, nowhere(R::no_primary)},
            {split, true, true, C::primary_down, on_replica(1)},
            {split, true, false, C::primary_down, on_replica(1)},
            {split, false, true, C::everything_down, nowhere(R::no_primary)},
            {split, false, false, C::everything_down, nowhere(R::no_primary)},
            {split, true, true, C::everything_down, nowhere(R::no_primary)},
            {split, true, false, C::everything_down, nowhere(R::no_replica)},

            // replicas_only: a transaction that may write is routed as a read.
            {replicas, false, true, C::healthy, on_replica(1)},
            {replicas, false, false, C::healthy, on_replica(1)},
            {replicas, true, true, C::healthy, on_replica(1)},
            {replicas, true, false, C::healthy, on_replica(1)},
            {replicas, false, true, C::replicas_down, on_primary(0, R::no_usable_replica)},
            {replicas, false, false, C::replicas_down, nowhere(R::no_replica)},
            {replicas, true, true, C::replicas_down, on_primary(0, R::no_usable_replica)},
            {replicas, true, false, C::replicas_down, nowhere(R::no_replica)},
            {replicas, false, true, C::primary_down, on_replica(1)},
            {replicas, false, false, C::primary_down, on_replica(1)},
            {replicas, true, true, C::primary_down, on_replica(1)},
            {replicas, true, false, C::primary_down, on_replica(1)},
            {replicas, false, true, C::everything_down, nowhere(R::no_primary)},
            {replicas, false, false, C::everything_down, nowhere(R::no_replica)},
            {replicas, true, true, C::everything_down, nowhere(R::no_primary)},
            {replicas, true, false, C::everything_down, nowhere(R::no_replica)},
        };
        for (const Case& c : cases) {
            CAPTURE(static_cast<int>(c.mode));
            CAPTURE(c.read_only);
            CAPTURE(c.fall_back);
            CAPTURE(static_cast<int>(c.cluster));
            const RouteRequest request{c.read_only, 0};
            CHECK(route(cluster(c.cluster), request, policy(c.mode, c.fall_back), {}, 0) ==
                  c.expected);
        }
    }

    TEST_CASE("round robin spreads reads evenly over the usable replicas") {
        const auto topology = elect(
            {replica("r0", 100), primary("p", 1, 100), replica("r2", 100), replica("r3", 100)});
        SUBCASE("over 3 N turns each replica serves N reads, the primary none") {
            CHECK(spread(topology, read(), policy(Mode::read_write_split), {}, 300) ==
                  std::vector<int>{100, 0, 100, 100, 0});
        }
        SUBCASE("in host order") {
            const std::size_t expected[] = {0, 2, 3, 0, 2, 3};
            for (std::uint64_t turn = 0; turn < 6; ++turn) {
                CAPTURE(turn);
                CHECK(route(topology, read(), policy(Mode::read_write_split), {}, turn).host ==
                      expected[turn]);
            }
        }
        SUBCASE("a turn counter past 2^32 keeps rotating") {
            // 1 modulo 3, but 0 if it were cut to 32 bits.
            const std::uint64_t turn = std::uint64_t{1} << 40;
            CHECK(route(topology, read(), policy(Mode::read_write_split), {}, turn).host == 2u);
        }
        SUBCASE("writes are not spread") {
            CHECK(spread(topology, write(), policy(Mode::read_write_split), {}, 30) ==
                  std::vector<int>{0, 30, 0, 0, 0});
        }
    }

    TEST_CASE("replicas that may not serve reads are skipped") {
        // Host 0 is the primary at 10000; host 1 the replica under test; hosts 2 and 3 usable.
        struct Case {
            const char* name;
            HostState host;
            RoutePolicy policy;
            Lsn min_replay_lsn;
        };
        RoutePolicy bytes = policy(Mode::read_write_split);
        bytes.max_lag_bytes = 100;
        RoutePolicy seconds = policy(Mode::read_write_split);
        seconds.max_lag_seconds = 5;
        HostState unknown_role = replica("r1", 10000);
        unknown_role.role = Role::unknown;
        const Case cases[] = {
            {"down", down(replica("r1", 10000)), policy(Mode::read_write_split), 0},
            {"lagging in bytes", replica("r1", 9899), bytes, 0},
            {"lagging in seconds", replica("r1", 10000, 5.5), seconds, 0},
            {"behind the client's writes", replica("r1", 9000), policy(Mode::read_write_split),
             9001},
            {"of unknown role", unknown_role, policy(Mode::read_write_split), 0},
        };
        for (const Case& c : cases) {
            CAPTURE(c.name);
            const auto topology =
                elect({primary("p", 1, 10000), c.host, replica("r2", 10000), replica("r3", 10000)});
            const RouteRequest request = read(c.min_replay_lsn);
            CHECK_FALSE(usable_replica(topology.hosts[1], c.policy, c.min_replay_lsn));
            CHECK(spread(topology, request, c.policy, {}, 40) == std::vector<int>{0, 0, 20, 20, 0});
        }
    }

    TEST_CASE("replicas at the limits are usable") {
        struct Case {
            const char* name;
            HostState host;
            RoutePolicy policy;
            Lsn min_replay_lsn;
        };
        RoutePolicy bytes = policy(Mode::read_write_split);
        bytes.max_lag_bytes = 100;
        RoutePolicy seconds = policy(Mode::read_write_split);
        seconds.max_lag_seconds = 5;
        const RoutePolicy no_limits = policy(Mode::read_write_split);
        const Case cases[] = {
            {"lag exactly max_lag_bytes", replica("r1", 9900), bytes, 0},
            {"delay exactly max_lag_seconds", replica("r1", 10000, 5), seconds, 0},
            {"replayed exactly to min_replay_lsn", replica("r1", 9000), no_limits, 9000},
            {"any lag without max_lag_bytes", replica("r1", 1), no_limits, 0},
            {"any delay without max_lag_seconds", replica("r1", 10000, 86400), no_limits, 0},
        };
        for (const Case& c : cases) {
            CAPTURE(c.name);
            const auto topology = elect({primary("p", 1, 10000), c.host});
            CHECK(usable_replica(topology.hosts[1], c.policy, c.min_replay_lsn));
            CHECK(route(topology, read(c.min_replay_lsn), c.policy, {}, 0) == on_replica(1));
        }
    }

    TEST_CASE("the primary and claimants of the role never serve reads as replicas") {
        // An old primary on a lower timeline still claims the role: it is fenced off for
        // writes and is no replica for reads either.
        const auto topology =
            elect({primary("old", 1, 5000), primary("new", 2, 3000), replica("r", 3000)});
        const RoutePolicy any = policy(Mode::read_write_split);
        CHECK_FALSE(usable_replica(topology.hosts[0], any, 0));
        CHECK_FALSE(usable_replica(topology.hosts[1], any, 0));
        CHECK(spread(topology, read(), any, {}, 10) == std::vector<int>{0, 0, 10, 0});
        CHECK(route(topology, write(), any, {}, 0) == on_primary(1, RouteReason::write));
    }

    TEST_CASE("writes go to the primary however far its replicas lag") {
        RoutePolicy strict = policy(Mode::read_write_split);
        strict.max_lag_bytes = 1;
        strict.max_lag_seconds = 0.001;
        const auto topology = elect({replica("r", 0, 60), primary("p", 1, 1'000'000)});
        CHECK(route(topology, write(), strict, {}, 0) == on_primary(1, RouteReason::write));
        CHECK(route(topology, read(), strict, {}, 0) ==
              on_primary(1, RouteReason::no_usable_replica));
    }

    TEST_CASE("least_connections picks the least busy usable replica") {
        const auto topology = elect(
            {primary("p", 1, 100), replica("r1", 100), replica("r2", 100), replica("r3", 100)});
        RoutePolicy least = policy(Mode::read_write_split);
        least.balance = Balance::least_connections;
        SUBCASE("whatever the turn") {
            const std::array busy{0, 7, 3, 9};
            CHECK(spread(topology, read(), least, busy, 12) == std::vector<int>{0, 0, 12, 0, 0});
        }
        SUBCASE("an idle primary does not attract reads") {
            const std::array busy{0, 5, 5, 5};
            CHECK(spread(topology, read(), least, busy, 30) == std::vector<int>{0, 10, 10, 10, 0});
        }
        SUBCASE("equally loaded replicas take turns") {
            const std::array busy{1, 4, 2, 2};
            CHECK(spread(topology, read(), least, busy, 20) == std::vector<int>{0, 0, 10, 10, 0});
        }
        SUBCASE("hosts past the end of busy count as idle") {
            const std::array busy{0, 4};
            CHECK(spread(topology, read(), least, busy, 20) == std::vector<int>{0, 0, 10, 10, 0});
        }
        SUBCASE("an unusable replica is not chosen for being idle") {
            const auto one_down = elect({primary("p", 1, 100), down(replica("r1", 100)),
                                         replica("r2", 100), replica("r3", 100)});
            const std::array busy{0, 0, 6, 4};
            CHECK(spread(one_down, read(), least, busy, 10) == std::vector<int>{0, 0, 0, 10, 0});
        }
        SUBCASE("round_robin ignores the load") {
            const std::array busy{0, 7, 3, 9};
            CHECK(spread(topology, read(), policy(Mode::read_write_split), busy, 30) ==
                  std::vector<int>{0, 10, 10, 10, 0});
        }
    }

    TEST_CASE("during a failover reads go on, writes wait") {
        // The primary is gone: the replicas' lag in bytes is unknown and does not disqualify
        // them, however strict max_lag_bytes is.
        const auto topology =
            elect({down(primary("p", 1, 1'000'000)), replica("r1", 10), replica("r2", 20)});
        REQUIRE_FALSE(topology.primary.has_value());
        REQUIRE_FALSE(topology.hosts[1].lag_bytes.has_value());
        RoutePolicy strict = policy(Mode::read_write_split);
        strict.max_lag_bytes = 1;
        CHECK(usable_replica(topology.hosts[1], strict, 0));
        CHECK(spread(topology, read(), strict, {}, 10) == std::vector<int>{0, 5, 5, 0});

        SUBCASE("writes are never sent to a replica") {
            for (const Mode mode : {Mode::read_write_split, Mode::primary_only}) {
                for (const bool fall_back : {true, false}) {
                    CHECK(spread(topology, write(), policy(mode, fall_back), {}, 10) ==
                          std::vector<int>{0, 0, 0, 10});
                    CHECK(route(topology, write(), policy(mode, fall_back), {}, 0) ==
                          nowhere(RouteReason::no_primary));
                }
            }
        }
        SUBCASE("the replay delay still counts") {
            const auto late =
                elect({down(primary("p", 1, 100)), replica("r1", 10, 30), replica("r2", 20, 1)});
            RoutePolicy seconds = policy(Mode::read_write_split);
            seconds.max_lag_seconds = 10;
            CHECK(spread(late, read(), seconds, {}, 10) == std::vector<int>{0, 0, 10, 0});
        }
        SUBCASE("a split brain holds writes; replicas keep serving reads") {
            const auto split =
                elect({primary("a", 4, 100), primary("b", 4, 100), replica("r", 90)});
            REQUIRE(split.split_brain);
            CHECK(route(split, write(), strict, {}, 0) == nowhere(RouteReason::no_primary));
            CHECK(route(split, read(), strict, {}, 0) == on_replica(2));
        }
    }

    TEST_CASE("a configured topology routes like a probed one") {
        const auto topology = static_topology({"pg-0:5432", "pg-1:5432", "pg-2:5432"});
        RoutePolicy limits = policy(Mode::read_write_split);
        limits.max_lag_bytes = 1;
        limits.max_lag_seconds = 1;
        CHECK(route(topology, write(), limits, {}, 0) == on_primary(0, RouteReason::write));
        CHECK(spread(topology, read(), limits, {}, 10) == std::vector<int>{0, 5, 5, 0});
    }

    TEST_CASE("no hosts: nothing to route to") {
        const DatabaseTopology empty;
        CHECK(route(empty, write(), policy(Mode::read_write_split), {}, 0) ==
              nowhere(RouteReason::no_primary));
        CHECK(route(empty, read(), policy(Mode::read_write_split, false), {}, 0) ==
              nowhere(RouteReason::no_replica));
    }

    TEST_CASE("RouteReason names are the metrics labels") {
        const std::map<RouteReason, std::string> names{
            {RouteReason::write, "write"},
            {RouteReason::read, "read"},
            {RouteReason::primary_only, "primary_only"},
            {RouteReason::no_usable_replica, "no_usable_replica"},
            {RouteReason::no_primary, "no_primary"},
            {RouteReason::no_replica, "no_replica"},
        };
        for (const auto& entry : names) {
            CHECK(to_string(entry.first) == entry.second);
        }
    }
}
