// pool::Core deciding acquire and release, in ns per acquire + release pair, without sockets or
// locks (the driver's lock and the actions' execution are not counted). Limits as PgBouncer's
// defaults (pool_size 20, server_check_delay 30 s, server_lifetime 1 h, server_idle_timeout
// 10 min, query_wait_timeout 2 min); the fake clock moves 1 µs per pair.
//
//   idle hit    a free server is there: acquire gets Assign at once, release makes it idle
//   contended   every server busy and 100 clients waiting: release hands the server to the
//               first waiter (Assign), and a new acquire joins the queue
//   2 workers   idle hit, clients alternating between two workers (servers change worker)
#include "micro.hpp"

#include "pool/core.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <variant>
#include <vector>

namespace {

using namespace std::chrono_literals;

pool::Limits pgbouncer_defaults() {
    pool::Limits limits;
    limits.pool_size = 20;
    limits.server_check_delay = 30s;
    limits.server_lifetime = 1h;
    limits.server_idle_timeout = 10min;
    limits.server_login_retry = 15s;
    limits.query_wait_timeout = 2min;
    return limits;
}

struct Pool {
    std::shared_ptr<pool::ServerIds> ids = std::make_shared<pool::ServerIds>();
    pool::Core core{pool::Key{"app", "alice"}, pgbouncer_defaults(), std::make_shared<pool::Caps>(),
                    std::make_shared<pool::Caps>(), ids};
    pool::TimePoint now{};
    std::uint64_t next_waiter = 1;

    pool::WaiterId waiter() { return pool::WaiterId{next_waiter++}; }
};

template <class T>
const T& only(const pool::Actions& actions, const char* what) {
    if (actions.size() != 1 || !std::holds_alternative<T>(actions.front())) {
        throw std::logic_error(what);
    }
    return std::get<T>(actions.front());
}

// Opens and logs in every server the pool may have, on `workers` workers in turn; returns them
// active (linked to their opener) when `keep_active`, else released idle.
std::vector<pool::ServerId> fill(Pool& p, int workers, bool keep_active) {
    std::vector<pool::ServerId> servers;
    for (int i = 0; i < p.core.limits().pool_size; ++i) {
        const int worker = i % workers;
        const auto open = only<pool::Open>(p.core.acquire(p.waiter(), worker, p.now), "open");
        only<pool::Assign>(p.core.connected(open.server, worker, p.now), "assign");
        servers.push_back(open.server);
    }
    if (!keep_active) {
        for (const auto server : servers) {
            if (!p.core.release(server, pool::Release::clean, p.now).empty()) {
                throw std::logic_error("release of an idle server did something");
            }
        }
    }
    return servers;
}

} // namespace

int main() {
    constexpr std::uint64_t pairs = 1000;
    {
        Pool p;
        fill(p, 1, false);
        micro::run("pool idle hit: acquire + release", pairs, [&] {
            std::uint64_t sum = 0;
            for (std::uint64_t i = 0; i < pairs; ++i) {
                p.now += 1us;
                const auto assign = only<pool::Assign>(p.core.acquire(p.waiter(), 0, p.now), "hit");
                sum += static_cast<std::uint64_t>(assign.server);
                if (!p.core.release(assign.server, pool::Release::clean, p.now).empty()) {
                    throw std::logic_error("release did something");
                }
            }
            return sum;
        });
    }
    {
        Pool p;
        fill(p, 2, false);
        int worker = 0;
        micro::run("pool idle hit, 2 workers: acquire + release", pairs, [&] {
            std::uint64_t sum = 0;
            for (std::uint64_t i = 0; i < pairs; ++i) {
                p.now += 1us;
                worker ^= 1;
                const auto assign =
                    only<pool::Assign>(p.core.acquire(p.waiter(), worker, p.now), "hit");
                sum += static_cast<std::uint64_t>(assign.server);
                if (!p.core.release(assign.server, pool::Release::clean, p.now).empty()) {
                    throw std::logic_error("release did something");
                }
            }
            return sum;
        });
    }
    {
        Pool p;
        // Servers in the order they will be released: each goes to the oldest waiter.
        std::deque<pool::ServerId> active;
        for (const auto server : fill(p, 1, true)) {
            active.push_back(server);
        }
        for (int i = 0; i < 100; ++i) {
            if (!p.core.acquire(p.waiter(), 0, p.now).empty()) {
                throw std::logic_error("a waiter got something");
            }
        }
        micro::run("pool contended (100 waiting): release + acquire", pairs, [&] {
            std::uint64_t sum = 0;
            for (std::uint64_t i = 0; i < pairs; ++i) {
                p.now += 1us;
                const auto server = active.front();
                active.pop_front();
                const auto assign = only<pool::Assign>(
                    p.core.release(server, pool::Release::clean, p.now), "handover");
                active.push_back(assign.server);
                if (!p.core.acquire(p.waiter(), 0, p.now).empty()) {
                    throw std::logic_error("a waiter got something");
                }
                sum += static_cast<std::uint64_t>(assign.waiter);
            }
            return sum;
        });
    }
}
