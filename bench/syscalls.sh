#!/usr/bin/env bash
# System calls per transaction (issue 9): most of a proxy's CPU per transaction is the kernel's,
# so the calls it makes matter as much as its own instructions (bench/instructions.sh). Each proxy
# (Debian's pgbouncer, pgmarina with workers = 1) runs under `strace -f -c` in front of a
# throwaway PostgreSQL 15, set up as bench/compare.sh sets it up, for one pgbench -S run; the
# calls strace counted, divided by the run's transactions, are listed side by side (those made
# at least once per hundred transactions; start-up and logins are in the counts, a few hundred
# calls over tens of thousands of transactions). strace slows both proxies down, so the
# counts are the result, not the times.
#
# Usage: bench/syscalls.sh, as root (PostgreSQL and pgbouncer run as the OS user postgres).
# Environment: MODES ("simple extended"), CLIENTS (10), TRANSACTIONS (2000) per client,
# BUILD_DIR (build-release), PGMARINA_BIN (a binary to run instead of building), OUT
# (bench/results), NAME (syscalls), SETUP=0 skips the install. Writes OUT/NAME.md and prints it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
modes=${MODES:-simple extended} clients=${CLIENTS:-10} transactions=${TRANSACTIONS:-2000}
out=${OUT:-$root/bench/results} name=${NAME:-syscalls}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_prepare
bench_start_cluster
bench_init_select_only
chmod 777 "$work" # strace, run as postgres for pgbouncer, writes its counts here

# run TARGET MODE: strace's counts for one pgbench run through TARGET, as "name calls" lines.
run() {
    local target=$1 mode=$2 counts=$work/strace.$1.$2 proxy
    bench_wrap=(strace -f -c -o "$counts")
    case $target in
        pgbouncer) bench_start_pgbouncer "$target-$mode" ;;
        pgmarina-w1) bench_start_pgmarina "$target-$mode" 1 "$pgmarina" ;;
    esac
    PGPASSWORD=$MD5_PASSWORD pgbench -n -S -M "$mode" -c "$clients" -j 2 -t "$transactions" \
        -h 127.0.0.1 -p "$bench_started_port" -U "$MD5_USER" "$DATABASE" >"$work/pgbench.log" 2>&1 \
        || { cat "$work/pgbench.log" >&2; return 1; }
    # The proxy is strace's child; strace writes its counts once the proxy has exited.
    proxy=$(pgrep -P "$bench_started_pid")
    kill "-$([[ $target == pgbouncer ]] && echo INT || echo TERM)" "$proxy"
    wait "$bench_started_pid" 2>/dev/null || true
    # Rows of `strace -c`: % time, seconds, usecs/call, calls, [errors,] syscall.
    awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $NF, $4 }' "$counts"
}

report=$work/report.md
{
    echo "# Proxy system calls per transaction"
    echo
    echo "Written by \`bench/syscalls.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), pgmarina" \
        "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
        "$(pgbouncer --version | head -1), $(strace --version | head -1). Calls counted by" \
        "\`strace -f -c\` over one \`pgbench -S -c $clients -t $transactions\` run (md5 logins, pool" \
        "of $bench_pool), divided by its $((clients * transactions)) transactions; calls made less" \
        "than once per hundred transactions are left out. pgmarina: \`workers = 1\`."
} >"$report"
total=$((clients * transactions))
for mode in $modes; do
    run pgbouncer "$mode" >"$work/pgbouncer.calls"
    run pgmarina-w1 "$mode" >"$work/pgmarina.calls"
    {
        echo
        echo "## \`-M $mode\`"
        echo
        echo "| system call | pgbouncer | pgmarina |"
        echo "|---|---:|---:|"
        awk -v total="$total" '
            FNR == NR { bouncer[$1] = $2; names[$1] = 1; next }
            { marina[$1] = $2; names[$1] = 1 }
            END {
                for (name in names) {
                    b = bouncer[name] / total; m = marina[name] / total
                    if (b >= 0.01 || m >= 0.01) {
                        printf "1 | %s | %.2f | %.2f |\n", name, b, m
                        sum_b += b; sum_m += m
                    }
                }
                printf "2 | **all of these** | **%.2f** | **%.2f** |\n", sum_b, sum_m
            }' "$work/pgbouncer.calls" "$work/pgmarina.calls" | sort | cut -c3-
    } >>"$report"
done
mkdir -p "$out"
cp "$report" "$out/$name.md"
cat "$report"
