// pgmarina's own metrics: what PgBouncer's console cannot say, so pgbouncer_exporter never had.
//
// Latency distributions per database (PgBouncer only reports totals and averages; pgbouncer#1354
// asks for histograms), counts of the errors pgmarina itself sends, and the failover watcher's
// view: which hosts are up, which is the primary, how far replicas lag, failovers, how long
// writes waited for a new primary, and where transactions were routed. The pgbouncer_* families
// come from exporter_metrics.hpp; the /metrics body is both, rendered by render_metrics().
//
// Thread safety: every member function may be called from any thread at any time. Histograms,
// counters, gauges and families are prometheus-cpp's own, which lock internally; `databases_`
// and the topology gauges each have a mutex, which routed() never takes.
#pragma once

#include "routing/router.hpp"
#include "routing/topology.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

class Metrics {
public:
    // The enumerators of routing::Role and routing::RouteReason, which index the decision
    // counters (each enum's last enumerator plus one).
    static constexpr std::size_t roles = static_cast<std::size_t>(routing::Role::replica) + 1;
    static constexpr std::size_t route_reasons =
        static_cast<std::size_t>(routing::RouteReason::no_replica) + 1;

    // One database's series. Histograms are in seconds.
    class DatabaseMetrics {
    public:
        DatabaseMetrics(std::string name, prometheus::Histogram& query,
                        prometheus::Histogram& transaction, prometheus::Histogram& wait,
                        prometheus::Histogram& write_resume, prometheus::Counter& failovers);

        prometheus::Histogram& query;       // query sent until its last response (PgBouncer's
                                            // query_time, one observation per query)
        prometheus::Histogram& transaction; // transaction start until ReadyForQuery 'I'
        prometheus::Histogram& wait;        // client waiting for a server connection
        // The primary lost (none elected, or another one) until a transaction is routed to a
        // primary again: one observation per loss.
        prometheus::Histogram& write_resume;
        prometheus::Counter& failovers; // the elected primary moved to another host

    private:
        friend class Metrics;

        const std::string name_;
        // routed()'s counter of each (role, reason), added to its family at its first use so
        // that combinations the router never returns make no series; then one atomic load.
        std::array<std::array<std::atomic<prometheus::Counter*>, route_reasons>, roles>
            decisions_{};
        // When the topology lost the primary, as steady_clock ticks; 0 while none is lost.
        // Set by observe_topology(), taken by the first routed() to a primary after it.
        std::atomic<routing::Clock::rep> primary_lost_at_{0};
    };

    Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // The histograms labelled database=`name`, created on first use. The reference stays valid
    // for the life of this object, so a session looks it up once at login and observes without
    // any further lookup. Call it with configured database names only: every distinct name is a
    // new time series for as long as the process runs.
    [[nodiscard]] DatabaseMetrics& database(std::string_view name);

    // A client of `database` (a configured or admin database: the startup packet names no other
    // past its check) that failed to authenticate as `user` with `method` ("scram-sha-256",
    // "md5", ..., "reject" for a connection the auth_hba_file refused). A user that is not
    // `known` (it has no secret) is counted under user="": a client can send any name, and
    // every distinct label value is a time series kept for the life of the process, so trying
    // names must not grow the series without bound.
    void auth_failure(std::string_view method, std::string_view database, std::string_view user,
                      bool known);
    // An ErrorResponse pgmarina itself sent to a client (not one a server sent through it), by
    // SQLSTATE.
    void client_error(std::string_view sqlstate);

    // A new topology was published after `previous`: the host and primary gauges take `next`'s
    // values (the series of hosts and databases it no longer has are removed, not left stale),
    // pgmarina_failovers_total counts a primary elected on another host than the last one
    // (A, none, B counts once when B is elected; A, none, A counts nothing), and a primary
    // lost starts the clock pgmarina_failover_write_resume_seconds stops. Called by the
    // publisher after every publication, under its lock.
    void observe_topology(const routing::Topology& previous, const routing::Topology& next);
    // A transaction of `database` (what database() returned) was routed to `role` for `reason`
    // (routing::route). Per transaction, so cheap: an atomic load and an increment, plus one
    // more atomic load for a primary.
    void routed(DatabaseMetrics& database, routing::Role role, routing::RouteReason reason);

    // Every family's current values, for render_metrics().
    [[nodiscard]] std::vector<prometheus::MetricFamily> collect() const;

private:
    // The gauges of one host of a database in the last observed topology; a lag gauge is null
    // while the host is not a replica or its lag is unknown.
    struct HostGauges {
        prometheus::Gauge* up = nullptr;
        prometheus::Gauge* primary = nullptr;
        prometheus::Gauge* lag_bytes = nullptr;
        prometheus::Gauge* lag_seconds = nullptr;
    };
    // A database of the last observed topology.
    struct ObservedDatabase {
        DatabaseMetrics* metrics = nullptr;
        prometheus::Gauge* primary_known = nullptr;
        prometheus::Gauge* primary_conflict = nullptr;
        // The host last elected, kept while none is: a failover is a new primary elsewhere.
        std::optional<std::string> last_primary;
        std::map<std::string, HostGauges, std::less<>> hosts;
    };

    // Under topology_mutex_.
    void observe_database(const std::string& name, ObservedDatabase& observed,
                          const routing::DatabaseTopology* previous,
                          const routing::DatabaseTopology& next);
    // Removes the series of the hosts `next` does not have (all of them for nullptr).
    void remove_hosts(ObservedDatabase& observed, const routing::DatabaseTopology* next);

    prometheus::Registry registry_;
    prometheus::Family<prometheus::Histogram>& query_;
    prometheus::Family<prometheus::Histogram>& transaction_;
    prometheus::Family<prometheus::Histogram>& wait_;
    prometheus::Family<prometheus::Counter>& auth_failures_;
    prometheus::Family<prometheus::Counter>& client_errors_;
    prometheus::Family<prometheus::Gauge>& host_up_;
    prometheus::Family<prometheus::Gauge>& host_primary_;
    prometheus::Family<prometheus::Gauge>& replica_lag_bytes_;
    prometheus::Family<prometheus::Gauge>& replica_lag_seconds_;
    prometheus::Family<prometheus::Gauge>& primary_known_;
    prometheus::Family<prometheus::Gauge>& primary_conflict_;
    prometheus::Family<prometheus::Counter>& failovers_;
    prometheus::Family<prometheus::Histogram>& write_resume_;
    prometheus::Family<prometheus::Counter>& routing_decisions_;

    std::mutex mutex_; // guards databases_; observations never take it
    // Node-based: a reference handed out stays valid as more databases are added.
    std::map<std::string, DatabaseMetrics, std::less<>> databases_;

    std::mutex topology_mutex_; // guards observed_; taken by observe_topology() only
    std::map<std::string, ObservedDatabase, std::less<>> observed_;
};

// The Prometheus text exposition format (version 0.0.4) of `families`, the /metrics body.
[[nodiscard]] std::string render_metrics(const std::vector<prometheus::MetricFamily>& families);

} // namespace proxy
