#include "wire/framer.hpp"

#include "wire/reader.hpp"

#include <algorithm>
#include <stdexcept>

namespace wire {
namespace {

// An idle connection should not keep the buffer a single huge message (a COPY row, a large
// Bind) made it grow to.
constexpr std::size_t retained_capacity = 64 * 1024;

} // namespace

Result<std::optional<Frame>> decode_frame(std::span<const std::byte> data, Phase phase,
                                          const Limits& limits) noexcept {
    const bool typed = phase == Phase::typed;
    const std::size_t type_size = typed ? 1 : 0;
    if (data.size() < type_size + 4) {
        return std::optional<Frame>();
    }
    Reader header(data);
    const char type = typed ? static_cast<char>(*header.u8()) : '\0';
    const std::int32_t length = *header.i32();

    // Startup packets need room for the Int32 code after the length (protocol docs, "Message
    // Formats", StartupMessage); typed lengths only count themselves.
    if (length < (typed ? 4 : 8)) {
        return errc::length_too_small;
    }
    const auto size = static_cast<std::size_t>(length);
    if (size > (typed ? limits.max_message_size : limits.max_startup_packet)) {
        return typed ? errc::message_too_large : errc::startup_too_large;
    }
    if (data.size() - type_size < size) {
        return std::optional<Frame>();
    }
    const auto raw = data.first(type_size + size);
    return std::optional<Frame>(Frame{type, raw.subspan(type_size + 4), raw});
}

std::span<std::byte> Framer::prepare(std::size_t n) {
    if (begin_ == end_) {
        begin_ = end_ = 0;
        if (buf_.size() > retained_capacity && n <= retained_capacity) {
            buf_ = std::vector<std::byte>();
        }
    }
    if (buf_.size() - end_ < n) {
        if (begin_ != 0) {
            std::copy(buf_.begin() + static_cast<std::ptrdiff_t>(begin_),
                      buf_.begin() + static_cast<std::ptrdiff_t>(end_), buf_.begin());
            end_ -= begin_;
            begin_ = 0;
        }
        if (buf_.size() - end_ < n) {
            buf_.resize(std::max(end_ + n, buf_.size() + buf_.size() / 2));
        }
    }
    prepared_ = n;
    return std::span(buf_).subspan(end_, n);
}

void Framer::commit(std::size_t n) {
    if (n > prepared_) {
        throw std::logic_error("wire::Framer::commit: more bytes than prepared");
    }
    end_ += n;
    prepared_ = 0;
}

void Framer::feed(std::span<const std::byte> data) {
    std::ranges::copy(data, prepare(data.size()).begin());
    commit(data.size());
}

Result<std::optional<Frame>> Framer::next() noexcept {
    if (error_) {
        return error_;
    }
    auto frame = decode_frame(buffered(), phase_, limits_);
    if (!frame) {
        error_ = frame.error();
    } else if (*frame) {
        begin_ += (*frame)->raw.size();
    }
    return frame;
}

} // namespace wire
