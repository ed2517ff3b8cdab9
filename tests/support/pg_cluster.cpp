#include "tests/support/pg_cluster.hpp"
#include "tests/support/fixture_dir.hpp"
#include "tests/support/temp_dir.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace support {
namespace {

struct SpawnOptions {
    int stdin_fd = -1;  // becomes the child's stdin when set
    int output_fd = -1; // becomes the child's stdout and stderr when set
    bool new_session = false;
};

// posix_spawn rather than fork: the test process may have threads, and after fork only
// async-signal-safe calls are allowed.
pid_t spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
    std::vector<char*> raw_argv;
    for (const std::string& arg : argv) {
        raw_argv.push_back(const_cast<char*>(arg.c_str()));
    }
    raw_argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    if (options.stdin_fd >= 0) {
        posix_spawn_file_actions_adddup2(&actions, options.stdin_fd, STDIN_FILENO);
    }
    if (options.output_fd >= 0) {
        posix_spawn_file_actions_adddup2(&actions, options.output_fd, STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&actions, options.output_fd, STDERR_FILENO);
    }
    if (options.new_session) {
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID);
    }
    pid_t pid = -1;
    const int error =
        posix_spawn(&pid, raw_argv[0], &actions, &attributes, raw_argv.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
        throw std::system_error(error, std::generic_category(), "cannot run " + argv[0]);
    }
    return pid;
}

// Returns the wait status of pid, retrying when a signal interrupts the wait.
int wait_for(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return status;
}

bool succeeded(int status) {
    return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string describe(int status) {
    if (status < 0) {
        return "lost track of it";
    }
    if (WIFSIGNALED(status)) {
        return "killed by signal " + std::to_string(WTERMSIG(status));
    }
    return "exit code " + std::to_string(WEXITSTATUS(status));
}

std::string join(const std::vector<std::string>& args) {
    std::string joined;
    for (const std::string& arg : args) {
        joined += (joined.empty() ? "" : " ") + arg;
    }
    return joined;
}

// A pipe whose ends are closed in spawned children unless dup2'ed onto a standard stream;
// without O_CLOEXEC, pg-cluster and the servers it starts would keep the guard's pipe open.
std::array<int, 2> make_pipe() {
    std::array<int, 2> fds{};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "pipe2");
    }
    return fds;
}

std::string conninfo_value(std::string_view value) {
    std::string quoted = "'";
    for (const char c : value) {
        if (c == '\'' || c == '\\') {
            quoted += '\\';
        }
        quoted += c;
    }
    return quoted + "'";
}

std::string script_from_environment() {
    const char* script = std::getenv("PG_CLUSTER");
    if (script == nullptr || *script == '\0') {
        throw std::runtime_error("PG_CLUSTER is not set: run integration tests through meson test "
                                 "or meson devenv, or set it to tests/fixture/pg-cluster");
    }
    return script;
}

} // namespace

