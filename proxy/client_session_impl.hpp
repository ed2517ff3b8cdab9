// The session of one client connection (serve_client in client_session.hpp), shared by the
// files that define its parts: client_login.cpp (startup, authentication, the welcome, cancel
// requests), client_session.cpp (the loop of transactions: reading, linking a server,
// forwarding both ways, releasing) and client_server_loss.cpp (waiting out a failover for a
// server, and a server lost in the middle of a transaction). Not for other files.
//
// Thread safety: none; a session lives on one worker for its whole life.
#pragma once

#include "proxy/admin_console.hpp"
#include "proxy/admin_session.hpp"
#include "proxy/cancel_peering.hpp"
#include "proxy/client_activity.hpp"
#include "proxy/client_auth.hpp"
#include "proxy/client_session.hpp"
#include "proxy/client_startup.hpp"
#include "proxy/deadline.hpp"
#include "proxy/first_readable.hpp"
#include "proxy/hba.hpp"
#include "proxy/log.hpp"
#include "proxy/pool_limits.hpp"
#include "proxy/prepared_statements.hpp"
#include "proxy/stream_io.hpp"
#include "proxy/transaction_router.hpp"
#include "wire/be_error.hpp"
#include "wire/be_query.hpp"
#include "wire/be_status.hpp"
#include "wire/fe_query.hpp"
#include "wire/writer.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <optional>
#include <string_view>

namespace proxy {

class ClientSession {
public:
    ClientSession(ClientSocket socket, Runtime& runtime, std::uint64_t id, int worker,
                  std::string peer)
        : client_(std::move(socket)), runtime_(runtime), config_(runtime.config()), id_(id),
          worker_(worker), peer_(std::move(peer)),
          framer_(wire::Phase::startup,
                  wire::Limits{.max_message_size = config_->settings.max_packet_size.bytes}) {}

    ~ClientSession() {
        if (info_) {
            info_->socket = nullptr;
            runtime_.sessions.remove(id_);
        }
        if (counted_) runtime_.clients.fetch_sub(1, std::memory_order_relaxed);
        if (cancel_key_) runtime_.cancels.remove(*cancel_key_);
    }

    asio::awaitable<void> run();

private:
    // ---- Login (client_login.cpp) ----

    asio::awaitable<bool> log_in();

    // The newest 3.x minor we speak is 0; the `_pq_.` options are all unknown to us.
    asio::awaitable<bool> negotiate_protocol();

    asio::awaitable<bool> authenticate();

    // auth_type hba: the method the auth_hba_file gives this connection (hba.hpp), or nullopt
    // once the connection is refused as PostgreSQL refuses it (28000). `known_user`: the user
    // has a secret (for the failure count's bounded labels).
    asio::awaitable<std::optional<AuthType>> hba_method(bool known_user);

    // Only admin_users and stats_users may use the console (reference.md 1.1).
    asio::awaitable<bool> admit_to_console();

    std::shared_ptr<ClientInfo> register_client(pool::Key pool);

    asio::awaitable<void> serve_console();

    // AuthenticationOk is out; the rest comes from the pool, not from a server (reference.md
    // 2.1): its ParameterStatus set with the client's own values where it chose them, our own
    // BackendKeyData, ReadyForQuery.
    asio::awaitable<bool> welcome();

    asio::awaitable<void> forward_cancel(const CancelKey& key);

    // ---- Transactions (client_session.cpp) ----

    // One turn of the loop: read from whoever may speak, forward, release when done. False
    // ends the session.
    asio::awaitable<bool> step();

    using Ready = FirstReadable::Ready;

    // Waits until the client or the server has something to say: inside a transaction the
    // client's next request, a notification or a server's FATAL may come in either order.
    asio::awaitable<Ready> wait_either();

    // How long wait_either() may wait, zero for ever: the rest of query_timeout while the
    // server owes replies, idle_transaction_timeout while the client idles in a transaction.
    Duration deadline() const;

    asio::awaitable<bool> read_client(Duration timeout);

    // The shutdown woke a client idle between transactions (ClientRegistry::close_idle).
    bool woken_for_shutdown(const boost::system::error_code& ec) const;

    asio::awaitable<bool> read_server();

    // Forwards what the client sent, getting a server first if it has none.
    asio::awaitable<bool> forward_client();

    // Gets a server for the transaction `first` starts, on the host the router picks, and
    // brings its settings in line.
    asio::awaitable<bool> link(const wire::Frame& first);

    // Whether the transaction that `first` starts may run on a replica.
    routing::Classification classify(const wire::Frame& first) const;

    // A pipelining client may send its next transaction before the server has answered the
    // current one. On a replica, a request that must run on the primary waits in the framer
    // until the server has answered everything before it. Then, if the transaction is over,
    // the server goes back and the request is routed anew; if not, it is part of the
    // transaction and follows it there.
    bool hold_for_route() const;

    // Forwards what the server sent, as the tracker routes it.
    asio::awaitable<bool> forward_server();

