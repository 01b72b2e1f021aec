#!/usr/bin/env python3
"""The yardstick of `make bench`: about the least a Python reader can do for a history's tokens.

    python3 tests/bench/bare_reader.py PROJECTS_DIR [--by-head]

Reads every transcript in two processes, in 4 MiB chunks split with find: a line holding
`"usage":{` is decoded with json.loads and its output tokens added up, any other line only has
its timestamp found with find. No dedupe, no subagent links, no cache, no summary: what is left
of a first `list` when everything that makes its numbers right is taken away. Its time against
ccusage's says how far pure Python can go on this machine; ours against it, what the counting
costs. --by-head decides from a line's first 800 bytes instead (is it an assistant line?), so
that big tool-result lines are never crossed: what a reader would take that trusted every result
line to hold one result (ours proves it, with one pass over the line). Prints the (meaningless,
overcounted) sum so the work cannot be skipped.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def read(files: list[Path], by_head: bool = False) -> int:
    total = 0
    buf = bytearray(4 << 20)
    view = memoryview(buf)

    def line_of(line) -> None:
        nonlocal total
        if (line.find(b'"type":"assistant"', 0, 800) >= 0) if by_head else (b'"usage":{' in line):
            usage = json.loads(line).get("message", {}).get("usage", {})
            total += usage.get("output_tokens", 0) if isinstance(usage, dict) else 0
        else:
            line.find(b'"timestamp":"')

    for path in files:
        with open(path, "rb", buffering=0) as handle:
            carry = []
            while size := handle.readinto(view):
                lo, nl = 0, buf.find(b"\n", 0, size)
                if carry and nl >= 0:
                    carry.append(buf[:nl])
                    line_of(b"".join(carry))
                    carry, lo, nl = [], nl + 1, buf.find(b"\n", nl + 1, size)
                while nl >= 0:
                    line_of(buf[lo:nl])
                    lo, nl = nl + 1, buf.find(b"\n", nl + 1, size)
                if lo < size:
                    carry.append(buf[lo:size])
            if carry:
                line_of(b"".join(carry))
    return total


def main(argv: list[str]) -> int:
    files = sorted(Path(argv[1]).rglob("*.jsonl"), key=lambda p: -p.stat().st_size)
    halves = [files[0::2], files[1::2]]
    with ProcessPoolExecutor(2) as pool:
        print(sum(pool.map(read, halves, [argv[2:] == ["--by-head"]] * 2)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
