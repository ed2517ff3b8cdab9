#include "proxy/client_session_impl.hpp"

namespace proxy {
namespace {

// Messages up to this size are held whole (the tracker and the parameter cache read them);
// longer ones stream through in pieces, so a 200 MB row costs no 200 MB buffer.
constexpr std::size_t hold_limit = 64 * 1024;

// The messages a client may send once started (protocol docs, "Message Formats").
bool is_frontend_message(char type) {
    return std::string_view("QPBDECSHFdcfX").find(type) != std::string_view::npos;
}

bool is_copy_message(char type) {
    return type == 'd' || type == 'c' || type == 'f';
}

// A message type for an error text: a printable character quoted, anything else (a NUL byte
// from a client that sends a second StartupMessage) as its number, so that the text holds no
// byte that would end the ErrorResponse field early.
std::string describe_type(char type) {
    const auto code = static_cast<unsigned char>(type);
    if (code >= 0x20 && code < 0x7f) return std::string("'") + type + "'";
    return "byte " + std::to_string(code);
}

std::span<const std::byte> fake_reply_bytes(wire::FakeReply reply) {
    static constexpr std::array<std::byte, 5> parse_complete = {
        std::byte{'1'}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{4}};
    static constexpr std::array<std::byte, 5> close_complete = {
        std::byte{'3'}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{4}};
    return reply == wire::FakeReply::parse_complete ? parse_complete : close_complete;
}

} // namespace

asio::awaitable<void> ClientSession::run() {
    auto logged_in = co_await within(config_->settings.client_login_timeout, log_in());
    if (!logged_in) {
        co_await fail("08P01", "client_login_timeout");
    } else if (*logged_in) {
        if (config_->settings.log_connections) log::info(name(), " login attempt: ok");
        if (console_) {
            co_await serve_console();
        } else {
            // What the client sent behind its StartupMessage, in the same packet, is already
            // in the framer: the first step forwards it before reading (as for a request
            // held back for the router) instead of waiting for bytes that may never come.
            held_ = !framer_.buffered().empty();
            bool going = true;
            while (going)
                going = co_await step();
        }
    }
    finish();
}

asio::awaitable<bool> ClientSession::step() {
    if (!server_) {
        // A graceful shutdown closes a client at the end of its transaction (shutdown.hpp),
        // unless it already sent more.
        if (served_ && runtime_.closing_clients.load(std::memory_order_relaxed) && !held_ &&
            framer_.buffered().empty() && !client_.has_buffered_input()) {
            co_await fail("57P01", "pgmarina is shutting down");
            co_return false;
        }
        // A request held back for the router (see hold_for_route), or sent behind the
        // StartupMessage, is already buffered.
        if (!held_ && !co_await read_client(config_->settings.client_idle_timeout)) {
            co_return false;
        }
        co_return co_await forward_client();
    }
    if (held_ && !server_->tracker().awaiting_replies()) co_return co_await forward_client();
    // Linked, either side may speak first: the server its replies, a notification or a
    // FATAL; the client the rest of a long message, its next pipelined request, or EOF,
    // which must close the server at once rather than after its query (PgBouncer:
    // "client disconnect while server was not ready"). GCC 12 miscompiles a co_await in a
    // switch condition (SIGILL on resume), hence ifs.
    const Ready ready = co_await wait_either();
    if (ready == Ready::timeout) {
        if (server_->tracker().awaiting_replies()) {
            co_await fail("57014", "query_timeout");
        } else {
            co_await fail("25P03", "idle transaction timeout");
        }
        co_return false;
    }
    if (ready == Ready::client) {
        if (!co_await read_client(Duration{0})) co_return false;
        co_return co_await forward_client();
    }
    if (!co_await read_server()) co_return co_await lose_server();
    co_return co_await forward_server();
}

asio::awaitable<ClientSession::Ready> ClientSession::wait_either() {
    // What TLS already took in is not seen by a wait on the socket.
    if (client_.has_buffered_input()) co_return Ready::client;
    if (server_->stream().has_buffered_input()) co_return Ready::server;
    // While a request is held, the client's next request waits in the framer for the
    // server's last reply.
    co_return co_await readable_.wait(held_ ? nullptr : &client_.socket(),
                                      server_->stream().socket(), deadline());
}

Duration ClientSession::deadline() const {
    const Settings& settings = config_->settings;
    const auto& tracker = server_->tracker();
    if (tracker.awaiting_replies()) {
        if (settings.query_timeout.count() <= 0) return Duration{0};
        const auto left = std::chrono::duration_cast<Duration>(
            query_started_ + settings.query_timeout - pool::Clock::now());
        return std::max(left, Duration{1});
    }
    if (tracker.transaction_status() == wire::be::TransactionStatus::idle) return Duration{0};
    return settings.idle_transaction_timeout;
}

asio::awaitable<bool> ClientSession::read_client(Duration timeout) {
    if (!server_ && framer_.buffered().empty() && !client_.has_buffered_input()) {
        // Between transactions a client may idle for hours: it holds no receive buffer
        // until it sends something (PgBouncer's clients neither). Waiting for readiness
        // costs one epoll_ctl, as many system calls as the read that would find nothing.
        framer_.release_if_empty();
        auto ready =
            co_await within(timeout, client_.socket().async_wait(ClientSocket::wait_read, nothrow));
        if (!ready) {
            co_await fail("08P01", "client_idle_timeout");
            co_return false;
        }
        if (woken_for_shutdown(std::get<0>(*ready))) {
            co_await fail("57P01", "pgmarina is shutting down");
            co_return false;
        }
        timeout = Duration{0};
    }
    const auto space = framer_.prepare(read_chunk);
    auto read =
        co_await within(timeout, client_.read_some(asio::buffer(space.data(), space.size())));
    if (!read) {
        co_await fail("08P01", "client_idle_timeout");
        co_return false;
    }
    auto [ec, n] = *read;
    if (woken_for_shutdown(ec)) {
        // One in the middle of sending a message gets to finish it.
        if (!framer_.buffered().empty()) co_return co_await read_client(timeout);
        co_await fail("57P01", "pgmarina is shutting down");
        co_return false;
    }
    if (ec) {
        end_reason_ = "client unexpected eof";
        co_return false;
    }
    framer_.commit(n);
    activity_->received(n);
    co_return true;
}

bool ClientSession::woken_for_shutdown(const boost::system::error_code& ec) const {
    return ec == asio::error::operation_aborted && !server_ &&
           runtime_.closing_clients.load(std::memory_order_relaxed);
}

asio::awaitable<bool> ClientSession::read_server() {
    auto& server = *server_;
    const auto space = server.framer().prepare(read_chunk);
    auto [ec, n] = co_await server.stream().read_some(asio::buffer(space.data(), space.size()));
    if (ec) co_return false;
    server.framer().commit(n);
    co_return true;
}

asio::awaitable<bool> ClientSession::forward_client() {
    out_.clear();
    fakes_.clear();
    held_ = false;
    if (prepared_) prepared_->begin_step();
    for (;;) {
        if (server_ && hold_for_route()) {
            held_ = true;
            break;
        }
        // An unknown type is refused as soon as its byte arrives, as PostgreSQL does, not
        // once the length word's worth of body has come: a second StartupMessage read as a
        // typed message announces kilobytes that never come.
        if (const auto type = framer_.next_type(); type && !is_frontend_message(*type)) {
            co_await fail("08P01", "unsupported frontend message type " + describe_type(*type));
            co_return false;
        }
        const std::size_t hold = prepared_ ? message_hold(framer_.next_type(), hold_limit,
                                                          config_->settings.max_packet_size.bytes)
                                           : hold_limit;
        auto piece = framer_.next_piece(hold);
        if (!piece) {
            co_await fail("08P01", "invalid client message: " + piece.error().message());
            co_return false;
        }
        if (!*piece) break;
        if ((*piece)->continuation) {
            if (!dropping_)
                out_.push_back(asio::buffer((*piece)->bytes.data(), (*piece)->bytes.size()));
            if ((*piece)->rest == 0) dropping_ = false;
            continue;
        }
        const wire::Frame& frame = (*piece)->frame;
        if (!is_frontend_message(frame.type)) {
            co_await fail("08P01",
                          "unsupported frontend message type " + describe_type(frame.type));
            co_return false;
        }
        if (frame.type == 'X') {
            end_reason_ = "client close request";
            co_return false;
        }
        if (block_lost_) {
            if (frame.type != wire::fe::Query::type) {
                co_await fail("08006", "server connection lost inside a transaction block");
                co_return false;
            }
            answer_lost_block(frame);
            continue;
        }
        if (skipping_to_sync_) {
            // The rest of a batch whose server was lost: PostgreSQL would skip it too.
            if (frame.type == 'S') {
                skipping_to_sync_ = false;
                std::ranges::copy(ready_idle(), std::back_inserter(lost_replies_));
            }
            dropping_ = (*piece)->rest > 0;
            continue;
        }
        if (!server_) {
            // CopyData after the server went back to the pool (its COPY failed, and the
            // client had more on the way) belongs to no transaction: drop it (PgBouncer
            // #1471, "late COPY messages causing pool exhaustion").
            if (is_copy_message(frame.type)) {
                dropping_ = (*piece)->rest > 0;
                continue;
            }
            if (!co_await link(frame)) co_return false;
        }
        auto& tracker = server_->tracker();
        if (!tracker.awaiting_replies()) {
            query_started_ = pool::Clock::now();
            activity_->request(query_started_);
        }
        if (prepared_ && prepared_->on_client(**piece, *server_, {out_, fakes_})) continue;
        tracker.on_frontend(frame);
        out_.push_back(asio::buffer((*piece)->bytes.data(), (*piece)->bytes.size()));
    }
    if (server_ && prepared_) {
        const auto closes = prepared_->due_closes(*server_);
        if (!closes.empty()) out_.push_back(asio::buffer(closes.data(), closes.size()));
    }
    if (server_ && !out_.empty()) {
        auto [ec, n] = co_await server_->stream().write(out_);
        if (ec) co_return co_await lose_server();
    }
    // Replies made up for requests the server never saw, when nothing was owed before them.
    std::vector<std::byte> replies = std::move(lost_replies_);
    lost_replies_.clear();
    for (const auto fake : fakes_)
        std::ranges::copy(fake_reply_bytes(fake), std::back_inserter(replies));
    if (!replies.empty() && !co_await write_all(client_, replies)) {
        end_reason_ = "client unexpected eof";
        co_return false;
    }
    activity_->sent(replies.size());
    if (prepared_) activity_->prepared_statements(prepared_->size());
    co_return settle();
}

asio::awaitable<bool> ClientSession::link(const wire::Frame& first) {
    activity_->waiting(pool::Clock::now());
    // PAUSE, KILL and SUSPEND hold new transactions until RESUME (PgBouncer's semantics).
    // Tested here, not in a coroutine, so an unpaused transaction allocates no frame.
    if (runtime_.switches.paused(startup_.database)) {
        co_await poll_until([this] { return !runtime_.switches.paused(startup_.database); });
    }
    linked_read_only_ = router_->routes_reads() && mode_ != PoolMode::session &&
                        classify(first).target == routing::Target::replica_ok;
    if (!co_await acquire_routed()) co_return false;
    activity_->linked(server_->id(), pool::Clock::now());
    const auto& welcome = server_->welcome();
    cancel_target_->link(ServerLink{pool_,
                                    server_->id(),
                                    waiter(),
                                    server_->endpoint(),
                                    welcome.process_id,
                                    {welcome.secret_key.begin(), welcome.secret_key.end()}});
    server_dirty_ = sync_sets_unreported(startup_.parameters, server_->parameters());
    const auto sync = build_sync_query(startup_.parameters, server_->parameters());
    if (!sync.empty()) {
        wire::Writer writer;
        wire::fe::Query{sync}.encode(writer);
        sync_query_ = writer.take();
        const wire::Frame frame{'Q', std::span(sync_query_).subspan(5), sync_query_};
        server_->tracker().on_frontend(frame, wire::Route::skip, ++sync_tag_);
        out_.push_back(asio::buffer(sync_query_));
    }
    co_return true;
}

routing::Classification ClientSession::classify(const wire::Frame& first) const {
    const auto on = [this](std::string_view name) {
        return startup_.parameters.get(name).value_or("") == "on";
    };
    const ClientTraits client{
        .default_transaction_read_only = on("default_transaction_read_only"),
        .standard_conforming_strings =
            startup_.parameters.get("standard_conforming_strings").value_or("on") == "on",
    };
    const auto& database = config_->databases.find(startup_.database)->second;
    return classify_transaction(first, client, database.read_only_functions,
                                prepared_ ? &*prepared_ : nullptr);
}

bool ClientSession::hold_for_route() const {
    if (linked_role_ != routing::Role::replica || !server_->tracker().awaiting_replies()) {
        return false;
    }
    const auto type = framer_.next_type();
    if (type != 'Q' && type != 'P') return false;
    const auto next = wire::decode_frame(framer_.buffered(), framer_.phase(), framer_.limits());
    return next && next->has_value() && classify(**next).target != routing::Target::replica_ok;
}

asio::awaitable<bool> ClientSession::forward_server() {
    out_.clear();
    auto& server = *server_;
    auto& tracker = server.tracker();
    bool transaction_refused = false;
    while (!transaction_refused) {
        auto piece = server.framer().next_piece(hold_limit);
        if (!piece) {
            co_await fail("08P01", "server conn crashed? (invalid message from server)");
            co_return false;
        }
        if (!*piece) break;
        const auto bytes = asio::buffer((*piece)->bytes.data(), (*piece)->bytes.size());
        if ((*piece)->continuation) {
            if (long_server_message_forwarded_) out_.push_back(bytes);
            server_message_open_ = long_server_message_forwarded_ && (*piece)->rest > 0;
            continue;
        }
        const wire::Frame& frame = (*piece)->frame;
        if (frame.type == wire::be::ErrorResponse::type && !tracker.awaiting_replies()) {
            // Nobody asked: PostgreSQL is ending the session (pg_terminate_backend,
            // idle_in_transaction_session_timeout, shutdown) with a FATAL before it closes.
            // The client gets PostgreSQL's own words, then the session ends.
            out_.push_back(bytes);
            co_await client_.write(out_);
            end_reason_ = "server conn crashed? (FATAL from server)";
            co_return false;
        }
        const auto disposition = tracker.on_backend(frame);
        if (tracker.desynchronized()) {
            co_await fail("08P01", "server conn out of sync");
            co_return false;
        }
        if ((*piece)->rest == 0) observe(frame, disposition.route);
        const bool withheld =
            prepared_ && prepared_->on_server(frame, (*piece)->rest == 0, disposition, server);
        if (std::ranges::find(disposition.failed, sync_tag_) != disposition.failed.end()) {
            co_await fail("08P01", "invalid server parameter");
            co_return false;
        }
        // Statement pooling: the ReadyForQuery that opens a transaction block is replaced by
        // the error, so that the client's BEGIN itself fails (libpq reports the last result
        // before ReadyForQuery).
        transaction_refused = mode_ == PoolMode::statement &&
                              frame.type == wire::be::ReadyForQuery::type &&
                              tracker.transaction_status() != wire::be::TransactionStatus::idle;
        long_server_message_forwarded_ =
            disposition.route == wire::Route::forward && !transaction_refused && !withheld;
        if (long_server_message_forwarded_ && frame.type == wire::be::ReadyForQuery::type) {
            activity_->ready(tracker.transaction_status(), pool::Clock::now());
        }
        if (long_server_message_forwarded_) out_.push_back(bytes);
        server_message_open_ = long_server_message_forwarded_ && (*piece)->rest > 0;
        for (const auto fake : disposition.fakes) {
            const auto reply = fake_reply_bytes(fake);
            out_.push_back(asio::buffer(reply.data(), reply.size()));
        }
    }
    if (!out_.empty()) {
        auto [ec, n] = co_await client_.write(out_);
        if (ec) {
            end_reason_ = "client unexpected eof";
            co_return false;
        }
        activity_->sent(n);
    }
    if (transaction_refused) {
        co_await fail("0A000", "transaction blocks not allowed in statement pooling mode");
        co_return false;
    }
    if (const auto closes = prepared_ ? prepared_->due_closes(server) : std::span<std::byte>();
        !closes.empty() && !co_await write_all(server.stream(), closes)) {
        co_await fail("08006", "server conn crashed?");
        co_return false;
    }
    if (tracker.stray_ready_possible() && !tracker.awaiting_replies()) {
        co_await probe_stray_ready();
    }
    co_return settle();
}

void ClientSession::observe(const wire::Frame& frame, wire::Route route) {
    if (frame.type == wire::be::ParameterStatus::type) {
        if (auto status = wire::be::ParameterStatus::parse(frame)) {
            learn_parameter_status(server_->parameters(), *status);
            learn_parameter_status(startup_.parameters, *status);
            // A primary that says it became a standby: the watcher looks at once.
            if (linked_role_ == routing::Role::primary && status->name == "in_hot_standby" &&
                status->value == "on") {
                runtime_.host_watch.probe_now(pool_->host().to_string());
            }
        }
    } else if (frame.type == wire::be::ErrorResponse::type &&
               linked_role_ == routing::Role::primary) {
        // 25006: the "primary" refused a write as read-only, it is a standby now.
        auto error = wire::be::ErrorResponse::parse(frame);
        if (error && error->code() == "25006") {
            runtime_.host_watch.probe_now(pool_->host().to_string());
        }
    } else if (frame.type == wire::be::CommandComplete::type) {
        auto complete = wire::be::CommandComplete::parse(frame);
        if (complete && complete->tag == "SET" && route == wire::Route::forward) {
            server_dirty_ = true;
        }
    }
}

asio::awaitable<void> ClientSession::probe_stray_ready() {
    wire::Writer writer;
    wire::fe::Query{""}.encode(writer);
    probe_ = writer.take();
    server_->tracker().on_frontend(wire::Frame{'Q', std::span(probe_).subspan(5), probe_},
                                   wire::Route::skip);
    co_await write_all(server_->stream(), probe_);
}

bool ClientSession::settle() {
    if (!server_ || mode_ == PoolMode::session || !server_->tracker().releasable()) return true;
    release_server(reset_or_clean());
    served_ = true;
    return true;
}

pool::Release ClientSession::reset_or_clean() const {
    const Settings& settings = config_->settings;
    if (settings.server_reset_query.empty()) return pool::Release::clean;
    const bool reset =
        mode_ == PoolMode::session || server_dirty_ || settings.server_reset_query_always;
    return reset ? pool::Release::reset : pool::Release::clean;
}

void ClientSession::release_server(pool::Release how) {
    router_->transaction_done(linked_role_, !linked_read_only_);
    if (prepared_) prepared_->on_released(*server_);
    cancel_target_->unlink();
    activity_->unlinked();
    server_.release(how);
}

void ClientSession::finish() {
    if (server_) {
        release_server(server_->tracker().releasable() ? reset_or_clean() : pool::Release::close);
    }
    if (config_->settings.log_disconnections) {
        log::info(name(), " closing because: ", end_reason_);
    }
}

asio::awaitable<void> ClientSession::fail(std::string_view sqlstate, std::string message) {
    runtime_.metrics.client_error(sqlstate);
    co_await write_all(client_, fatal_error(sqlstate, message));
    end_reason_ = std::move(message);
}

std::string ClientSession::name() const {
    return "C-" + std::to_string(id_) + " " +
           (startup_.database.empty() ? "?" : startup_.database) + "/" +
           (startup_.user.empty() ? "?" : startup_.user) + "@" + peer_;
}

asio::awaitable<void> serve_client(ClientSocket socket, Runtime& runtime, std::uint64_t id,
                                   int worker, std::string peer) {
    ClientSession session{std::move(socket), runtime, id, worker, std::move(peer)};
    co_await session.run();
}

} // namespace proxy
