#pragma once

// Which replies the server still owes, and to whom (PgBouncer's per-server
// `outstanding_requests`, reference.md 2.3): the state machine that tells a session where each
// server message goes and when the server may be handed to another client (reference.md 2.2).

#include "wire/be_query.hpp"
#include "wire/be_status.hpp"
#include "wire/frame.hpp"

#include <boost/circular_buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace wire {

// Where the replies to a request sent to the server go.
enum class Route : std::uint8_t {
    forward, // the client's request, perhaps rewritten: its replies go to the client
    skip,    // the proxy's own request (RA_SKIP): its replies are swallowed
};

// A reply the proxy makes up for a client request it answers itself instead of sending it
// (RA_FAKE): a Parse of a statement already prepared on this server, a Close of a statement the
// server keeps for other clients (reference.md 3). Both replies are bodiless; the value is the
// type byte.
enum class FakeReply : char {
    parse_complete = be::ParseComplete::type,
    close_complete = be::CloseComplete::type,
};

// What to do with one message read from the server. The spans point into the tracker and stay
// valid until its next call.
struct Disposition {
    Route route = Route::forward;
    // NoticeResponse, NotificationResponse or ParameterStatus: may come at any time and changes
    // nothing here ("Asynchronous Operations"); the session still updates its ParameterStatus
    // cache from it whatever the route.
    bool asynchronous = false;
    // Replies to write to the client right after this message (whether or not it is itself
    // forwarded), in order.
    std::span<const FakeReply> fakes;
    // Tags of requests that took no effect: the server refused them (ErrorResponse while they
    // were being answered) or skipped them after an earlier error.
    std::span<const std::uint64_t> failed;
};

// The session tells the tracker, in the order things happen on one server connection, about
// every message written to the server (on_frontend), every client request the proxy answers
// itself (absorb), and every message read from the server (on_backend), and writes what
// on_backend says to the client. Only type bytes are read, plus Describe's kind and
// ReadyForQuery's status: no allocation per message once its buffers have grown to the deepest
// pipeline seen, so one tracker serves every client the server is lent to.
//
// The tracker mirrors how PostgreSQL reads its input: in order, each request answered in full
// before the next; after an error in an extended-query message everything up to the next Sync
// is discarded ("Extended Query"); Sync and Flush are ignored during COPY FROM STDIN ("COPY
// Operations"). A server that breaks this model makes the tracker desynchronized for good: the
// session must close that server rather than lend it to anyone else.
//
// In a session's loop:
//     forward a client message:  server.write(m.raw); tracker.on_frontend(m);
//     inject one:                server.write(bytes); tracker.on_frontend(m, Route::skip, tag);
//     answer one itself:         client.write(tracker.absorb(FakeReply::parse_complete));
//     read m from the server:    d = tracker.on_backend(m);
//                                if (d.route == Route::forward) client.write(m.raw);
//                                client.write(d.fakes); uncache(d.failed);
//     after each of these:       if (tracker.desynchronized()) close the server;
//                                else if (tracker.releasable()) release it.
//
// Not thread-safe: it belongs to the session that holds the server.
class ResponseTracker {
public:
    // Records a message as it is written to the server. `route` says where its replies go; a
    // nonzero `tag` is reported in Disposition::failed if the request takes no effect (the
    // session tags the Parse and Close messages whose effect it caches). Returns false if the
    // server will discard the message unanswered, because it is skipping to the next Sync after
    // an error: a tagged request then took no effect either. Flush and Terminate, never
    // answered, change nothing.
    bool on_frontend(const Frame& message, Route route = Route::forward, std::uint64_t tag = 0);

    // Records a client Parse or Close that the proxy answers itself rather than sending. Returns
    // the replies to write to the client now: this one if nothing the server owes comes before
    // it, none if it will follow a reply still to come (an on_backend() hands it out then), none
    // either if the server would have skipped the request after an error (skipping_to_sync()
    // tells that case apart beforehand). A nonzero `tag` is reported in Disposition::failed if
    // an error before its turn drops it, as for on_frontend().
    [[nodiscard]] std::span<const FakeReply> absorb(FakeReply reply, std::uint64_t tag = 0);

    // After an error in an extended-query message, until the client's next Sync is written: the
    // server discards what is written now, and a request absorbed now takes no effect either.
    [[nodiscard]] bool skipping_to_sync() const noexcept { return skipping_; }

    // Classifies a message read from the server and moves the state along.
    [[nodiscard]] Disposition on_backend(const Frame& message);

    // The server can go back to its pool: its last ReadyForQuery said idle, it owes no reply,
    // no extended-query batch is open (Flush without Sync), the client is not sending COPY data
    // (reference.md 2.2) and nothing is uncertain. The tracker is then as good as new. May
    // change after any call, including on_frontend() (the client's CopyDone).
    [[nodiscard]] bool releasable() const noexcept;

    // The server owes replies to requests already written (query time ends when this turns
    // false, reference.md 2.2).
    [[nodiscard]] bool awaiting_replies() const noexcept;

    // Between CopyInResponse (or CopyBothResponse) and the client's CopyDone, CopyFail or next
    // request. PostgreSQL may answer ReadyForQuery before it has read all of the client's
    // CopyData, so a server is not releasable while this holds (reference.md 2.3).
    [[nodiscard]] bool client_in_copy() const noexcept { return client_in_copy_; }

