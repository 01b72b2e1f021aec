"""extract and dashboard: from the fake GitHub through the real gh, from local transcripts, in chromium."""

from __future__ import annotations

import argparse
import base64
import copy
import csv
import hashlib
import io
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from chromium import npm_file, run_page, serve
from conftest import DEMO_PROJECTS, ROOT, reference_totals, run_cli, run_gh_cli, sa, stats_of

REPO = "o/r"
XSS_TITLE = "</script><script>alert(1)</script>"
FORMULA_TITLE = '=HYPERLINK("https://example.com/x")'
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def base_stats():
    return stats_of(DEMO_PROJECTS, "00b11888", "--repo", REPO)


def session(base: dict, n: int, cost: float, commits: int, started: str) -> dict:
    stats = copy.deepcopy(base)
    stats["session_id"] = f"{n:08x}-1111-4222-8333-444444444444"
    stats["session_id_short"] = stats["session_id"][:8]
    stats["estimated_cost_usd"] = cost
    stats["started_at"] = started
    stats["commits"] = [{"commit_id": f"{n:03x}{i:04x}", "message": f"commit {i}"} for i in range(commits)]
    stats["total_tokens"] = {"input": 100 * n, "output": 1000 * n, "cache_creation": 7 * n, "cache_read": 9 * n}
    return stats


def post(github, number: int, stats: dict, login="octo-bot", association=None):
    github.add_comment(REPO, number, sa.render_session_comment(stats), login=login, association=association)


def read_csv(path: Path) -> list[dict]:
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("\r\n")
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.fixture
def repository(github, base_stats):
    """PRs and issues with sessions, one without, one out of range, one whose calls fail."""
    github.add_pull(REPO, 1, "feat/one", title="Fix | the `login`\nflow", state="closed",
                    merged_at="2026-03-03T12:00:00Z", created_at="2026-03-02T12:00:00Z", additions=120,
                    deletions=30, review_comments=4)
    github.add_runs(REPO, 1, ["success", "failure", "success", None])
    post(github, 1, session(base_stats, 1, 12.4451, 2, "2026-03-02T13:00:00Z"))
    post(github, 1, session(base_stats, 2, 8.3249, 3, "2026-03-02T15:00:00Z"))
    github.add_pull(REPO, 2, "feat/two", title=FORMULA_TITLE, created_at="2026-03-05T08:00:00Z")
    post(github, 2, session(base_stats, 3, 1.005, 1, "2026-03-05T09:00:00Z"))
    post(github, 2, session(base_stats, 99, 999.0, 50, "2026-03-05T09:30:00Z"), login="mallory", association="NONE")
    github.add_pull(REPO, 3, "feat/three", title="No sessions here", created_at="2026-03-06T08:00:00Z")
    github.add_comment(REPO, 3, "LGTM", login="alice", association="MEMBER")
    github.add_issue(REPO, 4, XSS_TITLE, created_at="2026-03-07T08:00:00Z")
    post(github, 4, session(base_stats, 4, 0.5, 0, "2026-03-07T09:00:00Z"))
    github.add_pull(REPO, 5, "feat/five", title="Flaky", created_at="2026-03-08T08:00:00Z")
    post(github, 5, session(base_stats, 5, 3.0, 1, "2026-03-08T09:00:00Z"))
    github.fail("GET", r"/pulls/5$", 500, times=99)
    github.graphql_unresolved.add(5)        # so the batched query leaves #5 to REST, which fails
    github.add_pull(REPO, 6, "feat/six", title="Too late", created_at="2026-04-02T08:00:00Z")
    post(github, 6, session(base_stats, 6, 5.0, 1, "2026-04-02T09:00:00Z"))
    return github


