#!/usr/bin/env python3
"""Turns bench/compare.sh's runs (CSV) into compare.md, a gnuplot chart and a summary on stdout.

Python 3 standard library only. Ratios are pgmarina / pgbouncer for each pgmarina target.
"""

import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile

TARGETS = ["direct", "pgbouncer", "pgmarina-w1", "pgmarina-w2"]
PGMARINA = ["pgmarina-w1", "pgmarina-w2"]
WORKLOADS = ["simple", "extended", "prepared", "tpcb", "connect-scram", "connect-md5"]


def num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def fmt(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}".replace(",", " ") if digits == 0 else f"{value:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cells = {}
    for row in rows:
        cells[(row["workload"], int(row["clients"]), row["target"])] = row
    return rows, cells


def present(rows, key, order):
    seen = {row[key] for row in rows}
    return [x for x in order if x in seen] + sorted(seen - set(order))


def cell_text(row, column, digits):
    if row is None:
        return "–"
    if row["status"].startswith("skipped"):
        return "skip¹"
    value = fmt(num(row[column]), digits)
    if row["status"] != "ok":
        value += "²"
    return value


def table(rows, cells, workload, column, digits, targets, clients):
    out = ["| clients | " + " | ".join(targets) + " |",
           "|---:|" + "---:|" * len(targets)]
    for c in clients:
        if not any((workload, c, t) in cells for t in targets):
            continue
        out.append(f"| {c} | " + " | ".join(
            cell_text(cells.get((workload, c, t)), column, digits) for t in targets) + " |")
    return out


def value(cells, workload, clients, target, column):
    row = cells.get((workload, clients, target))
    return None if row is None else num(row[column])


def ratios(cells, workloads, clients):
    """Lines of the headline ratio tables."""
    out = []
    marinas = [t for t in PGMARINA if any(k[2] == t for k in cells)]
    if "pgbouncer" not in {k[2] for k in cells} or not marinas:
        return out

    def ratio_table(title, note, rows):
        out.extend([f"### {title}", "", note, ""] if note else [f"### {title}", ""])
        out.append("| workload | clients | pgbouncer | " +
                   " | ".join(marinas) + " | " +
                   " | ".join(f"{m} / pgbouncer" for m in marinas) + " |")
        out.append("|---|---:|---:|" + "---:|" * (2 * len(marinas)))
        out.extend(rows)
        out.append("")

    def rows_for(column, at, digits, lower_is_better=False):
        rows = []
        for w in workloads:
            for c in at:
                b = value(cells, w, c, "pgbouncer", column)
                ms = [value(cells, w, c, m, column) for m in marinas]
                if b is None and all(m is None for m in ms):
                    continue
                # A run that did not finish cleanly has no ratio: its numbers are not comparable.
                ok = {t: (w, c, t) in cells and cells[(w, c, t)]["status"] == "ok"
                      for t in ["pgbouncer"] + marinas}
                rs = [ratio(m, b) if ok["pgbouncer"] and ok[t] else None
                      for m, t in zip(ms, marinas)]
                mark = {t: "" if ok[t] else "²" for t in ok}
                rows.append(f"| {w} | {c} | {fmt(b, digits)}{mark['pgbouncer']} | " +
                            " | ".join(fmt(m, digits) + mark[t] for m, t in zip(ms, marinas)) +
                            " | " + " | ".join(f"**{fmt(r, 2)}**" if r is not None else "–"
                                               for r in rs) + " |")
        return rows

    ratio_table("CPU per transaction (µs), 50 clients",
                "The proxy process's utime + stime over the run / transactions. Lower is "
                "better: a ratio under 1 means pgmarina spends less CPU per transaction. The "
                "run includes the logins of its clients (pgbench connects them first, with "
                "SCRAM): with TX 5000 at 50 clients that is 50 logins per 5000 transactions, "
                "about half of pgbouncer's figure (it derives the SCRAM keys from the plain "
                "password at every login, ~2.9 ms, see connect-scram) and a fifth of "
                "pgmarina's, which makes the ratio look better for pgmarina than the "
                "transactions alone; at 1000 clients and more logins dominate. A run with many "
                "transactions per client (e.g. `CLIENTS=50 TX_SELECT=50000`) measures the "
                "transactions alone.",
                rows_for("cpu_us_per_tx", [c for c in clients if c == 50], 1))
    ratio_table("Throughput (tps) at 50, 200 and 1000 clients",
                "Higher is better: a ratio over 1 means pgmarina is faster.",
                rows_for("tps", [c for c in clients if c in (50, 200, 1000)], 0))
    # Latency added with one client: average latency through the proxy minus direct.
    rows = []
    for w in workloads:
        d = value(cells, w, 1, "direct", "latency_avg_ms")
        b = value(cells, w, 1, "pgbouncer", "latency_avg_ms")
        if d is None or b is None:
            continue
        added_b = b - d
        ms = [value(cells, w, 1, m, "latency_avg_ms") for m in marinas]
        added = [None if m is None else m - d for m in ms]
        rows.append(f"| {w} | {fmt(d, 3)} | {fmt(added_b, 3)} | " +
                    " | ".join(fmt(a, 3) for a in added) + " | " +
                    " | ".join(f"**{fmt(ratio(a, added_b), 2)}**" if a is not None and
                               added_b > 0 else "–" for a in added) + " |")
    if rows:
        out.extend(["### Latency added with 1 client (ms)", "",
                    "Average latency through the proxy minus the average latency straight to "
                    "PostgreSQL, one client. Lower is better. Differences of a few µs drown "
                    "in this machine's noise.", ""])
        out.append("| workload | direct avg | pgbouncer adds | " +
                   " | ".join(f"{m} adds" for m in marinas) + " | " +
                   " | ".join(f"{m} / pgbouncer" for m in marinas) + " |")
        out.append("|---|---:|---:|" + "---:|" * (2 * len(marinas)))
        out.extend(rows)
        out.append("")
    if 5000 in clients:
        out.extend(["### Failed transactions at 5000 clients", "",
                    "Transactions that did not complete: pgbench's failed count plus those its "
                    "aborted clients never ran (e.g. a refused connection).", ""])
        out.append("| workload | expected | pgbouncer | " + " | ".join(marinas) + " |")
        out.append("|---|---:|---:|" + "---:|" * len(marinas))
        for w in workloads:
            row = cells.get((w, 5000, "pgbouncer"))
            if row is None:
                continue
            out.append(f"| {w} | {row['expected'] or '–'} | {row['failed'] or '–'} | " +
                       " | ".join((cells[(w, 5000, m)]["failed"] or "–")
                                  if (w, 5000, m) in cells else "–" for m in marinas) + " |")
        out.append("")
    return out


def chart(rows, cells, png, workloads, clients):
    targets = present(rows, "target", TARGETS)
    if not workloads or not clients:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        for w in workloads:
            with open(os.path.join(tmp, f"{w}.dat"), "w") as f:
                for c in clients:
                    vals = []
                    for t in targets:
                        v = value(cells, w, c, t, "tps")
                        vals.append("NaN" if v is None else f"{v:.1f}")
                    f.write(f"{c} " + " ".join(vals) + "\n")
        cols = 3 if len(workloads) > 1 else 1
        rows_n = math.ceil(len(workloads) / cols)
        script = [f'set terminal pngcairo size {420 * cols},{330 * rows_n + 40} font "sans,9"',
                  f'set output "{png}"',
                  f'set multiplot layout {rows_n},{cols} title '
                  '"pgbench tps by clients (log scale): direct PostgreSQL, pgbouncer 1.18, pgmarina"',
                  "set logscale x", "set grid", "set key top right", "set xlabel 'clients'",
                  "set ylabel 'tps'", "set yrange [0:*]",
                  f"set xtics ({', '.join(str(c) for c in clients)})",
                  "set style data linespoints"]
        for w in workloads:
            plots = [f"'{tmp}/{w}.dat' using 1:{i + 2} title '{t}' lw 2"
                     for i, t in enumerate(targets)]
            script.append(f"set title '{w}'")
            script.append("plot " + ", ".join(plots))
        script.append("unset multiplot")
        try:
            subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"compare_report: no chart: {e}", file=sys.stderr)
            return False
    return True


