#pragma once

// A PostgreSQL client over a plain socket, for what libpq will not send: hostile bytes, startup
// parameters and protocol versions of our choosing, a connection dropped in the middle of a
// message. It builds and reads messages itself rather than through wire/, so that a bug in the
// proxy's codec cannot hide in the test's.
//
// Every read has a deadline: a proxy that hangs fails the test instead of hanging it. Failures
// to connect or to log in throw std::runtime_error, which doctest reports as a failed case.
//
// Thread safety: none; use a Client from one thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace support::raw {

inline constexpr std::chrono::milliseconds default_timeout{5'000};

// A protocol message: its type byte and its body (the bytes after the length).
struct Message {
    char type = 0;
    std::string body;

    // A field of an ErrorResponse or NoticeResponse ('C' SQLSTATE, 'M' message); "" if absent.
    [[nodiscard]] std::string field(char code) const;
};

using Parameters = std::vector<std::pair<std::string, std::string>>;

// The protocol version 3.0, as a StartupMessage's first Int32 carries it.
inline constexpr std::int32_t protocol_3_0 = 196608;

// Message builders; bytes are carried in std::string.
[[nodiscard]] std::string startup_message(const Parameters& parameters,
                                          std::int32_t version = protocol_3_0);
[[nodiscard]] std::string message(char type, std::string_view body);
[[nodiscard]] std::string query(std::string_view sql);
// An Int32 in network byte order, for hand-made headers (a length of our choosing).
[[nodiscard]] std::string int32(std::uint32_t value);

class Client {
public:
    // Connects to 127.0.0.1:port.
    explicit Client(std::uint16_t port);
    // Connects to a Unix socket, e.g. DIR/.s.PGSQL.6432.
    explicit Client(const std::filesystem::path& unix_socket);
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    ~Client();

    // Sends a StartupMessage with user and database and reads up to the first ReadyForQuery:
    // for a proxy with auth_type trust, a complete login.
    void log_in_trusted(std::string_view user, std::string_view database);

    // Sends bytes as they are; false if the socket refused them (the peer is gone).
    bool send(std::string_view bytes);
    // The next message, or nullopt if none arrived in time or the peer closed (see closed()).
    std::optional<Message> read(std::chrono::milliseconds timeout = default_timeout);
    // Messages up to and including the first of `type`; throws if the peer closes first or the
    // deadline passes.
    std::vector<Message> read_until(char type, std::chrono::milliseconds timeout = default_timeout);
    // Messages until the peer closes; closed() tells whether it did within the timeout.
    std::vector<Message> read_until_closed(std::chrono::milliseconds timeout = default_timeout);
    // One byte, not a message: the answer to an SSLRequest or GSSENCRequest ('S' or 'N'); nullopt
    // if none arrived in time or the peer closed.
    std::optional<char> read_byte(std::chrono::milliseconds timeout = default_timeout);
    // Sends a simple Query and reads its replies up to ReadyForQuery.
    std::vector<Message> run(std::string_view sql);

    // True once a read saw the end of the stream (or a reset).
    [[nodiscard]] bool closed() const { return closed_; }
    // Closes the socket without a Terminate message, as a crashing client would.
    void drop();

private:
    // Reads more bytes into buffer_; false on timeout or end of stream.
    bool fill(std::chrono::steady_clock::time_point deadline);

    int fd_ = -1;
    bool closed_ = false;
    std::string buffer_;
};

} // namespace support::raw
