#include "wire/reader.hpp"

#include <algorithm>
#include <bit>
#include <utility>

namespace wire {

template <class Unsigned>
Result<Unsigned> Reader::big_endian() noexcept {
    if (data_.size() < sizeof(Unsigned)) {
        return errc::truncated;
    }
    Unsigned value = 0;
    for (std::size_t i = 0; i < sizeof(Unsigned); ++i) {
        value = static_cast<Unsigned>((value << 8) | std::to_integer<Unsigned>(data_[i]));
    }
    data_ = data_.subspan(sizeof(Unsigned));
    return value;
}

Result<std::uint8_t> Reader::u8() noexcept {
    return big_endian<std::uint8_t>();
}

Result<std::uint16_t> Reader::u16() noexcept {
    return big_endian<std::uint16_t>();
}

Result<std::uint32_t> Reader::u32() noexcept {
    return big_endian<std::uint32_t>();
}

Result<std::int16_t> Reader::i16() noexcept {
    auto v = u16();
    if (!v) {
        return v.error();
    }
    return std::bit_cast<std::int16_t>(*v);
}

Result<std::int32_t> Reader::i32() noexcept {
    auto v = u32();
    if (!v) {
        return v.error();
    }
    return std::bit_cast<std::int32_t>(*v);
}

Result<std::string_view> Reader::cstr() noexcept {
    const auto nul = std::ranges::find(data_, std::byte{0});
    if (nul == data_.end()) {
        return errc::missing_terminator;
    }
    const auto length = static_cast<std::size_t>(nul - data_.begin());
    const std::string_view text(reinterpret_cast<const char*>(data_.data()), length);
    data_ = data_.subspan(length + 1);
    return text;
}

Result<std::span<const std::byte>> Reader::bytes(std::size_t n) noexcept {
    if (data_.size() < n) {
        return errc::truncated;
    }
    const auto taken = data_.first(n);
    data_ = data_.subspan(n);
    return taken;
}

std::span<const std::byte> Reader::rest() noexcept {
    return std::exchange(data_, {});
}

Result<void> Reader::can_hold(std::size_t count, std::size_t min_item_size) const noexcept {
    if (min_item_size != 0 && count > data_.size() / min_item_size) {
        return errc::truncated;
    }
    return {};
}

Result<void> Reader::expect_end() const noexcept {
    if (!data_.empty()) {
        return errc::trailing_bytes;
    }
    return {};
}

} // namespace wire
