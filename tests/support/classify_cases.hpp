#pragma once

// Table-driven checks for routing::classify tests: a Case is a text with the target, reason and
// default_transaction_read_only change expected, and check() runs a table of them, adding the
// multi-statement and unparsable variants every classifiable text must also pass. The
// using-declarations let the tables spell targets and reasons bare after `using namespace
// routing::test`.

#include "routing/classify.hpp"

#include <doctest/doctest.h>

#include <span>
#include <string>
#include <string_view>

namespace routing::test {

using routing::Classification;
using routing::classify;
using routing::ClassifyOptions;
using routing::DefaultReadOnly;
using routing::Reason;
using routing::Target;
using enum Reason;

inline constexpr Target replica = Target::replica_ok;
inline constexpr Target primary = Target::primary;

struct Case {
    std::string_view sql;
    Target target;
    Reason reason;
    DefaultReadOnly change = DefaultReadOnly::unchanged;
};

inline std::string name_of(DefaultReadOnly change) {
    switch (change) {
    case DefaultReadOnly::unchanged:
        return "unchanged";
    case DefaultReadOnly::on:
        return "on";
    case DefaultReadOnly::off:
        return "off";
    case DefaultReadOnly::reset:
        return "reset";
    }
    return "?";
}

// Each case, and two properties of every text the classifier could read: a statement appended
// after one makes a multi-statement string (texts without a statement, empty ones and bare
// hints, are left out), and a quote or comment left open after it makes it unparsable. Both go
// to the primary whatever the text was.
inline void check(std::span<const Case> cases, const ClassifyOptions& options = {}) {
    using namespace std::string_view_literals;
    for (const Case& c : cases) {
        CAPTURE(c.sql);
        const Classification got = classify(c.sql, options);
        CHECK(to_string(got.target) == to_string(c.target));
        CHECK(to_string(got.reason) == to_string(c.reason));
        CHECK(name_of(got.default_read_only) == name_of(c.change));

        if (c.reason == unparsable || c.reason == multi_statement) {
            continue;
        }
        const std::string text(c.sql);
        if (c.reason != empty && c.reason != hint) {
            CHECK(classify(text + "\n;SELECT 1", options) ==
                  Classification{primary, multi_statement});
        }
        for (const std::string_view opener : {"'"sv, "\""sv, "$$"sv, "/*"sv, "E'"sv}) {
            CHECK(classify(text + "\n" + std::string(opener), options) ==
                  Classification{primary, unparsable});
        }
    }
}

} // namespace routing::test
