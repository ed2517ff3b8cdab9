// /readyz: should a load balancer or orchestrator send clients to this process now?
#pragma once

#include "proxy/config.hpp"
#include "routing/topology.hpp"

namespace proxy {

// Ready unless a graceful shutdown is under way, or a database that needs a primary has none in
// `topology`: a client of it could log in but its writes would wait for one. A database
// `topology` does not have yet counts as having none. replicas_only databases never need one.
// Pure, so the rule is tested without a process.
[[nodiscard]] bool ready_for_clients(const Config& config, const routing::Topology& topology,
                                     bool shutting_down);

} // namespace proxy
