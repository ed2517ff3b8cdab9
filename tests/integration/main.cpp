// doctest's main for integration tests, which first makes sure a cluster can start at all.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/unavailable.hpp"

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

int main(int argc, char** argv) {
    if (const auto reason = support::PgCluster::unavailable_reason()) {
        return support::exit_code_when_unavailable("integration tests need PostgreSQL", *reason);
    }
    doctest::Context context(argc, argv);
    return context.run();
}
