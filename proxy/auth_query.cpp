#include "proxy/auth_query.hpp"

#include "proxy/deadline.hpp"
#include "proxy/log.hpp"
#include "proxy/server_conn.hpp"
#include "proxy/stream_io.hpp"
#include "wire/be_error.hpp"
#include "wire/be_query.hpp"
#include "wire/be_status.hpp"
#include "wire/fe_query.hpp"
#include "wire/writer.hpp"

#include <deque>
#include <tuple>

namespace proxy {

std::optional<AuthTarget> auth_target(const Config& config, const AuthUsers& auth_users,
                                      std::string_view database) {
    const auto found = config.databases.find(database);
    if (found == config.databases.end()) return std::nullopt;
    const DatabaseConfig& db = found->second;
    const Settings& settings = config.settings;
    AuthTarget target;
    target.auth_user = db.auth_user.value_or(settings.auth_user);
    if (target.auth_user.empty()) return std::nullopt;
    target.host = primary_host(db);
    target.dbname = settings.auth_dbname.empty() ? db.dbname : settings.auth_dbname;
    if (auto secret = proxy::find_secret(config, auth_users, target.auth_user)) {
        target.secret = std::string(*secret);
    }
    target.query = settings.auth_query;
    target.settings = settings;
    return target;
}

std::optional<std::optional<std::string>> SecretCache::find(std::string_view user,
                                                            Clock::time_point now) const {
    const auto found = answers_.find(user);
    if (found == answers_.end() || found->second.expires <= now) return std::nullopt;
    return found->second.secret;
}

void SecretCache::store(std::string_view user, std::optional<std::string> secret,
                        Clock::time_point now) {
    const auto expires = now + (secret ? Clock::duration(positive_ttl) : negative_ttl);
    if (auto found = answers_.find(user); found != answers_.end()) {
        found->second = Answer{std::move(secret), expires};
        return;
    }
    if (answers_.size() >= max_cached_answers) {
        std::erase_if(answers_, [now](const auto& entry) { return entry.second.expires <= now; });
        if (answers_.size() >= max_cached_answers) return;
    }
    answers_.emplace(std::string(user), Answer{std::move(secret), expires});
}

std::vector<std::byte> encode_auth_query(std::string_view query, std::string_view user) {
    wire::Writer writer;
    // No parameter type: the server infers $1's from the query (name for the default one, text
    // for a function taking text), and parses the text value as that type.
    wire::fe::Parse{"", query, {}}.encode(writer);
    wire::fe::Bind{"", "", {}, {wire::Value(wire::as_bytes(user))}, {}}.encode(writer);
    wire::fe::Execute{"", 0}.encode(writer);
    wire::fe::Sync{}.encode(writer);
    return writer.take();
}

AuthQueryReply::Progress AuthQueryReply::broken(std::string why) {
    problem_ = std::move(why);
    return Progress::broken;
}

AuthQueryReply::Progress AuthQueryReply::on_frame(const wire::Frame& frame) {
    using Answer = boost::system::result<std::optional<std::string>, std::string>;
    switch (frame.type) {
    case wire::be::ParseComplete::type:
    case wire::be::BindComplete::type:
    case wire::be::CommandComplete::type:
    case wire::be::EmptyQueryResponse::type:
    case wire::be::NoticeResponse::type:
    case wire::be::ParameterStatus::type:
    case 'A': // NotificationResponse: nothing to do with us
        return Progress::more;
    case wire::be::DataRow::type: {
        const auto row = wire::be::DataRow::parse(frame);
        if (!row) return broken("malformed DataRow");
        if (!answer_) return Progress::more; // already failed: the rest is moot
        if (++rows_ > 1) {
            answer_ =
                Answer(boost::system::in_place_error, "auth_query returned more than one row");
        } else if (row->values.size() < 2) {
            answer_ = Answer(boost::system::in_place_error,
                             "auth_query must return two columns: user name and secret");
        } else if (const auto& secret = row->values[1]; secret && !secret->empty()) {
            answer_ = std::optional<std::string>(
                std::string(reinterpret_cast<const char*>(secret->data()), secret->size()));
        }
        return Progress::more;
    }
    case wire::be::ErrorResponse::type: {
        const auto error = wire::be::ErrorResponse::parse(frame);
        if (!error) return broken("malformed ErrorResponse");
        answer_ = Answer(boost::system::in_place_error,
                         std::string(error->code()) + " " + std::string(error->message()));
        return Progress::more;
    }
    case wire::be::ReadyForQuery::type: {
        const auto ready = wire::be::ReadyForQuery::parse(frame);
        if (!ready) return broken("malformed ReadyForQuery");
        // auth_query ran in its own implicit transaction; anything else would carry over.
        if (ready->status != wire::be::TransactionStatus::idle) {
            return broken("auth_query left a transaction open");
        }
        return Progress::done;
    }
    default:
        return broken(std::string("unexpected message type '") + frame.type + "'");
    }
}

namespace {

// Why a lookup could not get an answer from the server; see auth_query.hpp for what the client
// is told.
enum class Failure {
    none,
    refused,     // an ErrorResponse (login or query): the client fails as with a wrong password
    unreachable, // no connection (or lost): 08006
};

struct Outcome {
    std::optional<std::string> secret;
    Failure failure = Failure::none;
    std::string message; // for the client, with Failure::unreachable
};

} // namespace

// One (database, auth_user): its cache, its connection and the lookups waiting for it.
//
// Thread safety: cache_, pending_, queue_ and running_ are guarded by mutex_. conn_ belongs to
// the runner, of which there is at most one at a time (running_): nobody else touches it.
class AuthQueries::Source : public std::enable_shared_from_this<AuthQueries::Source> {
public:
    Source(std::string database, AuthTarget target, std::shared_ptr<pool::ServerIds> ids,
           const CurrentTls& tls)
        : name_(database + "/" + target.auth_user), target_(std::move(target)),
          ids_(std::move(ids)), tls_(tls) {}

