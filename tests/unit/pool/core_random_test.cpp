// Random events from a driver that follows the rules, checking after every step what must always
// hold: the SHOW POOLS counts match the servers' states, the limits hold, every action makes sense
// for what the driver knows, and no server with a cancel in flight is handed out.
#include "pool/core.hpp"

#include "tests/support/pool_harness.hpp"

#include <doctest/doctest.h>

#include <array>
#include <deque>
#include <map>
#include <random>
#include <set>

namespace {

using namespace pool;
using namespace pool::test;

// What a driver knows about one pool, learnt only from the actions it was given.
struct Model {
    explicit Model(const Limits& limits, Key key, std::shared_ptr<Caps> database,
                   std::shared_ptr<ServerIds> ids)
        : pool(limits, std::move(key), std::move(database), std::make_shared<Caps>(),
               std::move(ids)) {}

    Pool pool;
    std::set<ServerId> servers;          // opened and not yet forgotten
    std::set<WaiterId> waiting;          // acquired, not yet assigned, failed or cancelled
    std::map<ServerId, WaiterId> linked; // from Assign until release or closed
    std::map<ServerId, int> cancels;     // begin_cancel minus end_cancel
    std::uint64_t next_waiter = 1;
};

class Run {
public:
    explicit Run(unsigned seed) : random_(seed) {
        Limits limits = quiet();
        limits.pool_size = 3;
        limits.min_pool_size = pick(0, 1);
        limits.reserve_pool_size = 1;
        limits.reserve_pool_timeout = 2s;
        limits.server_idle_timeout = 20s;
        limits.server_lifetime = std::array{0s, 30s, 300s}[pick(0, 2)];
        limits.server_check_delay = std::array<std::optional<Duration>, 3>{
            std::nullopt, Duration::zero(), Duration{5s}}[pick(0, 2)];
        limits.server_login_retry = 3s;
        limits.query_wait_timeout = 15s;
        database_ = std::make_shared<Caps>(4);
        for (const char* user : {"alice", "bob"}) {
            models_.emplace_back(limits, Key{"app", user}, database_, ids_);
        }
    }

