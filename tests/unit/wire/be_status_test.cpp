#include "wire/be_status.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

namespace {

using namespace wire::test;
using wire::errc;
using namespace wire::be;

} // namespace

TEST_SUITE("wire.be_status") {
    TEST_CASE("BackendKeyData of protocol 3.0 has a 4-byte secret") {
        const Bytes bytes = hex("4b 0000000c 00003039 0a0b0c0d");
        const Bytes key = hex("0a0b0c0d");
        check_encoding(BackendKeyData{12345, key}, bytes);

        const auto parsed = parse_as<BackendKeyData>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->process_id == 12345);
        CHECK(same_bytes(parsed->secret_key, key));
        check_rejects_wrong_type<BackendKeyData>(bytes);
        check_rejects_truncation<BackendKeyData>(bytes);
    }

    TEST_CASE("BackendKeyData of protocol 3.2 has a longer secret, at most 256 bytes") {
        const Bytes key(32, std::byte{0x5a});
        const Bytes bytes = msg('K', cat({i32(7), key}));
        check_encoding(BackendKeyData{7, key}, bytes);
        CHECK(parse_as<BackendKeyData>(bytes)->secret_key.size() == 32);
        check_rejects_truncation<BackendKeyData>(bytes, 28);

        CHECK(parse_error<BackendKeyData>(msg('K', cat({i32(7), Bytes(257)}))) ==
              errc::invalid_value);
        CHECK(parse_error<BackendKeyData>(msg('K', cat({i32(7), Bytes(3)}))) ==
              errc::invalid_value);
    }

    TEST_CASE("ParameterStatus is a name and a value") {
        const Bytes bytes = hex("53 00000019 636c69656e745f656e636f64696e6700 5554463800");
        check_encoding(ParameterStatus{"client_encoding", "UTF8"}, bytes);

        const auto parsed = parse_as<ParameterStatus>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->name == "client_encoding");
        CHECK(parsed->value == "UTF8");
        check_rejects_malformed<ParameterStatus>(bytes);
    }

    TEST_CASE("ReadyForQuery idle is 5a 00000005 49") {
        const Bytes idle = hex("5a 00000005 49");
        check_encoding(ReadyForQuery::idle(), idle);
        CHECK(parse_as<ReadyForQuery>(idle)->status == TransactionStatus::idle);
        check_rejects_malformed<ReadyForQuery>(idle);
    }

    TEST_CASE("ReadyForQuery reports transaction blocks") {
        check_encoding(ReadyForQuery::in_transaction(), msg('Z', "T"));
        check_encoding(ReadyForQuery::failed(), msg('Z', "E"));
        const Bytes in_transaction = msg('Z', "T");
        const Bytes failed = msg('Z', "E");
        CHECK(parse_as<ReadyForQuery>(in_transaction)->status == TransactionStatus::in_transaction);
        CHECK(parse_as<ReadyForQuery>(failed)->status == TransactionStatus::failed);
    }

    TEST_CASE("ReadyForQuery refuses an unknown status") {
        for (const char status : std::string_view("XiZ\0", 4)) {
            CAPTURE(status);
            CHECK(parse_error<ReadyForQuery>(msg('Z', std::string_view(&status, 1))) ==
                  errc::invalid_value);
        }
    }

    TEST_CASE("NotificationResponse carries the sender, the channel and the payload") {
        const Bytes bytes = msg('A', cat({i32(4242), str("jobs"), str("{\"id\":1}")}));
        check_encoding(NotificationResponse{4242, "jobs", "{\"id\":1}"}, bytes);

        const auto parsed = parse_as<NotificationResponse>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->process_id == 4242);
        CHECK(parsed->channel == "jobs");
        CHECK(parsed->payload == "{\"id\":1}");
        check_rejects_malformed<NotificationResponse>(bytes);
    }

    TEST_CASE("NegotiateProtocolVersion lists the options it did not recognize") {
        const Bytes bytes = msg('v', cat({i32(2), i32(2), str("_pq_.a"), str("_pq_.b")}));
        check_encoding(NegotiateProtocolVersion{2, {"_pq_.a", "_pq_.b"}}, bytes);

        const auto parsed = parse_as<NegotiateProtocolVersion>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->newest_minor_version == 2);
        CHECK(parsed->unrecognized_options == std::vector<std::string_view>{"_pq_.a", "_pq_.b"});
        check_rejects_malformed<NegotiateProtocolVersion>(bytes);

        check_encoding(NegotiateProtocolVersion{0, {}}, hex("76 0000000c 00000000 00000000"));
    }

    TEST_CASE("NegotiateProtocolVersion refuses negative and unbacked counts") {
        CHECK(parse_error<NegotiateProtocolVersion>(msg('v', cat({i32(2), i32(-1)}))) ==
              errc::invalid_value);
        CHECK(parse_error<NegotiateProtocolVersion>(msg('v', cat({i32(2), i32(1'000'000)}))) ==
              errc::truncated);
    }
}