    // A COPY FROM STDIN failed, and PostgreSQL may or may not have ignored Syncs the client sent
    // with it: ignored if it failed at the client's data, answered if it failed before reading
    // them (a BEFORE STATEMENT trigger, a view). The replies look alike, so the server may
    // still send a ReadyForQuery nobody waits for, and is not releasable. The next reply that
    // is not ReadyForQuery settles it; a session with an idle client can write an empty Query
    // with Route::skip (EmptyQueryResponse, ReadyForQuery). Until then the tracker assumes the
    // Syncs were ignored: a fake queued behind them would, in the rarer case, reach the client
    // one ReadyForQuery early.
    [[nodiscard]] bool stray_ready_possible() const noexcept { return unconfirmed_syncs_ > 0; }

    // ReadyForQuery messages the client still waits for: one per Sync, Query or FunctionCall
    // written for it and not answered yet. What a session owes the client when its server is
    // lost mid-transaction.
    [[nodiscard]] std::size_t ready_owed() const noexcept;
    // The client's last message was an extended-query one with no Sync after it yet: a server
    // lost now leaves the client in the middle of that batch.
    [[nodiscard]] bool inside_batch() const noexcept;

    // From the last ReadyForQuery: statement pooling refuses anything but idle.
    [[nodiscard]] be::TransactionStatus transaction_status() const noexcept { return status_; }

    // The server sent something the model cannot explain, or something it can explain in two
    // ways that answer different requests. Sticky: the other calls no longer mean anything.
    [[nodiscard]] bool desynchronized() const noexcept { return desynchronized_; }

private:
    // The messages the server answers, or that shape how it reads the others.
    enum class Request : std::uint8_t {
        // Extended query: each answered by its own reply, or by ErrorResponse, after which the
        // server skips to the next Sync.
        parse,
        bind,
        describe_statement,
        describe_portal,
        execute,
        close,
        // Answered with ReadyForQuery.
        sync,
        query,
        function_call,
        // The client's copy stream: no reply of its own; dropped by the server outside COPY.
        copy_data, // one entry stands for consecutive CopyData messages
        copy_done,
        copy_fail,
        // Answered by the proxy: never reaches the server.
        absorbed,
    };

    // How far the server has got in answering the request in progress.
    enum class Phase : std::uint8_t {
        sent,          // nothing received yet
        described,     // Describe(S): ParameterDescription came; RowDescription or NoData next
        rows,          // Execute: DataRow came; more, then CommandComplete or PortalSuspended
        statements,    // Query: a statement's replies came; more statements or ReadyForQuery
        copy_in,       // reading the client's copy stream until CopyDone, CopyFail or error
        copy_out,      // sending CopyData until CopyDone
        copy_both,     // streaming replication: CopyData both ways
        copy_finished, // the copy ended; CommandComplete next
        ending,        // only ReadyForQuery left (after an error, or FunctionCallResponse)
    };

    struct Entry {
        Request request = Request::sync;
        Route route = Route::forward;
        FakeReply fake = FakeReply::parse_complete; // for Request::absorbed
        std::uint64_t tag = 0;
    };

    [[nodiscard]] static std::optional<Request> request_of(const Frame& message) noexcept;
    [[nodiscard]] static bool is_copy_message(Request request) noexcept;
    [[nodiscard]] static bool ends_copy_stream(Request request) noexcept;
    [[nodiscard]] static bool is_extended(Request request) noexcept;

    void enqueue(const Entry& entry);
    void advance();
    void complete();
    [[nodiscard]] bool replied(char type);
    [[nodiscard]] bool start_copy(char type);
    [[nodiscard]] bool end_copy_in();
    [[nodiscard]] std::optional<Route> fail();
    [[nodiscard]] bool drop_failed_copy_stream();
    [[nodiscard]] std::optional<bool> skip_to_sync();
    [[nodiscard]] std::optional<Route> ready_for_query(const Frame& message);
    [[nodiscard]] bool awaits_ready() const noexcept;
    void desynchronize() noexcept;
    [[nodiscard]] Disposition disposition(Route route, bool asynchronous = false) const noexcept;

    // Requests written (or absorbed) after the one in progress, oldest first. Between calls,
    // when nothing is in progress nothing is pending either.
    boost::circular_buffer<Entry> pending_;
    std::optional<Entry> active_; // the request the server is answering
    Phase phase_ = Phase::sent;

    // Scratch space behind the spans handed out by the last call.
    std::vector<FakeReply> fakes_;
    std::vector<std::uint64_t> failed_;

    be::TransactionStatus status_ = be::TransactionStatus::idle;
    // ReadyForQuery messages that may still come for Syncs that a failed COPY FROM STDIN may or
    // may not have swallowed; they come before any other reply.
    std::size_t unconfirmed_syncs_ = 0;
    // After an error in an extended-query message with no Sync written yet: the server
    // discards everything the client sends until its Sync.
    bool skipping_ = false;
    // The last request the server finished was an extended-query message: it is inside an
    // implicit transaction (and may hold the unnamed portal) until a Sync.
    bool batch_open_ = false;
    bool client_in_copy_ = false;
    bool desynchronized_ = false;
};

} // namespace wire
