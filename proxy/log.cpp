#include "proxy/log.hpp"

#include "proxy/log_format.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <unistd.h>

namespace proxy::log {
namespace {

std::atomic<Format> current_format{Format::text};

// Shared by every worker; held only to admit a line.
std::mutex repeat_mutex;
RepeatFilter repeats;

std::string time_stamp() {
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
    return stamp;
}

void emit(Level level, std::string_view line) {
    const std::string out = format_line(current_format.load(std::memory_order_relaxed),
                                        time_stamp(), static_cast<long>(getpid()), level, line);
    // One write(2) per line: atomic for pipes up to PIPE_BUF and never torn by other threads'
    // stdio buffering.
    [[maybe_unused]] auto written = ::write(STDERR_FILENO, out.data(), out.size());
}

bool is_digit(char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

} // namespace

std::optional<Format> parse_format(std::string_view name) {
    if (name == "text") return Format::text;
    if (name == "json") return Format::json;
    return std::nullopt;
}

void set_format(Format format) {
    current_format.store(format, std::memory_order_relaxed);
}

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

std::string_view connection_of(std::string_view message) {
    if (message.size() < 3 || (message[0] != 'C' && message[0] != 'S') || message[1] != '-') {
        return {};
    }
    std::size_t end = 2;
    while (end < message.size() && is_digit(message[end]))
        ++end;
    if (end == 2 || (end < message.size() && message[end] != ' ')) return {};
    return message.substr(0, end);
}

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
                out += escaped;
            } else {
                out += c;
            }
        }
    }
    return out + "\"";
}

std::string format_line(Format format, std::string_view stamp, long pid, Level level,
                        std::string_view message) {
    std::string out;
    out.reserve(message.size() + 96);
    if (format == Format::text) {
        out.append(stamp).append(" [").append(std::to_string(pid)).append("] ");
        out.append(level_name(level)).append(" ").append(message).append("\n");
        return out;
    }
    // "2026-01-02 03:04:05.678 UTC" → "2026-01-02T03:04:05.678Z"
    std::string time(stamp.substr(0, stamp.find(" UTC")));
    if (const auto space = time.find(' '); space != std::string::npos) time[space] = 'T';
    out.append("{\"time\":").append(json_string(time + "Z"));
    out.append(",\"pid\":").append(std::to_string(pid));
    out.append(",\"level\":").append(json_string(level_name(level)));
    if (const auto connection = connection_of(message); !connection.empty()) {
        out.append(",\"connection\":").append(json_string(connection));
    }
    out.append(",\"message\":").append(json_string(message)).append("}\n");
    return out;
}

std::string repeat_key(std::string_view message) {
    const auto connection = connection_of(message);
    if (connection.empty()) return std::string(message);
    std::string_view rest = message.substr(connection.size());
    if (connection[0] == 'S') return "S-" + std::string(rest);
    // " app/alice@10.0.0.5:51234 login failed" → " app/alice@10.0.0.5 login failed"
    const auto name_end = rest.find(' ', 1);
    const std::string_view name = rest.substr(0, name_end);
    const auto colon = name.rfind(':');
    const bool port =
        colon != std::string_view::npos && colon + 1 < name.size() &&
        std::all_of(name.begin() + static_cast<std::ptrdiff_t>(colon) + 1, name.end(), is_digit);
    std::string key = "C-" + std::string(port ? name.substr(0, colon) : name);
    if (name_end != std::string_view::npos) key += rest.substr(name_end);
    return key;
}

std::optional<std::string> RepeatFilter::admit(std::string_view message, Clock::time_point now) {
    std::string key = repeat_key(message);
    const auto found = entries_.find(key);
    if (found != entries_.end() && now - found->second.written < window) {
        ++found->second.held_back;
        found->second.last = std::string(message);
        return std::nullopt;
    }
    std::string line(message);
    if (found != entries_.end()) {
        if (found->second.held_back > 0) {
            line += " (repeated " + std::to_string(found->second.held_back) + " times)";
        }
        found->second = Entry{now, 0, {}};
        return line;
    }
    if (entries_.size() >= max_keys) {
        // Forget the quiet keys; if all are busy, this one is simply not limited.
        std::erase_if(entries_, [now](const auto& entry) {
            return entry.second.held_back == 0 && now - entry.second.written >= window;
        });
        if (entries_.size() >= max_keys) return line;
    }
    entries_.emplace(std::move(key), Entry{now, 0, {}});
    return line;
}

std::vector<std::string> RepeatFilter::flush(Clock::time_point now) {
    std::vector<std::string> lines;
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (now - it->second.written < window) {
            ++it;
            continue;
        }
        if (it->second.held_back > 0) {
            lines.push_back(it->second.last + " (repeated " + std::to_string(it->second.held_back) +
                            " times)");
        }
        it = entries_.erase(it);
    }
    return lines;
}

std::string stats_line(const TrafficTotals& a) {
    return "stats: " + std::to_string(a.xacts) + " xacts/s, " + std::to_string(a.queries) +
           " queries/s, " + std::to_string(a.client_parses) + " client parses/s, " +
           std::to_string(a.server_parses) + " server parses/s, " + std::to_string(a.binds) +
           " binds/s, in " + std::to_string(a.bytes_received) + " B/s, out " +
           std::to_string(a.bytes_sent) + " B/s, xact " + std::to_string(a.xact_time) +
           " us, query " + std::to_string(a.query_time) + " us, wait " +
           std::to_string(a.wait_time) + " us";
}

void write(Level level, std::string_view line) {
    if (level == Level::info || level == Level::debug) {
        emit(level, line);
        return;
    }
    std::optional<std::string> admitted;
    std::vector<std::string> summaries;
    {
        std::lock_guard lock{repeat_mutex};
        const auto now = RepeatFilter::Clock::now();
        summaries = repeats.flush(now);
        admitted = repeats.admit(line, now);
    }
    for (const auto& summary : summaries)
        emit(Level::warning, summary);
    if (admitted) emit(level, *admitted);
}

void flush_repeats() {
    std::vector<std::string> summaries;
    {
        std::lock_guard lock{repeat_mutex};
        summaries = repeats.flush(RepeatFilter::Clock::now());
    }
    for (const auto& summary : summaries)
        emit(Level::warning, summary);
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