def test_extract_from_github_writes_csv_report_json_and_dashboard(repository, tmp_path):
    out = tmp_path / "out"
    proc = run_gh_cli(repository, "--phase", "extract", "--repo", REPO, "--from", "2026-03-01", "--to",
                      "2026-03-31", "--output-dir", out)
    assert proc.returncode == 12, proc.stderr
    assert "#5 not read: GET repos/o/r/pulls/5: injected failure (HTTP 500)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("session-analytics: error: 1 PR or issue could not be read; "
                                                    "the files hold the rest")
    assert "skipped comment" in proc.stderr and "@mallory" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["analytics.csv", "analytics.json", "analytics.md",
                                                     "dashboard.html"]
    header = (out / "analytics.csv").read_bytes().decode().split("\r\n", 1)[0]
    assert header == ",".join(sa.CSV_COLUMNS) and len(sa.CSV_COLUMNS) == 30
    rows = read_csv(out / "analytics.csv")
    assert [(r["pr_number"], r["session_id"][:8]) for r in rows] == [
        ("1", "00000001"), ("1", "00000002"), ("2", "00000003"), ("4", "00000004")]
    first = rows[0]
    assert first["target_type"] == "pr" and first["pr_status"] == "merged" and first["acceptance_status"] == "merged"
    assert first["pr_title"] == "Fix | the `login`\nflow"
    assert (first["ci_runs"], first["ci_pass_rate"]) == ("4", "66.7")
    assert (first["lines_added"], first["lines_removed"], first["review_comments"]) == ("120", "30", "4")
    assert first["time_to_merge_hours"] == "24.0"
    assert first["commit_shas"] == "0010000;0010001" and first["commits_count"] == "2"
    assert first["skills_used"] == "tdd:ci,rca:ci"
    assert json.loads(first["per_skill_tokens"]) == {"rca:ci": {"in": 8, "out": 2480}, "tdd:ci": {"in": 15, "out": 1930}}
    assert json.loads(first["per_subagent_tokens"]) == {"Explore": {"in": 6, "out": 440}}
    assert rows[2]["pr_title"] == "'" + FORMULA_TITLE                     # neutralised, not a formula
    assert rows[3]["target_type"] == "issue" and rows[3]["pr_title"] == XSS_TITLE
    assert rows[3]["ci_runs"] == "" and rows[3]["lines_added"] == ""

    report = (out / "analytics.md").read_text()
    cost_sum = sum(float(r["estimated_cost_usd"]) for r in rows)
    assert f"| Total cost | {sa.format_cost(cost_sum)} |" in report
    assert f"| Total sessions | {len(rows)} |" in report
    assert f"| Total commits | {sum(int(r['commits_count']) for r in rows)} |" in report
    assert "| PRs with session data | 2 |" in report and "| Issues with session data | 1 |" in report
    assert "| PR acceptance rate | 100% |" in report and "| Average time to merge | 24h |" in report
    assert "## Not Read\n\n- #5: GET repos/o/r/pulls/5: injected failure (HTTP 500)" in report
    per_pr = report.split("## Per-PR Breakdown")[1].split("## Model Usage")[0]
    assert "| \\#1 | pr | Fix \\| the \\`login\\` flow | merged | 2 | $20.77 | 5 |" in per_pr
    assert sa.format_cost(cost_sum) == "$22.28"         # 12.4451 + 8.3249 + 1.005 + 0.5 = 22.275, half up
    data = json.loads((out / "analytics.json").read_text())
    assert data["failures"] == [{"number": 5, "error": "GET repos/o/r/pulls/5: injected failure (HTTP 500)"}]
    assert [i["number"] for i in data["items"]] == [1, 2, 4]


