// The Framer on arbitrary streams, fed in arbitrary chunks through prepare()/commit() as a
// socket would. Input: a control byte (bit 0: start in the typed phase; bit 1: small limits),
// a seed for the chunk sizes, then the stream. Like the proxy, the harness switches to the
// typed phase after a StartupMessage.
//
// Checked: frames tile the stream in order, each frame's header agrees with its views and
// limits, errors are sticky, and received bytes are either returned or still buffered.

#include "wire/fe_startup.hpp"
#include "wire/framer.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
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

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const std::uint8_t control = data[0];
    std::uint32_t chunk_state = data[1];
    const auto stream = std::as_bytes(std::span(data + 2, size - 2));

    const Limits limits =
        (control & 2) != 0 ? Limits{.max_startup_packet = 64, .max_message_size = 64} : Limits{};
    Framer framer((control & 1) != 0 ? Phase::typed : Phase::startup, limits);

    std::vector<std::byte> returned;
    std::size_t received = 0;
    bool failed = false;
    while (received < stream.size() && !failed) {
        chunk_state = chunk_state * 1103515245u + 12345u;
        const std::size_t wanted = 1 + (chunk_state >> 16) % 300;
        const std::size_t got = std::min(wanted, stream.size() - received);
        const auto space = framer.prepare(wanted);
        require(space.size() == wanted);
        std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(received), got, space.begin());
        framer.commit(got);
        received += got;

        for (;;) {
            const Phase phase = framer.phase();
            auto next = framer.next();
            if (!next) {
                require(framer.next().error() == next.error());
                failed = true;
                break;
            }
            if (!*next) {
                break;
            }
            const Frame& frame = **next;
            check_frame(frame, phase, limits);
            returned.insert(returned.end(), frame.raw.begin(), frame.raw.end());
            if (phase == Phase::startup) {
                const auto packet = fe::parse_startup_packet(frame);
                if (packet && std::holds_alternative<fe::StartupMessage>(*packet)) {
                    framer.set_phase(Phase::typed);
                }
            }
        }
    }

    require(std::ranges::equal(returned, stream.first(returned.size())));
    if (!failed) {
        const auto buffered = framer.buffered();
        require(returned.size() + buffered.size() == received);
        require(std::ranges::equal(buffered, stream.subspan(returned.size(), buffered.size())));
    }
    return 0;
}
