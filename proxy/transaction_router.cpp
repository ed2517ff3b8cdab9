#include "proxy/transaction_router.hpp"

#include "proxy/prepared_statements.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

namespace proxy {
namespace {

// The NUL-terminated string at the front of `bytes`, and what follows it; nullopt when the
// terminator is missing (the framer does not check bodies: the server would refuse it).
std::optional<std::pair<std::string_view, std::span<const std::byte>>>
take_cstring(std::span<const std::byte> bytes) {
    const auto end = std::ranges::find(bytes, std::byte{0});
    if (end == bytes.end()) return std::nullopt;
    const auto length = static_cast<std::size_t>(end - bytes.begin());
    return std::pair{std::string_view(reinterpret_cast<const char*>(bytes.data()), length),
                     bytes.subspan(length + 1)};
}

std::optional<std::string_view> transaction_text(const wire::Frame& first,
                                                 const PreparedStatements* prepared) {
    switch (first.type) {
    case 'Q': {
        const auto text = take_cstring(first.body);
        if (text) return text->first;
        return std::nullopt;
    }
    case 'P': {
        const auto name = take_cstring(first.body);
        if (!name) return std::nullopt;
        const auto text = take_cstring(name->second);
        if (text) return text->first;
        return std::nullopt;
    }
    case 'B': {
        const auto portal = take_cstring(first.body);
        if (!portal || !prepared) return std::nullopt;
        const auto statement = take_cstring(portal->second);
        // The unnamed statement was parsed by an earlier transaction, on a server this one
        // may not get: only the primary is sure to fail no worse than it would there.
        if (!statement || statement->first.empty()) return std::nullopt;
        return prepared->query_of(statement->first);
    }
    default:
        return std::nullopt;
    }
}

routing::RoutePolicy policy_of(const DatabaseConfig& config) {
    return {
        .mode = config.routing,
        .balance = config.load_balance,
        .max_lag_bytes = config.max_replica_lag.bytes,
        .max_lag_seconds = std::chrono::duration<double>(config.max_replica_lag_time).count(),
        .reads_fall_back_to_primary = config.reads_fall_back_to_primary,
    };
}

} // namespace

routing::Classification classify_transaction(const wire::Frame& first, const ClientTraits& client,
                                             std::span<const std::string> read_only_functions,
                                             const PreparedStatements* prepared) {
    const auto text = transaction_text(first, prepared);
    if (!text) return routing::Classification::primary(routing::Reason::unknown_statement);
    return routing::classify(*text,
                             {.read_only_functions = read_only_functions,
                              .default_transaction_read_only = client.default_transaction_read_only,
                              .standard_conforming_strings = client.standard_conforming_strings});
}

TransactionRouter::TransactionRouter(Runtime& runtime, std::string database,
                                     std::string client_user, const DatabaseConfig& config,
                                     Metrics::DatabaseMetrics& metrics)
    : runtime_(runtime), database_(std::move(database)), client_user_(std::move(client_user)),
      config_(config), metrics_(metrics), policy_(policy_of(config)) {}

void TransactionRouter::learn_credentials(std::optional<std::string> secret,
                                          std::optional<ScramKeys> scram_keys) {
    secret_ = std::move(secret);
    scram_keys_ = std::move(scram_keys);
    learns_credentials_ = true;
    for (const auto& [host, pool] : pools_)
        pool->learn_credentials(secret_, scram_keys_);
}

const routing::DatabaseTopology* TransactionRouter::topology() {
    if (!topology_ || runtime_.topology.version() != topology_->version) {
        topology_ = runtime_.topology.load();
    }
    return topology_->find(database_);
}

std::shared_ptr<ServerPool> TransactionRouter::pool_for(const std::string& host) {
    auto cached = std::ranges::find_if(pools_, [&host](const auto& entry) {
        return entry.first == host && !entry.second->retired();
    });
    if (cached != pools_.end()) return cached->second;
    auto pool = runtime_.pools.get(database_, client_user_, host);
    if (!pool) return nullptr;
    if (learns_credentials_) pool->learn_credentials(secret_, scram_keys_);
    std::erase_if(pools_, [&host](const auto& entry) { return entry.first == host; });
    pools_.emplace_back(host, pool);
    return pool;
}

std::shared_ptr<ServerPool> TransactionRouter::welcome_pool() {
    const routing::DatabaseTopology* topology = this->topology();
    if (!topology || topology->hosts.empty()) return nullptr;
    if (topology->primary) return pool_for(topology->hosts[*topology->primary].state.name);
    const auto healthy = std::ranges::find_if(
        topology->hosts, [](const routing::HostView& host) { return host.state.healthy; });
    return pool_for(healthy != topology->hosts.end() ? healthy->state.name
                                                     : topology->hosts.front().state.name);
}

std::optional<routing::Lsn>
TransactionRouter::replay_floor(const routing::DatabaseTopology& topology) {
    switch (config_.read_consistency) {
    case ReadConsistency::none:
        return 0;
    case ReadConsistency::sticky:
        if (wrote_) return std::nullopt;
        return 0;
    case ReadConsistency::lsn:
        break;
    }
    if (unseen_write_) {
        if (!topology.primary) return std::nullopt;
        const routing::HostState& primary = topology.hosts[*topology.primary].state;
        if (primary.probe_started <= *unseen_write_) return std::nullopt;
        replay_floor_ = std::max(replay_floor_, primary.wal_lsn);
        unseen_write_.reset();
    }
    return replay_floor_;
}

TransactionRouter::Choice TransactionRouter::choose(bool read_only) {
    const routing::DatabaseTopology* topology = this->topology();
    if (!topology) {
        // A reload removed the database; the session finds it gone from the config.
        return {nullptr, {std::nullopt, routing::Role::unknown, routing::RouteReason::no_primary}};
    }
    routing::RouteRequest request{.read_only = read_only};
    std::uint64_t turn = 0;
    std::vector<int> busy;
    if (read_only || policy_.mode == routing::Mode::replicas_only) {
        // No replica has replayed "everything": the router falls back as for lagging ones.
        request.min_replay_lsn =
            replay_floor(*topology).value_or(std::numeric_limits<routing::Lsn>::max());
        turn = runtime_.route_turns.fetch_add(1, std::memory_order_relaxed);
        if (policy_.balance == routing::Balance::least_connections) {
            for (const auto& host : topology->hosts) {
                const auto pool = pool_for(host.state.name);
                busy.push_back(pool ? pool->busy() : 0);
            }
        }
    }
    const auto decision = routing::route(*topology, request, policy_, busy, turn);
    runtime_.metrics.routed(metrics_, decision.role, decision.reason);
    if (!decision.host) return {nullptr, decision};
    return {pool_for(topology->hosts[*decision.host].state.name), decision};
}

void TransactionRouter::transaction_done(routing::Role role, bool wrote) {
    if (!wrote || role != routing::Role::primary) return;
    wrote_ = true;
    unseen_write_ = routing::Clock::now();
}

} // namespace proxy
