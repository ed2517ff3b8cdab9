// The Framer on arbitrary streams, fed in arbitrary chunks through prepare()/commit() as a
// socket would. Input: a control byte (bit 0: start in the typed phase; bit 1: small limits;
// bits 2-7: the hold limit for next_piece(), in steps of 5 bytes), a seed for the chunk sizes,
// then the stream. Like the proxy, the harness switches to the typed phase after a
// StartupMessage.
//
// The stream is cut twice, by next() and by next_piece() with other chunk sizes. Checked:
// frames tile the stream in order, each frame's header agrees with its views and limits, errors
// are sticky, and received bytes are either returned or still buffered. Pieces reproduce the
// stream exactly, a long message's pieces add up to its length word, the buffer never keeps
// `hold` bytes of an unfinished message, and both cuts meet the same error at the same byte.

#include "wire/fe_startup.hpp"
#include "wire/framer.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <variant>
#include <vector>

namespace {

using namespace wire;

void require(bool condition) {
    if (!condition) {
        std::abort();
    }
}

void check_frame(const Frame& frame, Phase phase, const Limits& limits) {
    const bool typed = phase == Phase::typed;
    const std::size_t header = typed ? 5 : 4;
    require(frame.raw.size() == header + frame.body.size());
    require(frame.body.data() == frame.raw.data() + header);
    require(frame.raw.size() - (typed ? 1 : 0) <=
            (typed ? limits.max_message_size : limits.max_startup_packet));
    require(typed ? frame.type == static_cast<char>(frame.raw[0]) : frame.type == '\0');
}

// The start of a message too long to hold: its views agree with each other, and what it covers
// plus what is still to come is what its length word announces.
void check_start(const Framer::Piece& piece, std::size_t hold, const Limits& limits) {
    const Frame& frame = piece.frame;
    require(frame.raw.data() == piece.bytes.data() && frame.raw.size() == piece.bytes.size());
    require(frame.raw.size() >= std::max<std::size_t>(hold, 5));
    require(frame.raw.size() == 5 + frame.body.size());
    require(frame.body.data() == frame.raw.data() + 5);
    require(frame.type == static_cast<char>(frame.raw[0]));
    std::size_t length = 0;
    for (std::size_t i = 1; i < 5; ++i) {
        length = length << 8 | std::to_integer<std::size_t>(frame.raw[i]);
    }
    require(length <= limits.max_message_size);
    require(1 + length == frame.raw.size() + piece.rest);
}

// What reading `stream` into a framer came to.
struct Outcome {
    std::vector<std::byte> forwarded; // frames' raw bytes, or pieces' bytes, in order
    std::size_t received = 0;
    std::optional<boost::system::error_code> error;
};

// One simulated socket read: prepare() a pseudo-random size, as a read_some() would, and commit()
// what the stream still has of it.
void read_chunk(Framer& framer, std::span<const std::byte> stream, Outcome& outcome,
                std::uint32_t& chunk_state) {
    chunk_state = chunk_state * 1103515245u + 12345u;
    const std::size_t wanted = 1 + (chunk_state >> 16) % 300;
    const std::size_t got = std::min(wanted, stream.size() - outcome.received);
    const auto space = framer.prepare(wanted);
    require(space.size() == wanted);
    std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(outcome.received), got, space.begin());
    framer.commit(got);
    outcome.received += got;
}

// The proxy leaves the startup phase once it has accepted a StartupMessage.
void follow_phase(Framer& framer, const Frame& frame) {
    const auto packet = fe::parse_startup_packet(frame);
    if (packet && std::holds_alternative<fe::StartupMessage>(*packet)) {
        framer.set_phase(Phase::typed);
    }
}

