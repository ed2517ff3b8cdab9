// classify_transaction: which message of a transaction carries its text, and how it is judged.

#include "proxy/transaction_router.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

using proxy::classify_transaction;
using proxy::ClientTraits;
using routing::Reason;
using routing::Target;
using namespace wire::test;

routing::Classification classify(char type, const Bytes& body, const ClientTraits& client = {},
                                 const std::vector<std::string>& functions = {}) {
    const wire::Frame frame{type, body, {}};
    return classify_transaction(frame, client, functions, nullptr);
}

} // namespace

TEST_SUITE("proxy.transaction_router") {
    TEST_CASE("a Query is judged by its text") {
        CHECK(classify('Q', str("SELECT 1")).target == Target::replica_ok);
        CHECK(classify('Q', str("INSERT INTO t VALUES (1)")).reason == Reason::write_statement);
        CHECK(classify('Q', str("BEGIN READ ONLY")).reason == Reason::explicit_read_only);
    }

    TEST_CASE("a Parse is judged by its text, not its name") {
        CHECK(classify('P', cat({str("select_stmt"), str("SELECT 1"), i16(0)})).target ==
              Target::replica_ok);
        CHECK(classify('P', cat({str("SELECT 1"), str("DELETE FROM t"), i16(0)})).target ==
              Target::primary);
    }

    TEST_CASE("the client's default_transaction_read_only and allowlist count") {
        CHECK(classify('Q', str("BEGIN"), {.default_transaction_read_only = true}).target ==
              Target::replica_ok);
        CHECK(classify('Q', str("SELECT my_func()")).target == Target::primary);
        CHECK(classify('Q', str("SELECT my_func()"), {}, {"my_func"}).target == Target::replica_ok);
    }

    TEST_CASE("a message without text, or a malformed one, goes to the primary") {
        CHECK(classify('S', {}).reason == Reason::unknown_statement);
        CHECK(classify('F', i32(1)).reason == Reason::unknown_statement);
        CHECK(classify('Q', raw("SELECT 1")).reason == Reason::unknown_statement); // no NUL
        CHECK(classify('P', str("name_only")).reason == Reason::unknown_statement);
        // A Bind without the session's statement cache cannot be judged.
        CHECK(classify('B', cat({str(""), str("s1"), i16(0), i16(0), i16(0)})).reason ==
              Reason::unknown_statement);
    }
}
