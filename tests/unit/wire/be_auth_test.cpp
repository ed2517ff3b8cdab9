#include "wire/be_auth.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <variant>

namespace {

using namespace wire::test;
using wire::errc;
using namespace wire::be;

template <class Request>
void check_bodiless_request(const Bytes& bytes) {
    check_encoding(Request{}, bytes);
    const auto parsed = parse_authentication(frame_of(bytes, wire::Phase::typed));
    REQUIRE(parsed);
    CHECK(std::holds_alternative<Request>(*parsed));
    check_rejects_malformed<Request>(bytes);
}

template <class Request>
void check_data_request(std::int32_t code) {
    CAPTURE(code);
    const Bytes data = raw("r=abc,s=c2FsdA==,i=4096");
    const Bytes bytes = msg('R', cat({i32(code), data}));
    check_encoding(Request{data}, bytes);

    const auto parsed = parse_authentication(frame_of(bytes, wire::Phase::typed));
    REQUIRE(parsed);
    REQUIRE(std::holds_alternative<Request>(*parsed));
    CHECK(same_bytes(std::get<Request>(*parsed).data, data));
    const Bytes code_only = msg('R', i32(code));
    CHECK(parse_as<Request>(code_only)->data.empty());
    check_rejects_wrong_type<Request>(bytes);
    check_rejects_truncation<Request>(bytes, data.size());
}

} // namespace

TEST_SUITE("wire.be_auth") {
    TEST_CASE("requests without data are their code alone") {
        check_bodiless_request<AuthenticationOk>(hex("52 00000008 00000000"));
        check_bodiless_request<AuthenticationKerberosV5>(hex("52 00000008 00000002"));
        check_bodiless_request<AuthenticationCleartextPassword>(hex("52 00000008 00000003"));
        check_bodiless_request<AuthenticationGSS>(hex("52 00000008 00000007"));
        check_bodiless_request<AuthenticationSSPI>(hex("52 00000008 00000009"));
    }

    TEST_CASE("AuthenticationMD5Password carries a 4-byte salt") {
        const Bytes bytes = hex("52 0000000c 00000005 01020304");
        const AuthenticationMD5Password m{{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}}};
        check_encoding(m, bytes);

        const auto parsed = parse_authentication(frame_of(bytes, wire::Phase::typed));
        REQUIRE(parsed);
        CHECK(std::get<AuthenticationMD5Password>(*parsed).salt == m.salt);
        check_rejects_malformed<AuthenticationMD5Password>(bytes);
    }

    TEST_CASE("AuthenticationSASL lists mechanisms, ended by an empty one") {
        const Bytes bytes = hex("52 00000017 0000000a 534352414d2d5348412d32353600 00");
        CHECK(bytes == msg('R', cat({i32(10), str("SCRAM-SHA-256"), u8(0)})));
        check_encoding(AuthenticationSASL{{"SCRAM-SHA-256"}}, bytes);

        const Bytes two =
            msg('R', cat({i32(10), str("SCRAM-SHA-256-PLUS"), str("SCRAM-SHA-256"), u8(0)}));
        const auto parsed = parse_authentication(frame_of(two, wire::Phase::typed));
        REQUIRE(parsed);
        CHECK(std::get<AuthenticationSASL>(*parsed).mechanisms ==
              std::vector<std::string_view>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
        check_rejects_malformed<AuthenticationSASL>(two);
    }

    TEST_CASE("GSSContinue, SASLContinue and SASLFinal carry the rest of the body") {
        check_data_request<AuthenticationGSSContinue>(8);
        check_data_request<AuthenticationSASLContinue>(11);
        check_data_request<AuthenticationSASLFinal>(12);
    }

    TEST_CASE("a request parsed as another request is the wrong type") {
        const Bytes cleartext = encoded(AuthenticationCleartextPassword{});
        CHECK(parse_error<AuthenticationOk>(cleartext) == errc::unexpected_type);
        CHECK(parse_error<AuthenticationSASLFinal>(encoded(AuthenticationSASLContinue{})) ==
              errc::unexpected_type);
    }

    TEST_CASE("parse_authentication refuses unknown codes, other types and short bodies") {
        const auto parse = [](const Bytes& bytes) {
            return parse_authentication(frame_of(bytes, wire::Phase::typed));
        };
        CHECK(parse(msg('R', i32(4))).error() == errc::invalid_value); // crypt(): gone in 8.4
        CHECK(parse(msg('R', i32(-1))).error() == errc::invalid_value);
        CHECK(parse(msg('R', hex("000000"))).error() == errc::truncated);
        CHECK(parse(msg('Z', i32(0))).error() == errc::unexpected_type);
        CHECK(parse(msg('R', hex("00000000 00"))).error() == errc::trailing_bytes);
    }
}
