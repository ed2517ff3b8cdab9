#include "wire/message.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <variant>

namespace {

using namespace wire::test;
using wire::errc;
namespace detail = wire::detail;

// Minimal messages, one per layout rule, so each rule is tested on its own.
template <class T>
struct One {
    static constexpr char type = '!';
    T item{};

    static auto layout(auto& m) { return detail::layout(m.item); }
    static wire::Result<One> parse(const wire::Frame& f) { return detail::parse<One>(f); }
    void encode(wire::Writer& w) const { detail::encode(w, *this); }
};

struct TerminatedList {
    static constexpr char type = '!';
    std::vector<std::string_view> items;

    static auto layout(auto& m) { return detail::layout(detail::Terminated{m.items}); }
    static wire::Result<TerminatedList> parse(const wire::Frame& f) {
        return detail::parse<TerminatedList>(f);
    }
    void encode(wire::Writer& w) const { detail::encode(w, *this); }
};

struct LongList {
    static constexpr char type = '!';
    std::vector<std::string_view> items;

    static auto layout(auto& m) { return detail::layout(detail::Int32Counted{m.items}); }
    static wire::Result<LongList> parse(const wire::Frame& f) { return detail::parse<LongList>(f); }
    void encode(wire::Writer& w) const { detail::encode(w, *this); }
};

struct Keyed {
    static constexpr char type = '!';
    std::span<const std::byte> secret;

    static auto layout(auto& m) { return detail::layout(detail::SecretKey{m.secret}); }
    static wire::Result<Keyed> parse(const wire::Frame& f) { return detail::parse<Keyed>(f); }
    void encode(wire::Writer& w) const { detail::encode(w, *this); }
};

struct Seven : detail::Bodiless<Seven> {
    static constexpr char type = '!';
    static constexpr std::int32_t code = 7;
};

struct Eight : detail::Bodiless<Eight> {
    static constexpr char type = '!';
    static constexpr std::int32_t code = 8;
};

} // namespace

