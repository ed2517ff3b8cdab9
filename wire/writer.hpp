#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace wire {

// Builds outgoing protocol bytes, one message at a time: begin() writes the header with a
// placeholder length, the put_* calls append fields, end() patches the length word (which
// counts itself but not the type byte; protocol docs, "Message Formats"). put_* calls outside
// a message append raw bytes, e.g. the single 'S'/'N' answering an SSLRequest or a frame being
// forwarded verbatim.
//
// Misuse is a bug in the caller, never a property of peer input, so it throws std::logic_error:
// begin() while a message is open, end() with none open, bytes()/take() with a message open.
// put_cstr() throws std::invalid_argument on an embedded NUL, which would silently split the
// String on the wire.
class Writer {
public:
    Writer& begin(char type);
    Writer& begin_untyped();
    Writer& end();

    Writer& put_u8(std::uint8_t v);
    Writer& put_i16(std::int16_t v);
    Writer& put_u16(std::uint16_t v);
    Writer& put_i32(std::int32_t v);
    Writer& put_u32(std::uint32_t v);
    Writer& put_cstr(std::string_view s);
    Writer& put_bytes(std::span<const std::byte> b);

    // Everything written so far, as complete messages.
    [[nodiscard]] std::span<const std::byte> bytes() const;
    [[nodiscard]] std::vector<std::byte> take();
    void clear() noexcept;

private:
    Writer& open_message();
    void require_closed(const char* operation) const;

    std::vector<std::byte> buf_;
    std::optional<std::size_t> length_at_; // offset of the open message's length word
};

} // namespace wire
