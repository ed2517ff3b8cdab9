#include "routing/topology.hpp"

#include <charconv>
#include <cstdio>

namespace routing {

namespace {

// One half of a pg_lsn text: 1 to 8 hex digits of either case, nothing else. from_chars
// refuses an empty text, and takes no sign, prefix or space for an unsigned type; the length
// check refuses leading zeros that PostgreSQL would refuse too ("000000001").
std::optional<std::uint32_t> parse_lsn_half(std::string_view digits) noexcept {
    constexpr std::size_t max_digits = 8;
    if (digits.size() > max_digits) {
        return std::nullopt;
    }
    std::uint32_t value = 0;
    const char* const last = digits.data() + digits.size();
    const auto [end, error] = std::from_chars(digits.data(), last, value, 16);
    if (error != std::errc{} || end != last) {
        return std::nullopt;
    }
    return value;
}

} // namespace

std::optional<Lsn> parse_lsn(std::string_view text) noexcept {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    const auto high = parse_lsn_half(text.substr(0, slash));
    const auto low = parse_lsn_half(text.substr(slash + 1));
    if (!high || !low) {
        return std::nullopt;
    }
    return Lsn{*high} << 32 | *low;
}

std::string format_lsn(Lsn lsn) {
    // PostgreSQL's own form ("%X/%X"), so logs and SHOW output can be pasted into SQL.
    char text[sizeof "FFFFFFFF/FFFFFFFF"];
    const int length = std::snprintf(text, sizeof text, "%X/%X", static_cast<unsigned>(lsn >> 32),
                                     static_cast<unsigned>(lsn & 0xFFFF'FFFFu));
    return std::string(text, static_cast<std::size_t>(length));
}

std::string_view to_string(Role role) noexcept {
    switch (role) {
    case Role::unknown:
        return "unknown";
    case Role::primary:
        return "primary";
    case Role::replica:
        return "replica";
    }
    return "unknown";
}

DatabaseTopology elect(std::vector<HostState> hosts) {
    DatabaseTopology topology;
    // A promotion moves the new primary to a new timeline; an old primary that comes back
    // without having seen it still claims the role on the old timeline. The highest timeline
    // fences it off. Two claimants on the same timeline cannot be told apart: neither gets
    // writes until the watcher sees one of them step down.
    std::size_t claimants = 0;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        const HostState& host = hosts[i];
        if (!host.healthy || host.role != Role::primary) {
            continue;
        }
        if (claimants == 0 || host.timeline > hosts[*topology.primary].timeline) {
            topology.primary = i;
            claimants = 1;
        } else if (host.timeline == hosts[*topology.primary].timeline) {
            ++claimants;
        }
    }
    if (claimants > 1) {
        topology.primary.reset();
        topology.split_brain = true;
    }

    const bool has_primary = topology.primary.has_value();
    const Lsn primary_lsn = has_primary ? hosts[*topology.primary].wal_lsn : 0;
    topology.hosts.reserve(hosts.size());
    for (HostState& host : hosts) {
        HostView view{std::move(host), std::nullopt};
        if (has_primary && view.state.role == Role::replica) {
            // The two probes ran at different instants: a replica probed after the primary
            // may report a position past the primary's, which is no lag at all.
            view.lag_bytes =
                primary_lsn > view.state.wal_lsn ? primary_lsn - view.state.wal_lsn : 0;
        }
        topology.hosts.push_back(std::move(view));
    }
    return topology;
}

DatabaseTopology static_topology(const std::vector<std::string>& host_names) {
    DatabaseTopology topology;
    topology.hosts.reserve(host_names.size());
    for (std::size_t i = 0; i < host_names.size(); ++i) {
        HostView view;
        view.state.name = host_names[i];
        view.state.role = i == 0 ? Role::primary : Role::replica;
        view.state.healthy = true;
        // Nothing measures these replicas: 0 keeps them usable under any max_lag_bytes.
        if (i != 0) {
            view.lag_bytes = 0;
        }
        topology.hosts.push_back(std::move(view));
    }
    if (!host_names.empty()) {
        topology.primary = 0;
    }
    return topology;
}

} // namespace routing
