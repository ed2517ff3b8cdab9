#include "proxy/metrics.hpp"

#include <doctest/doctest.h>

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
