#include "pool/statement_cache.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace pool;

// The tail of a Parse, built by hand: query String, Int16 count, Int32 OIDs.
std::vector<std::byte> parse_tail(std::string_view query,
                                  std::initializer_list<std::uint32_t> types = {}) {
    std::vector<std::byte> out;
    for (const char c : query) {
        out.push_back(static_cast<std::byte>(c));
    }
    out.push_back(std::byte{0});
    out.push_back(static_cast<std::byte>(types.size() >> 8));
    out.push_back(static_cast<std::byte>(types.size() & 0xff));
    for (const std::uint32_t oid : types) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            out.push_back(static_cast<std::byte>((oid >> shift) & 0xff));
        }
    }
    return out;
}

std::uint64_t number(StatementId id) {
    return static_cast<std::uint64_t>(id);
}

std::vector<std::uint64_t> ids(const std::vector<StatementPtr>& statements) {
    std::vector<std::uint64_t> out;
    for (const auto& statement : statements) {
        out.push_back(number(statement->id()));
    }
    return out;
}

// `count` distinct statements, interned in order: ids 1..count in a fresh registry.
std::vector<StatementPtr> statements(StatementRegistry& registry, int count) {
    std::vector<StatementPtr> out;
    for (int i = 0; i < count; ++i) {
        out.push_back(registry.intern(parse_tail("SELECT " + std::to_string(i))));
    }
    return out;
}

} // namespace

TEST_SUITE("pool.statement_registry") {
    TEST_CASE("equal bytes from two clients are one statement with one name") {
        StatementRegistry registry;
        const auto a = registry.intern(parse_tail("SELECT $1", {23}));
        const auto b = registry.intern(parse_tail("SELECT $1", {23}));
        CHECK(a == b);
        CHECK(a->server_name() == "PGMARINA_1");
        CHECK(a->query() == "SELECT $1");
        const auto tail = parse_tail("SELECT $1", {23});
        CHECK(std::ranges::equal(a->query_and_types(), tail));
        CHECK(registry.size() == 1);
    }

    TEST_CASE("the same text with other parameter types is another statement") {
        StatementRegistry registry;
        const auto int4 = registry.intern(parse_tail("SELECT $1", {23}));
        const auto text = registry.intern(parse_tail("SELECT $1", {25}));
        const auto unspecified = registry.intern(parse_tail("SELECT $1"));
        CHECK(int4 != text);
        CHECK(text != unspecified);
        CHECK(std::set<std::string>{int4->server_name(), text->server_name(),
                                    unspecified->server_name()}
                  .size() == 3);
        CHECK(registry.size() == 3);
    }

    TEST_CASE("texts differing only after an embedded prefix are not confused") {
        StatementRegistry registry;
        const auto short_text = registry.intern(parse_tail("SELECT 1"));
        const auto long_text = registry.intern(parse_tail("SELECT 10"));
        CHECK(short_text != long_text);
    }

    TEST_CASE("a statement nobody holds is released, and its name is never reused") {
        StatementRegistry registry;
        auto first = registry.intern(parse_tail("SELECT 1"));
        const std::weak_ptr<const Statement> watch = first;
        CHECK(first->server_name() == "PGMARINA_1");

        first.reset();
        CHECK(watch.expired());
        CHECK(registry.size() == 0);

        const auto again = registry.intern(parse_tail("SELECT 1"));
        CHECK(again->server_name() == "PGMARINA_2");
        CHECK(registry.size() == 1);
    }

    TEST_CASE("memory stays bounded while clients churn through unique statements") {
        StatementRegistry registry;
        const auto kept = registry.intern(parse_tail("SELECT kept"));
        for (int i = 0; i < 1000; ++i) {
            const auto churn = registry.intern(parse_tail("SELECT " + std::to_string(i)));
            CHECK(registry.size() == 2);
        }
        CHECK(registry.size() == 1);
        CHECK(registry.intern(parse_tail("SELECT kept")) == kept);
    }

    TEST_CASE("statements outlive their registry") {
        StatementPtr survivor;
        {
            StatementRegistry registry;
            survivor = registry.intern(parse_tail("SELECT 1"));
        }
        CHECK(survivor->query() == "SELECT 1");
        survivor.reset(); // the deleter still finds the table
    }

    TEST_CASE("threads interning the same texts get one statement per text") {
        StatementRegistry registry;
        constexpr int threads = 8;
        constexpr int texts = 50;
        constexpr int rounds = 20;
        std::vector<std::vector<StatementPtr>> kept(threads);
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; ++t) {
            workers.emplace_back([&registry, &kept, t] {
                auto& mine = kept[static_cast<std::size_t>(t)];
                for (int round = 0; round < rounds; ++round) {
                    for (int i = 0; i < texts; ++i) {
                        const int n = (i + t) % texts;
                        auto statement = registry.intern(parse_tail("SELECT " + std::to_string(n)));
                        if (round == 0) {
                            mine.push_back(std::move(statement));
                        }
                        // Held by nobody else for long: its release races with the next
                        // thread's intern of the same text.
                        const auto transient =
                            registry.intern(parse_tail("SELECT transient " + std::to_string(n)));
                        CHECK(transient->query() == "SELECT transient " + std::to_string(n));
                    }
                }
            });
        }
        for (auto& worker : workers) {
            worker.join();
        }
        // Every text was held from its first intern on, so all its interns returned one id.
        std::set<std::uint64_t> held;
        for (const auto& mine : kept) {
            for (const auto& statement : mine) {
                held.insert(number(statement->id()));
            }
        }
        CHECK(held.size() == texts);
        CHECK(registry.size() == texts); // the transient ones are gone
    }
}

