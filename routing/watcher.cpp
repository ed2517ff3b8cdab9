#include "routing/watcher.hpp"

#include "routing/probe_connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <exception>
#include <optional>
#include <utility>

namespace routing {

namespace asio = boost::asio;

namespace {

// Expected conditions (a sleep cut short) come back as values, not exceptions.
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Everything a probe reports, in one round trip. pg_is_in_recovery() is read once, in a
// materialized CTE, so that a promotion during the query cannot mix the two branches.
// - timeline: on a primary, pg_control_checkpoint() lags behind a promotion until the next
//   checkpoint, while the name of the current WAL file starts with the current timeline (8 hex
//   digits); pg_walfile_name() is refused during recovery, hence the CASE. On a replica, the
//   timeline it streams (received_tli, visible with pg_read_all_stats, part of pg_monitor), or
//   its last restartpoint's when it streams nothing.
// - lsn: the primary's current WAL position; what a replica has replayed (NULL before it
//   replayed anything).
// - delay: 0 on a replica that replayed all it received, since an idle primary commits nothing
//   and would make it look late; otherwise the age of the last replayed commit, never negative
//   when the clocks disagree.
constexpr const char* probe_sql = R"(WITH status AS MATERIALIZED (
  SELECT pg_is_in_recovery() AS in_recovery)
SELECT in_recovery,
  CASE WHEN in_recovery
    THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver),
                  (SELECT timeline_id FROM pg_control_checkpoint()))
    ELSE ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::bigint
  END,
  CASE WHEN in_recovery THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
  CASE WHEN NOT in_recovery OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE greatest(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
  END::float8
FROM status)";

// What one successful probe measured.
struct Sample {
    Role role = Role::unknown;
    std::uint32_t timeline = 0;
    Lsn wal_lsn = 0;
    double replay_delay_seconds = 0;
};

// A probe's row as a Sample, or why it is not one.
struct ProbeOutcome {
    std::optional<Sample> sample;
    std::string error;
    Clock::time_point sent{}; // when the query was sent
    // The connection went away during the query (not a timeout, not an error the server
    // reported while staying connected).
    bool lost = false;
};

ProbeOutcome failure(std::string error) {
    ProbeOutcome outcome;
    outcome.error = std::move(error);
    return outcome;
}

template <class Number>
bool parse_number(const char* text, Number& value) {
    const std::string_view view{text};
    const auto [end, error] = std::from_chars(view.data(), view.data() + view.size(), value);
    return error == std::errc{} && end == view.data() + view.size();
}

ProbeOutcome read_sample(const PGresult* rows) {
    if (PQntuples(rows) != 1 || PQnfields(rows) != 4)
        return failure("the probe query returned an unexpected shape");
    Sample sample;
    const std::string_view in_recovery = PQgetvalue(rows, 0, 0);
    sample.role = in_recovery == "t" ? Role::replica : Role::primary;
    const bool ok = (in_recovery == "t" || in_recovery == "f") &&
                    parse_number(PQgetvalue(rows, 0, 1), sample.timeline) &&
                    parse_number(PQgetvalue(rows, 0, 3), sample.replay_delay_seconds);
    // A replica that has not replayed anything yet reports no position: 0.
    const std::optional<Lsn> lsn =
        PQgetisnull(rows, 0, 2) == 1 ? Lsn{0} : parse_lsn(PQgetvalue(rows, 0, 2));
    if (!ok || !lsn) return failure("the probe query returned values it should not");
    sample.wal_lsn = *lsn;
    ProbeOutcome outcome;
    outcome.sample = sample;
    return outcome;
}

ConnectParams connect_params(const WatcherSettings& settings, const WatchedHost& host) {
    ConnectParams params{{"host", host.host}, {"port", std::to_string(host.port)}};
    // libpq resolves `host` with a blocking getaddrinfo() that would stall the executor; an
    // address given as hostaddr is used as is (`host` then only names it, for TLS).
    boost::system::error_code not_an_address;
    asio::ip::make_address(host.host, not_an_address);
    if (!not_an_address) params.emplace_back("hostaddr", host.host);
    // Empty values are left out, so that libpq's defaults apply.
    for (const auto& [keyword, value] :
         {std::pair{"user", &settings.user}, std::pair{"password", &settings.password},
          std::pair{"dbname", &settings.dbname}, std::pair{"sslmode", &settings.sslmode},
          std::pair{"sslrootcert", &settings.sslrootcert}}) {
        if (!value->empty()) params.emplace_back(keyword, *value);
    }
    params.emplace_back("application_name", "pgmarina-watcher");
    return params;
}

