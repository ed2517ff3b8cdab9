// Stopping the process the way PgBouncer's operators expect (reference.md 1.2): SHUTDOWN and
// SIGQUIT at once; SHUTDOWN WAIT_FOR_SERVERS and SIGINT once no server is linked to a client;
// SHUTDOWN WAIT_FOR_CLIENTS and SIGTERM once every client has left (a second SIGTERM: at once).
// While waiting, new clients are refused (the console still admits operators) and /readyz
// says no; shutdown_timeout bounds the wait.
//
// Thread safety: begin() may be called from any thread; the watch runs on the main thread's
// io_context.
#pragma once

#include "proxy/asio.hpp"

#include <functional>
#include <optional>
#include <string_view>

namespace proxy {

struct Runtime;

enum class ShutdownMode { immediate, wait_for_servers, wait_for_clients };

// "" → immediate, "WAIT_FOR_SERVERS", "WAIT_FOR_CLIENTS"; std::nullopt for anything else.
[[nodiscard]] std::optional<ShutdownMode> shutdown_mode(std::string_view argument);

class Shutdown {
public:
    // `stop` ends the process's event loops; it is called once, on `main`'s thread.
    Shutdown(asio::io_context& main, Runtime& runtime, std::function<void()> stop)
        : main_(main), runtime_(runtime), stop_(std::move(stop)) {}

    void begin(ShutdownMode mode);

private:
    asio::awaitable<void> watch(ShutdownMode mode);
    [[nodiscard]] bool condition_met(ShutdownMode mode) const;

    asio::io_context& main_;
    Runtime& runtime_;
    std::function<void()> stop_;
    bool watching_ = false; // main thread only
    bool stopped_ = false;  // main thread only
};

} // namespace proxy
