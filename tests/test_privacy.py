"""What leaves the machine: the privacy gate at each level, checked by two real secret scanners
(detect-secrets and secretlint, tests/scanners.py) on every body posted through the real gh and
every file extract writes, for a hostile session and for every real transcript in ../shared."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from conftest import ROOT, SHARED, Transcript, all_stats, run_cli, run_gh_cli, sa, usage
from fixtures.secret_shapes import SHAPES, UNDETECTED_BY_SCANNERS
from scanners import require_scanners, scan

REPO = "acme/payments"
SID = "5ec12e75-0000-4000-8000-00000000a11c"

# Personal details the hostile session carries: at public, none of them may appear anywhere.
HOME = "/home/alice.smith"
USER = "alice.smith"
HOST = "build.acme-corp.internal"
PRIVATE_IP = "10.23.4.5"
PUBLIC_IP = "203.0.113.77"
EMAIL = "alice.smith@acme-mail.example"
PROMPT = "Please fix the flaky payments reconciliation job before the audit"
SUBAGENT_PROMPT = "Investigate the ledger mismatch in the reconciler and report"
COMMAND = "psql --dbname=ledger_reconciliation"
ERROR_TEXT = "connection refused by ledger-primary"
CANARIES = (HOME, USER, HOST, PRIVATE_IP, PUBLIC_IP, EMAIL, PROMPT, SUBAGENT_PROMPT, COMMAND, ERROR_TEXT,
            "ledger_reconciliation")

# The secret inside each shape that neither scanner finds (so the oracle cannot prove it gone).
UNDETECTED_SECRETS = {
    "aws_secret_access_key_bare": "EnHymv1PEUsAj+4WFUx2gnGJmAcCeHIRZ7uGnMxG",
    "aws_secret_access_key_configure": "EnHymv1PEUsAj+4WFUx2gnGJmAcCeHIRZ7uGnMxG",
    "bitbucket_atbb_env": "ATBBEKdPOKw8YhmQbg3WuZimzCO5FN1BCDC3B6E5",
    "openai_key_without_marker": "sk-fPMHbc5KbI8qx9wRamaJNcgZ9cqvIqvvfM7UTIfK71X2XKoB",
    "stripe_publishable_key": "pk_live_kSOTVSal0zl86d9JzkOcjZEC",
    "mysql_short_p": "QIrVSN0T8F6x1lX0jxUp", "mysql_long_password": "iWuvjgT4qHbGKQ",
    "curl_user_password": "Kjo3r6tVnuBQg9z", "redis_cli_a": "hupaMxkoEvbAVFrNw",
    "openssl_k": "5CzWCHj7XBDtqUQqt", "openssl_pass_pass": "0M539a9JJlI8M4MZH", "sshpass_p": "vFnGS6ta8CJ8TW",
    "pgpassword_env": "kgR9ccHKXib8UF7KEre2", "env_api_key": "wjqog3qu4EgViO14a8",
    "env_api_key_double_quoted": "wjqog3qu4EgViO14a8", "env_secret_key": "fjc3d64VvBqeE1emI",
    "env_db_password": "BgBRX53vQGvIiX2utV6", "google_api_key": "AIzadPUIOWc_ygkKxfyrOyJOq6gmHiUkjbNQ9jC",
    "azure_sas_url": "d/mieUoK72K2yRHfPtKnQkeMVsw3oCvcPCIGPdpbj/5=",
    "twilio_auth_token": "f23a20222770cb119da9c95d57908a97",
    "discord_webhook_url": "6PWLLCdOEuHEVE5VUjyPE2wZNcBAG3bGbb02SdYrbXY7oKTiARWjUj0mZakKZDHAlvBw",
    "digitalocean_token": "dop_v1_27d05ccb9af5a6a7104fcdcfb88829745f22f90b012c78d84410a6783638a552",
    "huggingface_token": "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",
    "databricks_token": "dapi4e32a97bc9d25b8ee2e946c808d876c5",
    "basic_auth_header": "Y2ktYm90Om1qdm9MMVVWRTc2cjNPZHBIVw==",
    "bearer_token_opaque": "2aBH3vd19SB7F9bEntox4fsOvCIyQ0QKpUsf_zIe",
}
ALL_SHAPES = {**SHAPES, **UNDETECTED_BY_SCANNERS}


def test_every_undetected_shape_has_its_secret_named():
    assert set(UNDETECTED_SECRETS) == set(UNDETECTED_BY_SCANNERS)
    for name, secret in UNDETECTED_SECRETS.items():
        assert secret in UNDETECTED_BY_SCANNERS[name], name


def planted(texts: dict) -> dict:
    """Each text as a comment body, a CSV cell and a JSON string: the forms we publish."""
    out = {}
    for name, text in texts.items():
        rows = io.StringIO()
        csv.writer(rows, lineterminator="\r\n").writerows([["session_id", "description"], ["5ec12e75", text]])
        out[f"{name}.md"] = f"<!-- SESSION:5ec12e75 -->\n| Problem | Resolved |\n|---|---|\n| {text} | no |\n"
        out[f"{name}.csv"] = rows.getvalue()
        out[f"{name}.json"] = json.dumps({"description": text}, indent=2, ensure_ascii=False) + "\n"
    return out


def assert_clean(texts: dict) -> None:
    require_scanners()
    findings = scan(texts)
    assert not findings, "\n".join(f"{f.scanner} {f.file}:{f.line} {f.rule}: {f.snippet}" for f in findings)


@pytest.mark.parametrize("level", sa.PRIVACY_LEVELS)
def test_every_secret_shape_is_gone_from_scrubbed_text(level):
    privacy = sa.Privacy(level)
    scrubbed = {name: sa.scrub(text, privacy) for name, text in ALL_SHAPES.items()}
    assert_clean(planted(scrubbed))
    for name, secret in UNDETECTED_SECRETS.items():
        assert secret not in scrubbed[name], (name, scrubbed[name])


def test_ordinary_text_is_left_as_it_is():
    for text in ("pytest -q tests/test_parser.py -k test_session_analytics_renders_comment",
                 "git commit -m 'Fix SessionAnalyticsDashboardComponent2024 layout'",
                 "npm run build -- --mode production", "cache_read_tokens: 1234, MAX_TOKENS=4096",
                 "uuid 00b11888-7e0c-4fb4-bb39-32ea32e09b64", "see https://github.com/acme/payments/pull/7"):
        assert sa.scrub(text, sa.Privacy("team")) == text, text


def test_personal_details_are_masked_at_team_and_public_and_kept_at_full():
    text = (f"ssh {USER}@{HOST} from {HOME}/src/payments, mail {EMAIL}, db at {PRIVATE_IP} "
            f"and {PUBLIC_IP}, see http://jenkins:8080/job/7 and https://ci.example.com/x")
    people = frozenset({USER})
    team = sa.scrub(text, sa.Privacy("team", people=people))
    assert team == ("ssh <email> from ~/src/payments, mail <email>, db at <private-ip> and 203.0.113.77, "
                    "see http://<internal-host>:8080/job/7 and https://ci.example.com/x")
    public = sa.scrub(text, sa.Privacy("public", people=people))
    assert PUBLIC_IP not in public and "ci.example.com" not in public and "<user>" not in public
    assert sa.scrub(text, sa.Privacy("full", people=people)) == text
    assert sa.scrub(f"branch {USER}/fix on {HOME}", sa.Privacy("team", people=people)) == "branch <user>/fix on ~"


# ── a hostile session, posted and extracted ──────────────────────────────────

def hostile_session(projects, branch=f"{USER}/fix-ledger"):
    """Prompts, commands, tool inputs, subagent prompts, errors and commit messages carrying every
    secret shape and every personal detail; the working folder in the user's home."""
    cwd = f"{HOME}/src/payments"
    t = Transcript(projects / sa.encode_project_dir(cwd) / f"{SID}.jsonl", SID, cwd=cwd, branch=branch,
                   start="2026-03-02T10:00:00Z")
    t.prompt(f"{PROMPT}. Credentials: {SHAPES['github_ghp']} {EMAIL}")
    n = 0

    def call(name, tool_input, result, is_error=False, **kw):
        nonlocal n
        n += 1
        t.tool_use(f"m{n}", f"toolu_{n:03d}", name, tool_input, usage(10, 20, cr=100), model="claude-opus-4-6")
        t.tool_result(f"toolu_{n:03d}", result, is_error=is_error, **kw)

    call("Skill", {"skill": "tdd:ci", "args": f"--token {SHAPES['slack_bot_token']}"}, "Launching skill")
    for name, sample in ALL_SHAPES.items():
        call("Bash", {"command": sample}, f"Exit code 1\n{ERROR_TEXT} {sample}", is_error=True)
    call("Bash", {"command": f"{COMMAND} -h {HOST} -p 5432"}, f"Exit code 2\n{ERROR_TEXT} at {PRIVATE_IP}",
         is_error=True)
    call("Edit", {"file_path": f"{HOME}/src/payments/app/ledger.py"},
         "<tool_use_error>String to replace not found in file.</tool_use_error>", is_error=True)
    call("Edit", {"file_path": f"{HOME}/.config/acme/settings.yml"},
         "<tool_use_error>File has not been read yet.</tool_use_error>", is_error=True)
    call("Grep", {"pattern": SHAPES["env_db_password_quoted"]}, "No matches found", is_error=True)
    call("WebFetch", {"url": f"http://{HOST}:8080/job?token={UNDETECTED_SECRETS['env_api_key']}"},
         "Request failed with status code 503", is_error=True)
    for i, name in enumerate(list(SHAPES)[:12]):
        call("Bash", {"command": f"git commit -m 'Fix ledger {i}'"},
             f"[{branch} {i + 1:03d}abc{i:01x}] Fix ledger for {EMAIL} on {PRIVATE_IP} in {HOME} via {PUBLIC_IP}: "
             f"{SHAPES[name]}\n"
             " 1 file changed")
    call("Agent", {"subagent_type": "general-purpose", "prompt": f"{SUBAGENT_PROMPT} {SHAPES['anthropic_api_key']}"},
         "done", tool_use_result={"agentId": "a1b2c3d4e5f6a7b8c"})
    call("Agent", {"subagent_type": "Explore", "description": f"Look at {HOST} for {EMAIL}",
                   "prompt": SUBAGENT_PROMPT}, "done", tool_use_result={"agentId": "b1b2c3d4e5f6a7b8c"})
    t.write()
    for agent in ("a1b2c3d4e5f6a7b8c", "b1b2c3d4e5f6a7b8c"):
        sub = Transcript(projects / sa.encode_project_dir(cwd) / SID / "subagents" / f"agent-{agent}.jsonl", SID,
                         cwd=cwd, branch=branch, start="2026-03-02T10:30:00Z")
        sub.prompt(SUBAGENT_PROMPT, sidechain=True, agent=agent)
        sub.assistant(f"s-{agent}", usage(7, 70), model="claude-haiku-4-5", sidechain=True, agent=agent)
        sub.write()
    return SID


