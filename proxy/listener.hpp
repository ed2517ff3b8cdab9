#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "proxy/asio.hpp"
#include "proxy/config.hpp"

namespace proxy {

// What every listener on every worker shares. Thread safety: `config` is an immutable snapshot;
// `next_client_id` is atomic so ids are unique across workers (SHOW CLIENTS and log lines join
// on them).
struct ListenerContext {
    std::shared_ptr<const Config> config;
    std::atomic<std::uint64_t> next_client_id{1};
};

// Opens a listening socket on `endpoint` with SO_REUSEPORT, so every worker can own one for the
// same address and the kernel spreads connections across them.
[[nodiscard]] boost::system::error_code open_acceptor(tcp::acceptor& acceptor,
                                                      const tcp::endpoint& endpoint);

// Accepts clients until the acceptor is closed; each client gets a ClientSession coroutine on
// this acceptor's executor, for the whole of its life.
asio::awaitable<void> accept_clients(tcp::acceptor acceptor, ListenerContext& context);

} // namespace proxy
