"""Nothing lost, nothing wrong, under faults: a transcript truncated while it is read, a damaged
cache entry, a run killed with its workers, numbers that are not numbers, a comment deleted under
a post, GitHub asking to wait, a BOM."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import SCRIPT, TEST_CACHE, Transcript, run_cli, run_gh_cli, sa, usage

sys.path.insert(0, str(SCRIPT.parent.parent.parent / "tests" / "bench"))
import generate  # noqa: E402  (the benchmark's history generator)

SID = "fa017000-0000-4000-8000-000000000001"


def session(projects, sid=SID, calls=3, extra=()):
    t = Transcript(projects / "-work-r" / f"{sid}.jsonl", sid, cwd="/work/r", branch="feat/x")
    t.prompt("go")
    for n in range(calls):
        t.assistant(f"m{n}-{sid[:4]}", usage(10, 20 + n), model="claude-opus-4-6")
    for line in extra:
        t.raw(line)
    return t.write()


# ── the cache can't lie ───────────────────────────────────────────────────────

def big_session(projects):
    """Over CACHE_MIN_BYTES, so that its scan state is kept, and resumed when it grows."""
    t = Transcript(projects / "-work-r" / f"{SID}.jsonl", SID, cwd="/work/r")
    t.prompt("go")
    for n in range(300):
        t.tool_use(f"m{n}", f"t{n}", "Read", {"file_path": f"/work/r/f{n}"}, usage(1, 1000 + n),
                   model="claude-opus-4-6")
        t.tool_result(f"t{n}", "x" * 15_000)
    return t.write()


def test_a_scan_is_not_kept_for_bytes_a_truncation_took_away(tmp_path):
    path = big_session(tmp_path / "projects")
    cache = sa.ReadCache(tmp_path / "cache")
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        state = sa.new_scan(path, SID, sa.FULL)
        with open(path, "r+b") as shrink:
            shrink.truncate(size // 2)          # truncated in place while it was read
        cache.store(path, handle, b"state", size)
    assert not list((tmp_path / "cache").rglob("scans/*"))
    # an entry made before, for bytes the file no longer has, is a miss
    path = big_session(tmp_path / "other")
    with open(path, "rb") as handle:
        cache.store(path, handle, __import__("pickle").dumps(state), os.fstat(handle.fileno()).st_size)
    with open(path, "r+b") as shrink:
        shrink.truncate(os.path.getsize(path) // 2)
    with open(path, "rb") as handle:
        assert cache.lookup(path, handle) is None


def test_a_transcript_truncated_in_place_then_grown_is_read_again_in_full(tmp_path):
    projects = tmp_path / "projects"
    path = big_session(projects)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert run_cli("--phase", "stats", "--projects-dir", projects, "--session-id", SID[:8], env=env).returncode == 0
    lines = path.read_bytes().splitlines(keepends=True)
    with open(path, "r+b") as handle:                   # the same inode, shorter, then longer again
        handle.truncate(0)
        handle.write(b"".join(lines[: len(lines) // 3]))
        t = Transcript(tmp_path / "scratch.jsonl", SID, cwd="/work/r", start="2026-03-02T10:00:00Z")
        for n in range(2000):
            t.assistant(f"late{n}", usage(2, 3), model="claude-opus-4-6")
        handle.write("\n".join(t.lines).encode() + b"\n")
    cached = run_cli("--phase", "stats", "--projects-dir", projects, "--session-id", SID[:8], env=env)
    plain = run_cli("--phase", "stats", "--projects-dir", projects, "--session-id", SID[:8], "--no-cache")
    assert json.loads(cached.stdout)["total_tokens"] == json.loads(plain.stdout)["total_tokens"]


@pytest.mark.parametrize("damage", ["one flipped bit", "random bytes", "cut short", "empty"])
def test_a_damaged_cache_entry_is_a_miss_never_a_wrong_number_or_a_stray_line(tmp_path, damage):
    projects = tmp_path / "projects"
    big_session(projects)
    for n in range(4):
        session(projects, sid=f"fa01700{n}-0000-4000-8000-00000000000{n}", calls=n + 1)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = [("--phase", "list", "--json", "--projects-dir", projects),
            ("--phase", "stats", "--projects-dir", projects, "--session-id", SID)]
    truths = [run_cli(*argv, "--no-cache").stdout for argv in runs]
    assert [run_cli(*argv, env=env).stdout for argv in runs] == truths
    entries = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.name != "index"]
    assert {p.parent.name for p in entries} >= {"runs", "sessions", "list-scans", "scans", "claims"}
    rng = random.Random(damage)
    for trial in range(8):
        for entry in entries:
            data = bytearray(entry.read_bytes()) if entry.exists() else bytearray(b"x")
            if damage == "one flipped bit":
                spot = rng.randrange(len(data))
                data[spot] ^= 1 << rng.randrange(8)
            elif damage == "random bytes":
                data = bytearray(rng.randbytes(rng.randrange(1, 400)))
            elif damage == "cut short":
                data = data[: rng.randrange(len(data))]
            else:
                data = bytearray()
            entry.write_bytes(bytes(data))
        for argv, truth in zip(runs, truths):
            proc = run_cli(*argv, env=env)
            assert proc.returncode == 0 and proc.stderr == "", proc.stderr
            assert proc.stdout == truth, (argv[1], trial)


# ── workers die with their parent ─────────────────────────────────────────────

def children_of(pid: int) -> set[int]:
    found = set()
    for task in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found |= {int(c) for c in handle.read().split()}
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def big_history(tmp_path_factory):
    root = tmp_path_factory.mktemp("history")
    generate.generate(root, 40 << 20, "assistant", seed=3)      # enough for worker processes
    return root / "projects"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_killed_list_leaves_no_worker_behind(big_history, tmp_path, sig):
    rng = random.Random(int(sig))
    for trial in range(3):
        proc = subprocess.Popen([sys.executable, str(SCRIPT), "--phase", "list", "--projects-dir", str(big_history),
                                 "--no-cache"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers, deadline = set(), time.time() + 30
        while not workers and time.time() < deadline and proc.poll() is None:
            workers = children_of(proc.pid)
            time.sleep(0.02)
        assert workers, "list started no worker process"
        time.sleep(rng.uniform(0, 0.5))
        workers |= children_of(proc.pid)
        proc.send_signal(sig)
        proc.wait(30)
        deadline = time.time() + 3
        while any(alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if alive(w)], f"workers outlived the run (trial {trial})"


# ── numbers are finite, always ────────────────────────────────────────────────

@pytest.mark.parametrize("total", ["1e999", "NaN", "1e308", "-1", "Infinity"])
def test_a_cost_record_that_is_not_a_number_is_skipped_with_a_note_never_printed(tmp_path, total):
    line = '{"type":"cost-state","timestamp":"2026-03-01T10:00:09.000Z","totalCostUSD":%s,"modelUsage":{}}' % total
    path = session(tmp_path / "projects", extra=[line])
    lineno = len(path.read_text().splitlines())
    for argv in (("--phase", "stats", "--session-id", SID[:8]), ("--phase", "list", "--json"),
                 ("--phase", "comment", "--dry-run", "--offline", "--session-id", SID[:8], "--repo", "o/r")):
        proc = run_cli(*argv, "--projects-dir", tmp_path / "projects", "--no-cache")
        assert proc.returncode == 0, proc.stderr
        for bad in ("NaN", "Infinity", "1e+308"):
            assert bad not in proc.stdout
        assert f"1 cost records with numbers that are not numbers (first: {path}:{lineno})" in proc.stderr
    stats = json.loads(run_cli("--phase", "stats", "--projects-dir", tmp_path / "projects", "--session-id",
                               SID[:8]).stdout)
    assert stats["claude_code_cost"] is None
    proc = run_cli("--phase", "extract", "--source", "local", "--projects-dir", tmp_path / "projects",
                   "--output-dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("count", ["-5", "1e999", '"123.0"', '"12"', "true", "2.5", "1e13"])
def test_a_token_count_that_is_not_a_count_is_noted_not_a_silent_zero(tmp_path, count):
    line = ('{"type":"assistant","timestamp":"2026-03-01T10:00:09.000Z","requestId":"r9","message":{"id":"m9",'
            '"model":"claude-opus-4-6","role":"assistant","content":[],"usage":{"input_tokens":5,'
            '"output_tokens":%s}}}' % count)
    path = session(tmp_path / "projects", extra=[line])
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path / "projects", "--session-id", SID[:8])
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["total_tokens"]["input"] == 30          # the three good calls
    assert f"1 lines whose token counts are not counts (first: {path}:5)" in proc.stderr


def test_a_whole_float_count_is_a_count(tmp_path):
    line = ('{"type":"assistant","timestamp":"2026-03-01T10:00:09.000Z","requestId":"r9","message":{"id":"m9",'
            '"model":"claude-opus-4-6","role":"assistant","content":[],"usage":{"input_tokens":5.0,"output_tokens":7}}}')
    session(tmp_path / "projects", extra=[line])
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path / "projects", "--session-id", SID[:8])
    assert json.loads(proc.stdout)["total_tokens"]["input"] == 35 and proc.stderr == ""


def test_a_bom_before_the_first_line_is_ignored(tmp_path):
    path = session(tmp_path / "projects")
    plain = json.loads(run_cli("--phase", "stats", "--transcript", path, "--no-cache").stdout)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    proc = run_cli("--phase", "stats", "--transcript", path, "--no-cache")
    assert proc.stderr == "" and json.loads(proc.stdout) == plain


def test_comments_with_numbers_that_are_not_numbers_are_skipped_by_the_summary():
    body = sa.render_session_comment({"session_id": SID, "total_tokens": dict.fromkeys(sa.TOKEN_KINDS, 1),
                                      "estimated_cost_usd": 1.0})
    broken = body.replace('"estimated_cost_usd": 1.0', '"estimated_cost_usd": NaN')
    sessions, warnings = sa.collect_sessions([{"id": 1, "body": broken, "author_association": "OWNER",
                                               "user": {"login": "a"}}], set())
    assert sessions == [] and "estimated_cost_usd is not a number" in warnings[0]


# ── GitHub: a comment deleted under a post, a wait GitHub asks for, the messages ──

def test_a_comment_deleted_while_it_is_updated_is_created_again_in_the_same_run(github, tmp_path):
    github.add_pull("o/r", 7, "feat/x")
    session(tmp_path / "projects")
    args = ("--phase", "comment", "--projects-dir", tmp_path / "projects", "--session-id", SID[:8], "--repo", "o/r",
            "--number", 7)
    assert run_gh_cli(github, *args).returncode == 0
    [first] = github.comments_on("o/r", 7)
    session(tmp_path / "projects", calls=5)                   # a changed body: the post updates it

    def delete_it(fake):
        fake.comments.pop(first["id"], None)
    github.fail("PATCH", r"/issues/comments/\d+$", 404, message="Not Found", before=delete_it)
    proc = run_gh_cli(github, *args)
    assert proc.returncode == 0, proc.stderr
    assert "the comment was deleted while we updated it; creating it again" in proc.stderr
    [again] = github.comments_on("o/r", 7)
    assert again["id"] != first["id"] and proc.stdout.startswith("comment created")


def test_a_wait_github_asks_for_on_a_listing_is_honoured_or_reported_at_once(github, tmp_path):
    github.add_pull("o/r", 7, "feat/x")
    for wait, code in (("120", 9), ("1", 0)):
        github.faults.clear()
        github.requests.clear()
        github.fail("GET", r"/issues/7/comments$", 403, headers={"Retry-After": wait},
                    message="You have exceeded a secondary rate limit")
        started = time.time()
        proc = run_gh_cli(github, "--phase", "summary", "--repo", "o/r", "--number", 7)
        listings = [r for r in github.requests if r[1].endswith("/issues/7/comments")]
        assert proc.returncode == code, proc.stderr
        if code:
            assert len(listings) == 1 and "GitHub asks to wait 120s" in proc.stderr
            assert time.time() - started < 20
        else:
            assert time.time() - started >= 1 and "retrying in 1.0s" in proc.stderr
            assert proc.stderr.count("GET repos/o/r/issues/7/comments") == 1      # the path said once


def test_a_listing_that_fails_on_its_first_page_does_not_say_part_way(github, tmp_path):
    github.add_pull("o/r", 7, "feat/x")
    github.fail("GET", r"/issues/7/comments$", 500, times=99)
    proc = run_gh_cli(github, "--phase", "summary", "--repo", "o/r", "--number", 7)
    assert proc.returncode == 10 and "page" not in proc.stderr.splitlines()[-1]
