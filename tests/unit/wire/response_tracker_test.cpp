#include "wire/response_tracker.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>
#include <vector>

// Counts the allocations made through the global operator new, for the steady-state test. This
// replaces operator new for the whole test binary; all it adds is the counter.
namespace {
std::size_t allocations = 0;
} // namespace

void* operator new(std::size_t size) {
    ++allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}

void operator delete(void* p) noexcept {
    std::free(p);
}

void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

using namespace wire::test;
using wire::Disposition;
using wire::FakeReply;
using wire::Frame;
using wire::ResponseTracker;
using wire::Route;
using wire::be::TransactionStatus;

Frame typed(char type, std::span<const std::byte> body = {}) {
    return Frame{type, body, {}};
}

// The messages `types` written to the server in order; 'D' takes the next character as its
// kind ('S' or 'P'). Each must be one the server answers or reads (not skipping to Sync).
void send(ResponseTracker& tracker, std::string_view types, Route route = Route::forward) {
    for (std::size_t i = 0; i < types.size(); ++i) {
        const char type = types[i];
        const Bytes body = type == 'D' ? raw(types.substr(++i, 1)) : Bytes{};
        CAPTURE(type);
        CHECK(tracker.on_frontend(typed(type, body), route));
    }
}

// What the client receives when the server sends `types`, 'Z' taking the next character as its
// status: the messages forwarded and the fakes, in order, spelled the same way.
std::string relay(ResponseTracker& tracker, std::string_view types) {
    std::string received;
    for (std::size_t i = 0; i < types.size(); ++i) {
        std::string token(1, types[i]);
        if (types[i] == 'Z' && i + 1 < types.size()) {
            token += types[++i];
        }
        const Bytes body = raw(std::string_view(token).substr(1));
        const Disposition disposition = tracker.on_backend(typed(token.front(), body));
        if (disposition.route == Route::forward) {
            received += token;
        }
        for (const FakeReply fake : disposition.fakes) {
            received += static_cast<char>(fake);
        }
    }
    return received;
}

std::string fakes_of(std::span<const FakeReply> fakes) {
    std::string out;
    for (const FakeReply fake : fakes) {
        out += static_cast<char>(fake);
    }
    return out;
}

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
        send(tracker, "BEHBES");
        CHECK(relay(tracker, "2G") == "2G");
        CHECK_FALSE(tracker.client_in_copy());
        // The Bind is read as copy input and fails the COPY; the Execute after it is skipped.
        CHECK(relay(tracker, "EZI") == "EZI");
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

    TEST_CASE("an ambiguous failed COPY desynchronizes rather than guessing") {
        // Did the COPY fail at the client's data, or before reading it, so that the Query
        // written behind it is answered? The replies cannot tell.
        ResponseTracker tracker;
        send(tracker, "Q");
        CHECK(relay(tracker, "G") == "G");
        send(tracker, "d");
        send(tracker, "Q");
        CHECK(relay(tracker, "E") == "E");
        CHECK(tracker.desynchronized());
    }

    TEST_CASE("late copy messages reaching a released server change nothing") {
        ResponseTracker tracker;
        send(tracker, "ddc");
        CHECK(tracker.releasable());
        CHECK_FALSE(tracker.awaiting_replies());
    }

    TEST_CASE("messages the tracker does not follow are ignored") {
        ResponseTracker tracker;
        CHECK(tracker.on_frontend(typed('X')));
        CHECK(tracker.on_frontend(typed('p')));
        CHECK(tracker.releasable());
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
