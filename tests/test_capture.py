"""A headless run's captured stream (`claude -p --output-format stream-json --verbose`) is a session
too: the same stats as the transcript of the same run, totals from its `result` (each streamed
message carries only the placeholder usage of its start), a cut-off capture as a lower bound."""

from __future__ import annotations

import csv
import io
import json

import pytest

from conftest import run_cli, sa
from test_claude_code import claude_bin, post_flow, stats_of_transcript  # noqa: F401 (fixtures)

SAME = ("session_id", "session_id_short", "branch", "models", "total_tokens", "estimated_cost_usd", "cost_complete",
        "unpriced_models", "tools", "tools_by_thread", "commits", "problems_faced", "turns",
        "claude_code_versions", "cwd", "compactions")


@pytest.fixture(scope="module")
def capture(post_flow):  # noqa: F811
    ws, api, _, transcript = post_flow
    return ws, transcript, ws.root / "captures" / "run.jsonl"


def capture_stats(ws, path, *extra) -> dict:
    proc = run_cli("--phase", "stats", "--transcript", path, "--quiet", *extra, env={"HOME": str(ws.home)},
                   cwd=ws.work)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_stream_of_a_run_is_recognised_and_read_as_the_same_session(capture):
    ws, transcript, path = capture
    assert sa.is_capture(path) and not sa.is_capture(transcript)
    streamed = [json.loads(line) for line in path.read_text().splitlines()]
    placeholders = [m["message"]["usage"]["output_tokens"] for m in streamed if m["type"] == "assistant"]
    assert set(placeholders) == {1}                       # what a reader that sums the messages gets
    ours, theirs = capture_stats(ws, path), stats_of_transcript(ws, transcript)
    for key in SAME:
        assert ours[key] == theirs[key], key
    assert ours["capture"]["complete"] is True and "capture" not in theirs
    # a capture's times are its first and last message's: the prompt itself is not streamed
    assert 0 <= sa.parse_ts(ours["started_at"]) - sa.parse_ts(theirs["started_at"]) < 5
    # skills: the same invocations; their tokens only from the streamed placeholders
    assert [(k["skill"], k["count"], k["status"]) for k in ours["skills_invoked"]] == \
        [(k["skill"], k["count"], k["status"]) for k in theirs["skills_invoked"]]
    # the subagent is on its own model, so its tokens are exact too
    assert ours["subagents"][0]["tokens"] == theirs["subagents"][0]["tokens"]
    assert {k: v for k, v in ours["subagents"][0].items() if k != "tool_use_id"} == \
        {k: v for k, v in theirs["subagents"][0].items() if k != "tool_use_id"}
    result = [m for m in streamed if m["type"] == "result"][-1]
    assert ours["estimated_cost_usd"] == pytest.approx(result["total_cost_usd"], rel=0.005)
    assert ours["claude_code_cost"]["agrees"] is True


def test_the_comment_of_a_capture_is_the_comment_of_its_transcript(capture):
    ws, transcript, path = capture
    def body(source):
        proc = run_cli("--phase", "comment", "--dry-run", "--transcript", source, "--quiet",
                       env={"HOME": str(ws.home)}, cwd=ws.work)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    a, b = body(path), body(transcript)
    cut = a.index("<details><summary>Session Data (JSON)")
    assert a[:cut] == b[:cut]                              # every table and line above the data
    assert '"capture": {' in a[cut:] and '"capture"' not in b[cut:]


def test_list_and_extract_count_a_capture_and_its_transcript_once(capture, tmp_path):
    ws, transcript, path = capture
    both = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", ws.projects, "--captures",
                              path.parent).stdout)
    alone = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", tmp_path / "none", "--captures",
                               path.parent).stdout)
    plain = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", ws.projects).stdout)
    assert both == plain and len(alone) == 1
    assert {k: alone[0][k] for k in ("session_id", "total_tokens", "estimated_cost_usd", "models", "turns")} == \
        {k: plain[0][k] for k in ("session_id", "total_tokens", "estimated_cost_usd", "models", "turns")}
    proc = run_cli("--phase", "list", "--projects-dir", tmp_path / "none", "--captures", path.parent)
    assert "1 session read from captures" in proc.stderr
    out = tmp_path / "out"
    assert run_cli("--phase", "extract", "--source", "local", "--projects-dir", tmp_path / "none", "--captures",
                   path.parent, "--output-dir", out).returncode == 0
    [row] = list(csv.DictReader(io.StringIO((out / "analytics.csv").read_text())))
    assert row["session_id"] == plain[0]["session_id"] and int(row["total_output_tokens"]) == \
        plain[0]["total_tokens"]["output"]


