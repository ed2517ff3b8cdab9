#include "tests/support/fault_relay.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <utility>

namespace support {
namespace {

// How much may wait for one side before the relay stops reading from the other.
constexpr std::size_t backlog_limit = 1024 * 1024;

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("fault relay: " + what + ": " + std::strerror(errno));
}

void no_delay(int fd) {
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

bool would_block(int error) {
    return error == EAGAIN || error == EWOULDBLOCK || error == EINTR;
}

} // namespace

struct FaultRelay::Connection {
    int down = -1; // toward pgmarina (accepted)
    int up = -1;   // toward PostgreSQL (connected by the relay)
    bool connecting = false;
    bool black_holed = false;
    bool stalled = false;
    Clock::time_point reset_at = Clock::time_point::max();
    bool reset_pending = false;
    std::chrono::milliseconds delay{0};

    std::string to_up;   // pgmarina's bytes, due for PostgreSQL
    std::string to_down; // PostgreSQL's bytes, due for pgmarina now
    std::deque<std::pair<Clock::time_point, std::string>> delayed; // ... and later
    std::size_t delayed_bytes = 0;
    bool up_eof = false;   // PostgreSQL closed: pgmarina gets FIN once to_down is out
    bool down_eof = false; // pgmarina closed: PostgreSQL gets FIN once to_up is out

    // A cut: armed by the command, then aimed at the next message that starts (cutting), then
    // done once the bytes before the cut point are taken (the rest is never read).
    bool cut_armed = false;
    std::size_t cut_after = 1;
    bool cutting = false;
    std::size_t cut_at = 0;
    bool cut_done = false;

    // Where the server's stream is: the header of the current message so far, what is left of
    // its body, how many of its bytes went by.
    unsigned char header[5] = {};
    std::size_t header_have = 0;
    std::size_t body_left = 0;
    std::size_t message_pos = 0;

    bool closed() const { return down < 0 && up < 0; }
    bool faulted() const {
        return black_holed || stalled || reset_pending || cut_armed || cutting || cut_done ||
               delay.count() > 0;
    }
    std::size_t backlog_down() const { return to_down.size() + delayed_bytes; }

    // Walks `n` bytes of the server's stream through the message parser; returns how many go
    // on to pgmarina: all of them, unless the cut point falls inside them (then cut_done).
    std::size_t scan(const unsigned char* data, std::size_t n) {
        std::size_t i = 0;
        while (i < n) {
            if (header_have == 0 && body_left == 0) { // a message starts here
                message_pos = 0;
                cutting = cut_armed;
                cut_armed = false;
                cut_at = cut_after;
            }
            if (header_have < 5) {
                header[header_have++] = data[i++];
                ++message_pos;
                if (header_have == 5) {
                    std::uint32_t length = 0;
                    for (int k = 1; k < 5; ++k)
                        length = (length << 8) | header[k];
                    length = std::max<std::uint32_t>(length, 4);
                    body_left = length - 4;
                    // The message (length + 1 bytes) ends before the cut point: aim at the
                    // next one.
                    if (cutting && cut_at > length) {
                        cutting = false;
                        cut_armed = true;
                    }
                    if (body_left == 0) header_have = 0;
                }
            } else {
                std::size_t take = std::min(body_left, n - i);
                if (cutting) take = std::min(take, cut_at - message_pos);
                i += take;
                body_left -= take;
                message_pos += take;
                if (body_left == 0) header_have = 0;
            }
            if (cutting && message_pos == cut_at) {
                cutting = false;
                cut_done = true;
                return i;
            }
        }
        return n;
    }
};

FaultRelay::FaultRelay(std::uint16_t target_port, std::uint32_t seed) : random_(seed) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener_ < 0) fail("socket");
    const int on = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in address = loopback(0);
    socklen_t length = sizeof address;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 128) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(listener_);
        fail("listen");
    }
    port_ = ntohs(address.sin_port);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        ::close(listener_);
        fail("pipe2");
    }
    wake_read_ = pipe_fds[0];
    wake_write_ = pipe_fds[1];
    target_port_ = target_port;
    thread_ = std::thread([this] { run(); });
}

FaultRelay::~FaultRelay() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake();
    thread_.join();
    for (auto& connection : connections_)
        close(*connection, false);
    ::close(listener_);
    ::close(wake_read_);
    ::close(wake_write_);
}

FaultRelay::Stats FaultRelay::stats() const {
    std::lock_guard lock(mutex_);
    Stats out = stats_;
    out.open = static_cast<std::size_t>(
        std::ranges::count_if(connections_, [](const auto& c) { return !c->closed(); }));
    return out;
}

std::vector<FaultRelay::Connection*> FaultRelay::pick(std::size_t count, bool delayed_too) {
    std::vector<Connection*> eligible;
    for (auto& connection : connections_) {
        if (connection->closed()) continue;
        const bool delayed_only =
            delayed_too && connection->delay.count() > 0 &&
            !(connection->black_holed || connection->stalled || connection->reset_pending ||
              connection->cut_armed || connection->cutting || connection->cut_done);
        if (!connection->faulted() || delayed_only) eligible.push_back(connection.get());
    }
    std::shuffle(eligible.begin(), eligible.end(), random_);
    if (eligible.size() > count) eligible.resize(count);
    return eligible;
}

