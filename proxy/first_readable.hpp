// Waiting for whichever speaks first, a client or its server (or a deadline): the wait of a
// linked session, once per round trip. One reactor wait per socket with a plain callback each;
// the first to complete cancels the others, and the session resumes once all have completed.
// awaitable_operators' `||` did the same with a coroutine spawned per operand and a shared
// state: a quarter of pgmarina's instructions per transaction (bench/instructions.sh).
//
// Thread safety: none; the sockets and the caller share one executor (a worker's io_context).
#pragma once

#include "proxy/asio.hpp"
#include "proxy/config.hpp"

#include <boost/asio/any_completion_handler.hpp>

#include <memory>

namespace proxy {

class FirstReadable {
public:
    enum class Ready { client, server, timeout };

    // Until `client` (unless null) or `server` can be read from (data, an end or an error), or
    // `timeout` passed (zero: no deadline). The sockets must outlive the wait.
    [[nodiscard]] asio::awaitable<Ready> wait(ClientSocket* client, tcp::socket& server,
                                              Duration timeout) {
        return asio::async_initiate<decltype(asio::use_awaitable), void(Ready)>(
            [this, client, &server, timeout](auto handler) {
                start(std::move(handler), client, server, timeout);
            },
            asio::use_awaitable);
    }

private:
    void start(asio::any_completion_handler<void(Ready)> handler, ClientSocket* client,
               tcp::socket& server, Duration timeout);

    // Made at the first wait with a deadline (query_timeout, idle_transaction_timeout); a
    // pointer, for the memory of the many sessions that never have one.
    std::unique_ptr<asio::steady_timer> timer_;
};

} // namespace proxy
