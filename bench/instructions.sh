#!/usr/bin/env bash
# Instructions per transaction (issue 9), counted by valgrind's callgrind: a count that the load
# of a shared machine does not change, where timings do (and these VMs give perf no hardware
# counters). Each proxy (Debian's pgbouncer, pgmarina with workers = 1) runs under callgrind in
# front of a throwaway PostgreSQL 15, set up as bench/compare.sh sets it up, once per run length:
# pgbench -S -M MODE -c CLIENTS -t SHORT, then -t LONG, each against a fresh proxy process. The
# difference of the two totals over the CLIENTS * (LONG - SHORT) transactions between them is the
# proxy's own cost of a transaction, its start, its clients' logins and its exit cancelled out.
# Clients and servers log in with md5 (md5_user): a SCRAM login costs some 25 million
# instructions of PBKDF2, and a pool may open a server more in one run than in the other. The
# busiest functions of the long pgmarina run are listed (self counts, callgrind_annotate).
#
# Usage: bench/instructions.sh, as root (PostgreSQL and pgbouncer run as the OS user postgres).
# Environment: MODES ("simple extended"), CLIENTS (10), SHORT (50), LONG (550) transactions per
# client, BUILD_DIR (build-release), PGMARINA_BIN (a binary to run instead of building), OUT
# (bench/results), NAME (instructions), SETUP=0 skips the install, KEEP_COUNTS (a directory that
# keeps the callgrind files, for callgrind_annotate). Writes OUT/NAME.md and prints it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
modes=${MODES:-simple extended} clients=${CLIENTS:-10} short=${SHORT:-50} long=${LONG:-550}
out=${OUT:-$root/bench/results} name=${NAME:-instructions}
((long > short)) || { echo "instructions.sh: LONG must exceed SHORT" >&2; exit 2; }
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_prepare
bench_start_cluster
bench_init_select_only
chmod 777 "$work" # callgrind, run as postgres for pgbouncer, writes its counts here

# Callgrind runs the proxy some fifty times slower: a login under it takes longer than pgbench's
# default patience, hence waiting for the port for up to a minute.
bench_wrap=(valgrind --tool=callgrind --quiet --callgrind-out-file="$work/callgrind.%p")
bench_wait_seconds=60

# run TARGET MODE TRANSACTIONS: the proxy's total instruction count over one pgbench run.
run() {
    local target=$1 mode=$2 transactions=$3 pid counts
    case $target in
        pgbouncer) bench_start_pgbouncer "$target" ;;
        pgmarina-w1) bench_start_pgmarina "$target" 1 "$pgmarina" ;;
    esac
    pid=$bench_started_pid
    PGPASSWORD=$MD5_PASSWORD pgbench -n -S -M "$mode" -c "$clients" -j 2 -t "$transactions" \
        -h 127.0.0.1 -p "$bench_started_port" -U "$MD5_USER" "$DATABASE" >"$work/pgbench.log" 2>&1 \
        || { cat "$work/pgbench.log" >&2; return 1; }
    # pgbouncer (SIGINT) and pgmarina (SIGTERM) exit cleanly; callgrind writes its file at exit.
    kill "-$([[ $target == pgbouncer ]] && echo INT || echo TERM)" "$pid"
    wait "$pid" 2>/dev/null || true
    counts=$work/callgrind.$pid # valgrind runs the proxy in its own process
    awk '/^totals:/ { print $2 }' "$counts"
    mv "$counts" "$work/last.$target.$mode.$transactions"
    [[ -z ${KEEP_COUNTS:-} ]] || cp "$work/last.$target.$mode.$transactions" "$KEEP_COUNTS/"
}

report=$work/report.md
{
    echo "# Proxy instructions per transaction"
    echo
    echo "Written by \`bench/instructions.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), pgmarina" \
        "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
        "$(pgbouncer --version | head -1), $(valgrind --version). callgrind counts the" \
        "instructions each proxy executes, all its threads, user space only (the kernel's share" \
        "of a send or a receive is not in it)."
    echo
    echo "pgbench -S at $clients clients over a pool of $bench_pool (md5 logins), a fresh proxy" \
        "per run: (total after $long transactions per client - total after $short) /" \
        "($clients × $((long - short))). pgmarina: \`workers = 1\`."
    echo
    echo "| mode | pgbouncer | pgmarina | pgmarina / pgbouncer |"
    echo "|---|---:|---:|---:|"
} >"$report"
for mode in $modes; do
    declare -A per_transaction=()
    for target in pgbouncer pgmarina-w1; do
        low=$(run "$target" "$mode" "$short")
        high=$(run "$target" "$mode" "$long")
        per_transaction[$target]=$(((high - low) / (clients * (long - short))))
    done
    echo "| $mode | ${per_transaction[pgbouncer]} | ${per_transaction[pgmarina-w1]} |" \
        "$(awk -v a="${per_transaction[pgmarina-w1]}" -v b="${per_transaction[pgbouncer]}" \
            'BEGIN { printf "**%.2f**", a / b }') |" >>"$report"
    unset per_transaction
done
{
    echo
    echo "Where pgmarina's instructions go, ${modes##* } mode, $long" \
        "transactions per client (self counts, the 25 largest):"
    echo
    echo '```'
    callgrind_annotate "$work/last.pgmarina-w1.${modes##* }.$long" \
        >"$work/annotated" 2>&1 || true
    awk '/^Ir/ { on = 1 } on && shown++ < 28 { print substr($0, 1, 160) }' "$work/annotated"
    echo '```'
} >>"$report"
mkdir -p "$out"
cp "$report" "$out/$name.md"
cat "$report"
