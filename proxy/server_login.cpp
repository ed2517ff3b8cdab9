#include "proxy/server_login.hpp"

#include "proxy/auth_file.hpp"
#include "proxy/stream_io.hpp"
#include "wire/be_auth.hpp"
#include "wire/be_error.hpp"
#include "wire/be_status.hpp"
#include "wire/fe_auth.hpp"
#include "wire/fe_startup.hpp"
#include "wire/md5.hpp"
#include "wire/writer.hpp"

#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace proxy {
namespace {

namespace be = wire::be;
namespace fe = wire::fe;

using Outcome = boost::system::result<void, ServerLoginError>;

ServerLoginError protocol_error(std::string message) {
    return {"08P01", "server sent invalid login protocol: " + std::move(message)};
}

ServerLoginError cannot_answer(std::string message) {
    return {"28000", std::move(message)};
}

std::string_view text_of(std::span<const std::byte> data) {
    return {reinterpret_cast<const char*>(data.data()), data.size()};
}

// 'D', or 0x01 for a byte that would garble a log line.
std::string describe_type(char type) {
    if (type >= 0x21 && type <= 0x7e) return std::string{'\'', type, '\''};
    constexpr std::string_view digits = "0123456789ABCDEF";
    const auto byte = static_cast<unsigned char>(type);
    return std::string{'0', 'x', digits[byte >> 4], digits[byte & 0xf]};
}

// Five digits or uppercase letters (PostgreSQL docs, Appendix A); anything else cannot be
// handed on to a client as an SQLSTATE.
bool is_sqlstate(std::string_view code) {
    return code.size() == 5 && std::ranges::all_of(code, [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
           });
}

// The login as a state machine fed one frame at a time, so that the coroutine below only moves
// bytes. Each step names the only messages the server may send next (protocol docs,
// "Start-up"): an authentication request we answered allows one follow-up only, which stops a
// server from, say, skipping the SCRAM server signature and going straight to
// AuthenticationOk.
class Login {
public:
    explicit Login(const ServerCredentials& credentials)
        : credentials_(credentials),
          secret_kind_(credentials.secret ? classify_secret(*credentials.secret)
                                          : SecretKind::plain) {}

    [[nodiscard]] bool ready() const noexcept { return step_ == Step::ready; }
    [[nodiscard]] ServerWelcome take_welcome() { return std::move(welcome_); }

    // Handles one message from the server; whatever it calls for is appended to `reply`.
    [[nodiscard]] Outcome on_frame(const wire::Frame& frame, wire::Writer& reply) {
        switch (frame.type) {
        case be::ErrorResponse::type:
            return server_error(frame);
        case be::NoticeResponse::type:
            return {}; // a warning for a human; nothing a pool could act on
        case be::NegotiateProtocolVersion::type:
            // We ask for 3.0 without options, so a server has no reason to send it; one that
            // does still speaks 3.0 to us.
            if (step_ != Step::request) return protocol_error("NegotiateProtocolVersion late");
            if (!be::NegotiateProtocolVersion::parse(frame)) {
                return protocol_error("malformed NegotiateProtocolVersion");
            }
            return {};
        case 'R':
            return on_authentication(frame, reply);
        case be::ParameterStatus::type:
            return on_parameter_status(frame);
        case be::BackendKeyData::type:
            return on_backend_key_data(frame);
        case be::ReadyForQuery::type:
            if (step_ != Step::welcome) {
                return protocol_error("ReadyForQuery before AuthenticationOk");
            }
            if (!be::ReadyForQuery::parse(frame)) return protocol_error("malformed ReadyForQuery");
            // Without a BackendKeyData, which PostgreSQL always sends, process_id stays 0: the
            // connection still works, only cancel requests cannot reach it.
            step_ = Step::ready;
            return {};
        default:
            return protocol_error("unexpected message type " + describe_type(frame.type));
        }
    }

private:
    enum class Step {
        request,       // the StartupMessage is sent: any authentication request may come
        ok,            // password sent, or SCRAM signature checked: AuthenticationOk only
        sasl_continue, // SASLInitialResponse sent: AuthenticationSASLContinue only
        sasl_final,    // SASLResponse sent: AuthenticationSASLFinal only
        welcome,       // authenticated: ParameterStatus and BackendKeyData until ReadyForQuery
        ready,         // ReadyForQuery arrived; the login is over
    };

    Outcome server_error(const wire::Frame& frame) {
        const auto error = be::ErrorResponse::parse(frame);
        if (!error) return protocol_error("malformed ErrorResponse");
        if (!is_sqlstate(error->code())) {
            return protocol_error("ErrorResponse without a valid SQLSTATE: " +
                                  std::string(error->message()));
        }
        return ServerLoginError{std::string(error->code()), std::string(error->message())};
    }

