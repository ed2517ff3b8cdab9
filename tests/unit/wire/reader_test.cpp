#include "wire/reader.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

TEST_SUITE("wire.reader") {
    using namespace wire::test;
    using wire::errc;
    using wire::Reader;

    TEST_CASE("reads integers in network byte order") {
        const Bytes data = hex("ff 8001 fffe 80000001 fffffffe");
        Reader r(data);
        CHECK(*r.u8() == 0xff);
        CHECK(*r.i16() == -32767);
        CHECK(*r.u16() == 0xfffe);
        CHECK(*r.i32() == -2147483647);
        CHECK(*r.u32() == 0xfffffffe);
        CHECK(r.remaining() == 0);
        CHECK(r.expect_end());
    }

    TEST_CASE("every read past the end fails and leaves the cursor in place") {
        const Bytes data = hex("010203");
        Reader r(data);
        REQUIRE(r.bytes(2));

        CHECK(r.u16().error() == errc::truncated);
        CHECK(r.i16().error() == errc::truncated);
        CHECK(r.u32().error() == errc::truncated);
        CHECK(r.i32().error() == errc::truncated);
        CHECK(r.bytes(2).error() == errc::truncated);
        CHECK(r.remaining() == 1);
        CHECK(*r.u8() == 3);
        CHECK(r.u8().error() == errc::truncated);
        CHECK(r.cstr().error() == errc::missing_terminator);
    }

    TEST_CASE("cstr stops at the first NUL and consumes it") {
        const Bytes data = cat({str("user"), str(""), raw("x")});
        Reader r(data);
        CHECK(*r.cstr() == "user");
        CHECK(*r.cstr() == "");
        CHECK(r.remaining() == 1);
    }

    TEST_CASE("cstr without a NUL fails and consumes nothing") {
        const Bytes data = raw("user");
        Reader r(data);
        CHECK(r.cstr().error() == errc::missing_terminator);
        CHECK(r.remaining() == 4);
    }

    TEST_CASE("bytes and rest return views into the input") {
        const Bytes data = hex("0102030405");
        Reader r(data);
        const auto two = *r.bytes(2);
        CHECK(two.data() == data.data());
        CHECK(two.size() == 2);
        CHECK(r.bytes(0)->empty());
        const auto rest = r.rest();
        CHECK(rest.data() == data.data() + 2);
        CHECK(rest.size() == 3);
        CHECK(r.remaining() == 0);
        CHECK(r.rest().empty());
    }

    TEST_CASE("expect_end reports leftover bytes") {
        const Bytes data = hex("00");
        Reader r(data);
        CHECK(r.expect_end().error() == errc::trailing_bytes);
    }

    TEST_CASE("can_hold bounds a count by what is left") {
        const Bytes data(8);
        Reader r(data);
        CHECK(r.can_hold(2, 4));
        CHECK(r.can_hold(0, 4));
        CHECK(r.can_hold(1000, 0));
        CHECK(r.can_hold(3, 4).error() == errc::truncated);
        // A product that would overflow size_t must not wrap around into "fits".
        CHECK(r.can_hold(static_cast<std::size_t>(-1) / 2 + 2, 2).error() == errc::truncated);
    }
}
