#pragma once

#include <cstddef>
#include <span>

namespace wire {

// One protocol message as it arrived, viewed in place (nothing is copied). Forwarding sends
// `raw` untouched; the few messages the proxy must understand are parsed from `body`.
struct Frame {
    char type = '\0';                // '\0' for startup-phase packets, which have no type byte
    std::span<const std::byte> body; // everything after the length word
    std::span<const std::byte> raw;  // the whole frame: type byte (if any), length word, body
};

} // namespace wire
