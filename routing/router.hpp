#pragma once

// Picks the host of one transaction (design.md: routing::Router): the primary for what may
// write, a usable replica for what classify() proved read-only, the primary again when no
// replica is usable. Pure: the same topology, request and load always give the same answer.

#include "routing/topology.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace routing {

// A database's `routing` setting.
enum class Mode : std::uint8_t {
    primary_only,     // every transaction on the primary (PgBouncer's behaviour)
    read_write_split, // read-only transactions on replicas, the rest on the primary
    replicas_only,    // every transaction on a replica (an "-ro" alias database)
};

// A database's `load_balance` setting: how reads spread over usable replicas.
enum class Balance : std::uint8_t {
    round_robin,       // in turn
    least_connections, // the replica with the fewest server connections in use
};

struct RoutePolicy {
    Mode mode = Mode::primary_only;
    Balance balance = Balance::round_robin;
    std::uint64_t max_lag_bytes = 0; // 0: no limit
    double max_lag_seconds = 0;      // 0: no limit
    bool reads_fall_back_to_primary = true;
};

struct RouteRequest {
    // The transaction may run on a replica (classify() said replica_ok). In replicas_only every
    // transaction is treated as such.
    bool read_only = false;
    // Read-your-writes: a replica must have replayed at least this far (0: any replica).
    Lsn min_replay_lsn = 0;
};

// Why the host was chosen (or none); the names are metrics labels (to_string).
enum class RouteReason : std::uint8_t {
    write,             // primary: the transaction may write
    read,              // replica: read-only, and a replica is usable
    primary_only,      // primary: the database's routing is primary_only
    no_usable_replica, // primary: read-only, but every replica is down, lagging or behind
                       // the client's own writes, and reads fall back to the primary
    no_primary,        // none: the transaction needs the primary and none is known (or two
                       // hosts claim it): the caller waits for the topology to change. A read
                       // with no usable replica that falls back to a missing primary also
                       // gets this reason, in replicas_only too.
    no_replica,        // none: no replica is usable and reads_fall_back_to_primary is off
};
[[nodiscard]] std::string_view to_string(RouteReason reason) noexcept;

struct RouteDecision {
    std::optional<std::size_t> host; // index into DatabaseTopology::hosts; nullopt: wait
    Role role = Role::unknown;       // the role `host` serves in (primary or replica)
    RouteReason reason = RouteReason::write;

    friend bool operator==(const RouteDecision&, const RouteDecision&) = default;
};

// `busy[i]`: server connections in use on host i (least_connections; may be empty for
// round_robin; hosts past its end count as 0). `turn`: a counter the caller advances per
// decision. round_robin picks the turn-th usable replica in host order, modulo their number;
// least_connections picks among the usable replicas with the smallest busy[i] the same way, so
// equally loaded replicas take turns instead of the first one taking every read.
[[nodiscard]] RouteDecision route(const DatabaseTopology& topology, const RouteRequest& request,
                                  const RoutePolicy& policy, std::span<const int> busy,
                                  std::uint64_t turn) noexcept;

// A replica the policy lets serve reads: healthy, in recovery, within both lag limits, and
// replayed past `min_replay_lsn`. Without a primary its lag in bytes is unknown and does not
// disqualify it (reads go on while a failover is under way); its replay delay still counts.
[[nodiscard]] bool usable_replica(const HostView& host, const RoutePolicy& policy,
                                  Lsn min_replay_lsn) noexcept;

} // namespace routing
