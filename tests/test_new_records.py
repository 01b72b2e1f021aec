"""What Claude Code 2.1.2xx-2.1.33x writes and the numbers depend on: advisor iterations, calls
outside the transcript, prompt provenance, skill attribution, PR links and `!` shell commits.

The records here are cut down from what the real Claude Code 2.1.332 wrote against the fake API
(tests/test_claude_fixtures.py keeps the whole transcripts); every expected number is worked out
by hand in the test from the rates of the price table."""

from __future__ import annotations

import collections
import csv
import json

import pytest

from conftest import Transcript, run_cli, run_gh_cli, sa, stats_json, stats_of, usage

SID = "2c2c0001-0000-4000-8000-000000000001"
NOV = "2026-11-20T10:00:00Z"          # sonnet-5-5 reads cache at $0.10 from 2026-10-07


def session(tmp_path, version="2.1.332", start=NOV) -> Transcript:
    return Transcript(tmp_path / "-work-r" / f"{SID}.jsonl", SID, cwd="/work/r", branch="feat/x",
                      start=start, version=version)


def cost_state(t: Transcript, total: float, models: dict) -> None:
    """A cost-state record as 2.1.332 writes it; models: name -> (in, out, cache write, cache read, 1h, cost)."""
    t.raw({"type": "cost-state", "sessionId": t.session_id, "totalCostUSD": total,
           "modelUsage": {name: {"inputTokens": i, "outputTokens": o, "cacheReadInputTokens": cr,
                                 "cacheCreationInputTokens": cc, "cacheCreationEphemeral5mInputTokens": cc - h,
                                 "cacheCreationEphemeral1hInputTokens": h, "webSearchRequests": 0,
                                 "costUSD": cost}
                          for name, (i, o, cc, cr, h, cost) in models.items()}})