TEST_SUITE("wire.message") {
    TEST_CASE("a Value of length -1 is NULL, 0 is empty, others are refused below -1") {
        using Nullable = One<wire::Value>;
        const Bytes null = msg('!', i32(-1));
        CHECK_FALSE(parse_as<Nullable>(null)->item.has_value());

        const Bytes empty_bytes = msg('!', i32(0));
        const auto empty = parse_as<Nullable>(empty_bytes);
        REQUIRE(empty);
        REQUIRE(empty->item.has_value());
        CHECK(empty->item->empty());

        CHECK(parse_error<Nullable>(msg('!', i32(-2))) == errc::invalid_value);
        CHECK(parse_error<Nullable>(msg('!', cat({i32(3), raw("ab")}))) == errc::truncated);
        check_encoding(Nullable{}, msg('!', i32(-1)));
    }

    TEST_CASE("list counts are unsigned Int16, as the server reads them") {
        using Oids = One<std::vector<std::uint32_t>>;
        Bytes body = hex("8000");
        body.resize(2 + 0x8000 * 4, std::byte{1});
        const Bytes bytes = msg('!', body);
        const auto parsed = parse_as<Oids>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->item.size() == 0x8000);
        CHECK(parsed->item.back() == 0x01010101);
    }

    TEST_CASE("a count the body cannot back is refused") {
        using Oids = One<std::vector<std::uint32_t>>;
        CHECK(parse_error<Oids>(msg('!', hex("ffff"))) == errc::truncated);
        CHECK(parse_error<Oids>(msg('!', hex("0002 00000001"))) == errc::truncated);
        CHECK(parse_error<Oids>(msg('!', hex("0001 000001"))) == errc::truncated);
    }

    TEST_CASE("a list longer than its count field allows cannot be encoded") {
        using Oids = One<std::vector<std::uint32_t>>;
        Oids oids;
        oids.item.resize(65'536);
        wire::Writer w;
        CHECK_THROWS_AS(oids.encode(w), std::length_error);
    }

    TEST_CASE("enum fields accept only defined values") {
        using Format = One<wire::FormatCode>;
        const Bytes binary = msg('!', i16(1));
        CHECK(parse_as<Format>(binary)->item == wire::FormatCode::binary);
        CHECK(parse_error<Format>(msg('!', i16(2))) == errc::invalid_value);
        CHECK(parse_error<Format>(msg('!', i16(-1))) == errc::invalid_value);
    }

    TEST_CASE("a terminated list ends at a NUL where an item would start") {
        const Bytes bytes = msg('!', cat({str("a"), str("bc"), u8(0)}));
        const auto two = parse_as<TerminatedList>(bytes);
        REQUIRE(two);
        CHECK(two->items == std::vector<std::string_view>{"a", "bc"});
        const Bytes none = msg('!', u8(0));
        CHECK(parse_as<TerminatedList>(none)->items.empty());

        CHECK(parse_error<TerminatedList>(msg('!', str("a"))) == errc::missing_terminator);
        CHECK(parse_error<TerminatedList>(msg('!', "")) == errc::missing_terminator);
        CHECK(parse_error<TerminatedList>(msg('!', raw("a"))) == errc::missing_terminator);
        check_encoding(TerminatedList{{"a", "bc"}}, msg('!', cat({str("a"), str("bc"), u8(0)})));
    }

    TEST_CASE("an Int32 count must be non-negative and backed by the body") {
        const Bytes bytes = msg('!', cat({i32(2), str("a"), str("b")}));
        const auto two = parse_as<LongList>(bytes);
        REQUIRE(two);
        CHECK(two->items == std::vector<std::string_view>{"a", "b"});
        CHECK(parse_error<LongList>(msg('!', i32(-1))) == errc::invalid_value);
        CHECK(parse_error<LongList>(msg('!', i32(0x7fffffff))) == errc::truncated);
        check_encoding(LongList{{"a", "b"}}, msg('!', cat({i32(2), str("a"), str("b")})));
    }

    TEST_CASE("a secret key holds 4 to 256 bytes") {
        CHECK(parse_error<Keyed>(msg('!', Bytes(3))) == errc::invalid_value);
        CHECK(parse_error<Keyed>(msg('!', Bytes(4))) == boost::system::error_code());
        CHECK(parse_error<Keyed>(msg('!', Bytes(256))) == boost::system::error_code());
        CHECK(parse_error<Keyed>(msg('!', Bytes(257))) == errc::invalid_value);
    }

    TEST_CASE("a coded message checks its code") {
        CHECK(parse_error<Seven>(msg('!', i32(7))) == boost::system::error_code());
        CHECK(parse_error<Seven>(msg('!', i32(8))) == errc::unexpected_type);
        CHECK(parse_error<Seven>(msg('!', hex("000000"))) == errc::truncated);
        CHECK(parse_error<Seven>(msg('!', cat({i32(7), u8(0)}))) == errc::trailing_bytes);
        check_encoding(Seven{}, msg('!', i32(7)));
    }

    TEST_CASE("parse_by_code picks the alternative with that code") {
        using Either = std::variant<Seven, Eight>;
        const Bytes eight = msg('!', i32(8));
        const auto frame = frame_of(eight, wire::Phase::typed);
        const auto parsed = detail::parse_by_code<Either>(frame, 8);
        REQUIRE(parsed);
        REQUIRE(*parsed);
        CHECK(std::holds_alternative<Eight>(**parsed));
        CHECK_FALSE(detail::parse_by_code<Either>(frame, 9));
    }

    TEST_CASE("peek_code reads the code of a frame of the given type") {
        const Bytes seven = msg('!', i32(7));
        const auto frame = frame_of(seven, wire::Phase::typed);
        CHECK(*detail::peek_code(frame, '!') == 7);
        CHECK(detail::peek_code(frame, 'R').error() == errc::unexpected_type);
    }

    TEST_CASE("as_bytes views a string's characters") {
        const std::string_view text = "abc";
        const auto bytes = wire::as_bytes(text);
        CHECK(static_cast<const void*>(bytes.data()) == static_cast<const void*>(text.data()));
        CHECK(same_bytes(bytes, raw("abc")));
    }
}
