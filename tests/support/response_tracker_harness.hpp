#pragma once

// Helpers for wire::ResponseTracker tests, spelling a conversation as type bytes: `send(tracker,
// "PBES")` writes messages to the server, `relay(tracker, "12CZI")` reads the server's replies
// and returns what reaches the client, fakes included.

#include "tests/support/wire_builders.hpp"
#include "wire/response_tracker.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace wire::test {

inline Frame typed(char type, std::span<const std::byte> body = {}) {
    return Frame{type, body, {}};
}

// The messages `types` written to the server in order; 'D' takes the next character as its
// kind ('S' or 'P'). Each must be one the server answers or reads (not skipping to Sync).
inline void send(ResponseTracker& tracker, std::string_view types, Route route = Route::forward) {
    for (std::size_t i = 0; i < types.size(); ++i) {
        const char type = types[i];
        const Bytes body = type == 'D' ? raw(types.substr(++i, 1)) : Bytes{};
        CAPTURE(type);
        CHECK(tracker.on_frontend(typed(type, body), route));
    }
}

// What the client receives when the server sends `types`, 'Z' taking the next character as its
// status: the messages forwarded and the fakes, in order, spelled the same way.
inline std::string relay(ResponseTracker& tracker, std::string_view types) {
    std::string received;
    for (std::size_t i = 0; i < types.size(); ++i) {
        std::string token(1, types[i]);
        if (types[i] == 'Z' && i + 1 < types.size()) {
            token += types[++i];
        }
        const Bytes body = raw(std::string_view(token).substr(1));
        const Disposition disposition = tracker.on_backend(typed(token.front(), body));
        if (disposition.route == Route::forward) {
            received += token;
        }
        for (const FakeReply fake : disposition.fakes) {
            received += static_cast<char>(fake);
        }
    }
    return received;
}

inline std::string fakes_of(std::span<const FakeReply> fakes) {
    std::string out;
    for (const FakeReply fake : fakes) {
        out += static_cast<char>(fake);
    }
    return out;
}

} // namespace wire::test
