#include "wire/be_error.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

namespace {

using namespace wire::test;
using wire::errc;
using namespace wire::be;

} // namespace

TEST_SUITE("wire.be_error") {
    TEST_CASE("make sets severity twice, SQLSTATE and message") {
        const Bytes expected = error_response()
                                   .severity("FATAL")
                                   .field('V', "FATAL")
                                   .code("08P01")
                                   .message("invalid message length")
                                   .bytes();
        check_encoding(ErrorResponse::make(Severity::fatal, "08P01", "invalid message length"),
                       expected);
    }

    TEST_CASE("with appends optional fields in order") {
        const auto m = ErrorResponse::make(Severity::error, "42P01", "no such table")
                           .with(FieldType::detail, "d")
                           .with(FieldType::hint, "h");
        const Bytes expected = error_response()
                                   .severity("ERROR")
                                   .field('V', "ERROR")
                                   .code("42P01")
                                   .message("no such table")
                                   .field('D', "d")
                                   .field('H', "h")
                                   .bytes();
        check_encoding(m, expected);
    }

    TEST_CASE("a server's ErrorResponse parses into its fields") {
        const Bytes bytes = error_response()
                                .severity("FATAL")
                                .field('V', "FATAL")
                                .code("57P01")
                                .message("terminating connection due to administrator command")
                                .field('F', "postgres.c")
                                .field('L', "3300")
                                .field('R', "ProcessInterrupts")
                                .bytes();
        const auto parsed = parse_as<ErrorResponse>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->fields.size() == 7);
        CHECK(parsed->severity() == Severity::fatal);
        CHECK(parsed->code() == "57P01");
        CHECK(parsed->message() == "terminating connection due to administrator command");
        CHECK(parsed->field(FieldType::line) == "3300");
        CHECK_FALSE(parsed->field(FieldType::hint));
        check_rejects_malformed<ErrorResponse>(bytes);
    }

    TEST_CASE("severity prefers the non-localized V field") {
        const Bytes localized = error_response().severity("FEHLER").field('V', "ERROR").bytes();
        CHECK(parse_as<ErrorResponse>(localized)->severity() == Severity::error);

        const Bytes before_9_6 = error_response().severity("PANIC").bytes();
        CHECK(parse_as<ErrorResponse>(before_9_6)->severity() == Severity::panic);

        const Bytes unknown = error_response().severity("FEHLER").bytes();
        CHECK_FALSE(parse_as<ErrorResponse>(unknown)->severity());
    }

    TEST_CASE("absent fields read as empty") {
        const Bytes empty = msg('E', hex("00"));
        const auto parsed = parse_as<ErrorResponse>(empty);
        REQUIRE(parsed);
        CHECK(parsed->fields.empty());
        CHECK(parsed->code().empty());
        CHECK(parsed->message().empty());
        CHECK_FALSE(parsed->severity());
    }

    TEST_CASE("unknown field types are kept, not refused") {
        const Bytes bytes = error_response().field('Z', "future").bytes();
        const auto parsed = parse_as<ErrorResponse>(bytes);
        REQUIRE(parsed);
        REQUIRE(parsed->fields.size() == 1);
        CHECK(parsed->fields[0].type == FieldType{'Z'});
        CHECK(parsed->field(FieldType{'Z'}) == "future");
    }

    TEST_CASE("a field list without its terminator is refused") {
        CHECK(parse_error<ErrorResponse>(msg('E', cat({raw("S"), str("ERROR")}))) ==
              errc::missing_terminator);
        CHECK(parse_error<ErrorResponse>(msg('E', raw("SERROR"))) == errc::missing_terminator);
    }

    TEST_CASE("NoticeResponse has the same layout under its own type") {
        const Bytes bytes = notice_response().severity("NOTICE").message("hello").bytes();
        const auto parsed = parse_as<NoticeResponse>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->severity() == Severity::notice);
        CHECK(parsed->message() == "hello");
        CHECK(parse_error<ErrorResponse>(bytes) == errc::unexpected_type);
        check_encoding(NoticeResponse::make(Severity::warning, "01000", "careful"),
                       notice_response()
                           .severity("WARNING")
                           .field('V', "WARNING")
                           .code("01000")
                           .message("careful")
                           .bytes());
        check_rejects_malformed<NoticeResponse>(bytes);
    }

    TEST_CASE("severity names round-trip") {
        for (const auto s : {Severity::error, Severity::fatal, Severity::panic, Severity::warning,
                             Severity::notice, Severity::debug, Severity::info, Severity::log}) {
            CAPTURE(to_string(s));
            CHECK(severity_from_string(to_string(s)) == s);
        }
        CHECK(to_string(Severity::fatal) == "FATAL");
        CHECK_FALSE(severity_from_string("fatal"));
    }
}
