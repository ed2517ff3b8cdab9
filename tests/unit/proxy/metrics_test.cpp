#include "proxy/metrics.hpp"
#include "tests/support/host_states.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

bool contains(const std::string& text, std::string_view line) {
    return text.find(line) != std::string::npos;
}

std::string rendered(const proxy::Metrics& metrics) {
    return proxy::render_metrics(metrics.collect());
}

// The value of the sample `series` (name and labels, as rendered); nullopt when there is none.
std::optional<std::string> sample(const proxy::Metrics& metrics, std::string_view series) {
    std::istringstream lines(rendered(metrics));
    for (std::string line; std::getline(lines, line);) {
        if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ') {
            return line.substr(series.size() + 1);
        }
    }
    return std::nullopt;
}

routing::HostView host(std::string name, routing::Role role, bool healthy = true) {
    return support::host_view(std::move(name), role, healthy);
}

// Database "app" on hosts a, b and c, with `primary` elected (the others replicas).
routing::DatabaseTopology app_on(std::optional<std::size_t> primary) {
    routing::DatabaseTopology database;
    for (const char* name : {"a:5432", "b:5432", "c:5432"}) {
        const bool elected = primary && database.hosts.size() == *primary;
        database.hosts.push_back(
            host(name, elected ? routing::Role::primary : routing::Role::replica));
    }
    database.primary = primary;
    return database;
}

// Publishes topologies one after another as the watcher's publisher does, telling the metrics.
struct Publisher {
    proxy::Metrics& metrics;
    routing::Topology current{};

    void publish(std::map<std::string, routing::DatabaseTopology, std::less<>> databases) {
        routing::Topology next;
        next.version = current.version + 1;
        next.databases = std::move(databases);
        metrics.observe_topology(current, next);
        current = std::move(next);
    }
    void publish_app(std::optional<std::size_t> primary) { publish({{"app", app_on(primary)}}); }
};

constexpr std::string_view app_failovers = "pgmarina_failovers_total{database=\"app\"}";
constexpr std::string_view app_resumes =
    "pgmarina_failover_write_resume_seconds_count{database=\"app\"}";

} // namespace

