#include "tests/support/raw_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace support::raw {
namespace {

using Clock = std::chrono::steady_clock;

void put_i32(std::string& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((value >> shift) & 0xff));
}

std::uint32_t get_i32(std::string_view in) {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i)
        value = (value << 8) | static_cast<unsigned char>(in[static_cast<std::size_t>(i)]);
    return value;
}

std::string describe(const std::vector<Message>& messages) {
    std::string out;
    for (const Message& m : messages) {
        out += m.type;
        if (m.type == 'E') out += "(" + m.field('C') + " " + m.field('M') + ")";
        out += ' ';
    }
    return out;
}

} // namespace

std::string Message::field(char code) const {
    // Fields are a code byte and a C string each, ended by a zero byte.
    std::size_t at = 0;
    while (at < body.size() && body[at] != '\0') {
        const std::size_t end = body.find('\0', at + 1);
        if (end == std::string::npos) break;
        if (body[at] == code) return body.substr(at + 1, end - at - 1);
        at = end + 1;
    }
    return "";
}

std::string startup_message(const Parameters& parameters, std::int32_t version) {
    std::string body;
    put_i32(body, static_cast<std::uint32_t>(version));
    for (const auto& [name, value] : parameters) {
        body += name;
        body += '\0';
        body += value;
        body += '\0';
    }
    body += '\0';
    std::string out;
    put_i32(out, static_cast<std::uint32_t>(body.size() + 4));
    return out + body;
}

std::string message(char type, std::string_view body) {
    std::string out(1, type);
    put_i32(out, static_cast<std::uint32_t>(body.size() + 4));
    out += body;
    return out;
}

std::string int32(std::uint32_t value) {
    std::string out;
    put_i32(out, value);
    return out;
}

std::string query(std::string_view sql) {
    std::string body(sql);
    body += '\0';
    return message('Q', body);
}

Client::Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd_);
        throw std::runtime_error("connect to port " + std::to_string(port) + ": " + why);
    }
}

Client::Client(const std::filesystem::path& unix_socket) {
    sockaddr_un address{};
    const std::string path = unix_socket.string();
    if (path.size() >= sizeof address.sun_path) {
        throw std::runtime_error("Unix socket path too long: " + path);
    }
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd_);
        throw std::runtime_error("connect to " + path + ": " + why);
    }
}

Client::~Client() {
    drop();
}

void Client::drop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void Client::log_in_trusted(std::string_view user, std::string_view database) {
    send(startup_message({{"user", std::string(user)}, {"database", std::string(database)}}));
    const auto replies = read_until('Z');
    if (replies.front().type != 'R' || replies.front().body != std::string(4, '\0')) {
        throw std::runtime_error("login did not start with AuthenticationOk: " + describe(replies));
    }
}

bool Client::send(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool Client::fill(Clock::time_point deadline) {
    if (closed_ || fd_ < 0) return false;
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        pollfd entry{.fd = fd_, .events = POLLIN, .revents = 0};
        const int ready = ::poll(&entry, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return false;
        char chunk[65536];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            closed_ = true;
            return false;
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }
}

std::optional<Message> Client::read(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (buffer_.size() >= 5) {
            const std::uint32_t length = get_i32(std::string_view(buffer_).substr(1, 4));
            if (length < 4) throw std::runtime_error("message with length below 4 from the peer");
            if (buffer_.size() >= 1 + std::size_t{length}) {
                Message out{buffer_[0], buffer_.substr(5, length - 4)};
                buffer_.erase(0, 1 + std::size_t{length});
                return out;
            }
        }
        if (!fill(deadline)) return std::nullopt;
    }
}

std::optional<char> Client::read_byte(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (buffer_.empty()) {
        if (!fill(deadline)) return std::nullopt;
    }
    const char out = buffer_.front();
    buffer_.erase(0, 1);
    return out;
}

std::vector<Message> Client::read_until(char type, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::vector<Message> out;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        auto next = read(std::max(left, std::chrono::milliseconds{0}));
        if (!next) {
            throw std::runtime_error(std::string("no '") + type +
                                     "' message: " + (closed_ ? "peer closed" : "timed out") +
                                     " after " + describe(out));
        }
        out.push_back(std::move(*next));
        if (out.back().type == type) return out;
    }
}

std::vector<Message> Client::read_until_closed(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::vector<Message> out;
    while (!closed_) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) break;
        auto next = read(left);
        if (next) out.push_back(std::move(*next));
    }
    return out;
}

std::vector<Message> Client::run(std::string_view sql) {
    if (!send(query(sql))) throw std::runtime_error("cannot send a query: the peer is gone");
    return read_until('Z');
}

} // namespace support::raw
