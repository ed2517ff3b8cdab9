#include "proxy/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <unistd.h>

namespace proxy::log {
namespace {

std::string_view level_name(Level level) {
    switch (level) {
    case Level::debug:
        return "DEBUG";
    case Level::info:
        return "LOG";
    case Level::warning:
        return "WARNING";
    case Level::error:
        return "ERROR";
    }
    return "LOG";
}

} // namespace

void write(Level level, std::string_view line) {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const std::time_t seconds = system_clock::to_time_t(now);
    const auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[64];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02d %02d:%02d:%02d.%03d UTC", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>(millis));

    std::string out;
    out.reserve(line.size() + 64);
    out.append(stamp).append(" [").append(std::to_string(getpid())).append("] ");
    out.append(level_name(level)).append(" ").append(line).append("\n");
    // One write(2) per line: atomic for pipes up to PIPE_BUF and never torn by other threads'
    // stdio buffering.
    [[maybe_unused]] auto written = ::write(STDERR_FILENO, out.data(), out.size());
}

void failure(std::string_view what, std::exception_ptr exception) {
    if (!exception) return;
    try {
        std::rethrow_exception(exception);
    } catch (const std::exception& e) {
        line(Level::error, what, " failed: ", e.what());
    } catch (...) {
        line(Level::error, what, " failed with a non-standard exception");
    }
}

} // namespace proxy::log
