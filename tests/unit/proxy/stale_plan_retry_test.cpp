#include "proxy/stale_plan_retry.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

using namespace wire::test;
using proxy::StalePlanRetry;

const Bytes bind_message = msg('B', cat({str(""), str("PGMARINA_1"), i16(0), i16(0), i16(0)}));
const Bytes describe_portal = msg('D', cat({u8('P'), str("")}));
const Bytes describe_statement = msg('D', cat({u8('S'), str("PGMARINA_1")}));
const Bytes execute_message = msg('E', cat({str(""), i32(0)}));
const Bytes sync_message = msg('S', Bytes());
const Bytes flush_message = msg('H', Bytes());
const Bytes parse_message = msg('P', cat({str("PGMARINA_2"), str("SELECT 1"), i16(0)}));
const Bytes query_message = msg('Q', str("SELECT 1"));

constexpr std::uint64_t bind_tag = 7;

struct Fixture {
    pool::StatementRegistry registry;
    pool::StatementPtr statement = registry.intern(cat({str("SELECT * FROM t"), i16(0)}));
    StalePlanRetry retry;

    // A whole message, or the start of one that has `rest` bytes still to come.
    void client(const Bytes& message, std::size_t rest = 0) {
        const wire::Frame frame = frame_of(message, wire::Phase::typed);
        retry.on_client({.frame = frame, .bytes = frame.raw, .rest = rest});
    }

    void bind(bool opens_batch = true, bool whole = true) {
        client(bind_message);
        retry.on_bind(bind_message, whole, opens_batch, statement, bind_tag);
    }

    // Bind, Describe(portal), Execute, Sync: what libpq's PQexecPrepared sends.
    void exec_prepared() {
        bind();
        client(describe_portal);
        client(execute_message);
        client(sync_message);
    }
};

} // namespace

TEST_SUITE("proxy.stale_plan_retry") {
    TEST_CASE("a Bind, Describe(portal), Execute, Sync is kept and given back once refused") {
        Fixture f;
        f.exec_prepared();
        CHECK_FALSE(f.retry.due());
        CHECK_FALSE(f.retry.on_stale_plan(bind_tag + 1));
        CHECK(f.retry.on_stale_plan(bind_tag));
        CHECK(f.retry.due());
        // The refused request's ReadyForQuery is withheld, and only that one.
        CHECK(f.retry.on_ready());
        CHECK_FALSE(f.retry.on_ready());

        const auto replay = f.retry.take();
        CHECK(replay.statement == f.statement);
        CHECK(same_bytes(replay.messages,
                         cat({bind_message, describe_portal, execute_message, sync_message})));
        CHECK_FALSE(f.retry.due());
        // Once only: the replay is not kept again.
        CHECK_FALSE(f.retry.on_stale_plan(bind_tag));
    }

    TEST_CASE("Bind, Execute, Sync and a bare Bind, Sync are kept too") {
        Fixture f;
        SUBCASE("without Describe") {
            f.bind();
            f.client(execute_message);
            f.client(sync_message);
        }
        SUBCASE("without Execute") {
            f.bind();
            f.client(sync_message);
        }
        CHECK(f.retry.on_stale_plan(bind_tag));
    }

    TEST_CASE("an error before the Sync is written is not retried") {
        Fixture f;
        f.bind();
        f.client(execute_message);
        CHECK_FALSE(f.retry.on_stale_plan(bind_tag));
        CHECK_FALSE(f.retry.on_ready());
    }

    TEST_CASE("requests that are not one statement's execution alone are not kept") {
        Fixture f;
        SUBCASE("the Bind does not open the batch") {
            f.bind(false);
        }
        SUBCASE("the Bind is too long to be held whole") {
            f.bind(true, false);
        }
        SUBCASE("another Bind follows") {
            f.bind();
            f.client(bind_message);
        }
        SUBCASE("Describe of the statement") {
            f.bind();
            f.client(describe_statement);
        }
        SUBCASE("Parse") {
            f.bind();
            f.client(parse_message);
        }
        SUBCASE("Flush") {
            f.bind();
            f.client(flush_message);
        }
        SUBCASE("an Execute that streams") {
            f.bind();
            f.client(execute_message, 100);
        }
        SUBCASE("a Query") {
            f.bind();
            f.client(query_message);
        }
        f.client(sync_message);
        CHECK_FALSE(f.retry.on_stale_plan(bind_tag));
    }

    TEST_CASE("a message after the Sync drops the request: its replies would come first") {
        Fixture f;
        f.exec_prepared();
        SUBCASE("the next request") {
            f.client(query_message);
        }
        SUBCASE("the next execution, which is kept instead") {
            f.retry.on_bind(bind_message, true, true, f.statement, bind_tag + 1);
            f.client(sync_message);
            CHECK(f.retry.on_stale_plan(bind_tag + 1));
        }
        CHECK_FALSE(f.retry.on_stale_plan(bind_tag));
    }

    TEST_CASE("a Bind is kept with one result format for all columns, not with one per column") {
        Fixture f;
        const auto bind_with = [](std::initializer_list<Bytes> result_formats) {
            Bytes formats = i16(static_cast<std::int16_t>(result_formats.size()));
            for (const auto& format : result_formats)
                formats.insert(formats.end(), format.begin(), format.end());
            // Two text parameters, one of them NULL, then the result formats.
            return msg('B', cat({str("p"), str("PGMARINA_1"), i16(1), i16(0), i16(2), i32(2),
                                 raw("42"), i32(-1), formats}));
        };
        const auto kept = [&f](const Bytes& bind) {
            f.client(bind);
            f.retry.on_bind(bind, true, true, f.statement, bind_tag);
            f.client(sync_message);
            return f.retry.on_stale_plan(bind_tag);
        };
        CHECK(kept(bind_with({})));
        CHECK(kept(bind_with({i16(1)})));
        CHECK_FALSE(kept(bind_with({i16(1), i16(0)})));
        // A Bind the server will refuse anyway is not kept either.
        CHECK_FALSE(kept(msg('B', cat({str(""), str("PGMARINA_1"), i16(0), i16(3), i32(8)}))));
    }

    TEST_CASE("a request of more than max_request bytes is not kept") {
        Fixture f;
        f.bind();
        const Bytes execute_portal =
            msg('E', cat({str(std::string(StalePlanRetry::max_request - bind_message.size(), 'p')),
                          i32(0)}));
        f.client(execute_portal);
        f.client(sync_message);
        CHECK_FALSE(f.retry.on_stale_plan(bind_tag));
    }

    TEST_CASE("reset() forgets the request and the withheld ReadyForQuery") {
        Fixture f;
        f.exec_prepared();
        REQUIRE(f.retry.on_stale_plan(bind_tag));
        f.retry.reset();
        CHECK_FALSE(f.retry.due());
        CHECK_FALSE(f.retry.on_ready());
    }
}
