#include "wire/response_tracker.hpp"

#include "tests/support/wire_builders.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <new>
#include <random>
#include <set>
#include <string>
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

// A small model of how PostgreSQL reads a connection ("Message Flow"), to generate the replies
// to random client scripts. It knows the plan of every message in advance, as a real server
// knows its data; the tracker only ever sees type bytes.

enum class Kind : std::uint8_t {
    select,
    command,
    empty,
    error,
    copy_out,
    copy_out_error,
    copy_in,
    begin,
    commit,
};

constexpr int never = -1;
constexpr int before_reading = -2;

struct Statement {
    Kind kind = Kind::command;
    int rows = 0;         // DataRow or CopyData messages
    bool suspend = false; // Execute: stops at its row limit with PortalSuspended
    // copy_in: the client's CopyData count and whether it ends with CopyFail; the copy message
    // (counted from 0) the server fails on, or never, or before_reading (a trigger, say).
    int copy_data = 0;
    bool client_fails = false;
    int fail_at = never;
};

// A message the client writes, with what the server will make of it.
struct Message {
    char type = 'S';
    char kind = 'P'; // Describe
    Route route = Route::forward;
    bool absorbed = false; // answered by the proxy: the server never sees it
    std::uint64_t tag = 0;
    bool fails = false;     // Parse, Bind, Describe, FunctionCall; a Sync fails its commit
    bool no_data = false;   // Describe: NoData rather than RowDescription
    bool with_next = false; // an injected Parse, written together with the Bind needing it
    std::vector<Statement> statements = {}; // Query: one or more; Execute: one
};

struct Reply {
    char type = 'Z';
    char status = 'I';
    Route route = Route::forward;
};

class ModelServer {
public:
    explicit ModelServer(std::mt19937& rng) : rng_(rng) {}

    void receive(const Message& m) { input_.push_back(m); }
    [[nodiscard]] bool has_input() const { return !input_.empty(); }
    [[nodiscard]] bool releasable() const {
        return mode_ == Mode::normal && !batch_open_ && last_status_ == 'I';
    }

    // Reads the next message the client wrote, if any.
    void step() {
        if (input_.empty()) {
            return;
        }
        const Message m = input_.front();
        input_.pop_front();
        switch (mode_) {
        case Mode::normal:
            return read(m);
        case Mode::skipping:
            return skip(m);
        case Mode::copy_in:
            return read_copy(m);
        }
    }

    std::deque<Reply> wire;                 // replies not yet read by the proxy
    std::string expected;                   // what the client must receive, spelled as relay()
    std::multiset<std::uint64_t> no_effect; // tags of requests refused or skipped

private:
    enum class Mode { normal, skipping, copy_in };

    struct Copy {
        std::vector<Statement> statements; // the Query's, to resume after the COPY
        std::size_t next = 0;
        Route route = Route::forward;
        bool extended = false;
        int fail_at = never;
        int read = 0;
    };

    void read(const Message& m) {
        if (m.absorbed) {
            expected += m.type == 'P' ? '1' : '3';
            return;
        }
        switch (m.type) {
        case 'S':
            if (m.fails && batch_open_ && !in_block_) {
                error(m.route); // the implicit transaction fails to commit
            }
            return ready(m.route);
        case 'Q':
            return run(m.statements, 0, m.route);
        case 'F':
            if (m.fails || failed_block_) {
                error(m.route);
            } else {
                emit('V', m.route);
            }
            return ready(m.route);
        case 'P':
        case 'B':
        case 'D':
        case 'E':
        case 'C':
            batch_open_ = true;
            return extended(m);
        default:
            return; // Flush; copy messages outside COPY are dropped
        }
    }

    void skip(const Message& m) {
        if (m.absorbed) {
            return;
        }
        if (m.type == 'S') {
            mode_ = Mode::normal;
            return ready(m.route);
        }
        if (m.tag != 0) {
            no_effect.insert(m.tag);
        }
    }

