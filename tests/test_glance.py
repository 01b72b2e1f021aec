"""`list` glances at big tool results: the line's time, or a decline, never a different row.

A list row reads nothing of a tool result but its time and, for Task/Agent calls, the subagent
link. glance_tool_result takes the time from the line's flat leading members (or from its exact
place after the message) without reading the text. One rule is tested here on real, generated and
hostile lines: for any line, either the glance declines, or the list scan it leads to equals the
list scan of the decoded line.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from conftest import PLAIN, SHARED, all_stats, list_rows, sa, scan_with
from test_skim import PLAIN_TOOLS, TRICKY_TEXTS, compact, result_line

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
import generate  # noqa: E402  (the benchmark's history generator)

ALL_TRANSCRIPTS = SHARED / "fixtures" / "transcripts"
LAYOUT_2_1 = ["parentUuid", "isSidechain", "userType", "cwd", "sessionId", "version", "gitBranch", "type",
              "message", "uuid", "timestamp", "toolUseResult"]


def list_state(tool_names=PLAIN_TOOLS) -> sa.ScanState:
    state = sa.ScanState(sa.FileScan(path=Path("t.jsonl"), session_id="s", depth=sa.ROW))
    state.tool_names.update(tool_names)
    return state


def glanced_or_declined(line: bytes, tool_names=PLAIN_TOOLS, agent_hint=None) -> bool:
    """True if the glance reads the line, after checking it gives the decoded line's list scan."""
    stamp = sa.glance_tool_result(line, dict(tool_names), agent_hint)
    if stamp is None:
        return False
    glanced = list_state(tool_names)
    ts = sa.parse_ts(stamp)
    if ts is not None:
        glanced.scan.timestamps.append(ts)
    decoded = list_state(tool_names)
    rec, problem = sa.decode_line(line, True)
    assert problem is None and rec is not None, line[:300]
    sa._scan_record(decoded, rec, agent_hint)
    assert glanced == decoded, line[:300]
    return True


def list_scans(files: list[Path], glance: bool) -> tuple[list, int]:
    """ROW-depth scans of every file: every line glanced at (or skimmed) where it can be, or decoded."""
    options = sa.ReadOptions(skim_min_bytes=0) if glance else PLAIN
    scans = [scan_with(options, f, "hint", None, sa.ROW) for f in files]
    return scans, sum(scan.glanced for scan in scans)


# ── Real transcripts and generated histories ──────────────────────────────────

def test_every_real_transcript_gives_the_same_list_scan_glanced_or_not():
    files = sorted(ALL_TRANSCRIPTS.rglob("*.jsonl"))
    with_glance, glanced = list_scans(files, True)
    without, _ = list_scans(files, False)
    assert glanced > 500                        # the real layouts are glanced at, not declined
    for path, a, b in zip(files, with_glance, without):
        assert a == b, path


def test_generated_history_lists_the_same_rows_and_big_results_are_glanced(tmp_path):
    generate.generate(tmp_path, 3 << 20, "results", seed=5)
    files = sorted(tmp_path.rglob("*.jsonl"))
    with_glance, glanced = list_scans(files, True)
    without, _ = list_scans(files, False)
    assert glanced > 50 and with_glance == without
    assert list_rows(tmp_path / "projects", sa.ReadOptions(workers=1)) == list_rows(tmp_path / "projects", PLAIN)


def test_a_list_row_equals_the_same_fields_of_the_full_stats(tmp_path):
    """The list scan drops what rows do not show, never what they do."""
    generate.generate_single(tmp_path, 2 << 20, seed=4)
    rows = list_rows(tmp_path / "projects")
    stats = all_stats(tmp_path / "projects")
    assert len(rows) == len(stats) == 1
    row, full = rows[0], stats[0]
    assert full["subagents"] and row["subagents"] == len(full["subagents"])
    for key in ("session_id", "branch", "started_at", "ended_at", "duration_minutes", "active_minutes",
                "turns", "total_tokens", "estimated_cost_usd"):
        assert row[key] == full[key], key
    assert row["models"] == sorted(full["models"])


# ── Lines built to mislead ────────────────────────────────────────────────────

@pytest.mark.parametrize("text", TRICKY_TEXTS)
@pytest.mark.parametrize("order", [None, LAYOUT_2_1])
def test_hostile_result_text_never_changes_the_time(text, order):
    line = result_line(text * 3, is_error=False, result={"stdout": text, "timestamp": "1999-01-01T00:00:00.000Z"},
                       top_order=order)
    assert glanced_or_declined(line) or text == ""


def test_the_time_after_the_message_is_read_where_2_1_writes_it():
    line = result_line("x" * 20000, is_error=True, result={"file": {"content": "x" * 20000}}, top_order=LAYOUT_2_1)
    assert glanced_or_declined(line)
    assert sa.glance_tool_result(line, dict(PLAIN_TOOLS), None) == "2026-03-01T10:00:00.123Z"


