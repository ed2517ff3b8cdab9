#include "proxy/client_registry.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace proxy {

std::string_view to_string(ClientState state) noexcept {
    switch (state) {
    case ClientState::idle:
        return "idle";
    case ClientState::active:
        return "active";
    case ClientState::waiting:
        return "waiting";
    }
    return "idle";
}

std::optional<asio::ip::address> ip_address(const asio::generic::stream_protocol::endpoint& peer) {
    const sockaddr* address = peer.data();
    if (address->sa_family == AF_INET && peer.size() >= sizeof(sockaddr_in)) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(address);
        asio::ip::address_v4::bytes_type bytes;
        std::memcpy(bytes.data(), &in->sin_addr, bytes.size());
        return asio::ip::address_v4(bytes);
    }
    if (address->sa_family == AF_INET6 && peer.size() >= sizeof(sockaddr_in6)) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
        asio::ip::address_v6::bytes_type bytes;
        std::memcpy(bytes.data(), &in6->sin6_addr, bytes.size());
        return asio::ip::address_v6(bytes, in6->sin6_scope_id);
    }
    return std::nullopt;
}

namespace {

SocketAddress describe(const asio::generic::stream_protocol::endpoint& endpoint, int unix_port) {
    const auto address = ip_address(endpoint);
    if (!address) return {"unix", unix_port};
    const sockaddr* raw = endpoint.data();
    const auto port = raw->sa_family == AF_INET
                          ? reinterpret_cast<const sockaddr_in*>(raw)->sin_port
                          : reinterpret_cast<const sockaddr_in6*>(raw)->sin6_port;
    return {address->to_string(), ntohs(port)};
}

} // namespace

std::pair<SocketAddress, SocketAddress> socket_addresses(ClientSocket& socket, int unix_port) {
    boost::system::error_code ignored;
    return {describe(socket.remote_endpoint(ignored), unix_port),
            describe(socket.local_endpoint(ignored), unix_port)};
}

void ClientRegistry::add(std::shared_ptr<ClientInfo> client) {
    std::lock_guard lock{mutex_};
    const auto id = client->id;
    clients_.emplace(id, std::move(client));
}

void ClientRegistry::remove(std::uint64_t id) {
    std::lock_guard lock{mutex_};
    clients_.erase(id);
}

std::vector<std::shared_ptr<ClientInfo>> ClientRegistry::snapshot() const {
    std::lock_guard lock{mutex_};
    std::vector<std::shared_ptr<ClientInfo>> all;
    all.reserve(clients_.size());
    for (const auto& [id, client] : clients_)
        all.push_back(client);
    return all;
}

bool ClientRegistry::kill(std::uint64_t id) {
    std::shared_ptr<ClientInfo> client;
    {
        std::lock_guard lock{mutex_};
        const auto found = clients_.find(id);
        if (found == clients_.end()) return false;
        client = found->second;
    }
    close_on_worker(client);
    return true;
}

void ClientRegistry::kill_database(std::string_view database, std::uint64_t spare) {
    for (const auto& client : snapshot()) {
        if (client->id != spare && (database.empty() || client->database == database)) {
            close_on_worker(client);
        }
    }
}

void ClientRegistry::close_idle(ClientInfo::Clock::time_point cutoff) {
    const auto before = cutoff.time_since_epoch().count();
    for (const auto& client : snapshot()) {
        if (client->pool.user.empty()) continue; // the console's
        const auto request = client->request_time.load(std::memory_order_relaxed);
        const auto last = request != 0 ? request : client->connect_time.time_since_epoch().count();
        if (last >= before || client->state.load(std::memory_order_relaxed) != ClientState::idle) {
            continue;
        }
        // On the session's worker, an idle session waits for its client's next request (or
        // writes its welcome): cancelling that wait wakes it. Anything else it may be doing by
        // then changed its state first.
        asio::post(client->executor, [client] {
            boost::system::error_code ignored;
            if (client->socket &&
                client->state.load(std::memory_order_relaxed) == ClientState::idle)
                client->socket->cancel(ignored);
        });
    }
}

void ClientRegistry::close_on_worker(const std::shared_ptr<ClientInfo>& client) {
    client->killed = true;
    // The socket belongs to the session's io_context: only its thread may close it, and the
    // session may end meanwhile, which it says by clearing `socket` on that same thread.
    asio::post(client->executor, [client] {
        boost::system::error_code ignored;
        if (client->socket) client->socket->close(ignored);
    });
}

} // namespace proxy
