#include "routing/probe_connection.hpp"

#include <boost/asio/deferred.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <string_view>

namespace routing {

namespace asio = boost::asio;

namespace {

using Clock = std::chrono::steady_clock;

// libpq's messages end with a newline and may span lines ("...failed: Connection refused\n\t
// Is the server running...", one paragraph per address tried); logs and SHOW output want one
// line.
std::string one_line(std::string_view message) {
    std::string line;
    bool space = false;
    for (const char c : message) {
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            space = !line.empty();
            continue;
        }
        if (space) line += ' ';
        space = false;
        line += c;
    }
    return line;
}

// Adds one of a statement's results to `reply`: its rows, or the first error, which says why
// (what follows an error adds nothing).
void keep(QueryReply& reply, PgResult result) {
    if (!reply.error.empty()) return;
    if (PQresultStatus(result.get()) == PGRES_TUPLES_OK && !reply.rows) {
        reply.rows = std::move(result);
        return;
    }
    const std::string message = one_line(PQresultErrorMessage(result.get()));
    reply.error = message.empty() ? std::string{"unexpected result "} +
                                        PQresStatus(PQresultStatus(result.get()))
                                  : message;
    reply.rows.reset();
}

QueryReply failed(std::string error, bool timed_out = false) {
    QueryReply reply;
    reply.error = std::move(error);
    reply.timed_out = timed_out;
    return reply;
}

// Why a wait for libpq's socket ended without it being ready.
std::string interrupted(std::string_view what, boost::system::error_code error,
                        std::chrono::milliseconds timeout) {
    if (error == asio::error::timed_out)
        return std::string{what} + " timed out after " + std::to_string(timeout.count()) + " ms";
    return std::string{what} + " interrupted: " + error.message();
}

} // namespace

ProbeConnection::BorrowedSocket::BorrowedSocket(const asio::any_io_executor& executor, int fd)
    : descriptor_(executor) {
    descriptor_.assign(fd, assign_error_);
}

ProbeConnection::BorrowedSocket::~BorrowedSocket() {
    if (descriptor_.is_open()) descriptor_.release();
}

asio::awaitable<boost::system::error_code>
ProbeConnection::BorrowedSocket::wait(asio::posix::descriptor_base::wait_type what,
                                      Clock::time_point deadline) {
    if (assign_error_) co_return assign_error_;
    // The first to complete cancels the other; both have completed when the group does.
    asio::steady_timer timer{descriptor_.get_executor(), deadline};
    const auto [order, wait_error, timer_error] =
        co_await asio::experimental::make_parallel_group(
            descriptor_.async_wait(what, asio::deferred), timer.async_wait(asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    if (order[0] == 1 && !timer_error) co_return asio::error::timed_out;
    co_return wait_error;
}

ProbeConnection::ProbeConnection(asio::any_io_executor executor) : executor_(std::move(executor)) {}

ProbeConnection::~ProbeConnection() {
    close();
}

bool ProbeConnection::is_open() const noexcept {
    return conn_ && PQstatus(conn_.get()) == CONNECTION_OK;
}

void ProbeConnection::close() noexcept {
    // The descriptor goes first: PQfinish closes the socket it watches.
    socket_.reset();
    conn_.reset();
}

std::string ProbeConnection::error_message() const {
    return conn_ ? one_line(PQerrorMessage(conn_.get())) : "out of memory";
}

asio::awaitable<std::string> ProbeConnection::open(const ConnectParams& params,
                                                   std::chrono::milliseconds timeout) {
    close();
    std::string error = co_await log_in(params, timeout);
    if (!error.empty()) close();
    co_return error;
}

asio::awaitable<std::string> ProbeConnection::log_in(const ConnectParams& params,
                                                     std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::vector<const char*> keywords;
    std::vector<const char*> values;
    for (const auto& [keyword, value] : params) {
        keywords.push_back(keyword.c_str());
        values.push_back(value.c_str());
    }
    keywords.push_back(nullptr);
    values.push_back(nullptr);
    conn_.reset(PQconnectStartParams(keywords.data(), values.data(), 0));
    if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) co_return error_message();
    // Notices (a WARNING from the server) would otherwise go to stderr.
    PQsetNoticeProcessor(
        conn_.get(), [](void*, const char*) {}, nullptr);

    // libpq's documented loop: behave as if PQconnectPoll had asked to write, then wait for
    // what it asks for before calling it again.
    auto polled = PGRES_POLLING_WRITING;
    while (polled == PGRES_POLLING_READING || polled == PGRES_POLLING_WRITING) {
        // libpq may close its socket and open another one between two calls (the next address
        // of a host name, a retry without SSL under sslmode=prefer), possibly under the same
        // number, which a registration kept with the reactor would not notice. So each wait
        // registers the socket afresh.
        BorrowedSocket socket{executor_, PQsocket(conn_.get())};
        const auto error = co_await socket.wait(polled == PGRES_POLLING_READING
                                                    ? asio::posix::descriptor_base::wait_read
                                                    : asio::posix::descriptor_base::wait_write,
                                                deadline);
        if (error) co_return interrupted("login", error, timeout);
        polled = PQconnectPoll(conn_.get());
    }
    if (polled != PGRES_POLLING_OK) co_return error_message();
    // PQsendQuery and PQflush must not block the executor either.
    if (PQsetnonblocking(conn_.get(), 1) != 0) co_return error_message();
    socket_.emplace(executor_, PQsocket(conn_.get()));
    co_return std::string{};
}

asio::awaitable<QueryReply> ProbeConnection::query(const char* sql,
                                                   std::chrono::milliseconds timeout) {
    if (!is_open()) co_return failed("not connected");
    QueryReply reply = co_await exchange(sql, timeout);
    // After a timeout the protocol state is unknown; a lost connection is of no more use.
    if (reply.timed_out || !is_open()) close();
    co_return reply;
}

asio::awaitable<QueryReply> ProbeConnection::exchange(const char* sql,
                                                      std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    const auto failed_wait = [timeout](boost::system::error_code error) {
        return failed(interrupted("query", error, timeout), error == asio::error::timed_out);
    };
    PGconn* const conn = conn_.get();
    if (PQsendQuery(conn, sql) != 1) co_return failed(error_message());
    // A short query fits in the socket's buffer, so waiting only for writability cannot
    // deadlock against a server that is itself waiting to write to us.
    int unsent = PQflush(conn);
    while (unsent == 1) {
        const auto error =
            co_await socket_->wait(asio::posix::descriptor_base::wait_write, deadline);
        if (error) co_return failed_wait(error);
        unsent = PQflush(conn);
    }
    if (unsent != 0) co_return failed(error_message());

    // Every result up to the null one, so that the connection is idle again afterwards.
    QueryReply reply;
    bool more = true;
    while (more) {
        while (PQisBusy(conn) == 1) {
            const auto error =
                co_await socket_->wait(asio::posix::descriptor_base::wait_read, deadline);
            if (error) co_return failed_wait(error);
            if (PQconsumeInput(conn) != 1) co_return failed(error_message());
        }
        PgResult result{PQgetResult(conn)};
        more = result != nullptr;
        if (more) keep(reply, std::move(result));
    }
    if (reply.error.empty() && !reply.rows) reply.error = "the query returned no rows";
    co_return reply;
}

} // namespace routing
