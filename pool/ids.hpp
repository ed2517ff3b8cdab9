// Names of the things a pool deals with: the pool itself, its server connections, its waiters.
#pragma once

#include <atomic>
#include <compare>
#include <cstdint>
#include <string>

namespace pool {

// One pool per (database, user), as in PgBouncer. `database` is the name clients connect to (a
// [databases.<name>] section); `user` is the role the pool's servers log in as: the client's user,
// or the database's forced `user` (PgBouncer's force_user), which puts all its clients in one pool.
struct Key {
    std::string database;
    std::string user;

    friend auto operator<=>(const Key&, const Key&) = default;
};

// A server connection. Unique in the process and never reused, so that it can name the
// connection in logs (`S-<id>`) and in SHOW SERVERS `id`, and so that a late report about a
// server that is already gone cannot be mistaken for a report about another one.
enum class ServerId : std::uint64_t {};

// A client waiting for a server, and then linked to it. The driver chooses the number; it only
// has to be unique among the waiters of one pool, so a client may use its own id (the `C-<id>`
// of its log lines) for every acquire. Core::begin_cancel checks the link by this id.
enum class WaiterId : std::uint64_t {};

// Hands out ServerIds. The driver owns one and gives it to every Core: a Core must name a server
// in the same call that decides to open it (the server counts against the limits from then on),
// so the id cannot wait for the driver to come back with one.
//
// Thread safety: next() may be called concurrently (Cores of different pools run under different
// locks).
class ServerIds {
public:
    [[nodiscard]] ServerId next() noexcept {
        return ServerId{next_.fetch_add(1, std::memory_order_relaxed)};
    }

private:
    std::atomic<std::uint64_t> next_{1};
};

} // namespace pool
