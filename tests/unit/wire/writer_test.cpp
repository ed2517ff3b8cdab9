#include "wire/writer.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string_view>

TEST_SUITE("wire.writer") {
    using namespace wire::test;
    using wire::Writer;

    TEST_CASE("end patches the length of a typed message, excluding the type byte") {
        Writer w;
        w.begin('Z').put_u8('I').end();
        CHECK(w.bytes().size() == 6);
        CHECK(same_bytes(w.bytes(), hex("5a 00000005 49")));
    }

    TEST_CASE("an untyped packet's length counts itself") {
        Writer w;
        w.begin_untyped().put_i32(80877103).end();
        CHECK(same_bytes(w.bytes(), hex("00000008 04d2162f")));
    }

    TEST_CASE("fields are written in network byte order") {
        Writer w;
        w.begin('x')
            .put_u8(0xab)
            .put_i16(-2)
            .put_u16(0x1234)
            .put_i32(-2)
            .put_u32(0xdeadbeef)
            .put_cstr("hi")
            .put_bytes(raw("ok"))
            .end();
        CHECK(same_bytes(w.bytes(), hex("78 00000016 ab fffe 1234 fffffffe deadbeef 686900 6f6b")));
    }

    TEST_CASE("consecutive messages each get their own length") {
        Writer w;
        w.begin('1').end();
        w.begin('C').put_cstr("SELECT 1").end();
        w.begin('Z').put_u8('I').end();
        CHECK(same_bytes(w.bytes(), cat({msg('1', ""), msg('C', str("SELECT 1")), msg('Z', "I")})));
    }

    TEST_CASE("bytes outside a message are appended as they are") {
        Writer w;
        w.put_u8('N');
        w.put_bytes(msg('Z', "I"));
        CHECK(same_bytes(w.bytes(), cat({raw("N"), msg('Z', "I")})));
    }

    TEST_CASE("take hands over the bytes and leaves the writer empty") {
        Writer w;
        w.begin('S').end();
        const auto taken = w.take();
        CHECK(taken == msg('S', ""));
        CHECK(w.bytes().empty());
        w.begin('H').end();
        CHECK(same_bytes(w.bytes(), msg('H', "")));
    }

    TEST_CASE("clear discards everything, an open message included") {
        Writer w;
        w.begin('Q').put_cstr("SELECT");
        w.clear();
        CHECK(w.bytes().empty());
        w.begin('S').end();
        CHECK(same_bytes(w.bytes(), msg('S', "")));
    }

    TEST_CASE("misuse is a logic error") {
        Writer w;
        SUBCASE("end without begin") {
            CHECK_THROWS_AS(w.end(), std::logic_error);
        }
        SUBCASE("nested begin") {
            w.begin('Q');
            CHECK_THROWS_AS(w.begin('Q'), std::logic_error);
            CHECK_THROWS_AS(w.begin_untyped(), std::logic_error);
        }
        SUBCASE("end twice") {
            w.begin('S').end();
            CHECK_THROWS_AS(w.end(), std::logic_error);
        }
        SUBCASE("reading an unfinished message") {
            w.begin('S');
            CHECK_THROWS_AS(static_cast<void>(w.bytes()), std::logic_error);
            CHECK_THROWS_AS(static_cast<void>(w.take()), std::logic_error);
        }
    }

    TEST_CASE("a String with an embedded NUL is refused") {
        Writer w;
        using namespace std::string_literals;
        CHECK_THROWS_AS(w.put_cstr("a\0b"s), std::invalid_argument);
    }
}
