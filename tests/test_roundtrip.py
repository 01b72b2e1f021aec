"""The GitHub round trip through the real gh: a session whose every text field is hostile is
posted, re-posted without a write, posted on an issue, summed and extracted exactly.

The fake server answers as GitHub does (see github_json in fake_github.py): `<`, `>`, `&` and
non-ASCII literal, C0, DEL and C1 controls as \\u00XX. gh (2.23 on Debian 12) rewrites every
\\u00XX it sees in a response, so a body must never carry one.
"""

from __future__ import annotations

import csv
import io
import json
import re

from conftest import Transcript, run_gh_cli, sa, usage
from test_comment import assert_tables_intact, render_gfm

REPO = "o/r"
SID = "4057113e-0000-4000-8000-000000000001"
HOSTILE = ('& < > " \\ \\u0026 <!-- x --> ``` | @mention\nnext\tcol \x1b[31m red \x85 \x9b '
           '\U0001F680 \u05e9\u05dc\u05d5\u05dd \u202eevil')


def hostile_session(projects):
    """Branch, commit messages, skills, problems, subagents and a model name all carry HOSTILE."""
    t = Transcript(projects / "-work-r" / f"{SID}.jsonl", SID, cwd="/work/r", branch="feat/" + HOSTILE,
                   start="2026-03-02T10:00:00Z")
    t.prompt("go")
    t.tool_use("m1", "skill1", "Skill", {"skill": "tdd:" + HOSTILE}, usage(100, 200, cr=1000),
               model="claude-opus-4-6")
    t.tool_result("skill1", "Launching skill")
    t.tool_use("m2", "bash1", "Bash", {"command": "make lint && make test " + HOSTILE}, usage(10, 20),
               model="claude-opus-4-6")
    t.tool_result("bash1", "lint failed", is_error=True)
    t.tool_use("m3", "bash2", "Bash", {"command": "git commit -m x"}, usage(10, 20), model="claude-opus-4-6")
    t.tool_result("bash2", f"[feat/x 1a2b3c4] Commit {HOSTILE}\n 1 file changed")
    t.tool_use("m4", "agent1", "Agent", {"subagent_type": "Explore " + HOSTILE, "description": "Look " + HOSTILE,
                                         "prompt": "look"}, usage(10, 20), model="claude-opus-4-6")
    t.tool_result("agent1", "done", tool_use_result={"agentId": "a1b2c3"})
    t.assistant("m5", usage(1000, 3000), model="claude-" + HOSTILE)
    t.write()
    sub = Transcript(projects / "-work-r" / SID / "subagents" / "agent-a1b2c3.jsonl", SID, cwd="/work/r",
                     start="2026-03-02T10:01:00Z")
    sub.prompt("look", sidechain=True, agent="a1b2c3")
    sub.assistant("s1", usage(7, 70), model="claude-haiku-4-5", sidechain=True, agent="a1b2c3")
    sub.write()


def no_gh_rewrites(body: str) -> None:
    assert "\\u00" not in body
    assert not any(ch in body for ch in "\x1b\x85\x9b\x7f\t\r"), "a control character reached the body"


def comments(github, number, prefix):
    return [c for c in github.comments_on(REPO, number) if c["body"].startswith(prefix)]


