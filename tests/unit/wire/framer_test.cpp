#include "wire/framer.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <stdexcept>

namespace {

using namespace wire::test;
using wire::errc;
using wire::Frame;
using wire::Framer;
using wire::Limits;
using wire::Phase;

// Frames until the framer needs more bytes; REQUIREs that no error occurs.
std::vector<Frame> drain(Framer& framer) {
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

Bytes bytes_of(std::span<const std::byte> view) {
    return {view.begin(), view.end()};
}

// Query "SELECT 1", Sync, and a ReadyForQuery-shaped message: three frames of different sizes.
const Bytes stream = cat({msg('Q', str("SELECT 1")), msg('S', ""), msg('Z', "I")});

void check_stream_frames(const std::vector<Frame>& frames) {
    REQUIRE(frames.size() == 3);
    CHECK(frames[0].type == 'Q');
    CHECK(bytes_of(frames[0].body) == str("SELECT 1"));
    CHECK(bytes_of(frames[0].raw) == msg('Q', str("SELECT 1")));
    CHECK(frames[1].type == 'S');
    CHECK(frames[1].body.empty());
    CHECK(bytes_of(frames[1].raw) == msg('S', ""));
    CHECK(frames[2].type == 'Z');
    CHECK(bytes_of(frames[2].body) == raw("I"));
}

const Bytes ssl_request = hex("00000008 04d2162f");

// A Framer::Piece with its views copied, so that it outlives the next feed().
struct CopiedPiece {
    char type;
    Bytes body;
    Bytes raw;
    Bytes bytes;
    std::size_t rest;
    bool continuation;
};

// Pieces until the framer needs more bytes; REQUIREs that no error occurs.
std::vector<CopiedPiece> drain_pieces(Framer& framer, std::size_t hold) {
    std::vector<CopiedPiece> pieces;
    for (;;) {
        auto next = framer.next_piece(hold);
        REQUIRE(next);
        if (!*next) {
            return pieces;
        }
        const Framer::Piece& piece = **next;
        pieces.push_back({piece.frame.type, bytes_of(piece.frame.body), bytes_of(piece.frame.raw),
                          bytes_of(piece.bytes), piece.rest, piece.continuation});
    }
}

// The byte at `offset` of a long synthetic stream, cheap to produce and to check.
std::byte pattern_at(std::size_t offset) {
    return static_cast<std::byte>(offset % 251);
}

} // namespace

TEST_SUITE("wire.framer") {
    TEST_CASE("empty input yields no frame") {
        Framer framer(Phase::typed);
        CHECK(drain(framer).empty());
        framer.feed({});
        CHECK(drain(framer).empty());
        CHECK(framer.buffered().empty());
    }

    TEST_CASE("one byte is not a frame yet") {
        SUBCASE("typed") {
            Framer framer(Phase::typed);
            framer.feed(hex("5a"));
            CHECK(drain(framer).empty());
            CHECK(framer.buffered().size() == 1);
        }
        SUBCASE("startup") {
            Framer framer;
            framer.feed(hex("00"));
            CHECK(drain(framer).empty());
        }
    }

    TEST_CASE("a header alone waits for its body") {
        Framer framer(Phase::typed);
        framer.feed(hex("51 0000000d"));
        CHECK(drain(framer).empty());
        CHECK(framer.buffered().size() == 5);
    }

    TEST_CASE("a header announcing an empty body is a whole frame") {
        Framer framer(Phase::typed);
        framer.feed(hex("53 00000004"));
        const auto frames = drain(framer);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].type == 'S');
        CHECK(frames[0].body.empty());
        CHECK(frames[0].raw.size() == 5);
        CHECK(framer.buffered().empty());
    }

    TEST_CASE("n-2 of n bytes, then the rest") {
        const Bytes query = msg('Q', str("SELECT 1"));
        Framer framer(Phase::typed);
        framer.feed(std::span(query).first(query.size() - 2));
        CHECK(drain(framer).empty());
        framer.feed(std::span(query).last(2));
        const auto frames = drain(framer);
        REQUIRE(frames.size() == 1);
        CHECK(bytes_of(frames[0].raw) == query);
    }

    TEST_CASE("several frames in one buffer, all still valid after the last next()") {
        Framer framer(Phase::typed);
        framer.feed(stream);
        check_stream_frames(drain(framer));
        CHECK(framer.buffered().empty());
    }

    TEST_CASE("a multi-message stream fed byte by byte") {
        Framer framer(Phase::typed);
        std::vector<Bytes> raws;
        for (const std::byte b : stream) {
            framer.feed(std::span(&b, 1));
            for (const auto& frame : drain(framer)) {
                raws.push_back(bytes_of(frame.raw));
            }
        }
        REQUIRE(raws.size() == 3);
        CHECK(cat({raws[0], raws[1], raws[2]}) == stream);
    }

    TEST_CASE("consecutive frames are cut in place, without moving the buffer") {
        Framer framer(Phase::typed);
        framer.feed(stream);
        const auto frames = drain(framer);
        REQUIRE(frames.size() == 3);
        CHECK(frames[1].raw.data() == frames[0].raw.data() + frames[0].raw.size());
        CHECK(frames[2].raw.data() == frames[1].raw.data() + frames[1].raw.size());
    }

    TEST_CASE("typed length below 4 is refused") {
        for (const std::int32_t length : {3, 0, -1, -2147483647 - 1}) {
            CAPTURE(length);
            Framer framer(Phase::typed);
            framer.feed(cat({raw("Q"), i32(length)}));
            CHECK(framer.next().error() == errc::length_too_small);
        }
    }

    TEST_CASE("startup length below 8 is refused") {
        for (const std::int32_t length : {7, 4, 0, -1}) {
            CAPTURE(length);
            Framer framer;
            framer.feed(i32(length));
            CHECK(framer.next().error() == errc::length_too_small);
        }
    }

    TEST_CASE("typed length over the cap is refused from the header alone") {
        Framer framer(Phase::typed, Limits{.max_message_size = 100});
        framer.feed(cat({raw("d"), i32(100)}));
        CHECK(drain(framer).empty());

        Framer over(Phase::typed, Limits{.max_message_size = 100});
        over.feed(cat({raw("d"), i32(101)}));
        CHECK(over.next().error() == errc::message_too_large);
    }

    TEST_CASE("the default cap admits PostgreSQL's largest message and nothing above") {
        const auto largest = static_cast<std::int32_t>(wire::postgres_max_alloc_size + 4);
        Framer framer(Phase::typed);
        framer.feed(cat({raw("D"), i32(largest)}));
        CHECK(drain(framer).empty());

        Framer over(Phase::typed);
        over.feed(cat({raw("D"), i32(largest + 1)}));
        CHECK(over.next().error() == errc::message_too_large);
    }

    TEST_CASE("startup packets are capped at 10000 bytes") {
        Framer framer;
        framer.feed(i32(10'000));
        CHECK(drain(framer).empty());

        Framer over;
        over.feed(i32(10'001));
        CHECK(over.next().error() == errc::startup_too_large);
    }

    TEST_CASE("errors are sticky") {
        Framer framer(Phase::typed);
        framer.feed(cat({raw("Q"), i32(2)}));
        CHECK(framer.next().error() == errc::length_too_small);
        framer.feed(msg('S', ""));
        CHECK(framer.next().error() == errc::length_too_small);
        framer.set_phase(Phase::startup);
        CHECK(framer.next().error() == errc::length_too_small);
    }

    TEST_CASE("startup packets, then typed messages after the switch") {
        const Bytes startup = packet(cat({i32(196608), str("user"), str("alice"), str("")}));
        Framer framer;
        CHECK(framer.phase() == Phase::startup);
        framer.feed(cat({startup, msg('p', str("secret"))}));

        auto first = framer.next();
        REQUIRE(first);
        REQUIRE(*first);
        CHECK((*first)->type == '\0');
        CHECK(bytes_of((*first)->raw) == startup);
        CHECK(same_bytes((*first)->body, std::span(startup).subspan(4)));

        framer.set_phase(Phase::typed);
        CHECK(framer.phase() == Phase::typed);
        const auto frames = drain(framer);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].type == 'p');
        CHECK(bytes_of(frames[0].body) == str("secret"));
    }

    TEST_CASE("a typed message read in the startup phase is not mistaken for a frame") {
        // 'Q' 00 00 00 ... read as a startup length is 0x51000000: far over the cap.
        Framer framer;
        framer.feed(msg('Q', str("SELECT 1")));
        CHECK(framer.next().error() == errc::startup_too_large);
    }

    TEST_CASE("bytes behind an SSLRequest stay visible in buffered()") {
        Framer framer;
        framer.feed(cat({ssl_request, raw("plaintext")}));
        auto first = framer.next();
        REQUIRE(first);
        REQUIRE(*first);
        CHECK(bytes_of((*first)->raw) == ssl_request);
        CHECK(bytes_of(framer.buffered()) == raw("plaintext"));
    }

    TEST_CASE("prepare and commit read straight into the buffer") {
        Framer framer(Phase::typed);
        const auto space = framer.prepare(64);
        REQUIRE(space.size() == 64);
        std::ranges::copy(stream, space.begin());
        framer.commit(stream.size());
        CHECK(framer.buffered().size() == stream.size());
        check_stream_frames(drain(framer));
    }

    TEST_CASE("commit of more than was prepared is a logic error") {
        Framer framer(Phase::typed);
        static_cast<void>(framer.prepare(4));
        CHECK_THROWS_AS(framer.commit(5), std::logic_error);
        framer.commit(0);
        CHECK_THROWS_AS(framer.commit(1), std::logic_error);
    }

    TEST_CASE("a prepare that fits in the free tail leaves buffered bytes in place") {
        Framer framer(Phase::typed);
        const auto space = framer.prepare(1000);
        std::ranges::copy(stream, space.begin());
        framer.commit(stream.size());
        REQUIRE(framer.next());
        const auto* before = framer.buffered().data();
        static_cast<void>(framer.prepare(10));
        framer.commit(0);
        CHECK(framer.buffered().data() == before);
    }

    TEST_CASE("a prepare that needs room reclaims consumed bytes and keeps the rest intact") {
        Framer framer(Phase::typed);
        framer.feed(stream);
        REQUIRE(framer.next());
        const Bytes pending = bytes_of(framer.buffered());
        const auto space = framer.prepare(4096);
        REQUIRE(space.size() == 4096);
        CHECK(bytes_of(framer.buffered()) == pending);
        const Bytes more = msg('X', "");
        std::ranges::copy(more, space.begin());
        framer.commit(more.size());
        const auto frames = drain(framer);
        REQUIRE(frames.size() == 3);
        CHECK(frames[0].type == 'S');
        CHECK(frames[1].type == 'Z');
        CHECK(frames[2].type == 'X');
    }

    TEST_CASE("a large message followed by small ones") {
        const Bytes big = msg('d', Bytes(200'000, std::byte{'x'}));
        Framer framer(Phase::typed);
        framer.feed(cat({big, msg('c', "")}));
        auto frames = drain(framer);
        REQUIRE(frames.size() == 2);
        CHECK(frames[0].body.size() == 200'000);
        CHECK(frames[1].type == 'c');
        framer.feed(msg('S', ""));
        frames = drain(framer);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].type == 'S');
    }

    TEST_CASE("random bytes in random chunks never crash and frames tile the input") {
        std::mt19937 rng(20240611);
        for (int round = 0; round < 2000; ++round) {
            CAPTURE(round);
            Bytes input(rng() % 64);
            for (auto& b : input) {
                // Mostly small values so that plausible lengths turn up often.
                b = static_cast<std::byte>(rng() % 4 == 0 ? rng() : rng() % 12);
            }
            Framer framer(rng() % 2 == 0 ? Phase::typed : Phase::startup,
                          Limits{.max_startup_packet = 40, .max_message_size = 40});
            Bytes tiled;
            bool failed = false;
            for (std::size_t at = 0; at < input.size() && !failed;) {
                const std::size_t chunk = std::min<std::size_t>(1 + rng() % 8, input.size() - at);
                framer.feed(std::span(input).subspan(at, chunk));
                at += chunk;
                for (;;) {
                    auto next = framer.next();
                    if (!next) {
                        failed = true;
                        CHECK(framer.next().error() == next.error());
                        break;
                    }
                    if (!*next) {
                        break;
                    }
                    const auto& frame = **next;
                    CHECK(frame.raw.size() <= 41);
                    CHECK(frame.body.data() + frame.body.size() ==
                          frame.raw.data() + frame.raw.size());
                    tiled.insert(tiled.end(), frame.raw.begin(), frame.raw.end());
                }
            }
            const Bytes rest = failed ? Bytes() : bytes_of(framer.buffered());
            CHECK(std::equal(tiled.begin(), tiled.end(), input.begin()));
            if (!failed) {
                CHECK(cat({tiled, rest}) == input);
            }
        }
    }

    TEST_CASE("next_type peeks at the next message's type, and only between messages") {
        Framer framer(Phase::typed);
        CHECK_FALSE(framer.next_type());
        const Bytes big = msg('P', Bytes(100, std::byte{'x'}));
        framer.feed(std::span(big).first(1));
        CHECK(framer.next_type() == 'P');
        framer.feed(std::span(big).subspan(1, 50));
        auto start = framer.next_piece(20);
        REQUIRE(start);
        REQUIRE(*start);
        CHECK(framer.next_type() == std::nullopt);
        framer.feed(std::span(big).subspan(51));
        while (auto piece = framer.next_piece(20)) {
            if (!*piece) break;
        }
        CHECK_FALSE(framer.next_type());
        Framer startup(Phase::startup);
        startup.feed(big);
        CHECK_FALSE(startup.next_type());
    }

    TEST_CASE("next_piece hands out messages up to the hold limit whole, as next() does") {
        Framer framer(Phase::typed);
        Framer reference(Phase::typed);
        framer.feed(stream);
        reference.feed(stream);
        const auto frames = drain(reference);
        REQUIRE(frames.size() == 3);
        for (const Frame& frame : frames) {
            auto next = framer.next_piece(frame.raw.size());
            REQUIRE(next);
            REQUIRE(*next);
            const Framer::Piece& piece = **next;
            CHECK(piece.frame.type == frame.type);
            CHECK(same_bytes(piece.frame.body, frame.body));
            CHECK(same_bytes(piece.frame.raw, frame.raw));
            CHECK(piece.bytes.data() == piece.frame.raw.data());
            CHECK(piece.bytes.size() == piece.frame.raw.size());
            CHECK(piece.rest == 0);
            CHECK_FALSE(piece.continuation);
        }
        CHECK(framer.buffered().empty());

        Framer bytewise(Phase::typed);
        std::vector<Bytes> raws;
        for (const std::byte b : stream) {
            bytewise.feed(std::span(&b, 1));
            for (const auto& piece : drain_pieces(bytewise, 64)) {
                CHECK(piece.rest == 0);
                CHECK_FALSE(piece.continuation);
                CHECK(piece.bytes == piece.raw);
                raws.push_back(piece.raw);
            }
        }
        REQUIRE(raws.size() == 3);
        CHECK(cat({raws[0], raws[1], raws[2]}) == stream);
    }

    TEST_CASE("a message longer than the hold limit streams as a start and continuations") {
        constexpr std::size_t hold = 64 * 1024;
        Bytes body(1024 * 1024 - 5);
        for (std::size_t i = 0; i < body.size(); ++i) {
            body[i] = pattern_at(i);
        }
        const Bytes big = msg('D', body);
        const Bytes small = msg('Z', "I");
        const Bytes input = cat({big, small});

        std::mt19937 rng(20240612);
        Framer framer(Phase::typed);
        std::vector<CopiedPiece> pieces;
        for (std::size_t at = 0; at < input.size();) {
            std::size_t chunk = std::min<std::size_t>(1 + rng() % 100'000, input.size() - at);
            // The last chunk holds the end of `big` and all of `small`.
            if (at + chunk >= big.size()) {
                chunk = input.size() - at;
            }
            const auto space = framer.prepare(chunk);
            std::copy_n(input.begin() + static_cast<std::ptrdiff_t>(at), chunk, space.begin());
            framer.commit(chunk);
            at += chunk;
            for (auto& piece : drain_pieces(framer, hold)) {
                pieces.push_back(std::move(piece));
            }
        }

        REQUIRE(pieces.size() >= 3);
        const CopiedPiece& start = pieces.front();
        CHECK_FALSE(start.continuation);
        CHECK(start.type == 'D');
        CHECK(start.bytes.size() >= hold);
        CHECK(start.bytes.size() < big.size());
        CHECK(start.raw == start.bytes);
        CHECK(start.body.size() == start.raw.size() - 5);
        CHECK(std::equal(start.body.begin(), start.body.end(), body.begin()));
        CHECK(start.rest == big.size() - start.bytes.size());

        Bytes forwarded = start.bytes;
        std::size_t rest = start.rest;
        for (std::size_t i = 1; i + 1 < pieces.size(); ++i) {
            CAPTURE(i);
            const CopiedPiece& piece = pieces[i];
            CHECK(piece.continuation);
            CHECK(piece.type == '\0');
            CHECK(piece.body.empty());
            CHECK(piece.raw.empty());
            CHECK_FALSE(piece.bytes.empty());
            REQUIRE(piece.bytes.size() <= rest);
            rest -= piece.bytes.size();
            CHECK(piece.rest == rest);
            forwarded.insert(forwarded.end(), piece.bytes.begin(), piece.bytes.end());
        }
        CHECK(rest == 0);
        CHECK(forwarded == big);

        const CopiedPiece& last = pieces.back();
        CHECK_FALSE(last.continuation);
        CHECK(last.type == 'Z');
        CHECK(last.body == raw("I"));
        CHECK(last.bytes == small);
        CHECK(last.rest == 0);
        CHECK(framer.buffered().empty());
    }

    TEST_CASE("streaming 50 MB in 16 KiB reads keeps the buffer bounded") {
        constexpr std::size_t hold = 64 * 1024;
        constexpr std::size_t read_size = 16 * 1024;
        constexpr std::size_t body_size = 50 * 1024 * 1024;
        const Bytes header = cat({raw("D"), i32(static_cast<std::int32_t>(body_size + 4))});
        const Bytes after = msg('C', str("SELECT 1"));
        const std::size_t total = header.size() + body_size + after.size();

        // The stream's byte at `offset`: header, patterned body, then `after`.
        const auto input_at = [&](std::size_t offset) {
            if (offset < header.size()) {
                return header[offset];
            }
            if (offset < header.size() + body_size) {
                return pattern_at(offset - header.size());
            }
            return after[offset - header.size() - body_size];
        };

        Framer framer(Phase::typed);
        std::size_t received = 0;
        std::size_t forwarded = 0;
        std::size_t starts = 0;
        std::size_t max_capacity = 0;
        bool intact = true;
        bool after_seen = false;
        while (received < total) {
            const auto space = framer.prepare(read_size);
            const std::size_t got = std::min(read_size, total - received);
            for (std::size_t i = 0; i < got; ++i) {
                space[i] = input_at(received + i);
            }
            framer.commit(got);
            received += got;
            for (;;) {
                auto next = framer.next_piece(hold);
                REQUIRE(next);
                if (!*next) {
                    break;
                }
                const Framer::Piece& piece = **next;
                if (!piece.continuation && piece.frame.type == 'C') {
                    after_seen = piece.rest == 0 && bytes_of(piece.bytes) == after;
                }
                starts += piece.continuation ? 0 : 1;
                for (std::size_t i = 0; i < piece.bytes.size(); ++i) {
                    intact = intact && piece.bytes[i] == input_at(forwarded + i);
                }
                forwarded += piece.bytes.size();
            }
            max_capacity = std::max(max_capacity, framer.capacity());
        }
        CHECK(forwarded == total);
        CHECK(intact);
        CHECK(starts == 2);
        CHECK(after_seen);
        CHECK(max_capacity <= hold + 4 * read_size);
    }

    TEST_CASE("next_piece refuses a length over the cap before streaming anything") {
        Framer framer(Phase::typed, Limits{.max_message_size = 1000});
        framer.feed(cat({raw("d"), i32(1001), Bytes(2000, std::byte{'x'})}));
        CHECK(framer.next_piece(64).error() == errc::message_too_large);
        CHECK(framer.next_piece(64).error() == errc::message_too_large);
        CHECK(framer.next().error() == errc::message_too_large);

        Framer at_cap(Phase::typed, Limits{.max_message_size = 1000});
        at_cap.feed(cat({raw("d"), i32(1000), Bytes(100, std::byte{'x'})}));
        const auto pieces = drain_pieces(at_cap, 64);
        REQUIRE(pieces.size() == 1);
        CHECK_FALSE(pieces[0].continuation);
        CHECK(pieces[0].bytes.size() == 105);
        CHECK(pieces[0].rest == 1001 - 105);
    }

    TEST_CASE("a bad header after a streamed message is a sticky error") {
        Framer framer(Phase::typed);
        framer.feed(cat({msg('d', Bytes(100, std::byte{'x'})), raw("Q"), i32(2)}));
        auto start = framer.next_piece(10);
        REQUIRE(start);
        REQUIRE(*start);
        CHECK((*start)->bytes.size() == 105);
        CHECK((*start)->rest == 0);
        CHECK(framer.next_piece(10).error() == errc::length_too_small);
        CHECK(framer.next_piece(10).error() == errc::length_too_small);
    }

    TEST_CASE("a message exactly hold bytes long comes whole") {
        constexpr std::size_t hold = 100;
        const Bytes exact = msg('d', Bytes(hold - 5, std::byte{'x'}));
        Framer framer(Phase::typed);
        framer.feed(std::span(exact).first(hold - 1));
        CHECK(drain_pieces(framer, hold).empty());
        framer.feed(std::span(exact).last(1));
        auto pieces = drain_pieces(framer, hold);
        REQUIRE(pieces.size() == 1);
        CHECK_FALSE(pieces[0].continuation);
        CHECK(pieces[0].rest == 0);
        CHECK(pieces[0].bytes == exact);
        CHECK(pieces[0].raw == exact);

        // One byte longer, it starts streaming as soon as `hold` bytes are there.
        const Bytes longer = msg('d', Bytes(hold - 4, std::byte{'x'}));
        framer.feed(std::span(longer).first(hold));
        pieces = drain_pieces(framer, hold);
        REQUIRE(pieces.size() == 1);
        CHECK_FALSE(pieces[0].continuation);
        CHECK(pieces[0].type == 'd');
        CHECK(pieces[0].bytes.size() == hold);
        CHECK(pieces[0].rest == 1);
        framer.feed(std::span(longer).last(1));
        pieces = drain_pieces(framer, hold);
        REQUIRE(pieces.size() == 1);
        CHECK(pieces[0].continuation);
        CHECK(pieces[0].bytes == raw("x"));
        CHECK(pieces[0].rest == 0);
    }

    TEST_CASE("next_piece leaves the startup phase unaffected") {
        const Bytes startup = packet(cat({i32(196608), str("user"), str("alice"), str("")}));
        Framer framer;
        framer.feed(std::span(startup).first(startup.size() - 1));
        CHECK(drain_pieces(framer, 8).empty());
        framer.feed(
            cat({bytes_of(std::span(startup).last(1)), msg('d', Bytes(20, std::byte{'x'}))}));
        auto next = framer.next_piece(8);
        REQUIRE(next);
        REQUIRE(*next);
        CHECK((*next)->frame.type == '\0');
        CHECK(bytes_of((*next)->bytes) == startup);
        CHECK(same_bytes((*next)->frame.body, std::span(startup).subspan(4)));
        CHECK((*next)->rest == 0);
        CHECK_FALSE((*next)->continuation);

        framer.set_phase(Phase::typed);
        const auto pieces = drain_pieces(framer, 8);
        REQUIRE(pieces.size() == 1);
        CHECK(pieces[0].type == 'd');
        CHECK(pieces[0].bytes.size() == 25);
    }

    TEST_CASE("next() inside a streamed message is a logic error") {
        const Bytes long_message = msg('d', Bytes(100, std::byte{'x'}));
        Framer framer(Phase::typed);
        framer.feed(std::span(long_message).first(50));
        REQUIRE(drain_pieces(framer, 20).size() == 1);
        CHECK_THROWS_AS(static_cast<void>(framer.next()), std::logic_error);
        // A continuation with nothing buffered is not a piece.
        CHECK(drain_pieces(framer, 20).empty());
        framer.feed(cat({bytes_of(std::span(long_message).subspan(50)), msg('S', "")}));
        const auto pieces = drain_pieces(framer, 20);
        REQUIRE(pieces.size() == 2);
        CHECK(pieces[0].continuation);
        CHECK(pieces[0].rest == 0);
        CHECK(pieces[1].type == 'S');
        framer.feed(msg('Z', "I"));
        const auto frames = drain(framer);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].type == 'Z');
    }

    TEST_CASE("random bytes through next_piece: forwarded bytes tile the input") {
        std::mt19937 rng(20240613);
        for (int round = 0; round < 2000; ++round) {
            CAPTURE(round);
            Bytes input(rng() % 96);
            for (auto& b : input) {
                b = static_cast<std::byte>(rng() % 4 == 0 ? rng() : rng() % 24);
            }
            const std::size_t hold = rng() % 32;
            CAPTURE(hold);
            Framer framer(Phase::typed, Limits{.max_message_size = 40});
            Bytes forwarded;
            bool failed = false;
            for (std::size_t at = 0; at < input.size() && !failed;) {
                const std::size_t chunk = std::min<std::size_t>(1 + rng() % 8, input.size() - at);
                framer.feed(std::span(input).subspan(at, chunk));
                at += chunk;
                for (;;) {
                    auto next = framer.next_piece(hold);
                    if (!next) {
                        failed = true;
                        CHECK(framer.next_piece(hold).error() == next.error());
                        break;
                    }
                    if (!*next) {
                        break;
                    }
                    const auto& piece = **next;
                    CHECK(piece.bytes.size() <= 41);
                    forwarded.insert(forwarded.end(), piece.bytes.begin(), piece.bytes.end());
                }
            }
            CHECK(std::equal(forwarded.begin(), forwarded.end(), input.begin()));
            if (!failed) {
                CHECK(cat({forwarded, bytes_of(framer.buffered())}) == input);
            }
        }
    }
}

TEST_SUITE("wire.framer.decode_frame") {
    TEST_CASE("decodes the frame at the front and ignores what follows") {
        const Bytes data = cat({msg('Z', "I"), raw("tail")});
        auto frame = wire::decode_frame(data, Phase::typed, Limits{});
        REQUIRE(frame);
        REQUIRE(*frame);
        CHECK((*frame)->type == 'Z');
        CHECK((*frame)->raw.data() == data.data());
        CHECK((*frame)->raw.size() == 6);
        CHECK((*frame)->body.data() == data.data() + 5);
    }

    TEST_CASE("an incomplete frame is not an error") {
        const Bytes data = msg('Z', "I");
        for (std::size_t n = 0; n < data.size(); ++n) {
            CAPTURE(n);
            auto frame = wire::decode_frame(std::span(data).first(n), Phase::typed, Limits{});
            REQUIRE(frame);
            CHECK_FALSE(*frame);
        }
    }
}