    [[nodiscard]] const AuthTarget& target() const noexcept { return target_; }

    asio::awaitable<SecretLookup> find(std::string_view user, Duration timeout) {
        const auto executor = co_await asio::this_coro::executor;
        std::shared_ptr<Slot> slot;
        bool start = false;
        {
            std::lock_guard lock{mutex_};
            if (auto known = cache_.find(user, SecretCache::Clock::now())) co_return *known;
            slot = std::make_shared<Slot>(executor);
            auto [waiting, added] = pending_.try_emplace(std::string(user));
            waiting->second.push_back(slot);
            if (added) queue_.push_back(waiting->first);
            start = !running_;
            running_ = true;
        }
        if (start) {
            asio::co_spawn(executor, run(shared_from_this()),
                           [](std::exception_ptr e) { log::failure("auth_query", e); });
        }
        if (timeout.count() > 0) slot->wake.expires_after(timeout);
        boost::system::error_code ec;
        if (!slot->result) std::tie(ec) = co_await slot->wake.async_wait(nothrow);
        if (slot->result) co_return std::move(*slot->result);
        if (ec == asio::error::operation_aborted) {
            // The session itself was cancelled (client_login_timeout): nobody reads this.
            co_return ServerLoginError{"08P01", "client_login_timeout"};
        }
        co_return ServerLoginError{"08P01", "query_wait_timeout"};
    }

private:
    // A session waiting in find(). As in ServerPool: the result is set on the session's own
    // executor, then the timer (which expires at the session's deadline, or never) is cancelled
    // to wake it.
    struct Slot {
        explicit Slot(const asio::any_io_executor& executor)
            : executor(executor), wake(executor, asio::steady_timer::time_point::max()) {}

        asio::any_io_executor executor;
        asio::steady_timer wake;
        std::optional<SecretLookup> result;
    };

