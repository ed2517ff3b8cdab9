// Named prepared statements that work in transaction pooling (issue 5): PgBouncer 1.21's design
// (reference.md 3) as three pure objects. A process-wide StatementRegistry gives every distinct
// statement one server-side name; each client maps its own names to those statements
// (ClientStatements); each server connection remembers, in LRU order, which of them it has
// prepared (ServerStatements). The session rewrites Parse/Bind/Describe/Close with them; these
// classes only decide, they send nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pool {

// Unique in the process and never reused, even after its statement is released: a server may
// not confuse an old PGMARINA_<n> with a new statement.
enum class StatementId : std::uint64_t {};

// One distinct statement: the bytes of a Parse after its name (query String, Int16 count,
// parameter type OIDs; wire::fe::ParseView::query_and_types). Same text with other parameter
// types is another statement, as it is to PostgreSQL. Immutable once interned.
class Statement {
public:
    [[nodiscard]] StatementId id() const noexcept { return id_; }
    // "PGMARINA_<id>": what the servers know it as (reference.md 3 step 2, with our prefix).
    [[nodiscard]] const std::string& server_name() const noexcept { return server_name_; }
    // What a Parse re-sent to another server carries after server_name().
    [[nodiscard]] std::span<const std::byte> query_and_types() const noexcept {
        return std::as_bytes(std::span(key_));
    }
    // The query text, for logs.
    [[nodiscard]] std::string_view query() const noexcept;

private:
    friend class StatementRegistry;
    explicit Statement(std::span<const std::byte> query_and_types);
    [[nodiscard]] std::string_view key() const noexcept { return key_; }

    StatementId id_{};
    std::string server_name_;
    std::string key_; // query_and_types as chars: the registry's lookup key
};

using StatementPtr = std::shared_ptr<const Statement>;

// The process-wide table of statements, deduplicated by their exact bytes (no hash-only key, so
// no two texts can share a name: yandex/odyssey#1345). A statement lives while a client or a
// server holds its StatementPtr; the last holder to let go removes it from the table, so memory
// follows what is in use, not every text ever prepared.
//
// Thread safety: intern() and size() may be called from any thread; one mutex guards the table.
// It is held for one lookup (and one insertion for a new text, whose bytes are copied before
// taking it), and only intern() takes it: a client's Parse of a named statement, never its
// Bind or Execute. StatementPtrs may be copied and dropped on any thread; the table outlives
// the registry for as long as any of its statements lives.
class StatementRegistry {
public:
    StatementRegistry();

    // The statement with exactly these bytes: the one already known, or a new one with the
    // next id. `query_and_types` should come from a parsed wire::fe::ParseView.
    [[nodiscard]] StatementPtr intern(std::span<const std::byte> query_and_types);

    // Statements in the table. One whose last holder is letting go right now may still count.
    [[nodiscard]] std::size_t size() const;

private:
    struct Table;
    struct Release;
    std::shared_ptr<Table> table_;
};

// One client's prepared statements: its own names (never the unnamed statement, which is not
// cached and passes through untouched) mapped to the registry's statements. Unbounded, as in
// PostgreSQL and PgBouncer: a client's names cost it memory only.
//
// Not thread-safe: it belongs to the client's session.
class ClientStatements {
public:
    // False if `name` is already prepared: PostgreSQL's 42P05 `prepared statement "<name>"
    // already exists`, which the session reports instead of the ParseComplete. Throws
    // std::logic_error on the empty name or a null statement (bugs in the session).
    [[nodiscard]] bool prepare(std::string_view name, StatementPtr statement);
    // Null if the client has not prepared `name`: the session then forwards the message
    // untouched and lets the server answer 26000. The pointer is valid until the next prepare(),
    // close() or clear().
    [[nodiscard]] const StatementPtr* find(std::string_view name) const;
    // Close(S): the name is free again; the servers keep the statement for other clients
    // (reference.md 3 step 7). False if it was not prepared, which PostgreSQL does not mind.
    bool close(std::string_view name);
    // DEALLOCATE ALL or DISCARD ALL (reference.md 3 step 8).
    void clear() noexcept { by_name_.clear(); }

