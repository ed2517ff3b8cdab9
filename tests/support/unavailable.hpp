#pragma once

// How an integration test binary ends when a fixture it needs cannot run here: meson's SKIP, or
// a failure when the build requires integration tests (tests/integration/meson.build sets
// PG_CLUSTER_REQUIRED for -Dintegration=enabled), so that a CI job cannot pass by skipping.

#include <cstdlib>
#include <iostream>
#include <string_view>

namespace support {

// The exit code meson reports as SKIP.
inline constexpr int exit_skipped = 77;

// Says on stderr what cannot run and why, and returns the exit code for main. `needs` completes
// "SKIP: ...", e.g. "integration tests need PostgreSQL".
inline int exit_code_when_unavailable(std::string_view needs, std::string_view reason) {
    if (std::getenv("PG_CLUSTER_REQUIRED") != nullptr) {
        std::cerr << "FAIL: integration tests are required but cannot run: " << reason << '\n';
        return EXIT_FAILURE;
    }
    std::cerr << "SKIP: " << needs << ": " << reason << '\n';
    return exit_skipped;
}

} // namespace support
