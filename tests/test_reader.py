"""HistoryReader: one session or all of them, at a depth, with any speed settings giving the
result of the plain ones (decode every line, keep nothing, one process)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import (PLAIN, SHARED, Transcript, all_stats, list_rows, replayed_history, sa, usage)

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
import generate  # noqa: E402  (the benchmark's history generator)

REAL_2026 = SHARED / "fixtures" / "transcripts" / "real-2026" / "projects"


def facts_of(facts):
    """A summarise function that keeps the facts themselves."""
    return facts


def every_setting(cache_root: Path) -> dict:
    return {
        "defaults, first run": sa.ReadOptions(cache=sa.ReadCache(cache_root)),
        "defaults, from the cache": sa.ReadOptions(cache=sa.ReadCache(cache_root)),
        "skim every line": sa.ReadOptions(skim_min_bytes=0),
        "quote by quote never": sa.ReadOptions(skim_min_bytes=0, quote_steps=0),
        "small chunks": sa.ReadOptions(chunk_bytes=1 << 16),
        "worker processes": sa.ReadOptions(workers=2, parallel_min_bytes=0),
    }


@pytest.fixture(scope="module")
def histories(tmp_path_factory, real_projects):
    root = tmp_path_factory.mktemp("histories")
    for shape in ("results", "assistant"):
        generate.generate(root / shape, 2 << 20, shape, seed=11)
    replayed_history(root / "replayed")
    return {"claude-code-log": real_projects, "real-2026": REAL_2026, "results": root / "results" / "projects",
            "assistant": root / "assistant" / "projects", "replayed": root / "replayed"}


@pytest.mark.parametrize("name", ["claude-code-log", "real-2026", "results", "assistant", "replayed"])
def test_list_rows_do_not_depend_on_how_fast_they_are_read(histories, tmp_path, name):
    plain = list_rows(histories[name], PLAIN)
    assert plain
    for setting, options in every_setting(tmp_path / "cache").items():
        assert list_rows(histories[name], options) == plain, setting


@pytest.mark.parametrize("name", ["real-2026", "results", "replayed"])
def test_stats_of_every_session_do_not_depend_on_how_fast_they_are_read(histories, tmp_path, name):
    plain = all_stats(histories[name], PLAIN)
    for setting, options in every_setting(tmp_path / "cache").items():
        assert all_stats(histories[name], options) == plain, setting


def test_one_session_does_not_depend_on_how_fast_it_is_read(tmp_path):
    plain_reader = sa.HistoryReader(REAL_2026, PLAIN)
    fast_reader = sa.HistoryReader(REAL_2026, sa.ReadOptions(cache=sa.ReadCache(tmp_path), skim_min_bytes=0))
    pricing = sa.load_pricing(None)
    for sid in ("fa812bfe", "8ecab05f", "592b4ec7"):
        plain = sa.compute_stats(plain_reader.session(plain_reader.locate(sid)), pricing, "x")
        for _ in range(2):                                      # a first run, then from the cache
            assert sa.compute_stats(fast_reader.session(fast_reader.locate(sid)), pricing, "x") == plain


def test_the_plain_reader_is_the_default_and_the_options_pick_a_faster_one():
    assert type(sa.HistoryReader(REAL_2026).reading) is sa.PlainReading
    assert type(PLAIN.reading()) is sa.PlainReading
    assert type(sa.ReadOptions().reading()) is sa.FastReading


def test_every_field_of_a_file_s_scan_has_its_rule_for_combining_scans():
    assert set(sa.SCAN_COMBINE) == {f.name for f in sa.dataclasses.fields(sa.FileScan)}


def test_what_a_read_returns_says_its_depth_and_stats_refuse_a_row_read(tmp_path):
    reader = sa.HistoryReader(REAL_2026, PLAIN)
    rows = reader.each_session(sa.ROW, facts_of)
    full = reader.each_session(sa.FULL, facts_of)
    assert {f.depth for f in rows} == {sa.ROW} and {f.depth for f in full} == {sa.FULL}
    pricing = sa.load_pricing(None)
    with pytest.raises(ValueError, match="needs a FULL read"):
        sa.compute_stats(rows[0], pricing, "x")
    assert sa.compute_stats(full[0], pricing, "x")["session_id"] == full[0].session_id
    one = reader.session(reader.locate("fa812bfe"))
    assert one.depth == sa.FULL
    # a row read keeps only what a row shows of tool results: the subagent links
    row_facts = {f.session_id: f for f in rows}[one.session_id]
    assert len(row_facts.tool_results) < len(one.tool_results)
    assert {r.tool_use_id for r in row_facts.tool_results} <= {r.tool_use_id for r in one.tool_results}


def test_the_reader_counts_what_it_skipped_and_says_so_in_one_line(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1, 1))
    t.raw("{not json")
    t.raw("[1, 2]")
    t.write()
    (tmp_path / "p" / "empty.jsonl").write_text("")
    reader = sa.HistoryReader(tmp_path, PLAIN)
    assert len(list_rows(tmp_path, reader=reader)) == 1
    assert reader.skipped == {"invalid JSON lines": 1, "lines that are not JSON objects": 1}
    assert reader.empty_sessions == 1
    where = tmp_path / "p" / "s1.jsonl"
    assert reader.note() == (f"session-analytics: note: skipped 1 invalid JSON lines (first: {where}:2), 1 lines "
                             f"that are not JSON objects (first: {where}:3), 1 empty or summary-only sessions")
    assert sa.HistoryReader(REAL_2026, PLAIN).note() is None


def test_locate_finds_a_session_by_prefix_transcript_or_folder(tmp_path):
    reader = sa.HistoryReader(REAL_2026, PLAIN)
    ref = reader.locate("fa812bfe")
    assert ref.sid == "fa812bfe-b295-4cca-9c2f-fdf01028cb46"
    assert len(ref.groups[ref.sid]) == 4                            # the main file and three subagents
    subagent = next(REAL_2026.rglob("agent-a93ccab.jsonl"))
    assert reader.locate(transcript=str(subagent)).sid == ref.sid
    t = Transcript(tmp_path / "projects" / "-work-x" / "s2.jsonl", "s2", cwd="/work/x")
    t.assistant("msg_1", usage(1, 1))
    t.write()
    assert sa.HistoryReader(tmp_path / "projects").locate(cwd="/work/x").sid == "s2"
    with pytest.raises(sa.UserError, match="no session nope"):
        reader.locate("nope")


def test_one_ownership_rank_for_one_session_and_for_a_whole_history(tmp_path):
    """Two sessions record the same call at the same time: the one that ended first owns it,
    whether stats asks for one of them or list reads both."""
    a = Transcript(tmp_path / "p" / "aaaa.jsonl", "aaaa", start="2026-03-01T10:00:00Z")
    a.assistant("msg_1", usage(1, 100), ts="2026-03-01T10:00:05Z")
    a.assistant("msg_a", usage(1, 1), ts="2026-03-01T15:00:00Z")    # a ends last
    a.write()
    b = Transcript(tmp_path / "p" / "bbbb.jsonl", "bbbb", start="2026-03-01T10:00:00Z")
    b.assistant("msg_1", usage(1, 100), ts="2026-03-01T10:00:05Z")
    b.assistant("msg_b", usage(1, 2), ts="2026-03-01T11:00:00Z")
    b.write()
    rows = {r["session_id"]: r["total_tokens"]["output"] for r in list_rows(tmp_path, PLAIN)}
    assert rows == {"aaaa": 1, "bbbb": 102}
    reader = sa.HistoryReader(tmp_path, PLAIN)
    for sid in ("aaaa", "bbbb"):
        facts = reader.session(reader.locate(sid))
        assert sum(c.usage.output for c in facts.calls) == rows[sid]
    assert sa.owner_rank(5.0, 9.0, "p", "bbbb") < sa.owner_rank(5.0, 10.0, "p", "aaaa") \
        < sa.owner_rank(5.0, 10.0, "p", "cccc")


def test_one_call_key_and_one_synthetic_rule(tmp_path):
    rec = {"requestId": "req_1", "uuid": "u1"}
    assert sa.call_key(rec, {"id": "msg_1"}) == ("msg_1", "req_1")
    assert sa.call_key(rec, {}) == ("uuid", "u1")
    assert sa.billed_usage({"model": "<synthetic>", "usage": {"output_tokens": 5}}) is None
    assert sa.billed_usage({"model": "claude-opus-4-6", "usage": {"output_tokens": 5}}) == {"output_tokens": 5}
    # the neighbours' claims are read by the same rules as a full read, cached or not
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1, 1))
    t.assistant("msg_2", usage(1, 1), model="<synthetic>")
    t.assistant(None, usage(1, 1), request_id=None)
    path = t.write()
    scan = sa.scan_file(path, "s1", None, sa.FULL)
    for options in (PLAIN, sa.ReadOptions(), sa.ReadOptions(cache=sa.ReadCache(tmp_path / "cache"))):
        for _ in range(2):
            claims, _ = options.reading().claims([sa.TranscriptFile(path, "s1", None)], "s1")
            assert set(claims) == set(scan.calls) and len(claims) == 2


def test_timestamps_taken_by_the_fast_path_are_what_the_general_parser_gives():
    """parse_ts reads Claude Code's own form by lookups; any such stamp written with +00:00
    instead of Z takes the regular-expression path, and both must agree to the last bit,
    invalid months, days past the month's end and non-ASCII digits included."""
    import random
    rng = random.Random(5)
    stamps = [f"{rng.choice(('2026', '1970', '0000', '9999'))}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}"
              f"T{rng.randint(0, 99):02d}:{rng.randint(0, 99):02d}:{rng.randint(0, 99):02d}.{rng.randint(0, 999):03d}"
              for _ in range(20000)]
    stamps += ["2026-02-08T22:26:37.123", "２026-02-08T22:26:37.123", "2026-02-08T22:26:3７.123",
               "2026-02-08T22:26:37.12３", "2026-02-08T2２:26:37.123", "2026-0２-08T22:26:37.123"]
    for stamp in stamps:
        assert sa.parse_ts(stamp + "Z") == sa.parse_ts(stamp + "+00:00"), stamp
    assert sa.parse_ts("2026-02-08T22:26:37.123Z") == 1770589597.123
    assert sa.parse_ts("２026-02-08T22:26:37.123Z") is None


# ── Calls recorded by several sessions ───────────────────────────────────────

def test_calls_recorded_twice_are_found_in_every_bucket_of_digests():
    """lost_calls compares digests a bucket at a time (top bits): calls shared in the first, a
    middle and the last bucket, and at their edges, are each found, and lost by the later claim."""
    import array
    top = 1 << 60
    shared = [0, 5, 7 * top - 1, 7 * top, 15 * top + 9, (1 << 64) - 1]

    def result(keys, ts, end):
        keys = sorted(keys)
        return sa.SessionResult(None, array.array("Q", keys), array.array("d", [ts] * len(keys)), end,
                                sa.collections.Counter())
    results = [result([*shared, 3 * top], 1.0, 10.0), result([*shared, 4 * top], 2.0, 20.0),
               result([9 * top, 15 * top], 1.0, 5.0)]
    lost = sa.lost_calls(results, [("p", "a"), ("p", "b"), ("p", "c")])
    assert lost == {1: set(shared)}
