#pragma once

// The COPY sub-protocol (protocol docs, "COPY Operations"). CopyData and CopyDone flow in
// both directions with the same layout, so one type serves wire::fe and wire::be.

#include "wire/message.hpp"

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace wire {

struct CopyData {
    static constexpr char type = 'd';
    std::span<const std::byte> data;

    static auto layout(auto& m) { return detail::layout(detail::Rest{m.data}); }
    [[nodiscard]] static Result<CopyData> parse(const Frame& frame) {
        return detail::parse<CopyData>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

struct CopyDone : detail::Bodiless<CopyDone> {
    static constexpr char type = 'c';
};

namespace fe {

using wire::CopyData;
using wire::CopyDone;

struct CopyFail {
    static constexpr char type = 'f';
    std::string_view message; // why the client aborted; the server reports it in its error

    static auto layout(auto& m) { return detail::layout(m.message); }
    [[nodiscard]] static Result<CopyFail> parse(const Frame& frame) {
        return detail::parse<CopyFail>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

} // namespace fe

namespace be {

using wire::CopyData;
using wire::CopyDone;

// The overall format is an Int8, unlike the Int16 per-column codes that follow it.
enum class CopyFormat : std::uint8_t { text = 0, binary = 1 };

[[nodiscard]] constexpr bool is_valid(CopyFormat f) noexcept {
    return f == CopyFormat::text || f == CopyFormat::binary;
}

// CopyInResponse, CopyOutResponse and CopyBothResponse differ only in their type byte.
template <char Type>
struct CopyResponse {
    static constexpr char type = Type;
    CopyFormat format = CopyFormat::text;
    std::vector<FormatCode> column_formats;

    static auto layout(auto& m) { return detail::layout(m.format, m.column_formats); }
    [[nodiscard]] static Result<CopyResponse> parse(const Frame& frame) {
        return detail::parse<CopyResponse>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

using CopyInResponse = CopyResponse<'G'>;
using CopyOutResponse = CopyResponse<'H'>;
using CopyBothResponse = CopyResponse<'W'>; // streaming replication only

} // namespace be
} // namespace wire
