// The Asio driver of one pool::Core: it executes the Core's actions on real connections and
// reports back (design.md, "pool/": "a thin Asio driver executes the actions").
//
// The Core decides (who gets which server, when to open, close, check or reset); this class
// does the I/O: it logs servers in, hands them to waiting sessions on their own workers, runs
// check and reset queries, and closes what the Core closes. It lives in proxy/ rather than
// pool/ because its connections need the configuration, the login and the parameter cache,
// which are proxy matters; pool/ stays sans-io.
//
// Thread safety: every public member may be called from any worker. One mutex guards the
// Core, the parked connections and the waiting sessions; it is never held across I/O or while
// executing actions. A connection handed out by acquire() belongs to that session alone until
// release().
#pragma once

#include "pool/core.hpp"
#include "proxy/asio.hpp"
#include "proxy/config.hpp"
#include "proxy/server_conn.hpp"
#include "proxy/server_login.hpp"
#include "proxy/tls_context.hpp"
#include "proxy/traffic_stats.hpp"

#include <boost/container/flat_map.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace proxy {

// The executors of the worker threads, by worker number (the `worker` of pool::Core).
struct Workers {
    std::vector<asio::any_io_executor> executors;
    // Spreads work that belongs to no client (min_pool_size logins) over the workers.
    std::atomic<std::size_t> next{0};

    [[nodiscard]] int pick() {
        return static_cast<int>(next.fetch_add(1, std::memory_order_relaxed) % executors.size());
    }
};

// How one pool's servers are reached and kept; fixed for the pool's life.
struct ServerPoolSettings {
    pool::Limits limits;
    Endpoint host;
    ServerCredentials credentials;
    Settings global;         // server_connect_timeout, max_packet_size, TCP keepalive
    std::string reset_query; // "" runs none
    std::string check_query; // "" sends an empty query, as PgBouncer's "<empty>"

    // What a reload compares; the SCRAM keys clients revealed are learnt, not configured.
    friend bool operator==(const ServerPoolSettings& a, const ServerPoolSettings& b) {
        return a.limits == b.limits && a.host == b.host &&
               a.credentials.user == b.credentials.user &&
               a.credentials.database == b.credentials.database &&
               a.credentials.secret == b.credentials.secret && a.global == b.global &&
               a.reset_query == b.reset_query && a.check_query == b.check_query;
    }
};

// What SHOW SERVERS says about a connection besides its state: known once it has logged in.
// The last two are as of its last release (a lent connection belongs to its session alone).
struct ServerFacts {
    tcp::endpoint remote;
    tcp::endpoint local;
    std::int32_t process_id = 0; // from BackendKeyData: SHOW SERVERS remote_pid
    std::size_t prepared_statements = 0;
    std::string application_name;
    std::string tls; // as ClientInfo::tls: empty in plaintext
};

struct ServerRow {
    pool::ServerView view;
    std::optional<ServerFacts> facts; // std::nullopt while logging in
};

// One pool at one moment, for the console and the metrics.
struct PoolSnapshot {
    pool::Key key;
    pool::Stats stats;
    std::vector<ServerRow> servers;
    TrafficTotals traffic;
};

class ServerPool;

// A server lent to one client (design.md: the pool's Lease). Move-only. release() hands it back
// the way the ResponseTracker allows; a lease dropped without release() (a session ended by an
// exception) closes the server, which is never lent again in an unknown protocol state.
class ServerLease {
public:
    ServerLease() = default;
    ServerLease(std::shared_ptr<ServerPool> pool, std::unique_ptr<ServerConn> server) noexcept
        : pool_(std::move(pool)), server_(std::move(server)) {}
    ServerLease(ServerLease&&) noexcept = default;
    ServerLease& operator=(ServerLease&& other) noexcept;
    ServerLease(const ServerLease&) = delete;
    ServerLease& operator=(const ServerLease&) = delete;
    ~ServerLease() { release(pool::Release::close); }

    [[nodiscard]] explicit operator bool() const noexcept { return server_ != nullptr; }
    [[nodiscard]] ServerConn& operator*() const noexcept { return *server_; }
    [[nodiscard]] ServerConn* operator->() const noexcept { return server_.get(); }

    // Gives the server back (see pool::Release); the lease is empty afterwards.
    void release(pool::Release how);

private:
    std::shared_ptr<ServerPool> pool_;
    std::unique_ptr<ServerConn> server_;
};

using AcquireResult = boost::system::result<ServerLease, ServerLoginError>;

class ServerPool : public std::enable_shared_from_this<ServerPool> {
public:
    ServerPool(pool::Key key, ServerPoolSettings settings, std::shared_ptr<TrafficStats> traffic,
               std::shared_ptr<pool::Caps> db_caps, std::shared_ptr<pool::Caps> user_caps,
               std::shared_ptr<pool::ServerIds> ids, Workers& workers, const CurrentTls& tls);
    ServerPool(const ServerPool&) = delete;
    ServerPool& operator=(const ServerPool&) = delete;

    // A server for `client`, bound to the caller's executor, ready for a transaction: an idle
    // one, or one opened or freed later. Fails when query_wait_timeout passes, or when a login
    // fails while the pool has no server at all (the client gets the server's reason at once
    // instead of waiting for the timeout). An idle server found closed (its backend terminated,
    // or the whole host down) is closed and another taken; `went_away` is then called, as the
    // caller's hint that the host may be failing.
    [[nodiscard]] asio::awaitable<AcquireResult>
    acquire(pool::WaiterId client, int worker, const std::function<void()>& went_away = {});

