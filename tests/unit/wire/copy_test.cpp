#include "wire/copy.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <type_traits>

namespace {

using namespace wire::test;
using wire::errc;
using wire::FormatCode;
using wire::be::CopyFormat;

template <class Response>
void check_copy_response(char type) {
    CAPTURE(type);
    const Bytes bytes = msg(type, hex("00 0002 0000 0000"));
    const Response m{CopyFormat::text, {FormatCode::text, FormatCode::text}};
    check_encoding(m, bytes);

    const auto parsed = parse_as<Response>(bytes);
    REQUIRE(parsed);
    CHECK(parsed->format == CopyFormat::text);
    CHECK(parsed->column_formats == m.column_formats);
    check_rejects_malformed<Response>(bytes);

    const Bytes binary_bytes = msg(type, hex("01 0001 0001"));
    const auto binary = parse_as<Response>(binary_bytes);
    REQUIRE(binary);
    CHECK(binary->format == CopyFormat::binary);
    CHECK(binary->column_formats == std::vector{FormatCode::binary});

    CHECK(parse_error<Response>(msg(type, hex("02 0000"))) == errc::invalid_value);
    CHECK(parse_error<Response>(msg(type, hex("00 0001 0002"))) == errc::invalid_value);
    CHECK(parse_error<Response>(msg(type, hex("00 ffff 0000"))) == errc::truncated);
}

} // namespace

TEST_SUITE("wire.copy") {
    TEST_CASE("CopyData is the rest of the body, in both directions") {
        static_assert(std::is_same_v<wire::fe::CopyData, wire::be::CopyData>);
        const Bytes row = raw("1\talice\n");
        const Bytes bytes = msg('d', row);
        check_encoding(wire::CopyData{row}, bytes);
        CHECK(same_bytes(parse_as<wire::CopyData>(bytes)->data, row));
        const Bytes empty = msg('d', "");
        CHECK(parse_as<wire::CopyData>(empty)->data.empty());
        check_rejects_wrong_type<wire::CopyData>(bytes);
    }

    TEST_CASE("CopyDone has no body") {
        const Bytes bytes = hex("63 00000004");
        check_encoding(wire::CopyDone{}, bytes);
        CHECK(parse_as<wire::CopyDone>(bytes));
        check_rejects_malformed<wire::CopyDone>(bytes);
    }

    TEST_CASE("CopyFail carries the client's reason") {
        const Bytes bytes = msg('f', str("aborted by user"));
        check_encoding(wire::fe::CopyFail{"aborted by user"}, bytes);
        CHECK(parse_as<wire::fe::CopyFail>(bytes)->message == "aborted by user");
        check_rejects_malformed<wire::fe::CopyFail>(bytes);
    }

    TEST_CASE("CopyInResponse, CopyOutResponse and CopyBothResponse share one layout") {
        check_copy_response<wire::be::CopyInResponse>('G');
        check_copy_response<wire::be::CopyOutResponse>('H');
        check_copy_response<wire::be::CopyBothResponse>('W');
    }

    TEST_CASE("the three copy responses are distinct types") {
        const Bytes in = msg('G', hex("00 0000"));
        CHECK(parse_error<wire::be::CopyOutResponse>(in) == errc::unexpected_type);
        CHECK(parse_error<wire::be::CopyBothResponse>(in) == errc::unexpected_type);
    }
}
