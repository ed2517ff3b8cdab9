#pragma once

// One libpq connection driven by an Asio executor rather than by blocking calls (design.md:
// routing::Watcher): libpq's non-blocking API, with every wait a wait for readiness of
// PQsocket() through a posix::stream_descriptor raced against the deadline of the login or
// query it belongs to. The watcher keeps one per host.
//
// Thread safety: none; use it from its executor only. The owner keeps it alive until an
// operation it started has completed.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace routing {

struct ClearPgResult {
    void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, ClearPgResult>;

// libpq keywords and their values (PQconnectStartParams).
using ConnectParams = std::vector<std::pair<std::string, std::string>>;

struct QueryReply {
    PgResult rows;     // the statement's rows (PGRES_TUPLES_OK); null when it failed
    std::string error; // why it failed, on one line; empty on success
    bool timed_out = false;
};

class ProbeConnection {
public:
    explicit ProbeConnection(boost::asio::any_io_executor executor);
    ~ProbeConnection();
    ProbeConnection(const ProbeConnection&) = delete;
    ProbeConnection& operator=(const ProbeConnection&) = delete;

    // Logs in (closing the connection first if open); an empty string on success, else why
    // not (libpq's message on one line, which never includes the password). Bounded by
    // `timeout`, after which the attempt is abandoned.
    [[nodiscard]] boost::asio::awaitable<std::string> open(const ConnectParams& params,
                                                           std::chrono::milliseconds timeout);

    // Sends `sql` (one statement, simple query protocol) and reads its result, within
    // `timeout`. The connection closes itself when it can no longer be used: the server went
    // away, or the timeout passed with the protocol state unknown. An error the server reports
    // for the statement leaves it open.
    [[nodiscard]] boost::asio::awaitable<QueryReply> query(const char* sql,
                                                           std::chrono::milliseconds timeout);

    [[nodiscard]] bool is_open() const noexcept;
    void close() noexcept;

private:
    struct FinishPgConn {
        void operator()(PGconn* conn) const { PQfinish(conn); }
    };

    // libpq's socket registered with the reactor. libpq owns the socket and closes it in
    // PQfinish, so the descriptor is released when destroyed, never closed.
    class BorrowedSocket {
    public:
        BorrowedSocket(const boost::asio::any_io_executor& executor, int fd);
        ~BorrowedSocket();
        BorrowedSocket(const BorrowedSocket&) = delete;
        BorrowedSocket& operator=(const BorrowedSocket&) = delete;

        // Waits until the socket is ready for `what`: no error, or timed_out at `deadline`,
        // operation_aborted when cancelled, or why the reactor refused the socket.
        boost::asio::awaitable<boost::system::error_code>
        wait(boost::asio::posix::descriptor_base::wait_type what,
             std::chrono::steady_clock::time_point deadline);

    private:
        boost::asio::posix::stream_descriptor descriptor_;
        boost::system::error_code assign_error_;
    };

    boost::asio::awaitable<std::string> log_in(const ConnectParams& params,
                                               std::chrono::milliseconds timeout);
    boost::asio::awaitable<QueryReply> exchange(const char* sql, std::chrono::milliseconds timeout);
    [[nodiscard]] std::string error_message() const;

    boost::asio::any_io_executor executor_;
    std::unique_ptr<PGconn, FinishPgConn> conn_;
    // PQsocket() once logged in; during a login libpq may change sockets (see log_in).
    std::optional<BorrowedSocket> socket_;
};

} // namespace routing
