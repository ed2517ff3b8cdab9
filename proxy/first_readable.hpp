// Waiting for whichever speaks first, a client or its server (or a deadline): the wait of a
// linked session, once per round trip. One reactor operation per socket with a plain callback
// each; the first to complete cancels the others, and the session resumes once all have
// completed. awaitable_operators' `||` did the same with a coroutine spawned per operand and a
// shared state: a quarter of pgmarina's instructions per transaction (bench/instructions.sh).
//
// A socket is read, not waited for, when the caller gives it room: Asio's reactor re-arms a
// socket with epoll_ctl for every wait, while a read on a socket whose last read emptied it is
// queued without a system call and done when epoll says so (bench/results/syscalls.md).
//
// Thread safety: none; the sockets and the caller share one executor (a worker's io_context).
#pragma once

#include "proxy/asio.hpp"
#include "proxy/config.hpp"
#include "proxy/stream.hpp"

#include <boost/asio/any_completion_handler.hpp>

#include <memory>
#include <optional>

namespace proxy {

class FirstReadable {
public:
    enum class Ready { client, server, timeout };

    // A socket to wait for, and where to read it to, if anywhere.
    template <class Socket>
    struct Side {
        Socket* socket = nullptr;
        std::optional<asio::mutable_buffer> room;
    };

    struct Outcome {
        // A side whose read completed (not cancelled) is ready, the server first: what a read
        // took must be framed, while a readiness not acted on shows again at the next wait.
        Ready ready;
        // The reads made into the sides' rooms, unless cancelled. Both may have completed (data
        // waiting on both sockets when the wait began).
        std::optional<IoResult> client_read;
        std::optional<IoResult> server_read;
    };

    // Until the client (unless its socket is null) or the server can be read from (data, an
    // end or an error), or `timeout` passed (zero: no deadline). The sockets and the rooms must
    // outlive the wait.
    [[nodiscard]] asio::awaitable<Outcome> wait(Side<ClientSocket> client, Side<tcp::socket> server,
                                                Duration timeout) {
        return asio::async_initiate<decltype(asio::use_awaitable), void(Outcome)>(
            [this, client, server, timeout](auto handler) {
                start(std::move(handler), client, server, timeout);
            },
            asio::use_awaitable);
    }

private:
    void start(asio::any_completion_handler<void(Outcome)> handler, Side<ClientSocket> client,
               Side<tcp::socket> server, Duration timeout);

    // Made at the first wait with a deadline (query_timeout, idle_transaction_timeout); a
    // pointer, for the memory of the many sessions that never have one.
    std::unique_ptr<asio::steady_timer> timer_;
};

} // namespace proxy
