// Reading frames and writing bytes: the two I/O steps every login exchange and session loop is
// made of, written once for Streams (plaintext or TLS) and bare sockets (tests, cancel requests).
#pragma once

#include "proxy/asio.hpp"
#include "proxy/stream.hpp"
#include "wire/framer.hpp"

#include <cstddef>
#include <optional>
#include <span>

namespace proxy {

// How much a single read asks the socket for.
inline constexpr std::size_t read_chunk = 16 * 1024;

// Some bytes from a bare socket or a Stream.
template <class Socket>
asio::awaitable<IoResult> read_some(Socket& socket, asio::mutable_buffer buffer) {
    return socket.async_read_some(buffer, nothrow);
}

template <class Socket>
asio::awaitable<IoResult> read_some(Stream<Socket>& stream, asio::mutable_buffer buffer) {
    return stream.read_some(buffer);
}

// All of `buffer` to a bare socket or a Stream.
template <class Socket>
asio::awaitable<IoResult> write_buffer(Socket& socket, asio::const_buffer buffer) {
    return asio::async_write(socket, buffer, nothrow);
}

template <class Socket>
asio::awaitable<IoResult> write_buffer(Stream<Socket>& stream, asio::const_buffer buffer) {
    return stream.write(buffer);
}

// The next complete frame from `socket` (a bare socket or a Stream), read through `framer`: a
// framing error (bad length, too large), or std::nullopt when the peer closed or the read failed.
// The frame is a view into the framer, valid until the next call.
template <class Socket>
asio::awaitable<wire::Result<std::optional<wire::Frame>>> read_frame(Socket& socket,
                                                                     wire::Framer& framer) {
    for (;;) {
        auto frame = framer.next();
        if (!frame || *frame) co_return frame;
        const auto space = framer.prepare(read_chunk);
        auto [ec, n] = co_await read_some(socket, asio::buffer(space.data(), space.size()));
        if (ec) co_return std::optional<wire::Frame>{};
        framer.commit(n);
    }
}

// Writes all of `bytes`; false when the peer is gone.
template <class Socket>
asio::awaitable<bool> write_all(Socket& socket, std::span<const std::byte> bytes) {
    if (bytes.empty()) co_return true;
    auto [ec, n] = co_await write_buffer(socket, asio::buffer(bytes.data(), bytes.size()));
    co_return !ec;
}

} // namespace proxy
