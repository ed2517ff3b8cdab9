#pragma once

#include "proxy/asio.hpp"
#include "proxy/runtime.hpp"

namespace proxy {

// Opens a listening socket on `endpoint` with SO_REUSEPORT, so every worker can own one for the
// same address and the kernel spreads connections across them.
[[nodiscard]] boost::system::error_code open_acceptor(tcp::acceptor& acceptor,
                                                      const tcp::endpoint& endpoint);

// Accepts TCP clients until the acceptor is closed; each client gets a session coroutine on
// this acceptor's worker (`worker`) for the whole of its life.
asio::awaitable<void> accept_clients(tcp::acceptor acceptor, Runtime& runtime, int worker);

// Accepts clients on the Unix socket. A Unix socket cannot be shared with SO_REUSEPORT, so
// one acceptor hands its clients to the workers in turn.
asio::awaitable<void> accept_unix_clients(asio::local::stream_protocol::acceptor acceptor,
                                          Runtime& runtime);

} // namespace proxy