def posted_bodies(github, number):
    return {f"{number}-{c['id']}.md": c["body"] for c in github.comments_on(REPO, number)}


def assert_no_canary(texts: dict) -> None:
    for name, text in texts.items():
        for canary in CANARIES:
            assert canary.casefold() not in text.casefold(), f"{canary!r} in {name}"


@pytest.fixture
def posted(github, tmp_path):
    """The hostile session posted (comment and summary) on a PR of a public and of a private
    repository, with no --privacy: {visibility: (bodies, stats)}."""
    projects = tmp_path / "projects"
    hostile_session(projects)
    out = {}
    for number, visibility in ((7, "public"), (8, "private")):
        repo = f"{REPO}" if visibility == "public" else "acme/ledger"
        github.visibility[repo] = visibility
        github.add_pull(repo, number, "fix-ledger", title=f"Fix the ledger {SHAPES['stripe_secret_key']}")
        github.add_commits(repo, number, "001abc0" + "0" * 33)        # GitHub shows the first commit
        proc = run_gh_cli(github, "--projects-dir", projects, "--session-id", SID[:8], "--repo", repo,
                          "--target", "pr", "--number", number)
        assert proc.returncode == 0, proc.stderr
        out[visibility] = {f"{visibility}-{c['id']}.md": c["body"] for c in github.comments_on(repo, number)}
    return out


