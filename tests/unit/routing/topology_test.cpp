// routing/topology: pg_lsn texts, the election of a database's primary (timeline fencing, split
// brain, replica lag), configured topologies, and TopologyCell publication.

#include "routing/topology.hpp"

#include "tests/support/host_states.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using namespace routing;

constexpr Lsn max_lsn = std::numeric_limits<Lsn>::max();

using support::primary;
using support::replica;

// A host that has not answered a probe yet.
HostState unprobed(std::string name) {
    HostState host;
    host.name = std::move(name);
    return host;
}

// A host whose last probe failed but that kept the role it reported before.
HostState down(HostState host) {
    return support::down(std::move(host), 3, "timeout");
}

std::vector<std::optional<std::uint64_t>> lags(const DatabaseTopology& topology) {
    std::vector<std::optional<std::uint64_t>> result;
    for (const HostView& host : topology.hosts) {
        result.push_back(host.lag_bytes);
    }
    return result;
}

using Lags = std::vector<std::optional<std::uint64_t>>;

} // namespace

TEST_SUITE("routing.topology") {
    TEST_CASE("parse_lsn reads PostgreSQL's pg_lsn text") {
        struct Case {
            const char* text;
            Lsn value;
        };
        const Case cases[] = {
            {"16/B374D848", 0x16'B374D848},
            {"16/b374d848", 0x16'B374D848},
            {"00000016/0B374D84", 0x16'0B374D84},
            {"0/0", 0},
            {"0/1", 1},
            {"1/0", Lsn{1} << 32},
            {"0000000A/0000000B", 0xA'0000000B},
            {"FFFFFFFF/FFFFFFFF", max_lsn},
        };
        for (const Case& c : cases) {
            CAPTURE(c.text);
            CHECK(parse_lsn(c.text) == c.value);
        }
    }

    TEST_CASE("parse_lsn rejects anything else") {
        const char* const cases[] = {
            "",
            "/",
            "16",
            "B374D848",
            "16/",
            "/B374D848",
            "16//B374D848",
            "1/2/3",
            "16/B374D84G",
            "G/0",
            "123456789/0",
            "0/123456789",
            "000000001/0", // nine digits even though the value fits
            "0/000000001",
            "16/B374D848 ",
            " 16/B374D848",
            "16 /B374D848",
            "16/ B374D848",
            "16/B374D848x",
            "16/B374D848\n",
            "+1/0",
            "-1/0",
            "0/-1",
            "0x16/0",
            "16.5/0",
        };
        for (const char* text : cases) {
            CAPTURE(text);
            CHECK_FALSE(parse_lsn(text).has_value());
        }
        // An embedded NUL is junk too, not the end of the text.
        CHECK_FALSE(parse_lsn(std::string_view("0/1\0", 4)).has_value());
    }

    TEST_CASE("format_lsn writes %X/%X: uppercase, no leading zeros") {
        struct Case {
            Lsn value;
            const char* text;
        };
        const Case cases[] = {
            {0, "0/0"},
            {0xA, "0/A"},
            {Lsn{1} << 32, "1/0"},
            {0x16'B374D848, "16/B374D848"},
            {0xA'0000000B, "A/B"},
            {max_lsn, "FFFFFFFF/FFFFFFFF"},
        };
        for (const Case& c : cases) {
            CAPTURE(c.text);
            CHECK(format_lsn(c.value) == c.text);
        }
    }

    TEST_CASE("format_lsn and parse_lsn round trip") {
        const Lsn values[] = {0,
                              1,
                              0xFFFF'FFFF,
                              Lsn{1} << 32,
                              0x16'B374D848,
                              0x1'00000001,
                              0x8000'0000'0000'0000,
                              max_lsn};
        for (const Lsn value : values) {
            CAPTURE(value);
            CHECK(parse_lsn(format_lsn(value)) == value);
        }
        const char* const canonical[] = {"0/0", "0/16B3748", "3/0", "16/B374D848", "FFFFFFFF/1"};
        for (const char* text : canonical) {
            const auto value = parse_lsn(text);
            REQUIRE(value.has_value());
            CHECK(format_lsn(*value) == text);
        }
    }

    TEST_CASE("Role names") {
        CHECK(to_string(Role::unknown) == "unknown");
        CHECK(to_string(Role::primary) == "primary");
        CHECK(to_string(Role::replica) == "replica");
    }

    TEST_CASE("elect: one healthy primary") {
        const auto topology = elect({replica("a", 90), primary("b", 1, 100), replica("c", 100)});
        CHECK(topology.primary == 1u);
        CHECK_FALSE(topology.split_brain);
        REQUIRE(topology.hosts.size() == 3);
        CHECK(topology.hosts[0].state.name == "a");
        CHECK(topology.hosts[1].state.name == "b");
        CHECK(topology.hosts[2].state.name == "c");
        CHECK(lags(topology) == Lags{10, std::nullopt, 0});
    }

    TEST_CASE("elect: the views keep the probed states") {
        HostState probed = replica("a", 7);
        probed.replay_delay_seconds = 2.5;
        probed.timeline = 4;
        const auto topology = elect({probed, primary("b", 4, 9)});
        REQUIRE(topology.hosts.size() == 2);
        CHECK(topology.hosts[0].state == probed);
    }

    TEST_CASE("elect: no host claims the primary") {
        SUBCASE("replicas only") {
            const auto topology = elect({replica("a", 5), replica("b", 9)});
            CHECK_FALSE(topology.primary.has_value());
            CHECK_FALSE(topology.split_brain);
            CHECK(lags(topology) == Lags{std::nullopt, std::nullopt});
        }
        SUBCASE("nothing answered yet") {
            const auto topology = elect({unprobed("a"), unprobed("b")});
            CHECK_FALSE(topology.primary.has_value());
            CHECK_FALSE(topology.split_brain);
        }
        SUBCASE("no hosts") {
            const auto topology = elect({});
            CHECK(topology.hosts.empty());
            CHECK_FALSE(topology.primary.has_value());
        }
    }

    TEST_CASE("elect: an unhealthy host is never the primary") {
        SUBCASE("the only primary is down") {
            const auto topology = elect({down(primary("a", 1, 100)), replica("b", 80)});
            CHECK_FALSE(topology.primary.has_value());
            CHECK_FALSE(topology.split_brain);
            CHECK(lags(topology) == Lags{std::nullopt, std::nullopt});
        }
        SUBCASE("a down primary on a higher timeline does not fence a healthy one") {
            const auto topology = elect({down(primary("a", 3, 100)), primary("b", 2, 50)});
            CHECK(topology.primary == 1u);
            CHECK_FALSE(topology.split_brain);
        }
        SUBCASE("a down primary on the same timeline is no split brain") {
            const auto topology = elect({primary("a", 2, 100), down(primary("b", 2, 100))});
            CHECK(topology.primary == 0u);
            CHECK_FALSE(topology.split_brain);
        }
    }

    TEST_CASE("elect: of two primaries the higher timeline wins") {
        SUBCASE("the promoted replica comes later in the configuration") {
            const auto topology =
                elect({primary("old", 1, 500), primary("new", 2, 300), replica("c", 250)});
            CHECK(topology.primary == 1u);
            CHECK_FALSE(topology.split_brain);
            // Lag is against the elected primary, not the one with the furthest WAL.
            CHECK(lags(topology) == Lags{std::nullopt, std::nullopt, 50});
        }
        SUBCASE("the promoted replica comes first") {
            const auto topology =
                elect({primary("new", 7, 300), primary("old", 6, 500), primary("older", 5, 900)});
            CHECK(topology.primary == 0u);
            CHECK_FALSE(topology.split_brain);
        }
    }

    TEST_CASE("elect: two primaries on the highest timeline are a split brain") {
        SUBCASE("two claimants") {
            const auto topology =
                elect({primary("a", 2, 100), primary("b", 2, 200), replica("c", 90)});
            CHECK_FALSE(topology.primary.has_value());
            CHECK(topology.split_brain);
            CHECK(lags(topology) == Lags{std::nullopt, std::nullopt, std::nullopt});
        }
        SUBCASE("a third one on a lower timeline changes nothing") {
            const auto topology =
                elect({primary("a", 1, 900), primary("b", 3, 100), primary("c", 3, 100)});
            CHECK_FALSE(topology.primary.has_value());
            CHECK(topology.split_brain);
        }
        SUBCASE("a higher timeline ends it") {
            const auto topology =
                elect({primary("a", 3, 100), primary("b", 3, 100), primary("c", 4, 10)});
            CHECK(topology.primary == 2u);
            CHECK_FALSE(topology.split_brain);
        }
    }

    TEST_CASE("elect: replica lag in bytes") {
        SUBCASE("behind the primary") {
            const auto topology = elect({primary("p", 1, 0x1'00000000), replica("r", 0xFFFF'FFF0)});
            CHECK(lags(topology) == Lags{std::nullopt, 0x10});
        }
        SUBCASE("ahead of the primary's last probe: clamped at 0") {
            const auto topology = elect({primary("p", 1, 100), replica("r", 150)});
            CHECK(lags(topology) == Lags{std::nullopt, 0});
        }
        SUBCASE("computed for a replica that is down too") {
            const auto topology = elect({primary("p", 1, 100), down(replica("r", 40))});
            CHECK(lags(topology) == Lags{std::nullopt, 60});
        }
        SUBCASE("not for hosts of unknown role") {
            const auto topology = elect({primary("p", 1, 100), unprobed("x")});
            CHECK(lags(topology) == Lags{std::nullopt, std::nullopt});
        }
    }

    TEST_CASE("static_topology: the first host is the primary, the others replicas") {
        const auto topology = static_topology({"pg-0:5432", "pg-1:5432", "pg-2:5433"});
        CHECK(topology.primary == 0u);
        CHECK_FALSE(topology.split_brain);
        REQUIRE(topology.hosts.size() == 3);
        const char* const names[] = {"pg-0:5432", "pg-1:5432", "pg-2:5433"};
        const Role roles[] = {Role::primary, Role::replica, Role::replica};
        for (std::size_t i = 0; i < 3; ++i) {
            CAPTURE(i);
            CHECK(topology.hosts[i].state.name == names[i]);
            CHECK(topology.hosts[i].state.role == roles[i]);
            CHECK(topology.hosts[i].state.healthy);
        }
        CHECK(lags(topology) == Lags{std::nullopt, 0, 0});
    }

    TEST_CASE("static_topology: no hosts, no primary") {
        const auto topology = static_topology({});
        CHECK(topology.hosts.empty());
        CHECK_FALSE(topology.primary.has_value());
    }

    TEST_CASE("TopologyCell: publish moves the version and load returns the databases") {
        TopologyCell cell;
        CHECK(cell.version() == 0);
        const auto empty = cell.load();
        REQUIRE(empty != nullptr);
        CHECK(empty->version == 0);
        CHECK(empty->databases.empty());
        CHECK(empty->find("app") == nullptr);

        std::map<std::string, DatabaseTopology, std::less<>> first;
        first["app"] = static_topology({"pg-0:5432", "pg-1:5432"});
        cell.publish(first);
        CHECK(cell.version() == 1);
        const auto one = cell.load();
        CHECK(one->version == 1);
        CHECK(one->databases == first);
        REQUIRE(one->find("app") != nullptr);
        CHECK(*one->find("app") == first["app"]);
        CHECK(one->find("reports") == nullptr);

        std::map<std::string, DatabaseTopology, std::less<>> second;
        second["app"] = elect({primary("pg-0:5432", 1, 10), down(replica("pg-1:5432", 5))});
        second["reports"] = static_topology({"pg-9:5432"});
        cell.publish(second);
        CHECK(cell.version() == 2);
        const auto two = cell.load();
        CHECK(two->version == 2);
        CHECK(two->databases == second);

        // A reader's snapshot is immutable: publishing does not change what it holds.
        CHECK(empty->databases.empty());
        CHECK(one->version == 1);
        CHECK(one->databases == first);
    }
}
