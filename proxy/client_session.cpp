#include "proxy/client_session.hpp"

#include "proxy/admin_console.hpp"
#include "proxy/admin_session.hpp"
#include "proxy/cancel_peering.hpp"
#include "proxy/client_activity.hpp"
#include "proxy/client_auth.hpp"
#include "proxy/client_startup.hpp"
#include "proxy/deadline.hpp"
#include "proxy/first_readable.hpp"
#include "proxy/hba.hpp"
#include "proxy/log.hpp"
#include "proxy/pool_limits.hpp"
#include "proxy/prepared_statements.hpp"
#include "proxy/stream_io.hpp"
#include "proxy/transaction_router.hpp"
#include "wire/be_error.hpp"
#include "wire/be_query.hpp"
#include "wire/be_status.hpp"
#include "wire/fe_query.hpp"
#include "wire/writer.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <iterator>
#include <optional>
#include <string_view>

namespace proxy {
namespace {

// Messages up to this size are held whole (the tracker and the parameter cache read them);
// longer ones stream through in pieces, so a 200 MB row costs no 200 MB buffer.
constexpr std::size_t hold_limit = 64 * 1024;

// How often a transaction waiting for a primary looks at the topology again.
constexpr auto topology_poll = std::chrono::milliseconds(10);

// The messages a client may send once started (protocol docs, "Message Formats").
bool is_frontend_message(char type) {
    return std::string_view("QPBDECSHFdcfX").find(type) != std::string_view::npos;
}

// Why a login failed, when the host rather than the login is at fault: the connection failed
// (class 08), or the server is shutting down or starting up (57P01-57P03).
bool host_unavailable(std::string_view sqlstate) {
    return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
           sqlstate == "57P03";
}

// How a statement ends a transaction block, judged by its first words as PostgreSQL's grammar
// names them (ROLLBACK TO SAVEPOINT does not end it).
enum class BlockEnd { none, commit, rollback };

BlockEnd block_end(std::string_view sql) {
    const auto word = [&sql] {
        const auto start = sql.find_first_not_of(" \t\r\n;");
        if (start == std::string_view::npos) return std::string();
        sql.remove_prefix(start);
        std::string lowered;
        while (!sql.empty() && std::isalpha(static_cast<unsigned char>(sql.front()))) {
            lowered += static_cast<char>(std::tolower(static_cast<unsigned char>(sql.front())));
            sql.remove_prefix(1);
        }
        return lowered;
    };
    const std::string first = word();
    if (first == "commit" || first == "end") return BlockEnd::commit;
    if (first == "abort") return BlockEnd::rollback;
    if (first == "rollback") return word() == "to" ? BlockEnd::none : BlockEnd::rollback;
    return BlockEnd::none;
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

class ClientSession {
public:
    ClientSession(ClientSocket socket, Runtime& runtime, std::uint64_t id, int worker,
                  std::string peer)
        : client_(std::move(socket)), runtime_(runtime), config_(runtime.config()), id_(id),
          worker_(worker), peer_(std::move(peer)),
          framer_(wire::Phase::startup,
                  wire::Limits{.max_message_size = config_->settings.max_packet_size.bytes}) {}

    ~ClientSession() {
        if (info_) {
            info_->socket = nullptr;
            runtime_.sessions.remove(id_);
        }
        if (counted_) runtime_.clients.fetch_sub(1, std::memory_order_relaxed);
        if (cancel_key_) runtime_.cancels.remove(*cancel_key_);
    }

    asio::awaitable<void> run() {
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

private:
    // ---- Login ----

    asio::awaitable<bool> log_in() {
        const auto tls = runtime_.tls.get();
        auto outcome = co_await read_startup(client_, framer_, *config_, *tls);
        if (auto* ended = std::get_if<StartupEnded>(&outcome)) {
            end_reason_ = std::move(ended->reason);
            co_return false;
        }
        if (auto* cancel = std::get_if<CancelRequested>(&outcome)) {
            end_reason_ = "cancel request";
            co_await forward_cancel(cancel->key);
            co_return false;
        }
        startup_ = std::move(std::get<AcceptedStartup>(outcome));
        if (runtime_.refusing_logins && !is_admin_database(*config_, startup_.database)) {
            co_await fail("57P01", "pgmarina is shutting down");
            co_return false;
        }
        if (runtime_.clients.fetch_add(1, std::memory_order_relaxed) >=
            config_->settings.max_client_conn) {
            runtime_.clients.fetch_sub(1, std::memory_order_relaxed);
            co_await fail("53300", "no more connections allowed (max_client_conn)");
            co_return false;
        }
        counted_ = true;
        if (startup_.negotiate && !co_await negotiate_protocol()) co_return false;
        if (!co_await authenticate()) co_return false;
        co_return co_await welcome();
    }

    // The newest 3.x minor we speak is 0; the `_pq_.` options are all unknown to us.
    asio::awaitable<bool> negotiate_protocol() {
        wire::be::NegotiateProtocolVersion reply;
        for (const auto& option : startup_.unrecognized_options)
            reply.unrecognized_options.push_back(option);
        wire::Writer writer;
        reply.encode(writer);
        co_return co_await write_all(client_, writer.bytes());
    }

    asio::awaitable<bool> authenticate() {
        const auto found = co_await runtime_.auth_queries.find_secret(
            *config_, *runtime_.auth_users(), startup_.database, startup_.user);
        if (!found) {
            co_await fail(found.error().sqlstate, found.error().message);
            co_return false;
        }
        const std::optional<std::string>& secret = *found;
        AuthType method = config_->settings.auth_type;
        if (method == AuthType::hba) {
            const auto decided = co_await hba_method(secret.has_value());
            if (!decided) co_return false;
            method = *decided;
        }
        if (!secret && method == AuthType::trust) {
            co_await fail("28000", "no such user: " + startup_.user);
            co_return false;
        }
        const std::string unknown = secret ? std::string() : decoy_secret(method, startup_.user);
        auto outcome = co_await authenticate_client(client_, framer_, method, startup_.user,
                                                    secret ? *secret : unknown);
        if (!outcome) {
            end_reason_ = outcome.error().reason;
            if (outcome.error().refused) {
                runtime_.metrics.auth_failure(to_string(method), startup_.database, startup_.user,
                                              secret.has_value());
            }
            co_return false;
        }
        if (is_admin_database(*config_, startup_.database)) co_return co_await admit_to_console();
        if (runtime_.switches.disabled(startup_.database)) {
            co_await fail("55000", "database does not allow connections: " + startup_.database);
            co_return false;
        }
        const auto database = config_->databases.find(startup_.database);
        auto& metrics = runtime_.metrics.database(startup_.database);
        if (database != config_->databases.end()) {
            router_.emplace(runtime_, startup_.database, startup_.user, database->second, metrics);
            pool_ = router_->welcome_pool();
        }
        if (!pool_) {
            // RELOAD dropped the database since the startup packet was read.
            co_await fail("3D000", "no such database: " + startup_.database);
            co_return false;
        }
        activity_.emplace(register_client(pool_->key()), pool_->traffic(), metrics);
        mode_ = resolve_pool_mode(*config_, pool_->key());
        // In session pooling the client keeps its server, and its statements with it.
        if (mode_ != PoolMode::session && config_->settings.max_prepared_statements > 0) {
            prepared_.emplace(runtime_.statements, pool_->traffic());
        }
        // With the database's forced user, the client's password is not the servers'. A secret
        // from auth_query is known to the pool only through its clients.
        if (pool_->key().user == startup_.user) {
            router_->learn_credentials(outcome->password ? outcome->password : secret,
                                       outcome->scram_keys);
        }
        co_return true;
    }

    // auth_type hba: the method the auth_hba_file gives this connection (hba.hpp), or nullopt
    // once the connection is refused as PostgreSQL refuses it (28000). `known_user`: the user
    // has a secret (for the failure count's bounded labels).
    asio::awaitable<std::optional<AuthType>> hba_method(bool known_user) {
        boost::system::error_code ec;
        const auto peer = client_.socket().remote_endpoint(ec);
        if (ec) {
            end_reason_ = "client gone";
            co_return std::nullopt;
        }
        const HbaConnection connection{peer.data()->sa_family == AF_UNIX, client_.tls() != nullptr,
                                       ip_address(peer), startup_.database, startup_.user};
        const HbaDecision decision = runtime_.hba_rules()->decide(connection);
        if (!decision.method) {
            runtime_.metrics.auth_failure("reject", startup_.database, startup_.user, known_user);
            co_await fail("28000", hba_refusal(connection, decision));
            co_return std::nullopt;
        }
        co_return decision.method;
    }

    // Only admin_users and stats_users may use the console (reference.md 1.1).
    asio::awaitable<bool> admit_to_console() {
        const Settings& settings = config_->settings;
        const auto listed = [&](const std::vector<std::string>& users) {
            return std::ranges::find(users, startup_.user) != users.end();
        };
        const bool admin = listed(settings.admin_users);
        if (!admin && !listed(settings.stats_users)) {
            co_await fail("28000", "not allowed to use the admin console: " + startup_.user);
            co_return false;
        }
        console_.emplace(runtime_, admin, id_);
        register_client(pool::Key{startup_.database, ""});
        co_return true;
    }

    std::shared_ptr<ClientInfo> register_client(pool::Key pool) {
        info_ = std::make_shared<ClientInfo>();
        info_->id = id_;
        info_->user = startup_.user;
        info_->database = startup_.database;
        info_->pool = std::move(pool);
        std::tie(info_->remote, info_->local) =
            socket_addresses(client_.socket(), listen_port(config_->settings));
        info_->connect_time = ClientInfo::Clock::now();
        info_->application_name =
            std::string(startup_.parameters.get("application_name").value_or(""));
        info_->executor = client_.get_executor();
        info_->socket = &client_.socket();
        if (const TlsEngine* tls = client_.tls()) info_->tls = tls->description();
        runtime_.sessions.add(info_);
        return info_;
    }

    asio::awaitable<void> serve_console() {
        end_reason_ = co_await serve_admin(client_, framer_, [this](const AdminCommand& command) {
            return console_->execute(command);
        });
    }

    // AuthenticationOk is out; the rest comes from the pool, not from a server (reference.md
    // 2.1): its ParameterStatus set with the client's own values where it chose them, our own
    // BackendKeyData, ReadyForQuery.
    asio::awaitable<bool> welcome() {
        auto parameters = console_ ? console_parameters() : pool_->welcome_parameters();
        if (parameters.empty()) {
            // The pool's first client: a server must log in to tell us what to say.
            auto server = co_await pool_->acquire(waiter(), worker_);
            if (!server) {
                co_await fail(server.error().sqlstate, server.error().message);
                co_return false;
            }
            parameters = (*server)->welcome().parameters;
            server->release(pool::Release::clean);
        }
        wire::Writer writer;
        for (const auto& parameter : parameters) {
            // A value the client did not choose is the server default, which a later server
            // must be set back to if another client changed it (PgBouncer varcache_fill_unset).
            if (!startup_.parameters.get(parameter.name)) {
                startup_.parameters.set(parameter.name, parameter.value);
            }
            const auto value = startup_.parameters.get(parameter.name).value_or(parameter.value);
            wire::be::ParameterStatus{parameter.name, value}.encode(writer);
        }
        cancel_target_ = std::make_shared<CancelTarget>();
        cancel_key_ = runtime_.cancels.add(cancel_target_, config_->settings.peer_id);
        wire::be::BackendKeyData{cancel_key_->process_id, cancel_key_->secret}.encode(writer);
        wire::be::ReadyForQuery::idle().encode(writer);
        co_return co_await write_all(client_, writer.bytes());
    }

    asio::awaitable<void> forward_cancel(const CancelKey& key) {
        const auto route = route_cancel(key, config_->settings.peer_id, config_->peers);
        if (route.kind == CancelRoute::Kind::forward) {
            if (!co_await send_cancel_to_peer(route.peer, route.key,
                                              config_->settings.cancel_wait_timeout)) {
                log::warning(name(), " cancel request could not be forwarded to peer ", route.owner,
                             " at ", route.peer.to_string());
            }
            co_return;
        }
        if (route.kind == CancelRoute::Kind::drop) {
            log::info(name(), " cancel request for peer ", route.owner,
                      key_forwarded(key) ? ", forwarded already" : ", which is not in [peers]");
            co_return;
        }
        const auto target = runtime_.cancels.find(route.key);
        if (!target) {
            log::info(name(), " cancel request for an unknown key");
            co_return;
        }
        auto link = target->current();
        // PgBouncer: "not sending cancel request for client that is now idle".
        if (!link) co_return;
        co_await send_cancel(std::move(*link), config_->settings.cancel_wait_timeout);
    }

    // ---- Transactions ----

    // One turn of the loop: read from whoever may speak, forward, release when done. False
    // ends the session.
    asio::awaitable<bool> step() {
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

    using Ready = FirstReadable::Ready;

    // Waits until the client or the server has something to say: inside a transaction the
    // client's next request, a notification or a server's FATAL may come in either order.
    asio::awaitable<Ready> wait_either() {
        // What TLS already took in is not seen by a wait on the socket.
        if (client_.has_buffered_input()) co_return Ready::client;
        if (server_->stream().has_buffered_input()) co_return Ready::server;
        // While a request is held, the client's next request waits in the framer for the
        // server's last reply.
        co_return co_await readable_.wait(held_ ? nullptr : &client_.socket(),
                                          server_->stream().socket(), deadline());
    }

    // How long wait_either() may wait, zero for ever: the rest of query_timeout while the
    // server owes replies, idle_transaction_timeout while the client idles in a transaction.
    Duration deadline() const {
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

    asio::awaitable<bool> read_client(Duration timeout) {
        if (!server_ && framer_.buffered().empty() && !client_.has_buffered_input()) {
            // Between transactions a client may idle for hours: it holds no receive buffer
            // until it sends something (PgBouncer's clients neither). Waiting for readiness
            // costs one epoll_ctl, as many system calls as the read that would find nothing.
            framer_.release_if_empty();
            auto ready = co_await within(
                timeout, client_.socket().async_wait(ClientSocket::wait_read, nothrow));
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

    // The shutdown woke a client idle between transactions (ClientRegistry::close_idle).
    bool woken_for_shutdown(const boost::system::error_code& ec) const {
        return ec == asio::error::operation_aborted && !server_ &&
               runtime_.closing_clients.load(std::memory_order_relaxed);
    }

    asio::awaitable<bool> read_server() {
        auto& server = *server_;
        const auto space = server.framer().prepare(read_chunk);
        auto [ec, n] = co_await server.stream().read_some(asio::buffer(space.data(), space.size()));
        if (ec) co_return false;
        server.framer().commit(n);
        co_return true;
    }

    // Forwards what the client sent, getting a server first if it has none.
    asio::awaitable<bool> forward_client() {
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
            const std::size_t hold = prepared_
                                         ? message_hold(framer_.next_type(), hold_limit,
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

    // Gets a server for the transaction `first` starts, on the host the router picks, and
    // brings its settings in line.
    asio::awaitable<bool> link(const wire::Frame& first) {
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
        cancel_target_->link(ServerLink{pool_, server_->id(), waiter(), server_->endpoint(),
                                        welcome.process_id, welcome.secret_key});
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

    // Takes a server on the host the router picks for the linked_read_only_ transaction. While
    // that host is unknown or unreachable (a failover), waits for the topology to change, up
    // to query_wait_timeout (0: no limit, as PgBouncer's).
    asio::awaitable<bool> acquire_routed() {
        const Duration wait = config_->settings.query_wait_timeout;
        const auto give_up = wait.count() > 0 ? pool::Clock::now() + wait : pool::TimePoint::max();
        for (;;) {
            const auto version = runtime_.topology.version();
            auto choice = router_->choose(linked_read_only_);
            if (!choice.pool && (choice.decision.host ||
                                 !runtime_.config()->databases.contains(startup_.database))) {
                // A reload removed the database, or the host since the topology was published:
                // the client is told at its next transaction (a running one ended on its server).
                co_await fail("3D000", "no such database: " + startup_.database);
                co_return false;
            }
            std::optional<ServerLoginError> failure;
            if (choice.pool) {
                pool_ = std::move(choice.pool);
                // A server that closed while unused is replaced by the pool; the watcher looks
                // at its host at once.
                auto acquired = co_await pool_->acquire(waiter(), worker_, [this] {
                    runtime_.host_watch.probe_now(pool_->host().to_string());
                });
                if (acquired) {
                    server_ = std::move(*acquired);
                    linked_role_ = choice.decision.role;
                    co_return true;
                }
                failure = acquired.error();
                // A host that cannot be reached, or that is shutting down or starting up, may
                // be failing over: the watcher looks at once, and the transaction waits for
                // what it finds. Other refusals (a password, a limit) are final.
                runtime_.host_watch.probe_now(pool_->host().to_string());
                if (!runtime_.host_watch.watching() || !host_unavailable(failure->sqlstate)) {
                    co_await fail(failure->sqlstate, failure->message);
                    co_return false;
                }
            }
            if (!co_await topology_changes(version, give_up)) {
                if (failure) {
                    co_await fail(failure->sqlstate, failure->message);
                } else {
                    co_await fail("08P01", std::string("query_wait_timeout: ") +
                                               std::string(to_string(choice.decision.reason)));
                }
                co_return false;
            }
        }
    }

    // Whether the transaction that `first` starts may run on a replica.
    routing::Classification classify(const wire::Frame& first) const {
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

    // False once `give_up` passed with the topology still at `version`.
    asio::awaitable<bool> topology_changes(std::uint64_t version, pool::TimePoint give_up) {
        while (runtime_.topology.version() == version) {
            if (pool::Clock::now() >= give_up) co_return false;
            co_await sleep_for(topology_poll);
        }
        co_return true;
    }

    // A pipelining client may send its next transaction before the server has answered the
    // current one. On a replica, a request that must run on the primary waits in the framer
    // until the server has answered everything before it. Then, if the transaction is over,
    // the server goes back and the request is routed anew; if not, it is part of the
    // transaction and follows it there.
    bool hold_for_route() const {
        if (linked_role_ != routing::Role::replica || !server_->tracker().awaiting_replies()) {
            return false;
        }
        const auto type = framer_.next_type();
        if (type != 'Q' && type != 'P') return false;
        const auto next = wire::decode_frame(framer_.buffered(), framer_.phase(), framer_.limits());
        return next && next->has_value() && classify(**next).target != routing::Target::replica_ok;
    }

    // The linked server failed mid-transaction: it closed, or a read or write on it failed (a
    // failover stops the primary under its clients). PostgreSQL's own connection would be gone
    // with it; here only the server is. In transaction pooling the client gets an error (08006)
    // for what it was waiting for and its next transaction gets another server, on the new
    // primary once the watcher has found it. In session pooling its session state is lost, and
    // so is its connection, as with PgBouncer.
    asio::awaitable<bool> lose_server() {
        runtime_.host_watch.probe_now(pool_->host().to_string());
        if (server_message_open_) {
            // The start of a long message went on to the client, and its end never will: no
            // reply of ours can follow on that stream (the client would read it as the rest of
            // the message), so the client's connection ends here, as its server's did.
            runtime_.metrics.client_error("08006");
            end_reason_ = "server conn crashed? (lost in the middle of a message)";
            co_return false;
        }
        auto& tracker = server_->tracker();
        const bool in_block = tracker.transaction_status() != wire::be::TransactionStatus::idle;
        const std::size_t owed = tracker.ready_owed();
        const bool inside_batch = tracker.inside_batch();
        // What the client would send next in its block cannot be answered as PostgreSQL would
        // without a Query to answer (see answer_lost_block).
        if (mode_ == PoolMode::session || (in_block && inside_batch)) {
            co_await fail("08006", "server conn crashed?");
            co_return false;
        }
        release_server(pool::Release::close);
        log::info(name(), " lost its server mid-transaction");
        runtime_.metrics.client_error("08006");
        block_lost_ = in_block;
        loss_untold_ = true;
        // The client waits for nothing (idle in its block): it hears of the loss at its next
        // request, as it would of any error of its transaction.
        if (owed == 0 && !inside_batch) co_return true;
        wire::Writer writer;
        tell_loss(writer);
        for (std::size_t i = 0; i < owed; ++i)
            wire::be::ReadyForQuery{block_lost_ ? wire::be::TransactionStatus::failed
                                                : wire::be::TransactionStatus::idle}
                .encode(writer);
        // The client is in the middle of an extended-query batch: the rest of it, up to its
        // Sync, is skipped, as a server skips after an error.
        skipping_to_sync_ = inside_batch;
        if (!co_await write_all(client_, writer.bytes())) {
            end_reason_ = "client unexpected eof";
            co_return false;
        }
        co_return true;
    }

    void tell_loss(wire::Writer& writer) {
        wire::be::ErrorResponse::make(wire::be::Severity::error, "08006",
                                      "server connection lost; the transaction did not complete")
            .encode(writer);
        loss_untold_ = false;
    }

    // A Query of a client whose transaction block went with its server, answered as PostgreSQL
    // answers in a failed block: ROLLBACK ends it; COMMIT ends it with the error (nothing was
    // committed); anything else is refused (the loss itself first) until the block ends.
    void answer_lost_block(const wire::Frame& query) {
        wire::Writer writer;
        const auto text = wire::fe::Query::parse(query);
        const auto end = text ? block_end(text->query) : BlockEnd::none;
        if (end == BlockEnd::rollback) {
            wire::be::CommandComplete{"ROLLBACK"}.encode(writer);
        } else if (end == BlockEnd::commit || loss_untold_) {
            tell_loss(writer);
        } else {
            wire::be::ErrorResponse::make(
                wire::be::Severity::error, "25P02",
                "current transaction is aborted, commands ignored until end of transaction block")
                .encode(writer);
        }
        block_lost_ = end == BlockEnd::none;
        wire::be::ReadyForQuery{block_lost_ ? wire::be::TransactionStatus::failed
                                            : wire::be::TransactionStatus::idle}
            .encode(writer);
        std::ranges::copy(writer.bytes(), std::back_inserter(lost_replies_));
    }

    static std::span<const std::byte> ready_idle() {
        static constexpr std::array<std::byte, 6> ready = {
            std::byte{'Z'}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{5}, std::byte{'I'}};
        return ready;
    }

    // Forwards what the server sent, as the tracker routes it.
    asio::awaitable<bool> forward_server() {
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

    // What the session learns from a server message on its way: parameter changes (the
    // client saw them, or asked for them through the sync query) and the client's SETs of
    // parameters no ParameterStatus reports, which would otherwise stay on the server for the
    // next client. The sync query's own SETs (route skip) are accounted for in link().
    void observe(const wire::Frame& frame, wire::Route route) {
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

    // See ResponseTracker::stray_ready_possible(): an empty query settles whether a
    // ReadyForQuery is still on its way.
    asio::awaitable<void> probe_stray_ready() {
        wire::Writer writer;
        wire::fe::Query{""}.encode(writer);
        probe_ = writer.take();
        server_->tracker().on_frontend(wire::Frame{'Q', std::span(probe_).subspan(5), probe_},
                                       wire::Route::skip);
        co_await write_all(server_->stream(), probe_);
    }

    // Lets the server go when the transaction is over (transaction and statement pooling).
    bool settle() {
        if (!server_ || mode_ == PoolMode::session || !server_->tracker().releasable()) return true;
        release_server(reset_or_clean());
        served_ = true;
        return true;
    }

    pool::Release reset_or_clean() const {
        const Settings& settings = config_->settings;
        if (settings.server_reset_query.empty()) return pool::Release::clean;
        const bool reset =
            mode_ == PoolMode::session || server_dirty_ || settings.server_reset_query_always;
        return reset ? pool::Release::reset : pool::Release::clean;
    }

    void release_server(pool::Release how) {
        router_->transaction_done(linked_role_, !linked_read_only_);
        if (prepared_) prepared_->on_released(*server_);
        cancel_target_->unlink();
        activity_->unlinked();
        server_.release(how);
    }

    // The session is over: a server in an unknown state is closed, never lent again.
    void finish() {
        if (server_) {
            release_server(server_->tracker().releasable() ? reset_or_clean()
                                                           : pool::Release::close);
        }
        if (config_->settings.log_disconnections) {
            log::info(name(), " closing because: ", end_reason_);
        }
    }

    // Ends the session the way PostgreSQL does: a FATAL ErrorResponse, then close.
    asio::awaitable<void> fail(std::string_view sqlstate, std::string message) {
        runtime_.metrics.client_error(sqlstate);
        co_await write_all(client_, fatal_error(sqlstate, message));
        end_reason_ = std::move(message);
    }

    pool::WaiterId waiter() const { return pool::WaiterId{id_}; }

    std::string name() const {
        return "C-" + std::to_string(id_) + " " +
               (startup_.database.empty() ? "?" : startup_.database) + "/" +
               (startup_.user.empty() ? "?" : startup_.user) + "@" + peer_;
    }

    ClientStream client_;
    Runtime& runtime_;
    std::shared_ptr<const Config> config_;
    std::uint64_t id_;
    int worker_;
    std::string peer_;
    wire::Framer framer_;
    AcceptedStartup startup_;
    bool counted_ = false;
    std::string end_reason_ = "client unexpected eof";

    // A console client has a console and no pool; everyone else the other way round.
    std::optional<AdminConsole> console_;
    std::shared_ptr<ClientInfo> info_;
    // Reports to SHOW CLIENTS and SHOW STATS, for pool clients.
    std::optional<ClientActivity> activity_;
    std::shared_ptr<ServerPool> pool_;
    PoolMode mode_ = PoolMode::transaction;
    std::shared_ptr<CancelTarget> cancel_target_;
    std::optional<CancelKey> cancel_key_;

    // Picks the host of each transaction; for pool clients.
    std::optional<TransactionRouter> router_;
    // The linked server, while the client has one.
    ServerLease server_;
    // Where it is, and whether its transaction was found read-only (then it wrote nothing).
    routing::Role linked_role_ = routing::Role::unknown;
    bool linked_read_only_ = false;
    // A request waits in the framer until the server has answered what came before it.
    bool held_ = false;
    // The server was lost in the middle of a batch: the client's messages up to its Sync go
    // nowhere, and the Sync is answered with lost_replies_.
    bool skipping_to_sync_ = false;
    std::vector<std::byte> lost_replies_;
    // The server was lost inside the client's transaction block: its Queries are answered as
    // in a failed block until it ends the block (answer_lost_block).
    bool block_lost_ = false;
    // The client has not been told yet that its server was lost.
    bool loss_untold_ = false;
    // A SET ran: the server's settings beyond the tracked ones are the client's now.
    bool server_dirty_ = false;
    // A transaction of this client ended and gave its server back: the client is between
    // transactions.
    bool served_ = false;
    // The rest of a long client message goes nowhere (late CopyData).
    bool dropping_ = false;
    bool long_server_message_forwarded_ = false;
    // The client has the start of a server message whose rest has not come yet.
    bool server_message_open_ = false;
    pool::TimePoint query_started_{};
    std::uint64_t sync_tag_ = 0;
    std::vector<std::byte> sync_query_;
    std::vector<std::byte> probe_;
    // The wait of a linked session for its client or server (wait_either).
    FirstReadable readable_;
    // What one forwarding step writes: views into a framer, plus our own few messages.
    std::vector<asio::const_buffer> out_;
    // Named prepared statements (reference.md 3); none in session pooling or when
    // max_prepared_statements is 0, and then statement names pass through untouched.
    std::optional<PreparedStatements> prepared_;
    std::vector<wire::FakeReply> fakes_;
};

} // namespace

asio::awaitable<void> serve_client(ClientSocket socket, Runtime& runtime, std::uint64_t id,
                                   int worker, std::string peer) {
    ClientSession session{std::move(socket), runtime, id, worker, std::move(peer)};
    co_await session.run();
}

} // namespace proxy