    // Runs the queued lookups one after another until none is left. `self` keeps the source
    // (and conn_) alive meanwhile, even if RELOAD has dropped it.
    asio::awaitable<void> run([[maybe_unused]] std::shared_ptr<Source> self) {
        for (;;) {
            std::string user;
            {
                std::lock_guard lock{mutex_};
                if (queue_.empty()) {
                    running_ = false;
                    co_return;
                }
                user = std::move(queue_.front());
                queue_.pop_front();
            }
            const Outcome outcome = co_await look_up(user);
            std::vector<std::string> answered{user};
            {
                std::lock_guard lock{mutex_};
                if (outcome.failure == Failure::none) {
                    cache_.store(user, outcome.secret, SecretCache::Clock::now());
                } else if (outcome.failure == Failure::unreachable) {
                    // The next lookup would need the same connection: fail the queue now rather
                    // than after one server_connect_timeout per user.
                    answered.insert(answered.end(), std::make_move_iterator(queue_.begin()),
                                    std::make_move_iterator(queue_.end()));
                    queue_.clear();
                }
            }
            for (const auto& name : answered)
                deliver(name, outcome);
        }
    }

    void deliver(const std::string& user, const Outcome& outcome) {
        std::vector<std::shared_ptr<Slot>> slots;
        {
            std::lock_guard lock{mutex_};
            auto found = pending_.find(user);
            if (found == pending_.end()) return;
            slots = std::move(found->second);
            pending_.erase(found);
        }
        SecretLookup result{outcome.secret};
        if (outcome.failure == Failure::unreachable) {
            result = ServerLoginError{"08006", outcome.message};
        }
        for (const auto& slot : slots) {
            asio::post(slot->executor, [slot, result] {
                slot->result = result;
                slot->wake.cancel();
            });
        }
    }

    // Runs auth_query for `user` on the connection, opening it first if needed.
    asio::awaitable<Outcome> look_up(const std::string& user) {
        if (conn_ && !conn_->looks_alive()) {
            log::info(conn_->name(), " closing: server conn crashed? (went away while idle)");
            conn_.reset();
        }
        if (!conn_) {
            const ServerCredentials credentials{target_.auth_user, target_.dbname, target_.secret,
                                                std::nullopt};
            // TLS as for the pools' connections, with the contexts in force now.
            const auto tls = tls_.get();
            auto opened = co_await connect_server(ids_->next(), name_, target_.host, credentials,
                                                  target_.settings, *tls);
            if (!opened) {
                const ServerLoginError& error = opened.error();
                log::warning("auth_query ", name_, "@", target_.host.to_string(),
                             ": login failed: ", error.message);
                // A connection that never got an answer from PostgreSQL is unreachable; an
                // ErrorResponse (wrong auth_user password, no such database) is a refusal.
                if (error.sqlstate.starts_with("08")) {
                    co_return Outcome{std::nullopt, Failure::unreachable, error.message};
                }
                co_return Outcome{std::nullopt, Failure::refused, {}};
            }
            conn_ = std::move(*opened);
        }
        conn_->bind_to(co_await asio::this_coro::executor);
        auto replied = co_await within(target_.settings.query_wait_timeout, ask(user));
        if (!replied || !*replied) {
            const std::string why = replied ? (*replied).error() : "query_wait_timeout";
            log::warning(conn_->name(), " closing because: auth_query failed: ", why);
            conn_.reset();
            co_return Outcome{std::nullopt, Failure::unreachable,
                              "server connection for auth_query failed: " + why};
        }
        const auto& answer = **replied;
        if (!answer) {
            log::warning(conn_->name(), " auth_query for user \"", user,
                         "\" failed: ", answer.error());
            co_return Outcome{std::nullopt, Failure::refused, {}};
        }
        co_return Outcome{*answer, Failure::none, {}};
    }

    using Answer = boost::system::result<std::optional<std::string>, std::string>;
    using Asked = boost::system::result<Answer, std::string>;

    static Asked unusable(std::string why) {
        return {boost::system::in_place_error, std::move(why)};
    }

