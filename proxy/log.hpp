#pragma once
// Logging to stderr, one whole line per write so lines from different workers never interleave.
// Connections are named as SHOW CLIENTS / SHOW SERVERS name them (design.md): "C-17 app/alice@…".

#include <exception>
#include <sstream>
#include <string_view>

namespace proxy::log {

enum class Level { debug, info, warning, error };

// Thread-safe: may be called from any worker.
void write(Level level, std::string_view line);

template <class... Parts>
void line(Level level, const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    write(level, out.view());
}

template <class... Parts>
void info(const Parts&... parts) {
    line(Level::info, parts...);
}
template <class... Parts>
void warning(const Parts&... parts) {
    line(Level::warning, parts...);
}
template <class... Parts>
void error(const Parts&... parts) {
    line(Level::error, parts...);
}

// For co_spawn completion handlers: a coroutine that ends by an exception is a bug (expected
// network conditions are values), so it is logged with what the coroutine was doing.
void failure(std::string_view what, std::exception_ptr exception);

} // namespace proxy::log
