#include "proxy/cancel_peering.hpp"

#include "proxy/deadline.hpp"
#include "proxy/stream_io.hpp"
#include "wire/fe_startup.hpp"
#include "wire/writer.hpp"

namespace proxy {
namespace {

constexpr std::uint32_t forwarded_bit = 1U << 30;
constexpr int owner_shift = 16;
constexpr std::uint32_t owner_mask = static_cast<std::uint32_t>(max_peer_id) << owner_shift;
constexpr std::uint32_t random_mask = (1U << owner_shift) - 1;

std::uint32_t bits(const CancelKey& key) noexcept {
    return static_cast<std::uint32_t>(key.process_id);
}

asio::awaitable<bool> deliver(Endpoint peer, CancelKey key) {
    const auto executor = co_await asio::this_coro::executor;
    tcp::resolver resolver{executor};
    auto [resolved, endpoints] =
        co_await resolver.async_resolve(peer.host, std::to_string(peer.port), nothrow);
    if (resolved) co_return false;
    tcp::socket socket{executor};
    auto [connected, endpoint] = co_await asio::async_connect(socket, endpoints, nothrow);
    if (connected) co_return false;
    wire::Writer writer;
    wire::fe::CancelRequest{key.process_id, key.secret}.encode(writer);
    co_return co_await write_all(socket, writer.bytes());
}

} // namespace

std::int32_t make_process_id(std::uint32_t random, int peer_id) noexcept {
    if (peer_id <= 0) return static_cast<std::int32_t>(random & 0x7fff'ffffU);
    const auto owner = static_cast<std::uint32_t>(peer_id) << owner_shift;
    return static_cast<std::int32_t>((owner & owner_mask) | (random & random_mask));
}

int key_owner(const CancelKey& key) noexcept {
    return static_cast<int>((bits(key) & owner_mask) >> owner_shift);
}

bool key_forwarded(const CancelKey& key) noexcept {
    return (bits(key) & forwarded_bit) != 0;
}

CancelKey mark_forwarded(CancelKey key) noexcept {
    key.process_id = static_cast<std::int32_t>(bits(key) | forwarded_bit);
    return key;
}

CancelRoute route_cancel(const CancelKey& key, int own_peer_id,
                         const std::map<int, Endpoint>& peers) {
    CancelRoute route;
    route.key = key;
    if (own_peer_id <= 0) return route;
    route.key.process_id = static_cast<std::int32_t>(bits(key) & ~forwarded_bit);
    route.owner = key_owner(key);
    if (route.owner == own_peer_id) return route;
    const auto peer = peers.find(route.owner);
    if (key_forwarded(key) || peer == peers.end()) {
        route.kind = CancelRoute::Kind::drop;
        return route;
    }
    route.kind = CancelRoute::Kind::forward;
    route.key = mark_forwarded(key);
    route.peer = peer->second;
    return route;
}

asio::awaitable<bool> send_cancel_to_peer(Endpoint peer, CancelKey key,
                                          std::chrono::microseconds timeout) {
    const auto sent = co_await within(timeout, deliver(std::move(peer), key));
    co_return sent&&* sent;
}

} // namespace proxy
