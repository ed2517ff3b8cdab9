#pragma once

// Helpers shared by the wire::Framer unit tests (framer_test.cpp, framer_piece_test.cpp).

#include "tests/support/wire_builders.hpp"
#include "wire/framer.hpp"

#include <doctest/doctest.h>

#include <span>
#include <vector>

namespace wire::test {

// Frames until the framer needs more bytes; REQUIREs that no error occurs.
inline std::vector<Frame> drain(Framer& framer) {
    std::vector<Frame> frames;
    for (;;) {
        auto next = framer.next();
        REQUIRE(next);
        if (!*next) {
            return frames;
        }
        frames.push_back(**next);
    }
}

inline Bytes bytes_of(std::span<const std::byte> view) {
    return {view.begin(), view.end()};
}

// Query "SELECT 1", Sync, and a ReadyForQuery-shaped message: three frames of different sizes.
inline const Bytes stream = cat({msg('Q', str("SELECT 1")), msg('S', ""), msg('Z', "I")});

} // namespace wire::test
