#pragma once

// Frontend messages of the simple and extended query protocols (protocol docs, "Simple Query",
// "Extended Query", "Function Call") and Terminate.

#include "wire/message.hpp"

#include <cstdint>
#include <string_view>
#include <vector>

namespace wire::fe {

struct Query {
    static constexpr char type = 'Q';
    std::string_view query; // may hold several statements separated by semicolons

    static auto layout(auto& m) { return detail::layout(m.query); }
    [[nodiscard]] static Result<Query> parse(const Frame& frame) {
        return detail::parse<Query>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

struct Parse {
    static constexpr char type = 'P';
    std::string_view statement; // empty: the unnamed statement
    std::string_view query;
    std::vector<std::uint32_t> parameter_types; // type OIDs; 0 leaves a type unspecified

    static auto layout(auto& m) { return detail::layout(m.statement, m.query, m.parameter_types); }
    [[nodiscard]] static Result<Parse> parse(const Frame& frame) {
        return detail::parse<Parse>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

// parameter_formats may hold no code (all text), one (applies to all) or one per parameter;
// likewise result_formats for the result columns.
struct Bind {
    static constexpr char type = 'B';
    std::string_view portal;    // empty: the unnamed portal
    std::string_view statement; // empty: the unnamed statement
    std::vector<FormatCode> parameter_formats;
    std::vector<Value> parameters;
    std::vector<FormatCode> result_formats;

    static auto layout(auto& m) {
        return detail::layout(m.portal, m.statement, m.parameter_formats, m.parameters,
                              m.result_formats);
    }
    [[nodiscard]] static Result<Bind> parse(const Frame& frame) {
        return detail::parse<Bind>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

enum class ObjectKind : char { statement = 'S', portal = 'P' };

[[nodiscard]] constexpr bool is_valid(ObjectKind k) noexcept {
    return k == ObjectKind::statement || k == ObjectKind::portal;
}

// Describe and Close both name a prepared statement or a portal and differ only in type byte.
template <char Type>
struct ObjectMessage {
    static constexpr char type = Type;
    ObjectKind kind = ObjectKind::statement;
    std::string_view name; // empty: the unnamed statement or portal

    [[nodiscard]] static constexpr ObjectMessage statement(std::string_view object) noexcept {
        return {ObjectKind::statement, object};
    }
    [[nodiscard]] static constexpr ObjectMessage portal(std::string_view object) noexcept {
        return {ObjectKind::portal, object};
    }

    static auto layout(auto& m) { return detail::layout(m.kind, m.name); }
    [[nodiscard]] static Result<ObjectMessage> parse(const Frame& frame) {
        return detail::parse<ObjectMessage>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

using Describe = ObjectMessage<'D'>;
using Close = ObjectMessage<'C'>;

struct Execute {
    static constexpr char type = 'E';
    std::string_view portal;   // empty: the unnamed portal
    std::int32_t max_rows = 0; // 0 (or less): no limit; otherwise PortalSuspended may follow

    static auto layout(auto& m) { return detail::layout(m.portal, m.max_rows); }
    [[nodiscard]] static Result<Execute> parse(const Frame& frame) {
        return detail::parse<Execute>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

// Ends an extended-query batch: the server answers ReadyForQuery, and after an error it skips
// everything up to here.
struct Sync : detail::Bodiless<Sync> {
    static constexpr char type = 'S';
};

// Asks the server to send what it has buffered, without ending the batch (no ReadyForQuery).
struct Flush : detail::Bodiless<Flush> {
    static constexpr char type = 'H';
};

struct Terminate : detail::Bodiless<Terminate> {
    static constexpr char type = 'X';
};

// The legacy fast-path interface; argument_formats follows the same rule as Bind's.
struct FunctionCall {
    static constexpr char type = 'F';
    std::uint32_t function_oid = 0;
    std::vector<FormatCode> argument_formats;
    std::vector<Value> arguments;
    FormatCode result_format = FormatCode::text;

    static auto layout(auto& m) {
        return detail::layout(m.function_oid, m.argument_formats, m.arguments, m.result_format);
    }
    [[nodiscard]] static Result<FunctionCall> parse(const Frame& frame) {
        return detail::parse<FunctionCall>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

} // namespace wire::fe
