// ResponseTracker on the ordinary flows: simple and extended queries, pipelines, errors and the
// skip to Sync, FunctionCall, asynchronous messages and transaction blocks. COPY, injected
// requests and the model-based random tests have files of their own.

#include "wire/response_tracker.hpp"

#include "tests/support/response_tracker_harness.hpp"

#include <doctest/doctest.h>

#include <string_view>

namespace {

using namespace wire::test;
using wire::Disposition;
using wire::ResponseTracker;
using wire::Route;
using wire::be::TransactionStatus;

} // namespace

TEST_SUITE("wire.response_tracker") {
    TEST_CASE("a new tracker is releasable and idle") {
        const ResponseTracker tracker;
        CHECK(tracker.releasable());
        CHECK_FALSE(tracker.awaiting_replies());
        CHECK_FALSE(tracker.client_in_copy());
        CHECK_FALSE(tracker.desynchronized());
        CHECK(tracker.transaction_status() == TransactionStatus::idle);
    }

    TEST_CASE("simple query: replies up to ReadyForQuery, then releasable") {
        ResponseTracker tracker;
        send(tracker, "Q");
        CHECK(tracker.awaiting_replies());
        CHECK_FALSE(tracker.releasable());
        CHECK(relay(tracker, "TDD") == "TDD");
        CHECK_FALSE(tracker.releasable());
        CHECK(relay(tracker, "CZI") == "CZI");
        CHECK(tracker.releasable());
        CHECK_FALSE(tracker.awaiting_replies());
    }

    TEST_CASE("ready_owed counts the client's Syncs and Queries not answered yet") {
        ResponseTracker tracker;
        CHECK(tracker.ready_owed() == 0);
        send(tracker, "PBE");
        CHECK(tracker.ready_owed() == 0); // a batch without its Sync
        CHECK(tracker.inside_batch());
        send(tracker, "S");
        CHECK_FALSE(tracker.inside_batch());
        send(tracker, "Q");
        send(tracker, "Q", Route::skip); // the proxy's own: its ReadyForQuery is swallowed
        CHECK(tracker.ready_owed() == 2);
        CHECK(relay(tracker, "12CZI") == "12CZI");
        CHECK(tracker.ready_owed() == 1);
        CHECK(relay(tracker, "CZI") == "CZI");
        CHECK(tracker.ready_owed() == 0);
        CHECK_FALSE(tracker.inside_batch());
        send(tracker, "PBE");
        CHECK(relay(tracker, "12C") == "12C");
        CHECK(tracker.inside_batch()); // answered, but its Sync is still to come
    }

    TEST_CASE("multi-statement query: one ReadyForQuery after every statement") {
        ResponseTracker tracker;
        send(tracker, "Q");
        CHECK(relay(tracker, "CTDDCTCC") == "CTDDCTCC");
        CHECK_FALSE(tracker.releasable());
        CHECK(relay(tracker, "ZI") == "ZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("empty query: EmptyQueryResponse, then ReadyForQuery") {
        ResponseTracker tracker;
        send(tracker, "Q");
        CHECK(relay(tracker, "IZI") == "IZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("an error in a simple query ends it with ReadyForQuery and skips nothing after") {
        ResponseTracker tracker;
        send(tracker, "QQ");
        CHECK(relay(tracker, "TDEZI") == "TDEZI");
        CHECK_FALSE(tracker.releasable());
        CHECK(relay(tracker, "CZI") == "CZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("extended query: Parse, Bind, Execute, Sync") {
        ResponseTracker tracker;
        send(tracker, "PBES");
        CHECK(relay(tracker, "12DDC") == "12DDC");
        CHECK_FALSE(tracker.releasable());
        CHECK(relay(tracker, "ZI") == "ZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("Describe of a statement: ParameterDescription, then RowDescription or NoData") {
        ResponseTracker tracker;
        SUBCASE("RowDescription") {
            send(tracker, "PDSS");
            CHECK(relay(tracker, "1tTZI") == "1tTZI");
        }
        SUBCASE("NoData") {
            send(tracker, "PDSS");
            CHECK(relay(tracker, "1tnZI") == "1tnZI");
        }
        CHECK(tracker.releasable());
        CHECK_FALSE(tracker.desynchronized());
    }

    TEST_CASE("Describe of a portal: RowDescription or NoData, no ParameterDescription") {
        ResponseTracker tracker;
        SUBCASE("RowDescription") {
            send(tracker, "PBDPES");
            CHECK(relay(tracker, "12TDCZI") == "12TDCZI");
            CHECK(tracker.releasable());
        }
        SUBCASE("NoData") {
            send(tracker, "PBDPES");
            CHECK(relay(tracker, "12nCZI") == "12nCZI");
            CHECK(tracker.releasable());
        }
        SUBCASE("a ParameterDescription is a protocol violation") {
            send(tracker, "BDPS");
            CHECK(relay(tracker, "2t") == "2t");
            CHECK(tracker.desynchronized());
        }
    }

    TEST_CASE("Close of a statement or portal: CloseComplete") {
        ResponseTracker tracker;
        send(tracker, "CCS");
        CHECK(relay(tracker, "33ZI") == "33ZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("pipeline: released only after the last Sync's ReadyForQuery") {
        ResponseTracker tracker;
        send(tracker, "BESBESBES");
        CHECK(relay(tracker, "2DCZI") == "2DCZI");
        CHECK_FALSE(tracker.releasable());
        CHECK(relay(tracker, "2CZI") == "2CZI");
        CHECK_FALSE(tracker.releasable());
        CHECK(relay(tracker, "2DDCZI") == "2DDCZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("an error in a pipeline drops the expectations up to the next Sync") {
        ResponseTracker tracker;
        send(tracker, "PBESPBDPESPBES");
        CHECK(relay(tracker, "12CZI") == "12CZI");
        // The second Parse fails: its Bind, Describe and Execute are never answered.
        CHECK(relay(tracker, "EZI") == "EZI");
        CHECK_FALSE(tracker.desynchronized());
        CHECK_FALSE(tracker.releasable());
        CHECK(relay(tracker, "12DCZI") == "12DCZI");
        CHECK(tracker.releasable());

        SUBCASE("a reply to a skipped message is a protocol violation") {
            send(tracker, "PBES");
            CHECK(relay(tracker, "E2") == "E2");
            CHECK(tracker.desynchronized());
        }
    }

    TEST_CASE("after an error with no Sync written, the client's messages up to Sync are "
              "discarded") {
        ResponseTracker tracker;
        send(tracker, "PH");
        CHECK(relay(tracker, "E") == "E");
        CHECK_FALSE(tracker.awaiting_replies());
        CHECK_FALSE(tracker.releasable());
        CHECK_FALSE(tracker.on_frontend(typed('B')));
        CHECK_FALSE(tracker.on_frontend(typed('E')));
        send(tracker, "S");
        CHECK(relay(tracker, "ZI") == "ZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("an error while the Sync commits is not followed by skipping") {
        ResponseTracker tracker;
        send(tracker, "BESBES");
        CHECK(relay(tracker, "2C") == "2C");
        CHECK(relay(tracker, "EZI") == "EZI"); // e.g. a deferred constraint
        CHECK(relay(tracker, "2CZI") == "2CZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("Flush without Sync: replies arrive, but the batch stays open") {
        ResponseTracker tracker;
        send(tracker, "PBEH");
        CHECK(relay(tracker, "12DC") == "12DC");
        CHECK_FALSE(tracker.awaiting_replies());
        CHECK_FALSE(tracker.releasable());
        send(tracker, "S");
        CHECK(relay(tracker, "ZI") == "ZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("PortalSuspended ends an Execute with a row limit") {
        ResponseTracker tracker;
        send(tracker, "PBEH");
        CHECK(relay(tracker, "12DDs") == "12DDs");
        CHECK_FALSE(tracker.releasable());
        send(tracker, "EH");
        CHECK(relay(tracker, "DDs") == "DDs");
        send(tracker, "ES");
        CHECK(relay(tracker, "DCZI") == "DCZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("FunctionCall: FunctionCallResponse or ErrorResponse, then ReadyForQuery") {
        ResponseTracker tracker;
        send(tracker, "FF");
        CHECK(relay(tracker, "VZI") == "VZI");
        CHECK(relay(tracker, "NEZI") == "NEZI");
        CHECK(tracker.releasable());

        SUBCASE("a second FunctionCallResponse is a protocol violation") {
            send(tracker, "F");
            CHECK(relay(tracker, "VV") == "VV");
            CHECK(tracker.desynchronized());
        }
    }

    TEST_CASE("notices, notifications and ParameterStatus change nothing") {
        ResponseTracker tracker;
        SUBCASE("between transactions") {
            for (const char type : std::string_view("ANS")) {
                CAPTURE(type);
                const Disposition d = tracker.on_backend(typed(type));
                CHECK(d.route == Route::forward);
                CHECK(d.asynchronous);
                CHECK(tracker.releasable());
            }
        }
        SUBCASE("within a query") {
            send(tracker, "Q");
            CHECK(relay(tracker, "NTSDCA") == "NTSDCA");
            CHECK(tracker.awaiting_replies());
            CHECK(relay(tracker, "ZI") == "ZI");
            CHECK(tracker.releasable());
        }
        SUBCASE("within an open transaction") {
            send(tracker, "Q");
            CHECK(relay(tracker, "CZT") == "CZT");
            CHECK(tracker.on_backend(typed('A')).asynchronous);
            CHECK(tracker.transaction_status() == TransactionStatus::in_transaction);
            CHECK_FALSE(tracker.releasable());
        }
        SUBCASE("during COPY") {
            send(tracker, "Q");
            CHECK(relay(tracker, "GNS") == "GNS");
            send(tracker, "c");
            CHECK(relay(tracker, "CZI") == "CZI");
            CHECK(tracker.releasable());
        }
        CHECK_FALSE(tracker.desynchronized());
    }

    TEST_CASE("BEGIN: in a transaction block until COMMIT") {
        ResponseTracker tracker;
        send(tracker, "Q");
        CHECK(relay(tracker, "CZT") == "CZT");
        CHECK(tracker.transaction_status() == TransactionStatus::in_transaction);
        CHECK_FALSE(tracker.releasable());
        CHECK_FALSE(tracker.awaiting_replies());
        send(tracker, "PBES");
        CHECK(relay(tracker, "12CZT") == "12CZT");
        CHECK_FALSE(tracker.releasable());
        send(tracker, "Q");
        CHECK(relay(tracker, "CZI") == "CZI");
        CHECK(tracker.transaction_status() == TransactionStatus::idle);
        CHECK(tracker.releasable());
    }

    TEST_CASE("a failed transaction block reports E until it ends") {
        ResponseTracker tracker;
        send(tracker, "QQ");
        CHECK(relay(tracker, "CZTEZE") == "CZTEZE");
        CHECK(tracker.transaction_status() == TransactionStatus::failed);
        CHECK_FALSE(tracker.releasable());
        send(tracker, "Q");
        CHECK(relay(tracker, "CZI") == "CZI");
        CHECK(tracker.releasable());
    }

    TEST_CASE("messages the tracker does not follow are ignored") {
        ResponseTracker tracker;
        CHECK(tracker.on_frontend(typed('X')));
        CHECK(tracker.on_frontend(typed('p')));
        CHECK(tracker.releasable());
    }
}
