"""For a team lead: what a merged PR cost against one closed unmerged, per commit, and a budget per
PR that the summary states, CI can fail on, and the extract report lists. Every figure is checked
against sums computed by hand from the fixture below."""

from __future__ import annotations

import json
import time

import pytest

from conftest import run_cli, run_gh_cli, sa
from test_extract import REPO, base_stats, post, session  # noqa: F401  (base_stats: a fixture)

# PR: (state, merged_at, [(session cost, commits)])
OUTCOMES = {1: ("closed", "2026-03-04T12:00:00Z", [(4.00, 1), (6.00, 2)]),
            2: ("closed", "2026-03-06T12:00:00Z", [(2.50, 1)]),
            3: ("closed", None, [(7.50, 2)]),
            4: ("open", None, [(1.00, 0)])}


@pytest.fixture
def team_repository(github, base_stats):  # noqa: F811
    n = 0
    for number, (state, merged_at, sessions) in OUTCOMES.items():
        github.add_pull(REPO, number, f"feat/{number}", title=f"PR {number}", state=state, merged_at=merged_at,
                        created_at=f"2026-03-0{number}T08:00:00Z")
        for cost, commits in sessions:
            n += 1
            post(github, number, session(base_stats, n, cost, commits, f"2026-03-0{number}T09:{n:02d}:00Z"))
    return github