def test_a_rerun_is_byte_identical_and_dashboard_phase_regenerates_the_page(repository, tmp_path):
    args = ("--phase", "extract", "--repo", REPO, "--from", "2026-03-01", "--to", "2026-03-31", "--quiet")
    run_gh_cli(repository, *args, "--output-dir", tmp_path / "a")
    run_gh_cli(repository, *args, "--output-dir", tmp_path / "b")
    for name in ("analytics.csv", "analytics.md", "analytics.json", "dashboard.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    page = (tmp_path / "a" / "dashboard.html").read_bytes()
    (tmp_path / "a" / "dashboard.html").unlink()
    proc = run_cli("--phase", "dashboard", "--output-dir", tmp_path / "a", env={"PATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a" / "dashboard.html").read_bytes() == page


def test_more_than_a_thousand_prs_and_issues_in_range_are_all_read(github, base_stats, tmp_path):
    for n in range(1, 1051):
        day = 1 + (n - 1) * 27 // 1050
        github.add_issue(REPO, n, f"Issue {n}", created_at=f"2026-01-{day:02d}T{n % 24:02d}:00:00Z")
    for n in (1, 500, 1050):
        post(github, n, session(base_stats, n, 1.0, 1, "2026-01-15T00:00:00Z"))
    proc = run_gh_cli(github, "--phase", "extract", "--repo", REPO, "--from", "2026-01-01", "--to", "2026-01-31",
                      "--output-dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(int(r["pr_number"]) for r in read_csv(tmp_path / "analytics.csv")) == [1, 500, 1050]
    # listed, not searched (search stops at 1,000): pages of 10, 20, 40, 80, then 100 issues
    assert len(github.graphql_queries) == 4 + 9 and not [p for _, p, _ in github.requests if "/api/v3/" in p]


def test_extract_from_local_transcripts_needs_no_github(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("--phase", "extract", "--source", "local", "--projects-dir", DEMO_PROJECTS, "--output-dir", out,
                   "--from", "2026-01-01", "--to", "2026-12-31", env={"PATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(out / "analytics.csv")
    expected = reference_totals(DEMO_PROJECTS)
    assert sorted(r["session_id"] for r in rows) == sorted(s for s in expected if s.startswith(("00b1", "a3f9")))
    for r in rows:
        assert [int(r["total_input_tokens"]), int(r["total_output_tokens"]), int(r["total_cache_create"]),
                int(r["total_cache_read"])] == expected[r["session_id"]]
        for column in ("pr_number", "target_type", "pr_title", "pr_author", "pr_status", "ci_runs",
                       "review_comments", "lines_added", "time_to_merge_hours", "acceptance_status"):
            assert r[column] == ""
    report = (out / "analytics.md").read_text()
    assert "| Total sessions | 2 |" in report and "**Repository:** local transcripts" in report
    assert f"| Total cost | {sa.format_cost(sum(float(r['estimated_cost_usd']) for r in rows))} |" in report


def test_csv_cells_are_rfc4180_and_formulas_are_neutralised():
    assert [sa.csv_cell(v) for v in ("=1+1", "+1", "-cmd", "@SUM(A1)", "\tx", "\rx", "plain", 5, -3, 1.5, None)] == [
        "'=1+1", "'+1", "'-cmd", "'@SUM(A1)", "'\tx", "'\rx", "plain", "5", "-3", "1.5", ""]
    text = sa.render_csv([[1, "pr", 'a "quoted", multi\nline', *[""] * 26]])
    back = list(csv.reader(io.StringIO(text, newline="")))
    assert back[1][2] == 'a "quoted", multi\nline' and len(back[1]) == 29


@pytest.mark.parametrize("args,code,message", [
    (["--phase", "extract", "--repo", REPO, "--output-dir", "x"], 2, "extract from GitHub needs --since and --until"),
    (["--phase", "extract", "--source", "local", "--from", "2026-02-01", "--to", "2026-01-01", "--output-dir", "x"],
     2, "--since 2026-02-01 is after --until 2026-01-01"),
    (["--phase", "extract", "--source", "local"], 2, "extract needs --output-dir DIR"),
    (["--phase", "dashboard", "--output-dir", "empty"], 4,
     "extract's analytics.json not found: empty/analytics.json (run `extract` first)"),
    (["--phase", "extract", "--source", "local", "--output-dir", "x", "--chartjs", "missing.js"], 4,
     "cannot read --chartjs missing.js"),
])
def test_extract_and_dashboard_errors_are_one_line(tmp_path, args, code, message):
    projects = ["--projects-dir", DEMO_PROJECTS] if "extract" in args else []
    proc = run_cli(*args, *projects, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr


def test_pinned_chartjs_cdn_url_and_sri_match_the_locked_npm_package():
    lock = json.loads((ROOT / "tests" / "browser" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/chart.js"]["version"] == sa.CHARTJS_VERSION
    digest = hashlib.sha384(npm_file("chart.js/dist/chart.umd.min.js").read_bytes()).digest()
    assert sa.CHARTJS_SRI == "sha384-" + base64.b64encode(digest).decode()
    page = sa.render_dashboard({"items": [], "from": "", "to": ""})
    assert f'<script src="{sa.CHARTJS_URL}" integrity="{sa.CHARTJS_SRI}" crossorigin="anonymous"' in page


def test_data_in_the_page_cannot_close_its_script_element():
    data = {"items": [{"number": 1, "type": "pr", "title": XSS_TITLE + "<!-- \u2028 &amp;", "status": "open",
                       "created_at": "2026-03-01T00:00:00Z", "sessions": []}], "repo": "<b>o/r</b>"}
    page = sa.render_dashboard(data)
    assert XSS_TITLE not in page and "<b>o/r</b>" not in page
    embedded = re.search(r'<script type="application/json" id="analytics-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in embedded and json.loads(embedded)["items"][0]["title"].startswith(XSS_TITLE)
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


# ── the dashboard in headless chromium ──

HARNESS = """<!doctype html>
<html><head><meta charset="utf-8"></head><body>
<pre id="result"></pre>
<script>
window.__errors = []; window.__alerts = [];
const prelude = '<script>window.alert = function (m) {{ parent.__alerts.push(String(m)); }};' +
  'window.addEventListener("error", function (e) {{ parent.__errors.push(String(e.message)); }});' +
  'var ce = console.error; console.error = function () {{ parent.__errors.push([].join.call(arguments, " ")); ce.apply(console, arguments); }};<\\/script>';
fetch('{page}').then(r => r.text()).then(html => {{
  const frame = document.createElement('iframe');
  frame.style.width = '1280px'; frame.style.height = '2000px';
  frame.onload = () => setTimeout(() => {{
    const doc = frame.contentDocument;
    const canvases = {{}};
    doc.querySelectorAll('canvas').forEach(c => {{
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let painted = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
      canvases[c.id] = painted;
    }});
    document.getElementById('result').textContent = JSON.stringify({{
      canvases: canvases, errors: window.__errors, alerts: window.__alerts,
      scripts: doc.querySelectorAll('script').length, chart: typeof frame.contentWindow.Chart,
      text: doc.body.innerText, empty: doc.querySelectorAll('.empty').length,
      noData: !!doc.getElementById('no-data')}});
    document.body.setAttribute('data-done', 'yes');
  }}, 1500);
  frame.srcdoc = html.replace('<head>', '<head>' + prelude);
  document.body.appendChild(frame);
}});
</script></body></html>
"""


def open_dashboard(folder: Path, tmp_path: Path, screenshot: str | None = None) -> tuple[dict, str]:
    (folder / "harness.html").write_text(HARNESS.format(page="dashboard.html"))
    with serve(folder) as base:
        proc = run_page(f"{base}/harness.html", tmp_path / "profile")
        if screenshot:
            ARTIFACTS.mkdir(exist_ok=True)
            run_page(f"{base}/dashboard.html", tmp_path / "profile2", budget_ms=5000,
                     screenshot=ARTIFACTS / screenshot, size="1280,2200")
    assert 'data-done="yes"' in proc.stdout, proc.stderr[-2000:]
    result = json.loads(re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S).group(1)
                        .replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&"))
    return result, proc.stderr


def test_dashboard_draws_five_charts_without_errors_and_shows_hostile_titles_as_text(repository, tmp_path):
    out = tmp_path / "out"
    proc = run_gh_cli(repository, "--phase", "extract", "--repo", REPO, "--from", "2026-03-01", "--to", "2026-03-31",
                      "--output-dir", out, "--chartjs", npm_file("chart.js/dist/chart.umd.min.js"), "--quiet")
    assert proc.returncode == 12, proc.stderr
    result, stderr = open_dashboard(out, tmp_path, screenshot="dashboard.png")
    assert result["chart"] == "function"
    assert sorted(result["canvases"]) == ["acceptance-trend", "cost-per-pr", "model-distribution",
                                          "skills-frequency", "tokens-over-time"]
    blank = {k: v for k, v in result["canvases"].items() if v < 200}
    assert not blank, f"charts left blank: {blank}"
    assert result["errors"] == [] and result["alerts"] == []
    assert result["scripts"] == 3 + 1          # Chart.js, the data, the page's script, plus the test's prelude
    assert XSS_TITLE in result["text"] and FORMULA_TITLE in result["text"]
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
    assert not [l for l in stderr.splitlines() if "CONSOLE" in l and "Uncaught" in l]


def test_empty_period_gives_a_page_that_says_so(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("--phase", "extract", "--source", "local", "--projects-dir", DEMO_PROJECTS, "--from", "2030-01-01",
                   "--to", "2030-12-31", "--output-dir", out, "--chartjs", npm_file("chart.js/dist/chart.umd.min.js"))
    assert proc.returncode == 0, proc.stderr
    assert read_csv(out / "analytics.csv") == []
    assert "_No sessions in this period._" in (out / "analytics.md").read_text()
    result, _ = open_dashboard(out, tmp_path)
    assert result["noData"] and result["errors"] == [] and result["canvases"] == {}
    assert "No sessions were found for this period" in result["text"]
    assert result["text"].count("No data for this chart in this period.") == len(sa.LOCAL_PANELS)


def test_a_repository_comes_in_one_graphql_query_with_rest_only_for_what_it_left(repository, tmp_path):
    proc = run_gh_cli(repository, "--phase", "extract", "--repo", REPO, "--from", "2026-03-01", "--to",
                      "2026-03-31", "--output-dir", tmp_path, "--quiet")
    assert proc.returncode == 12, proc.stderr
    assert len(repository.graphql_queries) == 1                  # PRs and issues, comments, facts, CI runs
    assert sorted(p for _, p, _ in repository.requests if "/api/v3/" in p) == [
        "/api/v3/repos/o/r/pulls/5"] * sa.GH_ATTEMPTS            # the PR whose facts the page left out


def test_over_rest_comments_and_ci_runs_come_from_repository_wide_listings(repository, monkeypatch, tmp_path):
    gathered(repository, monkeypatch, False, tmp_path)
    paths = [p for _, p, _ in repository.requests]
    assert not [p for p in paths if re.search(r"/issues/\d+/comments$", p)]      # no call per item
    assert [q for _, p, q in repository.requests if p.endswith("/actions/runs")] == [
        {"created": ">=2026-02-15", "per_page": "100", "page": "1"}]               # 14 days before the range


def test_more_runs_than_a_page_or_a_listing_holds_are_asked_of_each_pull_request(github, base_stats, monkeypatch,
                                                                                  tmp_path):
    github.add_pull(REPO, 1, "busy", created_at="2026-03-02T12:00:00Z")
    github.add_runs(REPO, 1, ["success"] * 1001)
    post(github, 1, session(base_stats, 1, 1.0, 1, "2026-03-02T13:00:00Z"))
    github.add_pull(REPO, 2, "calm", created_at="2026-03-03T12:00:00Z")
    github.add_runs(REPO, 2, ["success", "failure"])
    post(github, 2, session(base_stats, 2, 1.0, 1, "2026-03-03T13:00:00Z"))
    proc = run_gh_cli(github, "--phase", "extract", "--repo", REPO, "--from", "2026-03-01", "--to", "2026-03-31",
                      "--output-dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {r["pr_number"]: r for r in read_csv(tmp_path / "analytics.csv")}
    assert (rows["1"]["ci_runs"], rows["1"]["ci_pass_rate"]) == ("1001", "100.0")
    assert (rows["2"]["ci_runs"], rows["2"]["ci_pass_rate"]) == ("2", "50.0")
    own = lambda: sum(1 for _, p, q in github.requests if p.endswith("/actions/runs") and "head_sha" in q)  # noqa: E731
    assert own() == 1                                   # the page held #2's runs, not #1's
    items, _ = gathered(github, monkeypatch, False, tmp_path)     # over REST: past the listing's cap of 1,000
    assert [(i["ci_runs"], i["ci_pass_rate"]) for i in items] == [(1001, 100.0), (2, 50.0)] and own() == 1 + 2


def test_progress_line_appears_on_long_runs_only_and_quiet_silences_it(capsys):
    now = [0.0]
    progress = sa.Progress("extract: PRs and issues read", 5, quiet=False, clock=lambda: now[0])
    for t in (0.5, 2.5, 2.9, 4.0, 4.2):
        now[0] = t
        progress.step()
    assert capsys.readouterr().err.splitlines() == [
        "session-analytics: extract: PRs and issues read: 2/5",
        "session-analytics: extract: PRs and issues read: 4/5",
        "session-analytics: extract: PRs and issues read: 5/5"]
    quiet = sa.Progress("extract", 3, quiet=True, clock=lambda: now[0])
    now[0] = 100.0
    for _ in range(3):
        quiet.step()
    assert capsys.readouterr().err == ""


def test_the_local_dashboard_has_no_empty_panel_on_the_real_fixtures(tmp_path):
    """Without GitHub: cost over time, per project, skills, models and top sessions, all drawn."""
    from test_pricing import REAL_2026
    out = tmp_path / "out"
    proc = run_cli("--phase", "extract", "--source", "local", "--projects-dir", REAL_2026, "--output-dir", out,
                   "--chartjs", npm_file("chart.js/dist/chart.umd.min.js"))
    assert proc.returncode == 0, proc.stderr
    result, stderr = open_dashboard(out, tmp_path, screenshot="dashboard-local.png")
    assert sorted(result["canvases"]) == ["cost-over-time", "model-distribution", "project-cost",
                                          "skills-frequency", "tokens-over-time", "top-sessions"]
    blank = {k: v for k, v in result["canvases"].items() if v < 200}
    assert not blank, f"charts left blank: {blank}"
    assert result["errors"] == [] and "No data" not in result["text"] and "None in this period" not in result["text"]
    for gone in ("PR acceptance", "Avg. time to merge", "Cost per PR", "Acceptance rate trend"):
        assert gone not in result["text"]
    # session rows name the project, its home folder as ~ (the default level of a local extract is
    # team), and never the title: it may be the first prompt
    assert "~/Projects/Active/strato" in result["text"] and "/Users/sam" not in (out / "dashboard.html").read_text()
    assert "Code review session" not in result["text"]
    assert "consolidate-swift-libs-monorepo" not in result["text"]       # a custom title: a name the user typed


# ── GraphQL pages across repositories, REST where they cannot answer ──

def gathered(github, monkeypatch, graphql: bool, tmp_path: Path, repos=(REPO,)):
    """(items, failures) as extract gathers them: over GraphQL with REST for what it leaves, or
    over REST alone."""
    for key, value in github.env.items():
        monkeypatch.setenv(key, value)              # the environment gh runs in, as a user's shell
    client = sa.GitHub(REPO, base_delay=0.01)
    since, until = sa.parse_ts("2026-03-01T00:00:00Z"), sa.parse_ts("2026-03-31T23:59:59Z")
    if not graphql:
        return sa.gather_github(client, since, until, {"github-actions[bot]"}, True)
    args = argparse.Namespace(privacy=None, resume=False, quiet=True, trusted_authors="github-actions[bot]")
    items, failures, _ = sa.gather_repositories(client, args, {r: "?" for r in repos}, since, until, tmp_path)
    return items, failures


def test_the_graphql_pages_give_what_the_rest_listings_give(repository, base_stats, monkeypatch, tmp_path):
    repository.graphql_unresolved.clear()
    repository.faults.clear()
    repository.add_issue(REPO, 7, "Many comments", created_at="2026-03-09T08:00:00Z")
    for n in range(101):                            # more than a page holds: read over REST
        repository.add_comment(REPO, 7, f"note {n}", login="alice", association="MEMBER")
    post(repository, 7, session(base_stats, 7, 1.0, 0, "2026-03-09T09:00:00Z"))
    repository.add_pull(REPO, 8, "feat/bot", created_at="2026-03-10T08:00:00Z")
    post(repository, 8, session(base_stats, 8, 2.0, 0, "2026-03-10T09:00:00Z"), login="github-actions[bot]")
    over_rest = gathered(repository, monkeypatch, False, tmp_path)
    requests = len(repository.requests)
    over_graphql = gathered(repository, monkeypatch, True, tmp_path)
    assert over_graphql == over_rest and len(over_rest[0]) == 6
    assert len(repository.graphql_queries) == 1
    # REST only for what the page could not hold: #7's 102 comments (two pages of them)
    assert {p for _, p, _ in repository.requests[requests:] if "/api/v3/" in p} == {
        "/api/v3/repos/o/r/issues/7/comments"}


def test_a_failed_graphql_query_falls_back_to_rest(repository, monkeypatch, tmp_path):
    repository.graphql_unresolved.clear()
    repository.faults.clear()
    expected = gathered(repository, monkeypatch, False, tmp_path)
    repository.fail("POST", r"/api/graphql$", 502, times=99)
    assert gathered(repository, monkeypatch, True, tmp_path) == expected


def test_a_repository_graphql_cannot_read_is_read_over_rest_and_the_others_are_not(repository, base_stats,
                                                                                  monkeypatch, tmp_path):
    repository.graphql_unresolved.clear()
    repository.faults.clear()
    repository.add_pull("o/other", 1, "feat/x", created_at="2026-03-02T08:00:00Z")
    repository.add_comment("o/other", 1, sa.render_session_comment(session(base_stats, 50, 1.0, 0, "2026-03-02T09:00:00Z")))
    repository.graphql_forbidden.add(REPO)
    items, failures = gathered(repository, monkeypatch, True, tmp_path, repos=(REPO, "o/other"))
    assert failures == [] and sorted((i["repository"], i["number"]) for i in items) == [
        ("o/other", 1), (REPO, 1), (REPO, 2), (REPO, 4), (REPO, 5)]
    rest = {p.split("/")[5] for _, p, _ in repository.requests if p.startswith("/api/v3/repos/")}
    assert rest == {"r"}


def test_200_prs_in_pages_that_grow(github, base_stats, monkeypatch, tmp_path):
    for n in range(1, 201):
        github.add_pull(REPO, n, f"feat/{n}", created_at=f"2026-03-{1 + n % 28:02d}T08:00:00Z", additions=n)
        post(github, n, session(base_stats, n, 0.01, 0, f"2026-03-{1 + n % 28:02d}T09:00:00Z"))
    items, failures = gathered(github, monkeypatch, True, tmp_path)
    assert failures == [] and len(items) == 200 and sorted(i["additions"] for i in items) == list(range(1, 201))
    assert [re.findall(r"pullRequests\(first: (\d+)", q) for q in github.graphql_queries] == [
        ["10"], ["20"], ["40"], ["80"], ["100"]]
    assert not [p for _, p, _ in github.requests if "/api/v3/" in p]


def test_a_query_that_fails_is_asked_again_with_first_pages_before_rest(github, base_stats, monkeypatch, tmp_path):
    for n in range(1, 31):
        github.add_pull(REPO, n, f"feat/{n}", created_at=f"2026-03-{n:02d}T08:00:00Z" if n < 29 else
                        "2026-03-28T09:00:00Z")
        post(github, n, session(base_stats, n, 0.01, 0, "2026-03-28T10:00:00Z"))
    real, failed = sa.GitHub.graphql, []

    def times_out_on_big_pages(self, query, **variables):   # as GitHub does past ten seconds, say
        if re.search(r"first: (?:[2-9]\d|100)\b, after", query):
            failed.append(query)
            raise sa.GitHubError("POST graphql: timed out (HTTP 502)", sa.EXIT_GITHUB, 502)
        return real(self, query, **variables)
    monkeypatch.setattr(sa.GitHub, "graphql", times_out_on_big_pages)
    items, failures = gathered(github, monkeypatch, True, tmp_path)
    assert failures == [] and sorted(i["number"] for i in items) == list(range(1, 31))
    assert [re.findall(r"pullRequests\(first: (\d+)", q) for q in github.graphql_queries] == [
        ["10"], ["10"], ["10"]]                 # the page of 20 failed; the rest were asked at 10
    assert len(failed) == 1
    assert not [p for _, p, _ in github.requests if "/api/v3/" in p]


def test_each_round_of_pages_says_how_many_prs_and_issues_it_has_listed(github, base_stats, monkeypatch):
    for n in range(1, 31):
        github.add_pull(REPO, n, f"feat/{n}", created_at=f"2026-03-{n:02d}T08:00:00Z" if n < 29 else
                        "2026-03-28T09:00:00Z")
    for key, value in github.env.items():
        monkeypatch.setenv(key, value)
    listed, finished = [], []
    left = sa.read_repositories(sa.GitHub(REPO), [REPO], sa.parse_ts("2026-03-01T00:00:00Z"),
                                sa.parse_ts("2026-03-31T23:59:59Z"), set(),
                                lambda *read: finished.append(read), listed.append)
    assert left == [] and listed == [10, 30] and finished == [(REPO, "private", [], [])]


def pull_node(number=1, comments=(), head="abc", **extra) -> dict:
    """A PR as a GraphQL page gives it."""
    return {"number": number, "title": "A PR", "state": "OPEN", "createdAt": "2026-03-02T08:00:00Z",
            "closedAt": None, "author": {"__typename": "User", "login": "alice"}, "mergedAt": None,
            "additions": 1, "deletions": 0, "headRefOid": head,
            "comments": {"totalCount": len(comments), "nodes": list(comments)},
            "reviews": {"totalCount": 0, "nodes": []},
            "commits": {"nodes": [{"commit": {"oid": head, "checkSuites": {"totalCount": 0, "nodes": []}}}]},
            **extra}


def read_crafted(monkeypatch, replies: list, rest_comments=()):
    """read_repositories of o/r against GraphQL replies made by hand: (repositories it left to
    REST, what it finished, warnings, GraphQL calls, REST listings)."""
    calls, listings, warnings, finished = [], [], [], []

    def graphql(self, query, **variables):
        calls.append(variables)
        return replies[len(calls) - 1]

    def listing(self, path, **fields):
        listings.append(path)
        return list(rest_comments)
    monkeypatch.setattr(sa.GitHub, "graphql", graphql)
    monkeypatch.setattr(sa.GitHub, "list", listing)
    left = sa.read_repositories(sa.GitHub(REPO, warn=warnings.append), [REPO], sa.parse_ts("2026-03-01T00:00:00Z"),
                                sa.parse_ts("2026-03-31T23:59:59Z"), set(), lambda *read: finished.append(read))
    return left, finished, warnings, calls, listings


def page(kind: str, nodes: list, more=False, cursor="c1") -> dict:
    return {"visibility": "PUBLIC", kind: {"pageInfo": {"hasNextPage": more, "endCursor": cursor}, "nodes": nodes}}


def test_an_item_github_could_not_give_sends_its_repository_to_rest(monkeypatch):
    reply = ({"s0": page("pullRequests", [None]), "s1": page("issues", [])},
             [{"path": ["s0", "pullRequests", "nodes", 0, "commits"], "message": "Something went wrong"}])
    left, finished, warnings, _, _ = read_crafted(monkeypatch, [reply])
    assert left == [REPO] and finished == [] and warnings == [
        f"{REPO} over GraphQL: Something went wrong; reading it over REST"]


def test_a_next_page_promised_without_a_new_cursor_goes_to_rest_instead_of_round_and_round(monkeypatch):
    first = ({"s0": page("pullRequests", [pull_node()], more=True, cursor=None), "s1": page("issues", [])}, [])
    left, finished, warnings, calls, _ = read_crafted(monkeypatch, [first])
    assert left == [REPO] and len(calls) == 1 and "a next page without a cursor" in warnings[0]
    again = ({"s0": page("pullRequests", [pull_node(2)], more=True, cursor="c1")}, [])
    first = ({"s0": page("pullRequests", [pull_node()], more=True, cursor="c1"), "s1": page("issues", [])}, [])
    left, _, _, calls, _ = read_crafted(monkeypatch, [first, again])
    assert left == [REPO] and len(calls) == 2                # the same cursor twice: no third call


def test_a_comment_github_could_not_give_is_read_over_rest_with_the_rest_of_its_item(monkeypatch, base_stats):
    body = sa.render_session_comment(session(base_stats, 1, 1.0, 0, "2026-03-02T09:00:00Z"))
    rest = [{"id": 9, "body": body, "user": {"login": "octo-bot"}, "author_association": "OWNER",
             "created_at": "2026-03-02T09:00:00Z", "updated_at": "2026-03-02T09:00:00Z"}]
    node = pull_node(comments=[None])
    left, finished, _, _, listings = read_crafted(
        monkeypatch, [({"s0": page("pullRequests", [node]), "s1": page("issues", [])}, [])], rest)
    [(name, visibility, items, failures)] = finished
    assert left == [] and listings == [f"repos/{REPO}/issues/1/comments"] and failures == []
    assert [s["session_id"] for s in items[0]["sessions"]] == [session(base_stats, 1, 1.0, 0, "")["session_id"]]


def test_a_pages_ci_runs_count_a_rerun_once_and_only_on_the_head_commit_and_a_deleted_author_is_ghost():
    suites = {"totalCount": 3, "nodes": [
        {"status": "COMPLETED", "conclusion": "FAILURE", "workflowRun": {"databaseId": 7}},
        {"status": "COMPLETED", "conclusion": "SUCCESS", "workflowRun": {"databaseId": 7}},    # its re-run
        {"status": "COMPLETED", "conclusion": "SUCCESS", "workflowRun": None}]}                # not Actions
    node = pull_node(author=None, commits={"nodes": [{"commit": {"oid": "abc", "checkSuites": suites}}]})
    issue, comments, pull, runs = sa.rest_shapes(node, "pullRequests")
    assert runs == {"abc": [{"status": "completed", "conclusion": "success"}]}
    assert issue["user"] == {"login": "ghost"} and comments == [] and pull["head"] == {"sha": "abc"}
    node["commits"]["nodes"][0]["commit"]["oid"] = "older"        # the last commit listed is not the head
    assert sa.rest_shapes(node, "pullRequests")[3] is None       # so the runs are asked of REST by head sha


def test_the_graphql_budget_running_low_waits_for_the_reset_or_stops_for_resume(github, base_stats, monkeypatch):
    github.add_pull(REPO, 1, "feat/1", created_at="2026-03-02T08:00:00Z")
    slept = []
    client = sa.GitHub(REPO, sleep=slept.append, max_wait=120)
    soon = {"rateLimit": {"remaining": 20, "resetAt": sa.format_ts(time.time() + 60)}}
    sa.wait_for_points(client, [soon, {"rateLimit": {"remaining": 4000}}])
    assert len(slept) == 1 and 55 < slept[0] <= 62
    sa.wait_for_points(client, [{"rateLimit": {"remaining": sa.GRAPHQL_RESERVE + 1, "cost": 1}}])
    assert len(slept) == 1                                          # enough left: no wait
    plenty = {"rateLimit": {"remaining": 400, "cost": 3, "resetAt": sa.format_ts(time.time() + 30)}}
    sa.wait_for_points(client, [plenty], queries=100)               # 400 - 100 x 3 leaves the reserve
    assert len(slept) == 1
    sa.wait_for_points(client, [plenty], queries=120)               # a round of 120 would eat into it
    assert len(slept) == 2
    later = {"rateLimit": {"remaining": 3, "resetAt": sa.format_ts(time.time() + 3000)}}
    with pytest.raises(sa.GitHubError) as raised:
        sa.wait_for_points(client, [later])
    assert raised.value.code == sa.EXIT_RATE_LIMIT and "--resume" in str(raised.value)


GITHUB_SCHEMA = ROOT / "tests" / "github-schema"


def github_schema_errors(query: str) -> list[str]:
    """The errors of validating a query against GitHub's published GraphQL schema (pinned)."""
    assert (GITHUB_SCHEMA / "node_modules" / "@octokit" / "graphql-schema").is_dir(), \
        "run `npm ci` in tests/github-schema (make test does)"
    proc = subprocess.run(["node", "validate.mjs"], input=query, capture_output=True, text=True,
                          cwd=GITHUB_SCHEMA, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_query_gh_sent_is_valid_against_githubs_schema(github, base_stats, monkeypatch, tmp_path):
    """The fake server answers whatever it is asked; GitHub's schema is the check that GitHub would."""
    for repo in (REPO, "o/other"):
        for n in range(1, 16):                      # a second page: a cursor, and PR streams alone
            github.add_pull(repo, n, f"feat/{n}", created_at="2026-03-02T08:00:00Z")
            github.add_comment(repo, n, sa.render_session_comment(session(base_stats, n, 0.01, 0,
                                                                          "2026-03-02T09:00:00Z")))
    gathered(github, monkeypatch, True, tmp_path, repos=(REPO, "o/other"))
    assert len(github.graphql_queries) == 2 and "...Issue" not in github.graphql_queries[1]
    assert github.graphql_variables[1]["c0"]
    for query in github.graphql_queries:
        assert github_schema_errors(query) == []
    # the validator is real: a field PullRequest lacks is caught
    wrong = sa.streams_query([sa.Stream(REPO, "pullRequests")])[0].replace("headRefOid", "headSha")
    errors = github_schema_errors(wrong)
    assert len(errors) == 1 and errors[0].startswith('Cannot query field "headSha" on type "PullRequest".')
