#!/usr/bin/env python3
"""Prints the meson targets a sanitizer run needs, one per line, for `meson compile`: pgmarina,
every executable defined under tests/unit (the unit suite and the helpers its tests start), and
the integration tests named on the command line (`startup` is tests/integration/startup_test).

Usage: unit_and_named_targets.py BUILD_DIR [INTEGRATION_TEST ...]
"""
import json
import os
import subprocess
import sys


def main() -> int:
    build = sys.argv[1]
    wanted = {name + "_test" for name in sys.argv[2:]}
    targets = json.loads(subprocess.run(["meson", "introspect", build, "--targets"], check=True,
                                        capture_output=True, text=True).stdout)
    found = set()
    for target in targets:
        if target["type"] != "executable":
            continue
        defined_in = os.path.relpath(target["defined_in"], os.path.abspath(os.curdir))
        if (target["name"] == "pgmarina" or defined_in.startswith("tests/unit/")
                or target["name"] in wanted):
            output_dir = os.path.relpath(os.path.dirname(target["filename"][0]),
                                         os.path.abspath(build))
            print(f"{output_dir}/{target['name']}")
            found.add(target["name"])
    missing = wanted - found
    if missing:
        print("no such integration test: " + ", ".join(sorted(missing)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