def test_a_public_repository_gets_public_numbers_and_names_and_no_secret(posted):
    bodies = posted["public"]
    assert len(bodies) == 2
    assert_clean(bodies)
    assert_no_canary(bodies)
    for body in bodies.values():
        assert "<sub>Privacy level: public (numbers and names only).</sub>" in body
    [comment] = [b for b in bodies.values() if b.startswith("<!-- SESSION:")]
    data = sa.comment_data(comment, sa.SESSION_DATA_TITLE)
    assert data["privacy"] == "public" and data["project"] == REPO and data["cwd"] == REPO
    # a commit GitHub shows on the PR keeps its subject (redacted); the others are SHAs alone
    assert data["commits"][0]["commit_id"] == "001abc0" and "message" in data["commits"][0]
    assert all(set(c) == {"commit_id"} for c in data["commits"][1:]) and len(data["commits"]) == 12
    # a branch is text written in the session: at public only the PR's own branch (GitHub shows it)
    assert data["branch"] is None
    problems = {p["description"] for p in data["problems_faced"]}
    assert "Edit failed (text to replace not found): app/ledger.py" in problems
    assert "Edit failed (file not read first)" in problems                 # outside the repository
    assert "Bash failed (exit code 2)" in problems and "WebFetch failed (HTTP 503)" in problems
    assert all("command" not in p for p in data["problems_faced"])
    assert {a["type"] for a in data["subagents"]} == {"general-purpose", "Explore"}
    assert all("description" not in a and "tool_use_id" not in a for a in data["subagents"])
    assert "title" not in data


