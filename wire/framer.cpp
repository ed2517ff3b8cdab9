#include "wire/framer.hpp"

#include "wire/reader.hpp"

#include <algorithm>
#include <stdexcept>

namespace wire {
namespace {

// An idle connection should not keep the buffer a single huge message (a COPY row, a large
// Bind) made it grow to.
constexpr std::size_t retained_capacity = 64 * 1024;

struct Header {
    char type;
    std::size_t body_offset; // type byte (if any) and length word
    std::size_t size;        // the whole frame, body_offset included
};

// The header at the front of `data`, checked against `limits`, if all of it is there. Both
// next() and next_piece() go through here, so a message is refused on the same length word
// whether it is then cut whole or streamed.
Result<std::optional<Header>> decode_header(std::span<const std::byte> data, Phase phase,
                                            const Limits& limits) noexcept {
    const bool typed = phase == Phase::typed;
    const std::size_t type_size = typed ? 1 : 0;
    if (data.size() < type_size + 4) {
        return std::optional<Header>();
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
    return std::optional<Header>(Header{type, type_size + 4, type_size + size});
}

// The frame `header` starts, cut from the front of `data`: whole if `data` holds all of it,
// otherwise its header and as much body as arrived.
Frame cut_frame(std::span<const std::byte> data, const Header& header) noexcept {
    const auto raw = data.first(std::min(header.size, data.size()));
    return Frame{header.type, raw.subspan(header.body_offset), raw};
}

} // namespace

Result<std::optional<Frame>> decode_frame(std::span<const std::byte> data, Phase phase,
                                          const Limits& limits) noexcept {
    const auto header = decode_header(data, phase, limits);
    if (!header) {
        return header.error();
    }
    if (!*header || data.size() < (*header)->size) {
        return std::optional<Frame>();
    }
    return std::optional<Frame>(cut_frame(data, **header));
}

std::span<std::byte> Framer::prepare(std::size_t n) {
    if (begin_ == end_) {
        begin_ = end_ = 0;
        if (buf_.size() > retained_capacity && n <= retained_capacity) {
            buf_ = decltype(buf_)();
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

void Framer::release_if_empty() noexcept {
    if (begin_ != end_) return;
    begin_ = end_ = 0;
    buf_ = decltype(buf_)();
}

void Framer::feed(std::span<const std::byte> data) {
    std::ranges::copy(data, prepare(data.size()).begin());
    commit(data.size());
}

Result<std::optional<Frame>> Framer::next() {
    if (remaining_ != 0) {
        throw std::logic_error("wire::Framer::next: inside a message streamed by next_piece()");
    }
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

Result<std::optional<Framer::Piece>> Framer::next_piece(std::size_t hold) noexcept {
    const auto data = buffered();
    if (remaining_ != 0) {
        if (data.empty()) {
            return std::optional<Piece>();
        }
        const auto bytes = data.first(std::min(data.size(), remaining_));
        begin_ += bytes.size();
        remaining_ -= bytes.size();
        return std::optional<Piece>(
            Piece{.frame = {}, .bytes = bytes, .rest = remaining_, .continuation = true});
    }
    if (error_) {
        return error_;
    }
    const auto header = decode_header(data, phase_, limits_);
    if (!header) {
        error_ = header.error();
        return error_;
    }
    if (!*header) {
        return std::optional<Piece>();
    }
    const bool whole = data.size() >= (*header)->size;
    if (!whole && (phase_ == Phase::startup || data.size() < hold)) {
        return std::optional<Piece>();
    }
    const Frame frame = cut_frame(data, **header);
    begin_ += frame.raw.size();
    remaining_ = (*header)->size - frame.raw.size();
    return std::optional<Piece>(Piece{.frame = frame, .bytes = frame.raw, .rest = remaining_});
}

} // namespace wire
