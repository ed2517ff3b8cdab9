// Bounding an operation in time: a watchdog timer raced against it (design.md, "Threads":
// timeouts are watchdogs, not checks sprinkled through reads).
#pragma once

#include "proxy/asio.hpp"
#include "proxy/config.hpp"

#include <optional>
#include <utility>

namespace proxy {

inline asio::awaitable<void> sleep_for(Duration duration) {
    asio::steady_timer timer{co_await asio::this_coro::executor, duration};
    co_await timer.async_wait(nothrow);
}

// Checks `done` every `period` until it holds: for conditions that other threads change and that
// have no event to wait on (PAUSE, WAIT_CLOSE), rare enough that a poll costs nothing.
template <class Done>
asio::awaitable<void> poll_until(Done done, Duration period = std::chrono::milliseconds(100)) {
    while (!done())
        co_await sleep_for(period);
}

// Runs `operation` with a deadline: std::nullopt when `timeout` passed first, and the operation
// is cancelled. A zero timeout means none, as with every PgBouncer timeout setting, and then no
// timer is started at all.
template <class T>
asio::awaitable<std::optional<T>> within(Duration timeout, asio::awaitable<T> operation) {
    using namespace asio::experimental::awaitable_operators;
    if (timeout.count() <= 0) co_return co_await std::move(operation);
    auto outcome = co_await (std::move(operation) || sleep_for(timeout));
    if (outcome.index() == 1) co_return std::nullopt;
    co_return std::move(std::get<0>(outcome));
}

} // namespace proxy
