#!/usr/bin/env python3
"""`make claude-transcripts`: run the scripted sessions of the tests with a Claude Code version of
your choice and keep what it writes, to see what a new release changed before raising the pin.

    python3 tests/claude/regenerate.py [--version 2.1.400] [--out DIR]

Installs that version of @anthropic-ai/claude-code into a temporary folder (the pinned one, from
tests/claude, when no version is given), runs the post flow and the resume / continue /
compaction / fork scenario against the fake Messages API, copies the transcripts to DIR, and
prints every record type and attachment type they hold that tests/test_claude_code.py does not
classify yet, then `stats` of each session beside Claude Code's own cost record.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import claude_sessions as cs  # noqa: E402
import test_claude_code as known  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402


def install(version: str, folder: Path) -> Path:
    (folder / "package.json").write_text(json.dumps({"private": True, "dependencies": {
        "@anthropic-ai/claude-code": version}}))
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=True)
    return folder / "node_modules" / ".bin" / "claude"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default="")
    parser.add_argument("--out", default="claude-transcripts")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        binary = install(args.version, tmp / "npm") if args.version else cs.CLAUDE_BIN
        print(subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip())
        for name, script, runs in (
                ("post-flow", cs.post_flow_script(), [("Fix the parser and post the session",)]),
                ("lifecycle", cs.resume_script(), [("Start", "--session-id", known.RESUMED),
                                                   ("Go on", "--resume", known.RESUMED), ("And more", "--continue"),
                                                   ("/compact", "--continue"), ("After", "--continue"),
                                                   ("Fork it", "--resume", known.RESUMED, "--fork-session")])):
            api = FakeAnthropic(script).start()
            ws = cs.Workspace(tmp / name, api, claude=binary)
            for run in runs:
                proc = ws.run(*run)
                if proc.returncode != 0:
                    print(f"{name}: claude {' '.join(run)} failed: {proc.stderr[-500:]}", file=sys.stderr)
            api.stop()
            shutil.copytree(ws.projects, out / name)
    records = [json.loads(line) for path in sorted(out.rglob("*.jsonl")) for line in path.read_text().splitlines()]
    types = {r.get("type") for r in records} - known.READ_TYPES.keys() - known.SKIPPED_TYPES.keys()
    attachments = {r["attachment"].get("type") for r in records if r.get("type") == "attachment"} \
        - known.KNOWN_ATTACHMENTS
    print(f"transcripts in {out}")
    print("new record types:", ", ".join(sorted(map(str, types))) or "none")
    print("new attachment types:", ", ".join(sorted(map(str, attachments))) or "none")
    script = cs.ROOT / ".claude" / "scripts" / "session-analytics.py"
    for folder in sorted(out.iterdir()):
        listed = subprocess.run([sys.executable, str(script), "--phase", "list", "--json", "--no-cache",
                                 "--projects-dir", str(folder)], capture_output=True, text=True)
        for row in json.loads(listed.stdout or "[]"):
            print(f"{folder.name} {row['session_id'][:8]}: ours ${row['estimated_cost_usd']}, Claude Code's own "
                  f"${row['claude_code_cost_usd']} ({'agrees' if row['claude_code_agrees'] else 'differs'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
