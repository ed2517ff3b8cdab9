// Prometheus' own checker on a whole /metrics body: `promtool check metrics` parses the text
// format as the Prometheus server does and lints names, types and help texts (counters end in
// _total, only counters do, base units, no duplicate families). pgbouncer_exporter's names pass
// unchanged, so no lint rule needs excusing. Built only where promtool is installed.
#include "proxy/exporter_metrics.hpp"
#include "proxy/metrics.hpp"
#include "tests/support/console_tables.hpp"
#include "tests/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

struct Verdict {
    int status = -1;
    std::string output; // promtool's complaints, one a line
};

Verdict promtool_check(const std::string& body) {
    const auto dir = support::make_temp_dir(std::filesystem::temp_directory_path(), "promtool-");
    const auto file = dir / "metrics.txt";
    std::ofstream(file) << body;
    const std::string command =
        std::string(PGMARINA_PROMTOOL) + " check metrics < '" + file.string() + "' 2>&1";
    Verdict verdict;
    FILE* pipe = popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::array<char, 4096> buffer{};
    while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
        verdict.output.append(buffer.data(), n);
    const int raw = pclose(pipe);
    std::filesystem::remove_all(dir);
    REQUIRE(WIFEXITED(raw));
    verdict.status = WEXITSTATUS(raw);
    return verdict;
}

} // namespace

TEST_SUITE("proxy.metrics_promtool") {
    TEST_CASE("the /metrics body passes promtool check metrics without a complaint") {
        proxy::Metrics metrics;
        auto& app = metrics.database("app");
        app.query.Observe(0.002);
        app.transaction.Observe(0.01);
        app.wait.Observe(0.0001);
        metrics.auth_failure("scram-sha-256", "app", "alice", true);
        metrics.auth_failure("scram-sha-256", "app", "nobody", false);
        metrics.client_error("53300");
        metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
        metrics.routed(app, routing::Role::replica, routing::RouteReason::read);
        // Every topology family with a sample: hosts up and down, a primary, a lagging replica,
        // a failover whose writes resumed, and a database in split brain.
        routing::DatabaseTopology cluster;
        cluster.hosts.resize(3);
        for (std::size_t i = 0; i < cluster.hosts.size(); ++i) {
            cluster.hosts[i].state.name = "pg-" + std::to_string(i) + ":5432";
            cluster.hosts[i].state.role = routing::Role::replica;
            cluster.hosts[i].state.healthy = true;
            cluster.hosts[i].lag_bytes = 1024;
            cluster.hosts[i].state.replay_delay_seconds = 0.5;
        }
        cluster.hosts[2].state.healthy = false;
        routing::Topology before;
        before.databases["app"] = cluster;
        before.databases["app"].primary = 0;
        before.databases["app"].hosts[0].state.role = routing::Role::primary;
        routing::Topology after;
        after.databases["app"] = cluster;
        after.databases["app"].primary = 1;
        after.databases["app"].hosts[1].state.role = routing::Role::primary;
        after.databases["split"] = cluster;
        after.databases["split"].split_brain = true;
        metrics.observe_topology(before, after);
        metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
        auto families = proxy::exporter_families(support::sample_console_tables());
        for (auto& family : metrics.collect())
            families.push_back(std::move(family));
        const Verdict verdict = promtool_check(proxy::render_metrics(families));
        CHECK_MESSAGE(verdict.output.empty(), verdict.output);
        CHECK(verdict.status == 0);
    }

    TEST_CASE("the check does fail on a lint problem") {
        const Verdict verdict =
            promtool_check("# HELP up_total Up.\n# TYPE up_total gauge\nup_total 1\n");
        CHECK(verdict.status != 0);
        CHECK(verdict.output.find("_total") != std::string::npos);
    }
}
