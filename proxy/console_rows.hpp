// Pieces the console's tables are built from (internal to console_*.cpp).
#pragma once

#include "proxy/admin_reply.hpp"
#include "proxy/config.hpp"
#include "proxy/server_pool.hpp"
#include "routing/topology.hpp"

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

struct Runtime;

// A table whose columns are int8 except those named in `text_columns`.
[[nodiscard]] Table make_table(const std::vector<std::string>& names,
                               std::initializer_list<std::string_view> text_columns);

template <class Integer>
[[nodiscard]] Cell number(Integer value) {
    return std::to_string(value);
}

// A float8 cell: the shortest text that reads back as `value`.
[[nodiscard]] Cell decimal(double value);

[[nodiscard]] std::int64_t seconds(Duration duration);
// PgBouncer's timestamp format: "2026-11-21 10:00:00 UTC".
[[nodiscard]] std::string timestamp(std::chrono::system_clock::time_point at);
// SHOW POOLS / SHOW DATABASES load_balance_hosts: set only for a database with several hosts.
[[nodiscard]] Cell load_balance_hosts(const Config& config, std::string_view database);
// A setting's TOML text without the quotes of a TOML string, as SHOW CONFIG prints values.
[[nodiscard]] std::string plain_setting(std::string toml);

// A database with several hosts has a pool per host for each user, but PgBouncer's tables have
// one row per (database, user), and pgbouncer_exporter turns those rows into series that must
// not repeat a label set. So the per-host pools add up: `pool`'s server and waiter counts are
// added to `total`, whose maxwait becomes the longer of the two waits.
void add_pool_stats(pool::Stats& total, const pool::Stats& pool);
// The counts of each (database, user), summed over the pools of all its hosts.
[[nodiscard]] std::map<pool::Key, pool::Stats>
stats_by_key(const std::vector<PoolSnapshot>& snapshots);

// SHOW DATABASES host and port: the configured host `topology` elected primary, else the first
// one (no topology for the database yet, no primary, or a primary a reload removed).
[[nodiscard]] const Endpoint& shown_host(const DatabaseConfig& database,
                                         const routing::DatabaseTopology* topology);

// SHOW HOSTS role of topology.hosts[index]: "primary" for the elected one; "replica" for one in
// recovery; "fenced" for one that claims to be primary but is not elected (split brain, or a
// lower timeline: an old primary back from the dead); "unknown" until a probe says.
[[nodiscard]] std::string_view host_role(const routing::DatabaseTopology& topology,
                                         std::size_t index);
// SHOW HOSTS columns role to error for the host called `name` ("host:port") of a database, as
// `topology` saw it at `now`. nullptr, or a topology without that host, says nothing but
// "unknown" yet.
[[nodiscard]] std::vector<Cell> host_status(const routing::DatabaseTopology* topology,
                                            std::string_view name, routing::Clock::time_point now);

// The tables about connections (console_connections.cpp).
[[nodiscard]] Table show_clients(Runtime& runtime);
[[nodiscard]] Table show_servers(Runtime& runtime);
[[nodiscard]] Table show_sockets(Runtime& runtime);
[[nodiscard]] Table show_hosts(Runtime& runtime);

} // namespace proxy
