#!/usr/bin/env python3
"""Counts test cases across one or more meson test logs and prints 'N passed, M failed'.

meson counts executables; a doctest executable holds dozens of cases, so the counts come from
doctest's own summary line. A test that crashed or timed out before printing that line still
counts as one failure, so a crash can never look like success. Each failure is named (build,
test, doctest case) just above the total, so the end of a long CI log says what to look at.
Usage: summarize.py BUILD_DIR [BUILD_DIR ...]
"""
import json
import pathlib
import re
import sys

DOCTEST = re.compile(
    r"\[doctest\] test cases:\s*(\d+) \|\s*(\d+) passed \|\s*(\d+) failed \|\s*(\d+) skipped")
# doctest reports each failed check, a MESSAGE or a WARN in a block under a line of '=' that
# names the test case; a failed check's block holds "ERROR:" (or "FATAL ERROR:").
CASE = re.compile(r"^TEST CASE:\s+(.*)$", re.MULTILINE)
ERROR = re.compile(r": (FATAL )?ERROR:")


def failed_cases(stdout: str) -> list[str]:
    cases = []
    for block in re.split(r"^={20,}$", stdout, flags=re.MULTILINE):
        case = CASE.search(block)
        if case and ERROR.search(block) and case.group(1) not in cases:
            cases.append(case.group(1))
    return cases


def count(log: pathlib.Path, failures: list[str]) -> tuple[int, int, int]:
    passed = failed = skipped = 0
    for line in log.read_text().splitlines():
        test = json.loads(line)
        result = test["result"]
        stdout = test.get("stdout", "") or ""
        where = f"{log.parent.parent.name} {test['name']}"
        summaries = DOCTEST.findall(stdout)
        if summaries:
            _, p, f, s = (int(x) for x in summaries[-1])
            passed, failed, skipped = passed + p, failed + f, skipped + s
            failures += [f"{where}: {case}" for case in failed_cases(stdout)]
            if result not in ("OK", "EXPECTEDFAIL") and f == 0:
                failed += 1
                failures.append(f"{where}: {result} after the cases passed")
        elif result == "OK":
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
            failures.append(f"{where}: {result}")
    return passed, failed, skipped


def main() -> int:
    totals = [0, 0, 0]
    failures: list[str] = []
    for build in sys.argv[1:]:
        log = pathlib.Path(build) / "meson-logs" / "testlog.json"
        if not log.exists():
            failures.append(f"{build}: no test log")
            totals[1] += 1
            continue
        for i, n in enumerate(count(log, failures)):
            totals[i] += n
    passed, failed, skipped = totals
    for failure in failures:
        print(f"failed: {failure}")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
