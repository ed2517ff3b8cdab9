// How log lines look, and which are written (log.hpp writes them): plain text as PgBouncer's
// ("2026-01-02 03:04:05.678 UTC [pid] LOG C-17 app/alice@10.0.0.5:51234 ..."), or one JSON object
// per line for log collectors, with the connection a line is about in a field of its own; a
// warning or error that repeats is written at most once per RepeatFilter::window, then summed up
// ("(repeated K times)"); and PgBouncer's periodic "stats:" line.
//
// Thread safety: the functions are pure; a RepeatFilter is used under its owner's lock.
#pragma once

#include "proxy/log.hpp"
#include "proxy/traffic_stats.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::log {

enum class Format { text, json };

// "text" or "json"; std::nullopt for anything else.
[[nodiscard]] std::optional<Format> parse_format(std::string_view name);

// Sets the format of every line from now on (before the workers start). Text by default.
void set_format(Format format);

// "LOG", "WARNING", ... as PgBouncer names its levels.
[[nodiscard]] std::string_view level_name(Level level);

// The connection a line is about, "C-17" or "S-4", when the line starts with it; else "".
[[nodiscard]] std::string_view connection_of(std::string_view message);

// `message` as a JSON string, quotes included.
[[nodiscard]] std::string json_string(std::string_view text);

// One whole line, newline included. `stamp` is the time as the text format shows it
// ("2026-01-02 03:04:05.678 UTC"); JSON carries it as ISO 8601 ("2026-01-02T03:04:05.678Z").
[[nodiscard]] std::string format_line(Format format, std::string_view stamp, long pid, Level level,
                                      std::string_view message);

// What makes two messages "the same" for RepeatFilter: the message without the connection's
// id, and for a client without its port (every connection has its own), so that one error of
// many clients counts as one.
[[nodiscard]] std::string repeat_key(std::string_view message);

// At most one line per key per window; the repeats in between are counted and reported with the
// next line of that key, or by flush() once its window is over.
class RepeatFilter {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr auto window = std::chrono::seconds(10);
    // Keys remembered at most; a flood of distinct messages is not held in memory.
    static constexpr std::size_t max_keys = 1024;

    // The line to write for `message` at `now`: the message itself, with " (repeated K times)"
    // when K repeats were held back since it was last written; std::nullopt to hold it back.
    [[nodiscard]] std::optional<std::string> admit(std::string_view message, Clock::time_point now);
    // Lines summing up repeats whose window ended by `now` ("... (repeated K times)"), and
    // forgets those keys.
    [[nodiscard]] std::vector<std::string> flush(Clock::time_point now);

private:
    struct Entry {
        Clock::time_point written;
        std::size_t held_back = 0;
        std::string last; // the last message held back, as it was
    };
    std::map<std::string, Entry, std::less<>> entries_;
};

// Writes the summaries of repeats whose window is over (called every stats_period).
void flush_repeats();

// PgBouncer's log_stats line from the averages of a stats_period (period_averages):
// "stats: 12 xacts/s, 30 queries/s, 0 client parses/s, 0 server parses/s, 0 binds/s,
// in 2048 B/s, out 4096 B/s, xact 950 us, query 310 us, wait 12 us".
[[nodiscard]] std::string stats_line(const TrafficTotals& averages);

} // namespace proxy::log