def test_the_pr_s_own_branch_is_shown_at_public_whatever_it_holds():
    stats = {"session_id": SID, "branch": f"{USER}/fix-ledger", "cwd": f"{HOME}/src/payments"}
    shown = sa.outbound_stats(stats, sa.Privacy("public", REPO, pr_branch=f"{USER}/fix-ledger"))
    assert shown["branch"] == f"{USER}/fix-ledger" and shown["cwd"] == REPO
    assert sa.outbound_stats(stats, sa.Privacy("public", REPO, pr_branch="other"))["branch"] is None
    assert sa.outbound_stats(stats, sa.Privacy("team", REPO, pr_branch="other"))["branch"] == "<user>/fix-ledger"


def test_the_public_canaries_are_really_in_the_session(tmp_path):
    """The canaries are in the transcript and in the local stats: their absence above means
    something."""
    hostile_session(tmp_path)
    text = "".join(p.read_text() for p in tmp_path.rglob("*.jsonl"))
    for canary in CANARIES:
        assert canary in text, canary


def test_a_private_repository_gets_team_detail_without_secrets_or_personal_details(posted):
    bodies = posted["private"]
    assert_clean(bodies)
    [comment] = [b for b in bodies.values() if b.startswith("<!-- SESSION:")]
    assert "<sub>Privacy level: team (secrets and personal details removed).</sub>" in comment
    data = sa.comment_data(comment, sa.SESSION_DATA_TITLE)
    assert data["privacy"] == "team" and data["cwd"] == "acme/ledger"
    text = json.dumps(data)
    for gone in (HOME, EMAIL, PRIVATE_IP, HOST, PROMPT, SUBAGENT_PROMPT, "alice.smith@"):
        assert gone not in text and gone not in comment, gone
    # detail is there: every commit's subject, the commands' heads, the subagent's description
    assert all(c["message"].startswith("Fix ledger for <email> on <private-ip> in ~") for c in data["commits"])
    assert any(p.get("command", "").startswith("psql --dbname=") for p in data["problems_faced"])
    assert "Edit failed (file not read first): ~/.config/acme/settings.yml" in \
        {p["description"] for p in data["problems_faced"]}
    assert {a.get("description") for a in data["subagents"]} == {None, "Look at <internal-host> for <email>"}


def test_the_summary_shows_no_more_than_its_sessions(posted):
    for bodies in posted.values():
        [summary] = [b for b in bodies.values() if b.startswith("<!-- SESSION_SUMMARY -->")]
        data = sa.comment_data(summary, sa.SUMMARY_DATA_TITLE)
        assert data["session_count"] == 1 and data["privacy"] in ("public", "team")
        assert_no_canary({"summary": summary})


def test_extract_files_carry_no_secret_and_at_public_no_personal_detail(github, posted, tmp_path):
    texts = {}
    for repo, level in ((REPO, "public"), ("acme/ledger", "team")):
        out = tmp_path / level
        proc = run_gh_cli(github, "--phase", "extract", "--repo", repo, "--from", "2026-01-01", "--to",
                          "2026-12-31", "--output-dir", out, "--quiet")
        assert proc.returncode == 0, proc.stderr
        assert json.loads((out / "analytics.json").read_text())["privacy"] == level
        texts.update({f"{level}-{name}": (out / name).read_text() for name in
                      ("analytics.csv", "analytics.md", "analytics.json")})
    local = tmp_path / "local"
    proc = run_cli("--phase", "extract", "--source", "local", "--projects-dir", tmp_path / "projects",
                   "--output-dir", local, "--privacy", "public")
    assert proc.returncode == 0, proc.stderr
    texts.update({f"local-{name}": (local / name).read_text() for name in
                  ("analytics.csv", "analytics.md", "analytics.json")})
    assert_clean(texts)
    assert_no_canary({k: v for k, v in texts.items() if k.startswith(("public-", "local-"))})


