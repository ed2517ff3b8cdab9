#include "proxy/prepared_statements.hpp"

#include "wire/be_error.hpp"
#include "wire/be_query.hpp"
#include "wire/fe_query.hpp"
#include "wire/statement_names.hpp"
#include "wire/writer.hpp"

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

namespace proxy {
namespace {

template <class Message>
std::vector<std::byte> encode(const Message& message) {
    wire::Writer writer;
    message.encode(writer);
    return writer.take();
}

void append(std::vector<std::byte>& out, std::string_view text) {
    const auto bytes = std::as_bytes(std::span(text));
    out.insert(out.end(), bytes.begin(), bytes.end());
    out.push_back(std::byte{0});
}

// The start of `bind` with its statement renamed: the length word (the whole message's, which
// may not all have arrived) changes by as much as the name, the bytes after the names are kept.
std::vector<std::byte> renamed_bind_start(const wire::Frame& start, const wire::fe::BindView& bind,
                                          std::string_view server_name) {
    std::uint32_t length = 0;
    for (std::size_t i = 1; i < 5; ++i)
        length = length << 8 | std::to_integer<std::uint32_t>(start.raw[i]);
    length = length - static_cast<std::uint32_t>(bind.statement.size()) +
             static_cast<std::uint32_t>(server_name.size());
    std::vector<std::byte> out{std::byte{'B'}};
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(static_cast<std::byte>(length >> shift & 0xff));
    append(out, bind.portal);
    append(out, server_name);
    out.insert(out.end(), bind.rest.begin(), bind.rest.end());
    return out;
}

wire::Frame frame_of(std::span<const std::byte> message) {
    return {static_cast<char>(message.front()), message.subspan(5), message};
}

// The first of the whole messages in `messages`, which pgmarina wrote itself.
std::span<const std::byte> first_message(std::span<const std::byte> messages) {
    std::size_t length = 0;
    for (std::size_t i = 1; i < 5; ++i)
        length = length << 8 | std::to_integer<std::size_t>(messages[i]);
    return messages.first(1 + length);
}

} // namespace

std::size_t message_hold(std::optional<char> type, std::size_t hold, std::size_t whole) noexcept {
    const bool renamed_whole =
        type && (*type == wire::fe::ParseView::type || *type == wire::fe::Describe::type ||
                 *type == wire::fe::Close::type);
    return renamed_whole ? std::max(hold, whole) : hold;
}

bool is_stale_plan_error(const wire::Frame& frame) {
    if (frame.type != wire::be::ErrorResponse::type) return false;
    const auto error = wire::be::ErrorResponse::parse(frame);
    return error && error->code() == "0A000" &&
           error->message() == "cached plan must not change result type";
}

bool PreparedStatements::on_client(const wire::Framer::Piece& piece, ServerConn& server,
                                   Writes out) {
    const char type = piece.frame.type;
    const bool extended = std::string_view("PBDECH").find(type) != std::string_view::npos;
    const bool opens_batch = !batch_open_;
    batch_open_ = extended || (batch_open_ && wire::fe::Sync::type != type &&
                               std::string_view("QF").find(type) == std::string_view::npos);
    retry_.on_client(piece);
    // A connection opened before a reload set max_prepared_statements: the client's names go
    // through untouched, and the server answers 26000 for the ones only the cache knew.
    if (server.statements().capacity() == 0) return false;
    const bool whole = piece.rest == 0;
    switch (type) {
    case wire::fe::ParseView::type:
        return whole && parse(piece, server, out);
    case wire::fe::BindView::type:
        return bind(piece, opens_batch, server, out);
    case wire::fe::Describe::type:
        return whole && describe(piece.frame, server, out);
    case wire::fe::Close::type:
        return whole && close(piece.frame, server, out);
    default:
        return false;
    }
}

// reference.md 3 step 5.
bool PreparedStatements::parse(const wire::Framer::Piece& piece, ServerConn& server, Writes out) {
    const auto view = wire::fe::ParseView::parse(piece.frame);
    if (!view || view->statement.empty()) return false;
    stats_.client_parses.fetch_add(1, std::memory_order_relaxed);
    if (client_.find(view->statement)) {
        duplicate(piece, view->statement, server, out);
        return true;
    }
    auto statement = registry_.intern(view->query_and_types);
    (void)client_.prepare(view->statement, statement);
    if (use(statement, server, out)) {
        send_parse(statement, wire::Route::forward,
                   Undo{Undo::Kind::parse, statement, std::string(view->statement)}, server, out);
    } else {
        absorb(wire::FakeReply::parse_complete,
               Undo{Undo::Kind::client_parse, statement, std::string(view->statement)}, server,
               out);
    }
    return true;
}

// A name the client prepared already. PostgreSQL answers 42P05 and skips to the Sync; the
// server does exactly that if it has the name too, so we give it the name for a moment: a Parse
// of an empty query under it (replies swallowed), then the client's Parse untouched. The error
// and the skipped requests then come from the server, in their place, and the tracker follows
// them as usual. The name is closed again after the Sync (due_closes()).
void PreparedStatements::duplicate(const wire::Framer::Piece& piece, std::string_view name,
                                   ServerConn& server, Writes out) {
    static constexpr std::array<std::byte, 3> empty_query_no_types{};
    send(encode(wire::fe::ParseView{name, empty_query_no_types}), wire::Route::skip,
         Undo{Undo::Kind::probe, nullptr, std::string(name)}, server, out);
    (void)server.tracker().on_frontend(piece.frame);
    out.server.push_back(asio::buffer(piece.bytes.data(), piece.bytes.size()));
    due_.push_back(DueClose{std::string(name), nullptr});
}

// reference.md 3 step 6; counted as PgBouncer's total_bind_count.
bool PreparedStatements::bind(const wire::Framer::Piece& piece, bool opens_batch,
                              ServerConn& server, Writes out) {
    const auto view = wire::fe::BindView::parse_start(piece.frame);
    if (!view || view->statement.empty()) return false;
    const auto* found = client_.find(view->statement);
    if (!found) return false;
    stats_.binds.fetch_add(1, std::memory_order_relaxed);
    const pool::StatementPtr statement = *found;
    if (use(statement, server, out)) {
        send_parse(statement, wire::Route::skip, Undo{Undo::Kind::parse, statement, {}}, server,
                   out);
    }
    const std::uint64_t tag =
        send(renamed_bind_start(piece.frame, *view, statement->server_name()), wire::Route::forward,
             Undo{Undo::Kind::use, statement, {}}, server, out);
    // send() left the renamed Bind last in messages_.
    retry_.on_bind(messages_.back(), piece.rest == 0, opens_batch, statement, tag);
    return true;
}

bool PreparedStatements::describe(const wire::Frame& frame, ServerConn& server, Writes out) {
    const auto describe = wire::fe::Describe::parse(frame);
    if (!describe || describe->kind != wire::fe::ObjectKind::statement || describe->name.empty())
        return false;
    const auto* found = client_.find(describe->name);
    if (!found) return false;
    const pool::StatementPtr statement = *found;
    if (use(statement, server, out)) {
        send_parse(statement, wire::Route::skip, Undo{Undo::Kind::parse, statement, {}}, server,
                   out);
    }
    send(encode(wire::fe::Describe::statement(statement->server_name())), wire::Route::forward,
         Undo{Undo::Kind::use, statement, {}}, server, out);
    return true;
}

// reference.md 3 step 7: the server keeps the statement for other clients.
bool PreparedStatements::close(const wire::Frame& frame, ServerConn& server, Writes out) {
    const auto close = wire::fe::Close::parse(frame);
    if (!close || close->kind != wire::fe::ObjectKind::statement || close->name.empty())
        return false;
    const auto* found = client_.find(close->name);
    if (!found) return false;
    const pool::StatementPtr statement = *found;
    std::string name(close->name);
    // Skipped after an error, the Close leaves the statement prepared, as on PostgreSQL.
    if (!server.tracker().skipping_to_sync()) client_.close(name);
    absorb(wire::FakeReply::close_complete,
           Undo{Undo::Kind::client_close, statement, std::move(name)}, server, out);
    return true;
}

bool PreparedStatements::use(const pool::StatementPtr& statement, ServerConn& server, Writes out) {
    std::vector<std::byte> closes;
    const bool prepare = use(statement, server, closes);
    if (!closes.empty())
        out.server.push_back(asio::buffer(messages_.emplace_back(std::move(closes))));
    return prepare;
}

bool PreparedStatements::use(const pool::StatementPtr& statement, ServerConn& server,
                             std::vector<std::byte>& buffer) {
    // Closed after a stale plan error but not yet on the wire: the Close must come before the
    // Parse that prepares it again, or the server would answer 42P05.
    const auto due = std::ranges::find(due_, statement, &DueClose::statement);
    if (due != due_.end()) {
        due_.erase(due);
        send_close(statement->server_name(), statement, server, buffer, buffer.size());
    }
    auto use = server.statements().use(statement);
    for (auto& evicted : use.close)
        send_close(evicted->server_name(), evicted, server, buffer, buffer.size());
    return use.prepare;
}

// The request StalePlanRetry kept, as it was first written, after its statement has been
// prepared again under the same server name: the Close of the stale one comes first, so the
// name is free. The Bind is tagged as before, so that a second stale plan error drops the
// statement again, and reaches the client.
void PreparedStatements::replay(ServerConn& server) {
    const auto request = retry_.take();
    if (use(request.statement, server, closes_)) {
        stats_.server_parses.fetch_add(1, std::memory_order_relaxed);
        const auto parse = encode(wire::fe::ParseView{request.statement->server_name(),
                                                      request.statement->query_and_types()});
        track(parse, wire::Route::skip, Undo{Undo::Kind::parse, request.statement, {}}, server);
        closes_.insert(closes_.end(), parse.begin(), parse.end());
    }
    bool bind = true;
    for (auto rest = request.messages; !rest.empty();) {
        const auto message = first_message(rest);
        rest = rest.subspan(message.size());
        std::optional<Undo> undo;
        if (std::exchange(bind, false)) undo = Undo{Undo::Kind::use, request.statement, {}};
        track(message, wire::Route::forward, std::move(undo), server);
        closes_.insert(closes_.end(), message.begin(), message.end());
    }
}

void PreparedStatements::send_parse(const pool::StatementPtr& statement, wire::Route route,
                                    Undo undo, ServerConn& server, Writes out) {
    stats_.server_parses.fetch_add(1, std::memory_order_relaxed);
    send(encode(wire::fe::ParseView{statement->server_name(), statement->query_and_types()}), route,
         std::move(undo), server, out);
}

// Close(S) with its reply swallowed (reference.md 3 step 4), appended to `buffer`, whose
// messages the tracker is told about from `at` on.
void PreparedStatements::send_close(std::string_view server_name, pool::StatementPtr statement,
                                    ServerConn& server, std::vector<std::byte>& buffer,
                                    std::size_t at) {
    const auto message = encode(wire::fe::Close::statement(server_name));
    buffer.insert(buffer.end(), message.begin(), message.end());
    const auto raw = std::span(buffer).subspan(at, message.size());
    // A probe's name has nothing to undo: the server has it or not, nobody else uses it.
    const std::uint64_t tag =
        statement ? remember(Undo{Undo::Kind::close, std::move(statement), {}}) : 0;
    if (!server.tracker().on_frontend(frame_of(raw), wire::Route::skip, tag) && tag != 0)
        failed(tag, server);
}

void PreparedStatements::absorb(wire::FakeReply reply, Undo undo, ServerConn& server, Writes out) {
    auto& tracker = server.tracker();
    if (tracker.skipping_to_sync()) {
        (void)tracker.absorb(reply);
        if (undo.kind == Undo::Kind::client_parse) failed(remember(std::move(undo)), server);
        return;
    }
    for (const auto fake : tracker.absorb(reply, remember(std::move(undo))))
        out.client.push_back(fake);
}

std::uint64_t PreparedStatements::send(std::vector<std::byte> message, wire::Route route,
                                       std::optional<Undo> undo, ServerConn& server, Writes out) {
    const auto& stored = messages_.emplace_back(std::move(message));
    const std::uint64_t tag = track(stored, route, std::move(undo), server);
    out.server.push_back(asio::buffer(stored));
    return tag;
}

std::uint64_t PreparedStatements::track(std::span<const std::byte> message, wire::Route route,
                                        std::optional<Undo> undo, ServerConn& server) {
    const std::uint64_t tag = undo ? remember(std::move(*undo)) : 0;
    if (!server.tracker().on_frontend(frame_of(message), route, tag) && tag != 0)
        failed(tag, server);
    return tag;
}

std::uint64_t PreparedStatements::remember(Undo undo) {
    const std::uint64_t tag = next_tag_++;
    tags_.emplace(tag, std::move(undo));
    return tag;
}

void PreparedStatements::failed(std::uint64_t tag, ServerConn& server) {
    const auto it = tags_.find(tag);
    if (it == tags_.end()) return;
    Undo undo = std::move(it->second);
    tags_.erase(it);
    const auto unmap = [&] {
        const auto* mapped = client_.find(undo.client_name);
        if (mapped && *mapped == undo.statement) client_.close(undo.client_name);
    };
    switch (undo.kind) {
    case Undo::Kind::parse:
        server.statements().parse_failed(undo.statement->id());
        if (!undo.client_name.empty()) unmap();
        break;
    case Undo::Kind::client_parse:
        unmap();
        break;
    case Undo::Kind::close:
        server.statements().close_failed(std::move(undo.statement));
        break;
    case Undo::Kind::client_close:
        if (!client_.find(undo.client_name))
            (void)client_.prepare(undo.client_name, std::move(undo.statement));
        break;
    case Undo::Kind::probe:
        // The server never had the name from us (or had it already: a client naming its own
        // statement PGMARINA_<n>); either way it is not ours to close.
        std::erase_if(due_, [&](const DueClose& due) {
            return !due.statement && due.server_name == undo.client_name;
        });
        break;
    case Undo::Kind::use:
        break;
    }
}

bool PreparedStatements::on_server(const wire::Frame& frame, bool whole,
                                   const wire::Disposition& disposition, ServerConn& server) {
    bool withhold = false;
    if (!disposition.failed.empty() && whole && is_stale_plan_error(frame)) {
        // The first failed request is the one the error answers. Its statement is prepared
        // afresh at its next use, once the stale one has been closed (pool::ServerStatements::
        // remove; Odyssey's server_drop_on_cached_plan_error drops the whole connection).
        const std::uint64_t tag = disposition.failed.front();
        const auto it = tags_.find(tag);
        if (it != tags_.end() && it->second.kind == Undo::Kind::use) {
            if (auto stale = server.statements().remove(it->second.statement->id()))
                due_.push_back(DueClose{stale->server_name(), std::move(stale)});
        }
        // The last ReadyForQuery came before the failed Bind: it says whether a transaction
        // block was open when the Bind's batch began.
        withhold = server.tracker().transaction_status() == wire::be::TransactionStatus::idle &&
                   retry_.on_stale_plan(tag);
    }
    if (frame.type == wire::be::ReadyForQuery::type) withhold = retry_.on_ready();
    for (const std::uint64_t tag : disposition.failed)
        failed(tag, server);
    if (whole && frame.type == wire::be::CommandComplete::type) {
        const auto complete = wire::be::CommandComplete::parse(frame);
        if (complete && deallocates_all(complete->tag)) {
            // reference.md 3 step 8. Whatever we meant to close is gone too.
            server.statements().clear();
            due_.clear();
            if (disposition.route == wire::Route::forward) client_.clear();
        }
    }
    // Every request written has been answered, so no tag can fail any more: a transaction of a
    // million Binds must not keep a million tags until its server is released.
    if (!server.tracker().awaiting_replies()) tags_.clear();
    return withhold;
}

std::span<const std::byte> PreparedStatements::due_closes(ServerConn& server) {
    closes_.clear();
    if (retry_.due()) replay(server);
    const auto& tracker = server.tracker();
    if (due_.empty() || batch_open_ || tracker.skipping_to_sync() || tracker.client_in_copy())
        return closes_;
    for (auto& due : due_)
        send_close(due.server_name, std::move(due.statement), server, closes_, closes_.size());
    due_.clear();
    const std::size_t sync_at = closes_.size();
    const auto sync = encode(wire::fe::Sync{});
    closes_.insert(closes_.end(), sync.begin(), sync.end());
    (void)server.tracker().on_frontend(frame_of(std::span(closes_).subspan(sync_at)),
                                       wire::Route::skip);
    return closes_;
}

void PreparedStatements::on_released(ServerConn& server) {
    if (server.statements().capacity() > 0) server.statements().unpin_all();
    tags_.clear();
    retry_.reset();
}

} // namespace proxy
