#include "proxy/auth_query.hpp"

#include "tests/support/wire_builders.hpp"
#include "wire/fe_query.hpp"
#include "wire/framer.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace proxy;
using namespace std::chrono_literals;
namespace wt = wire::test;

std::shared_ptr<const Config> config_of(std::string_view toml) {
    auto result = load_config_string(toml, "test.toml");
    REQUIRE(result.ok());
    return result.config();
}

std::string text_of(const wire::Value& value) {
    REQUIRE(value);
    return {reinterpret_cast<const char*>(value->data()), value->size()};
}

// A DataRow of text values; std::nullopt is NULL.
wt::Bytes data_row(std::vector<std::optional<std::string>> values) {
    wt::Bytes body = wt::i16(static_cast<std::int16_t>(values.size()));
    for (const auto& value : values) {
        const auto field =
            value ? wt::cat({wt::i32(static_cast<std::int32_t>(value->size())), wt::raw(*value)})
                  : wt::i32(-1);
        body.insert(body.end(), field.begin(), field.end());
    }
    return wt::msg('D', body);
}

const wt::Bytes parse_complete = wt::msg('1', "");
const wt::Bytes bind_complete = wt::msg('2', "");
const wt::Bytes select_1 = wt::msg('C', wt::str("SELECT 1"));
const wt::Bytes select_0 = wt::msg('C', wt::str("SELECT 0"));
const wt::Bytes ready_idle = wt::msg('Z', "I");

// Feeds `messages` one by one; returns the progress after the last one.
AuthQueryReply::Progress feed(AuthQueryReply& reply, const std::vector<wt::Bytes>& messages) {
    auto progress = AuthQueryReply::Progress::more;
    for (const auto& bytes : messages) {
        REQUIRE(progress == AuthQueryReply::Progress::more);
        progress = reply.on_frame(wt::frame_of(bytes, wire::Phase::typed));
    }
    return progress;
}

} // namespace

