#include "wire/statement_names.hpp"

#include "wire/fe_query.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

namespace {

using namespace wire::test;
using wire::errc;
using wire::Frame;
using wire::Phase;
using wire::Writer;
using namespace wire::fe;

const Bytes query_and_types = cat({str("SELECT $1, $2"), i16(2), i32(23), i32(0)});
const Bytes parse_bytes = msg('P', cat({str("s1"), query_and_types}));

// Parameter formats, two values (one NULL), result formats: copied, never decoded.
const Bytes bind_rest =
    cat({i16(1), i16(1), i16(2), i32(4), hex("0000002a"), i32(-1), i16(1), i16(0)});
const Bytes bind_bytes = msg('B', cat({str("p1"), str("s1"), bind_rest}));

// Every strict prefix of the body is refused, without throwing.
template <class View>
void check_rejects_every_prefix(const Bytes& message) {
    const Frame good = frame_of(message, Phase::typed);
    for (std::size_t n = 0; n < good.body.size(); ++n) {
        CAPTURE(n);
        const Frame cut{good.type, good.body.first(n), good.raw};
        CHECK_FALSE(View::parse(cut));
    }
}

} // namespace

TEST_SUITE("wire.statement_names") {
    TEST_CASE("ParseView exposes the name and keeps the rest as sent") {
        const auto view = parse_as<ParseView>(parse_bytes);
        REQUIRE(view);
        CHECK(view->statement == "s1");
        CHECK(same_bytes(view->query_and_types, query_and_types));
        CHECK(query_of(view->query_and_types) == "SELECT $1, $2");
        check_encoding(*view, parse_bytes);
    }

    TEST_CASE("a renamed Parse is the Parse fe::Parse would write") {
        auto view = parse_as<ParseView>(parse_bytes);
        REQUIRE(view);
        view->statement = "PGMARINA_7";

        Writer expected;
        Parse{"PGMARINA_7", "SELECT $1, $2", {23, 0}}.encode(expected);
        CHECK(encoded(*view) == expected.take());
        CHECK(encoded(*view) == msg('P', cat({str("PGMARINA_7"), query_and_types})));
    }

    TEST_CASE("ParseView re-sends a stored tail under a server name") {
        Writer expected;
        Parse{"PGMARINA_1", "SELECT 1", {}}.encode(expected);
        const Bytes tail = cat({str("SELECT 1"), i16(0)});
        CHECK(encoded(ParseView{"PGMARINA_1", tail}) == expected.take());
    }

    TEST_CASE("ParseView refuses what fe::Parse refuses") {
        check_rejects_wrong_type<ParseView>(parse_bytes);
        check_rejects_every_prefix<ParseView>(parse_bytes);
        check_rejects_trailing_bytes<ParseView>(parse_bytes);
        CHECK(parse_error<ParseView>(msg('P', cat({str("s"), str("SELECT 1"), hex("ffff")}))) ==
              errc::truncated);
        CHECK(parse_error<ParseView>(msg('P', cat({str("s"), raw("SELECT 1")}))) ==
              errc::missing_terminator);
    }

    TEST_CASE("BindView exposes both names and copies the values untouched") {
        const auto view = parse_as<BindView>(bind_bytes);
        REQUIRE(view);
        CHECK(view->portal == "p1");
        CHECK(view->statement == "s1");
        CHECK(same_bytes(view->rest, bind_rest));
        check_encoding(*view, bind_bytes);
    }

    TEST_CASE("a renamed Bind is the Bind fe::Bind would write") {
        auto view = parse_as<BindView>(bind_bytes);
        REQUIRE(view);
        view->statement = "PGMARINA_12";

        const auto bind = parse_as<Bind>(bind_bytes);
        REQUIRE(bind);
        Bind renamed = *bind;
        renamed.statement = "PGMARINA_12";
        CHECK(encoded(*view) == encoded(renamed));
        CHECK(encoded(*view) == msg('B', cat({str("p1"), str("PGMARINA_12"), bind_rest})));
    }

    TEST_CASE("BindView refuses a body cut inside a name") {
        check_rejects_wrong_type<BindView>(bind_bytes);
        const Frame good = frame_of(bind_bytes, Phase::typed);
        const std::size_t names = str("p1").size() + str("s1").size();
        for (std::size_t n = 0; n < names; ++n) {
            CAPTURE(n);
            const Frame cut{good.type, good.body.first(n), good.raw};
            CHECK(BindView::parse(cut).error() == errc::missing_terminator);
        }
        // The values are the server's to check.
        const Frame short_values{good.type, good.body.first(names + 1), good.raw};
        CHECK(BindView::parse(short_values));
    }

    TEST_CASE("Describe and Close of a statement are renamed by their own encode") {
        CHECK(encoded(Describe::statement("PGMARINA_3")) ==
              msg('D', cat({raw("S"), str("PGMARINA_3")})));
        CHECK(encoded(Close::statement("PGMARINA_3")) ==
              msg('C', cat({raw("S"), str("PGMARINA_3")})));
    }

    TEST_CASE("BindView::parse_start reads the names from the start of a long Bind") {
        const Frame whole = frame_of(bind_bytes, Phase::typed);
        SUBCASE("whole") {
            const auto view = BindView::parse_start(whole);
            REQUIRE(view);
            CHECK(view->portal == "p1");
            CHECK(view->statement == "s1");
            CHECK(Bytes(view->rest.begin(), view->rest.end()) == bind_rest);
        }
        SUBCASE("only the names and two more bytes have arrived") {
            const Frame start{whole.type, whole.body.first(8), whole.raw.first(13)};
            const auto view = BindView::parse_start(start);
            REQUIRE(view);
            CHECK(view->statement == "s1");
            CHECK(view->rest.size() == 2);
        }
        SUBCASE("not even the statement name: refused") {
            const Frame start{whole.type, whole.body.first(4), whole.raw.first(9)};
            CHECK_FALSE(BindView::parse_start(start));
        }
    }
}