    void step() {
        now_ += Duration{pick(0, 500'000)};
        Model& model = models_[pick(0, 1)];
        Core& core = model.pool.core;
        const auto in = [&](ServerState state) { return servers_in(model, state); };
        std::optional<ServerId> forgotten;
        Actions actions;
        switch (pick(0, 11)) {
        case 0:
        case 1: {
            const WaiterId waiter{model.next_waiter++};
            model.waiting.insert(waiter);
            actions = core.acquire(waiter, pick(0, 2), now_);
            break;
        }
        case 2:
            if (!model.waiting.empty() && pick(0, 3) == 0) {
                const WaiterId waiter = any(model.waiting);
                CHECK(core.cancel_wait(waiter));
                model.waiting.erase(waiter);
            }
            break;
        case 3:
            if (const auto servers = in(ServerState::active); !servers.empty()) {
                const ServerId server = any(servers);
                model.linked.erase(server);
                actions = core.release(server, static_cast<Release>(pick(0, 2)), now_);
            }
            break;
        case 4:
            if (const auto servers = in(ServerState::login); !servers.empty()) {
                const ServerId server = any(servers);
                if (pick(0, 3) == 0) {
                    forgotten = server;
                    actions = core.connect_failed(server, now_);
                } else {
                    actions = core.connected(server, pick(0, 2), now_);
                }
            }
            break;
        case 5:
            if (const auto servers = in(ServerState::tested); !servers.empty()) {
                actions = core.tested(any(servers), now_);
            }
            break;
        case 6: {
            // Mostly the closes the Core asked for; sometimes a connection that died.
            auto servers = in(ServerState::closing);
            if (servers.empty() || pick(0, 4) == 0) {
                servers = model.servers;
                std::erase_if(servers,
                              [&](ServerId s) { return core.state(s) == ServerState::login; });
            }
            if (!servers.empty()) {
                forgotten = any(servers);
                model.linked.erase(*forgotten);
                actions = core.closed(*forgotten, now_);
            }
            break;
        }
        case 7:
            if (const auto servers = in(ServerState::active); !servers.empty()) {
                const ServerId server = any(servers);
                CHECK_FALSE(core.begin_cancel(server, WaiterId{0}));
                REQUIRE(core.begin_cancel(server, model.linked.at(server)));
                ++model.cancels[server];
            }
            break;
        case 8:
            if (!model.cancels.empty()) {
                const ServerId server = model.cancels.begin()->first;
                if (--model.cancels[server] == 0) {
                    model.cancels.erase(server);
                }
                actions = core.end_cancel(server, now_);
            }
            break;
        case 9:
            actions = core.tick(now_);
            break;
        case 10:
            actions = pick(0, 1) == 0 ? core.retry(now_) : core.evict();
            break;
        case 11:
            if (pick(0, 20) == 0) {
                actions = core.mark_close_needed();
            }
            break;
        }
        apply(model, actions);
        for (const ServerId server : model.servers) {
            CHECK_MESSAGE((core.state(server) != std::nullopt || server == forgotten),
                          "a server vanished without connect_failed or closed");
        }
        if (forgotten) {
            CHECK(core.state(*forgotten) == std::nullopt);
            model.servers.erase(*forgotten);
        }
        check_invariants();
    }

private:
    int pick(int low, int high) { return std::uniform_int_distribution(low, high)(random_); }

    template <class Set>
    typename Set::value_type any(const Set& set) {
        auto it = set.begin();
        std::advance(it, pick(0, static_cast<int>(set.size()) - 1));
        return *it;
    }

    static std::set<ServerId> servers_in(const Model& model, ServerState state) {
        std::set<ServerId> out;
        for (const ServerId server : model.servers) {
            if (model.pool.core.state(server) == state) {
                out.insert(server);
            }
        }
        return out;
    }

    void apply(Model& model, const Actions& actions) {
        const Core& core = model.pool.core;
        for (const Action& action : actions) {
            INFO(describe(action));
            if (const auto* assign = std::get_if<Assign>(&action)) {
                CHECK(model.waiting.erase(assign->waiter) == 1);
                CHECK(model.servers.contains(assign->server));
                CHECK(core.state(assign->server) == ServerState::active);
                CHECK_FALSE(model.cancels.contains(assign->server));
                model.linked[assign->server] = assign->waiter;
            } else if (const auto* open = std::get_if<Open>(&action)) {
                CHECK(model.servers.insert(open->server).second);
                CHECK(core.state(open->server) == ServerState::login);
            } else if (const auto* close = std::get_if<Close>(&action)) {
                CHECK(model.servers.contains(close->server));
                CHECK(core.state(close->server) == ServerState::closing);
                model.linked.erase(close->server);
            } else if (const auto* check = std::get_if<Check>(&action)) {
                CHECK(core.state(check->server) == ServerState::tested);
            } else if (const auto* reset = std::get_if<Reset>(&action)) {
                CHECK(core.state(reset->server) == ServerState::tested);
            } else {
                CHECK(model.waiting.erase(std::get<FailWaiter>(action).waiter) == 1);
            }
        }
    }

    void check_invariants() {
        int all_servers = 0;
        for (const Model& model : models_) {
            const Core& core = model.pool.core;
            const Stats stats = core.stats(now_);
            std::map<ServerState, std::size_t> counted;
            for (const ServerId server : model.servers) {
                ++counted[*core.state(server)];
            }
            CHECK(stats.sv_login == counted[ServerState::login]);
            CHECK(stats.sv_idle == counted[ServerState::idle]);
            CHECK(stats.sv_used == counted[ServerState::used]);
            CHECK(stats.sv_tested == counted[ServerState::tested]);
            CHECK(stats.sv_active == counted[ServerState::active]);
            CHECK(stats.sv_being_canceled == counted[ServerState::being_canceled]);
            CHECK(stats.sv_closing == counted[ServerState::closing]);
            CHECK(stats.servers == model.servers.size());
            CHECK(stats.cl_waiting == model.waiting.size());
            CHECK(model.linked.size() == stats.sv_active);
            std::size_t cancels = 0;
            for (const auto& [server, count] : model.cancels) {
                cancels += static_cast<std::size_t>(count);
            }
            CHECK(stats.sv_active_cancel == cancels);
            // A waiter never waits while an idle server could serve it, nor while a used one
            // could be checked for it.
            CHECK((stats.cl_waiting == 0 || stats.sv_idle == 0));
            CHECK((stats.cl_waiting <= stats.sv_login + stats.sv_tested || stats.sv_used == 0));
            CHECK(stats.servers <= static_cast<std::size_t>(core.limits().pool_size +
                                                            core.limits().reserve_pool_size));
            CHECK(model.pool.user_caps->current() == static_cast<int>(stats.servers));
            all_servers += static_cast<int>(stats.servers);
        }
        CHECK(database_->current() == all_servers);
        CHECK(database_->current() <= database_->max());
    }

    std::mt19937 random_;
    TimePoint now_ = t(0s);
    std::shared_ptr<Caps> database_;
    std::shared_ptr<ServerIds> ids_ = std::make_shared<ServerIds>();
    std::deque<Model> models_; // a Core cannot move
};

} // namespace

TEST_SUITE("pool.invariants") {
    TEST_CASE("random driver events keep every count, limit and link consistent") {
        for (unsigned seed = 1; seed <= 200; ++seed) {
            CAPTURE(seed);
            Run run(seed);
            for (int i = 0; i < 500; ++i) {
                CAPTURE(i);
                run.step();
            }
        }
    }
}
