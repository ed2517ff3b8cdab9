#include "proxy/first_readable.hpp"

#include <boost/asio/recycling_allocator.hpp>

#include <optional>

namespace proxy {
namespace {

// A read that was not cancelled.
std::optional<IoResult> completed(const std::optional<IoResult>& read) {
    if (read && std::get<0>(*read) == asio::error::operation_aborted) return std::nullopt;
    return read;
}

// One wait, shared by its callbacks. They own it, and it owns the waiting session's handler, as
// an Asio operation does: an io_context destroyed with the wait pending (pgmarina stopping)
// destroys the callbacks, this, and with it the session's coroutine.
struct Race {
    using Ready = FirstReadable::Ready;
    using Outcome = FirstReadable::Outcome;

    asio::any_completion_handler<void(Outcome)> handler;
    ClientSocket* client = nullptr;
    tcp::socket* server = nullptr;
    asio::steady_timer* timer = nullptr;
    int pending = 0;
    std::optional<Ready> first;
    std::optional<IoResult> client_read;
    std::optional<IoResult> server_read;

    void arrived(Ready who) {
        if (!first) {
            // Whatever completes first wins, a cancellation too (KILL_CLIENT closes the client's
            // socket): the reader that follows finds out what happened.
            first = who;
            boost::system::error_code ignored; // a socket closed meanwhile has nothing to cancel
            if (client && who != Ready::client) client->cancel(ignored);
            if (who != Ready::server) server->cancel(ignored);
            if (timer && who != Ready::timeout) timer->cancel();
        }
        if (--pending > 0) return;
        Outcome outcome{*first, completed(client_read), completed(server_read)};
        if (outcome.server_read) {
            outcome.ready = Ready::server;
        } else if (outcome.client_read) {
            outcome.ready = Ready::client;
        }
        // Last: the session resumes inside this call and may start its next wait.
        auto resume = std::move(handler);
        std::move(resume)(outcome);
    }
};

// Reads `socket` into `room` if there is room, else waits for it; `arrived(who)` either way.
template <class Socket>
void start_side(const std::shared_ptr<Race>& race, FirstReadable::Side<Socket> side,
                std::optional<IoResult> Race::*read, FirstReadable::Ready who) {
    if (side.room) {
        side.socket->async_read_some(
            *side.room, [race, read, who](const boost::system::error_code& ec, std::size_t n) {
                (*race).*read = IoResult{ec, n};
                race->arrived(who);
            });
    } else {
        side.socket->async_wait(Socket::wait_read, [race, who](const boost::system::error_code&) {
            race->arrived(who);
        });
    }
}

} // namespace

void FirstReadable::start(asio::any_completion_handler<void(Outcome)> handler,
                          Side<ClientSocket> client, Side<tcp::socket> server, Duration timeout) {
    auto race = std::allocate_shared<Race>(asio::recycling_allocator<Race>());
    // Not `race->handler = std::move(handler)`: Boost 1.81's move assignment copies its argument
    // as an lvalue, which the converting constructor wraps in another handler, without end.
    race->handler.swap(handler);
    race->client = client.socket;
    race->server = server.socket;
    race->pending = (client.socket ? 1 : 0) + 1;
    if (timeout.count() > 0) {
        if (!timer_) timer_ = std::make_unique<asio::steady_timer>(server.socket->get_executor());
        race->timer = timer_.get();
        ++race->pending;
    }
    if (client.socket) start_side(race, client, &Race::client_read, Ready::client);
    start_side(race, server, &Race::server_read, Ready::server);
    if (race->timer) {
        race->timer->expires_after(timeout);
        race->timer->async_wait(
            [race](const boost::system::error_code&) { race->arrived(Ready::timeout); });
    }
}

} // namespace proxy