    [[nodiscard]] std::size_t size() const noexcept { return by_name_.size(); } // SHOW CLIENTS

private:
    struct Hash {
        using is_transparent = void;
        [[nodiscard]] std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, StatementPtr, Hash, std::equal_to<>> by_name_;
};

// The statements prepared on one server connection, at most `capacity` of them
// (max_prepared_statements), least recently used closed first (reference.md 3 step 4).
//
// Pins. Closing a statement also closes the portals built from it (protocol docs, "Close"), and a
// named portal lives until its transaction ends, so a statement in use must not be closed before
// the transaction is over. Every use() pins its statement; eviction takes only unpinned ones;
// unpin_all() releases the pins once the transaction is over. While everything is pinned the
// cache holds more than `capacity`: a transaction using more statements than that keeps them
// all, and the next use() after unpin_all() closes the excess.
//
// What the cache says is prepared is what the server will have once it has read what the
// session wrote: use() counts the Parse it asks for as done. The session reports the requests
// that took no effect (wire::Disposition::failed) with parse_failed() and close_failed().
//
// Not thread-safe: it belongs to the server connection, and the session holding the server.
class ServerStatements {
public:
    // What the session writes before the message that uses a statement.
    struct Use {
        // Close(S, server_name) each of these, replies swallowed (Route::skip). Unpinned, so no
        // message written since the server was last releasable refers to them.
        std::vector<StatementPtr> close;
        // The server lacks the statement: rewrite the client's Parse to server_name, or write
        // a Parse of our own before its Bind or Describe (Route::skip; reference.md 3 step 6).
        bool prepare = false;
    };

    // capacity 0 is max_prepared_statements = 0: the feature is off, the session must forward
    // statement names untouched, and use() throws std::logic_error.
    explicit ServerStatements(std::size_t capacity) noexcept : capacity_(capacity) {}

    // The session is about to write a message that uses `statement` (Parse, Bind, Describe(S)):
    // marks it most recently used and pins it; adds it if missing.
    [[nodiscard]] Use use(const StatementPtr& statement);

    // The server has no open transaction and owes nothing (wire::ResponseTracker::releasable()):
    // no portal exists any more, no written message refers to a statement, every failure has been
    // reported. Pinned statements become the most recently used ones.
    void unpin_all() noexcept;

    // A Parse that use() asked for took no effect (an error, or skipped after one): the server
    // lacks the statement, unless a Close of it evicted it before and failed too (close_failed).
    void parse_failed(StatementId id);
    // A Close that use() asked for took no effect: the server still has the statement. It
    // comes back as the least recently used one.
    void close_failed(StatementPtr statement);
    // The statement must not be used on this server any more: 0A000 "cached plan must not change
    // result type" after DDL (reference.md 3 step 10). The server still has it, so the session
    // writes Close(S) for what this returns (null if absent) after the client's Sync, where the
    // error will not skip it; the next use() prepares it afresh.
    [[nodiscard]] StatementPtr remove(StatementId id);
    // DEALLOCATE ALL or DISCARD ALL ran on the server (reference.md 3 step 8).
    void clear() noexcept;

    [[nodiscard]] bool contains(StatementId id) const { return entries_.contains(id); }
    [[nodiscard]] bool pinned(StatementId id) const;
    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); } // SHOW SERVERS
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
    using List = std::list<StatementPtr>;
    struct Entry {
        List::iterator at; // in pinned_ or idle_
        bool pinned = false;
        // Evicted, re-added, and the evicting Close failed: the server had it all along, so a
        // failed Parse does not remove it. Only on pinned entries; unpin_all() clears it.
        bool close_failed = false;
    };

    void erase(std::unordered_map<StatementId, Entry>::iterator it) noexcept;

    std::size_t capacity_;
    List idle_;   // unpinned, least recently used first: eviction takes the front
    List pinned_; // used since the last unpin_all(), in order of use
    std::unordered_map<StatementId, Entry> entries_;
};

} // namespace pool
