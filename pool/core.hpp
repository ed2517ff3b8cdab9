// The decisions of one pool, without sockets, timers or threads: events in, actions out, in the
// manner of Boost.MySQL's sansio_connection_node. An Asio driver executes the actions and reports
// what happened; unit tests drive it with a fake clock.
//
// Thread safety: a Core is not thread-safe. Pool limits are global across workers (design.md,
// "Threads"), so clients on every worker use the same Core: the driver holds the pool's lock (or
// runs on its strand) around every call, and executes the returned actions after letting go. The
// shared Caps and ServerIds are atomic and need no lock of their own.
#pragma once

#include "pool/actions.hpp"
#include "pool/caps.hpp"
#include "pool/ids.hpp"
#include "pool/limits.hpp"
#include "pool/server_state.hpp"

#include <boost/intrusive/list.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace pool {

// How the client leaves the server it was linked to (the driver asks wire::ResponseTracker).
enum class Release {
    clean, // ReadyForQuery 'I', nothing outstanding, not in COPY: reusable as it is
    reset, // clean, but run server_reset_query first (session mode, or server_reset_query_always)
    close, // protocol state unknown (mid-transaction, pipeline outstanding): close it
};

// The SHOW POOLS numbers the Core knows (cl_active belongs to the driver, which knows its clients)
// and what metrics need besides.
struct Stats {
    std::size_t cl_waiting = 0;
    std::size_t sv_active = 0;
    std::size_t sv_active_cancel = 0; // cancel requests in flight, see ServerState
    std::size_t sv_being_canceled = 0;
    std::size_t sv_idle = 0;
    std::size_t sv_used = 0;
    std::size_t sv_tested = 0;
    std::size_t sv_login = 0;
    std::size_t sv_closing = 0; // not a SHOW POOLS column
    // How long the oldest waiter has waited: whole seconds, and the microseconds beyond them.
    std::int64_t maxwait = 0;
    std::int64_t maxwait_us = 0;
    // Servers in any state, closing included: what counts against pool_size and the Caps.
    std::size_t servers = 0;

    friend bool operator==(const Stats&, const Stats&) = default;
};

// One server as SHOW SERVERS shows it.
struct ServerView {
    ServerId id{};
    ServerState state = ServerState::login;
    TimePoint opened;               // connect_time
    TimePoint last_used;            // request_time
    std::optional<WaiterId> client; // the linked client, while active or being canceled
    bool close_needed = false;
};

// One (database, user) pool.
//
// Misuse (a report about a server in the wrong state, an unknown id, a duplicate waiter) is a bug
// in the driver and throws std::logic_error, leaving the Core as it was.
class Core {
public:
    Core(Key key, const Limits& limits, std::shared_ptr<Caps> database_caps,
         std::shared_ptr<Caps> user_caps, std::shared_ptr<ServerIds> ids);
    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;
    // Gives back the Caps slots of the servers it still knows; the driver closes those.
    ~Core();

    // --- Clients ---

    // A client needs a server. It gets an idle one at once (Assign), or joins the FIFO of
    // waiters; then the Core checks used servers and opens new ones as far as the limits allow.
    // `worker` is the client's worker thread; an idle server on it is preferred.
    [[nodiscard]] Actions acquire(WaiterId waiter, int worker, TimePoint now);
    // The waiter went away (client disconnected). False if it was not waiting: it has been
    // assigned or failed already, and the driver must release that server.
    bool cancel_wait(WaiterId waiter);
    // The client is done with an active server. Before reuse a server is closed when its
    // server_lifetime is over (spaced like the janitor's) or close_needed is set, waits in
    // being_canceled while cancels for it are in flight, runs the reset query when asked, and is
    // checked first when server_check_delay is 0; then it goes to the first waiter, or idle.
    [[nodiscard]] Actions release(ServerId server, Release how, TimePoint now);

    // --- Reports about servers ---