std::optional<std::string> PgCluster::unavailable_reason() {
    std::string script;
    try {
        script = script_from_environment();
    } catch (const std::runtime_error& error) {
        return error.what();
    }
    if (::access(script.c_str(), X_OK) != 0) {
        return "PG_CLUSTER=" + script + " is not an executable file";
    }
    const auto [read_fd, write_fd] = make_pipe();
    pid_t pid = -1;
    try {
        pid = spawn({script, "check"}, {.output_fd = write_fd});
    } catch (const std::system_error& error) {
        ::close(read_fd);
        ::close(write_fd);
        return error.what();
    }
    ::close(write_fd);
    std::string output;
    std::array<char, 512> buffer{};
    for (;;) {
        const ssize_t n = ::read(read_fd, buffer.data(), buffer.size());
        if (n > 0) {
            output.append(buffer.data(), static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    ::close(read_fd);
    const int status = wait_for(pid);
    if (succeeded(status)) {
        return std::nullopt;
    }
    while (!output.empty() && output.back() == '\n') {
        output.pop_back();
    }
    return output.empty() ? "pg-cluster check failed (" + describe(status) + ")" : output;
}

PgCluster::Guard::Guard(const std::string& script, const std::filesystem::path& dir) {
    const auto [read_fd, write_fd] = make_pipe();
    try {
        // Its own session keeps the guard out of the test's process group, which Ctrl-C and
        // meson's timeout kill as a whole.
        pid_ = spawn({script, "guard", dir.string()}, {.stdin_fd = read_fd, .new_session = true});
    } catch (...) {
        ::close(read_fd);
        ::close(write_fd);
        std::error_code ignored;
        std::filesystem::remove(dir, ignored);
        throw;
    }
    ::close(read_fd);
    write_fd_ = write_fd;
}

PgCluster::Guard::~Guard() {
    ::close(write_fd_);
    const int status = wait_for(pid_);
    if (!succeeded(status)) {
        std::cerr << "pg-cluster guard failed to destroy the cluster (" << describe(status)
                  << ")\n";
    }
}

PgCluster::PgCluster(PgClusterOptions options)
    : script_(script_from_environment()),
      dir_(make_temp_dir(cluster_parent_dir(), "pgmarina-cluster-")), guard_(script_, dir_) {
    run({"start", dir_.string(), "--replicas", std::to_string(options.replicas)});
    env_ = read_env_file(dir_ / "cluster.env");
}

int PgCluster::node_count() const {
    const std::string& nodes = env("NODES");
    return static_cast<int>(std::count(nodes.begin(), nodes.end(), ',')) + 1;
}

const std::string& PgCluster::host() const {
    return env("HOST");
}

int PgCluster::port(int node) const {
    check_node(node);
    return std::stoi(env("NODE" + std::to_string(node) + "_PORT"));
}

const std::string& PgCluster::password(std::string_view user) const {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> users{{
        {"SUPERUSER", "SUPERUSER_PASSWORD"},
        {"SCRAM_USER", "SCRAM_PASSWORD"},
        {"MD5_USER", "MD5_PASSWORD"},
        {"PLAIN_USER", "PLAIN_PASSWORD"},
    }};
    for (const auto& [user_key, password_key] : users) {
        if (env(std::string(user_key)) == user) {
            return env(std::string(password_key));
        }
    }
    throw std::invalid_argument("pg-cluster creates no user named " + std::string(user));
}

std::string PgCluster::conninfo(int node, std::string_view user, std::string_view dbname) const {
    return "host=" + conninfo_value(host()) + " port=" + std::to_string(port(node)) +
           " user=" + conninfo_value(user) + " password=" + conninfo_value(password(user)) +
           " dbname=" + conninfo_value(dbname);
}

const std::filesystem::path& PgCluster::dir() const {
    return dir_;
}

void PgCluster::stop(int node, StopMode mode) {
    std::vector<std::string> args{"stop", dir_.string(), node_name(node)};
    if (mode == StopMode::immediate) {
        args.emplace_back("--immediate");
    }
    run(args);
}

void PgCluster::start(int node) {
    run({"start-node", dir_.string(), node_name(node)});
}

void PgCluster::restart(int node, StopMode mode) {
    std::vector<std::string> args{"restart", dir_.string(), node_name(node)};
    if (mode == StopMode::immediate) {
        args.emplace_back("--immediate");
    }
    run(args);
}

void PgCluster::promote(int node) {
    run({"promote", dir_.string(), node_name(node)});
}

void PgCluster::follow(int node, int upstream) {
    run({"follow", dir_.string(), node_name(node), node_name(upstream)});
}

void PgCluster::run(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{script_};
    argv.insert(argv.end(), args.begin(), args.end());
    const int status = wait_for(spawn(argv, {}));
    if (!succeeded(status)) {
        throw std::runtime_error("pg-cluster " + join(args) + " failed (" + describe(status) + ")");
    }
}

const std::string& PgCluster::env(const std::string& key) const {
    const auto found = env_.find(key);
    if (found == env_.end()) {
        throw std::out_of_range(key + " is missing from " + (dir_ / "cluster.env").string());
    }
    return found->second;
}

void PgCluster::check_node(int node) const {
    if (node < 0 || node >= node_count()) {
        throw std::out_of_range("no node " + std::to_string(node) + " in a cluster of " +
                                std::to_string(node_count()) + " nodes");
    }
}

std::string PgCluster::node_name(int node) const {
    check_node(node);
    return "node" + std::to_string(node);
}

} // namespace support
