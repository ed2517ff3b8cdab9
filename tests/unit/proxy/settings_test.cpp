#include "proxy/settings.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using proxy::KeyInfo;

namespace {

const std::filesystem::path source_root = PGMARINA_SOURCE_ROOT;

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

template <class S>
std::vector<std::string_view> names(std::span<const KeyInfo<S>> keys) {
    std::vector<std::string_view> out;
    for (const auto& info : keys) {
        out.push_back(info.spec.name);
    }
    return out;
}

template <class S>
void check_table(std::span<const KeyInfo<S>> keys) {
    std::set<std::string_view> seen;
    for (const auto& info : keys) {
        std::string_view name = info.spec.name;
        CAPTURE(name);
        CHECK(seen.insert(name).second);
        CHECK(std::all_of(name.begin(), name.end(),
                          [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; }));
        CHECK_FALSE(info.spec.description.empty());
        CHECK(info.spec.description.find('\n') == std::string_view::npos);
        // It is also the comment above the key in etc/pgmarina.toml: "# " + text within 100.
        CHECK(info.spec.description.size() <= 98);
    }
}

// "key = value" lines of etc/pgmarina.toml by section, with the line above each.
struct ExampleLine {
    std::string value;
    std::string comment_above;
};

std::map<std::string, std::map<std::string, ExampleLine>> example_keys(const std::string& text) {
    std::map<std::string, std::map<std::string, ExampleLine>> out;
    std::istringstream lines(text);
    std::string line;
    std::string previous;
    std::string section;
    while (std::getline(lines, line)) {
        if (line.starts_with("[")) {
            section = line;
        } else if (std::size_t eq = line.find(" = ");
                   eq != std::string::npos && !line.starts_with("#")) {
            out[section][line.substr(0, eq)] = ExampleLine{line.substr(eq + 3), previous};
        }
        previous = line;
    }
    return out;
}

// Every key of `keys` is set in the section, right under "# <its description>"; with
// `at_defaults`, to its default as the reference writes it.
template <class S>
void check_example_section(const std::map<std::string, ExampleLine>& lines,
                           std::span<const KeyInfo<S>> keys, bool at_defaults) {
    const S defaults{};
    for (const auto& info : keys) {
        std::string name(info.spec.name);
        CAPTURE(name);
        auto line = lines.find(name);
        REQUIRE(line != lines.end());
        CHECK(line->second.comment_above == "# " + std::string(info.spec.description));
        if (at_defaults) {
            CHECK(line->second.value == info.format(defaults));
        }
    }
    CHECK(lines.size() == keys.size());
}

} // namespace