    void extended(const Message& m) {
        if (m.fails || failed_block_) {
            if (m.tag != 0) {
                no_effect.insert(m.tag);
            }
            return fail_extended();
        }
        switch (m.type) {
        case 'P':
            return emit('1', m.route);
        case 'B':
            return emit('2', m.route);
        case 'C':
            return emit('3', m.route);
        case 'D':
            if (m.kind == 'S') {
                emit('t', m.route);
            }
            return emit(m.no_data ? 'n' : 'T', m.route);
        default:
            return execute(m.statements.front(), m.route);
        }
    }

    void execute(const Statement& s, Route route) {
        switch (s.kind) {
        case Kind::select:
            rows('D', s.rows, route);
            return emit(s.suspend ? 's' : 'C', route);
        case Kind::empty:
            return emit('I', route);
        case Kind::error:
            rows('D', s.rows, route);
            return fail_extended();
        case Kind::copy_out:
            copy_out(s.rows, route);
            return emit('C', route);
        case Kind::copy_out_error:
            emit('H', route);
            rows('d', s.rows, route);
            return fail_extended();
        case Kind::copy_in:
            emit('G', route);
            return start_copy_in({{}, 0, route, true, s.fail_at, 0});
        case Kind::command:
        case Kind::begin:
        case Kind::commit:
            return emit('C', route);
        }
    }

    void run(const std::vector<Statement>& statements, std::size_t from, Route route) {
        for (std::size_t i = from; i < statements.size(); ++i) {
            const Statement& s = statements[i];
            if (failed_block_ && s.kind != Kind::commit) {
                error(route);
                return finish(route);
            }
            if (rng_() % 6 == 0) {
                emit(rng_() % 2 == 0 ? 'N' : 'S', route);
            }
            switch (s.kind) {
            case Kind::select:
                emit('T', route);
                rows('D', s.rows, route);
                emit('C', route);
                break;
            case Kind::command:
                emit('C', route);
                break;
            case Kind::empty:
                emit('I', route);
                break;
            case Kind::error:
                error(route);
                return finish(route);
            case Kind::copy_out:
                copy_out(s.rows, route);
                emit('C', route);
                break;
            case Kind::copy_out_error:
                emit('H', route);
                rows('d', s.rows, route);
                error(route);
                return finish(route);
            case Kind::copy_in:
                emit('G', route);
                return start_copy_in({statements, i + 1, route, false, s.fail_at, 0});
            case Kind::begin:
                emit('C', route);
                in_block_ = true;
                break;
            case Kind::commit:
                emit('C', route);
                in_block_ = false;
                failed_block_ = false;
                break;
            }
        }
        finish(route);
    }

    void finish(Route route) {
        if (rng_() % 4 == 0) {
            emit('A', route);
        }
        ready(route);
    }

    void start_copy_in(Copy copy) {
        copy_ = std::move(copy);
        mode_ = Mode::copy_in;
        if (copy_.fail_at == before_reading) {
            fail_copy();
        }
    }

    void read_copy(const Message& m) {
        if (m.type == 'S' || m.type == 'H') {
            return; // ignored during COPY FROM STDIN
        }
        const bool fails_here = copy_.read == copy_.fail_at;
        if (m.type == 'd' && !fails_here) {
            ++copy_.read;
            return;
        }
        if (m.type == 'c' && !fails_here) {
            mode_ = Mode::normal;
            emit('C', copy_.route);
            if (!copy_.extended) {
                const Copy copy = copy_;
                run(copy.statements, copy.next, copy.route);
            }
            return;
        }
        if (m.tag != 0) {
            no_effect.insert(m.tag); // a request read as copy data is eaten
        }
        fail_copy();
    }

    void fail_copy() {
        mode_ = Mode::normal;
        if (copy_.extended) {
            return fail_extended();
        }
        error(copy_.route);
        finish(copy_.route);
    }

    // Every injected extended-query message comes with the client's request that needs it,
    // which the skip takes away: the error is the client's either way.
    void fail_extended() {
        error(Route::forward);
        mode_ = Mode::skipping;
    }

    void copy_out(int data, Route route) {
        emit('H', route);
        rows('d', data, route);
        emit('c', route);
    }

