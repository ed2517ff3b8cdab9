#include "wire/message.hpp"

namespace wire::detail {

Result<void> read_field(Reader& r, std::string_view& out) noexcept {
    auto text = r.cstr();
    if (!text) {
        return text.error();
    }
    out = *text;
    return {};
}

void write_field(Writer& w, std::string_view in) {
    w.put_cstr(in);
}

Result<void> read_field(Reader& r, Value& out) noexcept {
    auto length = r.i32();
    if (!length) {
        return length.error();
    }
    if (*length == -1) {
        out.reset();
        return {};
    }
    // The server rejects other negative lengths too ("insufficient data left in message").
    if (*length < 0) {
        return errc::invalid_value;
    }
    auto bytes = r.bytes(static_cast<std::size_t>(*length));
    if (!bytes) {
        return bytes.error();
    }
    out = *bytes;
    return {};
}

void write_field(Writer& w, const Value& in) {
    if (!in) {
        w.put_i32(-1);
        return;
    }
    if (in->size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
        throw std::length_error("wire: value longer than an Int32 length allows");
    }
    w.put_i32(static_cast<std::int32_t>(in->size()));
    w.put_bytes(*in);
}

Result<void> check_secret_key(std::span<const std::byte> secret) noexcept {
    if (secret.size() < min_secret_key || secret.size() > max_secret_key) {
        return errc::invalid_value;
    }
    return {};
}

Result<std::int32_t> peek_code(const Frame& frame, char type) noexcept {
    if (frame.type != type) {
        return errc::unexpected_type;
    }
    return Reader(frame.body).i32();
}

} // namespace wire::detail
