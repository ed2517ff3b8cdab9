#include "proxy/shutdown.hpp"

#include "proxy/log.hpp"
#include "proxy/runtime.hpp"

#include <chrono>

namespace proxy {

std::optional<ShutdownMode> shutdown_mode(std::string_view argument) {
    if (argument.empty()) return ShutdownMode::immediate;
    if (argument == "WAIT_FOR_SERVERS") return ShutdownMode::wait_for_servers;
    if (argument == "WAIT_FOR_CLIENTS") return ShutdownMode::wait_for_clients;
    return std::nullopt;
}

void Shutdown::begin(ShutdownMode mode) {
    asio::post(main_, [this, mode] {
        if (stopped_) return;
        // A second request while waiting, or any immediate one, stops at once.
        if (mode == ShutdownMode::immediate || watching_) {
            log::info("shutting down now");
            stopped_ = true;
            stop_();
            return;
        }
        watching_ = true;
        runtime_.shutting_down = true;
        if (mode == ShutdownMode::wait_for_servers) {
            runtime_.refusing_logins = true;
            runtime_.switches.pause("");
        } else {
            runtime_.closing_clients = true;
        }
        stop_listening_();
        log::info(mode == ShutdownMode::wait_for_servers
                      ? "shutting down once no server is in use"
                      : "shutting down once every client has left");
        asio::co_spawn(main_, watch(mode), asio::detached);
    });
}

bool Shutdown::condition_met(ShutdownMode mode) const {
    if (mode == ShutdownMode::wait_for_servers) {
        for (const auto& pool : runtime_.pools.all()) {
            const auto stats = pool->snapshot().stats;
            if (stats.sv_active + stats.sv_being_canceled > 0) return false;
        }
        return true;
    }
    int consoles = 0;
    for (const auto& client : runtime_.sessions.snapshot())
        consoles += client->pool.user.empty() ? 1 : 0;
    return runtime_.clients.load() <= consoles;
}

asio::awaitable<void> Shutdown::watch(ShutdownMode mode) {
    const auto timeout = runtime_.config()->settings.shutdown_timeout;
    const auto began = std::chrono::steady_clock::now();
    const auto give_up = began + timeout;
    asio::steady_timer timer{main_};
    while (!stopped_ && !condition_met(mode)) {
        const auto now = std::chrono::steady_clock::now();
        if (timeout.count() > 0 && now >= give_up) {
            log::info("shutdown_timeout reached");
            break;
        }
        if (mode == ShutdownMode::wait_for_clients && now - began >= idle_grace) {
            runtime_.sessions.close_idle(ClientInfo::Clock::now() - idle_grace);
        }
        timer.expires_after(std::chrono::milliseconds(100));
        co_await timer.async_wait(nothrow);
    }
    if (stopped_) co_return;
    stopped_ = true;
    stop_();
}

} // namespace proxy
