#pragma once

// A fake driver for pool::Core tests: a fake clock (`t(5s)` is five seconds after an arbitrary
// origin), limits with every rule switched off but pool_size, the shared objects a Core needs,
// short-hands that bring servers into a state, and doctest printers so that a failed
// `CHECK(actions == Actions{...})` shows both sides.

#include "pool/core.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace pool::test {

using namespace std::chrono_literals;

inline TimePoint t(Duration since_origin) {
    return TimePoint{} + since_origin;
}

inline WaiterId w(std::uint64_t n) {
    return WaiterId{n};
}

// pool_size 2 and nothing else: no reserve, no timeouts, no checks, a lifetime no test reaches.
inline Limits quiet() {
    Limits limits;
    limits.pool_size = 2;
    limits.reserve_pool_timeout = 5s;
    limits.server_lifetime = 1000h;
    limits.server_login_retry = 15s;
    return limits;
}

// A Core with Caps of its own, unless given shared ones.
struct Pool {
    explicit Pool(const Limits& limits = quiet(), Key key = {"app", "alice"},
                  std::shared_ptr<Caps> database = std::make_shared<Caps>(),
                  std::shared_ptr<Caps> user = std::make_shared<Caps>(),
                  std::shared_ptr<ServerIds> server_ids = std::make_shared<ServerIds>())
        : database_caps(database), user_caps(user), ids(server_ids),
          core(std::move(key), limits, std::move(database), std::move(user),
               std::move(server_ids)) {}

    std::shared_ptr<Caps> database_caps;
    std::shared_ptr<Caps> user_caps;
    std::shared_ptr<ServerIds> ids;
    Core core;
};

// The one action of `actions`, which must be a T.
template <class T>
T only(const Actions& actions) {
    REQUIRE(actions.size() == 1);
    REQUIRE(std::holds_alternative<T>(actions.front()));
    return std::get<T>(actions.front());
}

// Waiters the helpers below use; tests number theirs from 1.
inline constexpr std::uint64_t helper_waiters = 1000;

// Servers opened and logged in on the given workers, used once and released clean at `now` in
// the order given, so the last is the most recently used. The pool must have no idle server
// and no waiter, and room for them all.
inline std::vector<ServerId> idle_servers(Core& core, const std::vector<int>& workers,
                                          TimePoint now) {
    std::vector<ServerId> servers;
    for (std::size_t i = 0; i < workers.size(); ++i) {
        servers.push_back(only<Open>(core.acquire(w(helper_waiters + i), workers[i], now)).server);
    }
    for (std::size_t i = 0; i < workers.size(); ++i) {
        REQUIRE(only<Assign>(core.connected(servers[i], workers[i], now)).server == servers[i]);
    }
    for (const ServerId server : servers) {
        REQUIRE(core.release(server, Release::clean, now).empty());
    }
    return servers;
}

// A server opened for `waiter` on `worker`, logged in and linked to it.
inline ServerId active_server(Core& core, WaiterId waiter, int worker, TimePoint now) {
    const ServerId server = only<Open>(core.acquire(waiter, worker, now)).server;
    REQUIRE(only<Assign>(core.connected(server, worker, now)) == Assign{waiter, server});
    return server;
}

template <class Id>
std::uint64_t number(Id id) {
    return static_cast<std::uint64_t>(id);
}

inline std::string describe(const Action& action) {
    std::ostringstream out;
    std::visit(
        [&out](const auto& a) {
            using T = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<T, Assign>) {
                out << "Assign{w" << number(a.waiter) << ", s" << number(a.server) << "}";
            } else if constexpr (std::is_same_v<T, Open>) {
                out << "Open{s" << number(a.server) << ", worker "
                    << (a.worker ? std::to_string(*a.worker) : "any")
                    << (a.reserve ? ", reserve}" : "}");
            } else if constexpr (std::is_same_v<T, Close>) {
                out << "Close{s" << number(a.server) << ", " << a.reason << "}";
            } else if constexpr (std::is_same_v<T, Check>) {
                out << "Check{s" << number(a.server) << "}";
            } else if constexpr (std::is_same_v<T, Reset>) {
                out << "Reset{s" << number(a.server) << "}";
            } else {
                static_assert(std::is_same_v<T, FailWaiter>);
                out << "FailWaiter{w" << number(a.waiter) << ", " << a.reason << "}";
            }
        },
        action);
    return out.str();
}

} // namespace pool::test

namespace doctest {

template <>
struct StringMaker<pool::Actions> {
    static String convert(const pool::Actions& actions) {
        std::string text = "[";
        for (const pool::Action& action : actions) {
            text += (text.size() > 1 ? ", " : "") + pool::test::describe(action);
        }
        return (text + "]").c_str();
    }
};

template <>
struct StringMaker<std::optional<pool::ServerState>> {
    static String convert(const std::optional<pool::ServerState>& state) {
        return state ? String(std::string(pool::to_string(*state)).c_str()) : String("forgotten");
    }
};

template <>
struct StringMaker<pool::ServerState> {
    static String convert(pool::ServerState state) {
        return std::string(pool::to_string(state)).c_str();
    }
};

template <>
struct StringMaker<pool::Stats> {
    static String convert(const pool::Stats& s) {
        std::ostringstream out;
        out << "{cl_waiting " << s.cl_waiting << ", active " << s.sv_active << ", active_cancel "
            << s.sv_active_cancel << ", being_canceled " << s.sv_being_canceled << ", idle "
            << s.sv_idle << ", used " << s.sv_used << ", tested " << s.sv_tested << ", login "
            << s.sv_login << ", closing " << s.sv_closing << ", maxwait " << s.maxwait << "."
            << s.maxwait_us << ", servers " << s.servers << "}";
        return out.str().c_str();
    }
};

} // namespace doctest
