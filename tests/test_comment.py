"""Comment and summary bodies: the documented layout (docs/commands.md), escaping checked by cmark-gfm,
size limits."""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from conftest import DEMO_PROJECTS, run_cli, run_gh_cli, sa, stats_of

NASTY_BRANCH = "fix/a|b`c`-->d\ne"
NASTY_MESSAGES = [
    "Use `x | y` --> z\n\nsecond paragraph",
    "<!-- SESSION:deadbeef --> </details> <details>",
    "cc @octocat | *bold* _it_ [link](http://x) ``` fence",
    "| starts with a pipe",
]


@pytest.fixture(scope="module")
def demo_stats():
    return stats_of(DEMO_PROJECTS, "00b11888", "--repo", "kagenti/kagenti", "--target", "pr", "--number", "652")


def nasty_stats(base: dict) -> dict:
    stats = copy.deepcopy(base)
    stats["branch"] = NASTY_BRANCH
    stats["commits"] = [{"commit_id": f"{i:07x}", "message": m} for i, m in enumerate(NASTY_MESSAGES)]
    stats["skills_invoked"][0]["skill"] = "tdd:ci|x`"
    stats["problems_faced"] = [{"description": "a | b `c` --> <b>x</b>\nnext", "resolved": False,
                                "iterations": 3}]
    stats["subagents"][0]["type"] = "Explore|x"
    stats["subagents"][0]["agent_id"] = "a|`b`"
    stats["tools"] = {"mcp__x|y": 2, **stats["tools"]}
    stats["models"]["claude-x|y"] = dict(next(iter(stats["models"].values())))
    return stats


# ── rendering with the real cmark-gfm ──

