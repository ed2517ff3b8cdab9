#pragma once

// libpq's asynchronous calls with deadlines, for integration tests that go beyond
// pq::Connection::exec (pipelines, COPY, extended queries, notifications): a hung server or
// proxy fails the test case through doctest's REQUIRE instead of hanging it.

#include "tests/support/pgmarina_process.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <poll.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace support::pq {

using Clock = std::chrono::steady_clock;

struct ClearResult {
    void operator()(PGresult* result) const { PQclear(result); }
};
using OwnedResult = std::unique_ptr<PGresult, ClearResult>;

// True once fd is readable (or in error, which is libpq's to report); false at the deadline.
inline bool wait_readable(int fd, Clock::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
        if (::poll(&entry, 1, static_cast<int>(left.count())) != 0) return true;
    }
}

// The next result libpq has, waiting for the server until `deadline`; nullptr ends the results
// of one query (and, in pipeline mode, comes after each query's results).
inline OwnedResult next_result(PGconn* conn, Clock::time_point deadline) {
    while (PQisBusy(conn) != 0) {
        REQUIRE_MESSAGE(wait_readable(PQsocket(conn), deadline), "no result before the deadline");
        REQUIRE_MESSAGE(PQconsumeInput(conn) == 1, PQerrorMessage(conn));
    }
    return OwnedResult{PQgetResult(conn)};
}

// Every result of what was sent, up to the nullptr that ends them; 10 s at most.
inline std::vector<OwnedResult> all_results(PGconn* conn) {
    const auto deadline = Clock::now() + std::chrono::seconds{10};
    std::vector<OwnedResult> results;
    while (auto result = next_result(conn, deadline))
        results.push_back(std::move(result));
    return results;
}

inline std::string status_of(const OwnedResult& result) {
    return result ? PQresStatus(PQresultStatus(result.get())) : "(no result)";
}

inline std::string value_of(const OwnedResult& result, int row = 0, int col = 0) {
    if (!result || row >= PQntuples(result.get()) || col >= PQnfields(result.get()))
        return "(no value)";
    return PQgetvalue(result.get(), row, col);
}

inline std::string sqlstate_of(const OwnedResult& result) {
    const char* code = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
    return code != nullptr ? code : "";
}

// A result as one comparable string: its status, then the SQLSTATE of an error or the first
// value of a one-row result ("PGRES_TUPLES_OK 1", "PGRES_FATAL_ERROR 22012", "(no result)").
inline std::string describe(const OwnedResult& result) {
    std::string text = status_of(result);
    if (result && PQresultStatus(result.get()) == PGRES_FATAL_ERROR)
        text += " " + sqlstate_of(result);
    if (result && PQresultStatus(result.get()) == PGRES_TUPLES_OK && PQntuples(result.get()) == 1)
        text += " " + value_of(result);
    return text;
}

} // namespace support::pq

namespace support {

// The last lines of pgmarina's log, where a failing case's own lines are.
inline std::string log_tail(const PgmarinaProcess& pgmarina, int lines = 25) {
    const std::string log = pgmarina.log();
    std::size_t start = log.size();
    for (int i = 0; i < lines && start != 0 && start != std::string::npos; ++i)
        start = log.rfind('\n', start - 1);
    return start == std::string::npos ? log : log.substr(start);
}

} // namespace support
