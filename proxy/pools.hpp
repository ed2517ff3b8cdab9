// Every pool of the process, by (database, user, host), with the limits they share: the caps of
// max_db_connections and max_user_connections, and the janitor that keeps them all in shape.
// A database with several hosts has one pool per host for each user: pool_size bounds the
// connections to each server, and the router picks the host of each transaction.
//
// Thread safety: get() may be called from any worker; the map is guarded by a mutex held only
// to find or create a pool.
#pragma once

#include "proxy/auth_file.hpp"
#include "proxy/server_pool.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

namespace proxy {

class Pools {
public:
    Pools(std::shared_ptr<const Config> config, std::shared_ptr<const AuthUsers> auth_users,
          Workers& workers, const CurrentTls& tls);

    // The pool serving `client_user` on `database` at `host` ("host:port", HostState::name),
    // created on first use; nullptr when the configuration has no such database, or no such
    // host for it (any more). With the database's forced `user`, every client shares that
    // user's pools.
    [[nodiscard]] std::shared_ptr<ServerPool>
    get(std::string_view database, std::string_view client_user, std::string_view host);

    // RELOAD and SET: caps take their new maxima; a pool whose settings changed is retired
    // (ServerPool::retire) and replaced by a new one at the next get(), sharing its counters.
    void reconfigure(std::shared_ptr<const Config> config,
                     std::shared_ptr<const AuthUsers> auth_users);

    // Ticks every pool about three times a second, as PgBouncer's janitor, until cancelled.
    // Every stats_period it also takes the reading that traffic_averages() reports.
    asio::awaitable<void> run_janitor();

    // Names server connections across all pools, for connections outside them too (auth_query).
    [[nodiscard]] const std::shared_ptr<pool::ServerIds>& server_ids() const { return ids_; }

    // Every pool created so far.
    [[nodiscard]] std::vector<std::shared_ptr<ServerPool>> all();
    // The watcher found `host` down, or no longer the primary: its unused servers close now,
    // the others as they are released (they may be dead, or serve the wrong role).
    void close_servers_of(std::string_view host);
    // The watcher saw `host` answer again: its pools stop holding back logins.
    void retry_logins_to(std::string_view host);
    // The pools' counters summed by database (SHOW STATS totals).
    [[nodiscard]] std::map<std::string, TrafficTotals, std::less<>> traffic_by_database();
    // PgBouncer's averages over the last complete stats_period, by database.
    [[nodiscard]] std::map<std::string, TrafficTotals, std::less<>> traffic_averages() const;
    // Servers open against `database` (all states), and its max_db_connections (0: none).
    [[nodiscard]] std::pair<int, int> database_connections(std::string_view database);
    // The same for the servers logged in as `user`, and its max_user_connections.
    [[nodiscard]] std::pair<int, int> user_connections(std::string_view user);

private:
    // A pool whose clients wait because max_db_connections or max_user_connections is reached
    // gets a slot from the sibling pool (same database or same user) whose evictable server has
    // been unused longest (PgBouncer's evict_connection / evict_user_connection).
    void rebalance(const std::vector<std::shared_ptr<ServerPool>>& all);
    void roll_stats_period();
    // A pool's place: its clients and its server.
    using Address = std::pair<pool::Key, std::string>; // host as "host:port"

    // Under mutex_: how the pool `key` of `database` connects to `host`, from config_.
    [[nodiscard]] ServerPoolSettings
    settings_for(const pool::Key& key, const DatabaseConfig& database, const Endpoint& host) const;
    [[nodiscard]] int max_user_connections(const std::string& user) const;
    [[nodiscard]] Duration stats_period();

    [[nodiscard]] std::shared_ptr<pool::Caps>
    caps(std::map<std::string, std::shared_ptr<pool::Caps>, std::less<>>& all,
         std::string_view name, int max);

    std::shared_ptr<const Config> config_;
    std::shared_ptr<const AuthUsers> auth_users_;
    Workers& workers_;
    const CurrentTls& tls_;
    std::shared_ptr<pool::ServerIds> ids_ = std::make_shared<pool::ServerIds>();

    std::mutex mutex_;
    std::map<Address, std::shared_ptr<ServerPool>> pools_;
    // By (database, user), shared by the pools of every host; they outlive the pools they count
    // for: a retired pool's successor goes on counting.
    std::map<pool::Key, std::shared_ptr<TrafficStats>> traffic_;
    std::map<std::string, std::shared_ptr<pool::Caps>, std::less<>> database_caps_;
    std::map<std::string, std::shared_ptr<pool::Caps>, std::less<>> user_caps_;

    mutable std::mutex period_mutex_;
    std::map<std::string, TrafficTotals, std::less<>> period_start_;
    std::map<std::string, TrafficTotals, std::less<>> averages_;
};

} // namespace proxy
