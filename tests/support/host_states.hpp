#pragma once

// Hosts as the failover watcher reports them, for the routing and console unit tests.

#include "routing/topology.hpp"

#include <cstdint>
#include <string>
#include <utility>

namespace support {

// A healthy host out of recovery.
inline routing::HostState primary(std::string name, std::uint32_t timeline, routing::Lsn wal_lsn) {
    routing::HostState host;
    host.name = std::move(name);
    host.role = routing::Role::primary;
    host.healthy = true;
    host.timeline = timeline;
    host.wal_lsn = wal_lsn;
    return host;
}

// A healthy standby on timeline 1 that replayed up to `wal_lsn`.
inline routing::HostState replica(std::string name, routing::Lsn wal_lsn,
                                  double replay_delay_seconds = 0) {
    routing::HostState host;
    host.name = std::move(name);
    host.role = routing::Role::replica;
    host.healthy = true;
    host.timeline = 1;
    host.wal_lsn = wal_lsn;
    host.replay_delay_seconds = replay_delay_seconds;
    return host;
}

// `host` after failed probes: it keeps the role it reported before.
inline routing::HostState down(routing::HostState host, int failures = 1,
                               std::string error = "connection refused") {
    host.healthy = false;
    host.failures = failures;
    host.error = std::move(error);
    return host;
}

// One host of a topology, as the console and the metrics see it.
inline routing::HostView host_view(std::string name, routing::Role role, bool healthy = true) {
    routing::HostView view;
    view.state.name = std::move(name);
    view.state.role = role;
    view.state.healthy = healthy;
    return view;
}

} // namespace support
