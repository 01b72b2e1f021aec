"""Safe on the machine it runs on: ids from file content never name a file outside the output
folder, -o never replaces a device, a FIFO or a device among the transcripts never hangs a read,
a transcript's text never drives the terminal, the cache keeps no text and no entry of a deleted
transcript, and a CSV cell is never a formula."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from conftest import Transcript, run_cli, sa, usage

SID = "5afe0000-0000-4000-8000-000000000001"


def one_session(projects, sid=SID, cwd="/work/r", branch="main", model="claude-opus-4-6"):
    t = Transcript(projects / "-work-r" / f"{sid}.jsonl", sid, cwd=cwd, branch=branch)
    t.prompt("go")
    t.assistant("m1", usage(10, 20), model=model)
    return t.write()


# ── ids from content name no file outside the folder ──

def test_a_flat_agent_file_naming_another_folder_is_skipped(tmp_path):
    projects, archive = tmp_path / "projects", tmp_path / "deep" / "archive"
    one_session(projects)
    agent = Transcript(projects / "-work-r" / "agent-a1.jsonl", "../../escaped")
    agent.assistant("m9", usage(1, 1), sidechain=True)
    agent.write()
    proc = run_cli("--phase", "list", "--json", "--projects-dir", projects, "--archive", archive, "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert [r["session_id"] for r in json.loads(proc.stdout)] == [SID]
    assert "1 files with an unsafe session id" in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*.json")) == [f"{SID}.json"]


def capture_file(path, session_id):
    lines = [{"type": "system", "subtype": "init", "session_id": session_id, "cwd": "/work/r", "model": "m"},
             {"type": "assistant", "session_id": session_id, "timestamp": "2026-03-01T10:00:00.000Z",
              "message": {"id": "msg_1", "model": "claude-opus-4-6", "role": "assistant", "content": [],
                          "usage": {"input_tokens": 5, "output_tokens": 7}}},
             {"type": "result", "session_id": session_id, "total_cost_usd": 0.001, "usage": {}}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize("bad", ["../../escaped", "/tmp/absolute", "x/../../y", ".hidden"])
def test_a_capture_whose_session_id_is_a_path_names_no_file(tmp_path, bad):
    capture = capture_file(tmp_path / "captures" / "run.jsonl", bad)
    out = tmp_path / "a" / "b" / "out"
    proc = run_cli("--phase", "stats", "--transcript", capture, "--output-dir", out)
    assert proc.returncode == 4 and "not a session id, so it names no file" in proc.stderr
    proc = run_cli("--phase", "list", "--json", "--projects-dir", tmp_path / "none", "--captures",
                   capture.parent, "--archive", out)
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    assert "1 captures with an unsafe session id" in proc.stderr
    assert not list(tmp_path.rglob("*.json")) and not os.path.exists("/tmp/absolute.json")


# ── -o writes through what is not a regular file ──

def test_output_to_a_device_writes_through_and_leaves_the_device(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root (CI runs as root)") if not os.environ.get("CI") else \
            pytest.fail("CI must run as root to make a device node")
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))       # what /dev/null is
    one_session(tmp_path / "projects")
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path / "projects", "--session-id", SID[:8],
                   "-o", null)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.stat(null).st_mode), "the device was replaced by a regular file"


def test_output_to_a_fifo_writes_through_it(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    one_session(tmp_path / "projects")
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path / "projects", "--session-id", SID[:8],
                   "-o", fifo)
    reader.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and json.loads(received[0])["session_id"] == SID


def test_output_through_a_symlink_replaces_the_file_it_points_at(tmp_path):
    target, link = tmp_path / "real.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    one_session(tmp_path / "projects")
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path / "projects", "--session-id", SID[:8], "-o", link)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and json.loads(target.read_text())["session_id"] == SID


def test_output_to_a_folder_is_one_clear_line(tmp_path):
    one_session(tmp_path / "projects")
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path / "projects", "--session-id", SID[:8],
                   "-o", tmp_path)
    assert proc.returncode == 5 and proc.stderr.strip().endswith("it is a folder")


# ── only regular files are read ──

def test_a_fifo_and_a_device_among_the_transcripts_are_skipped_not_read(tmp_path):
    projects = tmp_path / "projects"
    one_session(projects)
    subagents = projects / "-work-r" / SID / "subagents"
    subagents.mkdir(parents=True)
    os.mkfifo(subagents / "agent-fifo.jsonl")
    (subagents / "agent-zero.jsonl").symlink_to("/dev/zero")
    os.mkfifo(subagents / "agent-x.meta.json")
    (subagents / "agent-x.jsonl").write_text("")
    os.mkfifo(projects / "-work-r" / "agent-flat.jsonl")
    for phase in (("--phase", "list", "--json"), ("--phase", "stats", "--session-id", SID[:8])):
        proc = run_cli(*phase, "--projects-dir", projects, "--no-cache")     # run_cli's timeout: no hang
        assert proc.returncode == 0, proc.stderr
        assert "2 files that are not regular files" in proc.stderr, proc.stderr


# ── the terminal shows data, never obeys it ──

def test_escape_sequences_in_a_transcript_do_not_reach_the_terminal(tmp_path):
    hostile = "\x1b]52;c;ZWNobyBoaQ==\x07\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil"
    one_session(tmp_path / "projects", cwd="/work/" + hostile, branch="b" + hostile, model="claude-" + hostile)
    for argv in (("--phase", "list", "--wide"), ("--phase", "list", "--json"),
                 ("--phase", "list", "--by", "project"), ("--phase", "stats", "--session-id", SID[:8])):
        proc = run_cli(*argv, "--projects-dir", tmp_path / "projects", "--no-cache")
        assert proc.returncode == 0, proc.stderr
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in proc.stdout and raw not in proc.stderr, (argv, repr(raw))
    rows = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", tmp_path / "projects").stdout)
    assert rows[0]["branch"] == "b" + hostile                  # JSON keeps the value, as escapes


# ── the cache keeps facts, not text, and forgets deleted transcripts ──

def test_the_scan_cache_holds_no_command_output_or_prompt_and_forgets_a_deleted_transcript(tmp_path):
    projects, cache = tmp_path / "projects", tmp_path / "cache"
    t = Transcript(projects / "-work-r" / f"{SID}.jsonl", SID, cwd="/work/r")
    t.prompt("go")
    for i in range(400):                              # over CACHE_MIN_BYTES, so its scan is kept
        failed = i % 2 == 0                           # a failed call's head is a problem's description
        t.tool_use(f"m{i}", f"t{i}", "Bash", {"command": f"grep -r {'Failed' if failed else 'Sekrit'}{i}CommandText ."},
                   usage(1, 1))
        t.tool_result(f"t{i}", f"Sekrit{i}OutputText " + "x" * 12_000, is_error=failed)
    t.tool_use("ma", "ta", "Agent", {"prompt": "Sekrit subagent prompt", "description": "d"}, usage(1, 1))
    t.tool_result("ta", "done")
    path = t.write()
    assert path.stat().st_size >= sa.CACHE_MIN_BYTES
    env = {"XDG_CACHE_HOME": str(cache)}
    assert run_cli("--phase", "stats", "--projects-dir", projects, "--session-id", SID[:8], env=env).returncode == 0
    assert run_cli("--phase", "list", "--projects-dir", projects, env=env).returncode == 0
    kept = b"".join(p.read_bytes() for p in cache.rglob("*") if p.is_file())
    assert b"scans" in b"".join(str(p).encode() for p in cache.rglob("*"))      # a scan was kept
    for text in (b"OutputText", b"Sekrit subagent prompt", b"Sekrit1CommandText"):
        assert text not in kept, text
    assert b"Failed0CommandText" in kept                  # the stats need it: a problem, described at team
    path.unlink()                                     # Claude Code's cleanup, or the user's
    one_session(projects, sid="07e00000-0000-4000-8000-000000000001")
    assert run_cli("--phase", "list", "--projects-dir", projects, env=env).returncode == 0
    [index] = cache.rglob("index")
    assert str(path) not in index.read_text()
    assert not [p for p in cache.rglob("*") if p.parent.name in ("scans", "claims")]
    kept = {line.split("\t")[0] for line in index.read_text().splitlines()}
    assert {p.parent.name + "/" + p.name for p in cache.rglob("*") if p.parent.name == "sessions"} <= kept


# ── CSV cells are never formulas ──

@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", " =1", "\t=1", "\r=1", "\n=1",
                                  "\uff1dHYPERLINK(\"x\")", "\uff0b1", "\uff0d1", "\uff20x", "\u3000=1"])
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(cell):
    assert sa.csv_cell(cell) == "'" + cell
    assert sa.csv_cell("plain text") == "plain text" and sa.csv_cell(-1.5) == "-1.5"