def extract(github, tmp_path, *extra):
    proc = run_gh_cli(github, "extract", "--repo", REPO, "--since", "2026-03-01", "--until", "2026-03-31",
                      "--output-dir", tmp_path, "--quiet", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads((tmp_path / "analytics.json").read_text()), (tmp_path / "analytics.md").read_text()


def test_what_a_merged_pr_cost_against_one_closed_unmerged(team_repository, tmp_path):
    data, report = extract(team_repository, tmp_path)
    outcomes = sa.analytics_view(data)["outcomes"]
    # by hand: merged #1 10.00 and #2 2.50; closed unmerged #3 7.50; open #4 1.00; 6 commits
    assert outcomes["merged"] == {"prs": 2, "total_usd": 12.5, "median_usd": 6.25, "cost_complete": True}
    assert outcomes["closed_unmerged"] == {"prs": 1, "total_usd": 7.5, "median_usd": 7.5, "cost_complete": True}
    assert outcomes["unmerged_share_percent"] == round(100 * 7.5 / 21.0, 1)
    assert (outcomes["per_commit_usd"], outcomes["commits"]) == (3.5, 6)
    assert "| Cost per merged PR (median) | $6.25 | 2 merged PRs |" in report
    assert "| Cost of PRs closed unmerged (total) | $7.50 | 1 closed PR |" in report
    assert "| Share of PR spend on PRs never merged | 35.7% | 4 PRs |" in report
    assert "| Cost per commit | $3.50 | 6 commits |" in report


def skill(name, status, cost, count=1):
    return {"skill": name, "count": count, "status": status, "cost_usd": cost,
            "tokens": {"input": 10, "output": 100, "cache_creation": 0, "cache_read": 0}}


def test_what_failed_skill_runs_cost_by_skill_and_in_all(github, base_stats, tmp_path):  # noqa: F811
    runs = {1: [[skill("tdd:ci", "fail", 1.25, 2), skill("rca:ci", "pass", 0.50)],
                [skill("tdd:ci", "fail", 2.00)]],
            2: [[skill("tdd:ci", "pass", 0.75), skill("rca:ci", "fail", None)]]}      # None: an unpriced model
    n = 0
    for number, sessions in runs.items():
        github.add_pull(REPO, number, f"feat/{number}", created_at=f"2026-03-0{number}T08:00:00Z")
        for skills in sessions:
            n += 1
            stats = session(base_stats, n, 5.0, 1, f"2026-03-0{number}T09:{n:02d}:00Z")
            stats["skills_invoked"] = skills
            post(github, number, stats)
    data, report = extract(github, tmp_path)
    # by hand: tdd:ci failed in two sessions, 1.25 + 2.00; rca:ci in one, of unknown cost
    skills = sa.analytics_view(data)["skills"]
    assert (skills["tdd:ci"]["fail"], skills["tdd:ci"]["fail_cost"], skills["tdd:ci"]["fail_cost_complete"]) == \
        (2, 3.25, True)
    assert (skills["tdd:ci"]["cost"], skills["rca:ci"]["cost"], skills["rca:ci"]["cost_complete"]) == (4.0, 0.5, False)
    assert data["outcomes"]["failed_skill_runs"] == {"runs": 3, "skills": 2, "cost_usd": 3.25, "cost_complete": False}
    assert "| Cost of failed skill runs | ≥ $3.25 | 3 failed skill runs of 2 skills |" in report
    assert "| tdd:ci | 3 | 4 | 1 | 2 | 0 | 30 | 300 | 75 | $4.00 | $3.25 |" in report
    page = (tmp_path / "dashboard.html").read_text()
    assert "<h2>What the spend bought</h2>" in page and "By month" not in page     # one month: no table
    assert "<td>Cost of failed skill runs</td><td>≥ $3.25</td><td>3 failed skill runs of 2 skills</td>" in page


def test_the_report_lists_the_prs_over_budget(team_repository, tmp_path):
    data, report = extract(team_repository, tmp_path, "--budget-usd", "5")
    assert data["budget_usd"] == 5.0
    over = report[report.index("## Over Budget ($5.00 a PR)"):]
    assert "| \\#1 | PR 1 | merged | $10.00 | 200% |" in over and "| \\#3 | PR 3 | closed | $7.50 | 150% |" in over
    assert "#2" not in over and "#4" not in over


def summary(github, *extra, cwd=None):
    return run_gh_cli(github, "summary", "--repo", REPO, "--number", "1", *extra, cwd=cwd)


def test_a_pr_over_its_budget_is_marked_in_the_summary_and_fails_ci_when_asked(team_repository):
    proc = summary(team_repository, "--budget-usd", "8", "--fail-over-budget")
    assert proc.returncode == 14
    assert proc.stderr.strip().splitlines()[-1] == "session-analytics: error: over budget: the sessions cost 125.0% of $8.00"
    [body] = [c["body"] for c in team_repository.comments_on(REPO, 1) if c["body"].startswith("<!-- SESSION_SUMMARY -->")]
    assert "**over budget** (125.0% of $8.00)" in body and "- Budget: $10.00 of $8.00 = 125.0% (**over budget**)" in body
    assert sa.comment_data(body, sa.SUMMARY_DATA_TITLE)["budget"] == {"usd": 8.0, "used_percent": 125.0, "over": True,
                                                                      "cost_complete": True}
    under = summary(team_repository, "--budget-usd", "20", "--fail-over-budget")
    assert under.returncode == 0, under.stderr
    [body] = [c["body"] for c in team_repository.comments_on(REPO, 1) if c["body"].startswith("<!-- SESSION_SUMMARY -->")]
    assert "50.0% of its $20.00 budget" in body


def test_the_budget_comes_from_the_repositorys_settings_unless_given(team_repository, tmp_path):
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "session-analytics.json").write_text('{"budget_usd": 9}')
    from_settings = summary(team_repository, "--dry-run", "--fail-over-budget", cwd=tmp_path)
    assert from_settings.returncode == 14 and "of $9.00" in from_settings.stderr
    flag_wins = summary(team_repository, "--dry-run", "--fail-over-budget", "--budget-usd", "50", cwd=tmp_path)
    assert flag_wins.returncode == 0 and "20.0% of its $50.00 budget" in flag_wins.stdout
    (tmp_path / ".claude" / "session-analytics.json").write_text('{"budget_usd": "lots"}')
    wrong = summary(team_repository, "--dry-run", cwd=tmp_path)
    assert wrong.returncode == 2 and "a budget must be a positive number of USD" in wrong.stderr


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf"])
def test_a_budget_that_is_not_a_positive_amount_is_a_usage_error(tmp_path, value):
    proc = run_cli("summary", "--dry-run", "--stats-file", tmp_path / "x.json", "--budget-usd", value)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


