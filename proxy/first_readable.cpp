#include "proxy/first_readable.hpp"

#include <boost/asio/recycling_allocator.hpp>

#include <optional>

namespace proxy {
namespace {

// One wait, shared by its callbacks. They own it, and it owns the waiting session's handler, as
// an Asio operation does: an io_context destroyed with the wait pending (pgmarina stopping)
// destroys the callbacks, this, and with it the session's coroutine.
struct Race {
    using Ready = FirstReadable::Ready;

    asio::any_completion_handler<void(Ready)> handler;
    ClientSocket* client = nullptr;
    tcp::socket* server = nullptr;
    asio::steady_timer* timer = nullptr;
    int pending = 0;
    std::optional<Ready> first;

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
        // Last: the session resumes inside this call and may start its next wait.
        auto resume = std::move(handler);
        std::move(resume)(*first);
    }
};

} // namespace

void FirstReadable::start(asio::any_completion_handler<void(Ready)> handler, ClientSocket* client,
                          tcp::socket& server, Duration timeout) {
    auto race = std::allocate_shared<Race>(asio::recycling_allocator<Race>());
    // Not `race->handler = std::move(handler)`: Boost 1.81's move assignment copies its argument
    // as an lvalue, which the converting constructor wraps in another handler, without end.
    race->handler.swap(handler);
    race->client = client;
    race->server = &server;
    race->pending = (client ? 1 : 0) + 1;
    if (timeout.count() > 0) {
        if (!timer_) timer_ = std::make_unique<asio::steady_timer>(server.get_executor());
        race->timer = timer_.get();
        ++race->pending;
    }
    if (client) {
        client->async_wait(ClientSocket::wait_read, [race](const boost::system::error_code&) {
            race->arrived(Ready::client);
        });
    }
    server.async_wait(tcp::socket::wait_read,
                      [race](const boost::system::error_code&) { race->arrived(Ready::server); });
    if (race->timer) {
        race->timer->expires_after(timeout);
        race->timer->async_wait(
            [race](const boost::system::error_code&) { race->arrived(Ready::timeout); });
    }
}

} // namespace proxy