def test_every_real_transcript_renders_clean_at_team_and_public(real_projects):
    """Every session of the real corpus, as a comment at both levels: nothing the scanners flag."""
    bodies = {}
    for projects in (real_projects, SHARED / "fixtures" / "transcripts" / "real-2026" / "projects"):
        for stats in all_stats(projects, sa.ReadOptions(cache=None)):
            for level in ("team", "public"):
                body = sa.render_session_comment(stats, privacy=sa.Privacy(level, "acme/payments"))
                bodies[f"{level}-{stats['session_id']}.md"] = body
    assert len(bodies) > 80
    assert_clean(bodies)
    public = {k: v for k, v in bodies.items() if k.startswith("public-")}
    for name, body in public.items():
        assert not re.search(r"/(?:home|Users)/\w", body), name


# ── levels, reposting and previews ───────────────────────────────────────────

def small_session(projects, message="Fix it"):
    t = Transcript(projects / "-work-r" / f"{SID}.jsonl", SID, cwd="/work/r", branch="feat/x")
    t.prompt("fix")
    t.tool_use("m1", "tc1", "Bash", {"command": "git commit -m x"}, usage(10, 20), model="claude-opus-4-6")
    t.tool_result("tc1", f"[feat/x abc1234] {message}\n 1 file changed")
    t.write()


def test_a_visibility_github_will_not_tell_means_public_and_full_is_on_request(github, tmp_path):
    small_session(tmp_path)
    github.add_pull("o/r", 7, "feat/x")
    github.fail("GET", r"/repos/o/r$", 403, times=10, message="Resource not accessible by integration")
    proc = run_gh_cli(github, "--phase", "comment", "--projects-dir", tmp_path, "--session-id", SID[:8], "--repo",
                      "o/r", "--number", 7)
    assert proc.returncode == 0, proc.stderr
    assert "the visibility of o/r is unknown (GET repos/o/r: Resource not accessible by integration" in proc.stderr
    [comment] = github.comments_on("o/r", 7)
    assert sa.comment_data(comment["body"], sa.SESSION_DATA_TITLE)["privacy"] == "public"
    github.faults.clear()
    github.visibility["o/r"] = "private"
    proc = run_gh_cli(github, "--phase", "comment", "--projects-dir", tmp_path, "--session-id", SID[:8], "--repo",
                      "o/r", "--number", 7, "--privacy", "full")
    assert proc.returncode == 0, proc.stderr
    [comment] = github.comments_on("o/r", 7)              # the same comment, updated
    assert sa.comment_data(comment["body"], sa.SESSION_DATA_TITLE)["cwd"] == "/work/r"
    assert "<sub>Privacy level: full (secrets removed; paths, hosts and emails as they are).</sub>" in comment["body"]


def test_an_unknown_visibility_means_public(github, tmp_path):
    small_session(tmp_path)
    github.add_pull("o/r", 7, "feat/x")
    github.visibility["o/r"] = None                    # GitHub's answer names no visibility
    proc = run_gh_cli(github, "--phase", "comment", "--projects-dir", tmp_path, "--session-id", SID[:8], "--repo",
                      "o/r", "--number", 7)
    assert proc.returncode == 0, proc.stderr
    [comment] = github.comments_on("o/r", 7)
    data = sa.comment_data(comment["body"], sa.SESSION_DATA_TITLE)
    assert data["privacy"] == "public" and data["commits"] == [{"commit_id": "abc1234"}]


