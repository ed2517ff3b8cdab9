#pragma once

#include "proxy/asio.hpp"
#include "proxy/runtime.hpp"

#include <memory>
#include <mutex>
#include <vector>

namespace proxy {

// Opens a listening socket on `endpoint` with SO_REUSEPORT, so every worker can own one for the
// same address and the kernel spreads connections across them, and so a second pgmarina can
// bind the same port during a rolling restart.
[[nodiscard]] boost::system::error_code open_acceptor(tcp::acceptor& acceptor,
                                                      const tcp::endpoint& endpoint);

// The process's listening sockets: one TCP acceptor per worker and listen address, and the
// Unix socket. They are owned here, not by their accept loops, so that a graceful shutdown can
// close them while the loops wait: with SO_REUSEPORT, the kernel then gives every new
// connection to the other processes bound to the same port (a rolling restart).
//
// Thread safety: add_*() before the workers run; stop() from any thread; close() once the
// workers have stopped.
class Listeners {
public:
    explicit Listeners(Runtime& runtime) : runtime_(runtime) {}
    Listeners(const Listeners&) = delete;
    Listeners& operator=(const Listeners&) = delete;

    // Starts accepting on `acceptor` (listening already), on `io`, whose worker is `worker`.
    void add_tcp(tcp::acceptor acceptor, int worker);
    // Starts accepting on the Unix socket `acceptor` (listening already).
    void add_unix(asio::local::stream_protocol::acceptor acceptor);

    // Each listener, on its own worker: takes the connections the kernel already queued for it
    // (they are served as usual), then closes. Idempotent.
    void stop();
    // Closes whatever is still open. Only once no worker runs.
    void close();

private:
    Runtime& runtime_;
    std::vector<std::unique_ptr<tcp::acceptor>> tcp_;
    std::vector<int> tcp_workers_;
    std::unique_ptr<asio::local::stream_protocol::acceptor> unix_;
    std::once_flag stopped_;
};

} // namespace proxy