TEST_SUITE("pool.client_statements") {
    TEST_CASE("a name maps to its statement until closed") {
        StatementRegistry registry;
        const auto statement = registry.intern(parse_tail("SELECT 1"));
        ClientStatements client;
        CHECK(client.prepare("s1", statement));
        REQUIRE(client.find("s1") != nullptr);
        CHECK(*client.find("s1") == statement);
        CHECK(client.find("s2") == nullptr);
        CHECK(client.size() == 1);

        CHECK(client.close("s1"));
        CHECK(client.find("s1") == nullptr);
        CHECK_FALSE(client.close("s1"));
        CHECK(client.prepare("s1", statement));
    }

    TEST_CASE("preparing a name twice is refused (42P05) and keeps the first") {
        StatementRegistry registry;
        const auto first = registry.intern(parse_tail("SELECT 1"));
        const auto second = registry.intern(parse_tail("SELECT 2"));
        ClientStatements client;
        CHECK(client.prepare("s", first));
        CHECK_FALSE(client.prepare("s", second));
        CHECK_FALSE(client.prepare("s", first));
        CHECK(*client.find("s") == first);
        CHECK(client.size() == 1);
    }

    TEST_CASE("two names may share one statement") {
        StatementRegistry registry;
        const auto statement = registry.intern(parse_tail("SELECT 1"));
        ClientStatements client;
        CHECK(client.prepare("a", statement));
        CHECK(client.prepare("b", statement));
        CHECK(client.close("a"));
        CHECK(*client.find("b") == statement);
    }

    TEST_CASE("clear forgets every name and lets the statements go") {
        StatementRegistry registry;
        ClientStatements client;
        CHECK(client.prepare("a", registry.intern(parse_tail("SELECT 1"))));
        CHECK(client.prepare("b", registry.intern(parse_tail("SELECT 2"))));
        CHECK(registry.size() == 2);
        client.clear();
        CHECK(client.size() == 0);
        CHECK(client.find("a") == nullptr);
        CHECK(registry.size() == 0);
    }

    TEST_CASE("the unnamed statement is never cached") {
        StatementRegistry registry;
        ClientStatements client;
        CHECK_THROWS_AS(static_cast<void>(client.prepare("", registry.intern(parse_tail("X")))),
                        std::logic_error);
        CHECK_THROWS_AS(static_cast<void>(client.prepare("s", nullptr)), std::logic_error);
        CHECK(client.size() == 0);
    }
}

