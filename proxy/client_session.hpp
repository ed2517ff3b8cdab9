#pragma once

#include "proxy/asio.hpp"
#include "proxy/runtime.hpp"

#include <cstdint>
#include <string>

namespace proxy {

// Serves one client connection from its first byte to its close, on the caller's executor
// (worker `worker`): startup, authentication, the welcome, then the client's transactions on
// servers lent by its pool (design.md, "A client's life"). `peer` names the client in logs.
asio::awaitable<void> serve_client(ClientSocket socket, Runtime& runtime, std::uint64_t id,
                                   int worker, std::string peer);

} // namespace proxy