    // What the session learns from a server message on its way: parameter changes (the
    // client saw them, or asked for them through the sync query) and the client's SETs of
    // parameters no ParameterStatus reports, which would otherwise stay on the server for the
    // next client. The sync query's own SETs (route skip) are accounted for in link().
    void observe(const wire::Frame& frame, wire::Route route);

    // See ResponseTracker::stray_ready_possible(): an empty query settles whether a
    // ReadyForQuery is still on its way.
    asio::awaitable<void> probe_stray_ready();

    // Lets the server go when the transaction is over (transaction and statement pooling).
    bool settle();

    pool::Release reset_or_clean() const;

    void release_server(pool::Release how);

    // The session is over: a server in an unknown state is closed, never lent again.
    void finish();

    // Ends the session the way PostgreSQL does: a FATAL ErrorResponse, then close.
    asio::awaitable<void> fail(std::string_view sqlstate, std::string message);

    // ---- A server out of reach or lost (client_server_loss.cpp) ----

    // Takes a server on the host the router picks for the linked_read_only_ transaction. While
    // that host is unknown or unreachable (a failover), waits for the topology to change, up
    // to query_wait_timeout (0: no limit, as PgBouncer's).
    asio::awaitable<bool> acquire_routed();

    // False once `give_up` passed with the topology still at `version`.
    asio::awaitable<bool> topology_changes(std::uint64_t version, pool::TimePoint give_up);

    // The linked server failed mid-transaction: it closed, or a read or write on it failed (a
    // failover stops the primary under its clients). PostgreSQL's own connection would be gone
    // with it; here only the server is. In transaction pooling the client gets an error (08006)
    // for what it was waiting for and its next transaction gets another server, on the new
    // primary once the watcher has found it. In session pooling its session state is lost, and
    // so is its connection, as with PgBouncer.
    asio::awaitable<bool> lose_server();

    // The 08006 error that tells the client its server is gone.
    void tell_loss(wire::Writer& writer);

    // A Query of a client whose transaction block went with its server, answered as PostgreSQL
    // answers in a failed block: ROLLBACK ends it; COMMIT ends it with the error (nothing was
    // committed); anything else is refused (the loss itself first) until the block ends.
    void answer_lost_block(const wire::Frame& query);

    // ReadyForQuery, idle.
    static std::span<const std::byte> ready_idle();

    pool::WaiterId waiter() const { return pool::WaiterId{id_}; }

    std::string name() const;

    ClientStream client_;
    Runtime& runtime_;
    std::shared_ptr<const Config> config_;
    std::uint64_t id_;
    int worker_;
    std::string peer_;
    wire::Framer framer_;
    AcceptedStartup startup_;
    bool counted_ = false;
    std::string end_reason_ = "client unexpected eof";

    // A console client has a console and no pool; everyone else the other way round.
    std::optional<AdminConsole> console_;
    std::shared_ptr<ClientInfo> info_;
    // Reports to SHOW CLIENTS and SHOW STATS, for pool clients.
    std::optional<ClientActivity> activity_;
    std::shared_ptr<ServerPool> pool_;
    PoolMode mode_ = PoolMode::transaction;
    std::shared_ptr<CancelTarget> cancel_target_;
    std::optional<CancelKey> cancel_key_;

    // Picks the host of each transaction; for pool clients.
    std::optional<TransactionRouter> router_;
    // The linked server, while the client has one.
    ServerLease server_;
    // Where it is, and whether its transaction was found read-only (then it wrote nothing).
    routing::Role linked_role_ = routing::Role::unknown;
    bool linked_read_only_ = false;
    // A request waits in the framer until the server has answered what came before it.
    bool held_ = false;
    // The server was lost in the middle of a batch: the client's messages up to its Sync go
    // nowhere, and the Sync is answered with lost_replies_.
    bool skipping_to_sync_ = false;
    std::vector<std::byte> lost_replies_;
    // The server was lost inside the client's transaction block: its Queries are answered as
    // in a failed block until it ends the block (answer_lost_block).
    bool block_lost_ = false;
    // The client has not been told yet that its server was lost.
    bool loss_untold_ = false;
    // A SET ran: the server's settings beyond the tracked ones are the client's now.
    bool server_dirty_ = false;
    // A transaction of this client ended and gave its server back: the client is between
    // transactions.
    bool served_ = false;
    // The rest of a long client message goes nowhere (late CopyData).
    bool dropping_ = false;
    bool long_server_message_forwarded_ = false;
    // The client has the start of a server message whose rest has not come yet.
    bool server_message_open_ = false;
    pool::TimePoint query_started_{};
    std::uint64_t sync_tag_ = 0;
    std::vector<std::byte> sync_query_;
    std::vector<std::byte> probe_;
    // The wait of a linked session for its client or server (wait_either).
    FirstReadable readable_;
    // What one forwarding step writes: views into a framer, plus our own few messages.
    std::vector<asio::const_buffer> out_;
    // Named prepared statements (reference.md 3); none in session pooling or when
    // max_prepared_statements is 0, and then statement names pass through untouched.
    std::optional<PreparedStatements> prepared_;
    std::vector<wire::FakeReply> fakes_;
};

} // namespace proxy