    void rows(char type, int count, Route route) {
        for (int i = 0; i < count; ++i) {
            emit(type, route);
        }
    }

    void emit(char type, Route route) {
        wire.push_back({type, '\0', route});
        if (route == Route::forward) {
            expected += type;
        }
    }

    void error(Route route) {
        emit('E', route);
        failed_block_ = in_block_;
    }

    void ready(Route route) {
        batch_open_ = false;
        last_status_ = !in_block_ ? 'I' : failed_block_ ? 'E' : 'T';
        wire.push_back({'Z', last_status_, route});
        if (route == Route::forward) {
            expected += 'Z';
            expected += last_status_;
        }
    }

    std::mt19937& rng_;
    std::deque<Message> input_;
    Mode mode_ = Mode::normal;
    Copy copy_;
    bool in_block_ = false;
    bool failed_block_ = false;
    bool batch_open_ = false;
    char last_status_ = 'I';
};

// Random client scripts made of whole units: a query with its copy streams, an extended-query
// batch (with injected and absorbed Parses), a function call, the proxy's own SET, a fake Close.
class ScriptWriter {
public:
    explicit ScriptWriter(std::mt19937& rng) : rng_(rng) {}

    std::vector<Message> unit() {
        std::vector<Message> out;
        switch (pick(9)) {
        case 0:
        case 1:
        case 2:
            query(out);
            break;
        case 3:
        case 4:
        case 5:
            batch(out);
            break;
        case 6:
            out.push_back({.type = 'F', .fails = chance(20)});
            break;
        case 7: {
            Message set{.type = 'Q', .route = Route::skip};
            set.statements.push_back({.kind = chance(10) ? Kind::error : Kind::command});
            out.push_back(set);
            break;
        }
        default:
            if (chance(50)) {
                out.push_back({.type = 'C', .absorbed = true});
            }
            out.push_back({.type = chance(50) ? 'S' : 'H'});
            break;
        }
        return out;
    }

private:
    void query(std::vector<Message>& out) {
        Message q{.type = 'Q'};
        if (chance(10)) {
            q.statements.push_back({.kind = Kind::empty});
        }
        for (unsigned n = 1 + pick(3); q.statements.size() < n;) {
            q.statements.push_back(statement(false));
        }
        out.push_back(q);
        for (const Statement& s : q.statements) {
            if (s.kind == Kind::copy_in) {
                copy_stream(s, out);
            }
        }
    }

    void batch(std::vector<Message>& out) {
        switch (pick(4)) {
        case 0:
            break;
        case 1:
            out.push_back({.type = 'P', .tag = ++tag_, .fails = chance(10)});
            break;
        case 2:
            out.push_back({.type = 'P', .absorbed = true});
            break;
        default:
            out.push_back({.type = 'P',
                           .route = Route::skip,
                           .tag = ++tag_,
                           .fails = chance(10),
                           .with_next = true});
            break;
        }
        out.push_back({.type = 'B', .fails = chance(5)});
        if (chance(30)) {
            out.push_back({.type = 'D',
                           .kind = chance(50) ? 'S' : 'P',
                           .fails = chance(5),
                           .no_data = chance(50)});
        }
        Message execute{.type = 'E'};
        execute.statements.push_back(statement(true));
        out.push_back(execute);
        out.push_back({.type = chance(70) ? 'S' : 'H'});
        if (execute.statements.front().kind == Kind::copy_in) {
            // As libpq's PQputCopyEnd: the copy stream, then a Sync of its own.
            copy_stream(execute.statements.front(), out);
            out.push_back({.type = 'S'});
        }
    }

    Statement statement(bool extended) {
        Statement s{.rows = static_cast<int>(pick(4))};
        switch (pick(extended ? 7 : 9)) {
        case 0:
            s.kind = Kind::select;
            s.suspend = extended && chance(20);
            break;
        case 1:
            s.kind = Kind::command;
            break;
        case 2:
            s.kind = Kind::error;
            break;
        case 3:
            s.kind = Kind::copy_out;
            break;
        case 4:
            s.kind = Kind::copy_out_error;
            break;
        case 5:
        case 6:
            s.kind = Kind::copy_in;
            s.copy_data = static_cast<int>(pick(3));
            s.client_fails = chance(15);
            s.fail_at = chance(50) ? never : static_cast<int>(pick(s.copy_data + 3)) - 2;
            break;
        case 7:
            s.kind = Kind::begin;
            break;
        default:
            s.kind = Kind::commit;
            break;
        }
        return s;
    }

