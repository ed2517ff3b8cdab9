// Prints a /metrics body in which every metric family pgmarina can export has a sample, for
// tests/unit/etc_manifests_test.py: the Grafana dashboard and the alert rules may only use names
// this prints. The families come from the real code (proxy::Metrics with each of its observations
// made once, and the exporter mapping over admin console tables in which every column it maps has
// a row), so renaming a metric in the code makes that test fail until etc/ follows.
#include "proxy/exporter_metrics.hpp"
#include "proxy/metrics.hpp"
#include "tests/support/console_tables.hpp"
#include "tests/support/host_states.hpp"

#include <iostream>

int main() {
    proxy::Metrics metrics;
    auto& app = metrics.database("app");
    app.query.Observe(0.001);
    app.transaction.Observe(0.002);
    app.wait.Observe(0.0);
    metrics.auth_failure("scram-sha-256", "app", "alice", true);
    metrics.client_error("08006");
    metrics.routed(app, routing::Role::replica, routing::RouteReason::read);

    // A primary and a lagging replica, then a failover to the replica: host, lag, election and
    // failover families all get samples.
    auto topology = [](std::size_t primary) {
        routing::DatabaseTopology database;
        for (const char* name : {"a:5432", "b:5432"}) {
            const bool elected = database.hosts.size() == primary;
            routing::HostView host = support::host_view(
                name, elected ? routing::Role::primary : routing::Role::replica, true);
            if (!elected) {
                host.lag_bytes = 4096;
                host.state.replay_delay_seconds = 1.5;
            }
            database.hosts.push_back(std::move(host));
        }
        database.primary = primary;
        routing::Topology out;
        out.databases.emplace("app", std::move(database));
        return out;
    };
    const routing::Topology none;
    routing::Topology first = topology(0);
    routing::Topology second = topology(1);
    second.version = 2;
    metrics.observe_topology(none, first);
    metrics.observe_topology(first, second);
    metrics.routed(app, routing::Role::primary, routing::RouteReason::write);

    auto families = proxy::exporter_families(support::sample_console_tables());
    for (auto& family : metrics.collect())
        families.push_back(std::move(family));
    std::cout << proxy::render_metrics(families);
    return 0;
}