    // One exchange on conn_: the query's answer, or why the connection is unusable now.
    asio::awaitable<Asked> ask(const std::string& user) {
        const auto request = encode_auth_query(target_.query, user);
        if (!co_await write_all(conn_->stream(), request)) co_return unusable("write failed");
        AuthQueryReply reply;
        AuthQueryReply::Progress progress = AuthQueryReply::Progress::more;
        while (progress == AuthQueryReply::Progress::more) {
            auto frame = co_await read_frame(conn_->stream(), conn_->framer());
            if (!frame) co_return unusable("invalid message length from server");
            if (!*frame) co_return unusable("server closed the connection");
            progress = reply.on_frame(**frame);
        }
        if (progress == AuthQueryReply::Progress::broken) co_return unusable(reply.problem());
        // PostgreSQL sends nothing after ReadyForQuery unless asked.
        if (!conn_->framer().buffered().empty()) {
            co_return unusable("unexpected bytes after ReadyForQuery");
        }
        // In place: from a result of another type, Asked would take over its error as its own.
        co_return Asked(boost::system::in_place_value, reply.answer());
    }

    const std::string name_;
    const AuthTarget target_;
    const std::shared_ptr<pool::ServerIds> ids_;
    const CurrentTls& tls_;

    std::mutex mutex_;
    SecretCache cache_;
    // Users with a lookup queued or running, and the sessions waiting for each.
    std::map<std::string, std::vector<std::shared_ptr<Slot>>, std::less<>> pending_;
    // Users of pending_ whose query has not started, in arrival order.
    std::deque<std::string> queue_;
    bool running_ = false;

    std::unique_ptr<ServerConn> conn_;
};

AuthQueries::AuthQueries(std::shared_ptr<pool::ServerIds> ids, const CurrentTls& tls)
    : ids_(std::move(ids)), tls_(tls) {}

AuthQueries::~AuthQueries() = default;

asio::awaitable<SecretLookup> AuthQueries::find_secret(const Config& config,
                                                       const AuthUsers& auth_users,
                                                       std::string_view database,
                                                       std::string_view user) {
    if (auto secret = proxy::find_secret(config, auth_users, user)) {
        co_return std::optional<std::string>(std::string(*secret));
    }
    const auto source = source_for(config, auth_users, database);
    if (!source) co_return std::optional<std::string>();
    co_return co_await source->find(user, config.settings.query_wait_timeout);
}

std::shared_ptr<AuthQueries::Source> AuthQueries::source_for(const Config& config,
                                                             const AuthUsers& auth_users,
                                                             std::string_view database) {
    if (is_admin_database(config, database)) return nullptr;
    auto target = auth_target(config, auth_users, database);
    if (!target) return nullptr;
    std::shared_ptr<Source> source;
    {
        std::lock_guard lock{mutex_};
        auto& shared = sources_[{std::string(database), target->auth_user}];
        if (!shared) shared = std::make_shared<Source>(std::string(database), *target, ids_, tls_);
        source = shared;
    }
    // A session that read its configuration before a RELOAD that reconfigure() has already
    // applied (or the other way round) asks with a source of its own, closed after its lookup,
    // rather than flip the shared one back and forth.
    if (source->target() != *target) {
        source = std::make_shared<Source>(std::string(database), std::move(*target), ids_, tls_);
    }
    return source;
}

void AuthQueries::reconfigure(const Config& config, const AuthUsers& auth_users) {
    // Destroyed (their connections closed) outside the lock, unless a lookup still runs on one.
    std::vector<std::shared_ptr<Source>> dropped;
    {
        std::lock_guard lock{mutex_};
        for (auto it = sources_.begin(); it != sources_.end();) {
            const auto target = auth_target(config, auth_users, it->first.first);
            if (target && *target == it->second->target()) {
                ++it;
                continue;
            }
            dropped.push_back(std::move(it->second));
            it = sources_.erase(it);
        }
    }
}

} // namespace proxy