    // An Open finished: the server is logged in, at ReadyForQuery 'I', living on `worker`.
    // A successful login ends the server_login_retry backoff.
    [[nodiscard]] Actions connected(ServerId server, int worker, TimePoint now);
    // An Open failed (connect error, authentication error, server_connect_timeout). The server is
    // forgotten and no server is opened for server_login_retry; after that one attempt at a time
    // until a login succeeds. Waiters keep waiting (until query_wait_timeout); login_retry_at()
    // tells the driver when the next attempt can happen, should it want to tell them.
    [[nodiscard]] Actions connect_failed(ServerId server, TimePoint now);
    // A Check or Reset passed (ReadyForQuery 'I').
    [[nodiscard]] Actions tested(ServerId server, TimePoint now);
    // The connection is gone: after a Close, or because it died, or because the driver closed it
    // (a failed Check or Reset, an idle server that sent data). Any state but login, which is
    // connect_failed().
    [[nodiscard]] Actions closed(ServerId server, TimePoint now);

    // --- Cancel requests (reference.md 2.4) ---

    // The driver is about to forward a CancelRequest from `client` to `server`. False when the
    // server is no longer linked to that client: its query is over and the server may already
    // serve someone else, so the cancel must be dropped (PgBouncer: "not sending cancel request
    // for client that is now idle"). On true, the server is not reused until end_cancel().
    [[nodiscard]] bool begin_cancel(ServerId server, WaiterId client);
    // A cancel started by begin_cancel() is done (sent, or failed). The server may have closed
    // meanwhile; the count of cancels in flight drops either way.
    [[nodiscard]] Actions end_cancel(ServerId server, TimePoint now);

    // --- Maintenance ---

    // The janitor (PgBouncer runs it about 3 times a second): fail waiters past
    // query_wait_timeout; close unused servers past server_idle_timeout (keeping min_pool_size)
    // or server_lifetime (one per lifetime / pool_size, so that a pool opened at once does not
    // reconnect at once); mark idle servers unused past server_check_delay as used; serve
    // waiters (the reserve may have become usable, a backoff may have ended); open servers up to
    // min_pool_size.
    [[nodiscard]] Actions tick(TimePoint now);
    // Serve waiters again because a slot of a shared Caps may have been freed by another pool.
    [[nodiscard]] Actions retry(TimePoint now);
    // RECONNECT, a config change, a failover: no server may serve another client. Unused servers
    // close now; the others when they come back (PgBouncer's close_needed).
    [[nodiscard]] Actions mark_close_needed();
    // The host is known to be up again (the failover watcher saw it answer): the
    // server_login_retry backoff ends now rather than when it runs out, and waiters get a login.
    [[nodiscard]] Actions retry_login_now(TimePoint now);
    // When the server evict() would close was last used; std::nullopt if there is none. The
    // driver compares this across the pools of a full Caps and evicts from the oldest.
    [[nodiscard]] std::optional<TimePoint> evictable_since() const;
    // Close the least recently used idle server (or used, when nobody waits) to free a Caps slot
    // for another pool.
    [[nodiscard]] Actions evict();

    // --- Observers ---

    [[nodiscard]] const Key& key() const noexcept { return key_; }
    [[nodiscard]] const Limits& limits() const noexcept { return limits_; }
    [[nodiscard]] Stats stats(TimePoint now) const;
    // Every server the Core knows, in no particular order.
    [[nodiscard]] std::vector<ServerView> servers() const;
    // std::nullopt when the Core does not know the server (never opened, or forgotten).
    [[nodiscard]] std::optional<ServerState> state(ServerId server) const;
    // Some waiters have no server coming for them: retry() may help once a Caps slot frees up.
    [[nodiscard]] bool needs_servers() const noexcept;
    // When the backoff after the last failed login ends; std::nullopt once a login succeeds.
    [[nodiscard]] std::optional<TimePoint> login_retry_at() const noexcept;

private:
    // Unlinks itself, so change_state need not find the worker's list to take a server out.
    using WorkerHook = boost::intrusive::list_member_hook<
        boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