TEST_SUITE("proxy.settings") {
    TEST_CASE("each table has unique snake_case keys with a one-line description") {
        check_table(proxy::global_keys());
        check_table(proxy::metrics_keys());
        check_table(proxy::database_keys());
        check_table(proxy::user_keys());
        check_table(proxy::peer_keys());
    }

    TEST_CASE("every default, written as the reference shows it, parses back to itself") {
        const proxy::Settings settings;
        for (const auto& info : proxy::global_keys()) {
            std::string toml =
                "[pgmarina]\n" + std::string(info.spec.name) + " = " + info.format(settings);
            CAPTURE(toml);
            auto result = proxy::load_config_string(toml, "default.toml");
            REQUIRE(result.ok());
            CHECK(result.config()->settings == settings);
        }
        const proxy::MetricsSettings metrics;
        for (const auto& info : proxy::metrics_keys()) {
            std::string toml = "[metrics]\nlisten = " + info.format(metrics);
            auto result = proxy::load_config_string(toml, "default.toml");
            REQUIRE(result.ok());
            CHECK(result.config()->metrics == metrics);
        }
        std::string disabled =
            "[metrics]\nlisten = " +
            proxy::metrics_keys()[0].format(proxy::MetricsSettings{.listen = std::nullopt});
        CHECK(disabled == "[metrics]\nlisten = \"\"");
    }

    TEST_CASE("strings are written as TOML that reads back the same") {
        proxy::Settings settings;
        settings.server_reset_query = "SET a = \"x\\y\";\n\tRESET ALL\x7f";
        const auto& keys = proxy::global_keys();
        auto info = std::find_if(keys.begin(), keys.end(),
                                 [](const auto& k) { return k.spec.name == "server_reset_query"; });
        REQUIRE(info != keys.end());
        std::string text = info->format(settings);
        CHECK(text == R"("SET a = \"x\\y\";\u000A\u0009RESET ALL\u007F")");
        auto result = proxy::load_config_string("[pgmarina]\nserver_reset_query = " + text, "t");
        REQUIRE(result.ok());
        CHECK(result.config()->settings.server_reset_query == settings.server_reset_query);
    }

    TEST_CASE("unknown keys: suggestions only for likely typos") {
        std::vector<std::string_view> known = {"pool_mode", "pool_size", "workers"};
        CHECK(proxy::unknown_key_message("pool_mdoe", "in [x]", known) ==
              "unknown key 'pool_mdoe' in [x]; did you mean 'pool_mode'?");
        CHECK(proxy::unknown_key_message("worker", "in [x]", known) ==
              "unknown key 'worker' in [x]; did you mean 'workers'?");
        CHECK(proxy::unknown_key_message("pool", "in [x]", known) == "unknown key 'pool' in [x]");
        CHECK(proxy::unknown_key_message("ab", "in [x]", std::vector<std::string_view>{"ac"}) ==
              "unknown key 'ab' in [x]");
        CHECK(proxy::unknown_key_message("listen_port", "in [x]", known)
                  .find("listen = [\"addr:port\"]") != std::string::npos);
    }

    TEST_CASE("the reference has one row per key and names every section") {
        std::string reference = proxy::settings_reference_markdown();
        for (std::string_view section : {"### `[pgmarina]`", "### `[metrics]`",
                                         "### `[databases.<name>]`", "### `[users.<name>]`"}) {
            CHECK(reference.find(section) != std::string::npos);
        }
        auto rows = [&](auto keys) {
            for (std::string_view name : names(keys)) {
                CHECK(reference.find("| `" + std::string(name) + "` |") != std::string::npos);
            }
        };
        rows(proxy::global_keys());
        rows(proxy::database_keys());
        CHECK(reference.find("| `pool_mode` | one of: session, transaction, statement | "
                             "`\"transaction\"` | yes |") != std::string::npos);
        CHECK(reference.find("| `workers` | integer, 0..256 | `0` | restart |") !=
              std::string::npos);
        CHECK(reference.find("| `hosts` | array of addresses, not empty | required | yes |") !=
              std::string::npos);
        CHECK(reference.ends_with("|\n"));
    }

    TEST_CASE("etc/pgmarina.toml sets every key to its default, under its description") {
        std::filesystem::path path = source_root / "etc/pgmarina.toml";
        auto result = proxy::load_config(path);
        for (const auto& error : result.errors()) {
            FAIL_CHECK(error.to_string());
        }
        REQUIRE(result.ok());
        const proxy::Config& config = *result.config();
        CHECK(config.settings == proxy::Settings{});
        CHECK(config.metrics == proxy::MetricsSettings{});

        auto sections = example_keys(read_file(path));
        check_example_section(sections["[pgmarina]"], proxy::global_keys(), true);
        check_example_section(sections["[metrics]"], proxy::metrics_keys(), true);

        // The examples: one database with every key, and one user with every key.
        REQUIRE(config.databases.size() == 1);
        const proxy::DatabaseConfig& app = config.databases.at("app");
        CHECK(app.dbname == "app");
        CHECK(app.hosts == std::vector<proxy::Endpoint>{{"pg-0", 5432}, {"pg-1", 5432}});
        CHECK(app.routing == proxy::Routing::read_write_split);
        CHECK(app.max_replica_lag.bytes == 1024 * 1024);
        CHECK(app.pool_size == 20);
        CHECK(app.min_pool_size == 0);
        CHECK(app.reserve_pool_size == 0);
        CHECK(app.pool_mode == proxy::PoolMode::transaction);
        CHECK(app.max_db_connections == 0);
        CHECK(app.user == "app");
        CHECK(app.password == "change-me");
        CHECK(app.auth_user == "pgmarina_auth");
        check_example_section(sections["[databases.app]"], proxy::database_keys(), false);

        REQUIRE(config.users.size() == 1);
        const proxy::UserConfig& alice = config.users.at("alice");
        CHECK(alice.password == "md54a0a68b43b6cd5cf266fa02f196e2371");
        CHECK(alice.pool_size == 30);
        CHECK(alice.reserve_pool_size == 5);
        CHECK(alice.pool_mode == proxy::PoolMode::session);
        CHECK(alice.max_user_connections == 50);
        check_example_section(sections["[users.alice]"], proxy::user_keys(), false);
    }

    // The README's settings section lies between these markers and must be exactly the output
    // of `pgmarina --print-settings`; regenerate it with that command.
    TEST_CASE("the README's settings reference is the generated one") {
        std::string readme = read_file(source_root / "README.md");
        constexpr std::string_view begin = "<!-- settings-reference:begin -->\n";
        constexpr std::string_view end = "<!-- settings-reference:end -->";
        std::size_t from = readme.find(begin);
        std::size_t to = readme.find(end);
        if (from == std::string::npos && to == std::string::npos) {
            MESSAGE("README.md has no settings reference section yet");
            return;
        }
        REQUIRE(from != std::string::npos);
        REQUIRE(to != std::string::npos);
        REQUIRE(from < to);
        from += begin.size();
        CHECK(readme.substr(from, to - from) == proxy::settings_reference_markdown());
    }
}
