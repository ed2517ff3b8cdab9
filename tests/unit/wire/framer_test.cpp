#include "wire/framer.hpp"

#include "tests/support/framer_test_support.hpp"
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

    TEST_CASE("release_if_empty gives the buffer back only when nothing is left to read") {
        Framer framer(Phase::typed);
        static_cast<void>(framer.prepare(16 * 1024));
        framer.commit(0);
        framer.feed(hex("51 0000000d"));
        framer.release_if_empty(); // half a Query is buffered: kept
        CHECK(framer.buffered().size() == 5);
        CHECK(framer.capacity() >= 16 * 1024);
        framer.feed(str("SELECT 1"));
        framer.feed(raw("\0"));
        REQUIRE(drain(framer).size() == 1);
        framer.release_if_empty();
        CHECK(framer.capacity() == 0);
        framer.feed(msg('S', ""));
        const auto frames = drain(framer);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].type == 'S');
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
