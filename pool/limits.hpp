// The numbers that govern one pool, and the clock they are measured with.
#pragma once

#include <chrono>
#include <optional>

namespace pool {

// The Core never reads a clock: every call takes `now`, so tests drive it with a fake one.
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
// Microseconds, as PgBouncer's usec_t and proxy::Duration.
using Duration = std::chrono::microseconds;

// The settings of one pool, already resolved by the proxy with PgBouncer's precedence
// ([users.<name>] over [databases.<name>] over [pgmarina]); the names are PgBouncer's. The
// defaults live in proxy/config.hpp and nowhere else, so the zeros here only mean "not filled in".
struct Limits {
    // Servers the pool may hold (PgBouncer's default_pool_size, or pool_size of the database or
    // user). Servers that are closing still count: their backends exist until the socket closes.
    int pool_size = 0;
    // Servers the janitor keeps open even without clients; never more than pool_size.
    int min_pool_size = 0;
    // Extra servers on top of pool_size, usable once the oldest waiter has waited
    // reserve_pool_timeout.
    int reserve_pool_size = 0;
    // 0: the reserve is never used (PgBouncer tests `cf_res_pool_timeout &&`).
    Duration reserve_pool_timeout{};
    // Close servers unused for longer than this, as long as min_pool_size stay. 0: never.
    Duration server_idle_timeout{};
    // Close unused servers connected for at least this long. 0: a server serves one client and is
    // closed when it is released (PgBouncer: "0 means the connection is to be used only once").
    Duration server_lifetime{};
    // An idle server unused for longer than this runs server_check_query before its next client;
    // 0 checks before every reuse. std::nullopt: server_check_query is "", so never check.
    std::optional<Duration> server_check_delay;
    // After a failed login, open no server for this long.
    Duration server_login_retry{};
    // Fail a waiter that has waited longer than this. 0: wait forever.
    Duration query_wait_timeout{};

    friend bool operator==(const Limits&, const Limits&) = default;
};

} // namespace pool
