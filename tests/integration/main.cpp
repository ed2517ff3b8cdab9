// doctest's main for integration tests, which first makes sure a cluster can start at all.

#include "tests/support/pg_cluster.hpp"

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>
#include <iostream>

namespace {
// The exit code meson reports as SKIP.
constexpr int exit_skipped = 77;
} // namespace

int main(int argc, char** argv) {
    if (const auto reason = support::PgCluster::unavailable_reason()) {
        if (std::getenv("PG_CLUSTER_REQUIRED") != nullptr) {
            std::cerr << "FAIL: integration tests are required but cannot run: " << *reason << '\n';
            return EXIT_FAILURE;
        }
        std::cerr << "SKIP: integration tests need PostgreSQL: " << *reason << '\n';
        return exit_skipped;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
