#include "proxy/client_activity.hpp"

namespace proxy {
namespace {

std::uint64_t micros(ClientActivity::TimePoint from, ClientActivity::TimePoint to) {
    const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(to - from);
    return elapsed.count() > 0 ? static_cast<std::uint64_t>(elapsed.count()) : 0;
}

double seconds(std::uint64_t micros) {
    return static_cast<double>(micros) / 1e6;
}

ClientInfo::Clock::rep wall_clock_now() {
    return ClientInfo::Clock::now().time_since_epoch().count();
}

} // namespace

void ClientActivity::waiting(TimePoint now) {
    wait_started_ = now;
    info_->wait_since.store(wall_clock_now(), std::memory_order_relaxed);
    info_->state.store(ClientState::waiting, std::memory_order_relaxed);
}

void ClientActivity::linked(pool::ServerId server, TimePoint now) {
    const auto waited = micros(wait_started_, now);
    TrafficStats::add(traffic_.server_assignments, 1);
    TrafficStats::add(traffic_.wait_time, waited);
    histograms_.wait.Observe(seconds(waited));
    info_->link.store(static_cast<std::uint64_t>(server), std::memory_order_relaxed);
    info_->wait_since.store(0, std::memory_order_relaxed);
    info_->state.store(ClientState::active, std::memory_order_relaxed);
}

void ClientActivity::unlinked() {
    info_->link.store(0, std::memory_order_relaxed);
    info_->state.store(ClientState::idle, std::memory_order_relaxed);
    // A transaction the server was closed in the middle of is not a transaction served.
    query_started_.reset();
    xact_started_.reset();
}

void ClientActivity::request(TimePoint now) {
    info_->request_time.store(wall_clock_now(), std::memory_order_relaxed);
    if (!query_started_) query_started_ = now;
    if (!xact_started_) xact_started_ = now;
}

void ClientActivity::ready(wire::be::TransactionStatus status, TimePoint now) {
    if (query_started_) {
        const auto took = micros(*query_started_, now);
        TrafficStats::add(traffic_.queries, 1);
        TrafficStats::add(traffic_.query_time, took);
        histograms_.query.Observe(seconds(took));
        query_started_.reset();
    }
    if (status == wire::be::TransactionStatus::idle && xact_started_) {
        const auto took = micros(*xact_started_, now);
        TrafficStats::add(traffic_.xacts, 1);
        TrafficStats::add(traffic_.xact_time, took);
        histograms_.transaction.Observe(seconds(took));
        xact_started_.reset();
    }
}

} // namespace proxy
