// The pgmarina command line, run as a process: exit codes and what it prints. Only paths that
// exit without starting the server are exercised.
#include "pgmarina_version.hpp"
#include "proxy/config.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <unistd.h>

namespace {

const std::filesystem::path source_root = PGMARINA_SOURCE_ROOT;

struct Outcome {
    int status = -1;
    std::string out; // stdout, or stdout and stderr with merge_stderr
};

std::string shell_quote(std::string_view arg) {
    std::string out = "'";
    for (char c : arg) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

Outcome pgmarina(std::initializer_list<std::string> args, bool merge_stderr = true) {
    std::string command = shell_quote(PGMARINA_EXE);
    for (const std::string& arg : args) {
        command += " " + shell_quote(arg);
    }
    command += merge_stderr ? " 2>&1" : " 2>/dev/null";
    Outcome outcome;
    FILE* pipe = popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::array<char, 4096> buffer{};
    while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) {
        outcome.out.append(buffer.data(), n);
    }
    int raw = pclose(pipe);
    REQUIRE(WIFEXITED(raw));
    outcome.status = WEXITSTATUS(raw);
    return outcome;
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_SUITE("proxy.main") {
    TEST_CASE("--version and --help") {
        for (const char* flag : {"--version", "-V"}) {
            auto run = pgmarina({flag});
            CHECK(run.status == 0);
            CHECK(run.out == std::string("pgmarina ") + PGMARINA_VERSION + "\n");
        }
        for (const char* flag : {"--help", "-h"}) {
            auto run = pgmarina({flag});
            CHECK(run.status == 0);
            CHECK(run.out.starts_with("Usage: pgmarina [OPTION]..."));
            CHECK(contains(run.out, "-c, --config FILE"));
            CHECK(contains(run.out, "built-in defaults"));
        }
    }

    TEST_CASE("usage errors exit with 2 and name the flag") {
        auto check = [](std::initializer_list<std::string> args, std::string_view message) {
            auto run = pgmarina(args);
            CAPTURE(run.out);
            CHECK(run.status == 2);
            CHECK(contains(run.out, message));
            CHECK(contains(run.out, "Try 'pgmarina --help'"));
        };
        check({"--bogus"}, "pgmarina: unknown option '--bogus'");
        check({"-x"}, "unknown option '-x'");
        check({"-c"}, "option '-c' needs a FILE argument");
        check({"--check-config", "--config"}, "option '--config' needs a FILE argument");
        check({"--config="}, "option '--config=' needs a FILE argument");
        check({"pgmarina.toml"}, "unexpected argument 'pgmarina.toml'; give the configuration");
        check({"-c", "a.toml", "--config=b.toml"}, "the configuration file is given twice");
        check({"--check-config", "--print-settings"}, "cannot be combined");
    }

    TEST_CASE("--check-config validates without starting") {
        std::string example = (source_root / "etc/pgmarina.toml").string();
        auto good = pgmarina({"--check-config", "-c", example}, false);
        CHECK(good.status == 0);
        CHECK(good.out == "configuration OK: " + example + "\n");

        auto equals_form = pgmarina({"--config=" + example, "--check-config"}, false);
        CHECK(equals_form.status == 0);

        auto defaults = pgmarina({"--check-config"}, false);
        CHECK(defaults.status == 0);
        CHECK(defaults.out == "configuration OK: built-in defaults\n");
    }

    TEST_CASE("configuration errors exit with 1 and print FILE:LINE:COL") {
        std::string bad = (source_root / "tests/config/invalid/unknown_global_key.toml").string();
        auto run = pgmarina({"--check-config", "-c", bad});
        CAPTURE(run.out);
        CHECK(run.status == 1);
        CHECK(run.out.starts_with(bad + ":"));
        CHECK(contains(run.out, "pgmarina: configuration not loaded (1 error)"));

        auto missing = pgmarina({"-c", "/nonexistent.toml"});
        CHECK(missing.status == 1);
        CHECK(contains(missing.out, "/nonexistent.toml: cannot open"));
    }

    TEST_CASE("--check-config also reads the files the configuration names") {
        const auto dir = std::filesystem::temp_directory_path() /
                         ("pgmarina-main-test-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        const auto config = dir / "pgmarina.toml";
        std::ofstream(config) << "[pgmarina]\n"
                                 "auth_file = \"missing-userlist.txt\"\n"
                                 "client_tls_sslmode = \"require\"\n"
                                 "client_tls_cert_file = \"missing.crt\"\n"
                                 "client_tls_key_file = \"missing.key\"\n";
        auto run = pgmarina({"--check-config", "-c", config.string()});
        CAPTURE(run.out);
        CHECK(run.status == 1);
        CHECK(contains(run.out, (dir / "missing-userlist.txt").string() + ": cannot open"));
        CHECK(contains(run.out, "client_tls_cert_file " + (dir / "missing.crt").string()));
        CHECK(contains(run.out, "pgmarina: configuration not loaded (2 errors)"));
        std::filesystem::remove_all(dir);
    }

    TEST_CASE("--print-settings prints the generated reference") {
        auto run = pgmarina({"--print-settings"}, false);
        CHECK(run.status == 0);
        CHECK(run.out == proxy::settings_reference_markdown());
    }

    TEST_CASE("convert-pgbouncer writes a file that --check-config accepts") {
        const auto dir = std::filesystem::temp_directory_path() /
                         ("pgmarina-convert-test-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        const auto samples = source_root / "tests/config/pgbouncer";
        const std::string userlist = (samples / "userlist.txt").string();
        // (ini, userlist or "", lines the converter must list on stderr as not carried)
        struct Case {
            std::string ini;
            std::string userlist;
            int not_carried;
        };
        for (const Case& c : {Case{"minimal.ini", "", 0}, Case{"minimal.ini", userlist, 0},
                              Case{"production.ini", userlist, 2}, Case{"overrides.ini", "", 15}}) {
            CAPTURE(c.ini);
            CAPTURE(c.userlist);
            const auto out = dir / "pgmarina.toml";
            std::filesystem::remove(out);
            auto convert = c.userlist.empty() ? pgmarina({"convert-pgbouncer", "-o", out.string(),
                                                          (samples / c.ini).string()})
                                              : pgmarina({"convert-pgbouncer", "-o", out.string(),
                                                          (samples / c.ini).string(), c.userlist});
            CAPTURE(convert.out);
            CHECK(convert.status == 0);
            int listed = 0;
            for (std::size_t at = 0;
                 (at = convert.out.find("pgmarina: not carried over: ", at)) != std::string::npos;
                 ++at) {
                ++listed;
            }
            CHECK(listed == c.not_carried);
            auto check = pgmarina({"--check-config", "-c", out.string()});
            CAPTURE(check.out);
            CHECK(check.status == 0);
            CHECK(check.out == "configuration OK: " + out.string() + "\n");
        }

        // Without -o the TOML goes to stdout, and the list to stderr only.
        auto to_stdout =
            pgmarina({"convert-pgbouncer", (samples / "production.ini").string()}, false);
        CHECK(to_stdout.status == 0);
        CHECK(to_stdout.out.starts_with("# pgmarina configuration converted from "));
        CHECK(contains(to_stdout.out, "\n[pgmarina]\n"));
        CHECK_FALSE(contains(to_stdout.out, "pgmarina: not carried over"));
        std::filesystem::remove_all(dir);
    }

    TEST_CASE("convert-pgbouncer: usage and file errors") {
        auto none = pgmarina({"convert-pgbouncer"});
        CHECK(none.status == 2);
        CHECK(contains(none.out, "convert-pgbouncer takes a pgbouncer.ini"));
        auto three = pgmarina({"convert-pgbouncer", "a.ini", "b.txt", "c"});
        CHECK(three.status == 2);
        auto option = pgmarina({"convert-pgbouncer", "--frobnicate", "a.ini"});
        CHECK(option.status == 2);
        CHECK(contains(option.out, "unknown option '--frobnicate'"));
        auto missing = pgmarina({"convert-pgbouncer", "/nonexistent.ini"});
        CHECK(missing.status == 1);
        CHECK(contains(missing.out, "/nonexistent.ini: cannot open"));
    }
}
