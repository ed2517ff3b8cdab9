#pragma once

#include "wire/result.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace wire {

// A bounds-checked cursor over a message body. Integers are in network byte order (protocol
// docs, "Message Data Types"). Every read either succeeds and advances, or fails with
// errc::truncated / errc::missing_terminator and leaves the cursor where it was.
class Reader {
public:
    explicit Reader(std::span<const std::byte> data) noexcept : data_(data) {}

    [[nodiscard]] Result<std::uint8_t> u8() noexcept;
    [[nodiscard]] Result<std::int16_t> i16() noexcept;
    [[nodiscard]] Result<std::uint16_t> u16() noexcept;
    [[nodiscard]] Result<std::int32_t> i32() noexcept;
    [[nodiscard]] Result<std::uint32_t> u32() noexcept;

    // A protocol String: the bytes before the next NUL; the NUL is consumed too.
    [[nodiscard]] Result<std::string_view> cstr() noexcept;
    [[nodiscard]] Result<std::span<const std::byte>> bytes(std::size_t n) noexcept;
    [[nodiscard]] std::span<const std::byte> rest() noexcept;

    // Succeeds when `count` items of at least `min_item_size` bytes each can still fit, so a
    // caller may reserve `count` slots: a count read from the peer never sizes an allocation
    // the body itself cannot back.
    [[nodiscard]] Result<void> can_hold(std::size_t count,
                                        std::size_t min_item_size) const noexcept;

    [[nodiscard]] std::size_t remaining() const noexcept { return data_.size(); }
    [[nodiscard]] Result<void> expect_end() const noexcept;

private:
    template <class Unsigned>
    [[nodiscard]] Result<Unsigned> big_endian() noexcept;

    std::span<const std::byte> data_; // the unread part
};

} // namespace wire
