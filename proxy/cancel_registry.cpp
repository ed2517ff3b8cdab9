#include "proxy/cancel_registry.hpp"

#include "proxy/cancel_peering.hpp"
#include "proxy/deadline.hpp"
#include "proxy/log.hpp"
#include "proxy/server_pool.hpp"
#include "proxy/stream_io.hpp"
#include "wire/fe_startup.hpp"
#include "wire/writer.hpp"

#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace proxy {

std::uint64_t CancelKey::packed() const noexcept {
    std::uint32_t secret_bits = 0;
    std::memcpy(&secret_bits, secret.data(), secret.size());
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(process_id)) << 32) | secret_bits;
}

void CancelTarget::link(ServerLink link) {
    std::lock_guard lock{mutex_};
    link_ = std::move(link);
}

void CancelTarget::unlink() {
    std::lock_guard lock{mutex_};
    link_.reset();
}

std::optional<ServerLink> CancelTarget::current() const {
    std::lock_guard lock{mutex_};
    return link_;
}

CancelKey CancelRegistry::add(std::shared_ptr<CancelTarget> target, int peer_id) {
    for (;;) {
        std::array<unsigned char, 8> random{};
        if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
            throw std::runtime_error("no randomness for a cancel key");
        }
        CancelKey key;
        std::uint32_t pid = 0;
        std::memcpy(&pid, random.data(), 4);
        key.process_id = make_process_id(pid, peer_id);
        std::memcpy(key.secret.data(), random.data() + 4, 4);
        std::lock_guard lock{mutex_};
        if (targets_.try_emplace(key.packed(), target).second) return key;
    }
}

void CancelRegistry::remove(const CancelKey& key) {
    std::lock_guard lock{mutex_};
    targets_.erase(key.packed());
}

std::shared_ptr<CancelTarget> CancelRegistry::find(const CancelKey& key) const {
    std::lock_guard lock{mutex_};
    const auto found = targets_.find(key.packed());
    return found == targets_.end() ? nullptr : found->second;
}

namespace {

asio::awaitable<bool> deliver_cancel(const ServerLink& link) {
    tcp::socket socket{co_await asio::this_coro::executor};
    auto [ec] = co_await socket.async_connect(link.endpoint, nothrow);
    if (ec) co_return false;
    wire::Writer writer;
    wire::fe::CancelRequest{link.process_id,
                            std::span(link.secret_key.data(), link.secret_key.size())}
        .encode(writer);
    co_return co_await write_all(socket, writer.bytes());
}

} // namespace

asio::awaitable<void> send_cancel(ServerLink link, std::chrono::microseconds timeout) {
    if (!link.pool->begin_cancel(link.server, link.client)) co_return;
    const auto sent = co_await within(timeout, deliver_cancel(link));
    if (!sent || !*sent) {
        log::warning("S-", static_cast<std::uint64_t>(link.server),
                     " cancel request could not be sent");
    }
    link.pool->end_cancel(link.server);
}

} // namespace proxy
