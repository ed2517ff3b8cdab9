#include "proxy/stale_plan_retry.hpp"

#include "wire/fe_query.hpp"
#include "wire/reader.hpp"

#include <utility>

namespace proxy {
namespace {

// What reset() lets a client keep between transactions; the messages of one execution of a
// prepared statement with a few parameters fit.
constexpr std::size_t retained_capacity = 4096;

bool continues_request(const wire::Frame& frame) {
    if (frame.type == wire::fe::Execute::type) return true;
    // The bytes kept are the client's, so only messages that reach the server untouched count:
    // a Describe of a statement goes out renamed (and describes no execution anyway).
    return frame.type == wire::fe::Describe::type && !frame.body.empty() &&
           frame.body.front() == static_cast<std::byte>(wire::fe::ObjectKind::portal);
}

// Whether the Bind asks for one format for every result column (none: all text). A list with a
// format per column (pgJDBC's, once it knows the columns) was built for the columns the
// statement had: sent again after DDL, it would get 08P01 "bind message has 1 result formats
// but query has 2 columns" in place of the 0A000 that such drivers recognise.
bool formats_all_columns_alike(std::span<const std::byte> bind) {
    wire::Reader reader(bind.subspan(5));
    if (!reader.cstr() || !reader.cstr()) return false;
    const auto parameter_formats = reader.i16();
    if (!parameter_formats || *parameter_formats < 0 ||
        !reader.bytes(2 * static_cast<std::size_t>(*parameter_formats)))
        return false;
    const auto parameters = reader.i16();
    if (!parameters || *parameters < 0) return false;
    for (std::int16_t i = 0; i < *parameters; ++i) {
        const auto length = reader.i32();
        if (!length || (*length > 0 && !reader.bytes(static_cast<std::size_t>(*length))))
            return false;
    }
    const auto result_formats = reader.i16();
    return result_formats && *result_formats >= 0 && *result_formats <= 1;
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
    if (!whole || !opens_batch || bind.size() > max_request || !formats_all_columns_alike(bind))
        return;
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
