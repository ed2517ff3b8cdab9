#pragma once

// A model of PostgreSQL for wire::ResponseTracker's random tests: ModelServer answers client
// scripts as the server would, ScriptWriter writes random scripts, and Conversation plays one
// between a tracker and the model. In a namespace of its own: its names (Message, Kind, ...)
// are too common to share wire::test with.

#include "tests/support/response_tracker_harness.hpp"
#include "tests/support/wire_builders.hpp"
#include "wire/response_tracker.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace wire::test::tracker_model {

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

inline constexpr int never = -1;
inline constexpr int before_reading = -2;

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

} // namespace wire::test::tracker_model
