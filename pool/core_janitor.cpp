// The Core's periodic and administrative decisions: PgBouncer's janitor.c (pool_client_maint,
// check_unused_servers, check_pool_size), RECONNECT and eviction.
#include "pool/core.hpp"

#include <algorithm>
#include <utility>

namespace pool {

Actions Core::tick(TimePoint now) {
    Actions out;
    fail_expired_waiters(now, out);
    // Used before idle, as PgBouncer does, so that a server that becomes used here is looked at
    // once.
    maintain_unused(list(ServerState::used), now, out);
    maintain_unused(list(ServerState::idle), now, out);
    serve(now, out);
    fill_min_pool(now, out);
    return out;
}

Actions Core::retry(TimePoint now) {
    Actions out;
    serve(now, out);
    return out;
}

Actions Core::mark_close_needed() {
    for (auto& [id, server] : servers_) {
        server.close_needed = true;
    }
    Actions out;
    for (const ServerState unused : {ServerState::idle, ServerState::used}) {
        while (!list(unused).empty()) {
            close(list(unused).front(), reason::close_needed, out);
        }
    }
    return out;
}

const Core::Server* Core::evictable() const {
    const Server* oldest = nullptr;
    const auto consider = [&oldest](const StateList& servers) {
        if (!servers.empty() &&
            (oldest == nullptr || servers.front().last_used < oldest->last_used)) {
            oldest = &servers.front();
        }
    };
    consider(list(ServerState::idle));
    // A used server is the next one a waiter would get, so only while nobody waits (PgBouncer's
    // evict_connection). Tested servers are running a query: never.
    if (waiters_.empty()) {
        consider(list(ServerState::used));
    }
    return oldest;
}

std::optional<TimePoint> Core::evictable_since() const {
    const Server* server = evictable();
    if (server == nullptr) {
        return std::nullopt;
    }
    return server->last_used;
}

Actions Core::evict() {
    Actions out;
    if (const Server* server = evictable()) {
        close(servers_.at(server->id), reason::evicted, out);
    }
    return out;
}

void Core::fail_expired_waiters(TimePoint now, Actions& out) {
    if (limits_.query_wait_timeout == Duration::zero()) {
        return;
    }
    // FIFO, so the front has waited longest: stop at the first that may still wait.
    while (!waiters_.empty() && now - waiters_.front().since > limits_.query_wait_timeout) {
        out.push_back(FailWaiter{waiters_.front().id, reason::query_wait_timeout});
        remove_waiter(waiters_.begin());
    }
}

void Core::maintain_unused(StateList& servers, TimePoint now, Actions& out) {
    for (auto it = servers.begin(); it != servers.end();) {
        Server& server = *it++; // each step moves at most this server out of `servers`
        const auto unused = now - server.last_used;
        if (limits_.server_idle_timeout > Duration::zero() &&
            unused > limits_.server_idle_timeout &&
            std::cmp_greater(connected_count(), limits_.min_pool_size)) {
            close(server, reason::server_idle_timeout, out);
        } else if (life_over(server, now)) {
            last_lifetime_close_ = now;
            close(server, reason::server_lifetime, out);
        } else if (server.state == ServerState::idle && limits_.server_check_delay &&
                   unused > *limits_.server_check_delay) {
            change_state(server, ServerState::used);
        }
    }
}

void Core::fill_min_pool(TimePoint now, Actions& out) {
    const int wanted = std::min(limits_.min_pool_size, limits_.pool_size);
    while (std::cmp_less(servers_.size() - list(ServerState::closing).size(), wanted) &&
           open(now, std::nullopt, out)) {}
}

bool Core::life_over(const Server& server, TimePoint now) const {
    if (now - server.opened < limits_.server_lifetime) {
        return false;
    }
    // PgBouncer's lifetime_kill_gap: servers opened together would otherwise all be closed (and
    // reopened) together.
    const Duration gap =
        limits_.pool_size > 0 ? limits_.server_lifetime / limits_.pool_size : Duration::zero();
    return !last_lifetime_close_ || now - *last_lifetime_close_ >= gap;
}

bool Core::reserve_usable(TimePoint now) const {
    return limits_.reserve_pool_size > 0 && limits_.reserve_pool_timeout > Duration::zero() &&
           !waiters_.empty() && now - waiters_.front().since >= limits_.reserve_pool_timeout;
}

bool Core::backing_off(TimePoint now) const {
    return login_failed_at_ && now - *login_failed_at_ < limits_.server_login_retry;
}

} // namespace pool
