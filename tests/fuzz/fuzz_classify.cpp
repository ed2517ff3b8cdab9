// routing::classify on arbitrary text. Input: a control byte (bit 0: the client's
// default_transaction_read_only is on; bit 1: standard_conforming_strings is off), then the
// text.
//
// Checked, for every text: the answer is the same twice; a second statement appended after it
// is never replica_ok, unless the text held no statement of its own (empty, or only a hint);
// a quote, dollar quote or comment left open after it is never replica_ok, unless the text was
// unparsable already (its own open quote may be what the appended one closes); a
// /* pgmarina:primary */ hint in front of it is never replica_ok; and default_read_only or a
// configured allowlist only ever add replicas, never take one away.

#include "routing/classify.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace routing;

void require(bool condition) {
    if (!condition) {
        std::abort();
    }
}

bool replica(const Classification& c) {
    return c.target == Target::replica_ok;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    const std::uint8_t control = data[0];
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);

    ClassifyOptions options;
    options.default_transaction_read_only = (control & 1) != 0;
    options.standard_conforming_strings = (control & 2) == 0;

    const Classification result = classify(text, options);
    require(classify(std::string(text), options) == result);

    const bool has_statement = result.reason != Reason::empty && result.reason != Reason::hint;
    if (has_statement) {
        require(!replica(classify(text + "\n;SELECT 1", options)));
        require(!replica(classify(text + "\n; ;\tVALUES (1);", options)));
    }
    if (result.reason != Reason::unparsable) {
        for (const std::string_view opener : {"'", "\"", "$$", "$q$", "/*", "E'", "U&\""}) {
            require(!replica(classify(text + "\n" + std::string(opener), options)));
        }
    }
    require(!replica(classify("/* pgmarina:primary */" + text, options)));

    if (replica(result)) {
        ClassifyOptions relaxed = options;
        relaxed.default_transaction_read_only = true;
        require(replica(classify(text, relaxed)));
        const std::vector<std::string> configured{"f", "s.f", "MixedCase"};
        relaxed.read_only_functions = configured;
        require(replica(classify(text, relaxed)));
    }
    return 0;
}
