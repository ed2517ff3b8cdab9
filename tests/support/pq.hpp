#pragma once

// A small RAII layer over libpq for tests: connect and query with deadlines, so that a hung
// server or proxy fails a test instead of hanging it, and read results and SQLSTATEs.
// Not thread-safe: one Connection belongs to one thread at a time, as a PGconn does.

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace support::pq {

inline constexpr std::chrono::milliseconds default_timeout{10'000};

class Result {
public:
    // Takes ownership of result, which may be null (libpq's way to report out of memory).
    explicit Result(PGresult* result);
    // A failure on the client side (timeout, lost connection) that left no PGresult.
    [[nodiscard]] static Result client_error(std::string message);

    // The statement succeeded: PGRES_COMMAND_OK or PGRES_TUPLES_OK.
    [[nodiscard]] bool ok() const;
    [[nodiscard]] int ntuples() const;
    [[nodiscard]] int nfields() const;
    // The text value of a field; throws std::out_of_range outside the result. NULL reads as "";
    // is_null tells them apart.
    [[nodiscard]] std::string value(int row, int col) const;
    [[nodiscard]] bool is_null(int row, int col) const;
    // The column names, in order.
    [[nodiscard]] std::vector<std::string> field_names() const;
    // The value in `row` of the column called `name`; throws std::out_of_range if none is.
    [[nodiscard]] std::string value(int row, std::string_view name) const;
    // The command tag, e.g. "INSERT 0 1".
    [[nodiscard]] std::string command_status() const;
    [[nodiscard]] std::string error_message() const;
    // The five-character SQLSTATE of an error reported by the server; "" otherwise.
    [[nodiscard]] std::string sqlstate() const;

private:
    struct Clear {
        void operator()(PGresult* result) const { PQclear(result); }
    };
    void check_field(int row, int col) const;

    std::unique_ptr<PGresult, Clear> result_;
    std::string client_error_;
};

class Connection {
public:
    // Never throws for a failed connection attempt: tests check ok(), error_message() and
    // sqlstate() (a wrong password gives "28P01").
    [[nodiscard]] static Connection connect(const std::string& conninfo,
                                            std::chrono::milliseconds timeout = default_timeout);

    [[nodiscard]] bool ok() const;
    [[nodiscard]] std::string error_message() const;
    // The SQLSTATE with which the server refused the connection attempt; "" if it did not.
    [[nodiscard]] std::string sqlstate() const;

    // Runs sql (one or more statements, simple query protocol) and returns the last result,
    // like PQexec. On timeout the connection is closed, since its protocol state is unknown.
    Result exec(const std::string& sql, std::chrono::milliseconds timeout = default_timeout);

    // For what this helper does not cover (extended protocol, pipelines, COPY).
    [[nodiscard]] PGconn* native() const;

private:
    struct Finish {
        void operator()(PGconn* conn) const { PQfinish(conn); }
    };
    Connection(PGconn* conn, std::string error);

    std::unique_ptr<PGconn, Finish> conn_;
    // Why the connection failed or was closed, when libpq's own message is not the reason.
    std::string error_;
};

} // namespace support::pq