# ── list --by branch, repository, skill ──

def rollup_of(*args) -> dict:
    proc = run_cli("list", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return {tuple(g[k] for k in json.loads(proc.stdout)["by"]): g for g in json.loads(proc.stdout)["groups"]}


def test_sessions_sum_by_branch_and_by_the_repository_of_their_folder(tmp_path):
    import subprocess
    from conftest import Transcript, usage
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "remote", "add", "origin", "git@github.com:acme/widgets.git"], check=True)
    projects = tmp_path / "projects"
    for n, (cwd, branch, tokens) in enumerate([(str(work), "feat/a", 100), (str(work), "feat/b", 200),
                                              ("/nowhere", "feat/a", 400)], 1):
        sid = f"0e0e0e0e-0000-4000-8000-00000000000{n}"
        Transcript(projects / f"-p{n}" / f"{sid}.jsonl", sid, cwd=cwd, branch=branch) \
            .prompt("go").assistant(f"msg_{n}", usage(tokens, 10)).write()
    by_branch = rollup_of("--projects-dir", projects, "--by", "branch")
    assert {k: g["total_tokens"]["input"] for k, g in by_branch.items()} == {("feat/a",): 500, ("feat/b",): 200}
    by_repo = rollup_of("--projects-dir", projects, "--by", "repository")
    assert {k: g["sessions"] for k, g in by_repo.items()} == {("acme/widgets",): 2, ("unknown",): 1}


def test_a_session_counts_once_in_each_skill_it_ran(tmp_path):
    from conftest import DEMO_PROJECTS, ROOT
    groups = rollup_of("--projects-dir", DEMO_PROJECTS, "--skills-dir", ROOT / "tests" / "fixtures" / "skills",
                       "--by", "skill")
    # 00b11888 ran tdd:ci and rca:ci (its whole $0.5173 in each); a3f92bc1 ($0.0669) and f7e01d4a ($0.0431) none
    assert {k: (g["sessions"], g["estimated_cost_usd"]) for k, g in groups.items()} == {
        ("rca:ci",): (1, 0.5173), ("tdd:ci",): (1, 0.5173), ("(none)",): (2, 0.11)}
    proc = run_cli("list", "--projects-dir", DEMO_PROJECTS, "--by", "skill", "--by", "model")
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr


# ── several local histories ──

def test_histories_from_several_machines_count_a_shared_session_once_from_its_longest_copy(tmp_path):
    from conftest import Transcript, usage
    def write(history, sid, calls):
        t = Transcript(tmp_path / history / "-repo" / f"{sid}.jsonl", sid).prompt("go")
        for n in range(calls):
            t.assistant(f"msg_{sid[:8]}_{n}", usage(100, 10))
        t.write()
    shared, only_a, only_b = (f"0f0f0f0{n}-0000-4000-8000-000000000000" for n in range(3))
    write("a", shared, 1)            # copied while the session ran
    write("b", shared, 3)            # the same session, finished, on the other machine
    write("a", only_a, 1)
    write("b", only_b, 2)
    rows = json.loads(run_cli("list", "--json", "--projects-dir", tmp_path / "a", "--projects-dir",
                              tmp_path / "b").stdout)
    assert {r["session_id"]: r["total_tokens"]["input"] for r in rows} == {shared: 300, only_a: 100, only_b: 200}
    stats = json.loads(run_cli("stats", "--projects-dir", tmp_path / "a", "--projects-dir", tmp_path / "b",
                               "--session-id", only_b[:8]).stdout)
    assert stats["total_tokens"]["input"] == 200
    missing = run_cli("list", "--projects-dir", tmp_path / "a", "--projects-dir", tmp_path / "gone")
    assert missing.returncode == 3 and "cannot read projects folder" in missing.stderr


# ── one extract over an organisation's repositories, by person ──

def org_post(github, repo, number, stats, login, association="MEMBER"):
    github.add_comment(repo, number, sa.render_session_comment(stats), login=login, association=association)