    Outcome on_parameter_status(const wire::Frame& frame) {
        if (step_ != Step::welcome) {
            return protocol_error("ParameterStatus before AuthenticationOk");
        }
        const auto status = be::ParameterStatus::parse(frame);
        if (!status) return protocol_error("malformed ParameterStatus");
        welcome_.parameters.push_back({std::string(status->name), std::string(status->value)});
        return {};
    }

    Outcome on_backend_key_data(const wire::Frame& frame) {
        if (step_ != Step::welcome || have_key_) {
            return protocol_error("BackendKeyData out of order");
        }
        const auto key = be::BackendKeyData::parse(frame);
        if (!key) return protocol_error("malformed BackendKeyData");
        welcome_.process_id = key->process_id;
        welcome_.secret_key.assign(key->secret_key.begin(), key->secret_key.end());
        have_key_ = true;
        return {};
    }

    Outcome on_authentication(const wire::Frame& frame, wire::Writer& reply) {
        const auto request = be::parse_authentication(frame);
        if (!request) return protocol_error("malformed or unknown authentication request");
        return std::visit([&](const auto& r) { return answer(r, reply); }, *request);
    }

    // Whether the request may come now; the step after it is set by the answer.
    Outcome expect(Step step, std::string_view request) {
        if (step_ == step) return {};
        return protocol_error(std::string(request) + " out of order");
    }

    Outcome answer(const be::AuthenticationOk&, wire::Writer&) {
        if (step_ != Step::request && step_ != Step::ok) {
            return protocol_error("AuthenticationOk out of order");
        }
        step_ = Step::welcome;
        return {};
    }

    Outcome answer(const be::AuthenticationCleartextPassword&, wire::Writer& reply) {
        if (auto ok = expect(Step::request, "AuthenticationCleartextPassword"); !ok) return ok;
        if (!credentials_.secret) return missing_secret("a cleartext password");
        if (secret_kind_ != SecretKind::plain) {
            return cannot_answer("server asks user \"" + credentials_.user +
                                 "\" for a cleartext password, but only its " + secret_name() +
                                 " is configured");
        }
        if (credentials_.secret->find('\0') != std::string::npos) {
            return cannot_answer("the password of user \"" + credentials_.user +
                                 "\" contains a NUL byte, which a PasswordMessage cannot carry");
        }
        fe::PasswordMessage{*credentials_.secret}.encode(reply);
        step_ = Step::ok;
        return {};
    }

    Outcome answer(const be::AuthenticationMD5Password& r, wire::Writer& reply) {
        if (auto ok = expect(Step::request, "AuthenticationMD5Password"); !ok) return ok;
        if (!credentials_.secret) return missing_secret("an md5 password");
        std::string response;
        if (secret_kind_ == SecretKind::plain) {
            response = wire::md5::salted_response(*credentials_.secret, credentials_.user, r.salt);
        } else if (auto salted = wire::md5::salted_response(*credentials_.secret, r.salt)) {
            response = std::move(*salted);
        } else {
            return cannot_answer("server asks user \"" + credentials_.user +
                                 "\" for an md5 password, which cannot be computed from its " +
                                 secret_name() + "; configure the password or its md5 secret");
        }
        fe::PasswordMessage{response}.encode(reply);
        step_ = Step::ok;
        return {};
    }

    Outcome answer(const be::AuthenticationSASL& r, wire::Writer& reply) {
        if (auto ok = expect(Step::request, "AuthenticationSASL"); !ok) return ok;
        if (std::ranges::find(r.mechanisms, wire::scram::mechanism) == r.mechanisms.end()) {
            std::string offered;
            for (const std::string_view mechanism : r.mechanisms) {
                offered += (offered.empty() ? "" : ", ") + std::string(mechanism);
            }
            return cannot_answer("server offers only the SASL mechanisms " + offered +
                                 "; pgmarina supports SCRAM-SHA-256");
        }
        if (!credentials_.secret) return missing_secret("a SCRAM-SHA-256 login");
        if (secret_kind_ == SecretKind::plain) {
            scram_.emplace(*credentials_.secret);
        } else if (secret_kind_ == SecretKind::scram_sha_256 && credentials_.scram_keys) {
            scram_.emplace(credentials_.scram_keys->client_key,
                           credentials_.scram_keys->server_key);
        } else if (secret_kind_ == SecretKind::scram_sha_256) {
            // Only a client that logs in with SCRAM reveals the ClientKey the verifier lacks.
            return cannot_answer("server asks user \"" + credentials_.user +
                                 "\" for SCRAM-SHA-256, and its SCRAM verifier alone cannot "
                                 "answer: the keys from a client's SCRAM login are missing");
        } else {
            return cannot_answer("server asks user \"" + credentials_.user +
                                 "\" for SCRAM-SHA-256, which its md5 secret cannot answer; "
                                 "configure the password or its SCRAM verifier");
        }
        fe::SASLInitialResponse{wire::scram::mechanism,
                                wire::as_bytes(scram_->client_first_message())}
            .encode(reply);
        step_ = Step::sasl_continue;
        return {};
    }