def local_extract(projects, out) -> list[dict]:
    proc = run_cli("--phase", "extract", "--source", "local", "--projects-dir", projects, "--output-dir", out,
                   "--from", "2026-01-01", "--to", "2026-12-31")
    assert proc.returncode == 0, proc.stderr
    with open(out / "analytics.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ── Advisor: every billed request, on its own model, at its own cache split ──

def advisor_usage():
    """The usage of one executor call that consulted the advisor once: two executor requests and
    one advisor request, as 2.1.332 writes it (the top level is the executor's first request)."""
    first = {"type": "message", **usage(100, 20, 300, 1000, c1h=200)}
    advice = {"type": "advisor_message", "model": "claude-fable-5", **usage(5000, 700, 400, 0, c1h=0)}
    second = {"type": "message", **usage(50, 30, 0, 1200, c1h=0)}
    return {**usage(100, 50, 300, 1000, c1h=200), "iterations": [first, advice, second]}


def test_advisor_requests_are_calls_of_the_advisor_model_and_executor_requests_are_summed(tmp_path):
    t = session(tmp_path)
    t.prompt("plan the parser")
    placeholder = usage(100, 1, 300, 1000, c1h=200)           # the streamed first line
    t.assistant("msg_adv", placeholder, model="claude-sonnet-5-5", advisorModel="claude-fable-5")
    t.assistant("msg_adv", advisor_usage(), model="claude-sonnet-5-5", advisorModel="claude-fable-5")
    t.assistant("msg_adv", advisor_usage(), model="claude-sonnet-5-5", advisorModel="claude-fable-5")
    t.write()
    s = stats_of(tmp_path, SID)
    sonnet, fable = s["models"]["claude-sonnet-5-5"], s["models"]["claude-fable-5"]
    assert (sonnet["messages"], sonnet["input_tokens"], sonnet["output_tokens"],
            sonnet["cache_creation_tokens"], sonnet["cache_read_tokens"]) == (1, 150, 50, 300, 2200)
    assert (fable["messages"], fable["input_tokens"], fable["output_tokens"],
            fable["cache_creation_tokens"], fable["cache_read_tokens"]) == (1, 5000, 700, 400, 0)
    # sonnet-5-5: 150 x $2 + 50 x $10 + 100 5m writes x $2.50 + 200 1h writes x $4 + 2200 reads x $0.10
    assert sonnet["cost_usd"] == round((150 * 2 + 50 * 10 + 100 * 2.5 + 200 * 4 + 2200 * 0.10) / 1e6, 4)
    # fable-5: 5000 x $10 + 700 x $50 + 400 5m writes x $12.50
    assert fable["cost_usd"] == round((5000 * 10 + 700 * 50 + 400 * 12.5) / 1e6, 4) == 0.09
    assert s["estimated_cost_usd"] == round((2070 + 90000) / 1e6, 4) and s["cost_complete"] is True


def test_advisor_model_shows_in_the_list_and_the_csv(tmp_path):
    t = session(tmp_path)
    t.prompt("plan the parser")
    t.assistant("msg_adv", advisor_usage(), model="claude-sonnet-5-5", advisorModel="claude-fable-5")
    t.write()
    [row] = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", tmp_path).stdout)
    assert row["models"] == ["claude-fable-5", "claude-sonnet-5-5"]
    assert row["by_model"]["claude-fable-5"]["output"] == 700
    [csv_row] = local_extract(tmp_path, tmp_path / "out")
    assert csv_row["models_used"] == "claude-fable-5,claude-sonnet-5-5"
    assert float(csv_row["estimated_cost_usd"]) == 0.0921


# ── Calls outside the transcript ──

def test_calls_only_claude_codes_record_has_are_in_the_cost_everywhere_with_one_line(tmp_path):
    t = session(tmp_path)
    t.prompt("fix the parser")
    t.assistant("msg_1", usage(1000, 10000, 0, 0), model="claude-sonnet-4-5-20250929")
    t.raw({"type": "system", "subtype": "stop_hook_summary", "hookCount": 1, "sessionId": SID,
           "hookInfos": [{"command": "prompt", "promptText": "Is the task done?"}],
           "timestamp": "2026-11-20T10:00:09Z"})
    # Claude Code's record: the sonnet call, and a haiku hook evaluator no line records.
    ours = (1000 * 3 + 10000 * 15) / 1e6                   # $0.153
    hook = (20000 * 1 + 6000 * 5) / 1e6                    # $0.05
    cost_state(t, round(ours + hook, 6), {"claude-sonnet-4-5-20250929": (1000, 10000, 0, 0, 0, ours),
                                          "claude-haiku-4-5-20251001": (20000, 6000, 0, 0, 0, hook)})
    t.write()
    s = stats_of(tmp_path, SID)
    assert s["estimated_cost_usd"] == round(ours + hook, 4) == 0.203
    assert s["transcript_estimate"] == {"estimated_cost_usd": 0.153,
                                        "total_tokens": {"input": 1000, "output": 10000, "cache_creation": 0,
                                                         "cache_read": 0}}
    assert s["outside_transcript"] == {
        "cost_usd": 0.05, "features": ["prompt hooks"],
        "models": {"claude-haiku-4-5": {"input": 20000, "output": 6000, "cache_creation": 0, "cache_read": 0}}}
    assert s["models"]["claude-haiku-4-5"] == {"messages": 0, "input_tokens": 20000, "output_tokens": 6000,
                                               "cache_creation_tokens": 0, "cache_read_tokens": 0,
                                               "cost_usd": 0.05}
    assert s["total_tokens"] == {"input": 21000, "output": 16000, "cache_creation": 0, "cache_read": 0}
    assert s["claude_code_cost"]["agrees"] is True and s["cost_complete"] is True
    [row] = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", tmp_path).stdout)
    assert (row["estimated_cost_usd"], row["models"]) == (0.203, ["claude-haiku-4-5", "claude-sonnet-4-5-20250929"])
    assert float(local_extract(tmp_path, tmp_path / "out")[0]["estimated_cost_usd"]) == 0.203
    body = run_cli("--phase", "comment", "--dry-run", "--offline", "--projects-dir", tmp_path,
                   "--session-id", SID[:8]).stdout
    tldr = next(line for line in body.splitlines() if line.startswith("**TL;DR:**"))
    assert "| $0.20 |" in tldr
    assert ("_Includes $0.05 of calls Claude Code made outside the transcript: prompt hooks "
            "(tokens from its own record)._") in body
    assert "**Claude Code's own record:** $0.20 (agrees with the estimate)." in body
    data = sa.comment_data(body, sa.SESSION_DATA_TITLE)
    assert data["transcript_estimate"]["estimated_cost_usd"] == 0.153


def test_a_feature_that_calls_out_of_sight_with_no_record_makes_the_cost_a_lower_bound(tmp_path):
    t = session(tmp_path)
    t.prompt("<command-message>goal</command-message>\n<command-name>/goal</command-name>\n"
             "<command-args>the tests pass</command-args>")
    t.raw({**t._envelope("attachment"), "attachment": {"type": "goal_status", "met": False,
                                                        "condition": "the tests pass"}})
    t.assistant("msg_1", usage(10, 1000), model="claude-sonnet-4-5-20250929")      # $0.01503
    t.write()
    s = stats_of(tmp_path, SID)
    assert s["cost_complete"] is False and s["hidden_calls"] == ["/goal"]
    assert s["skills_invoked"] == []                       # /goal is Claude Code's, not a skill
    [row] = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", tmp_path).stdout)
    assert row["cost_complete"] is False
    table = run_cli("--phase", "list", "--projects-dir", tmp_path).stdout
    assert "≥ $0.02" in table and table.endswith("1 session, ≥ $0.02 estimated\n")
    body = run_cli("--phase", "comment", "--dry-run", "--offline", "--projects-dir", tmp_path,
                   "--session-id", SID[:8]).stdout
    assert ("_The session used /goal, whose calls no transcript line records, and Claude Code left no "
            "record of its cost: the cost is a lower bound._") in body
    assert "| ≥ $0.02 |" in next(line for line in body.splitlines() if line.startswith("**TL;DR:**"))


def test_claude_codes_record_carries_the_1h_split_only_when_it_has_one(tmp_path):
    t = session(tmp_path)
    t.prompt("hi")
    t.assistant("msg_1", usage(10, 100), model="claude-sonnet-4-5-20250929")
    t.raw({"type": "cost-state", "sessionId": SID, "totalCostUSD": 0.00153,
           "modelUsage": {"claude-sonnet-4-5-20250929": {"inputTokens": 10, "outputTokens": 100,
                                                         "cacheReadInputTokens": 0,
                                                         "cacheCreationInputTokens": 0, "costUSD": 0.00153}}})
    t.write()
    record = stats_of(tmp_path, SID)["claude_code_cost"]
    assert "cache_creation_1h" not in record["models"]["claude-sonnet-4-5-20250929"]


# ── Turns from provenance ──

def test_turns_follow_prompt_provenance_where_the_line_gives_it(tmp_path):
    t = session(tmp_path)
    t.prompt("fix the parser", promptSource="typed", origin={"kind": "human"}, turnOrigin="human")
    t.assistant("msg_1", usage(10, 100), model="claude-sonnet-4-5-20250929")
    t.prompt("<bash-input>git status</bash-input>", turnOrigin="human")
    t.prompt("<bash-stdout>On branch main</bash-stdout><bash-stderr></bash-stderr>", turnOrigin="human")
    t.prompt("Another Claude session sent a message: <teammate-message teammate_id=\"b\">hi</teammate-message>",
             origin={"kind": "peer"})
    t.prompt("<task-notification><task-id>x</task-id></task-notification>", promptSource="system",
             origin={"kind": "task-notification"}, turnOrigin="task_notification")
    t.prompt("continue with the tests", promptSource="system", turnOrigin="scheduled")
    t.raw({**t._envelope("attachment"), "attachment": {
        "type": "queued_command", "prompt": "also update the docs", "commandMode": "prompt",
        "source_uuid": "q-1", "origin": {"kind": "human"}}})
    t.prompt("take the suggestion", promptSource="suggestion_accepted")
    t.prompt("the -p prompt", promptSource="sdk", turnOrigin="sdk")
    t.prompt("an older line, no provenance")
    t.write()
    assert stats_of(tmp_path, SID)["turns"] == 5


# ── Skills from attribution ──

def test_skill_tokens_are_the_calls_claude_code_attributes_to_the_skill(tmp_path):
    t = session(tmp_path)
    t.prompt("ship it")
    t.tool_use("msg_s", "tu_s", "Skill", {"skill": "shipper:ship"}, usage(10, 10),
               model="claude-sonnet-4-5-20250929")
    t.tool_result("tu_s", "Launching skill: shipper:ship")
    t.tool_use("msg_a", "tu_a", "Bash", {"command": "make ship"}, usage(100, 200, 0, 3000),
               model="claude-sonnet-4-5-20250929", attributionSkill="shipper:ship", attributionPlugin="shipper")
    t.tool_result("tu_a", "shipped")
    t.assistant("msg_b", usage(1, 2), model="claude-sonnet-4-5-20250929")      # in the window, not the skill's
    t.write()
    [skill] = stats_of(tmp_path, SID)["skills_invoked"]
    assert skill == {"skill": "shipper:ship", "count": 1, "status": "pass",
                     "tokens": {"input": 100, "output": 200, "cache_creation": 0, "cache_read": 3000},
                     "cost_usd": (100 * 3 + 200 * 15 + 3000 * 0.3) / 1e6}       # Sonnet 4.5: $3, $15, $0.30


def test_older_transcripts_keep_the_time_windows(tmp_path):
    t = session(tmp_path, version="2.1.114", start="2026-03-01T10:00:00Z")
    t.prompt("ship it")
    t.tool_use("msg_s", "tu_s", "Skill", {"skill": "ship"}, usage(10, 10), model="claude-sonnet-4-5-20250929")
    t.tool_result("tu_s", "Launching skill: ship")
    t.assistant("msg_a", usage(100, 200), model="claude-sonnet-4-5-20250929")
    t.assistant("msg_b", usage(1, 2), model="claude-sonnet-4-5-20250929")
    t.write()
    [skill] = stats_of(tmp_path, SID)["skills_invoked"]
    assert skill["tokens"] == {"input": 101, "output": 202, "cache_creation": 0, "cache_read": 0}


def test_built_in_commands_of_2_1_332_are_not_skills_but_our_own_session_skill_is(tmp_path):
    t = session(tmp_path)
    for name in ("goal", "usage", "compact", "clear", "recap", "session"):
        t.prompt(f"<command-message>{name}</command-message>\n<command-name>/{name}</command-name>")
    t.assistant("msg_1", usage(10, 100), model="claude-sonnet-4-5-20250929")
    t.write()
    assert [s["skill"] for s in stats_of(tmp_path, SID)["skills_invoked"]] == ["session"]


# ── PR links ──

def pr_link(t: Transcript, repo: str, number: int, ts: str) -> None:
    t.raw({"type": "pr-link", "sessionId": t.session_id, "prNumber": number,
           "prUrl": f"https://github.com/{repo}/pull/{number}", "prRepository": repo, "timestamp": ts})


def linked_session(tmp_path) -> None:
    t = session(tmp_path)
    t.prompt("open a PR")
    t.assistant("msg_1", usage(10, 100), model="claude-sonnet-4-5-20250929")
    pr_link(t, "o/r", 4, "2026-11-20T10:00:05Z")
    pr_link(t, "elsewhere/x", 99, "2026-11-20T10:00:06Z")
    pr_link(t, "o/r", 7, "2026-11-20T10:00:07Z")
    t.write()


def test_list_shows_the_pr_a_session_linked_and_local_extract_fills_its_number(tmp_path):
    linked_session(tmp_path / "p")
    [row] = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", tmp_path / "p").stdout)
    assert row["pr"] == "o/r#7"
    table = run_cli("--phase", "list", "--projects-dir", tmp_path / "p").stdout
    assert table.splitlines()[0].split()[:9] == ["SESSION", "STARTED", "(UTC)", "DURATION", "TURNS", "TOKENS",
                                                  "COST", "MODELS", "BRANCH"] and " PR " in table.splitlines()[0]
    assert "o/r#7" in table
    [csv_row] = local_extract(tmp_path / "p", tmp_path / "out")
    assert (csv_row["pr_number"], csv_row["target_type"], csv_row["pr_title"]) == ("7", "pr", "")


def test_pr_links_are_never_posted(tmp_path):
    linked_session(tmp_path)
    body = run_cli("--phase", "comment", "--dry-run", "--offline", "--projects-dir", tmp_path,
                   "--session-id", SID[:8], "--privacy", "full").stdout
    data = sa.comment_data(body, sa.SESSION_DATA_TITLE)
    assert "pr_links" not in data and "elsewhere" not in body


def test_the_last_pr_linked_in_this_repository_is_the_target_before_the_branch(github, tmp_path):
    github.add_pull("o/r", 4, "old")
    github.add_pull("o/r", 7, "feat/y")
    github.add_pull("o/r", 9, "feat/x")                    # the branch's own open PR
    linked_session(tmp_path)
    proc = run_gh_cli(github, "--phase", "comment", "--projects-dir", tmp_path, "--session-id", SID[:8],
                      "--repo", "o/r")
    assert proc.returncode == 0, proc.stderr
    assert [c["body"][:20] for c in github.comments_on("o/r", 7)] == ["<!-- SESSION:2c2c000"]
    assert not github.comments_on("o/r", 9) and not github.comments_on("o/r", 4)
    proc = run_gh_cli(github, "--phase", "comment", "--projects-dir", tmp_path, "--session-id", SID[:8],
                      "--repo", "o/r", "--number", "9")
    assert proc.returncode == 0, proc.stderr
    assert len(github.comments_on("o/r", 9)) == 1           # --number wins


# ── `!` shell commits ──

def test_commits_the_user_made_with_a_shell_command_count_as_the_users(tmp_path):
    t = session(tmp_path)
    t.prompt("fix it")
    t.tool_use("msg_c", "tu_c", "Bash", {"command": "git commit -m 'Fix parser'"}, usage(10, 10),
               model="claude-sonnet-4-5-20250929")
    t.tool_result("tu_c", "[feat/x 1111111] Fix parser\n 1 file changed")
    t.prompt("<bash-input>git commit -am 'Tidy docs'</bash-input>")
    t.prompt("<bash-stdout>[feat/x 2222222] Tidy docs\n 1 file changed</bash-stdout><bash-stderr></bash-stderr>")
    t.prompt("<bash-input>echo '[feat/x 3333333] not a commit'</bash-input>")
    t.prompt("<bash-stdout>[feat/x 3333333] not a commit</bash-stdout><bash-stderr></bash-stderr>")
    t.write()
    s = stats_of(tmp_path, SID)
    assert s["commits"] == [{"commit_id": "1111111", "message": "Fix parser"},
                            {"commit_id": "2222222", "message": "Tidy docs", "by": "user"}]
    assert s["turns"] == 1
    body = run_cli("--phase", "comment", "--dry-run", "--offline", "--projects-dir", tmp_path,
                   "--session-id", SID[:8], "--privacy", "team").stdout
    assert "- `2222222` - Tidy docs _(by the user)_" in body


# ── On what the real Claude Code 2.1.332 wrote ────────────────────────────────
# tests/fixtures/claude-code: each session's manifest says what the fake API served (the bill,
# unwritten calls included) and Claude Code's own last cost-state. The expected numbers come from
# those, never from our reading of the transcript.

FIXTURES = sa.Path(__file__).resolve().parent / "fixtures" / "claude-code"
TOKEN_FIELDS = {"input": "input_tokens", "output": "output_tokens",
                "cache_creation": "cache_creation_input_tokens", "cache_read": "cache_read_input_tokens"}


def fixture(name: str) -> tuple[dict, sa.Path]:
    return json.loads((FIXTURES / name / "manifest.json").read_text()), FIXTURES / name / "projects"


def billed(manifest: dict, sid: str, conversations=None) -> dict:
    """model -> tokens the fake served for a session: each reply's top level on its model, and
    each advisor iteration on the advisor's (the top level leaves those out)."""
    out = collections.defaultdict(lambda: dict.fromkeys(TOKEN_FIELDS, 0))
    for reply in manifest["served"]:
        if reply["session_id"] != sid or (conversations and reply["conversation"] not in conversations):
            continue
        parts = [(reply["model"], reply["usage"])]
        parts += [(it["model"], it) for it in reply["usage"].get("iterations") or [] if it["type"] == "advisor_message"]
        for model, usage_ in parts:
            for ours, theirs in TOKEN_FIELDS.items():
                out[sa.normalize_model_id(model)][ours] += usage_[theirs]
    return dict(out)


def summed(by_model: dict) -> dict:
    return {kind: sum(t[kind] for t in by_model.values()) for kind in TOKEN_FIELDS}


def model_tokens(stats: dict) -> dict:
    return {sa.normalize_model_id(name): {kind: row[f"{kind}_tokens"] for kind in TOKEN_FIELDS}
            for name, row in stats["models"].items()}


def test_real_advisor_session_bills_each_request_on_its_model_as_claude_code_does():
    manifest, projects = fixture("advisor")
    sid = "00000001-0000-4000-8000-000000000001"
    s = stats_of(projects, sid)
    assert model_tokens(s) == billed(manifest, sid)
    # By hand from the served iterations (sonnet-5-5 $2/$10/$2.50/$4/$0.10, fable-5 $10/$50/$12.50/$20/$1):
    # sonnet-5-5 560 in, 140 out, 140 5m + 800 1h writes, 11,900 reads; fable-5 13,000 in,
    # 1,800 out, 650 5m + 650 1h writes, 8,000 reads, each at the iteration's own split.
    sonnet = (560 * 2 + 140 * 10 + 140 * 2.5 + 800 * 4 + 11900 * 0.10) / 1e6
    fable = (13000 * 10 + 1800 * 50 + 650 * 12.5 + 650 * 20 + 8000 * 1) / 1e6
    assert (round(sonnet, 6), round(fable, 6)) == (0.00726, 0.249125)
    assert s["models"]["claude-sonnet-5-5"]["cost_usd"] == round(sonnet, 4)
    assert s["models"]["claude-fable-5"]["cost_usd"] == round(fable, 4)
    assert s["estimated_cost_usd"] == round(sonnet + fable, 4) == round(manifest["sessions"][sid]["cost_state"]["totalCostUSD"], 4)
    assert s["claude_code_cost"]["agrees"] is True and s["claude_code_cost"]["reasons"] == []


@pytest.mark.parametrize("name, features", [("hooks-and-compact", ["compaction", "prompt hooks"]),
                                            ("goal", ["/goal", "prompt hooks"])])
def test_real_calls_outside_the_transcript_are_in_the_headline_as_billed(name, features):
    manifest, projects = fixture(name)
    [(sid, session_)] = manifest["sessions"].items()
    s = stats_of(projects, sid)
    assert s["total_tokens"] == summed(billed(manifest, sid))                # every call the fake served
    assert s["transcript_estimate"]["total_tokens"] == summed(billed(manifest, sid, {"main"}))
    assert s["outside_transcript"]["features"] == features
    assert s["estimated_cost_usd"] == round(session_["cost_state"]["totalCostUSD"], 4)
    assert s["claude_code_cost"]["agrees"] is True and s["cost_complete"] is True
    [row] = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", projects).stdout)
    assert row["estimated_cost_usd"] == s["estimated_cost_usd"]


@pytest.mark.parametrize("name, sid, turns", [
    ("advisor", "00000001-0000-4000-8000-000000000001", 1),
    ("hooks-and-compact", "00000002-0000-4000-8000-000000000002", 3),       # /compact is not one
    ("goal", "00000003-0000-4000-8000-000000000003", 1),                    # `/goal the tests pass`
    ("queued-prompts", "00000004-0000-4000-8000-000000000004", 2),          # the queued one, not the notification
    ("shell-commit", "00000005-0000-4000-8000-000000000005", 2),            # not the `!` command or its output
    ("fork", "00000009-0000-4000-8000-000000000009", 2),
])
def test_real_turns_are_the_prompts_a_person_gave(name, sid, turns):
    _, projects = fixture(name)
    assert stats_of(projects, sid)["turns"] == turns


def test_real_fork_counts_each_call_and_prompt_once_in_the_session_that_made_it():
    manifest, projects = fixture("fork")
    rows = {r["session_id"]: r for r in json.loads(run_cli("--phase", "list", "--json", "--projects-dir",
                                                           projects).stdout)}
    assert len(rows) == 2
    for sid, row in rows.items():
        assert row["total_tokens"] == summed(billed(manifest, sid)), sid
    [fork] = [sid for sid in rows if not sid.startswith("00000009")]
    assert rows[fork]["turns"] == 1                                       # "Fork it"; the rest is the parent's
    assert stats_of(projects, fork)["claude_code_cost"]["reasons"][0]["reason"] == "replayed"


def test_real_skill_tokens_are_the_calls_attributed_to_each_skill():
    _, projects = fixture("skills")
    sid = "00000006-0000-4000-8000-000000000006"
    attributed = collections.defaultdict(dict)            # skill -> message id -> usage (last line wins)
    for path in sorted(projects.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("type") == "assistant" and rec.get("attributionSkill"):
                attributed[rec["attributionSkill"]][rec["message"]["id"]] = rec["message"]["usage"]
    expected = {skill: {kind: sum(u[field] for u in calls.values()) for kind, field in TOKEN_FIELDS.items()}
                for skill, calls in attributed.items()}
    s = stats_of(projects, sid)
    assert {k["skill"]: k["tokens"] for k in s["skills_invoked"]} == expected
    assert sorted(expected) == ["changelog", "shipper:review"]
    assert {k["skill"]: (k["count"], k["status"]) for k in s["skills_invoked"]} == \
        {"changelog": (1, "pass"), "shipper:review": (1, "pass")}


def test_real_shell_commit_is_the_users():
    _, projects = fixture("shell-commit")
    screen = (FIXTURES / "shell-commit" / "screen.txt").read_text()
    s = stats_of(projects, "00000005-0000-4000-8000-000000000005")
    [commit] = s["commits"]
    assert (commit["message"], commit["by"]) == ("Fix the typo", "user")
    assert commit["commit_id"] in screen


def test_real_pr_link_names_the_pr():
    _, projects = fixture("pr-link")
    [row] = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", projects).stdout)
    assert row["pr"] == "o/r#7"
    assert stats_of(projects, "00000007-0000-4000-8000-000000000007")["pr_links"] == \
        [{"repository": "o/r", "number": 7}]


def test_real_workflow_agents_are_read_from_their_folder():
    manifest, projects = fixture("workflow")
    sid = "00000008-0000-4000-8000-000000000008"
    s = stats_of(projects, sid)
    assert s["total_tokens"] == summed(billed(manifest, sid))
    assert sorted(a["type"] for a in s["subagents"]) == ["workflow-subagent", "workflow-subagent"]
    assert "claude-haiku-5-5" in s["models"]
