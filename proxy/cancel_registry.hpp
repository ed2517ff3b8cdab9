// Where a CancelRequest goes (reference.md 2.4). Every client gets its own random key in the
// BackendKeyData of its welcome; a CancelRequest, which arrives on a new connection and so on
// any worker, finds the client here and is sent to the server that client is linked to right
// now, with that server's key.
//
// Thread safety: every member may be called from any worker. The registry's map and each
// client's link have their own mutex, held only to read or write them.
#pragma once

#include "pool/ids.hpp"
#include "proxy/asio.hpp"

#include <boost/container/small_vector.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace proxy {

class ServerPool;

// The key of a protocol 3.0 BackendKeyData: a process id and a 4-byte secret.
struct CancelKey {
    std::int32_t process_id = 0;
    std::array<std::byte, 4> secret{};

    [[nodiscard]] std::uint64_t packed() const noexcept;
    friend bool operator==(const CancelKey&, const CancelKey&) = default;
};

// The server a client is linked to, as a canceller needs it.
struct ServerLink {
    std::shared_ptr<ServerPool> pool;
    pool::ServerId server{};
    pool::WaiterId client{};
    tcp::endpoint endpoint;
    std::int32_t process_id = 0;
    // Held inline up to PostgreSQL 18's 32 bytes: a link is made at every transaction.
    boost::container::small_vector<std::byte, 32> secret_key;
};

// One client's current link; the session sets it when it gets a server and clears it when it
// lets the server go.
class CancelTarget {
public:
    void link(ServerLink link);
    void unlink();
    [[nodiscard]] std::optional<ServerLink> current() const;

private:
    mutable std::mutex mutex_;
    std::optional<ServerLink> link_;
};

class CancelRegistry {
public:
    // A fresh random key for `target`, unique among the live ones, carrying `peer_id` (0: no
    // peering) as cancel_peering.hpp lays it out. The process id's sign bit is clear: some
    // tools choke on negative PIDs (PgBouncer, proto.c).
    [[nodiscard]] CancelKey add(std::shared_ptr<CancelTarget> target, int peer_id = 0);
    void remove(const CancelKey& key);
    [[nodiscard]] std::shared_ptr<CancelTarget> find(const CancelKey& key) const;

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::uint64_t, std::shared_ptr<CancelTarget>> targets_;
};

// Sends the cancel for `link`'s query: a new connection to its server, a CancelRequest with the
// server's key, close (protocol docs, "Canceling Requests in Progress"). The pool keeps the
// server from serving anyone else while this runs (Core::begin_cancel); nothing is sent when
// the client's link changed meanwhile. Gives up after `timeout` (cancel_wait_timeout).
asio::awaitable<void> send_cancel(ServerLink link, std::chrono::microseconds timeout);

} // namespace proxy
