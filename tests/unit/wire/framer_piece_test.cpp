// wire::Framer::next_piece and next_type: streaming messages longer than a hold limit.

#include "wire/framer.hpp"

#include "tests/support/framer_test_support.hpp"
#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <random>
#include <stdexcept>

namespace {

using namespace wire::test;
using wire::errc;
using wire::Frame;
using wire::Framer;
using wire::Limits;
using wire::Phase;

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

TEST_SUITE("wire.framer.pieces") {
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
