"""`make demo` works from a clean tree and writes what it promises."""

from __future__ import annotations

import json
import subprocess

from conftest import DEMO_PROJECTS, ROOT, reference_totals, sa


def test_make_demo(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(["make", "-s", "demo", f"DEMO_OUT={out}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "analytics", "comment-00b11888.md", "sessions.json", "sessions.txt", "stats-00b11888.json", "stats-a3f92bc1.json",
        "stats-f7e01d4a.json", "summary-pr-652.md", "workflows-00b11888.md"]
    stats = json.loads((out / "stats-00b11888.json").read_text())
    assert stats["project"] == "kagenti/kagenti" and stats["target"] == {"type": "pr", "number": 652}
    assert [c["commit_id"] for c in stats["commits"]] == ["abc1234", "def5678"]
    assert [s["skill"] for s in stats["skills_invoked"]] == ["tdd:ci", "rca:ci"]
    assert [a["agent_id"] for a in stats["subagents"]] == ["a3d04c8"]
    rows = json.loads((out / "sessions.json").read_text())
    assert len(rows) == 3
    expected = reference_totals(DEMO_PROJECTS)
    for row in rows:
        t = row["total_tokens"]
        assert [t["input"], t["output"], t["cache_creation"], t["cache_read"]] == expected[row["session_id"]]
    assert "demo output written to" in proc.stdout
    comment = (out / "comment-00b11888.md").read_text()
    assert comment.startswith("<!-- SESSION:00b11888 -->\n## Claude Code Session Report\n")
    # what was posted is what the privacy gate lets out at public, the level of an unknown repository
    assert sa.comment_data(comment, sa.SESSION_DATA_TITLE) == sa.outbound_stats(stats, sa.Privacy("public"))
    assert "<sub>Privacy level: public (numbers and names only).</sub>" in comment
    assert set(stats["workflow_edges"]) == {"ci", "rca", "tdd"}
    workflows = (out / "workflows-00b11888.md").read_text()
    assert workflows.count("```mermaid") == 3 and workflows.split("### TDD Workflow")[1] in comment
    summary = sa.comment_data((out / "summary-pr-652.md").read_text(), sa.SUMMARY_DATA_TITLE)
    second = json.loads((out / "stats-a3f92bc1.json").read_text())
    assert summary["session_count"] == 2
    assert summary["total_tokens"] == {k: stats["total_tokens"][k] + second["total_tokens"][k]
                                       for k in stats["total_tokens"]}
    assert sorted(p.name for p in (out / "analytics").iterdir()) == [
        "analytics.csv", "analytics.json", "analytics.md", "dashboard.html"]
    assert (out / "analytics" / "analytics.csv").read_bytes().count(b"\r\n") == 1 + 3
    assert "## Claude Code PR Summary" in proc.stdout and "### Totals Verification" in proc.stdout


def test_demo_samples_are_up_to_date(tmp_path):
    """The committed samples are what the generator writes (so they can be regenerated safely)."""
    import sys
    fresh_dir = tmp_path / "demo-projects"
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "build_demo_projects.py"),
                           str(fresh_dir)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    fresh = sorted(p.relative_to(fresh_dir) for p in fresh_dir.rglob("*") if p.is_file())
    kept = sorted(p.relative_to(DEMO_PROJECTS) for p in DEMO_PROJECTS.rglob("*") if p.is_file())
    assert fresh == kept
    for rel in kept:
        assert (fresh_dir / rel).read_bytes() == (DEMO_PROJECTS / rel).read_bytes(), rel
