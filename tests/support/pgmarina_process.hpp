#pragma once

// A real pgmarina process for integration tests: the binary meson built (path in the PGMARINA
// environment variable), started with a config written to a fresh directory, stopped when the
// object is destroyed. The child gets SIGKILL if the test process dies first (PR_SET_PDEATHSIG),
// so a crashed test leaves no proxy behind holding its port.
//
// A sanitizer report in pgmarina's log (ThreadSanitizer, AddressSanitizer, UBSan) fails the test
// when the object is destroyed: the report is printed, and the current test case fails, or, for
// a pgmarina kept until static destruction, the test process exits with EXIT_FAILURE. The
// sanitizers report on the child's stderr, which no test reads, so without this check a race in
// pgmarina would only show as the test's unrelated symptoms, or not at all.
//
// Thread safety: none; use one from one thread.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace support {

// A field of /proc/PID/status in kB ("VmRSS", "VmHWM"); throws when the process has none.
[[nodiscard]] long proc_status_kb(pid_t pid, std::string_view field);
// The descriptors a process has open (/proc/PID/fd).
[[nodiscard]] long open_files(pid_t pid);

class PgmarinaProcess {
public:
    // A loopback TCP port nobody listens on right now, for the config's `listen`.
    [[nodiscard]] static std::uint16_t free_port();

    // Writes `config_toml` to DIR/pgmarina.toml (with [metrics] listen = "" unless it has a
    // [metrics] section), starts `pgmarina -c` on it and returns once
    // 127.0.0.1:`port` accepts connections. Throws std::runtime_error (with the log) otherwise.
    PgmarinaProcess(const std::string& config_toml, std::uint16_t port);
    PgmarinaProcess(const PgmarinaProcess&) = delete;
    PgmarinaProcess& operator=(const PgmarinaProcess&) = delete;
    // SIGQUIT, then SIGKILL if it has not exited within a few seconds; then the sanitizer check.
    ~PgmarinaProcess();

    [[nodiscard]] std::uint16_t port() const { return port_; }
    // The process id, for /proc/PID/status; -1 once the process has been seen to exit.
    [[nodiscard]] pid_t pid() const { return pid_; }
    // The configuration file it runs with, for tests that change it and RELOAD.
    [[nodiscard]] std::filesystem::path config_path() const { return dir_ / "pgmarina.toml"; }
    // A libpq conninfo for a database behind this pgmarina.
    [[nodiscard]] std::string conninfo(std::string_view user, std::string_view password,
                                       std::string_view dbname) const;
    // True while the process has not exited.
    [[nodiscard]] bool running();
    // Sends `signal` (SIGTERM for a graceful shutdown, say) to the process.
    void signal(int signal) const;
    // Waits up to `timeout` for the process to exit: its exit code (-1 when a signal ended it),
    // or std::nullopt while it still runs. Asked again after the exit, the same code.
    [[nodiscard]] std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    // What pgmarina wrote to stderr so far.
    [[nodiscard]] std::string log() const;
    // Whether it runs under AddressSanitizer or ThreadSanitizer (gcc links their runtimes as
    // shared libraries). Their allocators hold freed memory back (ASan's quarantine is 256 MB),
    // so resident memory says nothing about leaks there: LeakSanitizer does that job instead.
    [[nodiscard]] bool sanitized() const;

private:
    void stop();
    void fail_on_sanitizer_report() const;

    std::filesystem::path dir_;
    std::uint16_t port_;
    pid_t pid_ = -1;
    std::optional<int> exit_code_;
};

} // namespace support
