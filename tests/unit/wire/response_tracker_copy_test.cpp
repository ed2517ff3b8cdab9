// ResponseTracker during COPY: FROM STDIN in both protocols, TO STDOUT, CopyBoth, CopyFail, and
// the Sync whose fate a failed COPY leaves in doubt.

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
    TEST_CASE("COPY FROM STDIN in a simple query") {
        ResponseTracker tracker;
        send(tracker, "Q");
        CHECK(relay(tracker, "G") == "G");
        CHECK(tracker.client_in_copy());
        send(tracker, "ddd");
        CHECK(tracker.client_in_copy());
        send(tracker, "c");
        CHECK_FALSE(tracker.client_in_copy());
        CHECK(relay(tracker, "CZI") == "CZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("COPY FROM STDIN in the extended protocol: Syncs during COPY are ignored") {
        // libpq's PQexecParams: the Sync written with the Execute is read during COPY and
        // ignored; PQputCopyEnd writes another one after CopyDone.
        ResponseTracker tracker;
        send(tracker, "PBDPES");
        CHECK(relay(tracker, "12nG") == "12nG");
        CHECK(tracker.client_in_copy());
        send(tracker, "ddSd");
        CHECK(tracker.client_in_copy());
        send(tracker, "cS");
        CHECK(relay(tracker, "CZI") == "CZI");
        CHECK(tracker.releasable());
        CHECK_FALSE(tracker.stray_ready_possible());
    }

    TEST_CASE("COPY data written before CopyInResponse arrives") {
        ResponseTracker tracker;
        send(tracker, "Q");
        send(tracker, "ddc");
        CHECK(relay(tracker, "G") == "G");
        CHECK_FALSE(tracker.client_in_copy());
        CHECK(relay(tracker, "CZI") == "CZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("two COPY FROM STDIN in one query") {
        ResponseTracker tracker;
        send(tracker, "Q");
        CHECK(relay(tracker, "G") == "G");
        send(tracker, "dc");
        CHECK(relay(tracker, "CG") == "CG");
        CHECK(tracker.client_in_copy());
        send(tracker, "dc");
        CHECK(relay(tracker, "CTDCZI") == "CTDCZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("COPY TO STDOUT") {
        ResponseTracker tracker;
        SUBCASE("simple query") {
            send(tracker, "Q");
            CHECK(relay(tracker, "HddNdcCZI") == "HddNdcCZI");
        }
        SUBCASE("extended query") {
            send(tracker, "PBES");
            CHECK(relay(tracker, "12HddcCZI") == "12HddcCZI");
        }
        SUBCASE("failing midway") {
            send(tracker, "PBES");
            CHECK(relay(tracker, "12HddEZI") == "12HddEZI");
        }
        CHECK_FALSE(tracker.client_in_copy());
        CHECK(tracker.releasable());
    }

    TEST_CASE("COPY error in a simple query: linked until the client ends its copy stream") {
        // PostgreSQL answers ReadyForQuery before it has read the rest of the client's data
        // (reference.md 2.3); the late CopyData and CopyDone must reach this server.
        ResponseTracker tracker;
        send(tracker, "Q");
        CHECK(relay(tracker, "G") == "G");
        send(tracker, "d");
        CHECK(relay(tracker, "EZI") == "EZI");
        CHECK_FALSE(tracker.awaiting_replies());
        CHECK(tracker.client_in_copy());
        CHECK_FALSE(tracker.releasable());
        send(tracker, "dd");
        CHECK_FALSE(tracker.releasable());
        send(tracker, "c");
        CHECK(tracker.releasable());
    }

    TEST_CASE("a client that stops its copy stream at the error ends it with its next request") {
        ResponseTracker tracker;
        send(tracker, "Q");
        CHECK(relay(tracker, "GEZI") == "GEZI");
        CHECK(tracker.client_in_copy());
        send(tracker, "Q");
        CHECK_FALSE(tracker.client_in_copy());
        CHECK(relay(tracker, "CZI") == "CZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("CopyFail") {
        ResponseTracker tracker;
        SUBCASE("simple query") {
            send(tracker, "Q");
            CHECK(relay(tracker, "G") == "G");
            send(tracker, "df");
            CHECK(relay(tracker, "EZI") == "EZI");
            CHECK(tracker.releasable());
        }
        SUBCASE("extended query, the Execute written with Flush") {
            send(tracker, "PBEH");
            CHECK(relay(tracker, "12G") == "12G");
            send(tracker, "dfS");
            CHECK(relay(tracker, "EZI") == "EZI");
            CHECK(tracker.releasable());
        }
    }

    TEST_CASE("COPY error in the extended protocol: the Sync sent with the Execute is in doubt") {
        // The server ignored the first Sync if it failed at the data, but answers it if it
        // failed before reading anything (a BEFORE STATEMENT trigger, say): the replies look
        // alike. Assume the first, but stay linked until a later reply settles it.
        ResponseTracker tracker;
        send(tracker, "PBES");
        CHECK(relay(tracker, "12G") == "12G");
        send(tracker, "ddcS");

        SUBCASE("the server failed at the data") {
            CHECK(relay(tracker, "EZI") == "EZI");
            CHECK(tracker.stray_ready_possible());
            CHECK_FALSE(tracker.releasable());

            SUBCASE("the client's next request settles it") {
                send(tracker, "Q");
                CHECK(relay(tracker, "CZI") == "CZI");
            }
            SUBCASE("so does its error") {
                send(tracker, "Q");
                CHECK(relay(tracker, "EZI") == "EZI");
            }
            SUBCASE("an injected empty query settles it") {
                send(tracker, "Q", Route::skip);
                CHECK(relay(tracker, "IZI").empty());
            }
        }
        SUBCASE("the server failed before reading anything: two ReadyForQuery") {
            CHECK(relay(tracker, "EZIZI") == "EZIZI");
        }
        SUBCASE("the server failed before reading anything, then the client's next request") {
            send(tracker, "Q");
            CHECK(relay(tracker, "EZIZICZI") == "EZIZICZI");
        }
        CHECK_FALSE(tracker.stray_ready_possible());
        CHECK_FALSE(tracker.desynchronized());
        CHECK(tracker.releasable());
    }

    TEST_CASE("COPY failing before the client sent any data: the Sync sent with it is answered") {
        // e.g. COPY into a view: CopyInResponse, then the error, before reading anything.
        ResponseTracker tracker;
        send(tracker, "PBDPES");
        CHECK(relay(tracker, "12nGE") == "12nGE");
        CHECK_FALSE(tracker.stray_ready_possible());
        CHECK(relay(tracker, "ZI") == "ZI");
        CHECK(tracker.client_in_copy());
        send(tracker, "dc");
        send(tracker, "S");
        CHECK(relay(tracker, "ZI") == "ZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("a request pipelined behind a COPY FROM STDIN makes it fail") {
        ResponseTracker tracker;
        send(tracker, "BEH");
        CHECK(tracker.on_frontend(typed('B'), Route::forward, 5));
        send(tracker, "ES");
        CHECK(relay(tracker, "2G") == "2G");
        CHECK_FALSE(tracker.client_in_copy());
        // The Bind is read as copy input and fails the COPY; the Execute after it is skipped.
        const Disposition error = tracker.on_backend(typed('E'));
        CHECK(error.route == Route::forward);
        CHECK(std::vector(error.failed.begin(), error.failed.end()) ==
              std::vector<std::uint64_t>{5});
        CHECK(relay(tracker, "ZI") == "ZI");
        CHECK(tracker.releasable());
        CHECK_FALSE(tracker.desynchronized());
    }

    TEST_CASE("streaming replication: CopyBothResponse keeps the server until ReadyForQuery") {
        ResponseTracker tracker;
        send(tracker, "Q");
        CHECK(relay(tracker, "Wdd") == "Wdd");
        CHECK(tracker.client_in_copy());
        send(tracker, "ddc");
        CHECK_FALSE(tracker.client_in_copy());
        CHECK(relay(tracker, "dcTDC") == "dcTDC");
        CHECK_FALSE(tracker.releasable());
        CHECK(relay(tracker, "ZI") == "ZI");
        CHECK(tracker.releasable());

        SUBCASE("an error ends the copy both ways") {
            send(tracker, "Q");
            CHECK(relay(tracker, "WdE") == "WdE");
            CHECK_FALSE(tracker.client_in_copy());
            CHECK(relay(tracker, "ZI") == "ZI");
            CHECK(tracker.releasable());
        }
    }

    TEST_CASE("a failed COPY desynchronizes where the possible readings answer differently") {
        // Did the COPY fail at the client's data, or before reading anything? When the answer
        // decides whether a request is answered, the tracker cannot go on.
        ResponseTracker tracker;
        SUBCASE("a query written behind a simple query's COPY") {
            // Eaten as copy input, or answered after the ReadyForQuery of the failed one.
            send(tracker, "Q");
            CHECK(relay(tracker, "G") == "G");
            send(tracker, "dQ");
            CHECK(relay(tracker, "E") == "E");
        }
        SUBCASE("a request written before the client's next Sync, in the extended protocol") {
            // Skipped, or answered after the Sync sent with the Execute ended the skip.
            send(tracker, "BES");
            CHECK(relay(tracker, "2G") == "2G");
            send(tracker, "d");
            SUBCASE("written before the error arrived") {
                send(tracker, "cBS");
                CHECK(relay(tracker, "E") == "E");
            }
            SUBCASE("written after it") {
                CHECK(relay(tracker, "E") == "E");
                CHECK_FALSE(tracker.on_frontend(typed('B')));
            }
            SUBCASE("absorbed after it") {
                CHECK(relay(tracker, "E") == "E");
                CHECK(tracker.absorb(FakeReply::parse_complete).empty());
            }
        }
        CHECK(tracker.desynchronized());
    }

    TEST_CASE("late copy messages reaching a released server change nothing") {
        ResponseTracker tracker;
        send(tracker, "ddc");
        CHECK(tracker.releasable());
        CHECK_FALSE(tracker.awaiting_replies());
    }
}
