// What a Core asks its driver to do. Plain values: the driver executes them after the call that
// returned them, in order, and reports the outcome through the Core's event functions.
#pragma once

#include "pool/ids.hpp"

#include <boost/container/small_vector.hpp>

#include <optional>
#include <string_view>
#include <variant>

namespace pool {

// Why a server is closed or a waiter failed: PgBouncer's words for the same event, so that logs
// and client errors read the same ("closing because: server idle timeout").
namespace reason {
inline constexpr std::string_view query_wait_timeout = "query_wait_timeout";
inline constexpr std::string_view server_idle_timeout = "server idle timeout";
inline constexpr std::string_view server_lifetime = "server lifetime over";
inline constexpr std::string_view close_needed = "close_needed";
inline constexpr std::string_view evicted = "evicted";
// Release::close: the client is done but the server is not at ReadyForQuery 'I' with nothing
// outstanding, so it cannot be cleaned for someone else.
inline constexpr std::string_view server_not_ready = "client disconnect while server was not ready";
} // namespace reason

// Link the waiter to the server; the waiter's acquire is over. The server now belongs to the
// waiter's worker: when it lived on another one, the driver moves the socket over.
struct Assign {
    WaiterId waiter;
    ServerId server;

    friend bool operator==(const Assign&, const Assign&) = default;
};

// Connect and log in a new server, then report connected() or connect_failed().
struct Open {
    ServerId server;
    // The worker of the client it is opened for; std::nullopt for min_pool_size, where any worker
    // will do.
    std::optional<int> worker;
    // Beyond pool_size, from reserve_pool_size (PgBouncer logs "taking connection from
    // reserve_pool").
    bool reserve = false;

    friend bool operator==(const Open&, const Open&) = default;
};

// Terminate the server and report closed().
struct Close {
    ServerId server;
    std::string_view reason; // one of pool::reason, static storage

    friend bool operator==(const Close&, const Close&) = default;
};

// Run server_check_query, then report tested(); if it fails, close the server and report closed().
struct Check {
    ServerId server;

    friend bool operator==(const Check&, const Check&) = default;
};

// Run server_reset_query, then report tested(); if it fails, close the server and report closed().
struct Reset {
    ServerId server;

    friend bool operator==(const Reset&, const Reset&) = default;
};

// Give up on the waiter: send it an error with the reason and disconnect it, as PgBouncer does.
struct FailWaiter {
    WaiterId waiter;
    std::string_view reason; // one of pool::reason, static storage

    friend bool operator==(const FailWaiter&, const FailWaiter&) = default;
};

using Action = std::variant<Assign, Open, Close, Check, Reset, FailWaiter>;

// Most calls return zero to two actions; four fit without allocating.
using Actions = boost::container::small_vector<Action, 4>;

} // namespace pool