// One attempt: logs in unless `connection` is open, then runs the probe query.
asio::awaitable<ProbeOutcome> attempt(ProbeConnection& connection, const WatcherSettings& settings,
                                      const WatchedHost& host) {
    if (!connection.is_open()) {
        std::string error =
            co_await connection.open(connect_params(settings, host), settings.timeout);
        if (!error.empty()) co_return failure(std::move(error));
    }
    const auto sent = Clock::now();
    QueryReply reply = co_await connection.query(probe_sql, settings.timeout);
    ProbeOutcome outcome =
        reply.rows ? read_sample(reply.rows.get()) : failure(std::move(reply.error));
    outcome.sent = sent;
    outcome.lost = !reply.rows && !reply.timed_out && !connection.is_open();
    // Any failure opens a new connection for the next probe.
    if (!outcome.sample) connection.close();
    co_return outcome;
}

// One probe of `host`. A connection kept from an earlier probe may have been closed since by
// the server (a restart, idle_session_timeout), which says nothing about the server now: such a
// failure is followed by one attempt on a new connection. A timeout is not, as a hung server
// would then take twice as long to be reported.
asio::awaitable<ProbeOutcome> probe(ProbeConnection& connection, const WatcherSettings& settings,
                                    const WatchedHost& host) {
    const bool reused = connection.is_open();
    ProbeOutcome outcome = co_await attempt(connection, settings, host);
    if (reused && outcome.lost) outcome = co_await attempt(connection, settings, host);
    co_return outcome;
}

} // namespace

// One host's probing loop and what it learned. Touched on the executor only.
struct HostProbe {
    HostProbe(const asio::any_io_executor& executor, WatchedHost watched)
        : host(std::move(watched)), wake(executor) {
        state.name = host.name;
    }

    WatchedHost host;
    HostState state;
    // The sleep between two probes; probe_now() and reconfigure() cancel it to probe at once.
    asio::steady_timer wake;
    bool wake_requested = false; // a wake came while no sleep was under way
    bool reconnect = false;      // the settings changed: log in again before the next probe
    bool looping = false;        // the loop has started and not yet ended
    bool stopped = false;        // removed, or run() ended: the loop ends at its next step
    // Interrupts the probe or sleep under way when stopped.
    asio::cancellation_signal stop;
};

struct Watcher::Impl : std::enable_shared_from_this<Impl> {
    Impl(asio::any_io_executor executor, WatcherSettings settings, Listener listener)
        : executor_(std::move(executor)), settings_(std::move(settings)),
          listener_(std::move(listener)), loops_ended_(executor_) {}

    static asio::awaitable<void> run(std::shared_ptr<Impl> self);
    static asio::awaitable<void> watch(std::shared_ptr<Impl> self, std::shared_ptr<HostProbe> host);

    void set_hosts(std::vector<WatchedHost> hosts);
    void start(const std::shared_ptr<HostProbe>& host);
    static void stop(HostProbe& host);
    static void wake(HostProbe& host);
    void publish() const;

    // The members below are touched on executor_ only, except before the first post.
    asio::any_io_executor executor_;
    WatcherSettings settings_;
    Listener listener_;
    std::vector<std::shared_ptr<HostProbe>> hosts_; // in the order given
    bool running_ = false;                          // run() is under way
    int loops_ = 0;                                 // host loops started and not yet ended
    asio::steady_timer loops_ended_;                // cancelled when loops_ drops to 0
};

Watcher::Watcher(asio::any_io_executor executor, WatcherSettings settings,
                 std::vector<WatchedHost> hosts, Listener listener)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(settings), std::move(listener))) {
    impl_->set_hosts(std::move(hosts));
}

// The loops hold the Impl; they end when run() is cancelled or the io_context goes.
Watcher::~Watcher() = default;

asio::awaitable<void> Watcher::run() {
    return Impl::run(impl_);
}

void Watcher::probe_now(std::string_view host_name) {
    asio::post(impl_->executor_, [impl = impl_, name = std::string{host_name}] {
        for (const auto& host : impl->hosts_) {
            if (host->host.name == name) Impl::wake(*host);
        }
    });
}

void Watcher::reconfigure(WatcherSettings settings, std::vector<WatchedHost> hosts) {
    asio::post(impl_->executor_,
               [impl = impl_, settings = std::move(settings), hosts = std::move(hosts)]() mutable {
                   if (settings != impl->settings_) {
                       impl->settings_ = std::move(settings);
                       for (const auto& host : impl->hosts_) {
                           host->reconnect = true;
                           Impl::wake(*host);
                       }
                   }
                   impl->set_hosts(std::move(hosts));
                   // Removed hosts leave the listener's view now, rather than at the next probe.
                   impl->publish();
               });
}

