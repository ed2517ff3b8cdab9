// Named prepared statements in transaction and statement pooling (issue 5; PgBouncer 1.21's
// max_prepared_statements, reference.md 3): one client's side of the statement cache.
//
// A driver prepares "s1" on the server it has now and binds it on whatever server it gets
// next. So client names never reach a server: a named Parse becomes Parse(PGMARINA_<n>), shared
// by every client that prepares the same text and parameter types (pool::StatementRegistry); a
// Bind or Describe of it is renamed, after a Parse of our own when the server it landed on lacks
// the statement. What the client sees stays what PostgreSQL would have sent: ParseComplete and
// CloseComplete the server was never asked for are made up in their place in the reply stream
// (wire::ResponseTracker::absorb), the replies to our own messages are swallowed (Route::skip),
// and a request that failed is undone in the caches (wire::Disposition::failed). A request that
// failed only because its statement went stale under a schema change is sent again, once, when
// that is safe (StalePlanRetry).
//
// The session calls, in the order things happen on the linked server:
//     begin_step()        before forwarding what the client sent
//     on_client()         for each client message, before forwarding it untouched
//     due_closes()        once the client's messages are out: Close(S) to write after them
//     on_server()         for each server message, with its Disposition; true: withhold it
//     due_closes()        again once the server's replies are out
//     on_released()       when the server goes back to its pool
//
// Unnamed statements and portals pass through untouched, and so does everything in session
// pooling (the session then has no PreparedStatements). Not thread-safe: it belongs to one
// session.
#pragma once

#include "pool/statement_cache.hpp"
#include "proxy/asio.hpp"
#include "proxy/server_conn.hpp"
#include "proxy/server_pool.hpp"
#include "proxy/stale_plan_retry.hpp"
#include "wire/framer.hpp"
#include "wire/response_tracker.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace proxy {

// How many bytes of the next client message the session must hold before handing it on: all of
// a Parse (its text is the cache key), Describe or Close (renamed whole), up to `whole`
// (max_packet_size, which the framer enforces anyway); `hold` of anything else. A Bind can be
// renamed from its start, so its parameter values still stream through.
[[nodiscard]] std::size_t message_hold(std::optional<char> type, std::size_t hold,
                                       std::size_t whole) noexcept;

// The error a server answers a Bind with when a statement it prepared before a schema change
// would now return other columns (reference.md 3 step 10, pgbouncer#1038).
[[nodiscard]] bool is_stale_plan_error(const wire::Frame& frame);

class PreparedStatements {
public:
    PreparedStatements(pool::StatementRegistry& registry, TrafficStats& stats)
        : registry_(registry), stats_(stats) {}

    // Where on_client() puts what it writes: views into this object (valid until the next
    // begin_step()) for the server, replies made up for the client.
    struct Writes {
        std::vector<asio::const_buffer>& server;
        std::vector<wire::FakeReply>& client;
    };

    // The views handed out by on_client() have been written.
    void begin_step() { messages_.clear(); }

    // A client message (a whole one or the start of a long one) on its way to `server`. True if
    // it was handled here: what it became is in `out` and in the tracker. False: the session
    // forwards it untouched as usual.
    [[nodiscard]] bool on_client(const wire::Framer::Piece& piece, ServerConn& server, Writes out);

    // A server message and what the tracker made of it; `whole` unless it is the start of a
    // long message. True if the message must not reach the client even though the tracker
    // routes it there: the stale plan error of a request that is sent again, and the
    // ReadyForQuery after it.
    [[nodiscard]] bool on_server(const wire::Frame& frame, bool whole,
                                 const wire::Disposition& disposition, ServerConn& server);

    // What to write to the server before anything else: a request refused for a stale plan,
    // sent again after a Close and a Parse of its statement (replies routed as the first time,
    // the Close's and Parse's swallowed); then Close(S) messages of statements dropped from the
    // server's cache while still prepared on it, followed by a Sync, all with their replies
    // swallowed. The Closes wait until they can be written: not inside an extended-query batch
    // of the client, nor while the server skips to a Sync (it would skip them too). Valid until
    // the next call.
    [[nodiscard]] std::span<const std::byte> due_closes(ServerConn& server);

