#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test suite
# (unit, then integration against real PostgreSQL 15 clusters). Last line: "N passed, M failed".
# BUILD_DIR picks the build directory (default: build); extra arguments go to `meson setup`.
set -euo pipefail
cd "$(dirname "$0")/.."

etc/setup-debian.sh
build=${BUILD_DIR:-build}
# PostgreSQL was just installed, so an integration test that cannot start a cluster is a failure,
# not a skip.
setup_args=(-Dintegration=enabled "$@")
if [[ -n "${CI:-}" ]]; then
    setup_args+=(-Dwerror=true)
fi
if [[ -f "$build/build.ninja" ]]; then
    meson setup --reconfigure "$build" "${setup_args[@]}" >/dev/null
else
    meson setup "$build" "${setup_args[@]}" >/dev/null
fi
meson compile -C "$build"

meson_status=0
meson test -C "$build" --print-errorlogs || meson_status=$?
summary_status=0
python3 tests/summarize.py "$build" || summary_status=$?
((meson_status == 0 && summary_status == 0))
