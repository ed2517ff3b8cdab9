#pragma once

// A TCP relay between pgmarina and PostgreSQL that breaks connections on command, for fault
// injection tests: pgmarina's database `hosts` point at the relay's loopback port, and the relay
// forwards every connection it accepts to PostgreSQL until told to
//   - reset   a connection: RST toward pgmarina, close toward PostgreSQL (a crash, a firewall);
//   - cut     a connection in the middle of a server message: the next message PostgreSQL sends
//             on it that is longer than `after_bytes` bytes (any message for 1 to 4: every
//             message has a 5-byte header) is forwarded up to `after_bytes` bytes, then both
//             sides are closed (FIN), as when a network path dies under a reply;
//   - delay   the server's bytes on a connection by a fixed time (a slow or congested path);
//   - stall   a connection, delayed or not: nothing is read or forwarded either way (a black
//             hole; bytes held back by a delay stay held), then, after `then_reset`, it is
//             reset;
//   - black-hole new connections: accepted by TCP, then never forwarded nor answered (a host
//             that accepts connections but whose PostgreSQL hangs).
// Each command picks up to `count` of the connections open and not already under a fault, at
// random (seeded), and returns how many it picked; the relay's own thread carries it out.
//
// Message boundaries are those of PostgreSQL's plaintext protocol after the startup: run
// pgmarina with server_tls_sslmode = "disable" toward a relay (with TLS the relay would cut
// somewhere in a TLS record instead, which is still a fault, but not the one named).
//
// The relay applies backpressure: it reads from one side only while less than 1 MB waits for
// the other, so a slow reader is slow end to end, as on a real network.
//
// Thread safety: every public member may be called from any thread. One thread (started by the
// constructor, joined by the destructor) does all socket work; commands only set flags under
// a mutex and wake it, so no descriptor is closed under its poll().

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace support {

class FaultRelay {
public:
    struct Stats {
        std::size_t accepted = 0; // connections accepted so far
        std::size_t open = 0;     // connections open now (black-holed ones included)
        std::size_t resets = 0;   // faults carried out, by kind
        std::size_t cuts = 0;
        std::size_t stalls = 0;
        std::size_t delays = 0;
    };

    // Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:target_port.
    explicit FaultRelay(std::uint16_t target_port, std::uint32_t seed = 1);
    FaultRelay(const FaultRelay&) = delete;
    FaultRelay& operator=(const FaultRelay&) = delete;
    // Stops the thread and closes every connection.
    ~FaultRelay();

    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] Stats stats() const;

    static constexpr std::size_t all = static_cast<std::size_t>(-1);

    std::size_t reset(std::size_t count = all);
    std::size_t cut_mid_message(std::size_t after_bytes, std::size_t count = 1);
    std::size_t delay(std::chrono::milliseconds by, std::size_t count = 1);
    std::size_t stall(std::chrono::milliseconds then_reset, std::size_t count = 1);
    // While on, new connections are black-holed; turning it off leaves those already taken in.
    void black_hole_new(bool on);
    // Back to plain forwarding on every connection not yet broken: delays end, pending cuts
    // are disarmed (stalls still end in their reset).
    void heal();

private:
    struct Connection;
    using Clock = std::chrono::steady_clock;

    void run();
    // Connections eligible for a new fault (no fault yet, or only a delay when `delayed_too`),
    // shuffled, at most `count`. Caller holds mutex_.
    std::vector<Connection*> pick(std::size_t count, bool delayed_too = false);
    void wake() const;
    void accept_one();
    void start_upstream(Connection& connection) const;
    void on_upstream_readable(Connection& connection);
    void on_downstream_readable(Connection& connection);
    void flush(Connection& connection);
    void release_delayed(Connection& connection, Clock::time_point now);
    // Ends a connection: RST toward pgmarina when `reset`, else FIN.
    void close(Connection& connection, bool reset);

    std::uint16_t port_ = 0;
    std::uint16_t target_port_ = 0;
    int listener_ = -1;
    int wake_read_ = -1;
    int wake_write_ = -1;

    mutable std::mutex mutex_;
    bool stopping_ = false;
    bool black_hole_ = false;
    std::vector<std::unique_ptr<Connection>> connections_;
    Stats stats_;
    std::mt19937 random_;

    std::thread thread_;
};

} // namespace support