@pytest.fixture
def organisation(github, base_stats):  # noqa: F811
    """acme/api (public, topic service), acme/web (private, topic service), acme/docs (docs only)."""
    github.visibility.update({"acme/api": "public", "acme/web": "private", "acme/docs": "private"})
    github.topics.update({"acme/api": ["service"], "acme/web": ["service", "frontend"], "acme/docs": ["docs"]})
    github.add_pull("acme/api", 1, "a1", title="API one", state="closed", merged_at="2026-03-03T12:00:00Z",
                    created_at="2026-03-02T08:00:00Z", user="alice")
    org_post(github, "acme/api", 1, session(base_stats, 1, 3.00, 1, "2026-03-02T09:00:00Z"), "alice")
    org_post(github, "acme/api", 1, session(base_stats, 2, 2.00, 1, "2026-03-02T10:00:00Z"), "bob")
    github.add_pull("acme/web", 7, "w7", title="Web seven", created_at="2026-03-04T08:00:00Z", user="dave")
    ci = session(base_stats, 3, 4.00, 2, "2026-03-04T09:00:00Z")
    ci["github_actor"] = "carol"                     # posted by a workflow that carol started
    org_post(github, "acme/web", 7, ci, "github-actions[bot]", association="NONE")
    org_post(github, "acme/web", 7, session(base_stats, 4, 1.00, 0, "2026-03-04T10:00:00Z"),
             "github-actions[bot]", association="NONE")     # no actor recorded: the PR's author
    github.add_pull("acme/docs", 3, "d3", title="Docs", created_at="2026-03-05T08:00:00Z", user="erin")
    org_post(github, "acme/docs", 3, session(base_stats, 5, 9.00, 1, "2026-03-05T09:00:00Z"), "erin")
    return github


def org_extract(github, tmp_path, *extra):
    proc = run_gh_cli(github, "extract", "--since", "2026-03-01", "--until", "2026-03-31", "--output-dir", tmp_path,
                      "--trusted-authors", "github-actions[bot]", "--quiet", *extra)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "analytics.json").read_text())
    return data, (tmp_path / "analytics.md").read_text(), (tmp_path / "analytics.csv").read_text()


def test_an_organisation_is_extracted_whole_with_a_repository_column_and_sums_by_person(organisation, tmp_path):
    data, report, csv_text = org_extract(organisation, tmp_path, "--org", "acme", "--exclude", "docs")
    assert data["repositories"] == ["acme/api", "acme/web"] and data["repo"] is None
    # public acme/api makes the whole dataset public
    assert data["privacy"] == "public"
    header, *rows = csv_text.splitlines()
    assert header.startswith("repository,pr_number,") and header.endswith(",session_author")
    assert sorted((r.split(",")[0], r.split(",")[-1]) for r in rows) == [
        ("acme/api", "alice"), ("acme/api", "bob"), ("acme/web", "carol"), ("acme/web", "dave")]
    view = sa.analytics_view(data)
    # by hand: api 3.00 + 2.00; web 4.00 + 1.00
    assert {k: (g["sessions"], g["cost"], g["commits"]) for k, g in view["repositories"].items()} == {
        "acme/api": (2, 5.0, 2), "acme/web": (2, 5.0, 2)}
    assert {k: g["cost"] for k, g in view["authors"].items()} == {"carol": 4.0, "alice": 3.0, "bob": 2.0, "dave": 1.0}
    assert "## By Repository" in report and "| carol | 1 | $4.00 | 2 |" in report


def test_topics_narrow_an_organisation_and_a_user_account_is_read_as_one(organisation, tmp_path):
    data, _, _ = org_extract(organisation, tmp_path / "a", "--org", "acme", "--topic", "frontend")
    assert data["repo"] == "acme/web" and "repositories" not in data      # one repository: today's files
    organisation.users.add("acme")
    data, _, _ = org_extract(organisation, tmp_path / "b", "--org", "acme", "--topic", "docs")
    assert data["repo"] == "acme/docs" and [i["number"] for i in data["items"]] == [3]


