#include "proxy/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <utility>

namespace proxy {
namespace {

// Upper bounds in seconds: from 100 µs (a short query to a server on the same network) to 30 s (a
// long report; longer lands in +Inf), in 1-2.5-5 steps so every decade has the same resolution.
const prometheus::Histogram::BucketBoundaries duration_buckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,
};

// Upper bounds in seconds of the time writes waited for a new primary: from a switchover the
// watcher sees at its next probe (tens of milliseconds) to an election that takes minutes.
const prometheus::Histogram::BucketBoundaries resume_buckets{
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
};

template <class Builder>
auto& build(Builder builder, prometheus::Registry& registry, const std::string& name,
            const std::string& help) {
    return builder.Name(name).Help(help).Register(registry);
}

// The name of the host `topology` elected primary; nullopt without one (or without topology).
std::optional<std::string> primary_name(const routing::DatabaseTopology* topology) {
    if (topology == nullptr || !topology->primary) return std::nullopt;
    return topology->hosts[*topology->primary].state.name;
}

void remove(prometheus::Family<prometheus::Gauge>& family, prometheus::Gauge*& gauge) {
    if (gauge != nullptr) family.Remove(gauge);
    gauge = nullptr;
}

// `gauge` (added under `labels` if it is not yet) takes `value`; without one it is removed, so
// that no series says something no longer known.
void set_or_remove(prometheus::Family<prometheus::Gauge>& family, prometheus::Gauge*& gauge,
                   const prometheus::Labels& labels, std::optional<double> value) {
    if (!value) {
        remove(family, gauge);
        return;
    }
    if (gauge == nullptr) gauge = &family.Add(labels);
    gauge->Set(*value);
}

} // namespace

Metrics::DatabaseMetrics::DatabaseMetrics(std::string name, prometheus::Histogram& query,
                                          prometheus::Histogram& transaction,
                                          prometheus::Histogram& wait,
                                          prometheus::Histogram& write_resume,
                                          prometheus::Counter& failovers)
    : query(query), transaction(transaction), wait(wait), write_resume(write_resume),
      failovers(failovers), name_(std::move(name)) {}

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
                           "Errors pgmarina itself sent to clients, by SQLSTATE")),
      host_up_(build(prometheus::BuildGauge(), registry_, "pgmarina_host_up",
                     "Whether the host answered its last health probe (1) or not (0)")),
      host_primary_(build(prometheus::BuildGauge(), registry_, "pgmarina_host_primary",
                          "Whether the host is its database's elected primary (1) or not (0)")),
      replica_lag_bytes_(build(prometheus::BuildGauge(), registry_, "pgmarina_replica_lag_bytes",
                               "WAL bytes a replica has yet to replay to reach the primary")),
      replica_lag_seconds_(
          build(prometheus::BuildGauge(), registry_, "pgmarina_replica_lag_seconds",
                "How long ago the last transaction a replica replayed committed on the primary "
                "(0 when it has replayed all it received)")),
      primary_known_(build(prometheus::BuildGauge(), registry_, "pgmarina_primary_known",
                           "Whether the database has an elected primary (1) or not (0)")),
      primary_conflict_(build(prometheus::BuildGauge(), registry_, "pgmarina_primary_conflict",
                              "1 while two hosts claim to be primary on the same timeline and "
                              "writes are held (split brain)")),
      failovers_(build(prometheus::BuildCounter(), registry_, "pgmarina_failovers_total",
                       "Times the elected primary moved to another host, by database")),
      write_resume_(build(prometheus::BuildHistogram(), registry_,
                          "pgmarina_failover_write_resume_seconds",
                          "Time from losing the primary until a transaction was next routed to "
                          "one, by database")),
      routing_decisions_(build(prometheus::BuildCounter(), registry_,
                               "pgmarina_routing_decisions_total",
                               "Transactions routed, by database, role served and reason")) {}

