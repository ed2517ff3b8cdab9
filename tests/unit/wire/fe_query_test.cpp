#include "wire/fe_query.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

namespace {

using namespace wire::test;
using wire::errc;
using wire::FormatCode;
using namespace wire::fe;

const Bytes bind_bytes =
    msg('B', cat({str("p1"), str("s1"), i16(1), i16(1), // all parameters binary
                  i16(2), i32(4), hex("0000002a"),      // 42
                  i32(-1),                              // NULL
                  i16(1), i16(0)}));                    // results as text

const Bytes function_call_bytes =
    msg('F', cat({i32(1598), i16(0), i16(1), i32(1), raw("7"), i16(0)}));

} // namespace

TEST_SUITE("wire.fe_query") {
    TEST_CASE("Query matches the documented layout") {
        const Bytes bytes = hex("51 0000000d 53454c454354203100");
        check_encoding(Query{"SELECT 1"}, bytes);
        CHECK(parse_as<Query>(bytes)->query == "SELECT 1");
        check_rejects_malformed<Query>(bytes);
    }

    TEST_CASE("Parse carries the statement name, the query and parameter type OIDs") {
        const Bytes bytes =
            msg('P', cat({str("s1"), str("SELECT $1, $2"), i16(2), i32(23), i32(0)}));
        const Parse m{"s1", "SELECT $1, $2", {23, 0}};
        check_encoding(m, bytes);

        const auto parsed = parse_as<Parse>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->statement == "s1");
        CHECK(parsed->query == "SELECT $1, $2");
        CHECK(parsed->parameter_types == std::vector<std::uint32_t>{23, 0});
        check_rejects_malformed<Parse>(bytes);
    }

    TEST_CASE("Parse refuses a parameter count its body cannot back") {
        CHECK(parse_error<Parse>(msg('P', cat({str(""), str("SELECT 1"), hex("ffff")}))) ==
              errc::truncated);
        CHECK(parse_error<Parse>(msg('P', cat({str(""), str("SELECT 1"), hex("8000"), i32(23)}))) ==
              errc::truncated);
    }

    TEST_CASE("Bind carries formats, values with NULLs, and result formats") {
        const Bytes value = hex("0000002a");
        const Bind m{"p1", "s1", {FormatCode::binary}, {value, std::nullopt}, {FormatCode::text}};
        check_encoding(m, bind_bytes);

        const auto parsed = parse_as<Bind>(bind_bytes);
        REQUIRE(parsed);
        CHECK(parsed->portal == "p1");
        CHECK(parsed->statement == "s1");
        CHECK(parsed->parameter_formats == std::vector{FormatCode::binary});
        REQUIRE(parsed->parameters.size() == 2);
        REQUIRE(parsed->parameters[0]);
        CHECK(same_bytes(*parsed->parameters[0], value));
        CHECK_FALSE(parsed->parameters[1]);
        CHECK(parsed->result_formats == std::vector{FormatCode::text});
        check_rejects_malformed<Bind>(bind_bytes);
    }

    TEST_CASE("Bind with no parameters, the unnamed portal and statement") {
        const Bytes bytes = msg('B', cat({str(""), str(""), i16(0), i16(0), i16(0)}));
        check_encoding(Bind{}, bytes);
        const auto parsed = parse_as<Bind>(bytes);
        REQUIRE(parsed);
        CHECK(parsed->parameters.empty());
    }

    TEST_CASE("Bind refuses bad counts, lengths and format codes") {
        const auto bind = [](const Bytes& tail) {
            return parse_error<Bind>(msg('B', cat({str(""), str(""), tail})));
        };
        CHECK(bind(cat({hex("ffff")})) == errc::truncated);
        CHECK(bind(cat({i16(0), hex("ffff"), i32(-1)})) == errc::truncated);
        CHECK(bind(cat({i16(0), i16(1), i32(0x7fffffff), raw("x"), i16(0)})) == errc::truncated);
        CHECK(bind(cat({i16(0), i16(1), i32(-2), i16(0)})) == errc::invalid_value);
        CHECK(bind(cat({i16(1), i16(2), i16(0), i16(0)})) == errc::invalid_value);
        CHECK(bind(cat({i16(0), i16(0), i16(1), i16(-1)})) == errc::invalid_value);
    }

    TEST_CASE("Describe and Close name a statement or a portal") {
        const Bytes describe = hex("44 00000008 53 733100");
        check_encoding(Describe::statement("s1"), describe);
        const auto parsed = parse_as<Describe>(describe);
        REQUIRE(parsed);
        CHECK(parsed->kind == ObjectKind::statement);
        CHECK(parsed->name == "s1");
        check_rejects_malformed<Describe>(describe);

        const Bytes close = hex("43 00000006 50 00");
        check_encoding(Close::portal(""), close);
        CHECK(parse_as<Close>(close)->kind == ObjectKind::portal);
        CHECK(parse_error<Close>(describe) == errc::unexpected_type);
        check_rejects_malformed<Close>(close);
    }

    TEST_CASE("Describe and Close refuse a kind other than S or P") {
        CHECK(parse_error<Describe>(msg('D', cat({raw("Q"), str("s1")}))) == errc::invalid_value);
        CHECK(parse_error<Close>(msg('C', cat({raw("s"), str("s1")}))) == errc::invalid_value);
    }

    TEST_CASE("Execute carries the portal and a row limit") {
        const Bytes bytes = hex("45 00000009 00 00000000");
        check_encoding(Execute{}, bytes);
        const Bytes limited_bytes = msg('E', cat({str("p1"), i32(100)}));
        const auto limited = parse_as<Execute>(limited_bytes);
        REQUIRE(limited);
        CHECK(limited->portal == "p1");
        CHECK(limited->max_rows == 100);
        check_rejects_malformed<Execute>(bytes);
    }

    TEST_CASE("Sync, Flush and Terminate have no body") {
        check_encoding(Sync{}, hex("53 00000004"));
        check_encoding(Flush{}, hex("48 00000004"));
        check_encoding(Terminate{}, hex("58 00000004"));
        check_rejects_malformed<Sync>(hex("53 00000004"));
        check_rejects_malformed<Flush>(hex("48 00000004"));
        check_rejects_malformed<Terminate>(hex("58 00000004"));
    }

    TEST_CASE("FunctionCall carries the function, arguments and result format") {
        const FunctionCall m{1598, {}, {wire::as_bytes("7")}, FormatCode::text};
        check_encoding(m, function_call_bytes);

        const auto parsed = parse_as<FunctionCall>(function_call_bytes);
        REQUIRE(parsed);
        CHECK(parsed->function_oid == 1598);
        CHECK(parsed->argument_formats.empty());
        REQUIRE(parsed->arguments.size() == 1);
        CHECK(same_bytes(*parsed->arguments[0], raw("7")));
        CHECK(parsed->result_format == FormatCode::text);
        check_rejects_malformed<FunctionCall>(function_call_bytes);
        CHECK(parse_error<FunctionCall>(msg('F', cat({i32(1), i16(0), i16(0), i16(3)}))) ==
              errc::invalid_value);
    }
}
