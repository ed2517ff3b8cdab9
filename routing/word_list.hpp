#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <stdexcept>
#include <string_view>

namespace routing {

// Words separated by spaces.
consteval std::size_t count_words(std::string_view text) {
    std::size_t count = 0;
    bool in_word = false;
    for (const char c : text) {
        count += !in_word && c != ' ' ? 1 : 0;
        in_word = c != ' ';
    }
    return count;
}

// A set of names written as space-separated text, so that long lists read as prose grouped by
// theme (clang-format would put each element of an array on its own line), built at compile
// time into a sorted array for binary search. Declare as
//     constexpr WordList<count_words(text)> list{text};
template <std::size_t N>
class WordList {
public:
    consteval explicit WordList(std::string_view text) {
        std::size_t n = 0;
        while (!text.empty()) {
            const std::size_t begin = text.find_first_not_of(' ');
            if (begin == std::string_view::npos) {
                break;
            }
            text.remove_prefix(begin);
            const std::size_t length = std::min(text.find(' '), text.size());
            words_.at(n++) = text.substr(0, length);
            text.remove_prefix(length);
        }
        std::sort(words_.begin(), words_.end());
        if (std::adjacent_find(words_.begin(), words_.end()) != words_.end()) {
            throw std::logic_error("a word is listed twice"); // fails the build
        }
    }

    [[nodiscard]] constexpr bool contains(std::string_view word) const noexcept {
        return std::binary_search(words_.begin(), words_.end(), word);
    }

private:
    std::array<std::string_view, N> words_{};
};

} // namespace routing