class _Tables(HTMLParser):
    """Counts cells per table row, and collects code spans, list items and comments."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.codes, self.items, self.comments = [], [], [], []
        self._row = None
        self._text = None
        self._item = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = 0
        elif tag in ("td", "th"):
            self._row += 1
        elif tag == "code":
            self._text = []
        elif tag == "li":
            self._item = []

    def handle_endtag(self, tag):
        if tag == "tr":
            self.tables[-1].append(self._row)
        elif tag == "code":
            self.codes.append("".join(self._text))
            self._text = None
        elif tag == "li":
            self.items.append("".join(self._item))
            self._item = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)
        if self._item is not None:
            self._item.append(data)

    def handle_comment(self, data):
        self.comments.append(data)


def render_gfm(markdown: str) -> _Tables:
    assert shutil.which("cmark-gfm"), "cmark-gfm is not installed: run .ci/run or apt-get install cmark-gfm"
    out = subprocess.run(["cmark-gfm", "--unsafe", "-e", "table", "-e", "autolink", "-e", "strikethrough"],
                         input=markdown, capture_output=True, text=True, check=True).stdout
    parsed = _Tables()
    parsed.feed(out)
    parsed.html = out
    return parsed


def assert_tables_intact(parsed: _Tables, expected_tables: int):
    assert len(parsed.tables) == expected_tables
    for rows in parsed.tables:
        assert len(set(rows)) == 1, f"a row lost or gained a cell: {rows}"


def test_nasty_data_breaks_no_table_code_span_or_marker(demo_stats):
    body = sa.render_session_comment(nasty_stats(demo_stats), privacy=sa.Privacy("full"))
    parsed = render_gfm(body)
    # tokens, subagents, skills, tools, problems: five tables, every row as wide as its header
    assert_tables_intact(parsed, 5)
    assert parsed.comments == [" SESSION:00b11888 "]
    # the data block keeps '<', '>' and '&' literal (inert in a fenced block): count tags outside it
    outside = re.sub(r"```json\n.*?\n```", "", body, flags=re.S)
    assert outside.count("<details>") == outside.count("</details>") == 2
    assert parsed.html.count("<details>") == 2
    # the branch is one code span holding exactly the branch (newline folded to a space)
    assert "fix/a|b`c`-->d e" in parsed.codes
    assert "a|`b`" not in body                  # not an agent id: it does not leave the machine
    # commit messages arrive as text, no markup, no mention
    texts = [html.unescape(i).replace("\u200b", "") for i in parsed.items]
    for i, message in enumerate(NASTY_MESSAGES):
        assert f"{i:07x} - {' '.join(message.split())}" in texts
    assert "<strong>bold" not in parsed.html and "<em>it" not in parsed.html and ">link</a>" not in parsed.html
    assert "@octocat" not in body.split(sa.SESSION_DATA_TITLE)[0]   # inside the code block it pings no one
    # and the JSON block gives back the exact data
    posted = sa.outbound_stats(nasty_stats(demo_stats), sa.Privacy("full"))
    assert sa.comment_data(body, sa.SESSION_DATA_TITLE) == posted
    assert sa.session_marker_id(body) == "00b11888"


def test_summary_of_nasty_sessions_keeps_its_tables(demo_stats):
    sessions = [nasty_stats(demo_stats), {**nasty_stats(demo_stats), "session_id": "ffff0000-1"}]
    body = sa.render_summary_comment(sa.summary_data(sessions, {"type": "pr", "number": 1}, "open"))
    parsed = render_gfm(body)
    assert_tables_intact(parsed, 2)
    assert parsed.comments == [" SESSION_SUMMARY "]
    assert len(parsed.tables[1]) == 3     # header and two sessions


def test_comment_follows_the_documented_layout(demo_stats):
    body = sa.render_session_comment(demo_stats, privacy=sa.Privacy("team", "kagenti/kagenti"))
    headings = re.findall(r"^#{2,3} .*$", body, re.MULTILINE)
    assert headings == ["## Claude Code Session Report", "### Token Usage", "### Subagents",
                        "### Skills & Tools", "### Problems Faced", "### Commits"]
    assert body.splitlines()[0] == "<!-- SESSION:00b11888 -->"
    assert "**TL;DR:** Session `00b11888` | haiku-4-5, opus-4-6 | 12m | $0.52 | 2 commits | tdd:ci, rca:ci" in body
    assert "**Session:** `00b11888` | **Branch:** `fix/keycloak-652` | **Duration:** 12m" in body
    assert "| **Total** | **23** | **4,410** | **34,700** | **255,200** | **$0.52** |" in body
    assert "| `a3d04c8` | Explore | haiku-4-5 | 6 | 440 |" in body
    assert "| tdd:ci | 1 | fail |" in body and "| rca:ci | 1 | pass |" in body
    assert "<details><summary>Tool Usage</summary>\n\n| Tool | Count |" in body
    assert "- `abc1234` - Fix keycloak token refresh\n- `def5678` - Add retry logic\n" in body
    assert "\n<sub>Privacy level: team (secrets and personal details removed).</sub>\n" in body
    assert body.endswith("```\n\n</details>\n")
    assert_tables_intact(render_gfm(body), 5)


def test_unpriced_models_are_named_not_priced_at_zero(demo_stats):
    stats = copy.deepcopy(demo_stats)
    stats["unpriced_models"] = ["claude-mystery-9"]
    stats["models"]["claude-mystery-9"] = {"messages": 1, "input_tokens": 5, "output_tokens": 5,
                                           "cache_creation_tokens": 0, "cache_read_tokens": 0, "cost_usd": None}
    body = sa.render_session_comment(stats)
    assert "| claude-mystery-9 | 5 | 5 | 0 | 0 | unknown |" in body
    assert ("_No price is known for `claude-mystery-9`; their tokens are not in the cost, "
            "which is a lower bound._") in body
    cost = sa.format_cents(sa.cents(stats["estimated_cost_usd"]))
    tldr = next(line for line in body.splitlines() if line.startswith("**TL;DR:**"))
    assert f"| ≥ {cost} |" in tldr and f"**≥ {cost}**" in body


@pytest.mark.parametrize("n,text", [(0, "0"), (241_558, "241,558"), (999_999, "999,999"),
                                    (56_722_690, "56.7M"), (458_575_867, "458.6M"), (1_400_000_000, "1.4B")])
def test_token_numbers_read_as_documented(n, text):
    assert sa.format_tokens(n) == text


@pytest.mark.parametrize("dollars,text", [(12.445, "$12.45"), (12.4449, "$12.44"), (0.005, "$0.01"),
                                          (1234.5, "$1,234.50"), (None, "unknown")])
def test_costs_round_half_up_to_cents(dollars, text):
    assert sa.format_cost(dollars) == text


# ── size limits ──

def huge_stats(base: dict) -> dict:
    stats = copy.deepcopy(base)
    stats["subagents"] = [{**base["subagents"][0], "agent_id": f"a{i:06x}", "description": f"subagent number {i} " * 4}
                          for i in range(300)]
    stats["commits"] = [{"commit_id": f"{i:040x}"[-40:], "message": f"Commit number {i}: " + "x" * 60}
                        for i in range(2000)]
    stats["problems_faced"] = [{"description": f"Bash failed: make test-{i}", "resolved": i % 2 == 0,
                                "iterations": 2} for i in range(400)]
    return stats


def test_a_300_subagent_2000_commit_session_fits_with_complete_json(demo_stats):
    stats = huge_stats(demo_stats)
    body = sa.render_session_comment(stats)
    assert len(body) <= sa.COMMENT_LIMIT
    data = sa.comment_data(body, sa.SESSION_DATA_TITLE)
    assert data is not None and sa.session_data(data, "00b11888")[1] is None
    assert sa.list_total(data, "commits") == 2000 and sa.list_total(data, "subagents") == 300
    assert sa.list_total(data, "problems_faced") == 400
    assert data["total_tokens"] == stats["total_tokens"] and data["models"] == stats["models"]
    assert "more commits (in the JSON below)" in body
    assert_tables_intact(render_gfm(body), 5)
    summary = sa.summary_data([data], None, None)
    assert summary["commits"] == 2000


def test_huge_session_posts_through_gh_and_counts_in_the_summary(github, demo_stats, tmp_path):
    github.add_pull("o/r", 652, "fix/keycloak-652")
    stats_file = tmp_path / "huge.json"
    stats_file.write_text(json.dumps(huge_stats(demo_stats)))
    proc = run_gh_cli(github, "--phase", "comment", "--stats-file", stats_file, "--repo", "o/r", "--number", 652)
    assert proc.returncode == 0, proc.stderr
    [comment] = github.comments_on("o/r", 652)
    assert len(comment["body"]) <= 65536
    proc = run_gh_cli(github, "--phase", "summary", "--repo", "o/r", "--number", 652)
    assert proc.returncode == 0, proc.stderr
    summary = sa.comment_data(github.comments_on("o/r", 652)[1]["body"], sa.SUMMARY_DATA_TITLE)
    assert summary["commits"] == 2000


def test_a_long_history_summary_still_fits(demo_stats):
    sessions = [{**demo_stats, "session_id": f"{i:08x}-0000"} for i in range(1500)]
    body = sa.render_summary_comment(sa.summary_data(sessions, {"type": "pr", "number": 1}, "open"))
    assert len(body) <= sa.COMMENT_LIMIT
    data = sa.comment_data(body, sa.SUMMARY_DATA_TITLE)
    assert data["session_count"] == 1500 and data["commits"] == 3000
    assert len(data["sessions"]) + data["omitted"]["sessions"] == 1500
    assert "- Sum of session costs: 1500 session costs = **$" in body


# ── summary arithmetic ──

def test_summary_sums_are_sums_of_the_rounded_session_costs(demo_stats):
    a = {**demo_stats, "session_id": "aaaa-1", "estimated_cost_usd": 12.445, "started_at": "2026-01-01T00:00:00Z"}
    b = {**demo_stats, "session_id": "bbbb-2", "estimated_cost_usd": 8.3249, "started_at": "2026-01-02T00:00:00Z"}
    summary = sa.summary_data([a, b], {"type": "pr", "number": 1}, "merged")
    assert summary["estimated_cost_usd"] == 20.77
    body = sa.render_summary_comment(summary)
    assert "- Sum of session costs: $12.45 + $8.32 = **$20.77**" in body
    assert "- Sum of session commits: 2 + 2 = **4**" in body
    assert "**TL;DR:** 2 sessions | $20.77 total | 4 commits | merged" in body
    assert "| 1 | `aaaa-1` | 12m | $12.45 | tdd:ci, rca:ci | 2 | done |" in body


def test_summary_dry_run_from_stats_files_needs_no_network(tmp_path, demo_stats):
    files = []
    for sid, cost in (("aaaa0001-x", 1.005), ("bbbb0002-y", 2.0)):
        path = tmp_path / f"{sid}.json"
        path.write_text(json.dumps({**demo_stats, "session_id": sid, "estimated_cost_usd": cost}))
        files += ["--stats-file", path]
    proc = run_cli("--phase", "summary", "--dry-run", *files, "--target", "issue", "--number", 3,
                   env={"PATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("<!-- SESSION_SUMMARY -->\n## Claude Code Issue Summary\n")
    assert "- Sum of session costs: $1.01 + $2.00 = **$3.01**" in proc.stdout


def test_comment_dry_run_is_byte_identical_and_offline(tmp_path):
    args = ("--phase", "comment", "--dry-run", "--projects-dir", DEMO_PROJECTS, "--session-id", "a3f92bc1",
            "--repo", "kagenti/kagenti", "--number", "652")
    first = run_cli(*args, env={"PATH": str(tmp_path)})
    assert first.returncode == 0, first.stderr
    assert first.stdout == run_cli(*args).stdout
    data = sa.comment_data(first.stdout, sa.SESSION_DATA_TITLE)
    assert data["target"] == {"type": "pr", "number": 652} and data["project"] == "kagenti/kagenti"


def test_the_title_is_never_posted(demo_stats):
    """A session's title may be its first prompt: it stays in local outputs."""
    stats = {**demo_stats, "title": "secret plan: rotate the prod keys"}
    body = sa.render_session_comment(stats)
    assert "secret plan" not in body and "title" not in sa.comment_data(body, sa.SESSION_DATA_TITLE)
