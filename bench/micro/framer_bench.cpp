// wire::Framer cutting a buffer of many messages into frames, in ns per message. The buffer is
// what a server sends for pgbench -S (RowDescription, DataRow, CommandComplete, ReadyForQuery per
// query), and a variant with 1 kB DataRows. Each operation counted is one frame handed out; the
// copy of the bytes into the Framer's buffer (prepare/commit, as a socket read does) is included.
#include "micro.hpp"

#include "wire/framer.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Bytes = std::vector<std::byte>;

void put_message(Bytes& out, char type, std::string_view body) {
    const auto length = static_cast<std::uint32_t>(body.size() + 4);
    out.push_back(static_cast<std::byte>(type));
    for (int shift = 24; shift >= 0; shift -= 8) {
        out.push_back(static_cast<std::byte>((length >> shift) & 0xff));
    }
    for (const char c : body) {
        out.push_back(static_cast<std::byte>(c));
    }
}

// `responses` answers to one select-only query each: 4 messages per response.
Bytes select_responses(int responses, std::size_t row_bytes) {
    const std::string_view row_description("\0\x01"
                                           "abalance\0\0\0\x40\x06\0\x03\0\0\0\x17\0\x04"
                                           "\xff\xff\xff\xff\0\0",
                                           29);
    std::string data_row("\0\x01", 2);
    data_row += std::string("\0\0\0\0", 4);
    data_row[5] = static_cast<char>(row_bytes & 0xff);
    data_row[4] = static_cast<char>((row_bytes >> 8) & 0xff);
    data_row += std::string(row_bytes, '7');
    Bytes out;
    for (int i = 0; i < responses; ++i) {
        put_message(out, 'T', row_description);
        put_message(out, 'D', data_row);
        put_message(out, 'C', std::string_view("SELECT 1\0", 9));
        put_message(out, 'Z', "I");
    }
    return out;
}

// Feeds `stream` in reads of at most `chunk` bytes and cuts every frame out of it.
std::uint64_t cut_all(wire::Framer& framer, std::span<const std::byte> stream, std::size_t chunk,
                      bool pieces) {
    std::uint64_t checksum = 0;
    while (!stream.empty()) {
        const std::size_t n = std::min(chunk, stream.size());
        const auto space = framer.prepare(n);
        std::memcpy(space.data(), stream.data(), n);
        framer.commit(n);
        stream = stream.subspan(n);
        for (;;) {
            if (pieces) {
                auto piece = framer.next_piece(64 * 1024);
                if (!piece || !*piece) {
                    break;
                }
                checksum +=
                    static_cast<unsigned char>((*piece)->frame.type) + (*piece)->bytes.size();
            } else {
                auto frame = framer.next();
                if (!frame || !*frame) {
                    break;
                }
                checksum += static_cast<unsigned char>((*frame)->type) + (*frame)->raw.size();
            }
        }
    }
    return checksum;
}

void bench(std::string_view name, const Bytes& stream, std::uint64_t messages, std::size_t chunk,
           bool pieces) {
    wire::Framer framer(wire::Phase::typed);
    micro::run(name, messages, [&] { return cut_all(framer, stream, chunk, pieces); });
}

} // namespace

int main() {
    constexpr int responses = 256;
    const Bytes small = select_responses(responses, 4);
    const Bytes large = select_responses(responses, 1024);
    const std::uint64_t messages = 4 * responses;
    bench("framer next(), select-only, 16 kB reads", small, messages, 16 * 1024, false);
    bench("framer next_piece(), select-only, 16 kB reads", small, messages, 16 * 1024, true);
    bench("framer next(), select-only, 4 kB reads", small, messages, 4 * 1024, false);
    bench("framer next(), 1 kB rows, 16 kB reads", large, messages, 16 * 1024, false);
    bench("framer next_piece(), 1 kB rows, 16 kB reads", large, messages, 16 * 1024, true);
    // decode_frame alone, on a buffer already in place: the header check without the buffer.
    micro::run("decode_frame(), select-only, in place", messages, [&] {
        std::span<const std::byte> rest(small);
        std::uint64_t checksum = 0;
        while (!rest.empty()) {
            auto frame = wire::decode_frame(rest, wire::Phase::typed, wire::Limits{});
            if (!frame || !*frame) {
                break;
            }
            checksum += (*frame)->raw.size();
            rest = rest.subspan((*frame)->raw.size());
        }
        return checksum;
    });
}
