#include "tests/support/patroni_cluster.hpp"
#include "tests/support/command.hpp"
#include "tests/support/fixture_dir.hpp"
#include "tests/support/temp_dir.hpp"

#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <system_error>

namespace support {
namespace {

// Quotes a word for the shell that popen runs.
std::string shell_word(std::string_view word) {
    std::string quoted = "'";
    for (const char c : word) {
        quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return quoted + "'";
}

std::string script_from_environment() {
    const char* script = std::getenv("PATRONI_CLUSTER");
    if (script == nullptr || *script == '\0') {
        throw std::runtime_error(
            "PATRONI_CLUSTER is not set: run integration tests through meson test or meson "
            "devenv, or set it to tests/fixture/patroni-cluster");
    }
    return script;
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    return text;
}

} // namespace

std::optional<std::string> PatroniCluster::unavailable_reason() {
    std::string script;
    try {
        script = script_from_environment();
    } catch (const std::runtime_error& error) {
        return error.what();
    }
    const CommandRun check = run_command(shell_word(script) + " check");
    if (check.status == 0) return std::nullopt;
    const std::string output = trimmed(check.output);
    return output.empty() ? "patroni-cluster check failed" : output;
}

PatroniCluster::Guard::Guard(const std::string& script, const std::filesystem::path& dir) {
    // "w": the guard reads the pipe as its stdin; "e": the write end is close-on-exec, so that
    // nothing this process starts later holds the pipe open. setsid keeps the guard out of the
    // test's process group, which Ctrl-C and meson's timeout kill as a whole.
    const std::string command =
        "exec setsid " + shell_word(script) + " guard " + shell_word(dir.string());
    pipe_ = ::popen(command.c_str(), "we");
    if (pipe_ == nullptr) {
        const int error = errno;
        std::error_code ignored;
        std::filesystem::remove(dir, ignored);
        throw std::system_error(error, std::generic_category(), "cannot run " + command);
    }
}

PatroniCluster::Guard::~Guard() {
    const int status = ::pclose(pipe_);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::cerr << "patroni-cluster guard failed to destroy the cluster (wait status " << status
                  << ")\n";
    }
}

PatroniCluster::PatroniCluster()
    : script_(script_from_environment()),
      dir_(make_temp_dir(cluster_parent_dir(), "pgmarina-patroni-")), guard_(script_, dir_) {
    run("start " + shell_word(dir_.string()));
    env_ = read_env_file(dir_ / "cluster.env");
}

const std::string& PatroniCluster::host() const {
    return env("HOST");
}

int PatroniCluster::port(int node) const {
    check_node(node);
    return std::stoi(env("NODE" + std::to_string(node) + "_PORT"));
}

std::optional<int> PatroniCluster::node_at(int port) const {
    for (int node = 0; node < node_count; ++node) {
        if (this->port(node) == port) return node;
    }
    return std::nullopt;
}

const std::string& PatroniCluster::password(std::string_view user) const {
    if (user == env("SUPERUSER")) return env("SUPERUSER_PASSWORD");
    if (user == env("SCRAM_USER")) return env("SCRAM_PASSWORD");
    throw std::invalid_argument("patroni-cluster creates no user named " + std::string(user));
}

// The fixture's host, users, passwords and database are plain words: nothing to quote.
std::string PatroniCluster::conninfo(int node, std::string_view user,
                                     std::string_view dbname) const {
    return "host=" + host() + " port=" + std::to_string(port(node)) + " user=" + std::string(user) +
           " password=" + password(user) + " dbname=" + std::string(dbname);
}

std::chrono::seconds PatroniCluster::ttl() const {
    return std::chrono::seconds(std::stoi(env("TTL")));
}

const std::filesystem::path& PatroniCluster::dir() const {
    return dir_;
}

std::optional<int> PatroniCluster::leader() const {
    const CommandRun run =
        run_command(shell_word(script_) + " leader " + shell_word(dir_.string()));
    if (run.status != 0) return std::nullopt;
    const std::string name = trimmed(run.output);
    for (int node = 0; node < node_count; ++node) {
        if (name == "node" + std::to_string(node)) return node;
    }
    return std::nullopt;
}

std::string PatroniCluster::status() const {
    return run_command(shell_word(script_) + " status " + shell_word(dir_.string())).output;
}

void PatroniCluster::kill_postgres(int node) {
    check_node(node);
    run("kill-postgres " + shell_word(dir_.string()) + " node" + std::to_string(node));
}

void PatroniCluster::run(const std::string& args) const {
    const CommandRun run = run_command(shell_word(script_) + " " + args);
    if (run.status != 0) {
        throw std::runtime_error("patroni-cluster " + args + " failed (exit code " +
                                 std::to_string(run.status) + "):\n" + run.output);
    }
}

const std::string& PatroniCluster::env(const std::string& key) const {
    const auto found = env_.find(key);
    if (found == env_.end()) {
        throw std::out_of_range(key + " is missing from " + (dir_ / "cluster.env").string());
    }
    return found->second;
}

void PatroniCluster::check_node(int node) const {
    if (node < 0 || node >= node_count) {
        throw std::out_of_range("no node " + std::to_string(node) + " in a Patroni cluster of " +
                                std::to_string(node_count) + " nodes");
    }
}

} // namespace support
