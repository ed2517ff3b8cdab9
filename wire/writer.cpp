#include "wire/writer.hpp"

#include <bit>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace wire {
namespace {

template <class Unsigned>
void store_big_endian(std::byte* at, Unsigned v) noexcept {
    for (std::size_t i = sizeof(Unsigned); i-- > 0; v = static_cast<Unsigned>(v >> 8)) {
        at[i] = static_cast<std::byte>(v & 0xff);
    }
}

template <class Unsigned>
void append_big_endian(std::vector<std::byte>& buf, Unsigned v) {
    buf.resize(buf.size() + sizeof(Unsigned));
    store_big_endian(buf.data() + buf.size() - sizeof(Unsigned), v);
}

} // namespace

void Writer::require_closed(const char* operation) const {
    if (length_at_) {
        throw std::logic_error(std::string("wire::Writer::") + operation +
                               " while a message is open");
    }
}

Writer& Writer::open_message() {
    length_at_ = buf_.size();
    append_big_endian<std::uint32_t>(buf_, 0);
    return *this;
}

Writer& Writer::begin(char type) {
    require_closed("begin");
    buf_.push_back(static_cast<std::byte>(type));
    return open_message();
}

Writer& Writer::begin_untyped() {
    require_closed("begin_untyped");
    return open_message();
}

Writer& Writer::end() {
    if (!length_at_) {
        throw std::logic_error("wire::Writer::end without begin");
    }
    const std::size_t length = buf_.size() - *length_at_;
    if (length > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
        throw std::length_error("wire::Writer: message longer than an Int32 length allows");
    }
    store_big_endian(buf_.data() + *length_at_, static_cast<std::uint32_t>(length));
    length_at_.reset();
    return *this;
}

Writer& Writer::put_u8(std::uint8_t v) {
    buf_.push_back(static_cast<std::byte>(v));
    return *this;
}

Writer& Writer::put_u16(std::uint16_t v) {
    append_big_endian(buf_, v);
    return *this;
}

Writer& Writer::put_u32(std::uint32_t v) {
    append_big_endian(buf_, v);
    return *this;
}

Writer& Writer::put_i16(std::int16_t v) {
    return put_u16(std::bit_cast<std::uint16_t>(v));
}

Writer& Writer::put_i32(std::int32_t v) {
    return put_u32(std::bit_cast<std::uint32_t>(v));
}

Writer& Writer::put_cstr(std::string_view s) {
    if (s.find('\0') != std::string_view::npos) {
        throw std::invalid_argument("wire::Writer::put_cstr: embedded NUL");
    }
    put_bytes(std::as_bytes(std::span(s)));
    return put_u8(0);
}

Writer& Writer::put_bytes(std::span<const std::byte> b) {
    buf_.insert(buf_.end(), b.begin(), b.end());
    return *this;
}

std::span<const std::byte> Writer::bytes() const {
    require_closed("bytes");
    return buf_;
}

std::vector<std::byte> Writer::take() {
    require_closed("take");
    return std::exchange(buf_, {});
}

void Writer::clear() noexcept {
    buf_.clear();
    length_at_.reset();
}

} // namespace wire
