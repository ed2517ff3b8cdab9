// ResponseTracker against a model of PostgreSQL on random conversations, fed random bytes, and
// reused without allocating. The allocation counter below is the one definition of the global
// operator new and delete in the wire test binary: keep it in this file only.

#include "wire/response_tracker.hpp"

#include "tests/support/response_tracker_harness.hpp"
#include "tests/support/response_tracker_model.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <random>
#include <span>
#include <string_view>
#include <vector>

// Counts the allocations made through the global operator new, for the steady-state test. This
// replaces operator new and delete for the whole test binary; all it adds is the counter. Not
// inlined, so that the compiler does not pair a new-expression with free() and warn
// (-Wmismatched-new-delete).
namespace {
std::size_t allocations = 0;
} // namespace

[[gnu::noinline]] void* operator new(std::size_t size) {
    ++allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}

[[gnu::noinline]] void operator delete(void* p) noexcept {
    std::free(p);
}

[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

using namespace wire::test;
using namespace wire::test::tracker_model;
using wire::Disposition;
using wire::FakeReply;
using wire::ResponseTracker;
using wire::Route;
using wire::be::TransactionStatus;

} // namespace

TEST_SUITE("wire.response_tracker") {
    TEST_CASE("random conversations with a model of PostgreSQL: every reply where it belongs") {
        int releasable_checkpoints = 0;
        for (unsigned seed = 1; seed <= 300; ++seed) {
            CAPTURE(seed);
            std::mt19937 rng(seed);
            ScriptWriter writer(rng);
            Conversation conversation(rng);
            // How far the client writes ahead of the replies varies from run to run: from
            // nearly request-response to deep pipelines.
            const unsigned write_weight = 1 + rng() % 8;
            for (int unit = 0; unit < 40; ++unit) {
                const std::vector<Message> messages = writer.unit();
                for (std::size_t i = 0; i < messages.size(); ++i) {
                    conversation.write(messages[i]);
                    if (messages[i].with_next) {
                        conversation.write(messages[++i]);
                    }
                    while (rng() % (write_weight + 2) >= write_weight) {
                        if (rng() % 2 == 0 && conversation.replies_in_flight()) {
                            conversation.proxy_reads();
                        } else {
                            conversation.server_reads();
                        }
                    }
                }
                if (rng() % 4 == 0) {
                    conversation.settle();
                    conversation.check();
                    releasable_checkpoints += conversation.releasable();
                }
            }
            conversation.settle();
            conversation.check();
        }
        CHECK(releasable_checkpoints > 100);
    }

    TEST_CASE("random bytes in both directions never break it") {
        // Anything a peer or a confused session may feed it: no crash, no undefined behaviour
        // (run under -Db_sanitize=address,undefined), and the answers stay consistent.
        std::mt19937 rng(20240607);
        const std::string_view frontend("PBDECSQFdcfHXp", 14);
        const std::string_view backend("123tTnDCIsGHWdcVZENSAKv", 23);
        const std::string_view bodies("SPITE\0x", 7);
        int inconsistent = 0;
        for (int round = 0; round < 3000; ++round) {
            ResponseTracker tracker;
            for (int i = 0; i < 40; ++i) {
                const auto any = [&rng](std::string_view from) {
                    return rng() % 8 == 0 ? static_cast<char>(rng()) : from[rng() % from.size()];
                };
                Bytes body;
                for (unsigned n = rng() % 3; n > 0; --n) {
                    body.push_back(static_cast<std::byte>(any(bodies)));
                }
                switch (rng() % 5) {
                case 0:
                case 1:
                    tracker.on_frontend(typed(any(frontend), body),
                                        rng() % 4 == 0 ? Route::skip : Route::forward, rng() % 4);
                    break;
                case 2:
                    inconsistent += tracker
                                        .absorb(rng() % 2 == 0 ? FakeReply::parse_complete
                                                               : FakeReply::close_complete)
                                        .size() > 1;
                    break;
                default: {
                    const Disposition d = tracker.on_backend(typed(any(backend), body));
                    inconsistent += d.asynchronous && (!d.fakes.empty() || !d.failed.empty());
                    break;
                }
                }
                inconsistent += tracker.releasable() &&
                                (tracker.awaiting_replies() || tracker.client_in_copy() ||
                                 tracker.desynchronized() ||
                                 tracker.transaction_status() != TransactionStatus::idle);
            }
        }
        CHECK(inconsistent == 0);
    }

    TEST_CASE("reused after release without allocating") {
        ResponseTracker tracker;
        const auto conversation = [&tracker] {
            bool ok = true;
            for (const char type : std::string_view("PBDESBES")) {
                const std::byte kind{'P'};
                ok = tracker.on_frontend(typed(type, std::span(&kind, type == 'D' ? 1 : 0))) && ok;
            }
            ok = tracker.absorb(FakeReply::parse_complete).empty() && ok;
            ok = tracker.on_frontend(typed('S')) && ok;
            const std::byte idle{'I'};
            for (const char type : std::string_view("12TDDCZ2CZZ")) {
                const auto d = tracker.on_backend(typed(type, std::span(&idle, type == 'Z')));
                ok = d.route == Route::forward && ok;
            }
            return ok && tracker.releasable();
        };
        const std::size_t fresh = allocations;
        REQUIRE(conversation()); // grows the buffers to this pipeline's depth
        CHECK(allocations > fresh);
        const std::size_t before = allocations;
        bool all_ok = true;
        for (int i = 0; i < 100; ++i) {
            all_ok = conversation() && all_ok;
        }
        const std::size_t allocated = allocations - before;
        CHECK(all_ok);
        CHECK(allocated == 0);
    }
}