    // The server goes back to its pool: the transaction is over, or the server is closed.
    void on_released(ServerConn& server);

    // The client's prepared statements, for SHOW CLIENTS.
    [[nodiscard]] std::size_t size() const noexcept { return client_.size(); }
    // The text of the client's statement `name`, for routing a transaction that binds it.
    [[nodiscard]] std::optional<std::string_view> query_of(std::string_view name) const {
        const auto* statement = client_.find(name);
        if (!statement) return std::nullopt;
        return (*statement)->query();
    }

private:
    // What a tagged request undoes if it takes no effect (wire::Disposition::failed).
    struct Undo {
        enum class Kind : std::uint8_t {
            parse,        // Parse(PGMARINA_n): the server lacks it; a client Parse is unmapped
            client_parse, // a client Parse answered here: the client mapping goes
            close,        // Close(PGMARINA_n): the server still has it
            client_close, // a client Close(S) answered here: the client mapping comes back
            probe,        // the Parse that makes the server refuse a duplicate name (42P05)
            use,          // a Bind or Describe(S) renamed: names the statement of an error
        };
        Kind kind;
        pool::StatementPtr statement; // null for probe
        std::string client_name;      // for parse (empty if injected), client_*, probe
    };

    // A statement to close on the server once a Close can be written (due_closes()).
    struct DueClose {
        std::string server_name;
        pool::StatementPtr statement; // null for a probe's name
    };

    bool parse(const wire::Framer::Piece& piece, ServerConn& server, Writes out);
    bool bind(const wire::Framer::Piece& piece, bool opens_batch, ServerConn& server, Writes out);
    bool describe(const wire::Frame& frame, ServerConn& server, Writes out);
    bool close(const wire::Frame& frame, ServerConn& server, Writes out);
    void duplicate(const wire::Framer::Piece& piece, std::string_view name, ServerConn& server,
                   Writes out);

    // Makes `statement` usable by the next message written to `server`: closes what the LRU
    // evicts (appended to `buffer`, or written through `out`), and prepares it if the server
    // lacks it. True if a Parse is needed.
    bool use(const pool::StatementPtr& statement, ServerConn& server, Writes out);
    bool use(const pool::StatementPtr& statement, ServerConn& server,
             std::vector<std::byte>& buffer);
    void replay(ServerConn& server);
    void send_parse(const pool::StatementPtr& statement, wire::Route route, Undo undo,
                    ServerConn& server, Writes out);
    void send_close(std::string_view server_name, pool::StatementPtr statement, ServerConn& server,
                    std::vector<std::byte>& buffer, std::size_t at);
    void absorb(wire::FakeReply reply, Undo undo, ServerConn& server, Writes out);
    // Records `message` (which must stay where it is until written) with the tracker; returns
    // its tag, 0 without `undo`.
    std::uint64_t send(std::vector<std::byte> message, wire::Route route, std::optional<Undo> undo,
                       ServerConn& server, Writes out);
    // Records a message about to be written with the tracker; returns its tag, 0 without `undo`.
    std::uint64_t track(std::span<const std::byte> message, wire::Route route,
                        std::optional<Undo> undo, ServerConn& server);
    [[nodiscard]] std::uint64_t remember(Undo undo);
    void failed(std::uint64_t tag, ServerConn& server);

    pool::StatementRegistry& registry_;
    TrafficStats& stats_;
    pool::ClientStatements client_;
    // Requests written since the server was last released whose failure undoes something.
    std::unordered_map<std::uint64_t, Undo> tags_;
    // Above the session's own tags (its parameter sync query), so that both can share a tracker.
    std::uint64_t next_tag_ = std::uint64_t{1} << 62;
    std::vector<DueClose> due_;
    // The client's last message was an extended-query message other than Sync: its implicit
    // transaction (and unnamed portal) would not survive a Sync of ours.
    bool batch_open_ = false;
    // Our messages of the current step; each keeps its heap buffer when the outer vector grows.
    std::vector<std::vector<std::byte>> messages_;
    std::vector<std::byte> closes_;
    StalePlanRetry retry_;
};

} // namespace proxy