std::size_t FaultRelay::reset(std::size_t count) {
    std::size_t picked = 0;
    {
        std::lock_guard lock(mutex_);
        // Unlike the other faults, a reset also ends connections under another fault.
        std::vector<Connection*> open;
        for (auto& connection : connections_) {
            if (!connection->closed() && !connection->reset_pending)
                open.push_back(connection.get());
        }
        std::shuffle(open.begin(), open.end(), random_);
        if (open.size() > count) open.resize(count);
        for (Connection* connection : open)
            connection->reset_pending = true;
        picked = open.size();
    }
    wake();
    return picked;
}

std::size_t FaultRelay::cut_mid_message(std::size_t after_bytes, std::size_t count) {
    std::size_t picked = 0;
    {
        std::lock_guard lock(mutex_);
        for (Connection* connection : pick(count)) {
            connection->cut_armed = true;
            connection->cut_after = std::max<std::size_t>(after_bytes, 1);
            ++picked;
        }
    }
    wake();
    return picked;
}

std::size_t FaultRelay::delay(std::chrono::milliseconds by, std::size_t count) {
    std::size_t picked = 0;
    {
        std::lock_guard lock(mutex_);
        for (Connection* connection : pick(count)) {
            connection->delay = by;
            ++picked;
        }
        stats_.delays += picked;
    }
    wake();
    return picked;
}

std::size_t FaultRelay::stall(std::chrono::milliseconds then_reset, std::size_t count) {
    std::size_t picked = 0;
    {
        std::lock_guard lock(mutex_);
        for (Connection* connection : pick(count, true)) {
            connection->stalled = true;
            connection->reset_at = Clock::now() + then_reset;
            ++picked;
        }
        stats_.stalls += picked;
    }
    wake();
    return picked;
}

void FaultRelay::black_hole_new(bool on) {
    std::lock_guard lock(mutex_);
    black_hole_ = on;
}

void FaultRelay::heal() {
    {
        std::lock_guard lock(mutex_);
        for (auto& connection : connections_) {
            connection->delay = std::chrono::milliseconds{0};
            connection->cut_armed = false;
            connection->cutting = false;
        }
    }
    wake();
}

void FaultRelay::wake() const {
    const char byte = 1;
    [[maybe_unused]] const auto ignored = ::write(wake_write_, &byte, 1);
}

void FaultRelay::accept_one() {
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    no_delay(fd);
    auto connection = std::make_unique<Connection>();
    connection->down = fd;
    ++stats_.accepted;
    if (black_hole_) {
        connection->black_holed = true;
    } else {
        start_upstream(*connection);
    }
    connections_.push_back(std::move(connection));
}

void FaultRelay::start_upstream(Connection& connection) const {
    connection.up = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connection.up < 0) return;
    no_delay(connection.up);
    const sockaddr_in address = loopback(target_port_);
    if (::connect(connection.up, reinterpret_cast<const sockaddr*>(&address), sizeof address) ==
        0) {
        return;
    }
    if (errno == EINPROGRESS) {
        connection.connecting = true;
        return;
    }
    ::close(connection.up);
    connection.up = -1;
}

void FaultRelay::close(Connection& connection, bool reset) {
    if (connection.down >= 0) {
        if (reset) {
            const linger abort{.l_onoff = 1, .l_linger = 0};
            ::setsockopt(connection.down, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
        }
        ::close(connection.down);
        connection.down = -1;
    }
    if (connection.up >= 0) {
        ::close(connection.up);
        connection.up = -1;
    }
}

void FaultRelay::on_upstream_readable(Connection& connection) {
    unsigned char buffer[65536];
    const ssize_t n = ::recv(connection.up, buffer, sizeof buffer, 0);
    if (n < 0) {
        if (!would_block(errno)) close(connection, true);
        return;
    }
    if (n == 0) {
        connection.up_eof = true;
        return;
    }
    const std::size_t forward = connection.scan(buffer, static_cast<std::size_t>(n));
    std::string bytes(reinterpret_cast<const char*>(buffer), forward);
    if (connection.delay.count() > 0) {
        connection.delayed_bytes += bytes.size();
        connection.delayed.emplace_back(Clock::now() + connection.delay, std::move(bytes));
    } else {
        connection.to_down += bytes;
    }
    if (connection.cut_done) {
        ++stats_.cuts;
        ::close(connection.up);
        connection.up = -1;
    }
}

void FaultRelay::on_downstream_readable(Connection& connection) {
    char buffer[65536];
    const ssize_t n = ::recv(connection.down, buffer, sizeof buffer, 0);
    if (n < 0) {
        if (!would_block(errno)) close(connection, true);
        return;
    }
    if (n == 0) {
        connection.down_eof = true;
        return;
    }
    connection.to_up.append(buffer, static_cast<std::size_t>(n));
}

void FaultRelay::release_delayed(Connection& connection, Clock::time_point now) {
    while (!connection.delayed.empty() &&
           (connection.delay.count() == 0 || connection.delayed.front().first <= now)) {
        connection.delayed_bytes -= connection.delayed.front().second.size();
        connection.to_down += connection.delayed.front().second;
        connection.delayed.pop_front();
    }
}

void FaultRelay::flush(Connection& connection) {
    const auto send_some = [&](int fd, std::string& pending) {
        while (fd >= 0 && !pending.empty()) {
            const ssize_t n = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (would_block(errno)) return true;
                return false;
            }
            pending.erase(0, static_cast<std::size_t>(n));
        }
        return true;
    };
    if (!send_some(connection.down, connection.to_down)) {
        close(connection, true);
        return;
    }
    if (!connection.connecting && !send_some(connection.up, connection.to_up)) {
        close(connection, true);
        return;
    }
    const bool server_done =
        connection.up_eof || connection.cut_done || (connection.up < 0 && !connection.connecting);
    if (server_done && connection.to_down.empty() && connection.delayed.empty()) {
        close(connection, false);
    } else if (connection.down_eof && connection.to_up.empty()) {
        close(connection, false);
    }
}

