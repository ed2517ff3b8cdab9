// The one request of a client that pgmarina may send again, unseen by the client, when the
// server refuses it with 0A000 "cached plan must not change result type" (reference.md 3 step
// 10, pgbouncer#1038): a Bind of a shared statement, prepared on the server before someone
// changed a table under it, that was the whole of an implicit transaction.
//
// PostgreSQL raises that error at the Bind, before any reply to it, and rolls back the implicit
// transaction the Bind opened; nothing else of the request ran. Preparing the statement afresh
// and sending the request again therefore does exactly what the client asked, and the client
// sees the new columns instead of an error that, with statements shared between clients and
// servers, comes even to a client that prepared its statement after the DDL. Inside a
// transaction block the error goes to the client as usual: the block is aborted and only the
// client can decide what to redo.
//
// The kept request is what was written to the server for it: the client's Bind, renamed to the
// statement's server name, then Describe(portal) and Execute messages, then Sync. Anything else
// in the batch (a Parse, a second Bind, Describe(statement), Close, Flush), a request that
// pipelines into another one, a message too long to be held whole, more than `max_request`
// bytes in all, or a Bind with a result format per column (made for the old columns), and
// nothing is kept: the error then reaches the client as before. A request is kept only until the
// client's next message, in one buffer reused from request to request, so an ordinary transaction
// costs a copy of its few small messages, and no allocation once the buffer has grown.
//
// Only decides and keeps bytes; PreparedStatements writes the replay and tells the tracker.
// Not thread-safe: it belongs to one session.
#pragma once

#include "pool/statement_cache.hpp"
#include "wire/framer.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace proxy {

class StalePlanRetry {
public:
    // Requests longer than this are not kept; what a driver sends for one execution of a
    // prepared statement is usually far shorter.
    static constexpr std::size_t max_request = 64 * 1024;

    // Every client message, as the session hands it on (the start of it when it is long), before
    // on_bind() for a Bind. A message that continues the kept request is added to it, a Sync
    // completes it; any other message drops it.
    void on_client(const wire::Framer::Piece& piece);

    // The client's Bind of a shared `statement`, as written to the server (`bind`, renamed and
    // perhaps only the start of it when `whole` is false) and tagged `tag`. It starts a request
    // to keep if it opens the client's batch (`opens_batch`: its previous message was a Sync,
    // Query or FunctionCall, or there was none), so that nothing else runs in its implicit
    // transaction.
    void on_bind(std::span<const std::byte> bind, bool whole, bool opens_batch,
                 pool::StatementPtr statement, std::uint64_t tag);

    // The server refused the request tagged `tag` with a stale plan error while no transaction
    // block was open (its last ReadyForQuery said idle). True if that is the Bind of the kept
    // request, now due(): the error and the ReadyForQuery after it must not reach the client.
    [[nodiscard]] bool on_stale_plan(std::uint64_t tag);

    // A ReadyForQuery from the server. True once after on_stale_plan() said true: it answers
    // the failed request's Sync, which the replay answers again.
    [[nodiscard]] bool on_ready() noexcept;

    // A refused request waits to be written again.
    [[nodiscard]] bool due() const noexcept { return state_ == State::due; }

    struct Replay {
        pool::StatementPtr statement;
        // The messages as first written: the Bind first, the Sync last. Valid until the next
        // on_bind().
        std::span<const std::byte> messages;
    };

    // The due request, which is no longer kept: if it fails again, the error goes to the client.
    // Precondition: due().
    [[nodiscard]] Replay take();

    // The server went back to its pool. A buffer grown by a long request is let go, so that an
    // idle client holds little.
    void reset() noexcept;

private:
    enum class State : std::uint8_t {
        none,      // nothing kept
        recording, // a Bind opened a batch; its Describe and Execute messages are being added
        kept,      // its Sync is written: the whole request can be sent again
        due,       // refused with a stale plan error: to be written again before anything else
    };

    void drop() noexcept;
    [[nodiscard]] bool add(std::span<const std::byte> message);

    State state_ = State::none;
    // on_stale_plan() withheld an error; the ReadyForQuery that follows it is withheld too.
    bool withhold_ready_ = false;
    std::vector<std::byte> request_;
    pool::StatementPtr statement_;
    std::uint64_t tag_ = 0;
};

} // namespace proxy
