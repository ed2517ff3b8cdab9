#include "proxy/readiness.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

proxy::DatabaseConfig database(proxy::Routing routing) {
    proxy::DatabaseConfig config;
    config.hosts = {{"pg-0", 5432}, {"pg-1", 5432}};
    config.routing = routing;
    return config;
}

routing::DatabaseTopology with_primary(std::optional<std::size_t> primary,
                                       bool split_brain = false) {
    routing::DatabaseTopology topology;
    topology.hosts.resize(2);
    topology.hosts[0].state.name = "pg-0:5432";
    topology.hosts[1].state.name = "pg-1:5432";
    topology.primary = primary;
    topology.split_brain = split_brain;
    return topology;
}

} // namespace

TEST_SUITE("proxy.readiness") {
    TEST_CASE("ready when every database that writes has a primary") {
        proxy::Config config;
        config.databases["app"] = database(proxy::Routing::primary_only);
        config.databases["split"] = database(proxy::Routing::read_write_split);
        routing::Topology topology;
        topology.databases["app"] = with_primary(0);
        topology.databases["split"] = with_primary(1);
        CHECK(proxy::ready_for_clients(config, topology, false));

        SUBCASE("a graceful shutdown is never ready") {
            CHECK_FALSE(proxy::ready_for_clients(config, topology, true));
        }
        SUBCASE("one database without a primary") {
            topology.databases["split"] = with_primary(std::nullopt);
            CHECK_FALSE(proxy::ready_for_clients(config, topology, false));
        }
        SUBCASE("split brain holds writes: not ready") {
            topology.databases["app"] = with_primary(std::nullopt, true);
            CHECK_FALSE(proxy::ready_for_clients(config, topology, false));
        }
        SUBCASE("a database the topology does not have yet") {
            topology.databases.erase("app");
            CHECK_FALSE(proxy::ready_for_clients(config, topology, false));
        }
        SUBCASE("a database the configuration no longer has does not matter") {
            topology.databases["dropped"] = with_primary(std::nullopt);
            CHECK(proxy::ready_for_clients(config, topology, false));
        }
    }

    TEST_CASE("replicas_only databases need no primary") {
        proxy::Config config;
        config.databases["reports"] = database(proxy::Routing::replicas_only);
        routing::Topology topology;
        CHECK(proxy::ready_for_clients(config, topology, false));
        topology.databases["reports"] = with_primary(std::nullopt);
        CHECK(proxy::ready_for_clients(config, topology, false));
    }

    TEST_CASE("no databases: ready") {
        CHECK(proxy::ready_for_clients(proxy::Config{}, routing::Topology{}, false));
    }
}
