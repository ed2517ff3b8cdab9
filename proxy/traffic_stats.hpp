// PgBouncer's SHOW STATS counters (reference.md 1.1), kept per pool and summed per database.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace proxy {

// A reading of the counters. Times are microseconds, as PgBouncer's.
struct TrafficTotals {
    std::uint64_t server_assignments = 0; // a server linked to a client
    std::uint64_t xacts = 0;              // transactions ended (ReadyForQuery 'I')
    std::uint64_t queries = 0;            // requests answered (ReadyForQuery)
    std::uint64_t bytes_received = 0;     // from clients
    std::uint64_t bytes_sent = 0;         // to clients
    std::uint64_t xact_time = 0;
    std::uint64_t query_time = 0;
    std::uint64_t wait_time = 0;     // clients waiting for a server
    std::uint64_t client_parses = 0; // named Parse messages from clients
    std::uint64_t server_parses = 0; // Parse messages we sent for them
    std::uint64_t binds = 0;         // Bind messages of named statements

    TrafficTotals& operator+=(const TrafficTotals& other);
    friend bool operator==(const TrafficTotals&, const TrafficTotals&) = default;
};

// PgBouncer's averages over a stats_period from the totals at its start and end: counts and
// bytes per second; times per transaction, per query and per assignment.
[[nodiscard]] TrafficTotals period_averages(const TrafficTotals& start, const TrafficTotals& end,
                                            std::chrono::microseconds period);

// The live counters of one pool. Incremented by the sessions of every worker, read by the
// console and the metrics: relaxed atomics, no ordering implied between them.
struct TrafficStats {
    using Counter = std::atomic<std::uint64_t>;
    Counter server_assignments{0};
    Counter xacts{0};
    Counter queries{0};
    Counter bytes_received{0};
    Counter bytes_sent{0};
    Counter xact_time{0};
    Counter query_time{0};
    Counter wait_time{0};
    Counter client_parses{0};
    Counter server_parses{0};
    Counter binds{0};

    static void add(Counter& counter, std::uint64_t amount) noexcept {
        counter.fetch_add(amount, std::memory_order_relaxed);
    }
    [[nodiscard]] TrafficTotals read() const noexcept;
};

} // namespace proxy
