#include "wire/fe_startup.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <variant>

namespace {

using namespace wire::test;
using wire::errc;
using namespace wire::fe;

const Bytes startup_3_0 = hex("00000021 00030000"
                              "7573657200 616c69636500"     // user alice
                              "646174616261736500 61707000" // database app
                              "00");

Bytes secret(std::size_t size) {
    Bytes out(size);
    for (std::size_t i = 0; i < size; ++i) {
        out[i] = static_cast<std::byte>(i + 1);
    }
    return out;
}

} // namespace

TEST_SUITE("wire.fe_startup") {
    TEST_CASE("StartupMessage matches the documented layout") {
        const StartupMessage m{protocol_3_0, {{"user", "alice"}, {"database", "app"}}};
        check_encoding(m, startup_3_0);

        const auto parsed = parse_as<StartupMessage>(startup_3_0);
        REQUIRE(parsed);
        CHECK(parsed->version == protocol_3_0);
        CHECK(parsed->parameters == m.parameters);
    }

    TEST_CASE("StartupMessage parameters keep their order and can be looked up") {
        const Bytes bytes = encoded(StartupMessage{
            protocol_3_2, {{"user", "bob"}, {"options", "-c x=1"}, {"user", "again"}}});
        const auto parsed = parse_as<StartupMessage>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->version == protocol_3_2);
        REQUIRE(parsed->parameters.size() == 3);
        CHECK(parsed->parameters[1] == Parameter{"options", "-c x=1"});
        CHECK(parsed->parameter("user") == "bob");
        CHECK(parsed->parameter("options") == "-c x=1");
        CHECK_FALSE(parsed->parameter("database"));
    }

    TEST_CASE("StartupMessage with no parameters is the code and a terminator") {
        const Bytes bytes = packet(cat({i32(196608), u8(0)}));
        check_encoding(StartupMessage{}, bytes);
        CHECK(parse_as<StartupMessage>(bytes)->parameters.empty());
    }

    TEST_CASE("any minor version of protocol 3 parses, for negotiation") {
        const Bytes bytes = packet(cat({i32((3 << 16) | 9999), u8(0)}));
        const auto parsed = parse_as<StartupMessage>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->version == ProtocolVersion{3, 9999});
        CHECK(parsed->version > protocol_3_2);
        CHECK(protocol_3_2 > protocol_3_0);
    }

    TEST_CASE("protocol versions other than 3 are unsupported") {
        for (const std::int32_t code : {0x0002'0000, 0x0001'0000, 0x0004'0000, 0}) {
            CAPTURE(code);
            const Bytes bytes = packet(cat({i32(code), str("user"), str("alice"), u8(0)}));
            CHECK(parse_error<StartupMessage>(bytes) == errc::unsupported_protocol);
            CHECK(parse_startup_packet(frame_of(bytes, wire::Phase::startup)).error() ==
                  errc::unsupported_protocol);
        }
    }

    TEST_CASE("a protocol 2 startup packet is refused before its layout is read") {
        // Protocol 2's StartupPacket is a fixed 296-byte record of NUL-padded fields.
        Bytes body = i32(0x0002'0000);
        body.resize(292);
        CHECK(parse_startup_packet(frame_of(packet(body), wire::Phase::startup)).error() ==
              errc::unsupported_protocol);
    }

    TEST_CASE("StartupMessage refuses malformed parameter lists") {
        check_rejects_malformed<StartupMessage>(startup_3_0);
        CHECK(parse_error<StartupMessage>(packet(cat({i32(196608), str("user"), str("alice")}))) ==
              errc::missing_terminator);
        CHECK(parse_error<StartupMessage>(packet(cat({i32(196608), str("user"), u8(0)}))) ==
              errc::missing_terminator);
    }

    TEST_CASE("SSLRequest and GSSENCRequest are their codes alone") {
        const Bytes ssl = hex("00000008 04d2162f");
        const Bytes gss = hex("00000008 04d21630");
        check_encoding(SSLRequest{}, ssl);
        check_encoding(GSSENCRequest{}, gss);
        CHECK(parse_as<SSLRequest>(ssl));
        CHECK(parse_as<GSSENCRequest>(gss));
        CHECK(parse_error<SSLRequest>(gss) == errc::unexpected_type);
        check_rejects_malformed<SSLRequest>(ssl);
        check_rejects_malformed<GSSENCRequest>(gss);
    }

    TEST_CASE("CancelRequest of protocol 3.0 carries a 4-byte secret") {
        const Bytes bytes = hex("00000010 04d2162e 00003039 0a0b0c0d");
        const Bytes key = hex("0a0b0c0d");
        check_encoding(CancelRequest{12345, key}, bytes);

        const auto parsed = parse_as<CancelRequest>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->process_id == 12345);
        CHECK(same_bytes(parsed->secret_key, key));
        check_rejects_wrong_type<CancelRequest>(bytes);
        check_rejects_truncation<CancelRequest>(bytes);
    }

    TEST_CASE("CancelRequest of protocol 3.2 carries up to 256 secret bytes") {
        for (const std::size_t size : {32, 256}) {
            CAPTURE(size);
            const Bytes key = secret(size);
            const Bytes bytes = packet(cat({i32(80877102), i32(7), key}));
            check_encoding(CancelRequest{7, key}, bytes);
            const auto parsed = parse_as<CancelRequest>(bytes);
            REQUIRE(parsed);
            CHECK(same_bytes(parsed->secret_key, key));
            check_rejects_truncation<CancelRequest>(bytes, size - 4);
        }
        for (const std::size_t size : {0, 3, 257}) {
            CAPTURE(size);
            const Bytes bytes = packet(cat({i32(80877102), i32(7), secret(size)}));
            CHECK(parse_error<CancelRequest>(bytes) == errc::invalid_value);
        }
    }

    TEST_CASE("parse_startup_packet classifies every first packet") {
        const auto classify = [](const Bytes& bytes) {
            return parse_startup_packet(frame_of(bytes, wire::Phase::startup));
        };
        CHECK(std::holds_alternative<StartupMessage>(*classify(startup_3_0)));
        CHECK(std::holds_alternative<SSLRequest>(*classify(encoded(SSLRequest{}))));
        CHECK(std::holds_alternative<GSSENCRequest>(*classify(encoded(GSSENCRequest{}))));
        const Bytes cancel = encoded(CancelRequest{1, secret(4)});
        CHECK(std::get<CancelRequest>(*classify(cancel)).process_id == 1);

        CHECK(classify(hex("0000000c 04d2162f 00000000")).error() == errc::trailing_bytes);
        // An unknown request code (major 1234) is an unknown protocol, as for the server.
        CHECK(classify(hex("00000008 04d21631")).error() == errc::unsupported_protocol);
    }

    TEST_CASE("parse_startup_packet refuses a typed frame") {
        const Bytes query = msg('Q', str("SELECT 1"));
        CHECK(parse_startup_packet(frame_of(query, wire::Phase::typed)).error() ==
              errc::unexpected_type);
    }
}
