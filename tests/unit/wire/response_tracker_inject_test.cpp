// ResponseTracker and the proxy's own traffic: injected requests whose replies are skipped,
// fake replies for absorbed requests, tags of requests that took no effect, and the replies
// that desynchronize it.

#include "wire/response_tracker.hpp"

#include "tests/support/response_tracker_harness.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

namespace {

using namespace wire::test;
using wire::Disposition;
using wire::FakeReply;
using wire::ResponseTracker;
using wire::Route;

} // namespace

TEST_SUITE("wire.response_tracker") {
    TEST_CASE("replies to an injected query are skipped, its ParameterStatus still reported") {
        // The proxy replays the client's settings before the client's own query (reference.md
        // 2.5) and swallows every reply to it.
        ResponseTracker tracker;
        send(tracker, "Q", Route::skip);
        send(tracker, "Q");
        const Disposition status = tracker.on_backend(typed('S'));
        CHECK(status.route == Route::skip);
        CHECK(status.asynchronous);
        CHECK(relay(tracker, "CCZI").empty());
        CHECK_FALSE(tracker.releasable());
        CHECK(relay(tracker, "TDCZI") == "TDCZI");
        CHECK(tracker.releasable());

        SUBCASE("an error in it is swallowed too: the client's query runs regardless") {
            send(tracker, "Q", Route::skip);
            send(tracker, "Q");
            CHECK(relay(tracker, "EZI").empty());
            CHECK(relay(tracker, "CZI") == "CZI");
        }
    }

    TEST_CASE("an injected Parse: its ParseComplete is skipped, its error reaches the client") {
        // The client's Bind names a statement this server lacks: the proxy prepares it first.
        ResponseTracker tracker;
        send(tracker, "P", Route::skip);
        send(tracker, "BES");
        SUBCASE("prepared") {
            CHECK(relay(tracker, "12CZI") == "2CZI");
        }
        SUBCASE("refused: the client learns why its Bind got no reply") {
            CHECK(relay(tracker, "EZI") == "EZI");
        }
        CHECK(tracker.releasable());
    }

    TEST_CASE("an injected Close's error is skipped if the client loses nothing by it") {
        ResponseTracker tracker;
        send(tracker, "C", Route::skip);
        send(tracker, "S");
        CHECK(relay(tracker, "EZI") == "ZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("a fake ParseComplete goes where the server would have sent it") {
        ResponseTracker tracker;
        send(tracker, "B");
        CHECK(tracker.absorb(FakeReply::parse_complete).empty());
        send(tracker, "BES");
        CHECK(relay(tracker, "2") == "21");
        CHECK(relay(tracker, "2CZI") == "2CZI");
        CHECK(tracker.releasable());

        SUBCASE("after a skipped reply") {
            send(tracker, "P", Route::skip);
            CHECK(tracker.absorb(FakeReply::close_complete).empty());
            send(tracker, "S");
            CHECK(relay(tracker, "1ZI") == "3ZI");
            CHECK(tracker.releasable());
        }
    }

    TEST_CASE("a fake with nothing ahead of it is written at once") {
        // Parse + Flush for a statement the server already has: no server reply will come to
        // carry the fake, so absorb() hands it out.
        ResponseTracker tracker;
        CHECK(fakes_of(tracker.absorb(FakeReply::parse_complete)) == "1");
        send(tracker, "H");
        CHECK(tracker.releasable());
        CHECK(fakes_of(tracker.absorb(FakeReply::close_complete)) == "3");
        send(tracker, "S");
        CHECK(relay(tracker, "ZI") == "ZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("an absorbed request dropped by an error reports its tag") {
        // The prepared statement cache maps a client's name when it absorbs its Parse, and must
        // unmap it if PostgreSQL would have skipped that Parse.
        ResponseTracker tracker;
        send(tracker, "B");
        CHECK(tracker.absorb(FakeReply::parse_complete, 7).empty());
        send(tracker, "S");
        const Disposition error = tracker.on_backend(typed('E'));
        CHECK(error.route == Route::forward);
        CHECK(std::vector(error.failed.begin(), error.failed.end()) ==
              std::vector<std::uint64_t>{7});
        CHECK(error.fakes.empty());
        CHECK(relay(tracker, "ZI") == "ZI");
    }

    TEST_CASE("skipping_to_sync: from an error until the next Sync is written") {
        ResponseTracker tracker;
        send(tracker, "BH");
        CHECK_FALSE(tracker.skipping_to_sync());
        CHECK(relay(tracker, "E") == "E");
        CHECK(tracker.skipping_to_sync());
        CHECK_FALSE(tracker.on_frontend(typed('P'), Route::forward, 3));
        send(tracker, "S");
        CHECK_FALSE(tracker.skipping_to_sync());

        SUBCASE("a Sync written before the error: nothing more is skipped") {
            send(tracker, "BS");
            CHECK(relay(tracker, "ZIE") == "ZIE");
            CHECK_FALSE(tracker.skipping_to_sync());
        }
    }

    TEST_CASE("a fake queued behind a flushed request follows that request's reply") {
        ResponseTracker tracker;
        send(tracker, "B");
        CHECK(tracker.absorb(FakeReply::parse_complete).empty());
        send(tracker, "H");
        CHECK(relay(tracker, "2") == "21");
        CHECK_FALSE(tracker.awaiting_replies());
    }

    TEST_CASE("a fake is dropped after an error, as PostgreSQL would skip the Parse") {
        ResponseTracker tracker;
        send(tracker, "P");
        CHECK(tracker.absorb(FakeReply::parse_complete).empty());
        send(tracker, "BES");
        CHECK(relay(tracker, "EZI") == "EZI");
        CHECK(tracker.releasable());

        SUBCASE("while the server skips, a fake is not even queued") {
            send(tracker, "PH");
            CHECK(relay(tracker, "E") == "E");
            CHECK(tracker.absorb(FakeReply::parse_complete).empty());
            send(tracker, "S");
            CHECK(relay(tracker, "ZI") == "ZI");
        }
        SUBCASE("a fake after the Sync survives") {
            send(tracker, "PS");
            CHECK(tracker.absorb(FakeReply::parse_complete).empty());
            send(tracker, "S");
            CHECK(relay(tracker, "EZIZI") == "EZI1ZI");
        }
    }

    TEST_CASE("tags report the requests that took no effect") {
        ResponseTracker tracker;
        CHECK(tracker.on_frontend(typed('P'), Route::skip, 7));
        CHECK(tracker.on_frontend(typed('P'), Route::forward, 8));
        CHECK(tracker.on_frontend(typed('C'), Route::skip, 9));
        send(tracker, "BS");

        const Disposition prepared = tracker.on_backend(typed('1'));
        CHECK(prepared.failed.empty());
        const Disposition refused = tracker.on_backend(typed('E'));
        CHECK(std::vector(refused.failed.begin(), refused.failed.end()) ==
              std::vector<std::uint64_t>{8, 9});
        CHECK(relay(tracker, "ZI") == "ZI");

        SUBCASE("a request written while the server skips to Sync") {
            CHECK(tracker.on_frontend(typed('P'), Route::forward, 10));
            CHECK(tracker.on_frontend(typed('H')));
            const Disposition error = tracker.on_backend(typed('E'));
            CHECK(std::vector(error.failed.begin(), error.failed.end()) ==
                  std::vector<std::uint64_t>{10});
            CHECK_FALSE(tracker.on_frontend(typed('P'), Route::skip, 11));
        }
    }

    TEST_CASE("unexpected replies desynchronize the tracker for good") {
        ResponseTracker tracker;
        SUBCASE("DataRow with nothing outstanding") {
            CHECK(relay(tracker, "D") == "D");
        }
        SUBCASE("ReadyForQuery with no Sync, Query or FunctionCall outstanding") {
            send(tracker, "PH");
            CHECK(relay(tracker, "1ZI") == "1ZI");
        }
        SUBCASE("ReadyForQuery before any reply to a query") {
            send(tracker, "Q");
            CHECK(relay(tracker, "ZI") == "ZI");
        }
        SUBCASE("the reply to another request") {
            send(tracker, "BS");
            CHECK(relay(tracker, "1") == "1");
        }
        SUBCASE("RowDescription in reply to Execute") {
            send(tracker, "BES");
            CHECK(relay(tracker, "2T") == "2T");
        }
        SUBCASE("CopyData outside COPY TO STDOUT") {
            send(tracker, "Q");
            CHECK(relay(tracker, "d") == "d");
        }
        SUBCASE("CommandComplete ending a COPY FROM STDIN the client did not finish") {
            send(tracker, "Q");
            CHECK(relay(tracker, "GC") == "GC");
        }
        SUBCASE("a second ErrorResponse in a query") {
            send(tracker, "Q");
            CHECK(relay(tracker, "EE") == "EE");
        }
        SUBCASE("ErrorResponse with nothing outstanding: a FATAL from a dying backend") {
            CHECK(relay(tracker, "E") == "E");
        }
        SUBCASE("a ReadyForQuery without a valid status") {
            send(tracker, "S");
            CHECK(tracker.on_backend(typed('Z', raw("X"))).route == Route::forward);
        }
        SUBCASE("an empty ReadyForQuery") {
            send(tracker, "S");
            CHECK(tracker.on_backend(typed('Z')).route == Route::forward);
        }
        SUBCASE("a message type the server never sends after start-up") {
            send(tracker, "Q");
            CHECK(relay(tracker, "K") == "K");
        }
        CHECK(tracker.desynchronized());
        CHECK_FALSE(tracker.releasable());
        // Sticky: a well-formed conversation afterwards does not bring it back.
        send(tracker, "Q");
        CHECK(relay(tracker, "CZI") == "CZI");
        CHECK(tracker.desynchronized());
        CHECK_FALSE(tracker.releasable());
    }

    TEST_CASE("a fake behind a Sync in doubt is placed as if the server ignored that Sync") {
        // The tracker's blind spot: it cannot hold back a ReadyForQuery until it knows which Sync
        // it answers, so it assumes the common case (the COPY failed at the data).
        ResponseTracker tracker;
        send(tracker, "BES");
        CHECK(relay(tracker, "2G") == "2G");
        send(tracker, "dcS");
        CHECK(tracker.absorb(FakeReply::close_complete).empty());
        send(tracker, "S");
        SUBCASE("the COPY failed at the data: in order") {
            CHECK(relay(tracker, "EZIZI") == "EZI3ZI");
            CHECK(tracker.stray_ready_possible());
        }
        SUBCASE("the COPY failed before reading anything: the fake comes one ReadyForQuery early") {
            CHECK(relay(tracker, "EZIZIZI") == "EZI3ZIZI");
            CHECK(tracker.releasable());
        }
        CHECK_FALSE(tracker.desynchronized());
    }
}
