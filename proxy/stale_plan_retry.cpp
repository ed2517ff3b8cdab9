#include "proxy/stale_plan_retry.hpp"

#include "wire/fe_query.hpp"

#include <utility>

namespace proxy {
namespace {

// What reset() lets a client keep between transactions; the messages of one execution of a
// prepared statement with a few parameters fit.
constexpr std::size_t retained_capacity = 4096;

bool continues_request(const wire::Frame& frame) {
    if (frame.type == wire::fe::Execute::type) return true;
    // Describe(statement) would be answered with a ParameterDescription before the Bind's
    // error could be known; only the portal's description is part of the execution.
    return frame.type == wire::fe::Describe::type && !frame.body.empty() &&
           frame.body.front() == static_cast<std::byte>(wire::fe::ObjectKind::portal);
}

} // namespace

void StalePlanRetry::on_client(const wire::Framer::Piece& piece) {
    switch (state_) {
    case State::none:
        return;
    case State::recording:
        if (piece.rest == 0 && continues_request(piece.frame)) {
            (void)add(piece.bytes);
            return;
        }
        if (piece.rest == 0 && piece.frame.type == wire::fe::Sync::type) {
            if (add(piece.bytes)) state_ = State::kept;
            return;
        }
        drop();
        return;
    case State::kept:
        // Written after the Sync, this message would be answered before a replay.
        drop();
        return;
    case State::due:
        // The refusal and the replay happen in one step of the session, with no client message
        // read in between.
        return;
    }
}

void StalePlanRetry::on_bind(std::span<const std::byte> bind, bool whole, bool opens_batch,
                             pool::StatementPtr statement, std::uint64_t tag) {
    drop();
    if (!whole || !opens_batch || bind.size() > max_request) return;
    request_.assign(bind.begin(), bind.end());
    statement_ = std::move(statement);
    tag_ = tag;
    state_ = State::recording;
}

bool StalePlanRetry::on_stale_plan(std::uint64_t tag) {
    if (state_ != State::kept || tag != tag_) return false;
    state_ = State::due;
    withhold_ready_ = true;
    return true;
}

bool StalePlanRetry::on_ready() noexcept {
    return std::exchange(withhold_ready_, false);
}

StalePlanRetry::Replay StalePlanRetry::take() {
    state_ = State::none;
    return {std::move(statement_), request_};
}

void StalePlanRetry::reset() noexcept {
    drop();
    withhold_ready_ = false;
    if (request_.capacity() > retained_capacity) request_ = {};
}

void StalePlanRetry::drop() noexcept {
    state_ = State::none;
    statement_.reset();
}

bool StalePlanRetry::add(std::span<const std::byte> message) {
    if (request_.size() + message.size() > max_request) {
        drop();
        return false;
    }
    request_.insert(request_.end(), message.begin(), message.end());
    return true;
}

} // namespace proxy
