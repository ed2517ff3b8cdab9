#include "proxy/traffic_stats.hpp"

#include <algorithm>

namespace proxy {

TrafficTotals& TrafficTotals::operator+=(const TrafficTotals& other) {
    server_assignments += other.server_assignments;
    xacts += other.xacts;
    queries += other.queries;
    bytes_received += other.bytes_received;
    bytes_sent += other.bytes_sent;
    xact_time += other.xact_time;
    query_time += other.query_time;
    wait_time += other.wait_time;
    client_parses += other.client_parses;
    server_parses += other.server_parses;
    binds += other.binds;
    return *this;
}

namespace {

// Counters only grow, but a pool dropped and recreated by RELOAD can start a period lower.
std::uint64_t delta(std::uint64_t start, std::uint64_t end) {
    return end > start ? end - start : 0;
}

std::uint64_t per(std::uint64_t amount, std::uint64_t count) {
    return count == 0 ? 0 : amount / count;
}

} // namespace

TrafficTotals period_averages(const TrafficTotals& start, const TrafficTotals& end,
                              std::chrono::microseconds period) {
    const auto seconds = static_cast<std::uint64_t>(std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(period).count()));
    const auto rate = [&](std::uint64_t TrafficTotals::*field) {
        return delta(start.*field, end.*field) / seconds;
    };
    TrafficTotals averages;
    averages.server_assignments = rate(&TrafficTotals::server_assignments);
    averages.xacts = rate(&TrafficTotals::xacts);
    averages.queries = rate(&TrafficTotals::queries);
    averages.bytes_received = rate(&TrafficTotals::bytes_received);
    averages.bytes_sent = rate(&TrafficTotals::bytes_sent);
    averages.client_parses = rate(&TrafficTotals::client_parses);
    averages.server_parses = rate(&TrafficTotals::server_parses);
    averages.binds = rate(&TrafficTotals::binds);
    averages.xact_time = per(delta(start.xact_time, end.xact_time), delta(start.xacts, end.xacts));
    averages.query_time =
        per(delta(start.query_time, end.query_time), delta(start.queries, end.queries));
    averages.wait_time = per(delta(start.wait_time, end.wait_time),
                             delta(start.server_assignments, end.server_assignments));
    return averages;
}

TrafficTotals TrafficStats::read() const noexcept {
    const auto get = [](const Counter& counter) { return counter.load(std::memory_order_relaxed); };
    return {get(server_assignments), get(xacts),         get(queries),    get(bytes_received),
            get(bytes_sent),         get(xact_time),     get(query_time), get(wait_time),
            get(client_parses),      get(server_parses), get(binds)};
}

} // namespace proxy
