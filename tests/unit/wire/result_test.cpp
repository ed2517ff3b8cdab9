#include "wire/result.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

TEST_SUITE("wire.result") {
    using wire::errc;

    TEST_CASE("every errc has its own message in the wire category") {
        std::set<std::string> messages;
        for (int e = static_cast<int>(errc::truncated);
             e <= static_cast<int>(errc::scram_server_error); ++e) {
            const auto code = make_error_code(static_cast<errc>(e));
            CHECK(code.category() == wire::wire_category());
            CHECK(code.failed());
            messages.insert(code.message());
        }
        CHECK(messages.size() == 17);
        CHECK(messages.count("unknown wire error") == 0);
        CHECK(std::string(wire::wire_category().name()) == "wire");
    }

    TEST_CASE("errc converts implicitly into an error_code and a Result") {
        const boost::system::error_code code = errc::trailing_bytes;
        CHECK(code == errc::trailing_bytes);
        CHECK(code != errc::truncated);

        const wire::Result<int> failed = errc::invalid_value;
        REQUIRE(failed.has_error());
        CHECK(failed.error() == errc::invalid_value);

        const wire::Result<int> value = 42;
        CHECK(*value == 42);
    }
}
