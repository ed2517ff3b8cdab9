#include "proxy/pool_limits.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace std::chrono_literals;
using proxy::PoolMode;

namespace {

std::shared_ptr<const proxy::Config> load(std::string_view toml) {
    auto result = proxy::load_config_string(toml, "test.toml");
    for (const auto& error : result.errors()) {
        FAIL_CHECK(error.to_string());
    }
    REQUIRE(result.ok());
    return result.config();
}

// Every level sets a different value, so each row shows which level won.
constexpr std::string_view layered = R"(
    [pgmarina]
    default_pool_size = 10
    min_pool_size = 1
    reserve_pool_size = 2
    pool_mode = "transaction"

    [databases.app]
    hosts = ["pg-0"]
    pool_size = 20
    min_pool_size = 3
    reserve_pool_size = 4
    pool_mode = "session"

    [databases.plain]
    hosts = ["pg-0"]

    [users.alice]
    pool_size = 30
    reserve_pool_size = 6
    pool_mode = "statement"

    [users.bob]
    pool_mode = "session"

    [users.carol]
)";

} // namespace

TEST_SUITE("proxy.pool_limits") {
    TEST_CASE("pool sizes: user over database over global") {
        auto config = load(layered);
        struct Row {
            std::string database;
            std::string user;
            int pool_size;
            int min_pool_size;
            int reserve_pool_size;
        };
        const Row rows[] = {
            {"app", "alice", 30, 3, 6},   // user's sizes; min_pool_size only from the database
            {"app", "bob", 20, 3, 4},     // bob's section sets no size: the database's
            {"app", "carol", 20, 3, 4},   // an empty user section inherits
            {"app", "nobody", 20, 3, 4},  // no user section at all
            {"plain", "alice", 30, 1, 6}, // the database sets nothing: user, then global
            {"plain", "bob", 10, 1, 2},
            {"ghost", "nobody", 10, 1, 2}, // neither has a section: all global
        };
        for (const Row& row : rows) {
            CAPTURE(row.database);
            CAPTURE(row.user);
            auto limits = proxy::resolve_pool_limits(*config, {row.database, row.user});
            CHECK(limits.pool_size == row.pool_size);
            CHECK(limits.min_pool_size == row.min_pool_size);
            CHECK(limits.reserve_pool_size == row.reserve_pool_size);
        }
    }

    TEST_CASE("pool mode: user over database over global") {
        auto config = load(layered);
        struct Row {
            std::string database;
            std::string user;
            PoolMode mode;
        };
        const Row rows[] = {
            {"app", "alice", PoolMode::statement},     {"app", "carol", PoolMode::session},
            {"plain", "alice", PoolMode::statement},   {"plain", "bob", PoolMode::session},
            {"plain", "carol", PoolMode::transaction}, {"ghost", "nobody", PoolMode::transaction},
        };
        for (const Row& row : rows) {
            CAPTURE(row.database);
            CAPTURE(row.user);
            CHECK(proxy::resolve_pool_mode(*config, {row.database, row.user}) == row.mode);
        }
    }

    TEST_CASE("a user's zero pool_size still wins: zero is a value, not 'unset'") {
        auto config = load(R"(
            [databases.app]
            hosts = ["pg-0"]
            pool_size = 20
            min_pool_size = 5
            [users.alice]
            pool_size = 0
            reserve_pool_size = 0
        )");
        auto limits = proxy::resolve_pool_limits(*config, {"app", "alice"});
        CHECK(limits.pool_size == 0);
        CHECK(limits.reserve_pool_size == 0);
        CHECK(limits.min_pool_size == 0);
    }

    TEST_CASE("min_pool_size never exceeds a user's smaller pool_size") {
        // The loader checks min_pool_size against pool_size per section; only a user's pool_size
        // can still fall below the database's minimum.
        auto config = load(R"(
            [databases.app]
            hosts = ["pg-0"]
            pool_size = 10
            min_pool_size = 8
            [users.alice]
            pool_size = 5
        )");
        CHECK(proxy::resolve_pool_limits(*config, {"app", "alice"}).min_pool_size == 5);
        CHECK(proxy::resolve_pool_limits(*config, {"app", "bob"}).min_pool_size == 8);
    }

    TEST_CASE("durations come from [pgmarina]") {
        auto config = load(R"(
            [pgmarina]
            reserve_pool_timeout = 0.5
            server_idle_timeout = "2min"
            server_lifetime = 0
            server_check_delay = 7
            server_login_retry = "250ms"
            query_wait_timeout = 0
            [databases.app]
            hosts = ["pg-0"]
        )");
        auto limits = proxy::resolve_pool_limits(*config, {"app", "alice"});
        CHECK(limits.reserve_pool_timeout == 500ms);
        CHECK(limits.server_idle_timeout == 2min);
        CHECK(limits.server_lifetime == 0s);
        CHECK(limits.server_check_delay == std::optional<pool::Duration>{7s});
        CHECK(limits.server_login_retry == 250ms);
        CHECK(limits.query_wait_timeout == 0s);
    }

    TEST_CASE("defaults: the documented defaults, checked by the default \"<empty>\" query") {
        auto limits = proxy::resolve_pool_limits(*proxy::default_config(), {"app", "alice"});
        pool::Limits expected;
        expected.pool_size = 20;
        expected.reserve_pool_timeout = 5s;
        expected.server_idle_timeout = 600s;
        expected.server_lifetime = 3600s;
        expected.server_check_delay = 30s;
        expected.server_login_retry = 15s;
        expected.query_wait_timeout = 120s;
        CHECK(limits == expected);
    }

    TEST_CASE("an empty server_check_query turns checking off") {
        auto config = load(R"(
            [pgmarina]
            server_check_query = ""
            server_check_delay = 0
        )");
        CHECK_FALSE(proxy::resolve_pool_limits(*config, {"app", "alice"}).server_check_delay);

        auto checking =
            load("[pgmarina]\nserver_check_query = \"SELECT 1\"\nserver_check_delay = 0\n");
        CHECK(proxy::resolve_pool_limits(*checking, {"app", "alice"}).server_check_delay ==
              std::optional<pool::Duration>{0s});
    }
}
