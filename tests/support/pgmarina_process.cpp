#include "tests/support/pgmarina_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace support {
namespace {

using namespace std::chrono_literals;

constexpr auto startup_timeout = 10s;
constexpr auto stop_timeout = 5s;

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

bool accepts_connections(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const sockaddr_in address = loopback(port);
    const bool connected =
        ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return connected;
}

std::string executable() {
    const char* path = std::getenv("PGMARINA");
    if (path == nullptr || *path == '\0') {
        throw std::runtime_error("PGMARINA is not set: run the test through meson test");
    }
    return path;
}

// Waits up to `timeout` for `pid` to exit; true if it did (and was reaped).
bool reaped_within(pid_t pid, std::chrono::steady_clock::duration timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
        int status = 0;
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid || (done < 0 && errno == ECHILD)) return true;
        std::this_thread::sleep_for(10ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

} // namespace

std::uint16_t PgmarinaProcess::free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in address = loopback(0);
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        throw std::runtime_error("no free port: " + why);
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

PgmarinaProcess::PgmarinaProcess(const std::string& config_toml, std::uint16_t port) : port_(port) {
    dir_ = make_temp_dir(std::filesystem::temp_directory_path(), "pgmarina-test.");
    // The metrics endpoint's default port would be shared by every pgmarina a test starts: a
    // config that does not choose one gets the endpoint turned off.
    const bool chooses_metrics = config_toml.find("[metrics]") != std::string::npos;
    std::ofstream(dir_ / "pgmarina.toml")
        << config_toml << (chooses_metrics ? "" : "\n[metrics]\nlisten = \"\"\n");

    const std::string exe = executable();
    const std::string config = (dir_ / "pgmarina.toml").string();
    const std::string log = (dir_ / "pgmarina.log").string();
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
        // Only async-signal-safe calls between fork and exec.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127); // the test died before prctl took effect
        const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (log_fd >= 0) {
            ::dup2(log_fd, STDOUT_FILENO);
            ::dup2(log_fd, STDERR_FILENO);
        }
        ::execl(exe.c_str(), exe.c_str(), "-c", config.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }

    const auto deadline = std::chrono::steady_clock::now() + startup_timeout;
    while (!accepts_connections(port_)) {
        if (!running() || std::chrono::steady_clock::now() >= deadline) {
            const std::string output = this->log();
            stop();
            throw std::runtime_error("pgmarina did not start listening on port " +
                                     std::to_string(port_) + ":\n" + output);
        }
        std::this_thread::sleep_for(10ms);
    }
}

PgmarinaProcess::~PgmarinaProcess() {
    stop();
    fail_on_sanitizer_report();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

void PgmarinaProcess::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGQUIT); // at once: SIGTERM would wait for clients (shutdown.hpp)
    if (!reaped_within(pid_, stop_timeout)) {
        ::kill(pid_, SIGKILL);
        reaped_within(pid_, stop_timeout);
    }
    pid_ = -1;
}

void PgmarinaProcess::fail_on_sanitizer_report() const {
    // Every sanitizer's report has a line "...Sanitizer: what": "WARNING: ThreadSanitizer: data
    // race", "ERROR: AddressSanitizer: ...", "SUMMARY: UndefinedBehaviorSanitizer: ...".
    const std::string output = log();
    if (output.find("Sanitizer:") == std::string::npos) return;
    std::cerr << "pgmarina (port " << port_ << ") reported a sanitizer error; its log:\n"
              << output << std::endl;
    if (doctest::is_running_in_test) {
        FAIL_CHECK("pgmarina's log holds a sanitizer report (printed above)");
        return;
    }
    // Destroyed after doctest's run (a static fixture): no test case is left to fail, so the
    // process fails; meson counts it, and so does tests/summarize.py.
    std::cout.flush();
    std::_Exit(EXIT_FAILURE);
}

bool PgmarinaProcess::running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        pid_ = -1;
        return false;
    }
    return true;
}

void PgmarinaProcess::signal(int signal) const {
    if (pid_ > 0) ::kill(pid_, signal);
}

std::optional<int> PgmarinaProcess::wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(10ms);
    }
    return exit_code_;
}

std::string PgmarinaProcess::conninfo(std::string_view user, std::string_view password,
                                      std::string_view dbname) const {
    std::ostringstream out;
    out << "host=127.0.0.1 port=" << port_ << " user=" << user << " password=" << password
        << " dbname=" << dbname << " sslmode=disable connect_timeout=5";
    return out.str();
}

std::string PgmarinaProcess::log() const {
    std::ifstream in(dir_ / "pgmarina.log");
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool PgmarinaProcess::sanitized() const {
    std::ifstream maps("/proc/" + std::to_string(pid_) + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
        if (line.find("libasan") != std::string::npos || line.find("libtsan") != std::string::npos)
            return true;
    }
    return false;
}

long proc_status_kb(pid_t pid, std::string_view field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
            return std::stol(line.substr(field.size() + 1));
        }
    }
    throw std::runtime_error("no " + std::string(field) + " for process " + std::to_string(pid));
}

long open_files(pid_t pid) {
    long count = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
        ++count;
    }
    return count;
}

} // namespace support
