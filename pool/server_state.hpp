// Where a server connection is in its life (PgBouncer's SV_* states).
#pragma once

#include <cstddef>
#include <string_view>

namespace pool {

// Core::change_state is the only code that assigns a state. It moves the server between the
// per-state lists (whose sizes are the SHOW POOLS counts), keeps the per-worker idle lists, and
// gives back the server's Caps slots when the server is forgotten, so that counts, timeouts and
// limits all rest on that one function.
//
// Every state counts against pool_size, max_db_connections and max_user_connections, from the
// Open that creates the server until connect_failed() or closed() forgets it.
//
// PgBouncer's SV_ACTIVE_CANCEL is not a state here: PgBouncer sends a CancelRequest over a pool
// connection of its own, in that state. Ours go over a plain TCP connection that never logs in
// and is not a pool server, so SHOW POOLS `sv_active_cancel` counts the cancel requests in flight
// (Core::begin_cancel / end_cancel) instead; the server they target stays `active`.
enum class ServerState {
    // Connecting and logging in, up to the first ReadyForQuery. Entered when the Core returns
    // Open; left by connected() (to a waiter, idle, or closing when close_needed was set
    // meanwhile) or connect_failed() (forgotten). SHOW POOLS sv_login, SHOW SERVERS "new".
    login,
    // Ready for reuse: ReadyForQuery 'I', nothing outstanding. Entered after a login, a clean
    // release or a passed check or reset, when no client waits (one that waits gets the server at
    // once). LIFO, like PgBouncer without server_round_robin: acquire takes the most recently
    // used idle server on the client's worker, else the most recently used one on any worker, so
    // that the rest stay unused and reach server_idle_timeout. Left for active (acquire), used
    // (the janitor: unused past server_check_delay), or closing (idle timeout, lifetime,
    // close_needed, evict). SHOW POOLS sv_idle.
    idle,
    // Idle, but server_check_query must pass before the next client (unused past
    // server_check_delay, or released while server_check_delay is 0). LIFO. Left for tested (a
    // Check, when a waiter has no other server coming) or closing (as idle). SHOW POOLS sv_used.
    used,
    // Running server_check_query (Check) or server_reset_query (Reset); no client. Left by
    // tested() (to a waiter or idle, or closing when its lifetime is over or close_needed) or
    // closed(). SHOW POOLS sv_tested.
    tested,
    // Linked to a client (Assign). Left by release(): to being_canceled, tested (Reset), used,
    // idle or a waiter, or closing; or by closed(). SHOW POOLS sv_active.
    active,
    // Released by its client while a cancel request aimed at it is still in flight (reference.md
    // 2.4; PgBouncer 1.18 sv_being_canceled). Handing it to another client would let the late
    // cancel hit that client's query, so it waits here until end_cancel() reports the last one,
    // then continues its release. SHOW POOLS sv_being_canceled.
    being_canceled,
    // Close returned; the driver terminates the connection and reports closed(). It keeps its
    // slots until then because its backend still exists.
    closing,
};

inline constexpr std::size_t server_state_count = 7;
static_assert(static_cast<std::size_t>(ServerState::closing) + 1 == server_state_count);

// The SHOW SERVERS `state` text (PgBouncer's: "new" for login); "closing" for closing, which
// PgBouncer never shows.
[[nodiscard]] std::string_view to_string(ServerState state) noexcept;

} // namespace pool
