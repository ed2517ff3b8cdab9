// What every session on every worker shares for the life of the process.
//
// Thread safety: config(), auth_users() and hba_rules() return immutable snapshots; `tls`,
// `pools`, `auth_queries`, `cancels`, `statements`, `sessions`, `metrics` and `switches` are
// thread-safe; the counters are atomic. `workers` is filled before any worker runs and not
// changed after.
#pragma once

#include "pool/statement_cache.hpp"
#include "proxy/auth_file.hpp"
#include "proxy/auth_query.hpp"
#include "proxy/cancel_registry.hpp"
#include "proxy/client_registry.hpp"
#include "proxy/config.hpp"
#include "proxy/hba.hpp"
#include "proxy/host_watch.hpp"
#include "proxy/metrics.hpp"
#include "proxy/pools.hpp"
#include "proxy/server_pool.hpp"
#include "proxy/shutdown.hpp"
#include "proxy/switches.hpp"
#include "proxy/tls_context.hpp"
#include "routing/topology.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>

namespace proxy {

struct Runtime {
    Runtime(std::shared_ptr<const Config> config, std::shared_ptr<const AuthUsers> auth_users,
            std::shared_ptr<const HbaRules> hba_rules,
            std::shared_ptr<const TlsContexts> tls_contexts,
            std::vector<asio::any_io_executor> executors)
        : workers{std::move(executors)}, tls(std::move(tls_contexts)),
          pools(config, auth_users, workers, tls), auth_queries(pools.server_ids(), tls),
          host_watch(config, *auth_users, topology, pools, metrics), config_(std::move(config)),
          auth_users_(std::move(auth_users)), hba_rules_(std::move(hba_rules)) {}

    // The configuration, users and auth_hba_file rules in force. RELOAD and SET replace them; a
    // session keeps the snapshot it started with, new sessions get the new one.
    [[nodiscard]] std::shared_ptr<const Config> config() const {
        std::lock_guard lock{config_mutex_};
        return config_;
    }
    [[nodiscard]] std::shared_ptr<const AuthUsers> auth_users() const {
        std::lock_guard lock{config_mutex_};
        return auth_users_;
    }
    // Never null; empty unless auth_type is hba.
    [[nodiscard]] std::shared_ptr<const HbaRules> hba_rules() const {
        std::lock_guard lock{config_mutex_};
        return hba_rules_;
    }
    // Puts `config`, `auth_users` and `hba_rules` in force, in the pools and auth_query sources
    // too.
    void replace_config(std::shared_ptr<const Config> config,
                        std::shared_ptr<const AuthUsers> auth_users,
                        std::shared_ptr<const HbaRules> hba_rules) {
        pools.reconfigure(config, auth_users);
        auth_queries.reconfigure(*config, *auth_users);
        host_watch.reconfigure(config, *auth_users);
        std::lock_guard lock{config_mutex_};
        config_ = std::move(config);
        auth_users_ = std::move(auth_users);
        hba_rules_ = std::move(hba_rules);
    }

    Workers workers;
    // The OpenSSL contexts of the TLS settings in force; RELOAD rebuilds them.
    CurrentTls tls;
    Pools pools;
    // Secrets of users the configuration does not list, looked up with auth_query.
    AuthQueries auth_queries;
    CancelRegistry cancels;
    // Every distinct named statement clients prepared, as PGMARINA_<n> (reference.md 3 step 2).
    pool::StatementRegistry statements;
    // Ids name clients in logs and SHOW CLIENTS, so they are unique across workers.
    std::atomic<std::uint64_t> next_client_id{1};
    // Client connections past their startup packet, for max_client_conn.
    std::atomic<int> clients{0};
    // Clients past their login, for the console (SHOW CLIENTS, KILL_CLIENT).
    ClientRegistry sessions;
    // pgmarina's own Prometheus families (the exporter's come from the console's tables).
    Metrics metrics;
    // PAUSE, DISABLE, SUSPEND.
    Switches switches;
    // Each database's hosts as the failover watcher last saw them (or as configured, without
    // one): which is the primary, which replicas are usable. Sessions route by it.
    routing::TopologyCell topology;
    // Where round-robin balancing stands, shared by every session (routing::route's `turn`).
    std::atomic<std::uint64_t> route_turns{0};
    // SHUTDOWN from the console. Set by run() before any worker runs.
    std::function<void(ShutdownMode)> shutdown;
    // A graceful shutdown is under way (shutdown.hpp): /readyz says no. Waiting for clients,
    // they are closed at a transaction boundary (closing_clients); waiting for servers, logins
    // are refused (refusing_logins).
    std::atomic<bool> shutting_down{false};
    std::atomic<bool> closing_clients{false};
    std::atomic<bool> refusing_logins{false};
    // Publishes `topology`. Last: its thread uses the members above until it is destroyed.
    HostWatch host_watch;

private:
    mutable std::mutex config_mutex_;
    std::shared_ptr<const Config> config_;
    std::shared_ptr<const AuthUsers> auth_users_;
    std::shared_ptr<const HbaRules> hba_rules_;
};

} // namespace proxy
