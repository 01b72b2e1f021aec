#!/usr/bin/env python3
"""`make claude-transcripts`: run the scripted sessions of the tests with a Claude Code version of
your choice and keep what it writes, to see what a new release changed before raising the pin.

    python3 tests/claude/regenerate.py [--version 2.1.400] [--out DIR] [--scenario NAME ...]
    python3 tests/claude/regenerate.py --fixtures      # rewrite tests/fixtures/claude-code/

Installs that version of @anthropic-ai/claude-code into a temporary folder (the pinned one, from
tests/claude, when no version is given), runs the post flow, the resume / continue / compaction /
fork scenario and every fixture scenario of tests/claude_sessions.py (FIXTURE_SCENARIOS: advisor,
prompt hooks and /compact, /goal, queued prompts, a `!` shell commit in tmux, skills, pr-link, a
Workflow, --fork-session, OpenTelemetry) against the fake Messages API, and writes each into
DIR/<scenario>/ in the layout of tests/fixtures/claude-code/: projects/ (HOME/.claude/projects as
Claude Code left it), its stream-json stdout, otel.jsonl (the OTLP capture) and manifest.json (what
the fake served, Claude Code's own cost-state). A scenario that needs a missing program (tmux) is
skipped, one that fails is reported and the rest still run. Then it prints every record type and
attachment type they hold that tests/test_claude_code.py does not classify yet, and `list` of each
session beside Claude Code's own cost record.

Compare DIR with tests/fixtures/claude-code/ to see what a new release writes differently.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import claude_sessions as cs  # noqa: E402
import test_claude_code as known  # noqa: E402

FIXTURES = cs.ROOT / "tests" / "fixtures" / "claude-code"


def install(version: str, folder: Path) -> Path:
    (folder / "package.json").write_text(json.dumps({"private": True, "dependencies": {
        "@anthropic-ai/claude-code": version}}))
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=True)
    return folder / "node_modules" / ".bin" / "claude"


def post_flow(root: Path, claude: Path) -> cs.Outcome:
    """The post flow of tests/test_claude_code.py (without the fake GitHub: the post itself fails)."""
    out = cs._start("post-flow", root, cs.post_flow_script(), claude)
    try:
        out.run("Fix the parser and post the session", stdout="stdout.jsonl")
    finally:
        out.api.stop()
    return out


def lifecycle(root: Path, claude: Path) -> cs.Outcome:
    """A session resumed, continued, compacted, continued again, then forked."""
    out = cs._start("lifecycle", root, cs.resume_script(), claude)
    try:
        for n, run in enumerate([("Start", "--session-id", known.RESUMED), ("Go on", "--resume", known.RESUMED),
                                 ("And more", "--continue"), ("/compact", "--continue"), ("After", "--continue"),
                                 ("Fork it", "--resume", known.RESUMED, "--fork-session")], 1):
            out.run(*run, stdout=f"stdout-{n}.jsonl")
    finally:
        out.api.stop()
    return out


SCENARIOS = {"post-flow": post_flow, "lifecycle": lifecycle, **cs.FIXTURE_SCENARIOS}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default="")
    parser.add_argument("--out", default="claude-transcripts")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                        help="run only this scenario (repeatable)")
    parser.add_argument("--fixtures", action="store_true",
                        help=f"write the fixture scenarios into {FIXTURES.relative_to(cs.ROOT)} (pinned version)")
    args = parser.parse_args(argv)
    if args.fixtures and args.version:
        parser.error("--fixtures keeps the pinned version's output: leave out --version")
    out = FIXTURES if args.fixtures else Path(args.out).resolve()
    names = args.scenario or (list(cs.FIXTURE_SCENARIOS) if args.fixtures else list(SCENARIOS))
    failed = []
    # the fixtures' workspaces always at the same place, so their paths (cwd, the project folder's
    # name) do not change from one regeneration to the next
    fixed = Path(tempfile.gettempdir()) / "session-analytics-fixtures" if args.fixtures else None
    if fixed:
        shutil.rmtree(fixed, ignore_errors=True)
        fixed.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        work = fixed or tmp
        binary = install(args.version, tmp / "npm") if args.version else cs.CLAUDE_BIN
        version = cs.claude_version(binary)
        print(f"Claude Code {version}")
        for name in names:
            if not cs.runnable(name):
                print(f"{name}: skipped, needs {cs.NEEDS[name]}")
                continue
            try:
                outcome = SCENARIOS[name](work / name, binary)
            except Exception:                            # noqa: BLE001 - report it, run the others
                failed.append(name)
                print(f"{name}: failed\n{traceback.format_exc()[-2000:]}", file=sys.stderr)
                continue
            manifest = cs.save(outcome, out / name, version, SCENARIOS[name].__doc__ or "")
            print(f"{name}: {len(manifest['served'])} replies served, sessions "
                  f"{', '.join(s[:8] for s in manifest['sessions'])}")
    if fixed:
        shutil.rmtree(fixed, ignore_errors=True)
    folders = [out / name for name in names if (out / name / "projects").is_dir()]
    records = [json.loads(line) for folder in folders for path in sorted((folder / "projects").rglob("*.jsonl"))
               if path.name != "journal.jsonl"                   # a Workflow run's own log, no transcript
               for line in path.read_text().splitlines() if line.strip()]
    types = {r.get("type") for r in records} - known.READ_TYPES.keys() - known.SKIPPED_TYPES.keys()
    attachments = {r["attachment"].get("type") for r in records if r.get("type") == "attachment"} \
        - known.KNOWN_ATTACHMENTS
    print(f"transcripts in {out}")
    print("new record types:", ", ".join(sorted(map(str, types))) or "none")
    print("new attachment types:", ", ".join(sorted(map(str, attachments))) or "none")
    script = cs.ROOT / ".claude" / "scripts" / "session-analytics.py"
    for folder in folders:
        listed = subprocess.run([sys.executable, str(script), "--phase", "list", "--json", "--no-cache",
                                 "--projects-dir", str(folder / "projects")], capture_output=True, text=True)
        try:
            rows = json.loads(listed.stdout or "[]")
        except ValueError:
            print(f"{folder.name}: list failed: {listed.stderr[-300:]}")
            continue
        for row in rows:
            print(f"{folder.name} {row['session_id'][:8]}: ours ${row.get('estimated_cost_usd')}, Claude Code's own "
                  f"${row.get('claude_code_cost_usd')} ({'agrees' if row.get('claude_code_agrees') else 'differs'})")
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