def test_hostile_session_round_trips_through_the_real_gh(github, tmp_path):
    projects = tmp_path / "projects"
    hostile_session(projects)
    github.add_pull(REPO, 7, "feat/x", title="Fix " + HOSTILE, created_at="2026-03-02T09:00:00Z")
    github.add_issue(REPO, 8, "Track " + HOSTILE, created_at="2026-03-02T09:30:00Z")
    stats_file = tmp_path / "stats.json"
    made = run_gh_cli(github, "--phase", "stats", "--projects-dir", projects, "--session-id", SID[:8],
                      "--repo", REPO, "-o", stats_file, "--quiet")
    assert made.returncode == 0, made.stderr
    stats = json.loads(stats_file.read_text())
    assert stats["branch"] == "feat/" + HOSTILE and stats["unpriced_models"] == ["claude-" + HOSTILE]

    post = ("--phase", "comment", "--stats-file", stats_file, "--repo", REPO)
    first = run_gh_cli(github, *post, "--target", "pr", "--number", "7")
    assert first.returncode == 0 and first.stdout.startswith("comment created"), first.stderr
    [posted] = comments(github, 7, "<!-- SESSION:")
    body = posted["body"]
    no_gh_rewrites(body)

    writes = len(github.writes)
    again = run_gh_cli(github, *post, "--target", "pr", "--number", "7")
    assert again.returncode == 0 and again.stdout.startswith("comment unchanged"), again.stderr + again.stdout
    assert len(github.writes) == writes and comments(github, 7, "<!-- SESSION:")[0]["body"] == body

    on_issue = run_gh_cli(github, *post, "--target", "issue", "--number", "8")
    assert on_issue.returncode == 0 and on_issue.stdout.startswith("comment created"), on_issue.stderr
    [issue_comment] = comments(github, 8, "<!-- SESSION:")
    no_gh_rewrites(issue_comment["body"])
    assert sa.comment_data(issue_comment["body"], sa.SESSION_DATA_TITLE)["target"] == {"type": "issue", "number": 8}

    # the data block gives back the session's data, control characters shown as what they were
    data = sa.comment_data(body, sa.SESSION_DATA_TITLE)
    # (the fake repository is private: the team level, where branch, commits and problems show)
    privacy = sa.Privacy("team", REPO, "feat/x", people=sa.machine_people())
    assert {k: v for k, v in data.items() if k != "target"} == \
        {k: v for k, v in sa.inert_data(sa.outbound_stats(stats, privacy)).items() if k != "target"}
    assert data["privacy"] == "team"
    assert data["target"] == {"type": "pr", "number": 7}
    assert data["branch"] == ("feat/" + HOSTILE).replace("\x1b", "\u241b").replace("\x85", "\ufffd") \
        .replace("\x9b", "\ufffd").replace("\\u0026", "\\u{0026}")
    assert data["total_tokens"] == stats["total_tokens"]

    summary = run_gh_cli(github, "--phase", "summary", "--repo", REPO, "--target", "pr", "--number", "7")
    assert summary.returncode == 0 and summary.stdout.startswith("summary created"), summary.stderr
    assert "skipped" not in summary.stderr
    [summary_comment] = comments(github, 7, "<!-- SESSION_SUMMARY -->")
    no_gh_rewrites(summary_comment["body"])
    totals = sa.comment_data(summary_comment["body"], sa.SUMMARY_DATA_TITLE)
    assert totals["session_count"] == 1 and totals["total_tokens"] == stats["total_tokens"]
    assert totals["estimated_cost_usd"] == sa.cents(stats["estimated_cost_usd"]) / 100
    assert totals["commits"] == 1 and totals["cost_complete"] is False
    writes = len(github.writes)
    summary_again = run_gh_cli(github, "--phase", "summary", "--repo", REPO, "--target", "pr", "--number", "7")
    assert summary_again.stdout.startswith("summary unchanged") and len(github.writes) == writes

    out = tmp_path / "out"
    extract = run_gh_cli(github, "--phase", "extract", "--repo", REPO, "--from", "2026-03-01", "--to", "2026-03-31",
                         "--output-dir", out, "--quiet")
    assert extract.returncode == 0, extract.stderr
    rows = list(csv.DictReader(io.StringIO((out / "analytics.csv").read_text(encoding="utf-8"))))
    assert [(r["pr_number"], r["session_id"]) for r in rows] == [("7", SID), ("8", SID)]
    for row in rows:
        assert row["models_used"] == ",".join(data["models"])
        assert row["skills_used"] == data["skills_invoked"][0]["skill"]
        assert row["commit_shas"] == "1a2b3c4" and row["commits_count"] == "1"
        assert json.loads(row["per_subagent_tokens"]) == {data["subagents"][0]["type"]: {"in": 7, "out": 70}}
        assert [int(row[k]) for k in ("total_input_tokens", "total_output_tokens", "total_cache_create",
                                      "total_cache_read")] == list(stats["total_tokens"].values())
        assert row["estimated_cost_usd"] == sa.csv_cost(stats) and row["problems_count"] == "1"

    for markdown, marker, tables in ((body, " SESSION:4057113e ", 5),
                                     (summary_comment["body"], " SESSION_SUMMARY ", 2)):
        parsed = render_gfm(markdown)
        assert parsed.comments == [marker]
        assert_tables_intact(parsed, tables)
        outside_code = re.sub(r"<(code|pre)>.*?</\1>", "", parsed.html, flags=re.S)
        assert "@mention" not in outside_code          # a mention pings no one: code, or broken by U+200B