TEST_SUITE("proxy.auth_query") {
    TEST_CASE("auth_target: the database's auth_user over the global one") {
        const auto config = config_of(R"(
            [pgmarina]
            auth_user = "global_auth"
            [databases.app]
            hosts = ["pg-0:5432", "pg-1:5432"]
            [databases.own]
            dbname = "owndb"
            hosts = ["pg-2:5433"]
            auth_user = "own_auth"
            [users.global_auth]
            password = "g-secret"
        )");
        const AuthUsers file = {{"own_auth", "md5aaaabbbbccccddddeeeeffff00001111"}};

        const auto app = auth_target(*config, file, "app");
        REQUIRE(app);
        CHECK(app->auth_user == "global_auth");
        CHECK(app->host == Endpoint{"pg-0", 5432}); // the first host: the primary until told
        CHECK(app->dbname == "app");
        CHECK(app->secret == "g-secret");
        CHECK(app->query == config->settings.auth_query);

        const auto own = auth_target(*config, file, "own");
        REQUIRE(own);
        CHECK(own->auth_user == "own_auth");
        CHECK(own->host == Endpoint{"pg-2", 5433});
        CHECK(own->dbname == "owndb");
        CHECK(own->secret == "md5aaaabbbbccccddddeeeeffff00001111");

        CHECK_FALSE(auth_target(*config, file, "nosuchdb"));
    }

    TEST_CASE("auth_target: none without an auth_user; auth_dbname over dbname") {
        const auto none = config_of(R"(
            [databases.app]
            hosts = ["pg-0:5432"]
        )");
        CHECK_FALSE(auth_target(*none, {}, "app"));

        const auto elsewhere = config_of(R"(
            [pgmarina]
            auth_dbname = "authdb"
            [databases.app]
            hosts = ["pg-0:5432"]
            auth_user = "pgmarina_auth"
        )");
        const auto target = auth_target(*elsewhere, {}, "app");
        REQUIRE(target);
        CHECK(target->dbname == "authdb");
        CHECK_FALSE(target->secret); // only a server that trusts auth_user will let it in
    }

    TEST_CASE("SecretCache: secrets for positive_ttl, no secret for negative_ttl") {
        SecretCache cache;
        const auto t0 = SecretCache::Clock::now();
        CHECK_FALSE(cache.find("alice", t0));

        cache.store("alice", "SCRAM-SHA-256$4096:c2FsdA==$a:b", t0);
        cache.store("ghost", std::nullopt, t0);
        CHECK(cache.find("alice", t0) ==
              std::optional<std::optional<std::string>>("SCRAM-SHA-256$4096:c2FsdA==$a:b"));
        const auto ghost = cache.find("ghost", t0);
        REQUIRE(ghost);
        CHECK_FALSE(*ghost);

        CHECK(cache.find("ghost", t0 + negative_ttl - 1ms));
        CHECK_FALSE(cache.find("ghost", t0 + negative_ttl));
        CHECK(cache.find("alice", t0 + positive_ttl - 1ms));
        CHECK_FALSE(cache.find("alice", t0 + positive_ttl));
    }

    TEST_CASE("SecretCache: a new answer replaces the old one and its expiry") {
        SecretCache cache;
        const auto t0 = SecretCache::Clock::now();
        cache.store("alice", std::nullopt, t0);
        cache.store("alice", "new", t0 + 1s);
        CHECK(cache.size() == 1);
        CHECK(cache.find("alice", t0 + 1s + positive_ttl - 1ms) ==
              std::optional<std::optional<std::string>>("new"));
    }

    TEST_CASE("SecretCache: bounded, expired answers make room first") {
        SecretCache cache;
        const auto t0 = SecretCache::Clock::now();
        for (std::size_t i = 0; i < max_cached_answers; ++i)
            cache.store("user" + std::to_string(i), std::nullopt, t0);
        REQUIRE(cache.size() == max_cached_answers);

        SUBCASE("full of live answers: the new one is not kept") {
            cache.store("late", "secret", t0 + 1s);
            CHECK(cache.size() == max_cached_answers);
            CHECK_FALSE(cache.find("late", t0 + 1s));
        }
        SUBCASE("full of expired answers: they go, the new one stays") {
            cache.store("late", "secret", t0 + negative_ttl);
            CHECK(cache.size() == 1);
            CHECK(cache.find("late", t0 + negative_ttl));
        }
    }

    TEST_CASE("encode_auth_query: the user name is a Bind parameter, not SQL") {
        const std::string user = "x' OR '1'='1";
        const auto bytes = encode_auth_query("SELECT u, p FROM f($1)", user);
        wire::Framer framer{wire::Phase::typed, wire::Limits{}};
        const auto space = framer.prepare(bytes.size());
        std::ranges::copy(bytes, space.begin());
        framer.commit(bytes.size());
        std::vector<char> types;
        for (;;) {
            auto frame = framer.next();
            REQUIRE(frame);
            if (!*frame) break;
            const wire::Frame& f = **frame;
            types.push_back(f.type);
            if (f.type == 'P') {
                const auto parse = wire::fe::Parse::parse(f);
                REQUIRE(parse);
                CHECK(parse->statement.empty());
                CHECK(parse->query == "SELECT u, p FROM f($1)");
                CHECK(parse->parameter_types.empty());
            } else if (f.type == 'B') {
                const auto bind = wire::fe::Bind::parse(f);
                REQUIRE(bind);
                REQUIRE(bind->parameters.size() == 1);
                CHECK(text_of(bind->parameters[0]) == user);
                CHECK(bind->parameter_formats.empty()); // text
                CHECK(bind->result_formats.empty());    // text
            } else if (f.type == 'E') {
                const auto execute = wire::fe::Execute::parse(f);
                REQUIRE(execute);
                CHECK(execute->max_rows == 0);
            }
        }
        CHECK(types == std::vector<char>{'P', 'B', 'E', 'S'});
    }

    TEST_CASE("AuthQueryReply: the second column of the only row is the secret") {
        AuthQueryReply reply;
        CHECK(feed(reply, {parse_complete, bind_complete, data_row({"alice", "md5abc"}), select_1,
                           ready_idle}) == AuthQueryReply::Progress::done);
        REQUIRE(reply.answer().has_value());
        CHECK(*reply.answer() == "md5abc");
    }

    TEST_CASE("AuthQueryReply: no secret") {
        AuthQueryReply reply;
        SUBCASE("no row (unknown user)") {
            CHECK(feed(reply, {parse_complete, bind_complete, select_0, ready_idle}) ==
                  AuthQueryReply::Progress::done);
        }
        SUBCASE("NULL (expired role)") {
            CHECK(feed(reply, {parse_complete, bind_complete, data_row({"old", std::nullopt}),
                               select_1, ready_idle}) == AuthQueryReply::Progress::done);
        }
        SUBCASE("empty secret") {
            CHECK(feed(reply, {parse_complete, bind_complete, data_row({"bob", ""}), select_1,
                               ready_idle}) == AuthQueryReply::Progress::done);
        }
        REQUIRE(reply.answer().has_value());
        CHECK_FALSE(*reply.answer());
    }

    TEST_CASE("AuthQueryReply: a query that answers nothing usable is an error") {
        AuthQueryReply reply;
        std::string expected;
        SUBCASE("ErrorResponse") {
            const auto error = wt::error_response()
                                   .severity("ERROR")
                                   .code("42501")
                                   .message("permission denied for table pg_authid")
                                   .bytes();
            CHECK(feed(reply, {parse_complete, bind_complete, error, ready_idle}) ==
                  AuthQueryReply::Progress::done);
            expected = "42501 permission denied for table pg_authid";
        }
        SUBCASE("two rows") {
            CHECK(feed(reply, {parse_complete, bind_complete, data_row({"a", "x"}),
                               data_row({"a", "y"}), wt::msg('C', wt::str("SELECT 2")),
                               ready_idle}) == AuthQueryReply::Progress::done);
            expected = "auth_query returned more than one row";
        }
        SUBCASE("one column") {
            CHECK(feed(reply, {parse_complete, bind_complete, data_row({"x"}), select_1,
                               ready_idle}) == AuthQueryReply::Progress::done);
            expected = "auth_query must return two columns: user name and secret";
        }
        REQUIRE(reply.answer().has_error());
        CHECK(reply.answer().error() == expected);
    }

    TEST_CASE("AuthQueryReply: replies that make the connection unusable") {
        AuthQueryReply reply;
        SUBCASE("a transaction left open") {
            CHECK(feed(reply, {parse_complete, bind_complete, select_0, wt::msg('Z', "T")}) ==
                  AuthQueryReply::Progress::broken);
            CHECK(reply.problem() == "auth_query left a transaction open");
        }
        SUBCASE("a message no query reply contains") {
            CHECK(feed(reply, {parse_complete, wt::msg('R', wt::i32(0))}) ==
                  AuthQueryReply::Progress::broken);
        }
        SUBCASE("a DataRow whose lengths do not fit") {
            const auto lying = wt::msg('D', wt::cat({wt::i16(2), wt::i32(100), wt::raw("ab")}));
            CHECK(feed(reply, {parse_complete, bind_complete, lying}) ==
                  AuthQueryReply::Progress::broken);
            CHECK(reply.problem() == "malformed DataRow");
        }
    }
}