TEST_SUITE("pool.server_statements") {
    TEST_CASE("the first use prepares, later uses do not") {
        StatementRegistry registry;
        const auto s = statements(registry, 1);
        ServerStatements server(2);
        const auto first = server.use(s[0]);
        CHECK(first.prepare);
        CHECK(first.close.empty());
        CHECK(server.contains(s[0]->id()));
        CHECK_FALSE(server.use(s[0]).prepare);
        CHECK(server.size() == 1);
    }

    TEST_CASE("a full cache closes the least recently used statement") {
        StatementRegistry registry;
        const auto s = statements(registry, 4);
        ServerStatements server(3);
        for (int i = 0; i < 3; ++i) {
            CHECK(server.use(s[static_cast<std::size_t>(i)]).close.empty());
        }
        server.unpin_all();
        CHECK_FALSE(server.use(s[0]).prepare); // 0 is now the most recently used: 1, 2, 0
        server.unpin_all();

        const auto use = server.use(s[3]);
        CHECK(use.prepare);
        CHECK(ids(use.close) == std::vector<std::uint64_t>{2}); // s[1]
        CHECK_FALSE(server.contains(s[1]->id()));
        CHECK(server.size() == 3);
        server.unpin_all();

        CHECK(ids(server.use(s[1]).close) == std::vector<std::uint64_t>{3}); // s[2]
    }

    TEST_CASE("statements used in the open transaction are not closed") {
        StatementRegistry registry;
        const auto s = statements(registry, 4);
        ServerStatements server(2);
        CHECK(server.use(s[0]).close.empty());
        CHECK(server.use(s[1]).close.empty());
        // A named portal of s[0] may still be open: the cache grows instead.
        const auto third = server.use(s[2]);
        CHECK(third.prepare);
        CHECK(third.close.empty());
        CHECK(server.size() == 3);
        CHECK(server.pinned(s[0]->id()));

        server.unpin_all();
        CHECK_FALSE(server.pinned(s[0]->id()));
        // The excess goes with the next use, oldest first.
        const auto fourth = server.use(s[3]);
        CHECK(ids(fourth.close) == std::vector<std::uint64_t>{1, 2});
        CHECK(server.size() == 2);
        CHECK(server.contains(s[2]->id()));
        CHECK(server.contains(s[3]->id()));
    }

    TEST_CASE("an unpinned statement is closed even within a transaction") {
        StatementRegistry registry;
        const auto s = statements(registry, 2);
        ServerStatements server(1);
        CHECK(server.use(s[0]).prepare);
        server.unpin_all();
        const auto use = server.use(s[1]);
        CHECK(ids(use.close) == std::vector<std::uint64_t>{1});
        CHECK(server.pinned(s[1]->id()));
    }

    TEST_CASE("a failed Parse leaves the statement unprepared") {
        StatementRegistry registry;
        const auto s = statements(registry, 2);
        ServerStatements server(2);
        CHECK(server.use(s[0]).prepare);
        server.parse_failed(s[0]->id());
        CHECK_FALSE(server.contains(s[0]->id()));
        CHECK(server.use(s[0]).prepare);
        server.parse_failed(s[1]->id()); // never used here: nothing to do
        CHECK(server.size() == 1);
    }

    TEST_CASE("a failed Close puts the statement back as the next to close") {
        StatementRegistry registry;
        const auto s = statements(registry, 3);
        ServerStatements server(2);
        CHECK(server.use(s[0]).prepare);
        CHECK(server.use(s[1]).prepare);
        server.unpin_all();
        const auto use = server.use(s[2]);
        REQUIRE(ids(use.close) == std::vector<std::uint64_t>{1});
        server.close_failed(use.close.front());
        CHECK(server.contains(s[0]->id()));
        CHECK_FALSE(server.pinned(s[0]->id()));
        server.unpin_all();
        CHECK(ids(server.use(s[1]).close) == std::vector<std::uint64_t>{1});
    }

    TEST_CASE("evicted, prepared again, both skipped: the server still has it") {
        // An error early in a pipeline skips the Close of s[0] and the Parse that re-prepares
        // it; the reports come in wire order.
        StatementRegistry registry;
        const auto s = statements(registry, 2);
        ServerStatements server(1);
        CHECK(server.use(s[0]).prepare);
        server.unpin_all();
        const auto evicting = server.use(s[1]);
        REQUIRE(ids(evicting.close) == std::vector<std::uint64_t>{1});
        CHECK(server.use(s[0]).prepare);

        server.close_failed(evicting.close.front());
        server.parse_failed(s[0]->id());
        CHECK(server.contains(s[0]->id()));

        server.unpin_all();
        server.parse_failed(s[0]->id()); // a later failure is about a later Parse
        CHECK_FALSE(server.contains(s[0]->id()));
    }

    TEST_CASE("remove hands back the statement to close after a cached plan error") {
        StatementRegistry registry;
        const auto s = statements(registry, 1);
        ServerStatements server(2);
        CHECK(server.use(s[0]).prepare);
        const auto removed = server.remove(s[0]->id());
        CHECK(removed == s[0]);
        CHECK_FALSE(server.contains(s[0]->id()));
        CHECK(server.remove(s[0]->id()) == nullptr);
        CHECK(server.use(s[0]).prepare);
    }

    TEST_CASE("clear forgets everything, pinned or not") {
        StatementRegistry registry;
        const auto s = statements(registry, 2);
        ServerStatements server(2);
        CHECK(server.use(s[0]).prepare);
        server.unpin_all();
        CHECK(server.use(s[1]).prepare);
        server.clear();
        CHECK(server.size() == 0);
        CHECK(server.use(s[0]).prepare);
        CHECK(server.use(s[1]).prepare);
    }

    TEST_CASE("a server keeps its statements alive in the registry") {
        StatementRegistry registry;
        auto statement = registry.intern(parse_tail("SELECT 1"));
        const StatementId id = statement->id();
        {
            ServerStatements server(1);
            CHECK(server.use(statement).prepare);
            statement.reset();
            CHECK(registry.size() == 1);
            CHECK(registry.intern(parse_tail("SELECT 1"))->id() == id);
        }
        CHECK(registry.size() == 0);
    }

    TEST_CASE("capacity 0 turns the cache off") {
        StatementRegistry registry;
        const auto s = statements(registry, 1);
        ServerStatements server(0);
        CHECK(server.capacity() == 0);
        CHECK_THROWS_AS(static_cast<void>(server.use(s[0])), std::logic_error);
        CHECK(server.size() == 0);
    }
}