def test_comments_written_the_old_way_are_read_back(github, tmp_path):
    """Earlier versions wrote <, > and & as \\u003c, \\u003e, \\u0026 in the data block; gh 2.23 turns
    those into \\<, \\> and \\& on the way back. The summary repairs them and counts the session."""
    projects = tmp_path / "projects"
    hostile_session(projects)
    github.add_pull(REPO, 7, "feat/x")
    stats_file = tmp_path / "stats.json"
    run_gh_cli(github, "--phase", "stats", "--projects-dir", projects, "--session-id", SID[:8], "-o", stats_file)
    stats = sa.inert_data(json.loads(stats_file.read_text()))
    body = sa.render_session_comment(stats)
    head, rest = body.split("```json\n", 1)
    block, tail = rest.split("\n```", 1)
    old_block = block.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    github.add_comment(REPO, 7, head + "```json\n" + old_block + "\n```" + tail)
    summary = run_gh_cli(github, "--phase", "summary", "--repo", REPO, "--number", "7")
    assert summary.returncode == 0, summary.stderr
    assert "skipped" not in summary.stderr
    [summary_comment] = comments(github, 7, "<!-- SESSION_SUMMARY -->")
    data = sa.comment_data(summary_comment["body"], sa.SUMMARY_DATA_TITLE)
    assert data["session_count"] == 1 and data["total_tokens"] == stats["total_tokens"]


def test_an_unreadable_block_is_named_with_the_reason(github, tmp_path):
    github.add_pull(REPO, 7, "feat/x")
    github.add_comment(REPO, 7, "<!-- SESSION:0badc0de -->\n<details><summary>Session Data (JSON)</summary>\n\n"
                                "```json\n{\"session_id\": \"0badc0de\", \n```\n\n</details>\n")
    summary = run_gh_cli(github, "--phase", "summary", "--repo", REPO, "--number", "7")
    assert summary.returncode == 0, summary.stderr
    [warning] = [line for line in summary.stderr.splitlines() if "skipped" in line]
    assert "comment" in warning and "Session Data (JSON) block is not valid JSON" in warning


def test_two_real_sessions_and_a_hostile_one_sum_exactly(github, tmp_path):
    from test_pricing import REAL_2026
    projects = tmp_path / "projects"
    hostile_session(projects)
    github.add_pull(REPO, 9, "main")
    posted = []
    for where, sid in ((REAL_2026, "8ecab05f"), (REAL_2026, "fa812bfe"), (projects, SID[:8])):
        stats_file = tmp_path / f"{sid}.json"
        made = run_gh_cli(github, "--phase", "stats", "--projects-dir", where, "--session-id", sid, "--repo", REPO,
                          "-o", stats_file, "--quiet")
        assert made.returncode == 0, made.stderr
        posted.append(json.loads(stats_file.read_text()))
        post = ("--phase", "comment", "--stats-file", stats_file, "--repo", REPO, "--target", "pr", "--number", "9")
        assert run_gh_cli(github, *post).stdout.startswith("comment created")
        assert run_gh_cli(github, *post).stdout.startswith("comment unchanged")
    assert any("&" in p["description"] for p in posted[0]["problems_faced"])      # `cd x && bun test`
    summary = run_gh_cli(github, "--phase", "summary", "--repo", REPO, "--target", "pr", "--number", "9")
    assert summary.returncode == 0 and "skipped" not in summary.stderr, summary.stderr
    [comment] = comments(github, 9, "<!-- SESSION_SUMMARY -->")
    data = sa.comment_data(comment["body"], sa.SUMMARY_DATA_TITLE)
    assert data["session_count"] == 3
    for key in ("input", "output", "cache_creation", "cache_read"):
        assert data["total_tokens"][key] == sum(p["total_tokens"][key] for p in posted)
    assert sa.cents(data["estimated_cost_usd"]) == sum(sa.cents(p["estimated_cost_usd"]) for p in posted)
    assert data["commits"] == sum(len(p["commits"]) for p in posted)