def test_a_capture_cut_off_before_its_result_is_a_lower_bound(capture, tmp_path):
    ws, _, path = capture
    lines = path.read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(line for line in lines if '"type":"result"' not in line.replace(" ", "")) + "\n")
    stats = capture_stats(ws, cut)
    whole = capture_stats(ws, path)
    assert stats["capture"]["complete"] is False and stats["cost_complete"] is False
    assert stats["total_tokens"]["output"] < whole["total_tokens"]["output"]
    assert stats["claude_code_cost"] is None
    (tmp_path / "s.json").write_text(json.dumps(stats))
    comment = run_cli("--phase", "comment", "--dry-run", "--stats-file", tmp_path / "s.json").stdout
    tldr = next(line for line in comment.splitlines() if line.startswith("**TL;DR:**"))
    assert "≥ $" in tldr
    assert "cut off before its result" in comment


def test_a_capture_with_a_garbage_line_and_an_empty_one(capture, tmp_path):
    ws, _, path = capture
    lines = path.read_text().splitlines()
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text("\n".join(lines[:3] + ["{not json"] + lines[3:]) + "\n")
    proc = run_cli("--phase", "stats", "--transcript", garbled, env={"HOME": str(ws.home)}, cwd=ws.work)
    assert proc.returncode == 0 and "skipped 1 invalid JSON lines" in proc.stderr
    assert json.loads(proc.stdout)["total_tokens"] == capture_stats(ws, path)["total_tokens"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text(lines[0] + "\n")                       # only the init line
    proc = run_cli("--phase", "stats", "--transcript", empty, "--format", "stream-json")
    assert proc.returncode == sa.EXIT_NO_SESSION and "has no readable records" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_subagent_on_the_main_threads_model_gets_its_exact_tokens_from_a_capture(claude_bin, tmp_path):  # noqa: F811
    """Subagents inherit the main thread's model by default. Each result's `usage` is the main
    thread's exact total, so what is left of the model is the subagent's."""
    import claude_sessions as cs
    from fake_anthropic import FakeAnthropic, Tool, Turn
    script = {"main_key": "Look into it", "main": [
        Turn(tools=[Tool("Agent", {"description": "Dig", "prompt": "Dig into the logs and report",
                                   "subagent_type": "general-purpose"})], input_tokens=500, output_tokens=70,
             cache_creation=2000, cache_1h=2000),
        Turn(text="Done.", input_tokens=60, output_tokens=30, cache_read=2000)],
        "agents": {"Dig into the logs": [Turn(text="Nothing odd.", input_tokens=400, output_tokens=90,
                                              cache_creation=1000)]}}
    api = FakeAnthropic(script).start()
    ws = cs.Workspace(tmp_path, api)
    try:
        proc = ws.run("Look into it", "--output-format", "stream-json", "--verbose")
        assert proc.returncode == 0, proc.stderr
    finally:
        api.stop()
    capture = tmp_path / "capture.jsonl"
    capture.write_text(proc.stdout)
    [transcript] = [t for t in ws.transcripts() if "subagents" not in t.parts]
    ours, theirs = capture_stats(ws, capture), stats_of_transcript(ws, transcript)
    assert ours["total_tokens"] == theirs["total_tokens"] and ours["models"] == theirs["models"]
    assert [s["tokens"] for s in ours["subagents"]] == [s["tokens"] for s in theirs["subagents"]] == \
        [{"input": 400, "output": 90, "cache_creation": 1000, "cache_read": 0}]
    assert ours["estimated_cost_usd"] == theirs["estimated_cost_usd"]
    assert "subagent_output_lower_bound" not in ours["capture"]


def test_the_reader_locates_a_capture_by_content_or_by_format(capture, tmp_path):
    """--transcript goes through HistoryReader.locate for both formats: a capture is recognised
    and read on its own; --format transcript reads the same file as a transcript instead."""
    _, _, path = capture
    reader = sa.HistoryReader(tmp_path / "no-projects")
    ref = reader.locate(transcript=str(path))
    assert ref.capture == path and ref.groups == {}
    facts = reader.session(ref)
    assert facts.capture is not None and facts.capture["complete"] is True
    assert facts.session_id == sa.read_capture(path).session_id != path.stem
    as_transcript = reader.locate(transcript=str(path), transcript_format="transcript")
    assert as_transcript.capture is None and as_transcript.sid == path.stem
    assert reader.session(as_transcript).capture is None

