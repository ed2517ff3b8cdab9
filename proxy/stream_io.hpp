// Reading frames and writing bytes on a socket: the two I/O steps every login exchange and
// session loop is made of, written once for client (generic) and server (TCP) sockets.
#pragma once

#include "proxy/asio.hpp"
#include "wire/framer.hpp"

#include <cstddef>
#include <optional>
#include <span>

namespace proxy {

// How much a single read asks the socket for.
inline constexpr std::size_t read_chunk = 16 * 1024;

// The next complete frame from `socket`, read through `framer`: a framing error (bad length,
// too large), or std::nullopt when the peer closed or the read failed. The frame is a view into
// the framer, valid until the next call.
template <class Socket>
asio::awaitable<wire::Result<std::optional<wire::Frame>>> read_frame(Socket& socket,
                                                                     wire::Framer& framer) {
    for (;;) {
        auto frame = framer.next();
        if (!frame || *frame) co_return frame;
        const auto space = framer.prepare(read_chunk);
        auto [ec, n] =
            co_await socket.async_read_some(asio::buffer(space.data(), space.size()), nothrow);
        if (ec) co_return std::optional<wire::Frame>{};
        framer.commit(n);
    }
}

// Writes all of `bytes`; false when the peer is gone.
template <class Socket>
asio::awaitable<bool> write_all(Socket& socket, std::span<const std::byte> bytes) {
    if (bytes.empty()) co_return true;
    auto [ec, n] =
        co_await asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()), nothrow);
    co_return !ec;
}

} // namespace proxy
