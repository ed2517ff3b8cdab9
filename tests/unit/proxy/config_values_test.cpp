#include "proxy/config_values.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

using namespace std::chrono_literals;
using proxy::ByteSize;
using proxy::Duration;
using proxy::Endpoint;

namespace {

// The error of a parse that must fail, so a CHECK can look at its wording.
template <class Parse>
std::string failure(Parse parse) {
    std::string error;
    auto value = parse(error);
    CHECK_FALSE(value.has_value());
    CHECK_FALSE(error.empty());
    return error;
}

std::optional<Duration> duration(std::string_view text) {
    std::string error;
    auto value = proxy::parse_duration(text, error);
    CHECK_MESSAGE(value.has_value(), error);
    return value;
}

std::optional<ByteSize> size(std::string_view text) {
    std::string error;
    auto value = proxy::parse_size(text, error);
    CHECK_MESSAGE(value.has_value(), error);
    return value;
}

std::optional<Endpoint> endpoint(std::string_view text, proxy::AddressRules rules = {5432, false}) {
    std::string error;
    auto value = proxy::parse_endpoint(text, rules, error);
    CHECK_MESSAGE(value.has_value(), error);
    return value;
}

} // namespace

TEST_SUITE("proxy.config_values") {
    TEST_CASE("durations take PostgreSQL's time units") {
        CHECK(duration("250us") == 250us);
        CHECK(duration("500ms") == 500ms);
        CHECK(duration("30s") == 30s);
        CHECK(duration("5min") == 5min);
        CHECK(duration("1h") == 1h);
        CHECK(duration("2d") == 48h);
        CHECK(duration("0s") == 0s);
        CHECK(duration("1.5s") == 1500ms);
        CHECK(duration("0.25ms") == 250us);
        CHECK(duration("30 s") == 30s);
    }

    TEST_CASE("durations without a known unit are refused") {
        auto parse = [](std::string_view text) {
            return failure([&](std::string& e) { return proxy::parse_duration(text, e); });
        };
        CHECK(parse("30").find("needs a unit") != std::string::npos);
        CHECK(parse("30sec").find("unknown duration unit 'sec'") != std::string::npos);
        CHECK(parse("30S").find("unknown duration unit 'S'") != std::string::npos);
        CHECK(parse("1.s").find("unknown duration unit '.s'") != std::string::npos);
        CHECK(parse("-5s").find("expected a duration") != std::string::npos);
        CHECK(parse("1e3s").find("unknown duration unit 'e3s'") != std::string::npos);
        CHECK(parse("").find("expected a duration") != std::string::npos);
        CHECK(parse("inf").find("expected a duration") != std::string::npos);
        CHECK(parse("99999999999999999999d").find("too long") != std::string::npos);
    }

    TEST_CASE("durations in seconds, as PgBouncer writes them") {
        std::string error;
        CHECK(proxy::duration_from_seconds(std::int64_t{5}, error) == 5s);
        CHECK(proxy::duration_from_seconds(0.5, error) == 500ms);
        CHECK(proxy::duration_from_seconds(0.0000004, error) == 0us); // rounds to microseconds
        CHECK_FALSE(proxy::duration_from_seconds(std::int64_t{-1}, error));
        CHECK(error.find("negative") != std::string::npos);
        CHECK_FALSE(proxy::duration_from_seconds(-0.5, error));
        CHECK_FALSE(proxy::duration_from_seconds(std::nan(""), error));
        CHECK_FALSE(proxy::duration_from_seconds(std::numeric_limits<double>::infinity(), error));
        CHECK_FALSE(proxy::duration_from_seconds(1e300, error));
        CHECK_FALSE(
            proxy::duration_from_seconds(std::numeric_limits<std::int64_t>::max() / 1000, error));
    }

    TEST_CASE("durations format with the largest exact unit and parse back") {
        CHECK(proxy::format_duration(0s) == "0s");
        CHECK(proxy::format_duration(1500us) == "1500us");
        CHECK(proxy::format_duration(500ms) == "500ms");
        CHECK(proxy::format_duration(90s) == "90s");
        CHECK(proxy::format_duration(120s) == "2min");
        CHECK(proxy::format_duration(3600s) == "1h");
        CHECK(proxy::format_duration(24h) == "1d");
        for (Duration value : {Duration{1}, Duration{1500}, Duration{5s}, Duration{7min}}) {
            CHECK(duration(proxy::format_duration(value)) == value);
        }
    }

    TEST_CASE("sizes take PostgreSQL's memory units") {
        CHECK(size("10B") == ByteSize{10});
        CHECK(size("64kB") == ByteSize{64 * 1024});
        CHECK(size("1MB") == ByteSize{1024 * 1024});
        CHECK(size("2GB") == ByteSize{2ULL << 30});
        CHECK(size("1TB") == ByteSize{1ULL << 40});
        CHECK(size("1 MB") == ByteSize{1024 * 1024});
    }

    TEST_CASE("sizes with unknown units or fractions are refused") {
        auto parse = [](std::string_view text) {
            return failure([&](std::string& e) { return proxy::parse_size(text, e); });
        };
        CHECK(parse("1mb").find("unknown size unit 'mb'") != std::string::npos);
        CHECK(parse("1KB").find("case-sensitive") != std::string::npos);
        CHECK(parse("1.5MB").find("unknown size unit '.5MB'") != std::string::npos);
        CHECK(parse("MB").find("expected a size") != std::string::npos);
        CHECK(parse("4096").find("needs a unit") != std::string::npos);
        CHECK(parse("99999999999TB").find("too large") != std::string::npos);
    }

    TEST_CASE("sizes format with the largest exact unit") {
        CHECK(proxy::format_size(ByteSize{0}) == "0");
        CHECK(proxy::format_size(ByteSize{4096}) == "4kB");
        CHECK(proxy::format_size(ByteSize{1536}) == "1536");
        CHECK(proxy::format_size(ByteSize{1024 * 1024}) == "1MB");
        CHECK(proxy::format_size(ByteSize{2147483647}) == "2147483647");
    }

    TEST_CASE("addresses") {
        CHECK(endpoint("127.0.0.1:6432") == Endpoint{"127.0.0.1", 6432});
        CHECK(endpoint("pg-0:5433") == Endpoint{"pg-0", 5433});
        CHECK(endpoint("pg-0") == Endpoint{"pg-0", 5432});
        CHECK(endpoint("[::1]:6432") == Endpoint{"::1", 6432});
        CHECK(endpoint("[::1]") == Endpoint{"::1", 5432});
        CHECK(endpoint("db.example.com.:1") == Endpoint{"db.example.com.", 1});
        CHECK(endpoint("pg_primary:65535") == Endpoint{"pg_primary", 65535});
        proxy::AddressRules listen{6432, true};
        CHECK(endpoint("*", listen) == Endpoint{"*", 6432});
        CHECK(endpoint("*:7432", listen) == Endpoint{"*", 7432});
    }

    TEST_CASE("bad addresses say what is wrong") {
        auto parse = [](std::string_view text, proxy::AddressRules rules = {5432, false}) {
            return failure([&](std::string& e) { return proxy::parse_endpoint(text, rules, e); });
        };
        CHECK(parse("").find("must not be empty") != std::string::npos);
        CHECK(parse(":5432").find("invalid host name ''") != std::string::npos);
        CHECK(parse("pg:").find("missing port") != std::string::npos);
        CHECK(parse("pg:0").find("out of range 1-65535") != std::string::npos);
        CHECK(parse("pg:65536").find("out of range 1-65535") != std::string::npos);
        CHECK(parse("pg:99999999999").find("out of range 1-65535") != std::string::npos);
        CHECK(parse("pg:54x").find("not a number") != std::string::npos);
        CHECK(parse("pg:+1").find("not a number") != std::string::npos);
        CHECK(parse("::1:5432").find("must be in brackets") != std::string::npos);
        CHECK(parse("[::1:5432").find("missing ']'") != std::string::npos);
        CHECK(parse("[zz::1]:5432").find("invalid IPv6 address 'zz::1'") != std::string::npos);
        CHECK(parse("[::1]5432").find("expected ':' after ']'") != std::string::npos);
        CHECK(parse("999.0.0.1:5432").find("invalid IPv4 address") != std::string::npos);
        CHECK(parse("1.2.3:5432").find("invalid IPv4 address") != std::string::npos);
        CHECK(parse("bad host:5432").find("invalid host name 'bad host'") != std::string::npos);
        CHECK(parse("-pg:5432").find("invalid host name") != std::string::npos);
        CHECK(parse("a..b:5432").find("invalid host name") != std::string::npos);
        CHECK(parse(std::string(64, 'a') + ":1").find("invalid host name") != std::string::npos);
        CHECK(parse("pg", {}).find("missing port in \"pg\"") != std::string::npos);
        CHECK(parse("*:5432").find("\"*:5432\" is not a server address") != std::string::npos);
    }

    TEST_CASE("Endpoint::to_string brackets IPv6 literals") {
        CHECK(Endpoint{"pg-0", 5432}.to_string() == "pg-0:5432");
        CHECK(Endpoint{"::1", 6432}.to_string() == "[::1]:6432");
    }

    TEST_CASE("enum names round-trip and are case-sensitive") {
        for (auto mode :
             {proxy::PoolMode::session, proxy::PoolMode::transaction, proxy::PoolMode::statement}) {
            CHECK(proxy::parse_enum<proxy::PoolMode>(proxy::to_string(mode)) == mode);
        }
        CHECK(proxy::to_string(proxy::AuthType::scram_sha_256) == "scram-sha-256");
        CHECK(proxy::parse_enum<proxy::AuthType>("hba") == proxy::AuthType::hba);
        CHECK(proxy::to_string(proxy::Routing::read_write_split) == "read_write_split");
        CHECK_FALSE(proxy::parse_enum<proxy::PoolMode>("Transaction"));
        CHECK_FALSE(proxy::parse_enum<proxy::Routing>(""));
    }
}
