#pragma once

#include "wire/frame.hpp"
#include "wire/result.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <utility>
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

// Leaves the elements of a growing vector uninitialized: a receive buffer's bytes are written by
// the read that fills them, and std::vector<std::byte>::resize would first zero them (a 16 kB
// memset for each client's fresh buffer, a third of the proxy's instructions per transaction).
template <class T>
struct UninitializedAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = UninitializedAllocator<U>;
    };
    UninitializedAllocator() noexcept = default;
    template <class U>
    UninitializedAllocator(const UninitializedAllocator<U>& /*other*/) noexcept {}

    template <class U>
    void construct(U* at) noexcept {
        ::new (static_cast<void*>(at)) U; // default-initialized: no value for a byte
    }
    template <class U, class... Args>
    void construct(U* at, Args&&... args) {
        std::construct_at(at, std::forward<Args>(args)...);
    }
};

// Cuts a byte stream into frames. It owns the receive buffer so that a socket can read
// straight into it (prepare/commit) and frames can be returned as views without copying.
//
// Frames returned by next() and pieces returned by next_piece() stay valid until the next
// prepare() or feed(), which may move or reuse the buffer. Consumed bytes are only reclaimed by
// prepare(), when the free tail is too short, so consecutive frames cost no memmove. A framing
// error is sticky: the stream position is lost and every later next() or next_piece() returns
// the same error.
class Framer {
public:
    // One piece of the stream, for forwarding a message without holding all of it.
    struct Piece {
        // The message, for inspection: whole when `rest` is 0 and this is not a continuation;
        // for the start of a message longer than the hold limit, its type byte, length word and
        // the body bytes received so far (frame.body is a prefix of the real body, frame.raw
        // covers what arrived). Empty (type '\0', empty spans) for a continuation.
        Frame frame;
        // The bytes to forward now: frame.raw for a whole message or a start; the next part of
        // the current long message for a continuation.
        std::span<const std::byte> bytes;
        // Bytes of the message still to come after this piece.
        std::size_t rest = 0;
        bool continuation = false;
    };

    explicit Framer(Phase phase = Phase::startup, Limits limits = {}) noexcept
        : phase_(phase), limits_(limits) {}

    // Writable space for exactly `n` bytes, to be followed by one commit().
    [[nodiscard]] std::span<std::byte> prepare(std::size_t n);
    // `n` bytes of the last prepare()'s span were filled; throws std::logic_error if `n`
    // exceeds what was prepared.
    void commit(std::size_t n);
    void feed(std::span<const std::byte> data);
    // Gives the receive buffer back when it holds no unconsumed byte, so that a connection
    // waiting a long time for its peer (an idle client) costs no buffer memory; the next
    // prepare() allocates again. Frames handed out before are invalidated, as by prepare().
    void release_if_empty() noexcept;

    // The next complete frame, std::nullopt if more bytes are needed, or a framing error.
    // Throws std::logic_error while next_piece() is inside a long message: the buffer holds the
    // middle of that message, which no frame can be cut from.
    [[nodiscard]] Result<std::optional<Frame>> next();

    // Like next(), but a message longer than `hold` bytes (counting type byte and length word)
    // is handed out in pieces: its start once `hold` bytes of it have arrived, then each further
    // chunk of it as it arrives, so the buffer never holds much more than `hold` bytes of one
    // message and a 200 MB DataRow streams through in bounded memory. Messages up to `hold`
    // bytes come whole, exactly as from next(), and so does a longer one that is already all
    // buffered. The length word is checked against the limits before anything is handed out,
    // as in next(). A start needs the whole header even if `hold` is shorter. In the startup
    // phase `hold` is ignored: startup packets are small by limit and must be parsed whole.
    [[nodiscard]] Result<std::optional<Piece>> next_piece(std::size_t hold) noexcept;

    // The type byte of the next message, once it has arrived, so that a caller can choose the
    // `hold` for it (the prepared statement cache must see a whole Parse). std::nullopt in the
    // startup phase, inside a long message, or with nothing buffered.
    [[nodiscard]] std::optional<char> next_type() const noexcept {
        if (phase_ != Phase::typed || remaining_ != 0 || begin_ == end_) {
            return std::nullopt;
        }
        return static_cast<char>(buf_[begin_]);
    }

    // Received bytes not yet returned by next() or next_piece(): after an SSLRequest, anything
    // here arrived in plaintext before the TLS handshake and must be rejected.
    [[nodiscard]] std::span<const std::byte> buffered() const noexcept {
        return std::span(buf_).subspan(begin_, end_ - begin_);
    }

    [[nodiscard]] Phase phase() const noexcept { return phase_; }
    void set_phase(Phase phase) noexcept { phase_ = phase; }
    [[nodiscard]] const Limits& limits() const noexcept { return limits_; }
    // Bytes the receive buffer holds on to, consumed or not: what the connection costs in memory.
    [[nodiscard]] std::size_t capacity() const noexcept { return buf_.capacity(); }

private:
    std::vector<std::byte, UninitializedAllocator<std::byte>> buf_;
    std::size_t begin_ = 0;     // first byte not yet handed out by next() or next_piece()
    std::size_t end_ = 0;       // one past the last committed byte
    std::size_t prepared_ = 0;  // size of the span handed out by the last prepare()
    std::size_t remaining_ = 0; // bytes of a long message next_piece() has yet to hand out
    Phase phase_;
    Limits limits_;
    boost::system::error_code error_;
};

} // namespace wire