    void copy_stream(const Statement& s, std::vector<Message>& out) {
        for (int i = 0; i < s.copy_data; ++i) {
            out.push_back({.type = 'd'});
        }
        out.push_back({.type = s.client_fails ? 'f' : 'c'});
    }

    unsigned pick(unsigned n) { return static_cast<unsigned>(rng_() % n); }
    bool chance(unsigned percent) { return pick(100) < percent; }

    std::mt19937& rng_;
    std::uint64_t tag_ = 0;
};

// Plays a script between the tracker and the model server, interleaving the client's writes,
// the server's reads and the proxy's reads at random, as a real connection may.
class Conversation {
public:
    explicit Conversation(std::mt19937& rng) : server_(rng) {}

    void write(Message m) {
        // The tracker's one blind spot (stray_ready_possible): if a COPY FROM STDIN fails
        // before reading the Sync written with it, a fake queued behind that Sync reaches the
        // client one ReadyForQuery early. Until such a script is settled, the client's Parse
        // and Close go to the server instead.
        if (m.type == 'E' && m.statements.front().kind == Kind::copy_in &&
            m.statements.front().fail_at == before_reading) {
            doubtful_copy_ = true;
        }
        if (m.absorbed && doubtful_copy_) {
            m.absorbed = false;
        }
        if (m.absorbed) {
            const auto fakes = tracker_.absorb(m.type == 'P' ? FakeReply::parse_complete
                                                             : FakeReply::close_complete);
            received_ += fakes_of(fakes);
        } else {
            const Bytes body = m.type == 'D' ? Bytes{std::byte(m.kind)} : Bytes{};
            if (!tracker_.on_frontend(typed(m.type, body), m.route, m.tag) && m.tag != 0) {
                failed_.insert(m.tag);
            }
        }
        server_.receive(m);
    }

    void server_reads() { server_.step(); }

    [[nodiscard]] bool replies_in_flight() const { return !server_.wire.empty(); }

    void proxy_reads() {
        const Reply reply = server_.wire.front();
        server_.wire.pop_front();
        const Bytes body = reply.type == 'Z' ? Bytes{std::byte(reply.status)} : Bytes{};
        const Disposition d = tracker_.on_backend(typed(reply.type, body));
        wrong_routes_ += d.route != reply.route;
        if (d.route == Route::forward) {
            received_ += reply.type;
            if (reply.type == 'Z') {
                received_ += reply.status;
            }
        }
        received_ += fakes_of(d.fakes);
        failed_.insert(d.failed.begin(), d.failed.end());
    }

    // Everything written is read and answered, and every answer read; then, if the tracker
    // cannot tell whether a ReadyForQuery is still coming, the empty query settles it.
    void settle() {
        drain();
        if (tracker_.stray_ready_possible()) {
            Message probe{.type = 'Q', .route = Route::skip};
            probe.statements.push_back({.kind = Kind::empty});
            write(probe);
            drain();
        }
        doubtful_copy_ = false;
    }

    void check() const {
        CHECK_FALSE(tracker_.desynchronized());
        CHECK(wrong_routes_ == 0);
        CHECK(received_ == server_.expected);
        CHECK(failed_ == server_.no_effect);
        CHECK(tracker_.releasable() == server_.releasable());
    }

    [[nodiscard]] bool releasable() const { return tracker_.releasable(); }

private:
    void drain() {
        while (server_.has_input() || replies_in_flight()) {
            server_.step();
            while (replies_in_flight()) {
                proxy_reads();
            }
        }
    }

    ResponseTracker tracker_;
    ModelServer server_;
    std::string received_;
    std::multiset<std::uint64_t> failed_;
    int wrong_routes_ = 0;
    bool doubtful_copy_ = false;
};

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