def test_reposting_replaces_an_old_leaky_comment_and_repost_leaves_no_edit_history(github, tmp_path):
    small_session(tmp_path, message=f"Fix it for {EMAIL}")
    github.add_pull("o/r", 7, "feat/x")
    github.visibility["o/r"] = "private"
    leaky = sa.render_session_comment(
        sa.compute_stats(sa.HistoryReader(tmp_path).session(sa.HistoryReader(tmp_path).locate(SID)),
                         sa.load_pricing(None), "o/r"), privacy=sa.Privacy("full"))
    assert EMAIL in leaky                           # what an older version posted
    old = github.add_comment("o/r", 7, leaky)
    args = ("--phase", "comment", "--projects-dir", tmp_path, "--session-id", SID[:8], "--repo", "o/r", "--number", 7)
    proc = run_gh_cli(github, *args)
    assert proc.returncode == 0 and proc.stdout.startswith("comment updated"), proc.stderr
    [comment] = github.comments_on("o/r", 7)
    assert comment["id"] == old["id"] and EMAIL not in comment["body"]
    proc = run_gh_cli(github, *args, "--repost")
    assert proc.returncode == 0 and proc.stdout.startswith("comment reposted"), proc.stderr
    [comment] = github.comments_on("o/r", 7)
    assert comment["id"] != old["id"] and EMAIL not in comment["body"]
    assert ("DELETE", f"issues/comments/{old['id']}") in github.writes


def test_a_dry_run_prints_exactly_the_body_a_post_sends(github, tmp_path):
    small_session(tmp_path)
    github.add_pull("o/r", 7, "feat/x")
    github.visibility["o/r"] = "public"
    args = ("--phase", "comment", "--projects-dir", tmp_path, "--session-id", SID[:8], "--repo", "o/r", "--number", 7)
    dry = run_gh_cli(github, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would create the comment on o/r#7 at privacy level public (o/r is public); nothing posted" in dry.stderr
    assert github.writes == []
    assert run_gh_cli(github, *args).returncode == 0
    [comment] = github.comments_on("o/r", 7)
    assert comment["body"] == dry.stdout
    again = run_gh_cli(github, *args, "--dry-run")
    assert "would update the comment" in again.stderr


def test_an_offline_dry_run_says_what_it_could_not_check(tmp_path):
    small_session(tmp_path)
    proc = run_cli("--phase", "comment", "--dry-run", "--offline", "--projects-dir", tmp_path, "--session-id",
                   SID[:8], "--repo", "o/r")
    assert proc.returncode == 0
    assert "dry run: --offline; previewing at privacy level public" in proc.stderr
    data = sa.comment_data(proc.stdout, sa.SESSION_DATA_TITLE)
    assert data["privacy"] == "public" and data["commits"] == [{"commit_id": "abc1234"}]


def test_the_privacy_doc_example_is_what_the_gate_gives():
    doc = (ROOT / "docs" / "privacy.md").read_text()
    block = re.search(r"The same failed call, as each level shows it:\n\n```text\n(.*?)```", doc, re.S).group(1)
    command = sa.normalize_command("psql -h db.acme.internal -U app --password=s3cretpw orders")
    stats = {"session_id": SID, "cwd": "/home/a/src/ledger", "problems_faced": [
        {"tool": "Edit", "error": "text to replace not found", "path": "/home/a/src/ledger/app/ledger.py"},
        {"tool": "Bash", "error": "exit code 1", "command": command}]}
    shown = []
    for level in ("public", "team", "full"):
        problems = sa.outbound_stats(stats, sa.Privacy(level, "acme/ledger"))["problems_faced"]
        shown += [f"{level:<7} {p['description']}" for p in problems
                  if level == "public" or p["tool"] == "Bash"]
    assert block.splitlines() == shown


def test_otel_spans_carry_no_secret_and_at_public_no_personal_detail(tmp_path):
    """What `otel` sends passes the same gate: both scanners find nothing at team and public, and
    at public none of the canaries is in any span."""
    hostile_session(tmp_path / "projects")
    texts = {}
    for level in ("public", "team"):
        proc = run_cli("otel", "--dry-run", "--projects-dir", tmp_path / "projects", "--session-id", SID,
                       "--privacy", level)
        assert proc.returncode == 0, proc.stderr
        texts[f"{level}-spans.json"] = proc.stdout
        assert '"name": "execute_tool Bash"' in proc.stdout
    # OTLP/JSON writes trace and span ids in hex, under keys the protocol fixes: random-looking by
    # design (a digest of the session id and the span's key), and all a scanner may find
    ids = set(re.findall(r'"(?:traceId|spanId|parentSpanId)": "([0-9a-f]+)"', "".join(texts.values())))
    require_scanners()
    findings = [f for f in scan(texts) if f.snippet not in ids]
    assert not findings, "\n".join(f"{f.scanner} {f.file}:{f.line} {f.rule}: {f.snippet}" for f in findings)
    assert_no_canary({"public-spans.json": texts["public-spans.json"]})
