#!/usr/bin/env bash
# Memory per idle client (issue 9): a fresh pgbouncer, a fresh pgmarina with workers = 1 and one
# with workers = 2, one after the other in front of a throwaway PostgreSQL 15, each get
# IDLE_CLIENTS (default 10000) clients that log in (startup message, authentication, up to
# ReadyForQuery) and then sit idle (bench/idle_client.py, Python standard library). Reported:
# (VmRSS after - VmRSS before) / clients, from /proc/PID/status. Transaction pooling: an idle
# client holds no server connection, so this is the proxy's own cost of a client.
#
# Usage: bench/idle_clients.sh, as root (PostgreSQL and pgbouncer run as the OS user postgres).
# Environment: IDLE_CLIENTS (10000), IDLE_USER (md5: md5_user, the cheapest login; scram:
# scram_user), BUILD_DIR (build-release), PGMARINA_BIN (a binary to run instead of building),
# OUT (bench/results), SETUP=0 skips the install. Writes OUT/idle_clients.md and OUT/idle_clients.csv and prints the table.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
clients=${IDLE_CLIENTS:-10000}
out=${OUT:-$root/bench/results}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_prepare

bench_start_cluster
user=$MD5_USER password=$MD5_PASSWORD
[[ ${IDLE_USER:-md5} == scram ]] && user=$SCRAM_USER password=$SCRAM_PASSWORD

csv=$work/idle.csv
echo "target,clients,ready,failed,rss_before_kb,rss_after_kb,kb_per_client,seconds" >"$csv"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for target in pgbouncer pgmarina-w1 pgmarina-w2; do
    case $target in
        pgbouncer) bench_start_pgbouncer idle-pgbouncer ;;
        pgmarina-w1) bench_start_pgmarina idle-w1 1 "$pgmarina" ;;
        pgmarina-w2) bench_start_pgmarina idle-w2 2 "$pgmarina" ;;
    esac
    pid=$bench_started_pid port=$bench_started_port
    # One client logs in and runs a query first, so that the pool, its server connection and
    # whatever a first client allocates once are in "before", not spread over the idle clients.
    PGPASSWORD=$password psql -X -q -h 127.0.0.1 -p "$port" -U "$user" -d "$DATABASE" \
        -c "SELECT 1" >/dev/null
    sleep 0.5
    line=$(python3 "$root/bench/idle_client.py" --port "$port" --user "$user" \
        --password "$password" --database "$DATABASE" --clients "$clients" --pid "$pid") || true
    echo "$target: $line" >&2
    eval "$(tr ' ' '\n' <<<"$line" | grep -E '^[a-z_]+=[0-9.]+$')"
    echo "$target,$clients,${ready:-0},${failed:-$clients},${rss_before_kb:-},${rss_after_kb:-},${kb_per_client:-},${seconds:-}" >>"$csv"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    unset ready failed rss_before_kb rss_after_kb kb_per_client seconds
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$out"
cp "$csv" "$out/idle_clients.csv"
{
    echo "# Memory per idle client"
    echo
    echo "Written by \`bench/idle_clients.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), pgmarina" \
        "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown); pgbouncer 1.18" \
        "(Debian). Machine: $(bench_machine_note); load average $load_before before," \
        "$load_after after."
    echo
    echo "Each proxy freshly started (transaction pooling, pool size $bench_pool, settings as in" \
        "compare.md), one warm-up client (\`psql -c 'SELECT 1'\`), then $clients clients as" \
        "$user log in up to ReadyForQuery and stay idle (\`bench/idle_client.py\`)." \
        "KB per client = (VmRSS after − VmRSS before) / clients that logged in."
    echo
    echo "| proxy | clients logged in | failed | RSS before (MB) | RSS after (MB) | KB per idle client |"
    echo "|---|---:|---:|---:|---:|---:|"
    awk -F, 'NR > 1 { printf "| %s | %s | %s | %.1f | %.1f | **%s** |\n", $1, $3, $4, $5 / 1024,
        $6 / 1024, $7 }' "$csv"
    awk -F, 'NR > 1 { kb[$1] = $7 } END {
        if (kb["pgbouncer"] > 0) {
            printf "\nRatio pgmarina / pgbouncer, KB per idle client: workers = 1 **%.2f**, " \
                "workers = 2 **%.2f**.\n", kb["pgmarina-w1"] / kb["pgbouncer"],
                kb["pgmarina-w2"] / kb["pgbouncer"]
        } }' "$csv"
} >"$out/idle_clients.md"
cat "$out/idle_clients.md"
