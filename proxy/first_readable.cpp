#include "proxy/first_readable.hpp"

namespace proxy {

void FirstReadable::start(asio::any_completion_handler<void(Ready)> handler, ClientSocket* client,
                          tcp::socket& server, Duration timeout) {
    // Not `handler_ = std::move(handler)`: Boost 1.81's move assignment copies its argument as an
    // lvalue, which the converting constructor wraps in another handler, without end.
    handler_.swap(handler);
    client_ = client;
    server_ = &server;
    timed_ = timeout.count() > 0;
    first_.reset();
    pending_ = (client ? 1 : 0) + 1 + (timed_ ? 1 : 0);
    if (client) {
        client->async_wait(ClientSocket::wait_read,
                           [this](const boost::system::error_code&) { arrived(Ready::client); });
    }
    server.async_wait(tcp::socket::wait_read,
                      [this](const boost::system::error_code&) { arrived(Ready::server); });
    if (timed_) {
        if (!timer_) timer_ = std::make_unique<asio::steady_timer>(server.get_executor());
        timer_->expires_after(timeout);
        timer_->async_wait([this](const boost::system::error_code&) { arrived(Ready::timeout); });
    }
}

void FirstReadable::arrived(Ready who) {
    if (!first_) {
        // Whatever completes first wins, a cancellation too (KILL_CLIENT closes the client's
        // socket): the reader that follows finds out what happened.
        first_ = who;
        boost::system::error_code ignored; // a socket closed meanwhile has nothing to cancel
        if (client_ && who != Ready::client) client_->cancel(ignored);
        if (who != Ready::server) server_->cancel(ignored);
        if (timed_ && who != Ready::timeout) timer_->cancel();
    }
    if (--pending_ > 0) return;
    // Last: the session resumes inside this call and may start the next wait.
    auto handler = std::move(handler_);
    std::move(handler)(*first_);
}

} // namespace proxy
