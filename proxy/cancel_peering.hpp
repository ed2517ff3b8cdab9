// Several pgmarina instances behind one address (a Kubernetes Service, an L4 load balancer): a
// CancelRequest opens a new connection, which may land on an instance other than the one its
// client is connected to. Each instance has a `peer_id` (1..max_peer_id) and knows the others'
// addresses ([peers.<id>]); the id of the instance that issued a cancel key is written into the
// key, so any instance can tell whose it is and send it there as a plain CancelRequest
// (PgBouncer's peering, reference.md 2.4, with a layout of our own).
//
// A key's process id, with peering on:
//   bit 31     0 (some tools choke on negative PIDs)
//   bit 30     forwarded: set by the instance that forwards a cancel, never in a client's key
//   bits 16-29 the issuing instance's peer_id
//   bits 0-15  random
// and the 4-byte secret random: 48 random bits per key. A forwarded cancel is never forwarded
// again, so a cancel makes at most one hop whatever the peers' configurations say. Without
// peering (peer_id 0) the process id is 31 random bits, as before.
//
// Pure functions except send_cancel_to_peer.
#pragma once

#include "proxy/asio.hpp"
#include "proxy/cancel_registry.hpp"
#include "proxy/config.hpp"

#include <chrono>
#include <cstdint>
#include <map>

namespace proxy {

inline constexpr int max_peer_id = 16383; // 14 bits

// The process id of a key issued by instance `peer_id` (0: no peering), from random bits.
[[nodiscard]] std::int32_t make_process_id(std::uint32_t random, int peer_id) noexcept;
// The peer_id written in `key` by the instance that issued it, for an instance with peering on.
[[nodiscard]] int key_owner(const CancelKey& key) noexcept;
[[nodiscard]] bool key_forwarded(const CancelKey& key) noexcept;
// `key` as a forwarding instance sends it on: marked, so it is not forwarded again.
[[nodiscard]] CancelKey mark_forwarded(CancelKey key) noexcept;

struct CancelRoute {
    enum class Kind {
        local,   // ours (or no peering): look `key` up in our registry
        forward, // another instance's: send `key` to `peer`
        drop,    // forwarded to us by mistake, or the owner is not in [peers]
    };
    Kind kind = Kind::local;
    CancelKey key; // the key to look up (forwarded mark cleared) or to send (marked)
    int owner = 0; // the issuing instance, with peering on
    Endpoint peer; // for forward
};

// Where a CancelRequest carrying `key` goes, for the instance `own_peer_id` (0: no peering)
// with `peers` (its own entry, if listed, is ignored).
[[nodiscard]] CancelRoute route_cancel(const CancelKey& key, int own_peer_id,
                                       const std::map<int, Endpoint>& peers);

// Sends `key` as a CancelRequest to the pgmarina at `peer`: connect, 16 bytes, close. Gives up
// after `timeout`; false when it could not be sent.
asio::awaitable<bool> send_cancel_to_peer(Endpoint peer, CancelKey key,
                                          std::chrono::microseconds timeout);

} // namespace proxy