// Framed by next(); each frame is checked and forwarded whole.
Outcome cut_frames(std::span<const std::byte> stream, Phase phase, const Limits& limits,
                   std::uint32_t chunk_state) {
    Framer framer(phase, limits);
    Outcome outcome;
    while (outcome.received < stream.size() && !outcome.error) {
        read_chunk(framer, stream, outcome, chunk_state);
        for (;;) {
            const Phase current = framer.phase();
            auto next = framer.next();
            if (!next) {
                require(framer.next().error() == next.error());
                outcome.error = next.error();
                break;
            }
            if (!*next) {
                break;
            }
            const Frame& frame = **next;
            check_frame(frame, current, limits);
            outcome.forwarded.insert(outcome.forwarded.end(), frame.raw.begin(), frame.raw.end());
            if (current == Phase::startup) {
                follow_phase(framer, frame);
            }
        }
    }
    if (!outcome.error) {
        const auto buffered = framer.buffered();
        require(outcome.forwarded.size() + buffered.size() == outcome.received);
        require(std::ranges::equal(buffered,
                                   stream.subspan(outcome.forwarded.size(), buffered.size())));
    }
    return outcome;
}

// Framed by next_piece(hold); messages longer than `hold` are forwarded in pieces.
Outcome cut_pieces(std::span<const std::byte> stream, Phase phase, const Limits& limits,
                   std::size_t hold, std::uint32_t chunk_state) {
    Framer framer(phase, limits);
    Outcome outcome;
    std::size_t rest = 0;
    while (outcome.received < stream.size() && !outcome.error) {
        read_chunk(framer, stream, outcome, chunk_state);
        for (;;) {
            const Phase current = framer.phase();
            auto next = framer.next_piece(hold);
            if (!next) {
                require(framer.next_piece(hold).error() == next.error());
                outcome.error = next.error();
                break;
            }
            if (!*next) {
                break;
            }
            const Framer::Piece& piece = **next;
            require(piece.continuation == (rest != 0));
            if (piece.continuation) {
                require(piece.frame.type == '\0' && piece.frame.raw.empty() &&
                        piece.frame.body.empty());
                require(!piece.bytes.empty() && piece.bytes.size() + piece.rest == rest);
            } else if (piece.rest == 0) {
                check_frame(piece.frame, current, limits);
                require(piece.bytes.data() == piece.frame.raw.data() &&
                        piece.bytes.size() == piece.frame.raw.size());
            } else {
                require(current == Phase::typed);
                check_start(piece, hold, limits);
            }
            rest = piece.rest;
            outcome.forwarded.insert(outcome.forwarded.end(), piece.bytes.begin(),
                                     piece.bytes.end());
            if (current == Phase::startup) {
                follow_phase(framer, piece.frame);
            }
        }
        // Inside a long message everything received has been handed out; otherwise what waits
        // is less than the hold limit (or the header that decides whether to hold).
        if (!outcome.error && framer.phase() == Phase::typed) {
            require(framer.buffered().size() < (rest != 0 ? 1 : std::max<std::size_t>(hold, 5)));
        }
    }
    if (!outcome.error) {
        const auto buffered = framer.buffered();
        require(outcome.forwarded.size() + buffered.size() == outcome.received);
    }
    return outcome;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const std::uint8_t control = data[0];
    const auto stream = std::as_bytes(std::span(data + 2, size - 2));
    const Phase phase = (control & 1) != 0 ? Phase::typed : Phase::startup;
    const Limits limits =
        (control & 2) != 0 ? Limits{.max_startup_packet = 64, .max_message_size = 64} : Limits{};
    const std::size_t hold = static_cast<std::size_t>(control >> 2) * 5;

    const Outcome frames = cut_frames(stream, phase, limits, data[1]);
    const Outcome pieces = cut_pieces(stream, phase, limits, hold, data[1] * 7919u + 1);

    require(std::ranges::equal(frames.forwarded, stream.first(frames.forwarded.size())));
    require(std::ranges::equal(pieces.forwarded, stream.first(pieces.forwarded.size())));
    // Both cuts see the same headers, so they fail on the same one; pieces may have forwarded
    // part of an unfinished last message that next() still holds.
    require(frames.error == pieces.error);
    require(frames.error ? pieces.forwarded.size() == frames.forwarded.size()
                         : pieces.forwarded.size() >= frames.forwarded.size());
    return 0;
}
