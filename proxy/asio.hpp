#pragma once
// The Asio vocabulary every proxy file uses, in one place.

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>

namespace proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A client arrives over TCP or over the Unix socket; after accept() the session does not care
// which, so it holds a protocol-agnostic stream socket.
using ClientSocket = asio::generic::stream_protocol::socket;

// Expected network conditions (EOF, reset, cancellation) come back as values, not exceptions
// (design.md "Threads"): `auto [ec, n] = co_await sock.async_read_some(buf, nothrow);`.
inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

} // namespace proxy
