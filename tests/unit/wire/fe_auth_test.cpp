#include "wire/fe_auth.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

namespace {

using namespace wire::test;
using wire::errc;
using namespace wire::fe;

} // namespace

TEST_SUITE("wire.fe_auth") {
    TEST_CASE("PasswordMessage is a String") {
        const Bytes bytes = hex("70 0000000b 73656372657400"); // 'p' "secret"
        check_encoding(PasswordMessage{"secret"}, bytes);
        CHECK(parse_as<PasswordMessage>(bytes)->password == "secret");
        check_rejects_malformed<PasswordMessage>(bytes);
    }

    TEST_CASE("SASLInitialResponse carries the mechanism and a length-prefixed response") {
        const Bytes response = raw("n,,n=,r=abc");
        const Bytes bytes = msg('p', cat({str("SCRAM-SHA-256"), i32(11), response}));
        check_encoding(SASLInitialResponse{"SCRAM-SHA-256", response}, bytes);

        const auto parsed = parse_as<SASLInitialResponse>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->mechanism == "SCRAM-SHA-256");
        REQUIRE(parsed->data);
        CHECK(same_bytes(*parsed->data, response));
        check_rejects_malformed<SASLInitialResponse>(bytes);
    }

    TEST_CASE("SASLInitialResponse without an initial response has length -1") {
        const Bytes bytes = msg('p', cat({str("SCRAM-SHA-256"), i32(-1)}));
        check_encoding(SASLInitialResponse{"SCRAM-SHA-256", std::nullopt}, bytes);
        const auto parsed = parse_as<SASLInitialResponse>(bytes);
        REQUIRE(parsed);
        CHECK_FALSE(parsed->data);
        CHECK(parse_error<SASLInitialResponse>(msg('p', cat({str("X"), i32(-5)}))) ==
              errc::invalid_value);
    }

    TEST_CASE("SASLResponse and GSSResponse are the rest of the body") {
        const Bytes data = raw("c=biws,r=abc,p=xyz");
        const Bytes bytes = msg('p', data);
        check_encoding(SASLResponse{data}, bytes);
        check_encoding(GSSResponse{data}, bytes);
        CHECK(same_bytes(parse_as<SASLResponse>(bytes)->data, data));
        CHECK(same_bytes(parse_as<GSSResponse>(bytes)->data, data));
        const Bytes empty = msg('p', "");
        CHECK(parse_as<SASLResponse>(empty)->data.empty());
        check_rejects_wrong_type<SASLResponse>(bytes);
        check_rejects_wrong_type<GSSResponse>(bytes);
    }
}
