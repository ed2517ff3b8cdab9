#pragma once

#include "wire/frame.hpp"
#include "wire/result.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace wire {

// PostgreSQL builds every message in a StringInfo, which cannot grow past MaxAllocSize
// (1 GiB - 1, utils/memutils.h), and refuses larger client messages (PQ_LARGE_MESSAGE_LIMIT).
// A length word above that (plus its own 4 bytes) cannot come from a correct peer.
inline constexpr std::size_t postgres_max_alloc_size = 0x3fff'ffff;

struct Limits {
    // The server's own MAX_STARTUP_PACKET_LENGTH (libpq/pqcomm.h); it bounds SSLRequest,
    // CancelRequest and the StartupMessage's parameter list.
    std::size_t max_startup_packet = 10'000;
    // Compared with the length word, which counts itself (as the server's pq_getmessage does).
    std::size_t max_message_size = postgres_max_alloc_size + 4;
};

// Before the StartupMessage has been accepted, packets carry no type byte (protocol docs,
// "Start-up"); an SSLRequest or GSSENCRequest keeps the stream in this phase. The owner of the
// connection switches to `typed` once it has accepted a StartupMessage.
enum class Phase { startup, typed };

// The frame at the front of `data`, if all of it is there. The header is checked against
// `limits` as soon as it is complete, so a bad length is reported before any body arrives.
// Views point into `data`; `raw.size()` is how much the frame occupies.
[[nodiscard]] Result<std::optional<Frame>> decode_frame(std::span<const std::byte> data,
                                                        Phase phase, const Limits& limits) noexcept;

// Cuts a byte stream into frames. It owns the receive buffer so that a socket can read
// straight into it (prepare/commit) and frames can be returned as views without copying.
//
// Frames returned by next() stay valid until the next prepare() or feed(), which may move or
// reuse the buffer. Consumed bytes are only reclaimed by prepare(), when the free tail is too
// short, so consecutive frames cost no memmove. A framing error is sticky: the stream position
// is lost and every later next() returns the same error.
class Framer {
public:
    explicit Framer(Phase phase = Phase::startup, Limits limits = {}) noexcept
        : phase_(phase), limits_(limits) {}

    // Writable space for exactly `n` bytes, to be followed by one commit().
    [[nodiscard]] std::span<std::byte> prepare(std::size_t n);
    // `n` bytes of the last prepare()'s span were filled; throws std::logic_error if `n`
    // exceeds what was prepared.
    void commit(std::size_t n);
    void feed(std::span<const std::byte> data);

    // The next complete frame, std::nullopt if more bytes are needed, or a framing error.
    [[nodiscard]] Result<std::optional<Frame>> next() noexcept;

    // Received bytes not yet returned by next(): after an SSLRequest, anything here arrived
    // in plaintext before the TLS handshake and must be rejected.
    [[nodiscard]] std::span<const std::byte> buffered() const noexcept {
        return std::span(buf_).subspan(begin_, end_ - begin_);
    }

    [[nodiscard]] Phase phase() const noexcept { return phase_; }
    void set_phase(Phase phase) noexcept { phase_ = phase; }
    [[nodiscard]] const Limits& limits() const noexcept { return limits_; }

private:
    std::vector<std::byte> buf_;
    std::size_t begin_ = 0;    // first byte not yet returned by next()
    std::size_t end_ = 0;      // one past the last committed byte
    std::size_t prepared_ = 0; // size of the span handed out by the last prepare()
    Phase phase_;
    Limits limits_;
    boost::system::error_code error_;
};

} // namespace wire
