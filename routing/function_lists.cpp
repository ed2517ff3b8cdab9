#include "routing/function_lists.hpp"

#include "routing/word_list.hpp"

#include <algorithm>

namespace routing {

namespace {

// Built-in functions that neither write nor depend on the backend that ran an earlier
// statement, and that a hot standby runs as the primary would. Deliberately absent:
// - pg_current_wal_lsn and its siblings: read-only, but a standby refuses them ("recovery is in
//   progress"), so they are forbidden below rather than merely unlisted;
// - COALESCE, NULLIF, GREATEST, LEAST, EXTRACT, POSITION, SUBSTRING, TRIM, OVERLAY: grammar
//   constructs, never calls; listing them would let a user function named "coalesce" (callable
//   only quoted) through.
// pg_is_in_recovery is listed: it answers for the server that runs it, so through
// read_write_split it tells where a read ran. libpq's target_session_attrs only sends it to
// servers that do not report in_hot_standby, and the welcome always carries that parameter
// from PostgreSQL 14 on; SHOW transaction_read_only, its older probe, stays on the primary.
// pg_sleep is listed: it has no effect besides the wait, and keeping it off replicas would only
// move an idle connection to the primary, the scarcer one.
constexpr std::string_view read_only_text =
    // Aggregates.
    "array_agg avg bit_and bit_or bit_xor bool_and bool_or corr count covar_pop covar_samp every "
    "json_agg json_object_agg jsonb_agg jsonb_object_agg max min mode percentile_cont "
    "percentile_disc stddev stddev_pop stddev_samp string_agg sum var_pop var_samp variance "
    // Window functions.
    "cume_dist dense_rank first_value lag last_value lead nth_value ntile percent_rank rank "
    "row_number "
    // Dates and times; the clock functions read the clock, not the database.
    "age clock_timestamp date_bin date_part date_trunc isfinite justify_days justify_hours "
    "justify_interval make_date make_interval make_time make_timestamp make_timestamptz now "
    "statement_timestamp timeofday to_char to_date to_number to_timestamp transaction_timestamp "
    // Numbers; random() changes only its own backend's seed.
    "abs cbrt ceil ceiling degrees div exp floor gcd lcm ln log log10 mod pi pow power radians "
    "random round sign sqrt trunc width_bucket "
    // Strings and bytes.
    "array_to_string ascii bit_length btrim char_length character_length chr concat concat_ws "
    "decode encode format initcap left length lower lpad ltrim md5 octet_length quote_ident "
    "quote_literal quote_nullable regexp_count regexp_instr regexp_like regexp_match "
    "regexp_matches regexp_replace regexp_split_to_array regexp_split_to_table regexp_substr "
    "repeat replace reverse right rpad rtrim sha224 sha256 sha384 sha512 split_part starts_with "
    "string_to_array string_to_table strpos substr to_hex translate upper "
    // JSON; jsonb_set and jsonb_insert return a new value, they store nothing.
    "array_to_json json_array_elements json_array_elements_text json_array_length "
    "json_build_array json_build_object json_each json_each_text json_extract_path "
    "json_extract_path_text json_object_keys json_populate_record json_populate_recordset "
    "json_strip_nulls json_to_record json_to_recordset json_typeof jsonb_array_elements "
    "jsonb_array_elements_text jsonb_array_length jsonb_build_array jsonb_build_object jsonb_each "
    "jsonb_each_text jsonb_extract_path jsonb_extract_path_text jsonb_insert jsonb_object "
    "jsonb_object_keys jsonb_path_exists jsonb_path_match jsonb_path_query jsonb_path_query_array "
    "jsonb_path_query_first jsonb_populate_record jsonb_populate_recordset jsonb_pretty jsonb_set "
    "jsonb_strip_nulls jsonb_to_record jsonb_to_recordset jsonb_typeof row_to_json to_json "
    "to_jsonb "
    // Arrays and set-returning functions.
    "array_append array_cat array_dims array_length array_lower array_ndims array_position "
    "array_positions array_prepend array_remove array_replace array_upper cardinality "
    "generate_series generate_subscripts unnest "
    // Catalog, session and server information.
    "col_description current_database current_schema current_schemas current_setting format_type "
    "has_column_privilege has_database_privilege has_function_privilege has_schema_privilege "
    "has_sequence_privilege has_table_privilege inet_client_addr inet_client_port "
    "inet_server_addr inet_server_port obj_description pg_backend_pid pg_client_encoding "
    "pg_column_size pg_database_size pg_encoding_to_char pg_get_constraintdef pg_get_expr "
    "pg_get_functiondef pg_get_indexdef pg_get_userbyid pg_get_viewdef pg_has_role "
    "pg_indexes_size pg_is_in_recovery pg_last_wal_receive_lsn pg_last_wal_replay_lsn pg_last_xact_replay_timestamp "
    "pg_postmaster_start_time pg_relation_size pg_size_pretty pg_table_is_visible pg_table_size "
    "pg_total_relation_size pg_typeof pg_wal_lsn_diff to_regclass to_regtype version "
    // Others without effects.
    "gen_random_uuid pg_sleep pg_sleep_for pg_sleep_until ";
constexpr WordList<count_words(read_only_text)> read_only_functions{read_only_text};

// Never on a replica, even when configured as read-only:
// - nextval and setval write a sequence (a standby refuses them); currval and lastval are
//   read-only but answer from the backend that last ran nextval, which was the primary's;
// - advisory locks would be taken in the standby's own lock table, so they would exclude
//   nobody on the primary: no error, just a lock that does not lock;
// - set_config is SET in function form and pg_notify is NOTIFY; both statements go to the
//   primary, and a standby refuses NOTIFY;
// - txid_current and pg_current_xact_id assign a transaction id, which a standby refuses; the
//   *_if_assigned forms report the id of this backend's transaction, which is the primary's;
// - pg_current_wal_*lsn fail during recovery; pg_export_snapshot exports a snapshot that only
//   the standby knows, and SET TRANSACTION SNAPSHOT goes to the primary;
// - pg_cancel_backend and pg_terminate_backend take a process id that belongs to the primary;
//   on a standby the same number is another process, or none.
constexpr std::string_view forbidden_text =
    "currval lastval nextval setval pg_advisory_lock pg_advisory_lock_shared pg_advisory_unlock "
    "pg_advisory_unlock_shared pg_advisory_unlock_all pg_advisory_xact_lock "
    "pg_advisory_xact_lock_shared pg_try_advisory_lock pg_try_advisory_lock_shared "
    "pg_try_advisory_xact_lock pg_try_advisory_xact_lock_shared set_config pg_notify txid_current "
    "txid_current_if_assigned pg_current_xact_id pg_current_xact_id_if_assigned "
    "pg_current_wal_lsn pg_current_wal_insert_lsn pg_current_wal_flush_lsn pg_export_snapshot "
    "pg_cancel_backend pg_terminate_backend ";
constexpr WordList<count_words(forbidden_text)> forbidden_functions{forbidden_text};

bool is_configured(std::optional<std::string_view> schema, bool builtin_scope,
                   std::string_view name, std::span<const std::string> configured) {
    return std::any_of(configured.begin(), configured.end(), [&](std::string_view entry) {
        const std::size_t dot = entry.find('.');
        if (dot == std::string_view::npos) {
            return builtin_scope && entry == name;
        }
        return schema && dot > 0 && entry.substr(0, dot) == *schema &&
               entry.substr(dot + 1) == name;
    });
}

} // namespace

FunctionKind classify_function(std::optional<std::string_view> schema, std::string_view name,
                               std::span<const std::string> configured) noexcept {
    if (forbidden_functions.contains(name)) {
        return FunctionKind::forbidden;
    }
    const bool builtin_scope = !schema || *schema == "pg_catalog";
    if ((builtin_scope && read_only_functions.contains(name)) ||
        is_configured(schema, builtin_scope, name, configured)) {
        return FunctionKind::read_only;
    }
    return FunctionKind::unlisted;
}

} // namespace routing
