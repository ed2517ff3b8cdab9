// What a session tells the console and the metrics about its client: its state in SHOW CLIENTS,
// and the SHOW STATS counters of its pool (PgBouncer's rules, reference.md 2.2: query time runs
// from a request to its ReadyForQuery, transaction time from the first request to the
// ReadyForQuery 'I' that ends the transaction, wait time from asking for a server to getting one),
// and the same times to the database's histograms.
//
// Thread safety: used by its session alone; what it writes is atomic (see ClientInfo and
// TrafficStats).
#pragma once

#include "pool/ids.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/metrics.hpp"
#include "proxy/traffic_stats.hpp"
#include "wire/be_status.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

namespace proxy {

class ClientActivity {
public:
    using TimePoint = std::chrono::steady_clock::time_point;

    ClientActivity(std::shared_ptr<ClientInfo> info, TrafficStats& traffic,
                   Metrics::DatabaseMetrics& histograms)
        : info_(std::move(info)), traffic_(traffic), histograms_(histograms) {}

    [[nodiscard]] ClientInfo& info() noexcept { return *info_; }

    void waiting(TimePoint now);
    void linked(pool::ServerId server, TimePoint now);
    void unlinked();
    // The first message of a request reached the server while it owed the client nothing.
    void request(TimePoint now);
    // A ReadyForQuery went to the client.
    void ready(wire::be::TransactionStatus status, TimePoint now);

    void received(std::size_t bytes) noexcept { TrafficStats::add(traffic_.bytes_received, bytes); }
    void sent(std::size_t bytes) noexcept { TrafficStats::add(traffic_.bytes_sent, bytes); }
    void prepared_statements(std::size_t count) noexcept {
        info_->prepared_statements.store(static_cast<std::uint32_t>(count),
                                         std::memory_order_relaxed);
    }

private:
    std::shared_ptr<ClientInfo> info_;
    TrafficStats& traffic_;
    Metrics::DatabaseMetrics& histograms_;
    TimePoint wait_started_{};
    std::optional<TimePoint> query_started_;
    std::optional<TimePoint> xact_started_;
};

} // namespace proxy
