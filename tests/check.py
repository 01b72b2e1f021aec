#!/usr/bin/env python3
"""`make check`: every test that needs nothing but pytest (-m "not tools"), in one pytest process
per core, each over its share of the test files; their output in turn, then one summary line.

Nothing but pytest is needed, so no pytest-xdist: the tests are collected once and dealt to the
processes in turn, so that each gets its share of every file (the slow ones sit together in a few
files). Exit status: 0 when every process passed, else the first failure's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def collected() -> list[str]:
    """The node ids of every test make check runs."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
                          "-m", "not tools", str(TESTS)], capture_output=True, text=True)
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    if out.returncode not in (0, 5) or not ids:
        sys.stdout.write(out.stdout + out.stderr)
        raise SystemExit(out.returncode or 1)
    NOT_RUN.extend(line for line in out.stdout.splitlines() if "did not run" in line)
    return ids


NOT_RUN = []        # conftest's line about the tests over ../shared left out, if any


def main() -> int:
    ids = collected()
    count = max(1, min(os.cpu_count() or 1, 4))
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not tools",
                               *ids[n::count]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              cwd=TESTS.parent)
             for n in range(count) if ids[n::count]]
    totals, status = {}, 0
    for proc in procs:
        out, _ = proc.communicate()
        sys.stdout.write(out)
        summary = out.strip().splitlines()[-1] if out.strip() else ""
        for number, what in re.findall(r"(\d+) (passed|failed|errors?|deselected|skipped)", summary):
            totals[what] = totals.get(what, 0) + int(number)
        if proc.returncode not in (0, 5) and not status:      # 5: a share with no test selected
            status = proc.returncode
    for line in NOT_RUN:
        print(line)
    print("make check: " + ", ".join(f"{n} {what}" for what, n in totals.items()) + f" ({len(procs)} processes)")
    return status


if __name__ == "__main__":
    sys.exit(main())