asio::awaitable<void> Watcher::Impl::run(std::shared_ptr<Impl> self) {
    // Cancellation ends the wait below rather than throwing out of it.
    co_await asio::this_coro::throw_if_cancelled(false);
    // An owner may cancel with `total` first (design.md: task groups), not only `terminal`.
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    self->running_ = true;
    for (const auto& host : self->hosts_)
        self->start(host);

    asio::steady_timer until_cancelled{self->executor_, Clock::time_point::max()};
    co_await until_cancelled.async_wait(nothrow);

    self->running_ = false;
    for (const auto& host : self->hosts_)
        stop(*host);
    // Returning once every loop has ended means that the listener is not called afterwards.
    while (self->loops_ > 0) {
        self->loops_ended_.expires_at(Clock::time_point::max());
        co_await self->loops_ended_.async_wait(nothrow);
    }
}

asio::awaitable<void> Watcher::Impl::watch(std::shared_ptr<Impl> self,
                                           std::shared_ptr<HostProbe> host) {
    // stop() interrupts a login, a query or a sleep; the loop then ends on its own.
    co_await asio::this_coro::throw_if_cancelled(false);
    host->looping = true;
    ProbeConnection connection{self->executor_};
    while (!host->stopped) {
        const auto started = Clock::now();
        host->wake_requested = false;
        if (host->reconnect) connection.close();
        host->reconnect = false;
        // A copy: reconfigure() may replace the settings while the probe is under way.
        const WatcherSettings settings = self->settings_;
        ProbeOutcome outcome = co_await probe(connection, settings, host->host);
        if (!host->stopped) {
            HostState& state = host->state;
            state.probed_at = Clock::now();
            if (outcome.sample) {
                state.role = outcome.sample->role;
                state.healthy = true;
                state.timeline = outcome.sample->timeline;
                state.wal_lsn = outcome.sample->wal_lsn;
                state.replay_delay_seconds = outcome.sample->replay_delay_seconds;
                state.probe_started = outcome.sent;
                state.failures = 0;
                state.error.clear();
            } else {
                // What the last successful probe measured stays, for whoever wants to know
                // where the host was; role and health say it cannot be relied on now.
                state.role = Role::unknown;
                state.healthy = false;
                ++state.failures;
                state.error = std::move(outcome.error);
            }
            self->publish();
        }
        if (!host->stopped && !host->wake_requested) {
            host->wake.expires_at(started + self->settings_.interval);
            co_await host->wake.async_wait(nothrow);
        }
    }
    host->looping = false;
}

void Watcher::Impl::set_hosts(std::vector<WatchedHost> hosts) {
    std::vector<std::shared_ptr<HostProbe>> next;
    next.reserve(hosts.size());
    for (auto& watched : hosts) {
        std::shared_ptr<HostProbe> kept;
        for (auto& host : hosts_) {
            if (host && host->host == watched) {
                kept = std::move(host);
                break;
            }
        }
        if (!kept) {
            kept = std::make_shared<HostProbe>(executor_, std::move(watched));
            if (running_) start(kept);
        }
        next.push_back(std::move(kept));
    }
    for (const auto& removed : hosts_) {
        if (removed) stop(*removed);
    }
    hosts_ = std::move(next);
}

void Watcher::Impl::start(const std::shared_ptr<HostProbe>& host) {
    host->stopped = false;
    ++loops_;
    auto self = shared_from_this();
    asio::co_spawn(
        executor_, watch(self, host),
        asio::bind_cancellation_slot(host->stop.slot(), [self](std::exception_ptr error) {
            if (--self->loops_ == 0) self->loops_ended_.cancel();
            // The loop expects no exception: one is a bug.
            if (error) std::rethrow_exception(error);
        }));
}

void Watcher::Impl::stop(HostProbe& host) {
    host.stopped = true;
    // Before the loop has started, co_spawn would turn the cancellation into an exception; the
    // loop sees `stopped` as soon as it starts anyway.
    if (host.looping) host.stop.emit(asio::cancellation_type::terminal);
}

void Watcher::Impl::wake(HostProbe& host) {
    host.wake_requested = true;
    host.wake.cancel();
}

void Watcher::Impl::publish() const {
    if (!listener_) return;
    std::vector<HostState> states;
    states.reserve(hosts_.size());
    for (const auto& host : hosts_)
        states.push_back(host->state);
    listener_(states);
}

} // namespace routing
