#include "wire/be_query.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <array>

namespace {

using namespace wire::test;
using wire::errc;
using wire::FormatCode;
using namespace wire::be;

// RowDescription of one column "id" of table 16384, attribute 1, int4, from a Describe.
const Bytes one_int_column =
    msg('T', cat({i16(1), str("id"), i32(16384), i16(1), i32(23), i16(4), i32(-1), i16(0)}));

} // namespace

TEST_SUITE("wire.be_query") {
    TEST_CASE("bodiless replies are their type byte and length") {
        check_encoding(ParseComplete{}, hex("31 00000004"));
        check_encoding(BindComplete{}, hex("32 00000004"));
        check_encoding(CloseComplete{}, hex("33 00000004"));
        check_encoding(NoData{}, hex("6e 00000004"));
        check_encoding(EmptyQueryResponse{}, hex("49 00000004"));
        check_encoding(PortalSuspended{}, hex("73 00000004"));
        check_rejects_malformed<ParseComplete>(hex("31 00000004"));
        check_rejects_malformed<BindComplete>(hex("32 00000004"));
        check_rejects_malformed<CloseComplete>(hex("33 00000004"));
        check_rejects_malformed<NoData>(hex("6e 00000004"));
        check_rejects_malformed<EmptyQueryResponse>(hex("49 00000004"));
        check_rejects_malformed<PortalSuspended>(hex("73 00000004"));
    }

    TEST_CASE("CommandComplete carries the command tag") {
        const Bytes bytes = hex("43 0000000d 53454c454354203500");
        check_encoding(CommandComplete{"SELECT 5"}, bytes);
        CHECK(parse_as<CommandComplete>(bytes)->tag == "SELECT 5");
        check_rejects_malformed<CommandComplete>(bytes);
    }

    TEST_CASE("ParameterDescription lists parameter type OIDs") {
        const Bytes bytes = hex("74 0000000e 0002 00000017 00000019");
        check_encoding(ParameterDescription{{23, 25}}, bytes);
        CHECK(parse_as<ParameterDescription>(bytes)->parameter_types ==
              std::vector<std::uint32_t>{23, 25});
        check_rejects_malformed<ParameterDescription>(bytes);
        CHECK(parse_error<ParameterDescription>(msg('t', hex("ffff"))) == errc::truncated);
    }

    TEST_CASE("RowDescription describes every field") {
        const RowDescription m{{{"id", 16384, 1, 23, 4, -1, FormatCode::text}}};
        check_encoding(m, one_int_column);

        const auto parsed = parse_as<RowDescription>(one_int_column);
        REQUIRE(parsed);
        REQUIRE(parsed->fields.size() == 1);
        const auto& field = parsed->fields[0];
        CHECK(field.name == "id");
        CHECK(field.table_oid == 16384);
        CHECK(field.column_attribute == 1);
        CHECK(field.type_oid == 23);
        CHECK(field.type_size == 4);
        CHECK(field.type_modifier == -1);
        CHECK(field.format == FormatCode::text);
        check_rejects_malformed<RowDescription>(one_int_column);
    }

    TEST_CASE("RowDescription refuses counts its body cannot back and bad format codes") {
        static_assert(wire::detail::min_wire_size<RowDescription::Field>() == 19);
        CHECK(parse_error<RowDescription>(msg('T', hex("ffff"))) == errc::truncated);
        CHECK(parse_error<RowDescription>(msg('T', cat({hex("0002"), Bytes(37, std::byte{1})}))) ==
              errc::truncated);
        CHECK(parse_error<RowDescription>(msg('T', cat({i16(1), str("c"), i32(0), i16(0), i32(25),
                                                        i16(-1), i32(-1), i16(7)}))) ==
              errc::invalid_value);
    }

    TEST_CASE("text columns and text rows, as the admin console sends them") {
        constexpr std::array<std::string_view, 2> names{"database", "cl_active"};
        const Bytes description = msg(
            'T', cat({i16(2), str("database"), i32(0), i16(0), i32(25), i16(-1), i32(-1), i16(0),
                      str("cl_active"), i32(0), i16(0), i32(25), i16(-1), i32(-1), i16(0)}));
        check_encoding(RowDescription::text_columns(names), description);

        const std::array<std::optional<std::string_view>, 2> values{"app", std::nullopt};
        const Bytes row = msg('D', cat({i16(2), i32(3), raw("app"), i32(-1)}));
        check_encoding(DataRow::text(values), row);
    }

    TEST_CASE("DataRow holds values and NULLs") {
        const Bytes bytes = msg('D', cat({i16(3), i32(1), raw("1"), i32(-1), i32(0)}));
        const auto parsed = parse_as<DataRow>(bytes);
        REQUIRE(parsed);
        REQUIRE(parsed->values.size() == 3);
        CHECK(same_bytes(*parsed->values[0], raw("1")));
        CHECK_FALSE(parsed->values[1]);
        REQUIRE(parsed->values[2]);
        CHECK(parsed->values[2]->empty());
        CHECK(encoded(*parsed) == bytes);
        check_rejects_malformed<DataRow>(bytes);
    }

    TEST_CASE("DataRow refuses bad counts and lengths without trusting them") {
        CHECK(parse_error<DataRow>(msg('D', hex("ffff"))) == errc::truncated);
        CHECK(parse_error<DataRow>(msg('D', cat({hex("8000"), i32(-1)}))) == errc::truncated);
        CHECK(parse_error<DataRow>(msg('D', cat({i16(1), i32(-7)}))) == errc::invalid_value);
        CHECK(parse_error<DataRow>(msg('D', cat({i16(1), i32(0x7fffffff), raw("x")}))) ==
              errc::truncated);
    }

    TEST_CASE("FunctionCallResponse carries one value or NULL") {
        const Bytes bytes = msg('V', cat({i32(2), raw("42")}));
        check_encoding(FunctionCallResponse{wire::as_bytes("42")}, bytes);
        CHECK(same_bytes(*parse_as<FunctionCallResponse>(bytes)->result, raw("42")));
        check_encoding(FunctionCallResponse{}, msg('V', i32(-1)));
        const Bytes null = msg('V', i32(-1));
        CHECK_FALSE(parse_as<FunctionCallResponse>(null)->result);
        check_rejects_malformed<FunctionCallResponse>(bytes);
    }
}
