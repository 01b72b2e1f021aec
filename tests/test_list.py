"""The list phase: every session, flat agent files folded in, totals that agree with stats."""

from __future__ import annotations

import json

import pytest

from conftest import Transcript, reference_totals, replayed_history, run_cli, sa, stats_of, tokens, usage


def list_json(projects, *args) -> list:
    proc = run_cli("--phase", "list", "--json", "--projects-dir", projects, *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_totals_match_an_independent_calculation(real_projects):
    rows = {r["session_id"]: r for r in list_json(real_projects)}
    expected = {sid: t for sid, t in reference_totals(real_projects).items() if any(t)}
    assert len(expected) >= 35
    got = {sid: [r["total_tokens"][k] for k in ("input", "output", "cache_creation", "cache_read")]
           for sid, r in rows.items() if sid in expected}
    assert got == expected


def test_flat_agent_files_are_not_sessions_of_their_own(real_projects):
    ids = [r["session_id"] for r in list_json(real_projects)]
    assert not any(i.startswith("agent-") or len(i) == 8 for i in ids)
    assert len(ids) == len(set(ids))
    assert "741790a4-4fe2-4644-9a51-fb4482074060" in ids       # exists only through its agent files


def test_rows_have_the_documented_keys_and_agree_with_stats(real_projects):
    rows = {r["session_id"]: r for r in list_json(real_projects)}
    row = rows["ef958aa1-0e93-49f0-bb71-150f63befcd1"]
    for key in ("session_id", "project", "branch", "started_at", "duration_minutes", "turns", "models",
                "total_tokens", "estimated_cost_usd", "resume_command"):
        assert key in row
    assert row["project"] == "-experiments/worktrees"            # from the records' cwd
    assert row["resume_command"] == "claude -r ef958aa1-0e93-49f0-bb71-150f63befcd1"
    for sid in ("ef958aa1-0e93-49f0-bb71-150f63befcd1", "a7da6a22-facc-4fcd-8bab-f83c87862004",
                "9e953218-585f-4692-89df-9e0747a31c68"):
        s = stats_of(real_projects, sid)
        assert rows[sid]["total_tokens"] == s["total_tokens"]
        assert rows[sid]["estimated_cost_usd"] == s["estimated_cost_usd"]
        assert rows[sid]["turns"] == s["turns"] and rows[sid]["branch"] == s["branch"]


def test_filters(real_projects):
    everything = list_json(real_projects)
    nov = list_json(real_projects, "--since", "2025-11-01", "--until", "2025-11-30")
    assert nov and all("2025-11-01" <= r["started_at"][:10] <= "2025-11-30" for r in nov)
    assert len(nov) == sum(1 for r in everything if "2025-11" == r["started_at"][:7])
    deep = list_json(real_projects, "--project", "deep-manifest")
    assert [r["session_id"] for r in deep] == ["a7da6a22-facc-4fcd-8bab-f83c87862004"]
    assert list_json(real_projects, "--since", "2030-01-01") == []


def test_sorted_newest_first_and_table_output(real_projects):
    rows = list_json(real_projects)
    starts = [r["started_at"] for r in rows]
    assert starts == sorted(starts, reverse=True)
    proc = run_cli("--phase", "list", "--projects-dir", real_projects)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["SESSION", "STARTED", "(UTC)"]
    assert "claude -r ef958aa1-0e93-49f0-bb71-150f63befcd1" in proc.stdout
    assert f"{len(rows)} sessions" in proc.stdout
    assert proc.stderr.count("\n") <= 1                       # skipped empty sessions: one note


def test_replayed_calls_are_counted_once_across_the_list(tmp_path):
    replayed_history(tmp_path)
    rows = {r["session_id"]: r for r in list_json(tmp_path)}
    assert rows["aaaa"]["total_tokens"]["output"] == 100
    assert rows["bbbb"]["total_tokens"]["output"] == 7
    assert rows["cccc"]["total_tokens"]["output"] == 9
    assert tokens(stats_of(tmp_path, "bbbb")) == [1, 7, 0, 0]


def test_branch_with_table_breaking_characters_stays_on_one_line(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1", branch="feat/a|b\nnext")
    t.assistant("msg_1", usage(1, 1))
    t.write()
    proc = run_cli("--phase", "list", "--projects-dir", tmp_path)
    assert proc.returncode == 0
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4                                     # header, one row, blank, footer
    assert "feat/a|b next" in lines[1] and lines[3] == "1 session, $0.00 estimated"


def test_stats_and_list_agree_on_every_real_session(real_projects):
    """stats decides ownership with a cheap scan of its neighbours; list reads everything."""
    from conftest import sa
    pricing = sa.load_pricing(None)
    listed = {r["session_id"]: r for r in list_json(real_projects)}
    reader = sa.HistoryReader(real_projects)
    for sid, row in listed.items():
        facts = reader.session(reader.locate(sid))
        stats = sa.compute_stats(facts, pricing, project="x")
        assert (stats["total_tokens"], stats["estimated_cost_usd"], stats["turns"]) == \
            (row["total_tokens"], row["estimated_cost_usd"], row["turns"]), sid


@pytest.mark.parametrize("history", ["real", "replayed"])
def test_reading_in_worker_processes_gives_the_same_rows(history, real_projects, tmp_path):
    from conftest import PLAIN, list_rows, sa
    root = real_projects
    if history == "replayed":
        replayed_history(tmp_path)
        root = tmp_path
    reader = sa.HistoryReader(root, sa.ReadOptions(parallel_min_bytes=0, workers=2))   # the worker pool
    parallel = list_rows(root, reader=reader)
    assert parallel == list_rows(root, PLAIN)                  # one process, every line decoded
    if history == "replayed":
        rows = {r["session_id"]: r["total_tokens"]["output"] for r in parallel}
        assert rows == {"aaaa": 100, "bbbb": 7, "cccc": 9}
        # all once, then only the sessions that lost a call again
        assert reader.sessions_read == ["aaaa", "bbbb", "cccc", "bbbb", "cccc"]


def test_subagent_files_are_found_at_any_depth_in_pathlib_s_order(tmp_path):
    folder = tmp_path / "subagents"
    for name in ("agent-b.jsonl", "a/agent-x.jsonl", "a-b/agent-y.jsonl", "a/deeper/agent-z.jsonl",
                 "agent-.jsonl", "notes.jsonl", "agent-c.json", "a/agent-w.jsonl.bak"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("{}\n")
    expected = [str(p) for p in sorted(folder.rglob("agent-*.jsonl"))]
    assert sa._subagent_files(str(folder)) == expected and len(expected) == 5
