// pgmarina's own metrics: what PgBouncer's console cannot say, so pgbouncer_exporter never had.
//
// Latency distributions per database (PgBouncer only reports totals and averages; pgbouncer#1354
// asks for histograms) and counts of the errors pgmarina itself sends. The pgbouncer_* families
// come from exporter_metrics.hpp; the /metrics body is both, rendered by render_metrics().
//
// Thread safety: every member function may be called from any thread at any time. Histograms,
// counters and families are prometheus-cpp's own, which lock internally; `databases_` has a mutex.
#pragma once

#include "routing/router.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

class Metrics {
public:
    // One database's histograms, all in seconds.
    struct DatabaseMetrics {
        prometheus::Histogram& query;       // query sent until its last response (PgBouncer's
                                            // query_time, one observation per query)
        prometheus::Histogram& transaction; // transaction start until ReadyForQuery 'I'
        prometheus::Histogram& wait;        // client waiting for a server connection
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

    // The topology changed (host gauges, failovers); called by the publisher, any thread.
    void observe_topology(const routing::Topology& previous, const routing::Topology& next);
    // A transaction was routed; per transaction, any worker.
    void routed(DatabaseMetrics& database, routing::Role role, routing::RouteReason reason);

    // Every family's current values, for render_metrics().
    [[nodiscard]] std::vector<prometheus::MetricFamily> collect() const;

private:
    prometheus::Registry registry_;
    prometheus::Family<prometheus::Histogram>& query_;
    prometheus::Family<prometheus::Histogram>& transaction_;
    prometheus::Family<prometheus::Histogram>& wait_;
    prometheus::Family<prometheus::Counter>& auth_failures_;
    prometheus::Family<prometheus::Counter>& client_errors_;

    std::mutex mutex_; // guards databases_; observations never take it
    // Node-based: a reference handed out stays valid as more databases are added.
    std::map<std::string, DatabaseMetrics, std::less<>> databases_;
};

// The Prometheus text exposition format (version 0.0.4) of `families`, the /metrics body.
[[nodiscard]] std::string render_metrics(const std::vector<prometheus::MetricFamily>& families);

} // namespace proxy
