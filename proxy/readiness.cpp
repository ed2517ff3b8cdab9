#include "proxy/readiness.hpp"

#include <algorithm>

namespace proxy {

bool ready_for_clients(const Config& config, const routing::Topology& topology,
                       bool shutting_down) {
    if (shutting_down) return false;
    return std::ranges::all_of(config.databases, [&topology](const auto& entry) {
        if (entry.second.routing == Routing::replicas_only) return true;
        const routing::DatabaseTopology* database = topology.find(entry.first);
        return database != nullptr && database->primary.has_value();
    });
}

} // namespace proxy
