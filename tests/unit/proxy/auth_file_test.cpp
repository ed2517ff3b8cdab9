#include "proxy/auth_file.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using proxy::AuthUsers;
using proxy::SecretKind;

namespace {

const std::filesystem::path source_root = PGMARINA_SOURCE_ROOT;

// A StoredKey/ServerKey: 32 bytes in base64.
constexpr std::string_view key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

AuthUsers parse(std::string_view text) {
    auto result = proxy::parse_auth_file(text, "userlist.txt");
    for (const auto& error : result.errors()) {
        FAIL_CHECK(error.to_string());
    }
    REQUIRE(result.ok());
    return result.users();
}

std::vector<std::string> errors_of(std::string_view text) {
    auto result = proxy::parse_auth_file(text, "userlist.txt");
    REQUIRE_FALSE(result.ok());
    std::vector<std::string> out;
    for (const auto& error : result.errors()) {
        out.push_back(error.to_string());
    }
    return out;
}

std::string scram(std::string_view iterations, std::string_view salt, std::string_view stored,
                  std::string_view server) {
    return "SCRAM-SHA-256$" + std::string(iterations) + ":" + std::string(salt) + "$" +
           std::string(stored) + ":" + std::string(server);
}

} // namespace

TEST_SUITE("proxy.auth_file") {
    TEST_CASE("the PgBouncer format") {
        struct Row {
            std::string_view name;
            std::string_view text;
            AuthUsers users;
        };
        const Row rows[] = {
            {"one user", "\"alice\" \"secret\"\n", {{"alice", "secret"}}},
            {"no final newline", "\"alice\" \"secret\"", {{"alice", "secret"}}},
            {"empty file", "", {}},
            {"blank lines and indentation",
             "\n  \n\t\"alice\" \"a\"\n\n   \"bob\" \"b\"\n",
             {{"alice", "a"}, {"bob", "b"}}},
            {"';' comments, indented too",
             "; users\n  ;\"mallory\" \"x\"\n\"alice\" \"a\"\n",
             {{"alice", "a"}}},
            {"doubled quotes are quotes", R"("say ""hi""" "p""w""")", {{"say \"hi\"", "p\"w\""}}},
            {"only quotes", R"("""" """""")", {{"\"", "\"\""}}},
            {"CRLF line endings",
             "\"alice\" \"a\"\r\n\r\n; c\r\n\"bob\" \"b\"\r\n",
             {{"alice", "a"}, {"bob", "b"}}},
            {"fields after the password are ignored",
             "\"alice\" \"a\" \"extra\" 42\n",
             {{"alice", "a"}}},
            {"anything between the two fields is skipped",
             "\"alice\",\"a\"\n\"bob\"\t=\t\"b\"\n",
             {{"alice", "a"}, {"bob", "b"}}},
            {"an empty password is kept", "\"alice\" \"\"\n", {{"alice", ""}}},
            {"the last line of a duplicate user wins",
             "\"alice\" \"old\"\n\"alice\" \"new\"\n",
             {{"alice", "new"}}},
            {"user names are case-sensitive",
             "\"Alice\" \"a\"\n\"alice\" \"b\"\n",
             {{"Alice", "a"}, {"alice", "b"}}},
            {"spaces, ';' and '#' inside quotes",
             "\"a b\" \"; #not a comment\"\n",
             {{"a b", "; #not a comment"}}},
            {"UTF-8 passes through", "\"jürgen\" \"pässwörd\"\n", {{"jürgen", "pässwörd"}}},
        };
        for (const Row& row : rows) {
            CAPTURE(row.name);
            CHECK(parse(row.text) == row.users);
        }
    }

    TEST_CASE("secrets are stored as written") {
        const std::string scram_secret = scram("4096", "c2FsdA==", key, key);
        auto users = parse("\"md5user\" \"md5d41d8cd98f00b204e9800998ecf8427e\"\n\"scramuser\" \"" +
                           scram_secret + "\"\n");
        CHECK(users.at("md5user") == "md5d41d8cd98f00b204e9800998ecf8427e");
        CHECK(users.at("scramuser") == scram_secret);
    }

    TEST_CASE("broken lines are errors with their position, all of them") {
        CHECK(errors_of("\"alice\" \"a\"\n# comment\n") ==
              std::vector<std::string>{
                  "userlist.txt:2:1: expected a quoted user name: \"user\" \"password\" (comments "
                  "start with ';'; PgBouncer stops reading the file here)"});
        CHECK(errors_of("  alice \"a\"\n\"bob\n\"carol\"\n\"dave\" \"d\n\"\" \"x\"\n") ==
              std::vector<std::string>{
                  "userlist.txt:1:3: expected a quoted user name: \"user\" \"password\" (comments "
                  "start with ';'; PgBouncer stops reading the file here)",
                  "userlist.txt:2:1: user name has no closing quote on this line",
                  "userlist.txt:3:8: missing quoted password after user name \"carol\"",
                  "userlist.txt:4:8: password has no closing quote on this line",
                  "userlist.txt:5:1: empty user name",
              });
    }

    TEST_CASE("a password does not continue on the next line (PgBouncer's search would)") {
        CHECK(errors_of("\"alice\"\n\"bob\" \"b\"\n").size() == 1);
        auto errors = errors_of("\"alice\" \"multi\nline\"\n");
        REQUIRE(errors.size() == 2);
        CHECK(errors[0] == "userlist.txt:1:9: password has no closing quote on this line");
    }

    TEST_CASE("classify_secret decides as PostgreSQL's get_password_type") {
        struct Row {
            std::string secret;
            SecretKind kind;
        };
        const Row rows[] = {
            {"md5d41d8cd98f00b204e9800998ecf8427e", SecretKind::md5},
            {"md5D41D8CD98F00B204E9800998ECF8427E", SecretKind::plain},  // hex must be lowercase
            {"md5d41d8cd98f00b204e9800998ecf8427", SecretKind::plain},   // 31 digits
            {"md5d41d8cd98f00b204e9800998ecf8427e0", SecretKind::plain}, // 33 digits
            {"md5d41d8cd98f00b204e9800998ecf8427g", SecretKind::plain},
            {"md5", SecretKind::plain},
            {"", SecretKind::plain},
            {"hunter2", SecretKind::plain},
            {scram("4096", "c2FsdA==", key, key), SecretKind::scram_sha_256},
            {scram("1", "YQ==", key, key), SecretKind::scram_sha_256},
            {scram("", "c2FsdA==", key, key), SecretKind::plain},
            {scram("40x6", "c2FsdA==", key, key), SecretKind::plain},
            {scram("4096", "", key, key), SecretKind::plain},
            {scram("4096", "c2FsdA=", key, key), SecretKind::plain}, // bad padding
            {scram("4096", "c2F*dA==", key, key), SecretKind::plain},
            {scram("4096", "c2FsdA==", "YQ==", key), SecretKind::plain}, // key too short
            {scram("4096", "c2FsdA==", key, ""), SecretKind::plain},
            {"SCRAM-SHA-256$4096:c2FsdA==$" + std::string(key), SecretKind::plain},
            {"scram-sha-256$4096:c2FsdA==$" + std::string(key) + ":" + std::string(key),
             SecretKind::plain},
        };
        for (const Row& row : rows) {
            CAPTURE(row.secret);
            CHECK(proxy::classify_secret(row.secret) == row.kind);
        }
    }

    TEST_CASE("find_secret: [users.<name>] password over the auth_file") {
        auto result = proxy::load_config_string(R"(
            [users.alice]
            password = "from-toml"
            [users.bob]
            pool_size = 5
        )",
                                                "test.toml");
        REQUIRE(result.ok());
        const auto& config = *result.config();
        const AuthUsers file = {{"alice", "from-file"}, {"bob", "bob-file"}, {"carol", ""}};

        CHECK(proxy::find_secret(config, file, "alice") == "from-toml");
        CHECK(proxy::find_secret(config, file, "bob") == "bob-file"); // no password in [users.bob]
        CHECK(proxy::find_secret(config, file, "carol") == "");
        CHECK_FALSE(proxy::find_secret(config, file, "dave"));
        CHECK_FALSE(proxy::find_secret(config, file, "Alice"));
        CHECK(proxy::find_secret(config, {}, "alice") == "from-toml");
        CHECK_FALSE(proxy::find_secret(config, {}, "bob"));
    }

    TEST_CASE("load_auth_file reads a file and names it in errors") {
        const auto directory = std::filesystem::temp_directory_path() / "pgmarina-auth-file-test";
        std::filesystem::create_directories(directory);
        const auto path = directory / "userlist.txt";
        {
            std::ofstream out(path, std::ios::binary);
            out << "\"alice\" \"a\"\r\nbroken\r\n";
        }
        auto broken = proxy::load_auth_file(path);
        REQUIRE(broken.errors().size() == 1);
        CHECK(broken.errors()[0].origin == path.string());
        CHECK(broken.errors()[0].line == 2);
        {
            std::ofstream out(path, std::ios::binary);
            out << "\"alice\" \"a\"\r\n";
        }
        auto loaded = proxy::load_auth_file(path);
        REQUIRE(loaded.ok());
        CHECK(loaded.users() == AuthUsers{{"alice", "a"}});
        std::filesystem::remove_all(directory);

        auto missing = proxy::load_auth_file("/nonexistent/userlist.txt");
        REQUIRE(missing.errors().size() == 1);
        CHECK(missing.errors()[0].to_string() ==
              "/nonexistent/userlist.txt: cannot open: No such file or directory");
        CHECK(proxy::load_auth_file(source_root / "tests").errors().at(0).message ==
              "is a directory");
    }
}
