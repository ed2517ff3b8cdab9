#include "tests/support/pq.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace support::pq {
namespace {

using Clock = std::chrono::steady_clock;

// Waits until fd is ready for events; false once deadline has passed.
bool wait_for_socket(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            return false;
        }
        pollfd entry{.fd = fd, .events = events, .revents = 0};
        const int ready =
            ::poll(&entry, 1, static_cast<int>(std::min<long long>(left.count(), INT_MAX)));
        if (ready > 0 || (ready < 0 && errno != EINTR)) {
            // A socket error is libpq's to report, on its next call.
            return true;
        }
    }
}

std::string describe_timeout(std::string_view what, std::chrono::milliseconds timeout) {
    return std::string(what) + " timed out after " + std::to_string(timeout.count()) + " ms";
}

} // namespace

Result::Result(PGresult* result) : result_(result) {
    if (result == nullptr) {
        client_error_ = "libpq returned no result (out of memory)";
    }
}

Result Result::client_error(std::string message) {
    Result result{nullptr};
    result.client_error_ = std::move(message);
    return result;
}

bool Result::ok() const {
    if (!result_) {
        return false;
    }
    const ExecStatusType status = PQresultStatus(result_.get());
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

int Result::ntuples() const {
    return result_ ? PQntuples(result_.get()) : 0;
}

int Result::nfields() const {
    return result_ ? PQnfields(result_.get()) : 0;
}

void Result::check_field(int row, int col) const {
    if (row < 0 || row >= ntuples() || col < 0 || col >= nfields()) {
        std::string message = "row " + std::to_string(row) + ", column " + std::to_string(col) +
                              " is outside a result of " + std::to_string(ntuples()) +
                              " rows and " + std::to_string(nfields()) + " columns";
        if (!ok()) {
            message += "; the statement failed: " + error_message();
        }
        throw std::out_of_range(message);
    }
}

std::string Result::value(int row, int col) const {
    check_field(row, col);
    return {PQgetvalue(result_.get(), row, col),
            static_cast<std::size_t>(PQgetlength(result_.get(), row, col))};
}

std::vector<std::string> Result::field_names() const {
    std::vector<std::string> names;
    for (int col = 0; col < nfields(); ++col)
        names.emplace_back(PQfname(result_.get(), col));
    return names;
}

std::string Result::value(int row, std::string_view name) const {
    const auto names = field_names();
    for (std::size_t col = 0; col < names.size(); ++col) {
        if (names[col] == name) return value(row, static_cast<int>(col));
    }
    throw std::out_of_range("no column " + std::string(name));
}

bool Result::is_null(int row, int col) const {
    check_field(row, col);
    return PQgetisnull(result_.get(), row, col) != 0;
}

std::string Result::command_status() const {
    return result_ ? PQcmdStatus(result_.get()) : "";
}

std::string Result::error_message() const {
    if (!client_error_.empty()) {
        return client_error_;
    }
    return PQresultErrorMessage(result_.get());
}

std::string Result::sqlstate() const {
    const char* code = result_ ? PQresultErrorField(result_.get(), PG_DIAG_SQLSTATE) : nullptr;
    return code != nullptr ? code : "";
}

Connection::Connection(PGconn* conn, std::string error) : conn_(conn), error_(std::move(error)) {}

Connection Connection::connect(const std::string& conninfo, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    PGconn* conn = PQconnectStart(conninfo.c_str());
    if (conn == nullptr) {
        return {nullptr, "libpq could not allocate a connection (out of memory)"};
    }
    Connection connection{conn, ""};
    // A refused connection attempt leaves no PGresult to read the SQLSTATE from, but verbose
    // errors put it into the message text ("FATAL:  28P01: ..."), where sqlstate() finds it.
    PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
    PostgresPollingStatusType status = PGRES_POLLING_WRITING;
    while (PQstatus(conn) != CONNECTION_BAD && status != PGRES_POLLING_OK &&
           status != PGRES_POLLING_FAILED) {
        const short events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (!wait_for_socket(PQsocket(conn), events, deadline)) {
            return {nullptr, describe_timeout("connecting", timeout)};
        }
        status = PQconnectPoll(conn);
    }
    PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
    return connection;
}

bool Connection::ok() const {
    return conn_ && PQstatus(conn_.get()) == CONNECTION_OK;
}

std::string Connection::error_message() const {
    if (!error_.empty()) {
        return error_;
    }
    return PQerrorMessage(conn_.get());
}

std::string Connection::sqlstate() const {
    static const std::regex severity_and_code{"(?:FATAL|ERROR|PANIC):  ([0-9A-Z]{5}): "};
    if (ok()) {
        return "";
    }
    const std::string message = error_message();
    std::smatch match;
    return std::regex_search(message, match, severity_and_code) ? match[1].str() : "";
}

Result Connection::exec(const std::string& sql, std::chrono::milliseconds timeout) {
    if (!ok()) {
        return Result::client_error("not connected: " + error_message());
    }
    const auto deadline = Clock::now() + timeout;
    PGconn* conn = conn_.get();
    if (PQsendQuery(conn, sql.c_str()) == 0) {
        return Result::client_error(PQerrorMessage(conn));
    }
    std::optional<Result> last;
    for (;;) {
        while (PQisBusy(conn) != 0) {
            if (!wait_for_socket(PQsocket(conn), POLLIN, deadline)) {
                error_ = describe_timeout("query", timeout) + "; connection closed";
                conn_.reset();
                return Result::client_error(error_);
            }
            if (PQconsumeInput(conn) == 0) {
                // The connection broke; PQgetResult reports that without waiting.
                break;
            }
        }
        PGresult* result = PQgetResult(conn);
        if (result == nullptr) {
            break;
        }
        const ExecStatusType status = PQresultStatus(result);
        last.emplace(result);
        if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
            // The caller carries on with the COPY through native().
            break;
        }
    }
    if (!last) {
        return Result::client_error("the server sent no result");
    }
    return std::move(*last);
}

PGconn* Connection::native() const {
    return conn_.get();
}

} // namespace support::pq
