// max_db_connections and max_user_connections: limits that span several pools.
#pragma once

#include <atomic>

namespace pool {

class Core;

// The server connections of one database, or of one user, summed over every pool that shares it.
// The driver keeps one Caps per database and one per user and hands them to the Cores of those
// pools; a Core takes a slot when it opens a server and gives it back when it forgets the server
// (connect failure or closed), so a closing server still holds its slot.
//
// A pool whose database or user is full waits, as in PgBouncer. When a slot comes back, the Core
// that freed it serves its own waiters; other pools cannot hear of it from their Core, so the
// driver asks the Cores that share this Caps and report needs_servers() to retry(). To free a
// slot for them sooner, it can evict() the least recently used idle server of a sibling pool
// (PgBouncer's evict_connection).
//
// Thread safety: every member may be called concurrently; Cores of different pools use it under
// different locks.
class Caps {
public:
    // 0: no limit.
    explicit Caps(int max = 0) noexcept : max_(max) {}

    Caps(const Caps&) = delete;
    Caps& operator=(const Caps&) = delete;

    // RELOAD may change the limit. Lowering it closes nothing; pools just open no more servers
    // until they are below it.
    void set_max(int max) noexcept { max_.store(max, std::memory_order_relaxed); }

    [[nodiscard]] int max() const noexcept { return max_.load(std::memory_order_relaxed); }
    // Servers holding a slot: SHOW DATABASES / SHOW USERS `current_connections`.
    [[nodiscard]] int current() const noexcept { return current_.load(std::memory_order_relaxed); }
    [[nodiscard]] bool full() const noexcept;

private:
    friend class Core;

    [[nodiscard]] bool try_acquire() noexcept;
    void release() noexcept;

    std::atomic<int> max_;
    std::atomic<int> current_{0};
};

} // namespace pool
