// Stopping the process the way PgBouncer's operators expect (reference.md 1.2): SHUTDOWN and
// SIGQUIT at once; SHUTDOWN WAIT_FOR_SERVERS and SIGINT once no server is linked to a client;
// SHUTDOWN WAIT_FOR_CLIENTS and SIGTERM once every client has left (a second SIGTERM: at once).
// shutdown_timeout bounds the wait.
//
// A graceful shutdown first closes the listening sockets (after serving what the kernel had
// queued for them), so that another pgmarina bound to the same port with SO_REUSEPORT gets
// every new connection (a rolling restart), and /readyz says no from then on.
//
// Waiting for clients (SIGTERM), transactions run to their end, and pool clients leave at a
// transaction boundary: one whose transaction ends is told 57P01 right after its ReadyForQuery
// and closed; one idle between transactions for idle_grace (counted from the shutdown's start
// at the earliest, so a client that just logged in has time to send its first query) likewise.
// Drivers see the 57P01 of PostgreSQL's own shutdown and open a new connection, which goes to
// the other process. In session pooling a client keeps its server, and so its session, until
// it leaves. Waiting for servers (SIGINT), new transactions wait (PAUSE) and late logins are
// refused with 57P01.
//
// Thread safety: begin() may be called from any thread; the watch runs on the main thread's
// io_context.
#pragma once

#include "proxy/asio.hpp"

#include <chrono>
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
    // How long a client idle between transactions may stay once a shutdown waits for clients.
    static constexpr auto idle_grace = std::chrono::seconds(1);

    // `stop_listening` closes the listening sockets, `stop` ends the process's event loops;
    // each is called once, on `main`'s thread.
    Shutdown(asio::io_context& main, Runtime& runtime, std::function<void()> stop_listening,
             std::function<void()> stop)
        : main_(main), runtime_(runtime), stop_listening_(std::move(stop_listening)),
          stop_(std::move(stop)) {}

    void begin(ShutdownMode mode);

private:
    asio::awaitable<void> watch(ShutdownMode mode);
    [[nodiscard]] bool condition_met(ShutdownMode mode) const;

    asio::io_context& main_;
    Runtime& runtime_;
    std::function<void()> stop_listening_;
    std::function<void()> stop_;
    bool watching_ = false; // main thread only
    bool stopped_ = false;  // main thread only
};

} // namespace proxy
