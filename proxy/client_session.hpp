#pragma once

#include <cstdint>
#include <memory>

#include "proxy/asio.hpp"
#include "proxy/config.hpp"

namespace proxy {

// Serves one client connection from its first byte to its close, on the caller's executor.
//
// This build relays: after the startup packet names a configured database, the client gets its
// own connection to that database's first host and bytes flow both ways untouched until either
// side closes; PostgreSQL itself authenticates the client. Pooling (issue 3) replaces the relay
// with leases from pool::Pool; the startup handling here stays.
asio::awaitable<void> serve_client(tcp::socket socket, std::shared_ptr<const Config> config,
                                   std::uint64_t id);

} // namespace proxy