Metrics::DatabaseMetrics& Metrics::database(std::string_view name) {
    std::lock_guard lock{mutex_};
    if (const auto found = databases_.find(name); found != databases_.end()) return found->second;
    const prometheus::Labels labels{{"database", std::string(name)}};
    return databases_
        .try_emplace(std::string(name), std::string(name), query_.Add(labels, duration_buckets),
                     transaction_.Add(labels, duration_buckets),
                     wait_.Add(labels, duration_buckets), write_resume_.Add(labels, resume_buckets),
                     failovers_.Add(labels))
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

void Metrics::observe_topology(const routing::Topology& previous, const routing::Topology& next) {
    std::lock_guard lock{topology_mutex_};
    for (auto it = observed_.begin(); it != observed_.end();) {
        if (next.find(it->first) != nullptr) {
            ++it;
            continue;
        }
        ObservedDatabase& gone = it->second;
        remove_hosts(gone, nullptr);
        remove(primary_known_, gone.primary_known);
        remove(primary_conflict_, gone.primary_conflict);
        // Writes to a database no longer served do not resume.
        gone.metrics->primary_lost_at_.store(0, std::memory_order_relaxed);
        it = observed_.erase(it);
    }
    for (const auto& [name, database] : next.databases) {
        const routing::DatabaseTopology* before = previous.find(name);
        const auto [it, added] = observed_.try_emplace(name);
        if (added) {
            it->second.metrics = &this->database(name);
            it->second.last_primary = primary_name(before);
        }
        observe_database(name, it->second, before, database);
    }
}

void Metrics::observe_database(const std::string& name, ObservedDatabase& observed,
                               const routing::DatabaseTopology* previous,
                               const routing::DatabaseTopology& next) {
    const prometheus::Labels labels{{"database", name}};
    set_or_remove(primary_known_, observed.primary_known, labels, next.primary ? 1 : 0);
    set_or_remove(primary_conflict_, observed.primary_conflict, labels, next.split_brain ? 1 : 0);
    remove_hosts(observed, &next);
    for (std::size_t i = 0; i < next.hosts.size(); ++i) {
        const routing::HostView& host = next.hosts[i];
        const routing::HostState& state = host.state;
        const prometheus::Labels host_labels{{"database", name}, {"host", state.name}};
        HostGauges& gauges = observed.hosts[state.name];
        const bool replica = state.role == routing::Role::replica;
        set_or_remove(host_up_, gauges.up, host_labels, state.healthy ? 1 : 0);
        set_or_remove(host_primary_, gauges.primary, host_labels, next.primary == i ? 1 : 0);
        set_or_remove(replica_lag_bytes_, gauges.lag_bytes, host_labels,
                      replica && host.lag_bytes ? std::optional<double>(*host.lag_bytes)
                                                : std::nullopt);
        set_or_remove(replica_lag_seconds_, gauges.lag_seconds, host_labels,
                      replica ? std::optional<double>(state.replay_delay_seconds) : std::nullopt);
    }

    const auto was = primary_name(previous);
    const auto is = primary_name(&next);
    if (was && was != is) {
        // From the first loss: another one before writes resume does not restart the clock.
        routing::Clock::rep none = 0;
        observed.metrics->primary_lost_at_.compare_exchange_strong(
            none, routing::Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    }
    if (is) {
        if (observed.last_primary && *observed.last_primary != *is) {
            observed.metrics->failovers.Increment();
        }
        observed.last_primary = is;
    }
}

void Metrics::remove_hosts(ObservedDatabase& observed, const routing::DatabaseTopology* next) {
    for (auto it = observed.hosts.begin(); it != observed.hosts.end();) {
        const std::string& name = it->first;
        if (next != nullptr && std::ranges::any_of(next->hosts, [&name](const auto& host) {
                return host.state.name == name;
            })) {
            ++it;
            continue;
        }
        HostGauges& gauges = it->second;
        remove(host_up_, gauges.up);
        remove(host_primary_, gauges.primary);
        remove(replica_lag_bytes_, gauges.lag_bytes);
        remove(replica_lag_seconds_, gauges.lag_seconds);
        it = observed.hosts.erase(it);
    }
}

void Metrics::routed(DatabaseMetrics& database, routing::Role role, routing::RouteReason reason) {
    auto& slot =
        database.decisions_[static_cast<std::size_t>(role)][static_cast<std::size_t>(reason)];
    prometheus::Counter* counter = slot.load(std::memory_order_acquire);
    if (counter == nullptr) {
        // Family::Add returns the counter it has for these labels: threads racing here all
        // store the same one.
        counter = &routing_decisions_.Add({{"database", database.name_},
                                           {"role", std::string(routing::to_string(role))},
                                           {"reason", std::string(routing::to_string(reason))}});
        slot.store(counter, std::memory_order_release);
    }
    counter->Increment();
    if (role != routing::Role::primary) return;
    auto lost = database.primary_lost_at_.load(std::memory_order_relaxed);
    if (lost == 0 ||
        !database.primary_lost_at_.compare_exchange_strong(lost, 0, std::memory_order_relaxed)) {
        return;
    }
    const auto waited =
        routing::Clock::now() - routing::Clock::time_point(routing::Clock::duration(lost));
    database.write_resume.Observe(std::chrono::duration<double>(waited).count());
}

std::vector<prometheus::MetricFamily> Metrics::collect() const {
    return registry_.Collect();
}

std::string render_metrics(const std::vector<prometheus::MetricFamily>& families) {
    return prometheus::TextSerializer{}.Serialize(families);
}


} // namespace proxy