    Outcome answer(const be::AuthenticationSASLContinue& r, wire::Writer& reply) {
        if (auto ok = expect(Step::sasl_continue, "AuthenticationSASLContinue"); !ok) return ok;
        const auto client_final = scram_->handle_server_first(text_of(r.data));
        if (!client_final) {
            return protocol_error("SCRAM server-first-message: " + client_final.error().message());
        }
        fe::SASLResponse{wire::as_bytes(*client_final)}.encode(reply);
        step_ = Step::sasl_final;
        return {};
    }

    Outcome answer(const be::AuthenticationSASLFinal& r, wire::Writer&) {
        if (auto ok = expect(Step::sasl_final, "AuthenticationSASLFinal"); !ok) return ok;
        const auto verified = scram_->handle_server_final(text_of(r.data));
        if (!verified && verified.error() == wire::errc::scram_signature_mismatch) {
            // The server does not know the verifier: not the server the pool was meant for.
            return cannot_answer(
                "server failed to prove that it knows the SCRAM secret of user \"" +
                credentials_.user + "\"");
        }
        if (!verified) {
            return protocol_error("SCRAM server-final-message: " + verified.error().message());
        }
        step_ = Step::ok;
        return {};
    }

    Outcome answer(const be::AuthenticationKerberosV5&, wire::Writer&) {
        return unsupported("Kerberos V5");
    }
    Outcome answer(const be::AuthenticationGSS&, wire::Writer&) { return unsupported("GSSAPI"); }
    Outcome answer(const be::AuthenticationGSSContinue&, wire::Writer&) {
        return unsupported("GSSAPI");
    }
    Outcome answer(const be::AuthenticationSSPI&, wire::Writer&) { return unsupported("SSPI"); }

    ServerLoginError unsupported(std::string_view method) const {
        return cannot_answer("server asks user \"" + credentials_.user + "\" for " +
                             std::string(method) +
                             " authentication, which pgmarina does not support");
    }

    ServerLoginError missing_secret(std::string_view what) const {
        return cannot_answer("server asks user \"" + credentials_.user + "\" for " +
                             std::string(what) + ", but no password is configured for it");
    }

    std::string secret_name() const {
        return secret_kind_ == SecretKind::md5 ? "md5 secret" : "SCRAM verifier";
    }

    const ServerCredentials& credentials_;
    SecretKind secret_kind_;
    Step step_ = Step::request;
    std::optional<wire::scram::ClientExchange> scram_; // set once SCRAM-SHA-256 is chosen
    ServerWelcome welcome_;
    bool have_key_ = false;
};

} // namespace

asio::awaitable<ServerLoginResult> log_in_server(ServerStream& socket, wire::Framer& framer,
                                                 const ServerCredentials& credentials) {
    // A String cannot hold a NUL: the server would read a shorter name.
    if (credentials.user.find('\0') != std::string::npos ||
        credentials.database.find('\0') != std::string::npos) {
        co_return cannot_answer("user or database name contains a NUL byte");
    }
    // Everything a server sends is typed, from its first byte on.
    framer.set_phase(wire::Phase::typed);

    wire::Writer out;
    fe::StartupMessage{fe::protocol_3_0,
                       {{"user", credentials.user}, {"database", credentials.database}}}
        .encode(out);
    if (!co_await write_all(socket, out.bytes())) {
        co_return ServerLoginError{"08006", "server connection lost while sending the startup"};
    }

    Login login(credentials);
    while (!login.ready()) {
        const auto frame = co_await read_frame(socket, framer);
        if (!frame) co_return protocol_error(frame.error().message());
        if (!*frame) {
            co_return ServerLoginError{"08006", "server closed the connection during login"};
        }
        out.clear();
        if (auto handled = login.on_frame(**frame, out); !handled) co_return handled.error();
        if (!co_await write_all(socket, out.bytes())) {
            co_return ServerLoginError{"08006", "server connection lost during authentication"};
        }
    }
    co_return login.take_welcome();
}

} // namespace proxy
