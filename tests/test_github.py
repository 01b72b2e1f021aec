"""The comment, summary and full pipeline through the real `gh` against a fake GitHub server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import Transcript, run_gh_cli, sa, usage

REPO = "o/r"


def small_session(projects, sid="5e55a001-0000-4000-8000-000000000001", cost_scale=1, branch="feat/x",
                  commits=("abc1234",)):
    """A one-project session with a commit; `cost_scale` changes its tokens."""
    t = Transcript(projects / "-work-r" / f"{sid}.jsonl", sid, cwd="/work/r", branch=branch)
    t.prompt("fix the bug")
    t.assistant(f"m1-{sid[:8]}", usage(inp=100 * cost_scale, out=2000 * cost_scale, cr=50_000),
                model="claude-opus-4-6")
    for i, sha in enumerate(commits):
        t.tool_use(f"mc{i}-{sid[:8]}", f"tc{i}", "Bash", {"command": "git commit -m fix"},
                   usage(inp=10, out=20), model="claude-opus-4-6")
        t.tool_result(f"tc{i}", f"[{branch} {sha}] Fix the bug number {i}\n 1 file changed")
    return t.write()


def comment_args(projects, sid, *extra):
    return ("--phase", "comment", "--projects-dir", projects, "--session-id", sid, "--repo", REPO,
            *extra)


@pytest.fixture
def pr(github):
    github.add_pull(REPO, 7, "feat/x", title="Fix the bug")
    return 7


def session_comments(github, number):
    return [c for c in github.comments_on(REPO, number) if c["body"].startswith("<!-- SESSION:")]


def body_json(body: str) -> dict:
    return sa.comment_data(body, sa.SESSION_DATA_TITLE)


# ── per-session comment ──

def test_posting_twice_leaves_one_comment_and_second_run_writes_nothing(github, pr, tmp_path):
    small_session(tmp_path)
    sid = "5e55a001"
    first = run_gh_cli(github, *comment_args(tmp_path, sid, "--target", "pr", "--number", pr))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("comment created: https://github.example/o/r/issues/7#issuecomment-")
    second = run_gh_cli(github, *comment_args(tmp_path, sid, "--target", "pr", "--number", pr))
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("comment unchanged: ")
    comments = session_comments(github, pr)
    assert len(comments) == 1
    assert github.writes == [("POST", "issues/7/comments")]
    data = body_json(comments[0]["body"])
    assert data["target"] == {"type": "pr", "number": 7} and data["project"] == REPO
    assert data["commits"] == [{"commit_id": "abc1234", "message": "Fix the bug number 0"}]
    assert comments[0]["body"].splitlines()[0] == "<!-- SESSION:5e55a001 -->"


def test_changed_session_updates_its_comment_in_place(github, pr, tmp_path):
    path = small_session(tmp_path)
    args = comment_args(tmp_path, "5e55a001", "--number", pr)
    assert run_gh_cli(github, *args).returncode == 0
    [before] = session_comments(github, pr)
    before = dict(before)
    with path.open("a") as handle:   # the session goes on: one more API call
        handle.write(json.dumps({
            "type": "assistant", "sessionId": "5e55a001-0000-4000-8000-000000000001",
            "uuid": "later", "timestamp": "2026-03-01T11:00:00Z", "cwd": "/work/r",
            "gitBranch": "feat/x", "requestId": "req-later",
            "message": {"id": "m-later", "model": "claude-opus-4-6", "role": "assistant",
                        "content": [{"type": "text", "text": "done"}],
                        "usage": {"input_tokens": 7, "output_tokens": 9}}}) + "\n")
    proc = run_gh_cli(github, *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("comment updated: ")
    [after] = session_comments(github, pr)
    assert after["id"] == before["id"]
    assert body_json(after["body"])["total_tokens"]["input"] == body_json(before["body"])["total_tokens"]["input"] + 7
    assert [w[0] for w in github.writes] == ["POST", "PATCH"]


def test_comment_goes_to_the_open_pr_of_the_current_branch(github, tmp_path):
    github.add_pull(REPO, 3, "other")
    github.add_pull(REPO, 9, "feat/x")
    work = tmp_path / "checkout"
    work.mkdir()
    for argv in (["init", "-q", "-b", "feat/x"], ["remote", "add", "origin", "git@github.com:o/r.git"]):
        subprocess.run(["git", "-C", work, *argv], check=True)
    small_session(tmp_path / "projects")
    proc = run_gh_cli(github, "--phase", "comment", "--projects-dir", tmp_path / "projects",
                      "--session-id", "5e55a001", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert len(session_comments(github, 9)) == 1 and not session_comments(github, 3)
    assert ("GET", "/api/v3/repos/o/r/pulls", {"head": "o:feat/x", "state": "open", "per_page": "100"}) \
        in github.requests


def test_no_open_pr_for_the_branch_is_a_clear_error(github, tmp_path):
    github.add_issue(REPO, 1)
    small_session(tmp_path, branch="lonely")
    proc = run_gh_cli(github, *comment_args(tmp_path, "5e55a001"), cwd=tmp_path)
    assert proc.returncode == 8
    assert proc.stderr.strip() == ("session-analytics: error: no open pull request for branch lonely "
                                   "in o/r; pass --target pr|issue --number N")


def test_issue_target_and_wrong_kind_warning(github, tmp_path):
    github.add_issue(REPO, 12, "Investigate flaky test")
    small_session(tmp_path)
    proc = run_gh_cli(github, *comment_args(tmp_path, "5e55a001", "--target", "pr", "--number", 12))
    assert proc.returncode == 0, proc.stderr
    assert "#12 is an issue, not a pull request" in proc.stderr
    [comment] = session_comments(github, 12)
    assert body_json(comment["body"])["target"] == {"type": "issue", "number": 12}


def test_someone_elses_comment_for_the_same_session_is_not_overwritten(github, pr, tmp_path):
    small_session(tmp_path)
    github.add_comment(REPO, pr, "<!-- SESSION:5e55a001 -->\nposted by a colleague", login="alice",
                       association="MEMBER")
    proc = run_gh_cli(github, *comment_args(tmp_path, "5e55a001", "--number", pr))
    assert proc.returncode == 0, proc.stderr
    bodies = [c["body"] for c in session_comments(github, pr)]
    assert bodies[0] == "<!-- SESSION:5e55a001 -->\nposted by a colleague" and len(bodies) == 2


# ── GitHub failures ──

def test_500_on_page_two_of_the_comment_list_retries_without_a_duplicate(github, pr, tmp_path):
    small_session(tmp_path)
    args = comment_args(tmp_path, "5e55a001", "--number", pr)
    for i in range(5):
        github.add_comment(REPO, pr, f"review note {i}", login="alice", association="MEMBER")
    assert run_gh_cli(github, *args).returncode == 0           # ours is now on page 3
    github.per_page_cap = 2
    github.fail("GET", r"/issues/7/comments$", 500, page=2)
    proc = run_gh_cli(github, *args)
    assert proc.returncode == 0, proc.stderr
    assert "retrying" in proc.stderr and proc.stdout.startswith("comment unchanged")
    assert len(session_comments(github, pr)) == 1


def test_a_list_that_keeps_failing_on_page_two_posts_nothing(github, pr, tmp_path):
    small_session(tmp_path)
    args = comment_args(tmp_path, "5e55a001", "--number", pr)
    for i in range(5):
        github.add_comment(REPO, pr, f"review note {i}", login="alice", association="MEMBER")
    assert run_gh_cli(github, *args).returncode == 0
    github.per_page_cap = 2
    github.fail("GET", r"/issues/7/comments$", 500, page=2, times=99)
    small_session(tmp_path, cost_scale=3)                       # a changed body would be written
    proc = run_gh_cli(github, *args)
    assert proc.returncode == 10
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "session-analytics: error: GET repos/o/r/issues/7/comments: injected failure (HTTP 500) "
        "(failed on page 2, after 1 page read)")
    assert len(session_comments(github, pr)) == 1 and github.writes == [("POST", "issues/7/comments")]


def test_a_create_that_fails_after_reaching_github_is_not_repeated(github, pr, tmp_path):
    small_session(tmp_path)
    github.fail("POST", r"/issues/7/comments$", 502, after=True)
    proc = run_gh_cli(github, *comment_args(tmp_path, "5e55a001", "--number", pr))
    assert proc.returncode == 0, proc.stderr
    assert "looking again before trying again" in proc.stderr
    assert len(session_comments(github, pr)) == 1


def test_rate_limit_retry_after_is_honoured(github, pr, tmp_path):
    small_session(tmp_path)
    github.fail("GET", r"/user$", 429, headers={"Retry-After": "1"})
    started = time.monotonic()
    proc = run_gh_cli(github, *comment_args(tmp_path, "5e55a001", "--number", pr))
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started >= 1.0
    assert "rate limited by GitHub" in proc.stderr and "retrying in 1.0s" in proc.stderr
    assert len(session_comments(github, pr)) == 1


def test_rate_limit_reset_far_away_fails_at_once_with_its_own_code(github, pr, tmp_path):
    small_session(tmp_path)
    github.fail("GET", r"/issues/7$", 403, times=9, message="API rate limit exceeded for user ID 1.",
                headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 3600)})
    proc = run_gh_cli(github, *comment_args(tmp_path, "5e55a001", "--number", pr))
    assert proc.returncode == 9
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "rate limited by GitHub" in proc.stderr and "try again later" in proc.stderr
    assert not github.writes


def test_server_errors_are_retried_a_bounded_number_of_times(github, pr, tmp_path):
    small_session(tmp_path)
    github.fail("GET", r"/issues/7$", 503, times=99)
    proc = run_gh_cli(github, *comment_args(tmp_path, "5e55a001", "--number", pr))
    assert proc.returncode == 10
    assert sum(1 for r in github.requests if r[1].endswith("/issues/7")) == sa.GH_ATTEMPTS
    assert proc.stderr.strip().splitlines()[-1] == \
        "session-analytics: error: GET repos/o/r/issues/7: injected failure (HTTP 503)"


@pytest.mark.parametrize("case,code,message", [
    ("missing-number", 8, "GET repos/o/r/issues/99: not found"),
    ("bad-token", 7, "gh is not authenticated for this host"),
    ("no-gh", 6, "gh (the GitHub CLI) is not installed"),
    ("too-long", 11, "GitHub rejected the request: Validation Failed (body is too long"),
    ("bad-repo", 2, "not a repository: 'nope'"),
])
def test_github_failures_give_one_line_and_a_distinct_code(github, pr, tmp_path, case, code, message):
    small_session(tmp_path)
    number, env, repo = pr, {}, REPO
    if case == "missing-number":
        number = 99
    elif case == "bad-token":
        env = {"GH_ENTERPRISE_TOKEN": "wrong"}
    elif case == "no-gh":
        env = {"PATH": str(tmp_path)}
    elif case == "too-long":
        github.body_limit = 500
    elif case == "bad-repo":
        repo = "nope"
    proc = run_gh_cli(github, "--phase", "comment", "--projects-dir", tmp_path, "--session-id", "5e55a001",
                      "--repo", repo, "--number", number, env=env)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert not session_comments(github, pr)


# ── summary ──

def post_session(github, projects, sid, number, **kw):
    small_session(projects, sid=sid, **kw)
    proc = run_gh_cli(github, *comment_args(projects, sid[:8], "--number", number))
    assert proc.returncode == 0, proc.stderr
    return body_json(session_comments(github, number)[-1]["body"])


def summary_of(github, number, *extra):
    proc = run_gh_cli(github, "--phase", "summary", "--repo", REPO, "--number", number, *extra)
    assert proc.returncode == 0, proc.stderr
    [comment] = [c for c in github.comments_on(REPO, number) if c["body"].startswith("<!-- SESSION_SUMMARY -->")]
    return proc, comment, sa.comment_data(comment["body"], sa.SUMMARY_DATA_TITLE)


def test_two_sessions_then_summary_gives_the_sums(github, pr, tmp_path):
    a = post_session(github, tmp_path, "aaaa0001-0000-4000-8000-000000000001", pr, commits=("1111111", "2222222"))
    b = post_session(github, tmp_path, "bbbb0002-0000-4000-8000-000000000002", pr, cost_scale=7,
                     commits=("3333333",))
    proc, comment, data = summary_of(github, pr)
    assert proc.stdout.startswith("summary created: ")
    assert data["session_count"] == 2 and data["commits"] == 3
    for key in ("input", "output", "cache_creation", "cache_read"):
        assert data["total_tokens"][key] == a["total_tokens"][key] + b["total_tokens"][key]
    cost_a, cost_b = sa.cents(a["estimated_cost_usd"]), sa.cents(b["estimated_cost_usd"])
    assert sa.cents(data["estimated_cost_usd"]) == cost_a + cost_b
    body = comment["body"]
    assert (f"- Sum of session costs: {sa.format_cents(cost_a)} + {sa.format_cents(cost_b)} = "
            f"**{sa.format_cents(cost_a + cost_b)}**") in body
    assert "- Sum of session commits: 2 + 1 = **3**" in body
    assert "**TL;DR:** 2 sessions | " in body and " | 3 commits | open" in body
    assert "| 1 | `aaaa0001` |" in body and "| 2 | `bbbb0002` |" in body
    again, _, _ = summary_of(github, pr)
    assert again.stdout.startswith("summary unchanged: ")
    assert [w for w in github.writes if w[0] != "POST"] == []        # PR: no pin, no patch
    assert not github.pinned


def test_spoofed_and_malformed_session_comments_do_not_move_the_summary(github, pr, tmp_path):
    post_session(github, tmp_path, "aaaa0001-0000-4000-8000-000000000001", pr)
    _, _, honest = summary_of(github, pr)
    fake_stats = {"session_id": "eeee0000-0000-4000-8000-00000000000e", "total_tokens":
                  {"input": 10**9, "output": 10**9, "cache_creation": 0, "cache_read": 0},
                  "estimated_cost_usd": 99999.0, "models": {}, "commits": [{"commit_id": "f" * 7}] * 50}
    spoof = sa.render_session_comment(fake_stats)
    github.add_comment(REPO, pr, spoof, login="mallory", association="NONE")
    github.add_comment(REPO, pr, "<!-- SESSION:dddd0000 -->\nno data here", login="octo-bot")
    github.add_comment(REPO, pr, spoof.replace("SESSION:eeee0000", "SESSION:cccc0000"), login="octo-bot")
    proc, _, data = summary_of(github, pr)
    assert data == honest and proc.stdout.startswith("summary unchanged")
    warnings = [l for l in proc.stderr.splitlines() if "warning: skipped" in l]
    assert len(warnings) == 3
    assert any("by @mallory: author is not trusted (NONE)" in w for w in warnings)
    assert any("no readable Session Data (JSON) block" in w for w in warnings)
    assert any("marker cccc0000 does not match session_id eeee0000" in w for w in warnings)
    _, _, trusting = summary_of(github, pr, "--trusted-authors", "Mallory")
    assert trusting["session_count"] == 2 and trusting["commits"] == honest["commits"] + 50


def test_one_session_in_two_comments_is_counted_once(github, pr, tmp_path):
    a = post_session(github, tmp_path, "aaaa0001-0000-4000-8000-000000000001", pr)
    [comment] = session_comments(github, pr)
    github.add_comment(REPO, pr, comment["body"], login="alice", association="COLLABORATOR")
    proc, _, data = summary_of(github, pr)
    assert data["session_count"] == 1 and data["total_tokens"] == a["total_tokens"]
    assert "appears in more than one comment" in proc.stderr


def test_summary_on_an_issue_is_pinned(github, tmp_path):
    github.add_issue(REPO, 21, "Research")
    post_session(github, tmp_path, "aaaa0001-0000-4000-8000-000000000001", 21)
    _, comment, data = summary_of(github, 21)
    assert github.pinned == {comment["id"]}
    assert data["target"] == {"type": "issue", "number": 21}
    assert "## Claude Code Issue Summary" in comment["body"]


def test_pin_failure_is_only_a_warning(github, tmp_path):
    github.add_issue(REPO, 21, "Research")
    post_session(github, tmp_path, "aaaa0001-0000-4000-8000-000000000001", 21)
    github.fail("PUT", r"/pin$", 404)
    proc, comment, _ = summary_of(github, 21)
    assert "could not pin the summary comment" in proc.stderr and not github.pinned


# ── the whole pipeline ──

def test_pipeline_posts_comment_and_summary_and_dry_run_posts_nothing(github, tmp_path):
    github.add_pull(REPO, 4, "feat/x", merged_at="2026-03-02T10:00:00Z", state="closed")
    github.latency = 0.05          # every call a little slow, as over a real network
    small_session(tmp_path)
    base = ("--projects-dir", tmp_path, "--session-id", "5e55a001", "--repo", REPO, "--number", 4)
    dry = run_gh_cli(github, *base, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert not github.writes and not github.comments_on(REPO, 4)
    assert dry.stdout.startswith("<!-- SESSION:5e55a001 -->")
    assert "\n<!-- SESSION_SUMMARY -->\n" in dry.stdout and "| 1 commit | merged" in dry.stdout
    proc = run_gh_cli(github, *base)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("comment created: ") and lines[1].startswith("summary created: ")
    bodies = [c["body"] for c in github.comments_on(REPO, 4)]
    assert bodies[0].startswith("<!-- SESSION:5e55a001 -->") and bodies[1].startswith("<!-- SESSION_SUMMARY -->")
    assert dry.stdout == bodies[0] + "\n" + bodies[1]
    rerun = run_gh_cli(github, *base)
    assert rerun.stdout.splitlines() == [lines[0].replace("created", "unchanged"),
                                         lines[1].replace("created", "unchanged")]
    assert len(github.writes) == 2


def test_every_gh_call_is_a_rest_api_call_of_the_documented_form(github, tmp_path):
    """A logging shim in front of the real gh records each command line of a full pipeline and an extract."""
    shim_dir, log = tmp_path / "shim", tmp_path / "gh-calls.jsonl"
    shim_dir.mkdir()
    real_gh = shutil.which("gh")
    (shim_dir / "gh").write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"os.execv({real_gh!r}, [{real_gh!r}] + sys.argv[1:])\n")
    (shim_dir / "gh").chmod(0o755)
    env = {"PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}"}
    github.add_pull(REPO, 7, "feat/x", title="Fix the bug", created_at="2026-03-01T08:00:00Z")
    github.add_runs(REPO, 7, ["success"])
    small_session(tmp_path / "projects")
    proc = run_gh_cli(github, "--projects-dir", tmp_path / "projects", "--session-id", "5e55a001", "--repo", REPO,
                      env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    pipeline_calls = len(log.read_text().splitlines())
    proc = run_gh_cli(github, "--phase", "extract", "--repo", REPO, "--from", "2026-03-01", "--to", "2026-03-31",
                      "--output-dir", tmp_path / "out", env=env)
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    # the pipeline asks for the PR once, for its branch (GitHub shows it, so a public comment may too)
    assert [argv[1] for argv in calls[:pipeline_calls] if re.search(r"/pulls/\d+$", argv[1])] == ["repos/o/r/pulls/7"]
    assert not [argv for argv in calls[pipeline_calls:] if re.search(r"/pulls/\d+$", argv[1])]   # no REST call per PR
    assert len(calls) >= 8
    # GraphQL only for extract's pages: one query for the repository's PRs and its issues
    [query] = [argv for argv in calls if argv[1] == "graphql"]
    assert query[:4] == ["api", "graphql", "--include", "-f"] and query[4].startswith("query=query($o0: String!")
    assert query[5:] == ["-f", "o0=o", "-f", "n0=r", "-f", "o1=o", "-f", "n1=r"]
    calls = [argv for argv in calls if argv[1] != "graphql"]
    for argv in calls:
        assert argv[0] == "api", argv                                    # never `gh pr …`
        if "--paginate" in argv:
            assert argv[argv.index("--jq") + 1] == ".[]", argv
        if "-f" in argv:
            assert "-X" in argv and argv[argv.index("-X") + 1] in ("GET",), argv
        method = argv[argv.index("-X") + 1] if "-X" in argv else "GET"
        if method in ("POST", "PATCH"):
            body_file = argv[argv.index("--input") + 1]
            assert body_file != "-" and not os.path.exists(body_file)      # a file, removed afterwards
    methods = [a[a.index("-X") + 1] for a in calls if "-X" in a]
    assert methods.count("POST") == 2 and "PATCH" not in methods          # a comment and a summary, once each
    # each of the two posts (the comment, then the summary) lists the PR's comments, writes, and lists
    # them again to check that what it wrote stands
    assert sum(1 for a in calls if a[1] == "repos/o/r/issues/7/comments" and "--paginate" in a) == 4