    // The client is done with `server` (see pool::Release for `how`); ServerLease calls it.
    void release(std::unique_ptr<ServerConn> server, pool::Release how);

    // CancelRequest bookkeeping (pool::Core::begin_cancel / end_cancel).
    [[nodiscard]] bool begin_cancel(pool::ServerId server, pool::WaiterId client);
    void end_cancel(pool::ServerId server);

    // The janitor's periodic call: timeouts, min_pool_size, waiters a shared cap kept waiting.
    void tick();

    // Sharing max_db_connections / max_user_connections with other pools (pool::Caps): this
    // pool has waiters no server is coming for; when its least recently used evictable server
    // was last used; close that server to free a slot for a sibling pool.
    [[nodiscard]] bool needs_servers() const;
    [[nodiscard]] std::optional<pool::TimePoint> evictable_since() const;
    void evict();

    // The ParameterStatus set of the first server that logged in (PgBouncer's pool varcache),
    // which every client of the pool is welcomed with; empty until one has.
    [[nodiscard]] std::vector<ServerParameter> welcome_parameters() const;

    // A client proved it knows the user's password: with a SCRAM secret in the configuration,
    // the keys (or the password) it revealed let servers log in too (SCRAM pass-through).
    // `secret` is in any form ServerCredentials::secret takes: the password the client sent, or
    // the secret it was checked against (auth_query's, which the pool has no other way to know).
    void learn_credentials(const std::optional<std::string>& secret,
                           const std::optional<ScramKeys>& scram_keys);

    [[nodiscard]] PoolSnapshot snapshot() const;
    // Servers lent to clients now (load_balance = "least_connections").
    [[nodiscard]] int busy() const;
    // RECONNECT: no server serves another client; unused ones close now (Core::mark_close_needed).
    void close_when_released();
    // The watcher saw the host answer again: a login failure no longer holds clients back
    // (Core::retry_login_now).
    void retry_login_now();

    [[nodiscard]] const pool::Key& key() const noexcept { return key_; }
    [[nodiscard]] const Endpoint& host() const noexcept { return settings_.host; }
    // The last login failed and no login has worked since.
    [[nodiscard]] bool login_failing() const;
    // SHOW STATS counters of this pool's clients.
    [[nodiscard]] TrafficStats& traffic() noexcept { return *traffic_; }
    [[nodiscard]] const ServerPoolSettings& settings() const noexcept { return settings_; }

    // A reload changed this pool's settings: its servers close as they come back, and its
    // clients move to the pool that replaces it at their next transaction.
    void retire();
    [[nodiscard]] bool retired() const noexcept { return retired_.load(std::memory_order_acquire); }

private:
    struct WaitSlot;
    // What a waiting session is handed: a server, or why none comes.
    using Delivery = boost::system::result<std::unique_ptr<ServerConn>, ServerLoginError>;

    void execute(pool::Actions actions, const std::shared_ptr<WaitSlot>& own = nullptr);
    void deliver(const std::shared_ptr<WaitSlot>& slot, Delivery delivery,
                 const std::shared_ptr<WaitSlot>& own);
    // Waiters would wait for query_wait_timeout only to be told nothing came: with no server
    // left after a failed login, they get its error now.
    void fail_waiters_if_serverless(const ServerLoginError& error);
    asio::awaitable<void> log_in(pool::ServerId id, int worker);
    // Runs server_check_query or server_reset_query on a parked connection (Check, Reset).
    void maintain(pool::ServerId id, const std::string& sql);
    asio::awaitable<void> run_maintenance(std::unique_ptr<ServerConn> server, std::string sql);
    [[nodiscard]] std::unique_ptr<ServerConn> unpark(pool::ServerId id);
    // Under mutex_: the connection comes back to the pool, or is gone.
    void record_facts(const ServerConn& server);
    [[nodiscard]] pool::Actions forget(pool::ServerId id);

    const pool::Key key_;
    const std::string name_; // "app/alice", for log lines
    const ServerPoolSettings settings_;
    Workers& workers_;
    const CurrentTls& tls_;

    mutable std::mutex mutex_;
    pool::Core core_;
    // Connections the Core counts as idle, used, closing or (between the call that returns a
    // Check, Reset or Close and its execution) tested: nobody does I/O on them. A flat map: as
    // many entries as the pool has servers, and no allocation when one is parked again.
    boost::container::flat_map<pool::ServerId, std::unique_ptr<ServerConn>> parked_;
    std::unordered_map<pool::WaiterId, std::shared_ptr<WaitSlot>> waiting_;
    std::unordered_map<pool::ServerId, ServerFacts> facts_;
    std::vector<ServerParameter> welcome_;
    // Why the last login failed, while the Core backs off (server_login_retry): new clients of
    // a pool without servers get it at once, as PgBouncer's "server login has been failing".
    std::optional<ServerLoginError> login_error_;
    ServerCredentials credentials_; // settings_.credentials plus what clients revealed
    std::shared_ptr<TrafficStats> traffic_;
    std::atomic<bool> retired_{false};
};

} // namespace proxy
