#include "proxy/client_session_impl.hpp"

#include <sys/socket.h>

namespace proxy {

asio::awaitable<bool> ClientSession::log_in() {
    const auto tls = runtime_.tls.get();
    auto outcome = co_await read_startup(client_, framer_, *config_, *tls);
    if (auto* ended = std::get_if<StartupEnded>(&outcome)) {
        end_reason_ = std::move(ended->reason);
        co_return false;
    }
    if (auto* cancel = std::get_if<CancelRequested>(&outcome)) {
        end_reason_ = "cancel request";
        co_await forward_cancel(cancel->key);
        co_return false;
    }
    startup_ = std::move(std::get<AcceptedStartup>(outcome));
    if (runtime_.refusing_logins && !is_admin_database(*config_, startup_.database)) {
        co_await fail("57P01", "pgmarina is shutting down");
        co_return false;
    }
    if (runtime_.clients.fetch_add(1, std::memory_order_relaxed) >=
        config_->settings.max_client_conn) {
        runtime_.clients.fetch_sub(1, std::memory_order_relaxed);
        co_await fail("53300", "no more connections allowed (max_client_conn)");
        co_return false;
    }
    counted_ = true;
    if (startup_.negotiate && !co_await negotiate_protocol()) co_return false;
    if (!co_await authenticate()) co_return false;
    co_return co_await welcome();
}

asio::awaitable<bool> ClientSession::negotiate_protocol() {
    wire::be::NegotiateProtocolVersion reply;
    for (const auto& option : startup_.unrecognized_options)
        reply.unrecognized_options.push_back(option);
    wire::Writer writer;
    reply.encode(writer);
    co_return co_await write_all(client_, writer.bytes());
}

asio::awaitable<bool> ClientSession::authenticate() {
    const auto found = co_await runtime_.auth_queries.find_secret(*config_, *runtime_.auth_users(),
                                                                  startup_.database, startup_.user);
    if (!found) {
        co_await fail(found.error().sqlstate, found.error().message);
        co_return false;
    }
    const std::optional<std::string>& secret = *found;
    AuthType method = config_->settings.auth_type;
    if (method == AuthType::hba) {
        const auto decided = co_await hba_method(secret.has_value());
        if (!decided) co_return false;
        method = *decided;
    }
    if (!secret && method == AuthType::trust) {
        co_await fail("28000", "no such user: " + startup_.user);
        co_return false;
    }
    const std::string unknown = secret ? std::string() : decoy_secret(method, startup_.user);
    auto outcome = co_await authenticate_client(client_, framer_, method, startup_.user,
                                                secret ? *secret : unknown);
    if (!outcome) {
        end_reason_ = outcome.error().reason;
        if (outcome.error().refused) {
            runtime_.metrics.auth_failure(to_string(method), startup_.database, startup_.user,
                                          secret.has_value());
        }
        co_return false;
    }
    if (is_admin_database(*config_, startup_.database)) co_return co_await admit_to_console();
    if (runtime_.switches.disabled(startup_.database)) {
        co_await fail("55000", "database does not allow connections: " + startup_.database);
        co_return false;
    }
    const auto database = config_->databases.find(startup_.database);
    auto& metrics = runtime_.metrics.database(startup_.database);
    if (database != config_->databases.end()) {
        router_.emplace(runtime_, startup_.database, startup_.user, database->second, metrics);
        pool_ = router_->welcome_pool();
    }
    if (!pool_) {
        // RELOAD dropped the database since the startup packet was read.
        co_await fail("3D000", "no such database: " + startup_.database);
        co_return false;
    }
    activity_.emplace(register_client(pool_->key()), pool_->traffic(), metrics);
    mode_ = resolve_pool_mode(*config_, pool_->key());
    // In session pooling the client keeps its server, and its statements with it.
    if (mode_ != PoolMode::session && config_->settings.max_prepared_statements > 0) {
        prepared_.emplace(runtime_.statements, pool_->traffic());
    }
    // With the database's forced user, the client's password is not the servers'. A secret
    // from auth_query is known to the pool only through its clients.
    if (pool_->key().user == startup_.user) {
        router_->learn_credentials(outcome->password ? outcome->password : secret,
                                   outcome->scram_keys);
    }
    co_return true;
}

asio::awaitable<std::optional<AuthType>> ClientSession::hba_method(bool known_user) {
    boost::system::error_code ec;
    const auto peer = client_.socket().remote_endpoint(ec);
    if (ec) {
        end_reason_ = "client gone";
        co_return std::nullopt;
    }
    const HbaConnection connection{peer.data()->sa_family == AF_UNIX, client_.tls() != nullptr,
                                   ip_address(peer), startup_.database, startup_.user};
    const HbaDecision decision = runtime_.hba_rules()->decide(connection);
    if (!decision.method) {
        runtime_.metrics.auth_failure("reject", startup_.database, startup_.user, known_user);
        co_await fail("28000", hba_refusal(connection, decision));
        co_return std::nullopt;
    }
    co_return decision.method;
}

asio::awaitable<bool> ClientSession::admit_to_console() {
    const Settings& settings = config_->settings;
    const auto listed = [&](const std::vector<std::string>& users) {
        return std::ranges::find(users, startup_.user) != users.end();
    };
    const bool admin = listed(settings.admin_users);
    if (!admin && !listed(settings.stats_users)) {
        co_await fail("28000", "not allowed to use the admin console: " + startup_.user);
        co_return false;
    }
    console_.emplace(runtime_, admin, id_);
    register_client(pool::Key{startup_.database, ""});
    co_return true;
}

std::shared_ptr<ClientInfo> ClientSession::register_client(pool::Key pool) {
    info_ = std::make_shared<ClientInfo>();
    info_->id = id_;
    info_->user = startup_.user;
    info_->database = startup_.database;
    info_->pool = std::move(pool);
    std::tie(info_->remote, info_->local) =
        socket_addresses(client_.socket(), listen_port(config_->settings));
    info_->connect_time = ClientInfo::Clock::now();
    info_->application_name = std::string(startup_.parameters.get("application_name").value_or(""));
    info_->executor = client_.get_executor();
    info_->socket = &client_.socket();
    if (const TlsEngine* tls = client_.tls()) info_->tls = tls->description();
    runtime_.sessions.add(info_);
    return info_;
}

asio::awaitable<void> ClientSession::serve_console() {
    end_reason_ = co_await serve_admin(client_, framer_, [this](const AdminCommand& command) {
        return console_->execute(command);
    });
}

asio::awaitable<bool> ClientSession::welcome() {
    auto parameters = console_ ? console_parameters() : pool_->welcome_parameters();
    if (parameters.empty()) {
        // The pool's first client: a server must log in to tell us what to say.
        auto server = co_await pool_->acquire(waiter(), worker_);
        if (!server) {
            co_await fail(server.error().sqlstate, server.error().message);
            co_return false;
        }
        parameters = (*server)->welcome().parameters;
        server->release(pool::Release::clean);
    }
    wire::Writer writer;
    for (const auto& parameter : parameters) {
        // A value the client did not choose is the server default, which a later server
        // must be set back to if another client changed it (PgBouncer varcache_fill_unset).
        if (!startup_.parameters.get(parameter.name)) {
            startup_.parameters.set(parameter.name, parameter.value);
        }
        const auto value = startup_.parameters.get(parameter.name).value_or(parameter.value);
        wire::be::ParameterStatus{parameter.name, value}.encode(writer);
    }
    cancel_target_ = std::make_shared<CancelTarget>();
    cancel_key_ = runtime_.cancels.add(cancel_target_, config_->settings.peer_id);
    wire::be::BackendKeyData{cancel_key_->process_id, cancel_key_->secret}.encode(writer);
    wire::be::ReadyForQuery::idle().encode(writer);
    co_return co_await write_all(client_, writer.bytes());
}

asio::awaitable<void> ClientSession::forward_cancel(const CancelKey& key) {
    const auto route = route_cancel(key, config_->settings.peer_id, config_->peers);
    if (route.kind == CancelRoute::Kind::forward) {
        if (!co_await send_cancel_to_peer(route.peer, route.key,
                                          config_->settings.cancel_wait_timeout)) {
            log::warning(name(), " cancel request could not be forwarded to peer ", route.owner,
                         " at ", route.peer.to_string());
        }
        co_return;
    }
    if (route.kind == CancelRoute::Kind::drop) {
        log::info(name(), " cancel request for peer ", route.owner,
                  key_forwarded(key) ? ", forwarded already" : ", which is not in [peers]");
        co_return;
    }
    const auto target = runtime_.cancels.find(route.key);
    if (!target) {
        log::info(name(), " cancel request for an unknown key");
        co_return;
    }
    auto link = target->current();
    // PgBouncer: "not sending cancel request for client that is now idle".
    if (!link) co_return;
    co_await send_cancel(std::move(*link), config_->settings.cancel_wait_timeout);
}

} // namespace proxy
