"""The benchmark's generator writes histories that the reference counting and `list` agree on."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, reference_totals, run_cli

GENERATOR = ROOT / "tests" / "bench" / "generate.py"


def test_generated_history_has_every_layout_and_counts_like_the_reference(tmp_path):
    for shape, size in (("results", "12M"), ("assistant", "5M")):       # at least three sessions each
        out = tmp_path / shape
        subprocess.run([sys.executable, GENERATOR, out, "--size", size, "--shape", shape], check=True,
                       capture_output=True)
        projects = out / "projects"
        files = [p.relative_to(projects) for p in projects.rglob("*.jsonl")]
        assert any("subagents" in p.parts for p in files)                  # 2.1.x layout
        assert any(p.name.startswith("agent-") and len(p.parts) == 2 for p in files)   # flat agent files
        text = "".join(p.read_text() for p in projects.rglob("*.jsonl"))
        assert '"isSidechain":true' in text and '"name":"Skill"' in text and '"is_error":true' in text
        assert '"usage":{' in text and ", " not in text.splitlines()[0][:200]     # compact, like Claude Code
        rows = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", projects).stdout)
        expected = reference_totals(projects)
        assert len(rows) == len(json.loads((out / "manifest.json").read_text())["sessions"])
        for row in rows:
            t = row["total_tokens"]
            assert [t["input"], t["output"], t["cache_creation"], t["cache_read"]] == expected[row["session_id"]]
        again = tmp_path / f"again-{shape}"
        subprocess.run([sys.executable, GENERATOR, again, "--size", size, "--shape", shape], check=True,
                       capture_output=True)
        assert (again / "manifest.json").read_text() == (out / "manifest.json").read_text()   # deterministic


def test_growing_one_session_for_the_rerun_measure_puts_the_history_back_exactly(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "bench"))
    import run  # noqa: PLC0415  (the benchmark's runner)
    subprocess.run([sys.executable, GENERATOR, tmp_path, "--size", "2M", "--shape", "results"], check=True,
                   capture_output=True)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*.jsonl")}
    listed = run_cli("--phase", "list", "--json", "--no-cache", "--projects-dir", tmp_path / "projects").stdout
    restore = run.grow_one_session(tmp_path)
    grown = [p for p in before if p.read_bytes() != before[p][0]]
    assert len(grown) == 1 and grown[0].read_bytes().startswith(before[grown[0]][0])
    # a copy of a line: the file must be read again, and its call still counts once
    assert run_cli("--phase", "list", "--json", "--no-cache", "--projects-dir", tmp_path / "projects").stdout == listed
    restore()
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*.jsonl")} == before


def test_the_bare_reader_yardstick_decodes_every_usage_line_and_no_other(tmp_path):
    """make bench's yardstick must do the work it stands for: every line with a usage decoded
    (its output tokens summed, replays and placeholders included), on lines split across chunks."""
    subprocess.run([sys.executable, GENERATOR, tmp_path, "--size", "6M", "--shape", "results"], check=True,
                   capture_output=True)
    expected = 0
    for path in (tmp_path / "projects").rglob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            if b'"usage":{' in line:
                expected += json.loads(line)["message"]["usage"]["output_tokens"]
    for by_head in ([], ["--by-head"]):         # the generator writes the type within a line's head
        out = subprocess.run([sys.executable, ROOT / "tests" / "bench" / "bare_reader.py", tmp_path / "projects",
                              *by_head], check=True, capture_output=True, text=True).stdout
        assert int(out) == expected > 0
