#include "pool/server_state.hpp"

namespace pool {

std::string_view to_string(ServerState state) noexcept {
    switch (state) {
    case ServerState::login:
        return "new";
    case ServerState::idle:
        return "idle";
    case ServerState::used:
        return "used";
    case ServerState::tested:
        return "tested";
    case ServerState::active:
        return "active";
    case ServerState::being_canceled:
        return "being_canceled";
    case ServerState::closing:
        return "closing";
    }
    return "unknown";
}

} // namespace pool
