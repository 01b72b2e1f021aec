"""Skimming big tool results gives exactly the scan a full decode gives, or declines.

The skim steps over the text of big tool-result lines with bytes.find instead of decoding it.
These tests hold it to one rule: for any line, either it declines (and the line is decoded), or
the scan it leads to equals the scan of the decoded line.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from conftest import PLAIN, SHARED, sa, scan_with

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
import generate  # noqa: E402  (the benchmark's history generator)

ALL_TRANSCRIPTS = SHARED / "fixtures" / "transcripts"
PLAIN_TOOLS = {"toolu_read": "Read", "toolu_grep": "Grep"}


def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def scan_of(line: bytes, skim: bool, tool_names=PLAIN_TOOLS, steps=sa.QUOTE_STEPS) -> sa.ScanState:
    """The scan state after one line, skimmed or decoded, in a file whose session is known."""
    state = sa.ScanState(sa.FileScan(path=Path("t.jsonl"), session_id="s"))
    state.tool_names.update(tool_names)
    if skim:
        rec = sa.skim_tool_result(line, state.tool_names, quote_steps=steps)
        assert rec is not None, line[:200]
    else:
        rec, problem = sa.decode_line(line, True)
        assert problem is None
    sa._scan_record(state, rec, None)
    return state


def assert_same_or_declined(line: bytes, tool_names=PLAIN_TOOLS) -> bool:
    """Both ways of finding a string's end: quote by quote, and by compact JSON's followers."""
    skimmed = []
    for steps in (sa.QUOTE_STEPS, 0):
        if sa.skim_tool_result(line, dict(tool_names), quote_steps=steps) is None:
            skimmed.append(False)
            continue
        assert scan_of(line, True, tool_names, steps) == scan_of(line, False, tool_names), (steps, line[:300])
        skimmed.append(True)
    return all(skimmed)


def result_line(content, *, tool_use_id="toolu_read", is_error=None, result=None, block_order=None,
                top_order=None, extra_top=None) -> bytes:
    block = {"tool_use_id": tool_use_id, "type": "tool_result", "content": content}
    if is_error is not None:
        block["is_error"] = is_error
    if block_order:
        block = {k: block[k] for k in block_order if k in block}
    top = {"parentUuid": "p1", "isSidechain": False, "userType": "external", "cwd": "/w",
           "sessionId": "s", "version": "2.1.30", "gitBranch": "main", "type": "user",
           "message": {"role": "user", "content": [block]}, "uuid": "u1",
           "timestamp": "2026-03-01T10:00:00.123Z"}
    if result is not None:
        top["toolUseResult"] = result
    top.update(extra_top or {})
    if top_order:
        top = {k: top[k] for k in top_order if k in top}
    return compact(top)


# ── Real transcripts and generated histories ──────────────────────────────────

def scans_both_ways(files: list[Path]) -> tuple[list, list, int]:
    """Every file scanned with the skim tried on every line, and decoded whole (PLAIN)."""
    with_skim = [scan_with(sa.ReadOptions(skim_min_bytes=0), f, "hint", None, sa.FULL) for f in files]
    without = [scan_with(PLAIN, f, "hint", None, sa.FULL) for f in files]
    return with_skim, without, sum(scan.skimmed for scan in with_skim)


def test_every_real_transcript_scans_the_same_skimmed_or_decoded():
    files = sorted(ALL_TRANSCRIPTS.rglob("*.jsonl"))
    assert len(files) > 100
    with_skim, without, skimmed = scans_both_ways(files)
    assert skimmed > 500                      # the real layouts are read by the skim, not declined
    for path, a, b in zip(files, with_skim, without):
        assert a == b, path


def test_generated_history_scans_the_same_and_most_big_lines_are_skimmed(tmp_path):
    generate.generate(tmp_path, 3 << 20, "results", seed=3)
    files = sorted(tmp_path.rglob("*.jsonl"))
    with_skim, without, skimmed = scans_both_ways(files)
    assert skimmed > 100
    assert with_skim == without


def test_stats_of_a_generated_session_do_not_depend_on_the_skim(tmp_path):
    generate.generate_single(tmp_path, 4 << 20, seed=2)
    sid = json.loads((tmp_path / "manifest.json").read_text())["session"]
    facts_decoded = sa.assemble_session(sid, "p", *_files_and_scans(tmp_path, sid, PLAIN), sa.owns_every_call)
    facts_skimmed = sa.assemble_session(sid, "p", *_files_and_scans(tmp_path, sid, sa.ReadOptions(skim_min_bytes=0)),
                                        sa.owns_every_call)
    pricing = sa.load_pricing(None)
    a = sa.compute_stats(facts_skimmed, pricing, "p")
    b = sa.compute_stats(facts_decoded, pricing, "p")
    assert a == b and a["commits"] and a["problems_faced"] and a["subagents"]


def _files_and_scans(root: Path, sid: str, options):
    project = next((root / "projects").iterdir())
    files = sa.group_by_session(sa.project_files(project))[sid]
    return files, [scan_with(options, tf.path, sid, tf.agent_hint, sa.FULL) for tf in files]


# ── Lines built to mislead ────────────────────────────────────────────────────

TRICKY_TEXTS = [
    'plain text',
    'code = {"a": "b", "c": [1, 2]}\nprint("done")',
    'ends with a quote and comma ",',           # \", then the closing quote: ambiguous, declines
    'ends with a backslash \\',                  # \\ then the closing quote
    'many \\\\\\" backslashes \\\\" before quotes \\"',
    '"}]},"uuid":"fake","timestamp":"1999-01-01T00:00:00.000Z"',
    '{"type":"user","timestamp":"1999-01-01T00:00:00.000Z","is_error":true}',
    '","is_error":true}]},"timestamp":"1999-01-01T00:00:00.000Z","toolUseResult":{}}',
    'unicode ✓ 日本語 \u2028 line separator and \x00 control',
    '\\",\\"}\\":\\"',
    "",
]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
@pytest.mark.parametrize("is_error", [None, False, True])
def test_hostile_result_text_is_stepped_over_exactly(text, is_error):
    assert_same_or_declined(result_line(text * 3, is_error=is_error, result={"stdout": text}))


def test_a_plain_big_result_is_skimmed_with_its_timestamp():
    line = result_line("x" * 20000, is_error=False, result={"file": {"content": "x" * 20000}})
    assert assert_same_or_declined(line)
    state = scan_of(line, True)
    [res] = state.scan.tool_results
    assert (res.tool_use_id, res.is_error, res.error) == ("toolu_read", False, "")
    assert state.scan.timestamps == [sa.parse_ts("2026-03-01T10:00:00.123Z")]


def test_a_failed_call_s_result_is_decoded_for_its_error_class():
    line = result_line("<tool_use_error>File has not been read yet. Read it first.</tool_use_error>" + "x" * 20000,
                       is_error=True, result={"file": {"content": "x" * 20000}})
    assert sa.skim_tool_result(line, dict(PLAIN_TOOLS)) is None
    [res] = scan_of(line, False).scan.tool_results
    assert (res.tool_use_id, res.is_error, res.error) == ("toolu_read", True, "file not read first")


def test_nested_keys_in_the_structured_result_are_not_taken_for_the_line_s():
    nested = {"timestamp": "1999-01-01T00:00:00.000Z", "agentId": "evil", "is_error": True,
              "type": "user", "message": {"content": [{"type": "tool_result"}]}}
    for order in (None, ["type", "timestamp", "uuid", "toolUseResult", "message", "sessionId"],
                  ["type", "message", "uuid", "toolUseResult", "timestamp"]):
        line = result_line("text", result=nested, top_order=order)
        assert_same_or_declined(line)


def test_newest_layout_with_the_tool_use_id_after_the_content_is_skimmed():
    line = result_line("y" * 5000, is_error=False, block_order=["type", "content", "is_error", "tool_use_id"],
                       top_order=["parentUuid", "isSidechain", "type", "message", "uuid", "timestamp",
                                  "toolUseResult", "userType", "cwd", "sessionId", "version", "gitBranch"],
                       result={"type": "text"})
    assert assert_same_or_declined(line)


def test_two_result_blocks_are_both_read():
    line = compact({"type": "user", "timestamp": "2026-03-01T10:00:00.000Z", "message": {"role": "user", "content": [
        {"tool_use_id": "toolu_read", "type": "tool_result", "content": "a\"},{\"b"},
        {"tool_use_id": "toolu_grep", "type": "tool_result", "content": "c", "is_error": False}]}})
    assert assert_same_or_declined(line)
    assert [r.tool_use_id for r in scan_of(line, True).scan.tool_results] == ["toolu_read", "toolu_grep"]


def test_results_whose_text_is_read_or_whose_call_is_unknown_are_decoded():
    for tool_use_id, names in (("toolu_bash", {"toolu_bash": "Bash"}), ("toolu_task", {"toolu_task": "Agent"}),
                               ("toolu_elsewhere", {})):
        line = result_line("[main abc1234] Fix it", tool_use_id=tool_use_id)
        assert sa.skim_tool_result(line, names) is None


@pytest.mark.parametrize("line", [
    b'{"type": "user", "timestamp": "2026-03-01T10:00:00.000Z", "message": {"content": [{"type": "tool_result",'
    b' "tool_use_id": "toolu_read", "content": "a"}]}}',                       # not compact
    result_line("x")[:-40] + result_line("y"),                                  # a torn line, then the next
    result_line("x", extra_top={"timestamp": "2026-03-01T10:00:00.000Z"})[:-1] + b',"type":"user"}',  # repeated key
    result_line("x").replace(b'"message":{', b'"message":{"extra":{"nested":1},'),
    result_line("x", is_error=False).replace(b'"is_error":false', b'"is_error":false,"type":"text"'),  # repeated
    result_line(["text block"]),                                                # content as a list
    result_line("abc", is_error=False).replace(b'"abc","is_error"', b'"abc"X"is_error"'),  # not JSON
])
def test_layouts_the_skim_does_not_read_decline(line):
    assert sa.skim_tool_result(line, dict(PLAIN_TOOLS)) is None


def test_random_results_never_skim_differently():
    rng = random.Random(12)
    alphabet = ['"', "\\", ",", "}", "]", ":", "{", "[", "a", " ", "\n", "é", '","', '"}', "\\\\"]
    skimmed = 0
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        keys = ["tool_use_id", "type", "content", "is_error"]
        rng.shuffle(keys)
        keys.remove("type")
        keys.insert(rng.randint(0, keys.index("content")), "type")      # type comes before content
        result = rng.choice([None, {"stdout": text}, {"timestamp": text, "is_error": True}, text])
        line = result_line(text, is_error=rng.choice([None, False, True]), result=result, block_order=keys)
        skimmed += assert_same_or_declined(line)
    assert skimmed > 1000


def test_an_inline_sidechain_result_is_decoded_so_its_chain_stays_linked(tmp_path):
    line = result_line("z" * 10000, extra_top={"isSidechain": True})
    state = sa.ScanState(sa.FileScan(path=tmp_path / "t.jsonl", session_id="s"))
    state.tool_names.update(PLAIN_TOOLS)
    hook = sa.line_hook(sa.FULL, sa.ReadOptions())
    assert len(line) > sa.ReadOptions().skim_min_bytes
    assert hook(state, line, None) is False                 # declined: decoded instead
    assert state.scan.skimmed == 0 and not state.inline_parent
