#pragma once

// What pgmarina knows about the servers behind each database: who is the primary, which
// replicas are usable and how far behind they are (design.md: routing::Topology). The watcher
// probes hosts and reports HostStates; elect() turns the states of one database's hosts into a
// DatabaseTopology; a Topology is an immutable snapshot of all databases, published through a
// TopologyCell that sessions read without locking on every transaction.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace routing {

using Clock = std::chrono::steady_clock;

// A WAL position, as pg_lsn's 64-bit value ("16/B374D848" is 0x16'B374D848).
using Lsn = std::uint64_t;

// "16/B374D848" → its value; nullopt for anything else (including an empty text: a replica
// that has not replayed anything reports NULL).
[[nodiscard]] std::optional<Lsn> parse_lsn(std::string_view text) noexcept;
[[nodiscard]] std::string format_lsn(Lsn lsn);

// What a host says it is.
enum class Role : std::uint8_t {
    unknown, // never answered a probe, or its last probe failed
    primary, // pg_is_in_recovery() is false
    replica, // pg_is_in_recovery() is true
};
[[nodiscard]] std::string_view to_string(Role role) noexcept;

// The outcome of the last probes of one host. Only the watcher writes these.
struct HostState {
    std::string name; // "host:port" as the configuration writes it: the key of the host
    Role role = Role::unknown;
    bool healthy = false; // the last probe answered within its timeout
    std::uint32_t timeline = 0;
    // Primary: pg_current_wal_lsn(); replica: pg_last_wal_replay_lsn().
    Lsn wal_lsn = 0;
    // Replica: how long ago the last replayed transaction committed on the primary; 0 when it
    // has replayed everything it received (an idle primary does not make a replica "late").
    double replay_delay_seconds = 0;
    // When the last successful probe was sent: its wal_lsn is at least the position of every
    // commit acknowledged before this instant (read-your-writes relies on it).
    Clock::time_point probe_started{};
    Clock::time_point probed_at{}; // when the last probe ended, successful or not
    int failures = 0;              // consecutive failed probes
    std::string error;             // why the last probe failed; empty after a success

    friend bool operator==(const HostState&, const HostState&) = default;
};

// One host of a database as the router sees it.
struct HostView {
    HostState state;
    // WAL bytes this replica is behind the database's primary (from the two hosts' last
    // probes); nullopt when there is no primary or the host is not a replica.
    std::optional<std::uint64_t> lag_bytes;

    friend bool operator==(const HostView&, const HostView&) = default;
};

// One database's cluster at one moment.
struct DatabaseTopology {
    std::vector<HostView> hosts; // in the configuration's order
    // The host writes go to: healthy, not in recovery, and on the highest timeline of the
    // hosts claiming to be primary. nullopt while there is none, or while two such hosts share
    // the highest timeline (split_brain): writes are then held, never sent to both.
    std::optional<std::size_t> primary;
    bool split_brain = false;

    friend bool operator==(const DatabaseTopology&, const DatabaseTopology&) = default;
};

// The fencing rules above, applied to the hosts of one database (in configuration order).
// Pure: lag_bytes is the primary's wal_lsn minus the replica's (0 when the replica is ahead).
[[nodiscard]] DatabaseTopology elect(std::vector<HostState> hosts);

// Hosts whose roles are configured rather than probed (no health_check_user): the first is the
// primary, the others replicas, all healthy, no lag known (lag_bytes 0).
[[nodiscard]] DatabaseTopology static_topology(const std::vector<std::string>& host_names);

struct Topology {
    std::uint64_t version = 0; // the TopologyCell's count of publications
    std::map<std::string, DatabaseTopology, std::less<>> databases;

    [[nodiscard]] const DatabaseTopology* find(std::string_view database) const {
        const auto found = databases.find(database);
        return found == databases.end() ? nullptr : &found->second;
    }
};

// The current Topology. Thread safety: every member may be called from any thread. A reader
// that holds a snapshot checks version() (one atomic load) and calls load() only when it moved,
// so the short lock around the pointer is taken once per publication per reader, not per
// transaction. (libstdc++ 12's std::atomic<std::shared_ptr> locks with a bit ThreadSanitizer
// cannot see, which would hide real races behind false reports.)
class TopologyCell {
public:
    TopologyCell() : current_(std::make_shared<const Topology>()) {}

    [[nodiscard]] std::shared_ptr<const Topology> load() const {
        std::lock_guard lock{mutex_};
        return current_;
    }
    [[nodiscard]] std::uint64_t version() const noexcept {
        return version_.load(std::memory_order_acquire);
    }
    // Publishes `databases` as the next version. Writers are serialized by the caller (the
    // watcher's callback and a reload run under one mutex: see proxy::HostWatch).
    void publish(std::map<std::string, DatabaseTopology, std::less<>> databases) {
        auto next = std::make_shared<Topology>();
        next->version = version_.load(std::memory_order_relaxed) + 1;
        next->databases = std::move(databases);
        {
            std::lock_guard lock{mutex_};
            current_ = std::move(next);
        }
        version_.fetch_add(1, std::memory_order_acq_rel);
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const Topology> current_;
    std::atomic<std::uint64_t> version_{0};
};

} // namespace routing
