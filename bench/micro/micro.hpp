// A minimal timing loop for bench/micro (no benchmark library on Debian 12 that meson finds
// everywhere, and these need nothing more): runs a body that performs `ops` operations, first
// to warm up, then in rounds of at least MICRO_ROUND_MS milliseconds (default 200), MICRO_ROUNDS
// times (default 5), and prints the fastest round as ns per operation, plus the operations
// counted. The fastest round is the one least disturbed by the other jobs of a shared machine.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace micro {

// Keeps the compiler from proving a result unused and deleting the work that made it.
template <class T>
inline void keep(const T& value) {
    asm volatile("" : : "r,m"(value) : "memory");
}

inline long env_or(const char* name, long fallback) {
    const char* text = std::getenv(name);
    return text != nullptr && *text != '\0' ? std::strtol(text, nullptr, 10) : fallback;
}

// `body()` performs `ops_per_call` operations and returns a checksum-like value that is kept.
template <class Body>
void run(std::string_view name, std::uint64_t ops_per_call, Body&& body) {
    using Clock = std::chrono::steady_clock;
    const auto round = std::chrono::milliseconds(env_or("MICRO_ROUND_MS", 200));
    const long rounds = env_or("MICRO_ROUNDS", 5);
    for (int i = 0; i < 3; ++i) {
        keep(body());
    }
    double best_ns = 0;
    std::uint64_t total_ops = 0;
    for (long r = 0; r < rounds; ++r) {
        std::uint64_t ops = 0;
        const auto start = Clock::now();
        auto elapsed = Clock::duration::zero();
        do {
            keep(body());
            ops += ops_per_call;
            elapsed = Clock::now() - start;
        } while (elapsed < round);
        const double ns =
            std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(ops);
        if (r == 0 || ns < best_ns) {
            best_ns = ns;
        }
        total_ops += ops;
    }
    std::printf("%-44s %10.1f ns/op  (%llu ops, best of %ld rounds)\n", std::string(name).c_str(),
                best_ns, static_cast<unsigned long long>(total_ops), rounds);
    std::fflush(stdout);
}

} // namespace micro
