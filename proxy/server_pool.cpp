#include "proxy/server_pool.hpp"

#include "proxy/deadline.hpp"
#include "proxy/log.hpp"

#include <utility>

namespace proxy {

// A session waiting in acquire(). The result is set on the session's own executor (posted
// there), and the timer, which never expires by itself, is cancelled to wake the session. The
// timer is made only when the session has to wait: most acquires find an idle server and are
// served in the call itself (ServerPool::deliver).
struct ServerPool::WaitSlot {
    explicit WaitSlot(const asio::any_io_executor& executor) : executor(executor) {}

    asio::any_io_executor executor;
    std::optional<asio::steady_timer> wake;
    std::optional<Delivery> result;
};

namespace {

pool::TimePoint now() {
    return pool::Clock::now();
}

template <class... F>
struct Overloaded : F... {
    using F::operator()...;
};
// clang 14 has no class template argument deduction for aggregates yet.
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

} // namespace

ServerPool::ServerPool(pool::Key key, ServerPoolSettings settings,
                       std::shared_ptr<TrafficStats> traffic, std::shared_ptr<pool::Caps> db_caps,
                       std::shared_ptr<pool::Caps> user_caps, std::shared_ptr<pool::ServerIds> ids,
                       Workers& workers, const CurrentTls& tls)
    : key_(std::move(key)), name_(key_.database + "/" + key_.user), settings_(std::move(settings)),
      workers_(workers), tls_(tls),
      core_(key_, settings_.limits, std::move(db_caps), std::move(user_caps), std::move(ids)),
      credentials_(settings_.credentials), traffic_(std::move(traffic)) {}

void ServerPool::retire() {
    retired_.store(true, std::memory_order_release);
    close_when_released();
}

asio::awaitable<AcquireResult> ServerPool::acquire(pool::WaiterId client, int worker,
                                                   const std::function<void()>& went_away) {
    const auto executor = co_await asio::this_coro::executor;
    for (;;) {
        auto slot = std::make_shared<WaitSlot>(executor);
        pool::Actions actions;
        {
            std::lock_guard lock{mutex_};
            const auto at = now();
            if (login_error_ && core_.login_retry_at() > at && core_.stats(at).servers == 0) {
                co_return *login_error_;
            }
            waiting_[client] = slot;
            actions = core_.acquire(client, worker, at);
        }
        execute(std::move(actions), slot);
        if (!slot->result) {
            // A delivery from another thread is posted here, so it finds the timer made.
            slot->wake.emplace(executor, asio::steady_timer::time_point::max());
            while (!slot->result)
                co_await slot->wake->async_wait(nothrow);
        }
        Delivery delivery = std::move(*slot->result);
        if (!delivery) co_return delivery.error();
        std::unique_ptr<ServerConn>& server = *delivery;
        server->bind_to(executor);
        if (server->looks_alive()) co_return ServerLease(shared_from_this(), std::move(server));
        log::info(server->name(), " closing: server conn crashed? (went away while idle)");
        release(std::move(server), pool::Release::close);
        if (went_away) went_away();
    }
}

void ServerPool::release(std::unique_ptr<ServerConn> server, pool::Release how) {
    pool::Actions actions;
    {
        std::lock_guard lock{mutex_};
        const auto id = server->id();
        record_facts(*server);
        parked_[id] = std::move(server);
        actions = core_.release(id, how, now());
    }
    execute(std::move(actions));
}

bool ServerPool::begin_cancel(pool::ServerId server, pool::WaiterId client) {
    std::lock_guard lock{mutex_};
    return core_.begin_cancel(server, client);
}

void ServerPool::end_cancel(pool::ServerId server) {
    pool::Actions actions;
    {
        std::lock_guard lock{mutex_};
        actions = core_.end_cancel(server, now());
    }
    execute(std::move(actions));
}

void ServerPool::tick() {
    pool::Actions actions;
    {
        std::lock_guard lock{mutex_};
        const auto at = now();
        actions = core_.tick(at);
        if (core_.needs_servers()) {
            for (auto& action : core_.retry(at))
                actions.push_back(std::move(action));
        }
    }
    execute(std::move(actions));
}

bool ServerPool::needs_servers() const {
    std::lock_guard lock{mutex_};
    return core_.needs_servers();
}

std::optional<pool::TimePoint> ServerPool::evictable_since() const {
    std::lock_guard lock{mutex_};
    return core_.evictable_since();
}

void ServerPool::evict() {
    pool::Actions actions;
    {
        std::lock_guard lock{mutex_};
        actions = core_.evict();
    }
    execute(std::move(actions));
}

std::vector<ServerParameter> ServerPool::welcome_parameters() const {
    std::lock_guard lock{mutex_};
    return welcome_;
}

void ServerPool::learn_credentials(const std::optional<std::string>& secret,
                                   const std::optional<ScramKeys>& scram_keys) {
    std::lock_guard lock{mutex_};
    if (secret) credentials_.secret = *secret;
    if (scram_keys) credentials_.scram_keys = *scram_keys;
}

int ServerPool::busy() const {
    std::lock_guard lock{mutex_};
    return static_cast<int>(core_.stats(now()).sv_active);
}

PoolSnapshot ServerPool::snapshot() const {
    PoolSnapshot snapshot{key_, {}, {}, traffic_->read()};
    std::lock_guard lock{mutex_};
    snapshot.stats = core_.stats(now());
    for (auto& view : core_.servers()) {
        const auto facts = facts_.find(view.id);
        snapshot.servers.push_back(
            {view, facts == facts_.end() ? std::nullopt : std::optional(facts->second)});
    }
    return snapshot;
}

void ServerPool::close_when_released() {
    pool::Actions actions;
    {
        std::lock_guard lock{mutex_};
        actions = core_.mark_close_needed();
    }
    execute(std::move(actions));
}

void ServerPool::retry_login_now() {
    pool::Actions actions;
    {
        std::lock_guard lock{mutex_};
        if (!login_error_) return;
        login_error_.reset();
        actions = core_.retry_login_now(now());
    }
    execute(std::move(actions));
}

bool ServerPool::login_failing() const {
    std::lock_guard lock{mutex_};
    return login_error_.has_value();
}

void ServerPool::record_facts(const ServerConn& server) {
    auto [facts, added] = facts_.try_emplace(server.id());
    if (added) {
        facts->second.remote = server.endpoint();
        facts->second.local = server.local_endpoint();
        facts->second.process_id = server.welcome().process_id;
        if (const TlsEngine* tls = server.stream().tls()) facts->second.tls = tls->description();
    }
    facts->second.prepared_statements = server.statements().size();
    facts->second.application_name = server.application_name();
}

pool::Actions ServerPool::forget(pool::ServerId id) {
    facts_.erase(id);
    return core_.closed(id, now());
}

std::unique_ptr<ServerConn> ServerPool::unpark(pool::ServerId id) {
    const auto found = parked_.find(id);
    if (found == parked_.end()) return nullptr;
    auto server = std::move(found->second);
    parked_.erase(found);
    return server;
}

void ServerPool::execute(pool::Actions actions, const std::shared_ptr<WaitSlot>& own) {
    // Executing an action can make the Core answer with more (a closed server frees a slot for
    // a waiter), so the actions form a work list rather than a recursion. It is the list the
    // Core gave, grown in place: a transaction's acquire and release make no allocation here.
    pool::Actions& work = actions;
    const auto more = [&work](pool::Actions next) {
        for (auto& action : next)
            work.push_back(std::move(action));
    };
    for (std::size_t next = 0; next < work.size(); ++next) {
        // A copy: `more` may grow the list and move its elements.
        const pool::Action action = std::move(work[next]);
        std::visit(
            Overloaded{
                [&](const pool::Assign& assign) {
                    std::shared_ptr<WaitSlot> slot;
                    std::unique_ptr<ServerConn> server;
                    {
                        std::lock_guard lock{mutex_};
                        server = unpark(assign.server);
                        if (auto found = waiting_.find(assign.waiter); found != waiting_.end()) {
                            slot = std::move(found->second);
                            waiting_.erase(found);
                        }
                    }
                    if (slot) {
                        deliver(slot, std::move(server), own);
                    } else if (server) {
                        // The waiter is gone; the Core still thinks it holds the server.
                        std::lock_guard lock{mutex_};
                        parked_[assign.server] = std::move(server);
                        more(core_.release(assign.server, pool::Release::clean, now()));
                    }
                },
                [&](const pool::Open& open) {
                    // A min_pool_size server is for nobody yet: any worker will do.
                    const int worker = open.worker.value_or(workers_.pick());
                    const auto& executor = workers_.executors.at(static_cast<std::size_t>(worker));
                    if (open.reserve) log::info(name_, " taking connection from reserve_pool");
                    asio::co_spawn(executor, log_in(open.server, worker),
                                   [](std::exception_ptr e) { log::failure("server login", e); });
                },
                [&](const pool::Close& close) {
                    std::unique_ptr<ServerConn> server;
                    {
                        std::lock_guard lock{mutex_};
                        server = unpark(close.server);
                    }
                    if (server) log::info(server->name(), " closing because: ", close.reason);
                    server.reset(); // Terminate and close
                    std::lock_guard lock{mutex_};
                    more(forget(close.server));
                },
                [&](const pool::Check& check) { maintain(check.server, settings_.check_query); },
                [&](const pool::Reset& reset) { maintain(reset.server, settings_.reset_query); },
                [&](const pool::FailWaiter& fail) {
                    std::shared_ptr<WaitSlot> slot;
                    {
                        std::lock_guard lock{mutex_};
                        if (auto found = waiting_.find(fail.waiter); found != waiting_.end()) {
                            slot = std::move(found->second);
                            waiting_.erase(found);
                        }
                    }
                    if (slot) {
                        deliver(slot, ServerLoginError{"08P01", std::string(fail.reason)}, own);
                    }
                },
            },
            action);
    }
}

void ServerPool::deliver(const std::shared_ptr<WaitSlot>& slot, Delivery delivery,
                         const std::shared_ptr<WaitSlot>& own) {
    if (slot == own) {
        // The acquiring session runs this very call on its own thread: no need to wake it.
        slot->result = std::move(delivery);
        return;
    }
    asio::post(slot->executor, [slot, delivery = std::move(delivery)]() mutable {
        slot->result = std::move(delivery);
        slot->wake->cancel();
    });
}

ServerLease& ServerLease::operator=(ServerLease&& other) noexcept {
    if (this != &other) {
        release(pool::Release::close);
        pool_ = std::move(other.pool_);
        server_ = std::move(other.server_);
    }
    return *this;
}

void ServerLease::release(pool::Release how) {
    if (server_) pool_->release(std::move(server_), how);
}

void ServerPool::fail_waiters_if_serverless(const ServerLoginError& error) {
    std::vector<std::shared_ptr<WaitSlot>> failed;
    {
        std::lock_guard lock{mutex_};
        if (core_.stats(now()).servers != 0) return;
        for (auto& [waiter, slot] : waiting_) {
            if (core_.cancel_wait(waiter)) failed.push_back(std::move(slot));
        }
        std::erase_if(waiting_, [](const auto& entry) { return entry.second == nullptr; });
    }
    for (const auto& slot : failed)
        deliver(slot, error, nullptr);
}

asio::awaitable<void> ServerPool::log_in(pool::ServerId id, int worker) {
    ServerCredentials credentials;
    {
        std::lock_guard lock{mutex_};
        credentials = credentials_;
    }
    // The TLS contexts in force now: a RELOAD's new certificates apply to the next login.
    const auto tls = tls_.get();
    auto server =
        co_await connect_server(id, name_, settings_.host, credentials, settings_.global, *tls);
    const auto self = shared_from_this();
    pool::Actions actions;
    if (server) {
        std::lock_guard lock{mutex_};
        if (welcome_.empty()) welcome_ = (*server)->welcome().parameters;
        login_error_.reset();
        record_facts(**server);
        parked_[id] = std::move(*server);
        actions = core_.connected(id, worker, now());
    } else {
        log::warning("S-", static_cast<std::uint64_t>(id), " ", name_, "@",
                     settings_.host.to_string(), " login failed: ", server.error().message);
        {
            std::lock_guard lock{mutex_};
            actions = core_.connect_failed(id, now());
            login_error_ = server.error();
        }
        fail_waiters_if_serverless(server.error());
    }
    execute(std::move(actions));
}

void ServerPool::maintain(pool::ServerId id, const std::string& sql) {
    std::unique_ptr<ServerConn> server;
    {
        std::lock_guard lock{mutex_};
        server = unpark(id);
    }
    // On the worker the connection lives on: its socket belongs to that io_context.
    const auto executor = server->stream().get_executor();
    asio::co_spawn(executor, run_maintenance(std::move(server), sql),
                   [](std::exception_ptr e) { log::failure("server check or reset", e); });
}

asio::awaitable<void> ServerPool::run_maintenance(std::unique_ptr<ServerConn> server,
                                                  std::string sql) {
    const auto self = shared_from_this();
    // A server that stops answering (a path that drops packets and sends no reset) would keep
    // its place in the pool for ever, lent to no one: the query is bounded as a login is.
    const auto outcome = co_await within(settings_.global.server_connect_timeout,
                                         run_maintenance_query(*server, sql));
    const bool passed = outcome.value_or(false);
    const auto id = server->id();
    if (!passed) {
        log::info(server->name(), " closing because: server check or reset query ",
                  outcome ? "failed" : "timed out (server_connect_timeout)");
        server.reset();
    }
    pool::Actions actions;
    {
        std::lock_guard lock{mutex_};
        if (passed) {
            parked_[id] = std::move(server);
            actions = core_.tested(id, now());
        } else {
            actions = forget(id);
        }
    }
    execute(std::move(actions));
}

} // namespace proxy