    struct Server {
        ServerId id;
        ServerState state = ServerState::login;
        int worker = 0;
        TimePoint opened;    // server_lifetime counts from the Open (PgBouncer connect_time)
        TimePoint last_used; // idle time counts from here (PgBouncer request_time)
        WaiterId client{};   // the linked client; meaningful while active
        int cancels = 0;     // cancel requests in flight against it
        bool close_needed = false;
        bool reset_pending = false; // released with Release::reset, waiting in being_canceled
        boost::intrusive::list_member_hook<> state_hook; // in lists_[state]
        WorkerHook worker_hook;                          // in idle_by_worker_ while idle
    };
    using StateList = boost::intrusive::list<
        Server, boost::intrusive::member_hook<Server, boost::intrusive::list_member_hook<>,
                                              &Server::state_hook>>;
    using WorkerList = boost::intrusive::list<
        Server, boost::intrusive::member_hook<Server, WorkerHook, &Server::worker_hook>,
        boost::intrusive::constant_time_size<false>>;

    struct Waiter {
        WaiterId id;
        int worker = 0;
        TimePoint since;
    };

    // Where a server that can serve again comes from; it decides which release rules apply.
    enum class Origin { login, client, test };

    // The one function that changes a server's state: it moves the server between lists_ (whose
    // sizes are the counts) and idle_by_worker_. std::nullopt forgets the server and gives back
    // the Caps slots that open() took for it before it existed.
    void change_state(Server& server, std::optional<ServerState> to);

    [[nodiscard]] StateList& list(ServerState state) {
        return lists_[static_cast<std::size_t>(state)];
    }
    [[nodiscard]] const StateList& list(ServerState state) const {
        return lists_[static_cast<std::size_t>(state)];
    }
    [[nodiscard]] Server& find(ServerId server, const char* operation);
    static void expect(const Server& server, ServerState state, const char* operation);

    void make_ready(Server& server, Origin origin, TimePoint now, Actions& out);
    void close(Server& server, std::string_view why, Actions& out);
    void assign(Server& server, Waiter waiter, Actions& out);
    void serve(TimePoint now, Actions& out);
    [[nodiscard]] bool open(TimePoint now, std::optional<int> worker, Actions& out);
    [[nodiscard]] Server* pick_idle(int worker);
    [[nodiscard]] const Server* evictable() const;
    [[nodiscard]] std::size_t connected_count() const;
    void remove_waiter(std::list<Waiter>::iterator waiter);

    // Janitor parts (core_janitor.cpp).
    void fail_expired_waiters(TimePoint now, Actions& out);
    void maintain_unused(StateList& servers, TimePoint now, Actions& out);
    void fill_min_pool(TimePoint now, Actions& out);
    [[nodiscard]] bool life_over(const Server& server, TimePoint now) const;
    [[nodiscard]] bool reserve_usable(TimePoint now) const;
    [[nodiscard]] bool backing_off(TimePoint now) const;

    Key key_;
    Limits limits_;
    std::shared_ptr<Caps> database_caps_;
    std::shared_ptr<Caps> user_caps_;
    std::shared_ptr<ServerIds> ids_;

    // Declared before the lists so that it is destroyed after them: the lists unlink their
    // members on destruction, and a member must not be destroyed while linked.
    std::unordered_map<ServerId, Server> servers_;
    // One list per ServerState, in order of entry: back() is the most recent.
    std::array<StateList, server_state_count> lists_;
    // The idle servers again, by worker, in order of entry.
    std::map<int, WorkerList> idle_by_worker_;

    // FIFO: front() has waited longest.
    std::list<Waiter> waiters_;
    std::unordered_map<WaiterId, std::list<Waiter>::iterator> waiter_index_;

    std::size_t cancels_in_flight_ = 0;
    // Set by a failed login, cleared by a successful one (PgBouncer last_connect_failed).
    std::optional<TimePoint> login_failed_at_;
    // The last close for server_lifetime (PgBouncer last_lifetime_disconnect).
    std::optional<TimePoint> last_lifetime_close_;
};

} // namespace pool