def test_repositories_named_one_by_one_are_extracted_together(organisation, tmp_path):
    data, _, csv_text = org_extract(organisation, tmp_path, "--repo", "acme/web", "--repo", "acme/docs")
    assert data["repositories"] == ["acme/web", "acme/docs"] and data["privacy"] == "team"
    assert len(csv_text.splitlines()) == 1 + 3


def test_an_interrupted_organisation_extract_resumes_without_reading_again_what_it_had(organisation, tmp_path):
    organisation.graphql_forbidden.add("acme/web")                              # so it is read over REST,
    organisation.fail("GET", r"/repos/acme/web/issues$", 404, times=1)          # where it is cut short
    first = run_gh_cli(organisation, "extract", "--org", "acme", "--since", "2026-03-01", "--until", "2026-03-31",
                       "--output-dir", tmp_path, "--trusted-authors", "github-actions[bot]", "--quiet")
    assert first.returncode == 8 and not (tmp_path / "analytics.json").exists()
    kept = sorted(tmp_path.glob(".extract-partial/repository-*.json"))
    assert sorted(json.loads(path.read_text())["repository"] for path in kept) == ["acme/api", "acme/docs"]
    organisation.requests.clear()
    organisation.graphql_variables.clear()
    organisation.graphql_forbidden.clear()
    again = run_gh_cli(organisation, "extract", "--org", "acme", "--since", "2026-03-01", "--until", "2026-03-31",
                       "--output-dir", tmp_path, "--trusted-authors", "github-actions[bot]", "--quiet", "--resume")
    assert again.returncode == 0, again.stderr
    assert not [path for _, path, _ in organisation.requests if path.startswith("/api/v3/repos/")]
    assert {name for variables in organisation.graphql_variables for key, name in variables.items()
            if key.startswith("n")} == {"web"}
    data = json.loads((tmp_path / "analytics.json").read_text())
    assert sorted({i["repository"] for i in data["items"]}) == ["acme/api", "acme/docs", "acme/web"]
    assert not (tmp_path / ".extract-partial").exists()
    fresh, _, _ = org_extract(organisation, tmp_path / "fresh", "--org", "acme")
    assert fresh["items"] == data["items"]


def test_a_resume_reads_again_a_damaged_repository_file_and_starts_over_for_another_range(organisation, tmp_path):
    def cut_short(*extra):
        organisation.graphql_forbidden.add("acme/web")
        organisation.fail("GET", r"/repos/acme/web/issues$", 404, times=1)
        return run_gh_cli(organisation, "extract", "--org", "acme", "--since", "2026-03-01", "--until", "2026-03-31",
                          "--output-dir", tmp_path, "--quiet", *extra)

    def resumed(since):
        organisation.graphql_forbidden.clear()
        organisation.graphql_variables.clear()
        proc = run_gh_cli(organisation, "extract", "--org", "acme", "--since", since, "--until", "2026-03-31",
                          "--output-dir", tmp_path, "--resume")
        assert proc.returncode == 0, proc.stderr
        read = {name for variables in organisation.graphql_variables for key, name in variables.items()
                if key.startswith("n")}
        return read, proc.stderr

    assert cut_short().returncode == 8
    [docs] = [p for p in tmp_path.glob(".extract-partial/repository-*.json") if "acme/docs" in p.read_text()]
    docs.write_text('{"repository": "acme/docs", "le')                   # a disk that filled up, say
    read, stderr = resumed("2026-03-01")
    assert read == {"docs", "web"} and "reading that repository again" in stderr
    assert cut_short().returncode == 8
    read, stderr = resumed("2026-03-02")
    assert read == {"api", "docs", "web"} and "from another range or other settings: starting over" in stderr