def summary(rows):
    print(f"{'workload':<13} {'clients':>7}  {'target':<12} {'tps':>10} {'avg ms':>8} "
          f"{'p99 ms':>8} {'failed':>7} {'cpu us/tx':>9}")
    for r in rows:
        if r["status"].startswith("skipped"):
            print(f"{r['workload']:<13} {r['clients']:>7}  {r['target']:<12} {r['status']}")
            continue
        print(f"{r['workload']:<13} {r['clients']:>7}  {r['target']:<12} "
              f"{fmt(num(r['tps'])):>10} {fmt(num(r['latency_avg_ms']), 3):>8} "
              f"{fmt(num(r['latency_p99_ms']), 3):>8} {r['failed'] or '–':>7} "
              f"{r['cpu_us_per_tx'] or '–':>9}" + ("" if r["status"] == "ok" else
                                                    f"  {r['status']}"))


def main():
    p = argparse.ArgumentParser()
    for name in ("csv", "md", "png", "idle", "statements", "date", "commit", "machine", "load",
                 "settings"):
        p.add_argument("--" + name, default="")
    a = p.parse_args()
    rows, cells = load(a.csv)
    workloads = present(rows, "workload", WORKLOADS)
    clients = sorted({int(r["clients"]) for r in rows})
    targets = present(rows, "target", TARGETS)
    have_chart = chart(rows, cells, a.png, workloads, clients) if a.png else False

    md = ["# pgmarina next to PgBouncer", "",
          f"Written by `bench/compare.sh` on {a.date}, pgmarina {a.commit}; "
          f"pgbouncer 1.18 (Debian), PostgreSQL 15 (`tests/fixture/pg-cluster`, fsync off).", "",
          f"**Machine: {a.machine}, shared by everything in the run** (pgbench, PostgreSQL, "
          "both pgmarina instances and pgbouncer) **and by other jobs**: load average "
          f"{a.load}. Absolute numbers move from run to run; quote the ratios, and the CPU "
          "per transaction rather than tps.", "",
          f"Setup: {a.settings}. Every proxy: transaction pooling, clients authenticated as "
          "PostgreSQL would (md5_user with md5, scram_user with SCRAM-SHA-256; `auth_type = hba`) "
          "from plain passwords, `log_connections` off. pgmarina-w1 / -w2: `workers = 1` / `2`. "
          "The targets of one (workload, clients) cell run one after the other, their order "
          "rotating from cell to cell. Workloads: `simple`, `extended`, `prepared` = `pgbench -S "
          "-M ...`; `tpcb` = pgbench's default script; `connect-scram`, `connect-md5` = "
          "`pgbench -S -C` (a new connection for every transaction) as scram_user or md5_user.",
          "", "¹ skipped: more clients than PostgreSQL's max_connections can take. "
          "² pgbench did not finish cleanly (see `status` in the CSV); no ratio is taken "
          "from such a run.", "",
          "pgbouncer 1.18 (Debian 12's) does not support protocol-level prepared statements in "
          "transaction pooling (`max_prepared_statements` came in 1.21): `-M prepared` through "
          "it fails wherever a client's statement is missing on the server it lands on, and "
          "succeeds only by the luck of names (every pgbench client calls its one statement "
          "`P_0`, so once each server has one, any client's Bind finds it).", ""]
    if have_chart:
        md += [f"![tps by clients]({os.path.basename(a.png)})", ""]
    md += ["## Ratios pgmarina / pgbouncer", ""]
    md += ratios(cells, workloads, clients)
    if a.idle and os.path.exists(a.idle):
        with open(a.idle) as f:
            text = f.read().strip().splitlines()
        md += ["## Memory per idle client", ""]
        md += [line for line in text if not line.startswith("# ")]
        md.append("")
    if a.statements and os.path.exists(a.statements):
        with open(a.statements) as f:
            text = f.read().rstrip()
        md += ["## What PostgreSQL runs for each proxy's transactions", "",
               "After the runs, with `log_statement = 'all'`: `pgbench -n -S -M extended -c 2 "
               "-t 3` through each proxy; the statements the server logged for scram_user "
               "(pgbench's own catalog queries left out; the process id tells the servers "
               "apart). Every extra statement per transaction is a round trip to the server.",
               "", "```", text, "```", ""]
    md += ["## All runs", ""]
    for title, column, digits, tlist in (
            ("Throughput (tps)", "tps", 0, targets),
            ("Average latency (ms)", "latency_avg_ms", 3, targets),
            ("p99 latency (ms), from pgbench's per-transaction log", "latency_p99_ms", 3,
             targets),
            ("Proxy CPU per transaction (µs)", "cpu_us_per_tx", 1,
             [t for t in targets if t != "direct"]),
            ("Failed transactions", "failed", 0, targets)):
        md += [f"### {title}", ""]
        for w in workloads:
            md += [f"**{w}**", ""]
            md += table(rows, cells, w, column, digits, tlist, clients)
            md.append("")
    md += [f"Raw data: `{os.path.basename(a.csv)}` (one row per run).", ""]
    with open(a.md, "w") as f:
        f.write("\n".join(md))
    summary(rows)
    print(f"\nwrote {a.md}" + (f", {a.png}" if have_chart else ""))


if __name__ == "__main__":
    main()