@pytest.mark.parametrize("line, names, hint", [
    (result_line("x", tool_use_id="toolu_task"), {"toolu_task": "Task"}, None),       # a subagent link
    (result_line("x", tool_use_id="toolu_agent"), {"toolu_agent": "Agent"}, None),
    (result_line("x", tool_use_id="toolu_elsewhere"), {}, None),                       # call not in the file
    (result_line("x", extra_top={"isSidechain": True}), PLAIN_TOOLS, None),            # inline chain link
    (result_line("x", extra_top={"isSidechain": True, "agentId": ""}), PLAIN_TOOLS, None),
    (result_line("x", extra_top={"cwd": 'C:\\work'}), PLAIN_TOOLS, None),               # an escape in the head
    (result_line("x", extra_top={"slug": {"nested": 1}}, top_order=["parentUuid", "slug", "type", "message",
                                                                      "uuid", "timestamp"]), PLAIN_TOOLS, None),
    (result_line("x", result={"tool_use_id": "toolu_task"}), PLAIN_TOOLS, None),      # a second id key
    (result_line("x", block_order=["type", "content", "tool_use_id"]), PLAIN_TOOLS, None),
    (result_line("x", top_order=["type", "uuid", "timestamp", "message"]).replace(b'"type":"user"', b'"type":"user","type":"assistant"'),
     PLAIN_TOOLS, None),                                                               # a repeated key
    (result_line("x", top_order=["parentUuid", "type", "message", "toolUseResult", "uuid", "timestamp"],
                 result={"a": 1}), PLAIN_TOOLS, None),                                 # time not where 2.1 puts it
    (result_line("x")[:-1], PLAIN_TOOLS, None),                                        # a torn line
    (b'{"type": "user", "timestamp": "2026-03-01T10:00:00.000Z", "message": {"role": "user", "content": '
     b'[{"tool_use_id": "toolu_read", "type": "tool_result", "content": "a"}]}}', PLAIN_TOOLS, None),
])
def test_lines_a_row_could_read_differently_are_declined(line, names, hint):
    assert sa.glance_tool_result(line, dict(names), hint) is None


def test_two_result_blocks_are_declined_even_when_both_are_plain():
    line = compact({"type": "user", "timestamp": "2026-03-01T10:00:00.000Z", "message": {"role": "user", "content": [
        {"tool_use_id": "toolu_read", "type": "tool_result", "content": "a"},
        {"tool_use_id": "toolu_grep", "type": "tool_result", "content": "c", "is_error": True}]}})
    assert sa.glance_tool_result(line, dict(PLAIN_TOOLS), None) is None


def test_a_subagent_file_s_sidechain_lines_are_glanced():
    line = result_line("x" * 100, extra_top={"isSidechain": True})
    assert sa.glance_tool_result(line, dict(PLAIN_TOOLS), None) is None
    assert glanced_or_declined(line, agent_hint="a1")
    line = result_line("x" * 100, extra_top={"isSidechain": True, "agentId": "a1"},
                       top_order=["parentUuid", "isSidechain", "agentId", "type", "message", "uuid", "timestamp"])
    assert glanced_or_declined(line)
    line = result_line("x" * 100, extra_top={"isSidechain": True, "agentId": "a1"})   # its id after the message
    assert sa.glance_tool_result(line, dict(PLAIN_TOOLS), None) is None


def test_random_results_never_glance_differently():
    rng = random.Random(21)
    alphabet = ['"', "\\", ",", "}", "]", ":", "{", "[", "a", " ", "\n", "é", '","', '"}', "\\\\",
                '"timestamp":"', '"tool_use_id":"', ']},"uuid":"']
    glanced = 0
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        order = rng.choice([None, LAYOUT_2_1, ["type", "timestamp", "message", "uuid", "toolUseResult"]])
        result = rng.choice([None, {"stdout": text}, {"timestamp": text, "tool_use_id": text}, text])
        extra = rng.choice([{}, {"cwd": text}, {"isSidechain": rng.choice([True, False])}, {"agentId": text}])
        line = result_line(text, is_error=rng.choice([None, False, True]), result=result, top_order=order,
                           extra_top=extra, block_order=rng.choice([None, ["type", "tool_use_id", "content"]]))
        glanced += glanced_or_declined(line)
    assert glanced > 1000


def test_glance_reads_only_the_head_and_one_count_of_a_huge_line():
    """Not a timing: the glance must not decode the text, so a line whose text is not even UTF-8
    is still glanced (a full decode would repair it), and its time is exact."""
    line = result_line("x" * 50000, top_order=LAYOUT_2_1, result={"stdout": "y"})
    line = line.replace(b"x" * 10, b"\xff" * 10, 1)
    assert sa.glance_tool_result(line, dict(PLAIN_TOOLS), None) == "2026-03-01T10:00:00.123Z"
    assert json.loads(result_line("ok"))["type"] == "user"