void FaultRelay::run() {
    enum class Side { wake, listener, down, up };
    struct Watched {
        Side side;
        Connection* connection;
    };
    std::vector<pollfd> fds;
    std::vector<Watched> watched;
    for (;;) {
        int timeout_ms = -1;
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
            const auto now = Clock::now();
            // Commands and deadlines first: they may close connections.
            for (auto& owned : connections_) {
                Connection& c = *owned;
                if (c.closed()) continue;
                if (c.reset_pending || (c.stalled && c.reset_at <= now)) {
                    ++stats_.resets;
                    close(c, true);
                    continue;
                }
                if (c.stalled || c.black_holed) continue;
                release_delayed(c, now);
                flush(c);
            }
            std::erase_if(connections_, [](const auto& c) { return c->closed(); });

            fds.clear();
            watched.clear();
            fds.push_back({.fd = wake_read_, .events = POLLIN, .revents = 0});
            watched.push_back({Side::wake, nullptr});
            fds.push_back({.fd = listener_, .events = POLLIN, .revents = 0});
            watched.push_back({Side::listener, nullptr});
            auto next_deadline = Clock::time_point::max();
            for (auto& owned : connections_) {
                Connection& c = *owned;
                if (c.stalled) next_deadline = std::min(next_deadline, c.reset_at);
                if (c.stalled || c.black_holed) continue;
                if (!c.delayed.empty())
                    next_deadline = std::min(next_deadline, c.delayed.front().first);
                short down_events = 0;
                if (!c.down_eof && !c.connecting && c.to_up.size() < backlog_limit)
                    down_events |= POLLIN;
                if (!c.to_down.empty()) down_events |= POLLOUT;
                if (c.down >= 0 && down_events != 0) {
                    fds.push_back({.fd = c.down, .events = down_events, .revents = 0});
                    watched.push_back({Side::down, &c});
                }
                short up_events = 0;
                if (c.connecting) {
                    up_events = POLLOUT;
                } else {
                    if (!c.up_eof && !c.cut_done && c.backlog_down() < backlog_limit)
                        up_events |= POLLIN;
                    if (!c.to_up.empty()) up_events |= POLLOUT;
                }
                if (c.up >= 0 && up_events != 0) {
                    fds.push_back({.fd = c.up, .events = up_events, .revents = 0});
                    watched.push_back({Side::up, &c});
                }
            }
            if (next_deadline != Clock::time_point::max()) {
                const auto left =
                    std::chrono::ceil<std::chrono::milliseconds>(next_deadline - now).count();
                timeout_ms = static_cast<int>(std::clamp<long long>(left, 0, 1000));
            }
        }
        const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
        if (ready < 0 && errno != EINTR) return;
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        for (std::size_t i = 0; i < fds.size(); ++i) {
            const short revents = fds[i].revents;
            if (revents == 0) continue;
            const Watched& w = watched[i];
            if (w.side == Side::wake) {
                char drain[64];
                while (::read(wake_read_, drain, sizeof drain) > 0) {}
                continue;
            }
            if (w.side == Side::listener) {
                accept_one();
                continue;
            }
            Connection& c = *w.connection;
            // An earlier entry may have closed it, or a command stalled it since the poll.
            if (c.stalled || c.reset_pending) continue;
            if (w.side == Side::down && c.down == fds[i].fd) {
                if (revents & (POLLIN | POLLHUP | POLLERR)) on_downstream_readable(c);
            } else if (w.side == Side::up && c.up == fds[i].fd) {
                if (c.connecting) {
                    int error = 0;
                    socklen_t length = sizeof error;
                    ::getsockopt(c.up, SOL_SOCKET, SO_ERROR, &error, &length);
                    if (error != 0) {
                        close(c, true);
                        continue;
                    }
                    c.connecting = false;
                } else if (revents & (POLLIN | POLLHUP | POLLERR)) {
                    on_upstream_readable(c);
                }
            }
            if (!c.closed()) flush(c);
        }
    }
}

} // namespace support
