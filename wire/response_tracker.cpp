#include "wire/response_tracker.hpp"

#include "wire/be_error.hpp"
#include "wire/copy.hpp"
#include "wire/fe_query.hpp"

#include <algorithm>

namespace wire {

bool ResponseTracker::on_frontend(const Frame& message, Route route, std::uint64_t tag) {
    const std::optional<Request> request = request_of(message);
    if (!request || desynchronized_) {
        return true;
    }
    if (ends_copy_stream(*request)) {
        client_in_copy_ = false;
    }
    if (skipping_) {
        if (*request != Request::sync) {
            if (!is_copy_message(*request) && unconfirmed_syncs_ > 0) {
                // The failed COPY may have ended the skip at one of its Syncs, and then the
                // server answers this request after all.
                desynchronize();
            }
            return false;
        }
        skipping_ = false;
    }
    if (is_copy_message(*request)) {
        // Outside COPY the server drops copy messages ("COPY Operations"); a run of CopyData
        // matters only as one place where a COPY FROM STDIN may fail.
        const bool run = *request == Request::copy_data && !pending_.empty() &&
                         pending_.back().request == Request::copy_data;
        if (!active_ || run) {
            return true;
        }
    }
    enqueue({*request, route, FakeReply::parse_complete, tag});
    return true;
}

std::span<const FakeReply> ResponseTracker::absorb(FakeReply reply, std::uint64_t tag) {
    fakes_.clear();
    failed_.clear();
    if (desynchronized_) {
        return {};
    }
    // The client sent a request, so it has left COPY whatever the server makes of it.
    client_in_copy_ = false;
    if (skipping_) {
        if (unconfirmed_syncs_ > 0) {
            desynchronize();
        }
        return {};
    }
    if (!active_) {
        fakes_.push_back(reply);
        return fakes_;
    }
    enqueue({Request::absorbed, Route::forward, reply, tag});
    return {};
}

Disposition ResponseTracker::on_backend(const Frame& message) {
    fakes_.clear();
    failed_.clear();
    if (desynchronized_) {
        return disposition(Route::forward);
    }
    std::optional<Route> route;
    switch (message.type) {
    case be::NoticeResponse::type:
    case be::NotificationResponse::type:
    case be::ParameterStatus::type:
        // An injected query's notices and parameter reports are its own, like its replies.
        return disposition(active_ ? active_->route : Route::forward, true);
    case be::ReadyForQuery::type:
        route = ready_for_query(message);
        break;
    case be::ErrorResponse::type:
        // Every reply but ReadyForQuery shows that no stray ReadyForQuery is left to come.
        unconfirmed_syncs_ = 0;
        route = fail();
        break;
    default:
        unconfirmed_syncs_ = 0;
        if (active_) {
            route = active_->route;
            if (!replied(message.type)) {
                route.reset();
            }
        }
        break;
    }
    if (!route) {
        desynchronize();
        return disposition(Route::forward);
    }
    return disposition(*route);
}

bool ResponseTracker::releasable() const noexcept {
    return !desynchronized_ && !awaiting_replies() && !skipping_ && !batch_open_ &&
           !client_in_copy_ && status_ == be::TransactionStatus::idle;
}

bool ResponseTracker::awaiting_replies() const noexcept {
    return active_.has_value() || unconfirmed_syncs_ > 0;
}

std::size_t ResponseTracker::ready_owed() const noexcept {
    const auto owed = [](const Entry& entry) {
        const bool answered_by_ready = entry.request == Request::sync ||
                                       entry.request == Request::query ||
                                       entry.request == Request::function_call;
        return answered_by_ready && entry.route == Route::forward;
    };
    const auto pending = static_cast<std::size_t>(std::ranges::count_if(pending_, owed));
    return pending + (active_ && owed(*active_) ? 1 : 0);
}

bool ResponseTracker::inside_batch() const noexcept {
    if (!pending_.empty()) return is_extended(pending_.back().request);
    if (active_) return is_extended(active_->request);
    return batch_open_;
}

std::optional<ResponseTracker::Request> ResponseTracker::request_of(const Frame& message) noexcept {
    switch (message.type) {
    case fe::Parse::type:
        return Request::parse;
    case fe::Bind::type:
        return Request::bind;
    case fe::Describe::type:
        // The server refuses a kind other than 'S' or 'P' with an ErrorResponse, which a
        // portal's Describe may get like any extended-query message.
        return !message.body.empty() && message.body.front() == std::byte{'S'}
                   ? Request::describe_statement
                   : Request::describe_portal;
    case fe::Execute::type:
        return Request::execute;
    case fe::Close::type:
        return Request::close;
    case fe::Sync::type:
        return Request::sync;
    case fe::Query::type:
        return Request::query;
    case fe::FunctionCall::type:
        return Request::function_call;
    case fe::CopyData::type:
        return Request::copy_data;
    case fe::CopyDone::type:
        return Request::copy_done;
    case fe::CopyFail::type:
        return Request::copy_fail;
    default:
        // Flush only makes the server send what it holds (and is ignored during COPY FROM
        // STDIN); Terminate ends the connection. Neither is ever answered.
        return std::nullopt;
    }
}

bool ResponseTracker::is_copy_message(Request request) noexcept {
    return request == Request::copy_data || request == Request::copy_done ||
           request == Request::copy_fail;
}

bool ResponseTracker::ends_copy_stream(Request request) noexcept {
    // During COPY FROM STDIN the server ignores Sync and Flush; anything else but CopyData
    // ends the copy, any other request by failing it ("COPY Operations").
    return request != Request::sync && request != Request::copy_data;
}

bool ResponseTracker::is_extended(Request request) noexcept {
    return request == Request::parse || request == Request::bind ||
           request == Request::describe_statement || request == Request::describe_portal ||
           request == Request::execute || request == Request::close;
}

void ResponseTracker::enqueue(const Entry& entry) {
    if (!active_) {
        active_ = entry;
        phase_ = Phase::sent;
        return;
    }
    if (pending_.full()) {
        pending_.set_capacity(std::max<std::size_t>(8, pending_.capacity() * 2));
    }
    pending_.push_back(entry);
}

void ResponseTracker::advance() {
    while (!pending_.empty()) {
        const Entry entry = pending_.front();
        pending_.pop_front();
        if (entry.request == Request::absorbed) {
            // Its reply goes right after those of the requests before it, as the server would
            // have sent it.
            fakes_.push_back(entry.fake);
        } else if (!is_copy_message(entry.request)) {
            active_ = entry;
            phase_ = Phase::sent;
            return;
        }
    }
}

void ResponseTracker::complete() {
    batch_open_ = is_extended(active_->request);
    active_.reset();
    advance();
}

bool ResponseTracker::replied(char type) {
    const Request request = active_->request;
    switch (phase_) {
    case Phase::copy_in:
        return type == be::CommandComplete::type && end_copy_in();
    case Phase::copy_out:
    case Phase::copy_both:
        if (type == be::CopyData::type) {
            return true;
        }
        if (type != be::CopyDone::type) {
            return false;
        }
        // After streaming replication the walsender may send a result set (the next
        // timeline) before CommandComplete ("Streaming Replication Protocol").
        phase_ = phase_ == Phase::copy_both && request == Request::query ? Phase::statements
                                                                         : Phase::copy_finished;
        return true;
    case Phase::copy_finished:
        if (type != be::CommandComplete::type) {
            return false;
        }
        if (request == Request::query) {
            phase_ = Phase::statements;
        } else {
            complete();
        }
        return true;
    case Phase::ending:
        return false;
    case Phase::sent:
    case Phase::described:
    case Phase::rows:
    case Phase::statements:
        break;
    }

    switch (request) {
    case Request::parse:
    case Request::bind:
    case Request::close: {
        const char expected = request == Request::parse  ? be::ParseComplete::type
                              : request == Request::bind ? be::BindComplete::type
                                                         : be::CloseComplete::type;
        if (type != expected) {
            return false;
        }
        complete();
        return true;
    }
    case Request::describe_statement:
        if (phase_ == Phase::sent) {
            if (type != be::ParameterDescription::type) {
                return false;
            }
            phase_ = Phase::described;
            return true;
        }
        [[fallthrough]];
    case Request::describe_portal:
        if (type != be::RowDescription::type && type != be::NoData::type) {
            return false;
        }
        complete();
        return true;
    case Request::execute:
        // Execute never sends RowDescription: that is Describe's job ("Extended Query").
        switch (type) {
        case be::DataRow::type:
            phase_ = Phase::rows;
            return true;
        case be::CommandComplete::type:
        case be::PortalSuspended::type:
            complete();
            return true;
        case be::EmptyQueryResponse::type:
            if (phase_ == Phase::rows) {
                return false;
            }
            complete();
            return true;
        default:
            return phase_ == Phase::sent && start_copy(type);
        }
    case Request::query:
        switch (type) {
        case be::RowDescription::type:
        case be::DataRow::type:
        case be::CommandComplete::type:
        case be::EmptyQueryResponse::type:
            phase_ = Phase::statements;
            return true;
        default:
            return start_copy(type);
        }
    case Request::function_call:
        if (type != be::FunctionCallResponse::type) {
            return false;
        }
        phase_ = Phase::ending;
        return true;
    case Request::sync:
    case Request::copy_data:
    case Request::copy_done:
    case Request::copy_fail:
    case Request::absorbed:
        break;
    }
    return false;
}

bool ResponseTracker::start_copy(char type) {
    switch (type) {
    case be::CopyOutResponse::type:
        phase_ = Phase::copy_out;
        return true;
    case be::CopyInResponse::type:
        phase_ = Phase::copy_in;
        break;
    case be::CopyBothResponse::type:
        phase_ = Phase::copy_both;
        break;
    default:
        return false;
    }
    // The client's copy stream is what it wrote after this request; it may have ended it
    // already, without waiting for the server.
    client_in_copy_ = std::none_of(pending_.begin(), pending_.end(),
                                   [](const Entry& e) { return ends_copy_stream(e.request); });
    return true;
}

bool ResponseTracker::end_copy_in() {
    // CommandComplete: the server read the client's stream through its CopyDone, ignoring the
    // Syncs in it. A CopyFail or a request in it would have failed the COPY instead.
    while (!pending_.empty()) {
        const Request request = pending_.front().request;
        pending_.pop_front();
        if (request == Request::copy_done) {
            phase_ = Phase::copy_finished;
            return replied(be::CommandComplete::type);
        }
        if (ends_copy_stream(request)) {
            return false;
        }
    }
    return false;
}

std::optional<Route> ResponseTracker::fail() {
    if (!active_) {
        // Nothing asked for it: typically a FATAL error from a backend that is going away.
        return std::nullopt;
    }
    if (phase_ == Phase::ending) {
        return std::nullopt;
    }
    const Entry entry = *active_;
    if (entry.tag != 0) {
        failed_.push_back(entry.tag);
    }
    if (phase_ == Phase::copy_both) {
        // The error ends the copy in both directions; the client sends no CopyDone.
        client_in_copy_ = false;
    }
    if (phase_ == Phase::copy_in && !drop_failed_copy_stream()) {
        return std::nullopt;
    }
    if (!is_extended(entry.request)) {
        // A Query or FunctionCall still ends with ReadyForQuery, and so does a Sync whose
        // commit failed; nothing is skipped.
        phase_ = Phase::ending;
        return entry.route;
    }
    active_.reset();
    const auto client_requests_dropped = skip_to_sync();
    if (!client_requests_dropped) {
        return std::nullopt;
    }
    // The client needs the error that explains its missing replies, even when it comes from
    // the proxy's own request (PgBouncer forwards every ErrorResponse).
    return entry.route == Route::forward || *client_requests_dropped || skipping_ ? Route::forward
                                                                                  : Route::skip;
}

bool ResponseTracker::drop_failed_copy_stream() {
    // The server failed somewhere in the client's copy stream, but where is unknown: at a copy
    // message it read, at the request that ended the stream, or before reading anything (a
    // check or a BEFORE STATEMENT trigger run after CopyInResponse). Syncs before that point
    // were ignored, Syncs after it will be answered. Assume the latest point, and count the
    // Syncs before it as ReadyForQuery messages that may still come.
    std::size_t end = 0;
    std::size_t syncs = 0;
    std::size_t uncertain_syncs = 0;
    bool ended_by_request = false;
    for (std::size_t i = 0; i < pending_.size(); ++i) {
        const Request request = pending_[i].request;
        if (request == Request::sync) {
            ++syncs;
            continue;
        }
        end = i + 1;
        uncertain_syncs = syncs;
        if (ends_copy_stream(request)) {
            ended_by_request = !is_copy_message(request);
            break;
        }
    }
    // A request that ended the stream caused the error and was eaten, or was read after an
    // earlier error: then it is answered after a simple Query's ReadyForQuery, or after the
    // Sync that ends the skip. Only when neither can happen is the outcome known.
    if (ended_by_request && (active_->request == Request::query || uncertain_syncs > 0)) {
        return false;
    }
    for (std::size_t i = 0; i < end; ++i) {
        if (pending_.front().tag != 0) {
            failed_.push_back(pending_.front().tag);
        }
        pending_.pop_front();
    }
    unconfirmed_syncs_ += uncertain_syncs;
    return true;
}

std::optional<bool> ResponseTracker::skip_to_sync() {
    // After an error in an extended-query message the server discards every message up to
    // the next Sync ("Extended Query"); PgBouncer's clear_outstanding_requests_until(Sync).
    bool client_requests_dropped = false;
    while (!pending_.empty() && pending_.front().request != Request::sync) {
        const Entry entry = pending_.front();
        pending_.pop_front();
        if (is_copy_message(entry.request)) {
            continue;
        }
        if (unconfirmed_syncs_ > 0) {
            // The skip may have ended at a Sync of the failed COPY, and this is then answered.
            return std::nullopt;
        }
        if (entry.tag != 0) {
            failed_.push_back(entry.tag);
        }
        client_requests_dropped = client_requests_dropped || entry.route == Route::forward;
    }
    skipping_ = pending_.empty();
    advance();
    return client_requests_dropped;
}

std::optional<Route> ResponseTracker::ready_for_query(const Frame& message) {
    if (message.body.size() != 1) {
        return std::nullopt;
    }
    const auto status = static_cast<be::TransactionStatus>(message.body.front());
    if (!be::is_valid(status)) {
        return std::nullopt;
    }
    status_ = status;
    if (active_ && awaits_ready()) {
        // While stray ones may come, the request in progress still takes the first that fits
        // it: strays come first, but the client cannot tell them apart.
        const Route route = active_->route;
        complete();
        return route;
    }
    if (unconfirmed_syncs_ > 0) {
        // A Sync of the failed COPY was answered after all: the server failed before reading
        // it, so any skip ended there.
        --unconfirmed_syncs_;
        skipping_ = false;
        return Route::forward;
    }
    return std::nullopt;
}

bool ResponseTracker::awaits_ready() const noexcept {
    switch (active_->request) {
    case Request::sync:
        return phase_ == Phase::sent || phase_ == Phase::ending;
    case Request::query:
        // Even an empty query string gets EmptyQueryResponse first ("Simple Query").
        return phase_ == Phase::statements || phase_ == Phase::ending;
    case Request::function_call:
        return phase_ == Phase::ending;
    default:
        return false;
    }
}

void ResponseTracker::desynchronize() noexcept {
    desynchronized_ = true;
    fakes_.clear();
    failed_.clear();
}

Disposition ResponseTracker::disposition(Route route, bool asynchronous) const noexcept {
    return {route, asynchronous, fakes_, failed_};
}

} // namespace wire
