// Every client connection past its login, for SHOW CLIENTS, SHOW POOLS cl_active, KILL_CLIENT and
// the exporter's client counts.
//
// Thread safety: the registry's map is guarded by a mutex held only to add, remove or copy
// entries. A ClientInfo's const fields are fixed at login; its atomics are written by its
// session and read by anyone; `socket` is touched only on the session's worker.
#pragma once

#include "pool/ids.hpp"
#include "proxy/asio.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

// SHOW CLIENTS `state` (PgBouncer 1.25).
enum class ClientState : std::uint8_t {
    idle,    // logged in, no server, nothing to do
    active,  // linked to a server
    waiting, // waiting for a server
};

[[nodiscard]] std::string_view to_string(ClientState state) noexcept;

// One end of a connection as SHOW CLIENTS and SHOW SERVERS print it: an IP address and port, or
// "unix" and the listen port for the Unix socket (as PgBouncer).
struct SocketAddress {
    std::string addr;
    int port = 0;
};

// The IP address of a TCP peer; nullopt for the Unix socket.
[[nodiscard]] std::optional<asio::ip::address>
ip_address(const asio::generic::stream_protocol::endpoint& peer);

// Both ends of a client's socket; `unix_port` stands in for the Unix socket's port.
[[nodiscard]] std::pair<SocketAddress, SocketAddress> socket_addresses(ClientSocket& socket,
                                                                       int unix_port);

struct ClientInfo {
    using Clock = std::chrono::system_clock;

    std::uint64_t id = 0;
    std::string user;     // as the client logged in
    std::string database; // as the client logged in
    pool::Key pool;       // the pool serving it (the forced user, if any); admin: empty user
    SocketAddress remote;
    SocketAddress local;
    Clock::time_point connect_time;
    std::string application_name;   // from the startup packet
    std::string tls;                // "TLSv1.3/TLS_AES_256_GCM_SHA384"; empty in plaintext
    asio::any_io_executor executor; // the session's worker

    std::atomic<ClientState> state{ClientState::idle};
    std::atomic<Clock::rep> request_time{0}; // the last request's start, Clock ticks
    std::atomic<Clock::rep> wait_since{0};   // while waiting: when it began
    std::atomic<std::uint64_t> link{0};      // the linked server's id, 0 when none
    std::atomic<std::uint32_t> prepared_statements{0};
    std::atomic<bool> killed{false};

    // The session's socket while it runs; closed by KILL_CLIENT on the session's worker.
    ClientSocket* socket = nullptr;
};

class ClientRegistry {
public:
    void add(std::shared_ptr<ClientInfo> client);
    void remove(std::uint64_t id);
    [[nodiscard]] std::vector<std::shared_ptr<ClientInfo>> snapshot() const;
    // Closes the client's connection (on its worker); false when no such client is logged in.
    bool kill(std::uint64_t id);
    // Closes every client of `database` ("" for all) except `spare` (the console's own).
    void kill_database(std::string_view database, std::uint64_t spare);
    // Graceful shutdown (shutdown.hpp): wakes the session of every pool client idle between
    // transactions since before `cutoff` (its last request began, or it connected, earlier);
    // the session tells its client 57P01 and closes.
    void close_idle(ClientInfo::Clock::time_point cutoff);

private:
    static void close_on_worker(const std::shared_ptr<ClientInfo>& client);

    mutable std::mutex mutex_;
    std::map<std::uint64_t, std::shared_ptr<ClientInfo>> clients_;
};

} // namespace proxy
