#include "routing/router.hpp"

#include <algorithm>
#include <limits>

namespace routing {

namespace {

// Connections in use on a host; a host the caller has no count for has none.
int busy_on(std::span<const int> busy, std::size_t host) noexcept {
    return host < busy.size() ? busy[host] : 0;
}

// The usable replica for a read, or none. The candidates are every usable replica
// (round_robin), or the usable replicas with the fewest connections in use
// (least_connections); the decision takes the (turn % candidates)-th of them in host order, so
// replicas that are equally loaded take turns rather than the first one taking everything.
std::optional<std::size_t> pick_replica(const DatabaseTopology& topology, const RoutePolicy& policy,
                                        Lsn min_replay_lsn, std::span<const int> busy,
                                        std::uint64_t turn) noexcept {
    const auto& hosts = topology.hosts;
    int least = std::numeric_limits<int>::max();
    if (policy.balance == Balance::least_connections) {
        for (std::size_t i = 0; i < hosts.size(); ++i) {
            if (usable_replica(hosts[i], policy, min_replay_lsn)) {
                least = std::min(least, busy_on(busy, i));
            }
        }
    }
    const auto candidate = [&](std::size_t i) {
        return usable_replica(hosts[i], policy, min_replay_lsn) &&
               (policy.balance == Balance::round_robin || busy_on(busy, i) == least);
    };

    std::uint64_t candidates = 0;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        candidates += candidate(i) ? 1 : 0;
    }
    if (candidates == 0) {
        return std::nullopt;
    }
    const std::uint64_t chosen = turn % candidates;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        if (candidate(i) && seen++ == chosen) {
            return i;
        }
    }
    return std::nullopt;
}

} // namespace

std::string_view to_string(RouteReason reason) noexcept {
    switch (reason) {
    case RouteReason::write:
        return "write";
    case RouteReason::read:
        return "read";
    case RouteReason::primary_only:
        return "primary_only";
    case RouteReason::no_usable_replica:
        return "no_usable_replica";
    case RouteReason::no_primary:
        return "no_primary";
    case RouteReason::no_replica:
        return "no_replica";
    }
    return "unknown";
}

bool usable_replica(const HostView& host, const RoutePolicy& policy, Lsn min_replay_lsn) noexcept {
    const HostState& state = host.state;
    if (!state.healthy || state.role != Role::replica) {
        return false;
    }
    if (policy.max_lag_bytes > 0 && host.lag_bytes && *host.lag_bytes > policy.max_lag_bytes) {
        return false;
    }
    if (policy.max_lag_seconds > 0 && state.replay_delay_seconds > policy.max_lag_seconds) {
        return false;
    }
    return min_replay_lsn == 0 || state.wal_lsn >= min_replay_lsn;
}

RouteDecision route(const DatabaseTopology& topology, const RouteRequest& request,
                    const RoutePolicy& policy, std::span<const int> busy,
                    std::uint64_t turn) noexcept {
    const auto on_primary = [&](RouteReason reason) -> RouteDecision {
        if (!topology.primary) {
            return {std::nullopt, Role::unknown, RouteReason::no_primary};
        }
        return {topology.primary, Role::primary, reason};
    };

    switch (policy.mode) {
    case Mode::primary_only:
        return on_primary(RouteReason::primary_only);
    case Mode::read_write_split:
        if (!request.read_only) {
            return on_primary(RouteReason::write);
        }
        break;
    case Mode::replicas_only:
        break;
    }

    if (const auto replica = pick_replica(topology, policy, request.min_replay_lsn, busy, turn)) {
        return {replica, Role::replica, RouteReason::read};
    }
    if (policy.reads_fall_back_to_primary) {
        return on_primary(RouteReason::no_usable_replica);
    }
    return {std::nullopt, Role::unknown, RouteReason::no_replica};
}

} // namespace routing