TEST_SUITE("proxy.metrics") {
    TEST_CASE("nothing observed: nothing rendered") {
        const proxy::Metrics metrics;
        CHECK(rendered(metrics).empty());
    }

    TEST_CASE("a query's duration lands in its database's buckets") {
        proxy::Metrics metrics;
        metrics.database("app").query.Observe(0.003);
        const std::string text = rendered(metrics);
        CAPTURE(text);
        CHECK(contains(text, "# TYPE pgmarina_query_duration_seconds histogram\n"));
        CHECK(contains(
            text, "pgmarina_query_duration_seconds_bucket{database=\"app\",le=\"0.0025\"} 0\n"));
        CHECK(contains(
            text, "pgmarina_query_duration_seconds_bucket{database=\"app\",le=\"0.005\"} 1\n"));
        CHECK(contains(text,
                       "pgmarina_query_duration_seconds_bucket{database=\"app\",le=\"+Inf\"} 1\n"));
        CHECK(contains(text, "pgmarina_query_duration_seconds_count{database=\"app\"} 1\n"));
        CHECK(contains(text, "pgmarina_query_duration_seconds_sum{database=\"app\"} 0.003\n"));
        // The database's other histograms exist from the first lookup, still empty.
        CHECK(contains(text, "pgmarina_transaction_duration_seconds_count{database=\"app\"} 0\n"));
        CHECK(contains(text, "pgmarina_pool_wait_seconds_count{database=\"app\"} 0\n"));
    }

    TEST_CASE("buckets run from 100 µs to 30 s") {
        proxy::Metrics metrics;
        auto& wait = metrics.database("app").wait;
        wait.Observe(0.00005);
        wait.Observe(45);
        const std::string text = rendered(metrics);
        CHECK(contains(text,
                       "pgmarina_pool_wait_seconds_bucket{database=\"app\",le=\"0.0001\"} 1\n"));
        CHECK(contains(text, "pgmarina_pool_wait_seconds_bucket{database=\"app\",le=\"30\"} 1\n"));
        CHECK(
            contains(text, "pgmarina_pool_wait_seconds_bucket{database=\"app\",le=\"+Inf\"} 2\n"));
    }

    TEST_CASE("database() hands out one set per name, stable as more are added") {
        proxy::Metrics metrics;
        auto& app = metrics.database("app");
        for (int i = 0; i < 100; ++i)
            (void)metrics.database("db" + std::to_string(i));
        CHECK(&metrics.database("app") == &app);
        CHECK(&metrics.database("app").query == &app.query);
        CHECK(&metrics.database("other").query != &app.query);
        app.transaction.Observe(1);
        metrics.database("other").transaction.Observe(2);
        const std::string text = rendered(metrics);
        CHECK(contains(text, "pgmarina_transaction_duration_seconds_sum{database=\"app\"} 1\n"));
        CHECK(contains(text, "pgmarina_transaction_duration_seconds_sum{database=\"other\"} 2\n"));
    }

    TEST_CASE("error counters by method, database and user, and by SQLSTATE") {
        proxy::Metrics metrics;
        metrics.auth_failure("md5", "app", "alice", true);
        metrics.auth_failure("md5", "app", "alice", true);
        metrics.auth_failure("md5", "reports", "alice", true);
        metrics.auth_failure("scram-sha-256", "app", "bob", true);
        metrics.client_error("53300");
        const std::string text = rendered(metrics);
        CAPTURE(text);
        CHECK(contains(text, "# TYPE pgmarina_auth_failures_total counter\n"));
        CHECK(contains(text, "pgmarina_auth_failures_total{database=\"app\",method=\"md5\","
                             "user=\"alice\"} 2\n"));
        CHECK(contains(text, "pgmarina_auth_failures_total{database=\"reports\",method=\"md5\","
                             "user=\"alice\"} 1\n"));
        CHECK(contains(text, "pgmarina_auth_failures_total{database=\"app\",method=\"scram-sha-"
                             "256\",user=\"bob\"} 1\n"));
        CHECK(contains(text, "# TYPE pgmarina_client_errors_total counter\n"));
        CHECK(contains(text, "pgmarina_client_errors_total{sqlstate=\"53300\"} 1\n"));
    }

    TEST_CASE("failures of unknown users share one series, whatever names are tried") {
        proxy::Metrics metrics;
        for (int i = 0; i < 100; ++i)
            metrics.auth_failure("md5", "app", "guess" + std::to_string(i), false);
        metrics.auth_failure("md5", "app", "alice", true);
        const std::string text = rendered(metrics);
        CAPTURE(text);
        CHECK(contains(text, "pgmarina_auth_failures_total{database=\"app\",method=\"md5\","
                             "user=\"\"} 100\n"));
        CHECK_FALSE(contains(text, "guess"));
        std::size_t series = 0;
        for (auto at = text.find("\npgmarina_auth_failures_total{"); at != std::string::npos;
             at = text.find("\npgmarina_auth_failures_total{", at + 1))
            ++series;
        CHECK(series == 2);
    }

    TEST_CASE("workers observe and count concurrently without losing updates") {
        proxy::Metrics metrics;
        constexpr int threads = 4;
        constexpr int rounds = 1000;
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; ++t) {
            workers.emplace_back([&metrics, t] {
                for (int i = 0; i < rounds; ++i) {
                    metrics.database(i % 2 == 0 ? "even" : "odd").query.Observe(0.001);
                    metrics.client_error(t % 2 == 0 ? "08P01" : "57014");
                }
            });
        }
        for (auto& worker : workers)
            worker.join();
        const std::string text = rendered(metrics);
        const auto half = std::to_string(threads * rounds / 2);
        CHECK(contains(text, "pgmarina_query_duration_seconds_count{database=\"even\"} " + half));
        CHECK(contains(text, "pgmarina_query_duration_seconds_count{database=\"odd\"} " + half));
        CHECK(contains(text, "pgmarina_client_errors_total{sqlstate=\"08P01\"} " + half));
        CHECK(contains(text, "pgmarina_client_errors_total{sqlstate=\"57014\"} " + half));
    }

    TEST_CASE("failovers: the elected primary moving to another host") {
        proxy::Metrics metrics;
        Publisher publisher{metrics};
        SUBCASE("the first election is no failover") {
            publisher.publish_app(std::nullopt);
            publisher.publish_app(0);
            CHECK(sample(metrics, app_failovers) == "0");
        }
        SUBCASE("A to B counts once") {
            publisher.publish_app(0);
            publisher.publish_app(1);
            CHECK(sample(metrics, app_failovers) == "1");
            publisher.publish_app(1);
            CHECK(sample(metrics, app_failovers) == "1");
        }
        SUBCASE("A, none, B counts once, when B is elected") {
            publisher.publish_app(0);
            publisher.publish_app(std::nullopt);
            publisher.publish_app(std::nullopt);
            CHECK(sample(metrics, app_failovers) == "0");
            publisher.publish_app(1);
            CHECK(sample(metrics, app_failovers) == "1");
        }
        SUBCASE("A, none, A counts nothing") {
            publisher.publish_app(0);
            publisher.publish_app(std::nullopt);
            publisher.publish_app(0);
            CHECK(sample(metrics, app_failovers) == "0");
        }
        SUBCASE("A, B, none, C, A counts three") {
            for (const auto primary : {std::optional<std::size_t>(0), std::optional<std::size_t>(1),
                                       std::optional<std::size_t>(), std::optional<std::size_t>(2),
                                       std::optional<std::size_t>(0)})
                publisher.publish_app(primary);
            CHECK(sample(metrics, app_failovers) == "3");
        }
        SUBCASE("a primary known before the first observation counts as the last one") {
            routing::Topology before;
            before.databases["app"] = app_on(0);
            routing::Topology after;
            after.databases["app"] = app_on(2);
            metrics.observe_topology(before, after);
            CHECK(sample(metrics, app_failovers) == "1");
        }
        SUBCASE("the same host name elected at another index is the same primary") {
            publisher.publish_app(1);
            auto reordered = app_on(0);
            reordered.hosts[0].state.name = "b:5432";
            reordered.hosts[1].state.name = "a:5432";
            publisher.publish({{"app", reordered}});
            CHECK(sample(metrics, app_failovers) == "0");
        }
    }

    TEST_CASE("failovers are counted by database") {
        proxy::Metrics metrics;
        Publisher publisher{metrics};
        publisher.publish({{"app", app_on(0)}, {"other", app_on(0)}});
        publisher.publish({{"app", app_on(1)}, {"other", app_on(0)}});
        CHECK(sample(metrics, app_failovers) == "1");
        CHECK(sample(metrics, "pgmarina_failovers_total{database=\"other\"}") == "0");
    }

    TEST_CASE("primary_known and primary_conflict follow the election") {
        proxy::Metrics metrics;
        Publisher publisher{metrics};
        constexpr std::string_view known = "pgmarina_primary_known{database=\"app\"}";
        constexpr std::string_view conflict = "pgmarina_primary_conflict{database=\"app\"}";
        publisher.publish_app(0);
        CHECK(sample(metrics, known) == "1");
        CHECK(sample(metrics, conflict) == "0");
        auto split = app_on(std::nullopt);
        split.hosts[0].state.role = routing::Role::primary;
        split.hosts[2].state.role = routing::Role::primary;
        split.split_brain = true;
        publisher.publish({{"app", split}});
        CHECK(sample(metrics, known) == "0");
        CHECK(sample(metrics, conflict) == "1");
        CHECK(sample(metrics, "pgmarina_host_primary{database=\"app\",host=\"a:5432\"}") == "0");
        publisher.publish_app(2);
        CHECK(sample(metrics, known) == "1");
        CHECK(sample(metrics, conflict) == "0");
    }

    TEST_CASE("host gauges: up, primary, and lag for replicas only") {
        proxy::Metrics metrics;
        Publisher publisher{metrics};
        auto app = app_on(0);
        app.hosts[1].lag_bytes = 4096;
        app.hosts[1].state.replay_delay_seconds = 1.5;
        app.hosts[2].state.role = routing::Role::unknown;
        app.hosts[2].state.healthy = false;
        publisher.publish({{"app", app}});
        const auto series = [](std::string_view name, std::string_view host) {
            return std::string(name) + "{database=\"app\",host=\"" + std::string(host) + "\"}";
        };
        CHECK(sample(metrics, series("pgmarina_host_up", "a:5432")) == "1");
        CHECK(sample(metrics, series("pgmarina_host_up", "c:5432")) == "0");
        CHECK(sample(metrics, series("pgmarina_host_primary", "a:5432")) == "1");
        CHECK(sample(metrics, series("pgmarina_host_primary", "b:5432")) == "0");
        CHECK(sample(metrics, series("pgmarina_replica_lag_bytes", "b:5432")) == "4096");
        CHECK(sample(metrics, series("pgmarina_replica_lag_seconds", "b:5432")) == "1.5");
        // Neither the primary nor a host of unknown role is a replica with a lag.
        for (const char* other : {"a:5432", "c:5432"}) {
            CHECK_FALSE(sample(metrics, series("pgmarina_replica_lag_bytes", other)));
            CHECK_FALSE(sample(metrics, series("pgmarina_replica_lag_seconds", other)));
        }

        SUBCASE("a lag no longer known is no longer reported") {
            app.hosts[1].lag_bytes.reset();
            publisher.publish({{"app", app}});
            CHECK_FALSE(sample(metrics, series("pgmarina_replica_lag_bytes", "b:5432")));
            CHECK(sample(metrics, series("pgmarina_replica_lag_seconds", "b:5432")) == "1.5");
        }
        SUBCASE("a replica promoted loses its lag series") {
            publisher.publish_app(1);
            CHECK(sample(metrics, series("pgmarina_host_primary", "b:5432")) == "1");
            CHECK_FALSE(sample(metrics, series("pgmarina_replica_lag_seconds", "b:5432")));
            CHECK(sample(metrics, series("pgmarina_replica_lag_seconds", "a:5432")) == "0");
        }
        SUBCASE("a host removed from the configuration leaves no series") {
            app.hosts.pop_back();
            publisher.publish({{"app", app}});
            const std::string text = rendered(metrics);
            CHECK_FALSE(contains(text, "c:5432"));
            CHECK(contains(text, "b:5432"));
        }
        SUBCASE("a database removed leaves no gauges, but keeps its counters") {
            publisher.publish({{"other", app_on(0)}});
            const std::string text = rendered(metrics);
            CHECK_FALSE(contains(text, "pgmarina_host_up{database=\"app\""));
            CHECK_FALSE(contains(text, "pgmarina_primary_known{database=\"app\"}"));
            CHECK_FALSE(contains(text, "pgmarina_primary_conflict{database=\"app\"}"));
            CHECK(contains(text, "pgmarina_host_up{database=\"other\",host=\"a:5432\"} 1"));
            CHECK(sample(metrics, app_failovers) == "0");
        }
    }

    TEST_CASE("routing decisions by database, role and reason") {
        proxy::Metrics metrics;
        auto& app = metrics.database("app");
        for (int i = 0; i < 3; ++i)
            metrics.routed(app, routing::Role::replica, routing::RouteReason::read);
        metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
        metrics.routed(metrics.database("other"), routing::Role::unknown,
                       routing::RouteReason::no_primary);
        const std::string text = rendered(metrics);
        CAPTURE(text);
        CHECK(contains(text, "# TYPE pgmarina_routing_decisions_total counter\n"));
        CHECK(contains(text, "pgmarina_routing_decisions_total{database=\"app\",reason=\"read\","
                             "role=\"replica\"} 3\n"));
        CHECK(contains(text, "pgmarina_routing_decisions_total{database=\"app\",reason=\"write\","
                             "role=\"primary\"} 1\n"));
        CHECK(contains(text, "pgmarina_routing_decisions_total{database=\"other\",reason=\"no_"
                             "primary\",role=\"unknown\"} 1\n"));
        // Combinations never routed make no series.
        std::size_t series = 0;
        for (auto at = text.find("\npgmarina_routing_decisions_total{"); at != std::string::npos;
             at = text.find("\npgmarina_routing_decisions_total{", at + 1))
            ++series;
        CHECK(series == 3);
    }

    TEST_CASE("write resume: observed once per loss, at the first transaction on a primary") {
        proxy::Metrics metrics;
        Publisher publisher{metrics};
        auto& app = metrics.database("app");
        publisher.publish_app(0);
        metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
        CHECK(sample(metrics, app_resumes) == "0"); // nothing was lost

        publisher.publish_app(std::nullopt);
        metrics.routed(app, routing::Role::unknown, routing::RouteReason::no_primary);
        metrics.routed(app, routing::Role::replica, routing::RouteReason::read);
        CHECK(sample(metrics, app_resumes) == "0"); // writes have not resumed
        publisher.publish_app(std::nullopt);
        publisher.publish_app(1);
        CHECK(sample(metrics, app_resumes) == "0"); // elected, but no write routed yet
        metrics.routed(app, routing::Role::primary, routing::RouteReason::no_usable_replica);
        CHECK(sample(metrics, app_resumes) == "1");
        metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
        CHECK(sample(metrics, app_resumes) == "1");

        SUBCASE("a direct move to another primary is a loss too") {
            publisher.publish_app(2);
            metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
            CHECK(sample(metrics, app_resumes) == "2");
        }
        SUBCASE("the primary coming back is a loss that resumes") {
            publisher.publish_app(std::nullopt);
            publisher.publish_app(1);
            metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
            CHECK(sample(metrics, app_resumes) == "2");
        }
        SUBCASE("two losses before writes resume are one wait") {
            publisher.publish_app(std::nullopt);
            publisher.publish_app(2);
            publisher.publish_app(0);
            metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
            metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
            CHECK(sample(metrics, app_resumes) == "2");
        }
        SUBCASE("a loss of another database is not this one's") {
            publisher.publish({{"app", app_on(1)}, {"other", app_on(0)}});
            publisher.publish({{"app", app_on(1)}, {"other", app_on(std::nullopt)}});
            metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
            CHECK(sample(metrics, app_resumes) == "1");
        }
    }

    TEST_CASE("the write resume time is the time writes waited") {
        proxy::Metrics metrics;
        Publisher publisher{metrics};
        auto& app = metrics.database("app");
        publisher.publish_app(0);
        publisher.publish_app(std::nullopt);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
        const auto sum =
            sample(metrics, "pgmarina_failover_write_resume_seconds_sum{database=\"app\"}");
        REQUIRE(sum);
        CHECK(std::stod(*sum) >= 0.02);
        CHECK(std::stod(*sum) < 10);
    }

    TEST_CASE("workers route concurrently with publications without losing counts") {
        proxy::Metrics metrics;
        auto& app = metrics.database("app");
        constexpr int threads = 4;
        constexpr int rounds = 1000;
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; ++t) {
            workers.emplace_back([&metrics, &app] {
                for (int i = 0; i < rounds; ++i)
                    metrics.routed(app, routing::Role::primary, routing::RouteReason::write);
            });
        }
        Publisher publisher{metrics};
        for (int i = 0; i < 100; ++i)
            publisher.publish_app(i % 2 == 0
                                      ? std::optional<std::size_t>(static_cast<std::size_t>(i % 3))
                                      : std::nullopt);
        for (auto& worker : workers)
            worker.join();
        CHECK(sample(metrics, "pgmarina_routing_decisions_total{database=\"app\",reason=\"write\","
                              "role=\"primary\"}") == std::to_string(threads * rounds));
    }

    TEST_CASE("render_metrics escapes label values") {
        prometheus::MetricFamily family{"example", "An example", prometheus::MetricType::Gauge, {}};
        prometheus::ClientMetric metric;
        metric.label = {{"name", "a\"b\\c\nd"}};
        metric.gauge.value = 1;
        family.metric.push_back(metric);
        CHECK(proxy::render_metrics({family}) == "# HELP example An example\n# TYPE example "
                                                 "gauge\nexample{name=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}
