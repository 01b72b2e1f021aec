"""The scan cache is never wrong: appends resume, truncation and replacement reread, results match."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (DEMO_PROJECTS, PLAIN, SCRIPT, Transcript, list_rows, replayed_history, run_cli, sa,
                      scan_with, usage)


def listing(projects: Path, cache: Path | None, *extra) -> tuple[list, str]:
    args = ["--phase", "list", "--json", "--projects-dir", projects, *extra]
    env = {"XDG_CACHE_HOME": str(cache)} if cache else {}
    proc = run_cli(*args, *([] if cache else ["--no-cache"]), env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def uncached(projects: Path) -> tuple[list, str]:
    return listing(projects, None)


# A line with nothing to count (no time, no message) that makes a file big enough for the cache
# to keep its scan: smaller files are read again instead.
PADDING = json.dumps({"type": "file-history-snapshot",
                      "snapshot": {"trackedFileBackups": {"big.py": "x" * (sa.CACHE_MIN_BYTES + 1000)}}})


@pytest.fixture
def history(tmp_path):
    shutil.copytree(DEMO_PROJECTS, tmp_path / "projects")
    with main_file(tmp_path / "projects").open("a") as handle:
        handle.write(PADDING + "\n")
    assert main_file(tmp_path / "projects").stat().st_size > sa.CACHE_MIN_BYTES
    return tmp_path / "projects"


def main_file(history: Path) -> Path:
    return history / "-home-dev-kagenti" / "00b11888-7e0c-4fb4-bb39-32ea32e09b64.jsonl"


def test_cached_and_uncached_results_are_identical_on_the_real_fixtures(real_projects, tmp_path):
    cache = tmp_path / "cache"
    first, first_err = listing(real_projects, cache)
    again, again_err = listing(real_projects, cache)
    plain, plain_err = uncached(real_projects)
    assert first == again == plain
    assert first_err == again_err == plain_err                     # the same notes, from the cache too
    assert any((cache / "session-analytics").rglob("*"))


def test_no_cache_neither_reads_nor_writes(history, tmp_path):
    cache = tmp_path / "cache"
    proc = run_cli("--phase", "list", "--projects-dir", history, "--no-cache", env={"XDG_CACHE_HOME": str(cache)})
    assert proc.returncode == 0 and not cache.exists()


def append_call(path: Path, msg_id: str, out: int, ts: str = "2026-02-08T23:59:00Z"):
    line = {"type": "assistant", "sessionId": "00b11888-7e0c-4fb4-bb39-32ea32e09b64", "uuid": f"u-{msg_id}",
            "parentUuid": None, "timestamp": ts, "cwd": "/home/dev/kagenti", "gitBranch": "fix/keycloak-652",
            "requestId": f"req-{msg_id}", "isSidechain": False,
            "message": {"id": msg_id, "model": "claude-opus-4-6", "role": "assistant",
                        "content": [{"type": "text", "text": "more"}], "usage": {"input_tokens": 3, "output_tokens": out}}}
    with path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")


def test_an_appended_transcript_resumes_and_matches_a_full_read(history, tmp_path):
    cache = tmp_path / "cache"
    before, _ = listing(history, cache)
    append_call(main_file(history), "msg_more", 1234)
    after, _ = listing(history, cache)
    assert after == uncached(history)[0]
    row = {r["session_id"][:8]: r for r in after}["00b11888"]
    assert row["total_tokens"]["output"] == {r["session_id"][:8]: r for r in before}["00b11888"]["total_tokens"]["output"] + 1234


class ResumeRecordingCache(sa.ReadCache):
    """The real store, noting the offset each scan resumed from (0: read from the start)."""

    def __init__(self, root):
        super().__init__(root)
        self.resumed_at = []

    def lookup(self, path, handle, kind="scans"):
        hit = super().lookup(path, handle, kind)
        self.resumed_at.append(hit[1] if hit else 0)
        return hit


@pytest.mark.parametrize("depth", [sa.FULL, sa.ROW], ids=["stats scan", "list scan"])
def test_appends_resume_from_where_the_scan_stopped(history, tmp_path, depth):
    store = ResumeRecordingCache(tmp_path / "cache")
    options = sa.ReadOptions(cache=store)
    path = main_file(history)
    sid = "00b11888-7e0c-4fb4-bb39-32ea32e09b64"
    other_depth = sa.ROW if depth == sa.FULL else sa.FULL
    full = scan_with(options, path, sid, None, depth)
    other = scan_with(options, path, sid, None, other_depth)    # its own entry, not this one's
    size = path.stat().st_size
    append_call(path, "msg_more", 77)
    store.resumed_at.clear()
    resumed = scan_with(options, path, sid, None, depth)
    assert store.resumed_at == [size]                              # only the new bytes were read
    fresh = scan_with(PLAIN, path, sid, None, depth)
    assert resumed == fresh and len(resumed.calls) == len(full.calls) + 1
    stats_scan, list_scan = (other, full) if depth == sa.ROW else (full, other)
    assert len(list_scan.tool_results) < len(stats_scan.tool_results)   # a row needs only Task links


def test_a_growing_last_line_is_never_cached_half_read(tmp_path):
    projects = tmp_path / "projects"
    t = Transcript(projects / "p" / "s1.jsonl", "s1")
    t.raw(PADDING)
    t.assistant("msg_1", usage(1, 10))
    path = t.write()
    whole = path.read_text()
    second = json.dumps({**json.loads(whole.splitlines()[-1]), "uuid": "u2", "requestId": "r2",
                         "message": {**json.loads(whole.splitlines()[-1])["message"], "id": "msg_2",
                                     "usage": {"input_tokens": 1, "output_tokens": 500}}})
    cache = tmp_path / "cache"
    path.write_text(whole + second[:40])                            # Claude Code is mid-write
    half, err = listing(projects, cache)
    assert half[0]["total_tokens"]["output"] == 10 and "truncated last lines" in err
    path.write_text(whole + second + "\n")                          # the line is finished
    done, err = listing(projects, cache)
    assert done[0]["total_tokens"]["output"] == 510 and err == ""
    assert done == uncached(projects)[0]


def test_truncation_and_replacement_are_read_again(history, tmp_path):
    cache = tmp_path / "cache"
    listing(history, cache)
    path = main_file(history)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]))              # truncated in place
    assert listing(history, cache)[0] == uncached(history)[0]
    # replaced by a different file of the same size and the same mtime (a new inode)
    listing(history, cache)
    original = path.read_bytes()
    info = path.stat()
    changed = original.replace(b'"output_tokens": 1', b'"output_tokens": 9')
    assert changed != original and len(changed) == len(original)
    replacement = path.with_name("replacement.tmp")
    replacement.write_bytes(changed)
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(replacement, path)
    assert listing(history, cache)[0] == uncached(history)[0]


def test_rewritten_in_place_with_a_new_mtime_is_read_again(history, tmp_path):
    cache = tmp_path / "cache"
    listing(history, cache)
    path = main_file(history)
    original = path.read_bytes()
    changed = original.replace(b'"output_tokens": 1', b'"output_tokens": 7')
    assert changed != original and len(changed) == len(original)
    with path.open("r+b") as handle:                               # same inode, same size
        handle.write(changed)
    assert listing(history, cache)[0] == uncached(history)[0]


def test_a_damaged_cache_is_a_miss_not_an_error(history, tmp_path):
    cache = tmp_path / "cache"
    expected, _ = listing(history, cache)
    for entry in (cache / "session-analytics").rglob("*"):
        if entry.is_file():
            entry.write_bytes(b"\x80\x04 not a pickle")
    assert listing(history, cache)[0] == expected


def test_stats_uses_the_cache_and_agrees(history, tmp_path):
    cache = tmp_path / "cache"
    args = ("--phase", "stats", "--projects-dir", history, "--session-id", "00b11888")
    first = run_cli(*args, env={"XDG_CACHE_HOME": str(cache)}).stdout
    again = run_cli(*args, env={"XDG_CACHE_HOME": str(cache)}).stdout
    append_call(main_file(history), "msg_more", 5)
    grown = run_cli(*args, env={"XDG_CACHE_HOME": str(cache)}).stdout
    assert first == again and grown == run_cli(*args, "--no-cache").stdout
    assert json.loads(grown)["total_tokens"]["output"] == json.loads(first)["total_tokens"]["output"] + 5


def test_a_cache_folder_others_can_write_is_not_used(history, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    root = sa.ReadCache.default().root
    root.mkdir(parents=True)
    root.chmod(0o777)
    assert listing(history, cache)[0] == uncached(history)[0]
    assert not any(p.is_file() for p in (cache / "session-analytics").rglob("*"))


def test_another_build_of_the_script_keeps_its_own_entries(history, tmp_path):
    """Entries are pickled scan states: a script that reads differently must never load them."""
    cache = tmp_path / "cache"
    other = tmp_path / "session-analytics.py"
    other.write_text(SCRIPT.read_text() + "\n# another build\n")
    first, _ = listing(history, cache)
    proc = subprocess.run([sys.executable, str(other), "--phase", "list", "--json", "--projects-dir", str(history)],
                          env={**os.environ, "XDG_CACHE_HOME": str(cache)}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == first
    builds = sorted(p.name for p in (cache / "session-analytics").iterdir())
    assert len(builds) == 2 and all(name.startswith(f"v{sa.CACHE_VERSION}-") for name in builds)
    assert all(any((cache / "session-analytics" / name).rglob("*scans/*")) for name in builds)


def test_entries_in_a_folder_others_can_write_are_never_loaded(history, tmp_path):
    store = sa.ReadCache(tmp_path / "cache")
    path = main_file(history)
    scan_with(sa.ReadOptions(cache=store), path, "00b11888-7e0c-4fb4-bb39-32ea32e09b64", None, sa.FULL)
    entry = store.entry_path(str(path.absolute()), "scans")
    assert sa.ReadCache(tmp_path / "cache").read(str(path.absolute()), "scans") is not None
    entry.chmod(0o666)                                              # someone else could have written it
    assert sa.ReadCache(tmp_path / "cache").read(str(path.absolute()), "scans") is None
    entry.chmod(0o600)
    (tmp_path / "cache").chmod(0o777)
    assert sa.ReadCache(tmp_path / "cache").read(str(path.absolute()), "scans") is None


def test_stats_rereads_a_neighbour_that_changed(tmp_path):
    """stats asks its neighbours who recorded a replayed call first; their cached answer must follow them."""
    cache = tmp_path / "cache"
    replayed_history(tmp_path)                                      # b replays a's first call
    args = ("--phase", "stats", "--projects-dir", tmp_path, "--session-id", "bbbb")
    env = {"XDG_CACHE_HOME": str(cache)}
    assert json.loads(run_cli(*args, env=env).stdout)["total_tokens"]["output"] == 7
    assert json.loads(run_cli(*args, env=env).stdout)["total_tokens"]["output"] == 7
    other = Transcript(tmp_path / "p" / "aaaa.jsonl", "aaaa", start="2026-03-01T10:00:00Z")
    other.assistant("msg_9", usage(1, 5), ts="2026-03-01T10:00:05Z")   # a no longer has msg_1
    other.write()
    assert json.loads(run_cli(*args, env=env).stdout)["total_tokens"]["output"] == 107
    assert run_cli(*args, env=env).stdout == run_cli(*args, "--no-cache").stdout


def summarised_sessions(projects: Path, cache: Path) -> tuple[list, list]:
    """The list rows, and which sessions were read and summarised rather than taken whole from
    the cache."""
    reader = sa.HistoryReader(projects, sa.ReadOptions(cache=sa.ReadCache(cache)))
    rows = list_rows(projects, reader=reader)
    return by_session(rows), sorted(reader.sessions_read)


def by_session(rows: list) -> list:
    return sorted(rows, key=lambda row: row["session_id"])


def test_a_grown_session_is_read_again_and_the_others_come_from_the_cache(tmp_path):
    """Claude Code appends to the running session, so a whole-history hit is rare while it runs."""
    replayed_history(tmp_path)
    cache = tmp_path / "cache"
    first, read = summarised_sessions(tmp_path, cache)
    assert read == ["aaaa", "bbbb", "bbbb", "cccc", "cccc"]      # b and c again without what they lose
    append = Transcript(tmp_path / "p" / "bbbb.jsonl", "bbbb", start="2026-03-01T12:30:00Z")
    append.assistant("msg_9", usage(5, 50), ts="2026-03-01T12:30:05Z")
    with (tmp_path / "p" / "bbbb.jsonl").open("a") as handle:
        handle.write("\n".join(append.lines) + "\n")
    grown, read = summarised_sessions(tmp_path, cache)
    assert read == ["bbbb", "bbbb"]
    assert grown == by_session(uncached(tmp_path)[0]) != first
    row = {r["session_id"]: r for r in grown}["bbbb"]
    assert row["total_tokens"]["output"] == 7 + 50              # b's replay of a's call stays a's
    assert summarised_sessions(tmp_path, cache) == (grown, [])


def test_a_session_that_loses_a_call_is_summarised_without_its_cached_result(tmp_path):
    replayed_history(tmp_path)
    (tmp_path / "p" / "aaaa.jsonl").rename(tmp_path / "aaaa.jsonl.away")
    cache = tmp_path / "cache"
    alone, _ = summarised_sessions(tmp_path, cache)   # b owns msg_1 while a is away
    (tmp_path / "aaaa.jsonl.away").rename(tmp_path / "p" / "aaaa.jsonl")
    back, read = summarised_sessions(tmp_path, cache)
    assert read == ["aaaa", "bbbb"]                 # a is back; b is summarised without msg_1
    assert back == by_session(uncached(tmp_path)[0])
    assert {r["session_id"]: r for r in back}["bbbb"]["total_tokens"]["output"] == 7
    assert {r["session_id"]: r for r in alone}["bbbb"]["total_tokens"]["output"] == 107


def test_an_unchanged_file_s_entry_is_not_written_again(history, tmp_path):
    store = sa.ReadCache(tmp_path / "cache")
    options = sa.ReadOptions(cache=store)
    path = main_file(history)
    sid = "00b11888-7e0c-4fb4-bb39-32ea32e09b64"
    first = scan_with(options, path, sid, None, sa.FULL)
    entry = store.entry_path(str(path.absolute()), "scans")
    os.utime(entry, ns=(1, 1))
    assert scan_with(options, path, sid, None, sa.FULL) == first
    assert entry.stat().st_mtime_ns == 1                            # read, not rewritten
    append_call(path, "msg_more", 5)
    scan_with(options, path, sid, None, sa.FULL)
    assert entry.stat().st_mtime_ns != 1                            # new bytes: stored again


def test_a_small_file_is_read_again_rather_than_cached(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1, 10))
    path = t.write()
    store = sa.ReadCache(tmp_path / "cache")
    assert scan_with(sa.ReadOptions(cache=store), path, "s1", None, sa.FULL) == \
        scan_with(PLAIN, path, "s1", None, sa.FULL)
    assert not store.entry_path(str(path.absolute()), "scans").exists()


def test_a_changed_price_table_is_never_answered_from_the_cache(tmp_path):
    """The whole-history and the per-session entries are both keyed on the prices."""
    projects = tmp_path / "projects"
    t = Transcript(projects / "p" / "s1.jsonl", "s1")
    t.raw(PADDING)                                                  # big enough for a scan entry too
    t.assistant("msg_1", usage(1_000_000, 1_000_000), model="claude-future-9")
    t.write()
    prices = tmp_path / "prices.json"
    cache = tmp_path / "cache"
    costs = []
    for price in (2, 4, 2):
        prices.write_text(json.dumps({"models": {"claude-future-9": {"input": price, "output": 8}}}))
        rows, _ = listing(projects, cache, "--pricing", prices)
        assert rows == uncached_with(projects, "--pricing", prices)
        costs.append(rows[0]["estimated_cost_usd"])
    assert costs == [10.0, 12.0, 10.0]
    assert any((cache / "session-analytics").rglob("sessions/*"))


def uncached_with(projects: Path, *extra) -> list:
    return listing(projects, None, *extra)[0]


class _GrowsWhileRead:
    """A summarise function that appends a call to the session's file while the session is
    being read, as Claude Code does to the session it runs; it returns the output tokens read."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, facts):
        append_call(self.path, f"msg_late_{self.path.stat().st_size}", 5)
        return sum(call.usage.output for call in facts.calls)


def test_a_session_that_grows_while_it_is_read_is_not_kept_as_read_after_it(tmp_path):
    """The session's stamp is taken before its files are read: kept under the grown file's stamp,
    the result would be served for bytes it never read."""
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1, 10))
    t.write()
    path = tmp_path / "p" / "s1.jsonl"
    options = sa.ReadOptions(cache=sa.ReadCache(tmp_path / "cache"))
    job = sa.SessionJob(tmp_path / "p", "s1", [sa.TranscriptFile(path, "s1", None)], sa.ROW,
                        _GrowsWhileRead(path), options.reading(), settings="grows")
    assert sa.run_jobs([job], options)[0].row == 10
    assert sa.session_from_cache(job) is None                  # the file has grown since it was read
    assert sa.run_jobs([job], options)[0].row == 15            # read again: the late call counts
