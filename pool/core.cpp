#include "pool/core.hpp"

#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>

namespace pool {

Core::Core(Key key, const Limits& limits, std::shared_ptr<Caps> database_caps,
           std::shared_ptr<Caps> user_caps, std::shared_ptr<ServerIds> ids)
    : key_(std::move(key)), limits_(limits), database_caps_(std::move(database_caps)),
      user_caps_(std::move(user_caps)), ids_(std::move(ids)) {
    if (!database_caps_ || !user_caps_ || !ids_) {
        throw std::logic_error("pool::Core: Caps and ServerIds are required");
    }
}

Core::~Core() {
    for (std::size_t i = 0; i < servers_.size(); ++i) {
        database_caps_->release();
        user_caps_->release();
    }
}

void Core::change_state(Server& server, std::optional<ServerState> to) {
    if (server.state_hook.is_linked()) {
        StateList& from = list(server.state);
        from.erase(from.iterator_to(server));
    }
    if (server.worker_hook.is_linked()) {
        server.worker_hook.unlink();
    }
    if (!to) {
        database_caps_->release();
        user_caps_->release();
        servers_.erase(server.id);
        return;
    }
    server.state = *to;
    list(*to).push_back(server);
    if (*to == ServerState::idle) {
        idle_by_worker_[server.worker].push_back(server);
    }
}

Core::Server& Core::find(ServerId server, const char* operation) {
    const auto it = servers_.find(server);
    if (it == servers_.end()) {
        throw std::logic_error(std::string("pool::Core::") + operation + ": unknown server");
    }
    return it->second;
}

void Core::expect(const Server& server, ServerState state, const char* operation) {
    if (server.state != state) {
        throw std::logic_error(std::string("pool::Core::") + operation + ": server is " +
                               std::string(to_string(server.state)) + ", not " +
                               std::string(to_string(state)));
    }
}

Actions Core::acquire(WaiterId waiter, int worker, TimePoint now) {
    if (waiter_index_.contains(waiter)) {
        throw std::logic_error("pool::Core::acquire: the waiter is already waiting");
    }
    Actions out;
    // serve() never leaves a server idle while someone waits, so an idle server means nobody is
    // ahead of this client: it takes the server without queueing.
    if (Server* idle = pick_idle(worker)) {
        assign(*idle, Waiter{waiter, worker, now}, out);
        return out;
    }
    waiters_.push_back(Waiter{waiter, worker, now});
    waiter_index_.emplace(waiter, std::prev(waiters_.end()));
    serve(now, out);
    return out;
}

bool Core::cancel_wait(WaiterId waiter) {
    const auto it = waiter_index_.find(waiter);
    if (it == waiter_index_.end()) {
        return false;
    }
    remove_waiter(it->second);
    return true;
}

Actions Core::release(ServerId id, Release how, TimePoint now) {
    Server& server = find(id, "release");
    expect(server, ServerState::active, "release");
    Actions out;
    if (how == Release::close) {
        close(server, reason::server_not_ready, out);
        return out;
    }
    server.reset_pending = how == Release::reset;
    make_ready(server, Origin::client, now, out);
    return out;
}

Actions Core::connected(ServerId id, int worker, TimePoint now) {
    Server& server = find(id, "connected");
    expect(server, ServerState::login, "connected");
    server.worker = worker;
    login_failed_at_.reset();
    Actions out;
    make_ready(server, Origin::login, now, out);
    return out;
}

Actions Core::retry_login_now(TimePoint now) {
    login_failed_at_.reset();
    Actions out;
    serve(now, out);
    return out;
}

Actions Core::connect_failed(ServerId id, TimePoint now) {
    Server& server = find(id, "connect_failed");
    expect(server, ServerState::login, "connect_failed");
    login_failed_at_ = now;
    change_state(server, std::nullopt);
    Actions out;
    serve(now, out);
    return out;
}

Actions Core::tested(ServerId id, TimePoint now) {
    Server& server = find(id, "tested");
    expect(server, ServerState::tested, "tested");
    Actions out;
    make_ready(server, Origin::test, now, out);
    return out;
}

Actions Core::closed(ServerId id, TimePoint now) {
    Server& server = find(id, "closed");
    if (server.state == ServerState::login) {
        throw std::logic_error("pool::Core::closed: the server is logging in; report "
                               "connect_failed");
    }
    change_state(server, std::nullopt);
    Actions out;
    serve(now, out);
    return out;
}

bool Core::begin_cancel(ServerId id, WaiterId client) {
    const auto it = servers_.find(id);
    if (it == servers_.end() || it->second.state != ServerState::active ||
        it->second.client != client) {
        return false;
    }
    ++it->second.cancels;
    ++cancels_in_flight_;
    return true;
}

Actions Core::end_cancel(ServerId id, TimePoint now) {
    if (cancels_in_flight_ == 0) {
        throw std::logic_error("pool::Core::end_cancel: no cancel in flight");
    }
    Actions out;
    // Unknown: the server has been forgotten since; its cancels no longer hold anything back.
    if (const auto it = servers_.find(id); it != servers_.end()) {
        Server& server = it->second;
        if (server.cancels == 0) {
            throw std::logic_error("pool::Core::end_cancel: no cancel in flight for this server");
        }
        --server.cancels;
        if (server.state == ServerState::being_canceled && server.cancels == 0) {
            make_ready(server, Origin::client, now, out);
        }
    }
    --cancels_in_flight_;
    return out;
}

void Core::make_ready(Server& server, Origin origin, TimePoint now, Actions& out) {
    server.last_used = now;
    // The order of PgBouncer's release_server: lifetime, close_needed, cancels, reset, check.
    // A fresh login is exempt from the lifetime, else server_lifetime = 0 would close every
    // server before its first client.
    if (origin != Origin::login && life_over(server, now)) {
        last_lifetime_close_ = now;
        close(server, reason::server_lifetime, out);
    } else if (server.close_needed) {
        close(server, reason::close_needed, out);
    } else if (origin == Origin::client && server.cancels > 0) {
        change_state(server, ServerState::being_canceled);
    } else if (origin == Origin::client && server.reset_pending) {
        server.reset_pending = false;
        change_state(server, ServerState::tested);
        out.push_back(Reset{server.id});
    } else if (origin == Origin::client && limits_.server_check_delay == Duration::zero()) {
        change_state(server, ServerState::used);
    } else {
        change_state(server, ServerState::idle);
    }
    // A server that became idle goes straight to the first waiter (PgBouncer reuse_on_release:
    // "immediately process waiters, to give fair chance").
    serve(now, out);
}

void Core::close(Server& server, std::string_view why, Actions& out) {
    change_state(server, ServerState::closing);
    out.push_back(Close{server.id, why});
}

void Core::assign(Server& server, Waiter waiter, Actions& out) {
    change_state(server, ServerState::active);
    server.client = waiter.id;
    server.worker = waiter.worker;
    out.push_back(Assign{waiter.id, server.id});
}

void Core::serve(TimePoint now, Actions& out) {
    while (!waiters_.empty()) {
        Server* server = pick_idle(waiters_.front().worker);
        if (server == nullptr) {
            break;
        }
        const Waiter waiter = waiters_.front();
        remove_waiter(waiters_.begin());
        assign(*server, waiter, out);
    }
    // Servers logging in, or being checked or reset, will each serve the first waiter when they
    // are ready (PgBouncer's per_loop_activate counts sv_tested the same way). The waiters behind
    // them need more: used servers first, which only need a check, then new ones.
    auto next = waiters_.begin();
    for (std::size_t coming = list(ServerState::login).size() + list(ServerState::tested).size();
         coming > 0 && next != waiters_.end(); --coming) {
        ++next;
    }
    for (; next != waiters_.end() && !list(ServerState::used).empty(); ++next) {
        Server& server = list(ServerState::used).back();
        change_state(server, ServerState::tested);
        out.push_back(Check{server.id});
    }
    for (; next != waiters_.end() && open(now, next->worker, out); ++next) {}
}

bool Core::open(TimePoint now, std::optional<int> worker, Actions& out) {
    if (backing_off(now)) {
        return false;
    }
    // PgBouncer never has more than one login in flight per pool, which makes a cold pool slow
    // to fill. We open one per waiting client, but after a failure only one at a time, so that
    // a server refusing logins does not get a burst of them, until one succeeds.
    if (login_failed_at_ && !list(ServerState::login).empty()) {
        return false;
    }
    bool reserve = false;
    if (std::cmp_greater_equal(servers_.size(), limits_.pool_size)) {
        if (!reserve_usable(now) ||
            std::cmp_greater_equal(servers_.size(),
                                   limits_.pool_size + limits_.reserve_pool_size)) {
            return false;
        }
        reserve = true;
    }
    if (!database_caps_->try_acquire()) {
        return false;
    }
    if (!user_caps_->try_acquire()) {
        database_caps_->release();
        return false;
    }
    const ServerId id = ids_->next();
    Server& server = servers_[id];
    server.id = id;
    server.opened = now;
    server.last_used = now;
    change_state(server, ServerState::login);
    out.push_back(Open{id, worker, reserve});
    return true;
}

Core::Server* Core::pick_idle(int worker) {
    if (const auto it = idle_by_worker_.find(worker);
        it != idle_by_worker_.end() && !it->second.empty()) {
        return &it->second.back();
    }
    StateList& idle = list(ServerState::idle);
    return idle.empty() ? nullptr : &idle.back();
}

void Core::remove_waiter(std::list<Waiter>::iterator waiter) {
    waiter_index_.erase(waiter->id);
    waiters_.erase(waiter);
}

std::size_t Core::connected_count() const {
    return servers_.size() - list(ServerState::login).size() - list(ServerState::closing).size();
}

Stats Core::stats(TimePoint now) const {
    Stats stats;
    stats.cl_waiting = waiters_.size();
    stats.sv_active = list(ServerState::active).size();
    stats.sv_active_cancel = cancels_in_flight_;
    stats.sv_being_canceled = list(ServerState::being_canceled).size();
    stats.sv_idle = list(ServerState::idle).size();
    stats.sv_used = list(ServerState::used).size();
    stats.sv_tested = list(ServerState::tested).size();
    stats.sv_login = list(ServerState::login).size();
    stats.sv_closing = list(ServerState::closing).size();
    stats.servers = servers_.size();
    if (!waiters_.empty() && now > waiters_.front().since) {
        const auto waited = std::chrono::duration_cast<Duration>(now - waiters_.front().since);
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(waited);
        stats.maxwait = seconds.count();
        stats.maxwait_us = (waited - seconds).count();
    }
    return stats;
}

std::vector<ServerView> Core::servers() const {
    std::vector<ServerView> views;
    views.reserve(servers_.size());
    for (const auto& [id, server] : servers_) {
        const bool linked =
            server.state == ServerState::active || server.state == ServerState::being_canceled;
        views.push_back({id, server.state, server.opened, server.last_used,
                         linked ? std::optional(server.client) : std::nullopt,
                         server.close_needed});
    }
    return views;
}

std::optional<ServerState> Core::state(ServerId server) const {
    const auto it = servers_.find(server);
    if (it == servers_.end()) {
        return std::nullopt;
    }
    return it->second.state;
}

bool Core::needs_servers() const noexcept {
    return waiters_.size() > list(ServerState::login).size() + list(ServerState::tested).size();
}

std::optional<TimePoint> Core::login_retry_at() const noexcept {
    if (!login_failed_at_) {
        return std::nullopt;
    }
    return *login_failed_at_ + limits_.server_login_retry;
}

} // namespace pool