def test_a_spent_graphql_budget_stops_the_run_and_resume_reads_only_what_is_left(organisation, base_stats, tmp_path):
    for n in range(10, 25):                         # acme/api needs a second page of PRs
        organisation.add_pull("acme/api", n, f"a{n}", created_at=f"2026-03-{n:02d}T08:00:00Z", user="alice")
    organisation.graphql_points = 1                 # one query left in this hour
    organisation.graphql_reset = sa.format_ts(time.time() + 3600)
    args = ("extract", "--org", "acme", "--since", "2026-03-01", "--until", "2026-03-31", "--output-dir", tmp_path,
            "--trusted-authors", "github-actions[bot]", "--quiet")
    first = run_gh_cli(organisation, *args)
    assert first.returncode == sa.EXIT_RATE_LIMIT, first.stderr
    assert "GitHub's GraphQL budget is spent (0 points left until" in first.stderr and "--resume" in first.stderr
    assert len(organisation.graphql_queries) == 1 and not (tmp_path / "analytics.json").exists()
    kept = [json.loads(p.read_text())["repository"] for p in tmp_path.glob(".extract-partial/repository-*.json")]
    assert sorted(kept) == ["acme/docs", "acme/web"]                   # read whole in that one query
    organisation.graphql_points = 0                 # and when GitHub itself says the budget is spent
    refused = run_gh_cli(organisation, *args, "--resume")
    assert refused.returncode == sa.EXIT_RATE_LIMIT and "rate limited by GitHub" in refused.stderr
    organisation.graphql_points = 5000
    organisation.graphql_variables.clear()
    again = run_gh_cli(organisation, *args, "--resume")
    assert again.returncode == 0, again.stderr
    assert {v for variables in organisation.graphql_variables for k, v in variables.items() if k.startswith("n")} == {
        "api"}
    fresh, _, _ = org_extract(organisation, tmp_path / "fresh", "--org", "acme")
    assert json.loads((tmp_path / "analytics.json").read_text())["items"] == fresh["items"]


def test_the_dashboard_shows_the_spend_by_repository_and_by_person(organisation, tmp_path):
    org_extract(organisation, tmp_path, "--org", "acme", "--exclude", "docs")
    page = (tmp_path / "dashboard.html").read_text()
    assert "<h2>By repository</h2>" in page and "<h2>By person</h2>" in page
    assert "<td>carol</td><td class=\"n\">1</td><td class=\"n\">$4.00</td>" in page


def test_the_report_and_dashboard_sum_the_spend_by_month_when_the_range_spans_several(github, base_stats,  # noqa: F811
                                                                                       tmp_path):
    for number, (day, cost) in enumerate([("2026-01-30", 1.25), ("2026-02-02", 2.00), ("2026-02-27", 0.50)], 1):
        github.add_pull(REPO, number, f"feat/{number}", created_at=f"{day}T08:00:00Z")
        post(github, number, session(base_stats, number, cost, number, f"{day}T09:00:00Z"))
    proc = run_gh_cli(github, "extract", "--repo", REPO, "--since", "2026-01-01", "--until", "2026-02-28",
                      "--output-dir", tmp_path, "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "analytics.md").read_text()
    # by hand: January 1.25 and 1 commit; February 2.00 + 0.50 and 2 + 3 commits
    months = report[report.index("## By Month"):]
    assert months.index("| 2026-01 | 1 | $1.25 | 1 |") < months.index("| 2026-02 | 2 | $2.50 | 5 |")
    page = (tmp_path / "dashboard.html").read_text()
    assert '<h2>By month</h2>' in page and '<td>2026-02</td><td class="n">2</td><td class="n">$2.50</td>' in page


def test_a_comment_posted_from_a_workflow_records_who_started_it(tmp_path):
    from conftest import DEMO_PROJECTS
    def posted_actor(actor):
        proc = run_cli("comment", "--dry-run", "--offline", "--projects-dir", DEMO_PROJECTS, "--session-id",
                       "00b11888", env={"GITHUB_ACTOR": actor})
        assert proc.returncode == 0, proc.stderr
        return sa.comment_data(proc.stdout, sa.SESSION_DATA_TITLE).get("github_actor")
    assert posted_actor("carol") == "carol"
    assert posted_actor("not a login; rm -rf") is None                 # never text that is not a login
    data = {"github_actor": "carol"}
    assert sa.session_author("github-actions[bot]", data) == "carol" and sa.session_author("alice", data) == "alice"
