#include "proxy/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <utility>

namespace proxy {
namespace {

// Upper bounds in seconds: from 100 µs (a short query to a server on the same network) to 30 s (a
// long report; longer lands in +Inf), in 1-2.5-5 steps so every decade has the same resolution.
const prometheus::Histogram::BucketBoundaries duration_buckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,
};

template <class Builder>
auto& build(Builder builder, prometheus::Registry& registry, const std::string& name,
            const std::string& help) {
    return builder.Name(name).Help(help).Register(registry);
}

} // namespace

Metrics::Metrics()
    : query_(build(prometheus::BuildHistogram(), registry_, "pgmarina_query_duration_seconds",
                   "Time from a query's arrival until its last response, by database")),
      transaction_(build(prometheus::BuildHistogram(), registry_,
                         "pgmarina_transaction_duration_seconds",
                         "Time a transaction held its server connection, by database")),
      wait_(build(prometheus::BuildHistogram(), registry_, "pgmarina_pool_wait_seconds",
                  "Time a client waited for a server connection, by database")),
      auth_failures_(build(
          prometheus::BuildCounter(), registry_, "pgmarina_auth_failures_total",
          "Clients that failed to authenticate, by method, database and user (\"\" when unknown)")),
      client_errors_(build(prometheus::BuildCounter(), registry_, "pgmarina_client_errors_total",
                           "Errors pgmarina itself sent to clients, by SQLSTATE")) {}

Metrics::DatabaseMetrics& Metrics::database(std::string_view name) {
    std::lock_guard lock{mutex_};
    if (const auto found = databases_.find(name); found != databases_.end()) return found->second;
    const prometheus::Labels labels{{"database", std::string(name)}};
    return databases_
        .emplace(std::string(name), DatabaseMetrics{query_.Add(labels, duration_buckets),
                                                    transaction_.Add(labels, duration_buckets),
                                                    wait_.Add(labels, duration_buckets)})
        .first->second;
}

// Family::Add returns the existing counter for labels it already has, under its own lock.
void Metrics::auth_failure(std::string_view method, std::string_view database,
                           std::string_view user, bool known) {
    auth_failures_
        .Add({{"method", std::string(method)},
              {"database", std::string(database)},
              {"user", known ? std::string(user) : std::string()}})
        .Increment();
}

void Metrics::client_error(std::string_view sqlstate) {
    client_errors_.Add({{"sqlstate", std::string(sqlstate)}}).Increment();
}

std::vector<prometheus::MetricFamily> Metrics::collect() const {
    return registry_.Collect();
}

std::string render_metrics(const std::vector<prometheus::MetricFamily>& families) {
    return prometheus::TextSerializer{}.Serialize(families);
}

// placeholder until the console branch lands
void Metrics::observe_topology(const routing::Topology&, const routing::Topology&) {}
void Metrics::routed(DatabaseMetrics&, routing::Role, routing::RouteReason) {}

} // namespace proxy
