#include "proxy/console_rows.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <utility>

namespace proxy {

Table make_table(const std::vector<std::string>& names,
                 std::initializer_list<std::string_view> text_columns) {
    Table table;
    for (const auto& name : names) {
        const bool text = std::ranges::find(text_columns, name) != text_columns.end();
        table.columns.push_back({name, text ? ColumnType::text : ColumnType::int8});
    }
    return table;
}

Cell decimal(double value) {
    char text[32];
    const auto result = std::to_chars(text, text + sizeof text, value);
    return std::string(text, result.ptr);
}

std::int64_t seconds(Duration duration) {
    return std::chrono::duration_cast<std::chrono::seconds>(duration).count();
}

std::string timestamp(std::chrono::system_clock::time_point at) {
    const std::time_t time = std::chrono::system_clock::to_time_t(at);
    std::tm utc{};
    gmtime_r(&time, &utc);
    char text[32];
    const auto length = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
    return std::string(text, length);
}

Cell load_balance_hosts(const Config& config, std::string_view database) {
    const auto found = config.databases.find(database);
    if (found == config.databases.end() || found->second.hosts.size() < 2) return std::nullopt;
    return std::string(to_string(found->second.routing));
}

std::string plain_setting(std::string toml) {
    if (toml.size() >= 2 && toml.front() == '"' && toml.back() == '"') {
        return toml.substr(1, toml.size() - 2);
    }
    return toml;
}

void add_pool_stats(pool::Stats& total, const pool::Stats& pool) {
    total.cl_waiting += pool.cl_waiting;
    total.sv_active += pool.sv_active;
    total.sv_active_cancel += pool.sv_active_cancel;
    total.sv_being_canceled += pool.sv_being_canceled;
    total.sv_idle += pool.sv_idle;
    total.sv_used += pool.sv_used;
    total.sv_tested += pool.sv_tested;
    total.sv_login += pool.sv_login;
    total.sv_closing += pool.sv_closing;
    total.servers += pool.servers;
    if (std::pair{pool.maxwait, pool.maxwait_us} > std::pair{total.maxwait, total.maxwait_us}) {
        total.maxwait = pool.maxwait;
        total.maxwait_us = pool.maxwait_us;
    }
}

std::map<pool::Key, pool::Stats> stats_by_key(const std::vector<PoolSnapshot>& snapshots) {
    std::map<pool::Key, pool::Stats> totals;
    for (const PoolSnapshot& snapshot : snapshots)
        add_pool_stats(totals[snapshot.key], snapshot.stats);
    return totals;
}

namespace {

// The host of `topology` called `name`; nullptr when there is none.
const routing::HostView* find_host(const routing::DatabaseTopology& topology,
                                   std::string_view name) {
    const auto found = std::ranges::find(topology.hosts, name, [](const routing::HostView& host) {
        return std::string_view(host.state.name);
    });
    return found == topology.hosts.end() ? nullptr : &*found;
}

} // namespace

const Endpoint& shown_host(const DatabaseConfig& database,
                           const routing::DatabaseTopology* topology) {
    if (topology && topology->primary && *topology->primary < topology->hosts.size()) {
        const std::string& primary = topology->hosts[*topology->primary].state.name;
        for (const Endpoint& host : database.hosts) {
            if (host.to_string() == primary) return host;
        }
    }
    return database.hosts.front();
}

std::string_view host_role(const routing::DatabaseTopology& topology, std::size_t index) {
    if (topology.primary == index) return "primary";
    switch (topology.hosts[index].state.role) {
    case routing::Role::replica:
        return "replica";
    case routing::Role::primary:
        return "fenced";
    case routing::Role::unknown:
        break;
    }
    return "unknown";
}

std::vector<Cell> host_status(const routing::DatabaseTopology* topology, std::string_view name,
                              routing::Clock::time_point now) {
    const routing::HostView* host = topology ? find_host(*topology, name) : nullptr;
    if (!host) {
        return {"unknown",    "unknown",    std::nullopt, std::nullopt,
                std::nullopt, std::nullopt, std::nullopt, std::nullopt};
    }
    const routing::HostState& state = host->state;
    const bool probed = state.probed_at != routing::Clock::time_point{};
    const auto since_probe =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - state.probed_at).count();
    std::string_view health = "unknown";
    if (probed) health = state.healthy ? "up" : "down";
    return {
        std::string(host_role(*topology, static_cast<std::size_t>(host - topology->hosts.data()))),
        std::string(health),
        state.timeline != 0 ? number(state.timeline) : std::nullopt,
        state.wal_lsn != 0 ? Cell(routing::format_lsn(state.wal_lsn)) : std::nullopt,
        host->lag_bytes ? number(*host->lag_bytes) : std::nullopt,
        state.role == routing::Role::replica ? decimal(state.replay_delay_seconds) : std::nullopt,
        probed ? number(since_probe) : std::nullopt,
        state.error.empty() ? std::nullopt : Cell(state.error)};
}

} // namespace proxy
