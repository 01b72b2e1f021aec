"""Bad input: the phase completes, says once what it skipped, and never crashes or inflates."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import Transcript, run_cli, stats_of, tokens, usage

SESSIONS = [
    ("-experiments-worktrees", "ef958aa1-0e93-49f0-bb71-150f63befcd1"),
    ("-Users-dain-workspace-danieldemmel-me-next", "9e953218-585f-4692-89df-9e0747a31c68"),
    ("-src-deep-manifest", "a7da6a22-facc-4fcd-8bab-f83c87862004"),
]


@pytest.mark.parametrize("project,sid", SESSIONS)
def test_truncated_real_transcripts_never_crash_or_exceed_the_whole(real_projects, tmp_path, project, sid):
    whole = sum(tokens(stats_of(real_projects, sid)))
    src = real_projects / project / f"{sid}.jsonl"
    data = src.read_bytes()
    offsets = sorted({int(len(data) * k / 23) for k in range(1, 23)} | {1, len(data) - 1})
    for offset in offsets:
        case = tmp_path / str(offset) / project
        case.mkdir(parents=True)
        (case / f"{sid}.jsonl").write_bytes(data[:offset])
        proc = run_cli("--phase", "stats", "--projects-dir", tmp_path / str(offset), "--session-id", sid)
        assert "Traceback" not in proc.stderr
        if proc.returncode == 3:                # cut before the first complete record
            assert proc.stderr.count("\n") <= 2 and "no readable records" in proc.stderr
            continue
        assert proc.returncode == 0, proc.stderr
        assert sum(tokens(json.loads(proc.stdout))) <= whole
        assert proc.stderr.count("error") == 0


def test_damaged_lines_are_skipped_and_reported_once(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1, 10))
    t.raw("{not json")
    t.raw('"a string, not an object"')
    t.raw(json.dumps({"type": "brand-new-record-type", "timestamp": "2026-03-01T10:00:09Z"}))
    t.raw(json.dumps({"type": "assistant", "message": None}))
    t.raw(json.dumps({"type": "assistant", "message": {"id": "msg_2", "model": None,
                                                       "usage": {"input_tokens": None, "output_tokens": "7"}}}))
    t.raw(json.dumps({"type": "user", "message": {"content": [{"type": "tool_result"}, None, 5]}}))
    t.raw(json.dumps({"type": "assistant", "message": {"id": "msg_3", "content": [{"type": "tool_use"}],
                                                       "usage": {"input_tokens": 2}}}))
    t.assistant("msg_4", usage(1, 1000), content=[{"type": "text", "text": "x" * 3_000_000}])  # huge line
    path = t.write()
    with open(path, "ab") as out:
        out.write(b'{"type": "user", "message": {"content": "caf\xe9 latin-1"}}\n')          # non-UTF-8
        out.write(b'{"type": "assistant", "message": {"id": "msg_5", "usage": {"input_tokens": 99')  # cut off
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path, "--session-id", "s1")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert tokens(s) == [1 + 2 + 1, 10 + 0 + 1000, 0, 0]           # msg_2's "7" is not a count: skipped
    assert "unknown" in s["models"]
    assert s["turns"] == 1                                     # the repaired latin-1 prompt
    notes = proc.stderr.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith("session-analytics: note: skipped")
    assert "1 invalid JSON lines" in notes[0] and "1 truncated last lines" in notes[0]
    assert "1 lines that are not JSON objects" in notes[0] and "non-UTF-8" in notes[0]
    assert f"1 lines whose token counts are not counts (first: {path}:6)" in notes[0]
    quiet = run_cli("--phase", "stats", "--projects-dir", tmp_path, "--session-id", "s1", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == proc.stdout


def test_empty_and_summary_only_sessions(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "empty.jsonl").write_bytes(b"")
    (project / "summary.jsonl").write_text(json.dumps({"type": "summary", "summary": "x", "leafUuid": "u"}) + "\n")
    for sid in ("empty", "summary"):
        proc = run_cli("--phase", "stats", "--projects-dir", tmp_path, "--session-id", sid)
        assert proc.returncode == 3 and "no readable records" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("--phase", "list", "--json", "--projects-dir", tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    assert "2 empty or summary-only sessions" in proc.stderr


def test_unknown_session_id_is_a_clear_error(real_projects):
    proc = run_cli("--phase", "stats", "--projects-dir", real_projects, "--session-id", "deadbeef-0000")
    assert proc.returncode == 3
    assert proc.stderr.strip() == (f"session-analytics: error: no session deadbeef-0000 under {real_projects} "
                                   "(`session-analytics.py list` shows the sessions there)")


@pytest.mark.parametrize("args,code", [
    (["--phase", "nonsense"], 2),
    (["--phase", "stats", "--number", "x"], 2),
    ([], 3),
    (["--phase", "comment", "--target", "pr"], 2),
    (["--phase", "summary", "--stats-file", "x.json"], 2),
    (["--phase", "stats", "--transcript", "/nonexistent/x.jsonl"], 3),
    (["--phase", "list", "--projects-dir", "/nonexistent"], 3),
    (["--phase", "list", "--since", "yesterday"], 2),
])
def test_usage_errors_are_one_line(args, code, tmp_path):
    (tmp_path / "p").mkdir()
    proc = run_cli(*args, "--projects-dir", tmp_path) if "--projects-dir" not in args else run_cli(*args)
    assert proc.returncode == code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("content,message", [
    ("{", "is not valid JSON"),
    ('{"models": {"m": {"input": "cheap"}}}', "needs numeric 'input' and 'output'"),
    ("[1, 2]", "expected a JSON object"),
    ('{"models": {"m": {"rates": [{"from": "soon", "input": 1, "output": 1}]}}}', "'from' must be a date"),
    ('{"models": {"m": {"input": 1, "output": 1, "tier": {"input": 2}}}}', "'tier' needs 'above_tokens'"),
    ('{"models": {"m": {"input": 1, "output": 1, "cache_read": "cheap"}}}', "'cache_read' must be a number"),
    ('{"models": {"m": [1, 2, 3]}}', "needs five numbers"),
])
def test_bad_pricing_file(tmp_path, content, message):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1, 1))
    t.write()
    bad = tmp_path / "prices.json"
    bad.write_text(content)
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path, "--session-id", "s1", "--pricing", bad)
    assert proc.returncode == 4 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_bad_problems_file(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1, 1))
    t.write()
    bad = tmp_path / "problems.json"
    bad.write_text('[{"resolved": true}]')
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path, "--session-id", "s1", "--problems", bad)
    assert proc.returncode == 4 and "needs a 'description'" in proc.stderr


def test_output_file_is_replaced_atomically(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1, 1))
    t.write()
    out = tmp_path / "out" / "stats.json"
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path, "--session-id", "s1", "-o", out)
    assert proc.returncode == 0 and proc.stdout == ""
    first = out.read_text()
    assert json.loads(first)["session_id"] == "s1"
    assert [p.name for p in out.parent.iterdir()] == ["stats.json"]        # no temp files left
    # An unwritable destination fails cleanly and leaves the old file untouched.
    if os.geteuid() != 0:
        out.parent.chmod(0o500)
        proc = run_cli("--phase", "stats", "--projects-dir", tmp_path, "--session-id", "s1", "-o", out)
        out.parent.chmod(0o700)
        assert proc.returncode == 5 and out.read_text() == first
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path, "--session-id", "s1",
                   "-o", blocker / "stats.json")
    assert proc.returncode == 5 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    from conftest import sa
    target = tmp_path / "stats.json"
    target.write_text("old")

    def boom(*_):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", boom)          # the os module's, which the script uses
    with pytest.raises(sa.UserError):
        sa.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]


def test_unreadable_subagent_file_does_not_stop_the_session(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1, 1))
    t.write()
    sub = tmp_path / "p" / "s1" / "subagents"
    sub.mkdir(parents=True)
    (sub / "agent-x.jsonl").write_bytes(b"\x00\xff\xfe garbage\n")
    shutil.copy(tmp_path / "p" / "s1.jsonl", tmp_path / "p" / "s1" / "subagents" / "notes.txt")
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path, "--session-id", "s1")
    assert proc.returncode == 0 and tokens(json.loads(proc.stdout)) == [1, 1, 0, 0]
    assert len(proc.stderr.strip().splitlines()) == 1
