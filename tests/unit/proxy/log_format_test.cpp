#include "proxy/log_format.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using namespace std::chrono_literals;
using proxy::log::Format;
using proxy::log::Level;
using proxy::log::RepeatFilter;

TEST_SUITE("proxy.log_format") {

    TEST_CASE("text lines are PgBouncer's") {
        CHECK(proxy::log::format_line(Format::text, "2026-01-02 03:04:05.678 UTC", 42, Level::info,
                                      "C-17 app/alice@10.0.0.5:51234 login attempt: ok") ==
              "2026-01-02 03:04:05.678 UTC [42] LOG C-17 app/alice@10.0.0.5:51234 login "
              "attempt: ok\n");
        CHECK(proxy::log::format_line(Format::text, "T", 1, Level::warning, "x") ==
              "T [1] WARNING x\n");
    }

    TEST_CASE("JSON lines: one object, the connection in a field of its own") {
        CHECK(proxy::log::format_line(Format::json, "2026-01-02 03:04:05.678 UTC", 42, Level::error,
                                      "S-4 app/alice@pg-1:5432 closing because: \"x\"\n") ==
              "{\"time\":\"2026-01-02T03:04:05.678Z\",\"pid\":42,\"level\":\"ERROR\","
              "\"connection\":\"S-4\",\"message\":\"S-4 app/alice@pg-1:5432 closing because: "
              "\\\"x\\\"\\n\"}\n");
        CHECK(proxy::log::format_line(Format::json, "2026-01-02 03:04:05.678 UTC", 7, Level::info,
                                      "listening on 127.0.0.1:6432") ==
              "{\"time\":\"2026-01-02T03:04:05.678Z\",\"pid\":7,\"level\":\"LOG\","
              "\"message\":\"listening on 127.0.0.1:6432\"}\n");
        CHECK(proxy::log::json_string(std::string("a\x01\tb\\", 5)) == "\"a\\u0001\\tb\\\\\"");
    }

    TEST_CASE("the connection a line is about") {
        CHECK(proxy::log::connection_of("C-17 app/alice@x:1 y") == "C-17");
        CHECK(proxy::log::connection_of("S-4 app/alice@pg-1:5432") == "S-4");
        CHECK(proxy::log::connection_of("C-17") == "C-17");
        CHECK(proxy::log::connection_of("C- x").empty());
        CHECK(proxy::log::connection_of("C-1x").empty());
        CHECK(proxy::log::connection_of("Closing").empty());
        CHECK(proxy::log::connection_of("").empty());
    }

    TEST_CASE("formats by name") {
        CHECK(proxy::log::parse_format("text") == Format::text);
        CHECK(proxy::log::parse_format("json") == Format::json);
        CHECK_FALSE(proxy::log::parse_format("JSON").has_value());
    }

    TEST_CASE("repeats of one error by many clients have one key; different errors do not") {
        using proxy::log::repeat_key;
        CHECK(repeat_key("C-17 app/alice@10.0.0.5:51234 login failed") ==
              repeat_key("C-18 app/alice@10.0.0.5:40000 login failed"));
        CHECK(repeat_key("C-17 app/alice@10.0.0.5:51234 login failed") !=
              repeat_key("C-17 app/bob@10.0.0.5:51234 login failed"));
        CHECK(repeat_key("S-4 app/alice@pg-1:5432 refused") ==
              repeat_key("S-9 app/alice@pg-1:5432 refused"));
        CHECK(repeat_key("S-4 app/alice@pg-1:5432 refused") !=
              repeat_key("S-4 app/alice@pg-2:5432 refused"));
        CHECK(repeat_key("could not listen on 1.2.3.4:6432") == "could not listen on 1.2.3.4:6432");
        CHECK(repeat_key("C-17 unix x") == repeat_key("C-18 unix x"));
    }

    TEST_CASE("a repeated error is written once per window, then with its count") {
        RepeatFilter filter;
        const auto t0 = RepeatFilter::Clock::time_point{} + 1h;
        CHECK(filter.admit("C-1 a/b@h:1 boom", t0) == "C-1 a/b@h:1 boom");
        CHECK_FALSE(filter.admit("C-2 a/b@h:2 boom", t0 + 1s).has_value());
        CHECK_FALSE(filter.admit("C-3 a/b@h:3 boom", t0 + 9s).has_value());
        // Something else is not held back meanwhile.
        CHECK(filter.admit("other", t0 + 2s) == "other");
        CHECK(filter.admit("C-4 a/b@h:4 boom", t0 + 10s) == "C-4 a/b@h:4 boom (repeated 2 times)");
        CHECK_FALSE(filter.admit("C-5 a/b@h:5 boom", t0 + 11s).has_value());
        // Nothing more of it: flush sums it up once its window is over, and forgets it.
        CHECK(filter.flush(t0 + 15s).empty());
        const auto summaries = filter.flush(t0 + 20s);
        REQUIRE(summaries.size() == 1);
        CHECK(summaries[0] == "C-5 a/b@h:5 boom (repeated 1 times)");
        CHECK(filter.flush(t0 + 40s).empty());
        CHECK(filter.admit("C-6 a/b@h:6 boom", t0 + 41s) == "C-6 a/b@h:6 boom");
    }

    TEST_CASE("a flood of distinct messages is not limited beyond max_keys, nor held in memory") {
        RepeatFilter filter;
        const auto t0 = RepeatFilter::Clock::time_point{} + 1h;
        for (std::size_t i = 0; i < RepeatFilter::max_keys + 10; ++i) {
            const std::string message = "distinct " + std::to_string(i);
            CHECK(filter.admit(message, t0) == message);
        }
        // Past the window, old keys make room again.
        CHECK(filter.admit("distinct 0", t0 + 11s) == "distinct 0");
    }

    TEST_CASE("the stats line") {
        proxy::TrafficTotals averages;
        averages.xacts = 12;
        averages.queries = 30;
        averages.client_parses = 1;
        averages.server_parses = 2;
        averages.binds = 3;
        averages.bytes_received = 2048;
        averages.bytes_sent = 4096;
        averages.xact_time = 950;
        averages.query_time = 310;
        averages.wait_time = 12;
        CHECK(proxy::log::stats_line(averages) ==
              "stats: 12 xacts/s, 30 queries/s, 1 client parses/s, 2 server parses/s, 3 binds/s, "
              "in 2048 B/s, out 4096 B/s, xact 950 us, query 310 us, wait 12 us");
    }
}
