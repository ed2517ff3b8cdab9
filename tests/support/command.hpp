#pragma once

// Running a command line from a test (pgbench, psql, openssl) and collecting what it printed.

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace support {

struct CommandRun {
    int status = -1;    // exit code, or -1 if it did not exit normally
    std::string output; // stdout and stderr
};

inline CommandRun run_command(const std::string& command) {
    CommandRun out;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return out;
    char chunk[4096];
    while (const std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe))
        out.output.append(chunk, n);
    const int status = ::pclose(pipe);
    out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
}

} // namespace support
