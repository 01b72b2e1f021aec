"""The real Claude Code (pinned in tests/claude) runs offline against a scripted Messages API: it
discovers the session skill, runs session:post through its Bash tool and the real gh against the
fake GitHub, runs the README's SessionEnd hook, and writes transcripts of today's format. Our
numbers must equal its own cost record, and every API call must be counted once, in its owner."""

from __future__ import annotations

import collections
import json
import re
import subprocess
from pathlib import Path

import pytest

import claude_sessions as cs
from conftest import make_cert, run_cli, sa, stats_json, FakeGitHub
from fake_anthropic import FakeAnthropic
from test_reader import facts_of

RESUMED = "22222222-2222-4222-8222-222222222222"

# Every record type and attachment type the pinned client writes, and what we do with it. A type
# not listed here fails test_every_record_type_is_read_or_knowingly_skipped: raising the pin
# (`make claude-transcripts CLAUDE_CODE_VERSION=...`) shows what changed.
READ_TYPES = {
    "user": "prompts, tool results, slash commands",
    "assistant": "API calls, tool calls",
    "system": "compact_boundary counts compactions; other subtypes only give their time",
    "cost-state": "Claude Code's own cost record, reconciled with ours",
    "pr-link": "the PR a session opened or named: the target, list's PR column",
}
SKIPPED_TYPES = {
    "attachment": "context Claude Code adds (skill listing, environment, prompt snapshot): no usage",
    "api-request": "what was sent: the reply's assistant lines carry the usage",
    "api-request-blob": "request payloads",
    "api-request-shape": "request shapes",
    "queue-operation": "prompt queue bookkeeping",
    "atis-latch": "client state",
    "last-prompt": "resume bookkeeping",
    "tools-used": "tool list bookkeeping; tool calls are read from assistant lines",
    "mode": "permission mode",
    "permission-mode": "permission mode (interactive)",
    "file-history-snapshot": "file backups for /rewind (interactive)",
}
KNOWN_ATTACHMENTS = {"prompt_snapshot", "environment", "model", "deferred_tools_delta", "agent_listing_delta",
                     "skill_listing", "session_context", "date", "remote_session_change", "command_permissions",
                     "queued_command", "total_tokens_reminder", "goal_status", "advisor_tool", "auto_mode"}
READ_ATTACHMENTS = {"queued_command": "a prompt typed while Claude worked: a turn",
                    "goal_status": "/goal is on: its evaluator's calls are in no line"}


@pytest.fixture(scope="module")
def claude_bin():
    assert cs.CLAUDE_BIN.exists(), f"Claude Code is not installed in tests/claude: run `make test-deps`"
    version = subprocess.run([str(cs.CLAUDE_BIN), "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith(cs.PINNED_VERSION), version.stdout
    return cs.CLAUDE_BIN


@pytest.fixture(scope="module")
def post_flow(claude_bin, tmp_path_factory):
    """One scripted session: two commits, an asynchronous subagent, session:post through gh."""
    root = tmp_path_factory.mktemp("post-flow")
    github = FakeGitHub(*make_cert(root)).start()
    (root / "gh-config").mkdir()
    github.add_pull(cs.REPO, 7, cs.BRANCH, title="Fix the parser")
    api = FakeAnthropic(cs.post_flow_script()).start()
    ws = cs.Workspace(root, api, extra_env=github.gh_env(root / "gh-config"))
    proc = ws.run("Fix the parser and post the session", "--output-format", "stream-json", "--verbose")
    assert proc.returncode == 0, proc.stderr
    (root / "captures").mkdir()
    (root / "captures" / "run.jsonl").write_text(proc.stdout)      # what a CI job would keep
    [transcript] = [t for t in ws.transcripts() if "subagents" not in t.parts]
    yield ws, api, github, transcript
    api.stop()
    github.stop()


@pytest.fixture(scope="module")
def lifecycle(claude_bin, tmp_path_factory):
    """A session resumed, continued, compacted, continued again, then forked."""
    api = FakeAnthropic(cs.resume_script()).start()
    ws = cs.Workspace(tmp_path_factory.mktemp("lifecycle"), api)
    for args in (("Start", "--session-id", RESUMED), ("Go on", "--resume", RESUMED), ("And more", "--continue"),
                 ("/compact", "--continue"), ("After compaction", "--continue"),
                 ("Fork it", "--resume", RESUMED, "--fork-session")):
        proc = ws.run(*args)
        assert proc.returncode == 0, (args, proc.stderr)
    yield ws, api
    api.stop()


def stats_of_transcript(ws, transcript, *extra) -> dict:
    proc = run_cli("--phase", "stats", "--transcript", transcript, "--quiet", *extra,
                   env={"HOME": str(ws.home)}, cwd=ws.work)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def records(paths) -> list[dict]:
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


# ── the skills and the hook, run by Claude Code ───────────────────────────────

def test_the_session_skill_is_discovered_and_its_sub_skills_are_not_listed(post_flow):
    ws, _, _, transcript = post_flow
    [listing] = [r["attachment"] for r in records([transcript])
                 if r["type"] == "attachment" and r["attachment"].get("type") == "skill_listing"]
    names = listing.get("names") or re.findall(r"^- ([\w:-]+):", listing["content"], re.M)
    assert "session" in names
    assert not {"post", "summary", "extract", "dashboard", "session:post"} & set(names)


def test_session_post_as_the_skills_tell_it_posts_one_comment_and_one_summary(post_flow):
    ws, api, github, transcript = post_flow
    sid = transcript.stem
    bodies = [c["body"] for c in github.comments_on(cs.REPO, 7)]
    assert [b.splitlines()[0] for b in bodies] == [f"<!-- SESSION:{sid[:8]} -->", "<!-- SESSION_SUMMARY -->"]
    # the command the agent ran is step 3 of post/SKILL.md, with the id the router skill gave it
    [command] = [t["input"]["command"] for r in records([transcript]) if r["type"] == "assistant"
                 for t in r["message"]["content"] if t.get("type") == "tool_use" and t["name"] == "Bash"
                 and "session-analytics.py" in t["input"]["command"]]
    assert command == f'python3 .claude/scripts/session-analytics.py --session-id "{sid}"'
    # posting again once the session is over: the report now has the session's last turns, then
    # nothing changes
    env = {**ws.env(), "PATH": ws.env()["PATH"]}
    first = subprocess.run(command, shell=True, cwd=ws.work, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    writes = len(github.writes)
    again = subprocess.run(command, shell=True, cwd=ws.work, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("comment unchanged: ") and "\nsummary unchanged: " in again.stdout
    assert len(github.writes) == writes and len(github.comments_on(cs.REPO, 7)) == 2
    summary = sa.comment_data(github.comments_on(cs.REPO, 7)[1]["body"], sa.SUMMARY_DATA_TITLE)
    posted = sa.comment_data(github.comments_on(cs.REPO, 7)[0]["body"], sa.SESSION_DATA_TITLE)
    assert summary["session_count"] == 1 and summary["total_tokens"] == posted["total_tokens"]
    assert summary["commits"] == 2


def test_the_readme_session_end_hook_saves_what_stats_says(post_flow):
    ws, _, _, transcript = post_flow
    saved = ws.root / "data" / "session-analytics" / "archive" / f"{transcript.stem}.json"
    assert saved.is_file(), "the SessionEnd hook did not run"
    # outside the working tree, where `git add -A` would stage it
    untracked = subprocess.run(["git", "-C", ws.work, "status", "--porcelain", "--untracked-files=all"],
                               capture_output=True, text=True, check=True).stdout
    assert not [line for line in untracked.splitlines() if transcript.stem in line], untracked
    assert json.loads(saved.read_text()) == stats_of_transcript(ws, transcript)


def test_stats_equal_claude_codes_own_record(post_flow):
    ws, api, _, transcript = post_flow
    stats = stats_of_transcript(ws, transcript)
    record = stats["claude_code_cost"]
    assert record["agrees"] is True and record["reasons"] == []
    for model, row in stats["models"].items():
        assert {k: row[f"{k}_tokens"] for k in ("input", "output", "cache_creation", "cache_read")} == \
            {k: record["models"][model][k] for k in ("input", "output", "cache_creation", "cache_read")}, model
        assert row["cost_usd"] == pytest.approx(record["models"][model]["cost_usd"], rel=0.005, abs=1e-4)
    assert stats["estimated_cost_usd"] == pytest.approx(record["total_cost_usd"], rel=0.005)
    # and both equal what the fake API served
    served = collections.Counter()
    for reply in api.served:
        for key, value in reply["usage"].items():
            if key in ("input_tokens", "output_tokens"):
                served[key] += value
    assert stats["total_tokens"]["input"] == served["input_tokens"]
    assert stats["total_tokens"]["output"] == served["output_tokens"]
    assert [c["message"] for c in stats["commits"]] == ["Add the parser", "Test the parser"]
    [agent] = stats["subagents"]
    assert agent["model"] == "claude-haiku-5-5" and agent["description"] == "Review the parser"
    assert agent["type"] == "general-purpose" and agent["tokens"]["output"] == 75
    assert [s["skill"] for s in stats["skills_invoked"]] == ["session"]


def test_the_comment_shows_claude_codes_record_beside_the_estimate(post_flow):
    ws, _, _, transcript = post_flow
    proc = run_cli("--phase", "comment", "--dry-run", "--transcript", transcript, "--quiet",
                   env={"HOME": str(ws.home)}, cwd=ws.work)
    cost = sa.format_cost(stats_of_transcript(ws, transcript)["claude_code_cost"]["total_cost_usd"])
    assert f"**Claude Code's own record:** {cost} (agrees with the estimate)." in proc.stdout
    listed = json.loads(run_cli("--phase", "list", "--json", "--projects-dir", ws.projects).stdout)
    assert listed[0]["claude_code_agrees"] is True and listed[0]["claude_code_cost_usd"] > 0


# ── resume, continue, compaction, fork ────────────────────────────────────────

def test_each_api_call_is_counted_once_in_the_session_that_made_it(lifecycle):
    ws, api = lifecycle
    every = sa.HistoryReader(ws.projects, sa.ReadOptions(workers=1)).each_session(sa.FULL, facts_of)
    counted = collections.defaultdict(list)
    for facts in every:
        for call in facts.calls:
            counted[call.key[0]].append(facts.session_id)
    served = {reply["id"]: reply for reply in api.served}
    in_transcripts = {r["message"]["id"] for r in records(ws.transcripts()) if r["type"] == "assistant"}
    assert in_transcripts <= set(served)
    assert {msg: owners for msg, owners in counted.items()} == \
        {msg: [served[msg]["session_id"]] for msg in in_transcripts}
    # the resumed and continued runs share the session (one file); the fork has its own
    assert len({reply["session_id"] for reply in api.served}) == 2
    rows = {r["session_id"]: r for r in json.loads(run_cli("--phase", "list", "--json", "--projects-dir",
                                                           ws.projects).stdout)}
    for sid, row in rows.items():
        own = [served[m]["usage"] for m in in_transcripts if served[m]["session_id"] == sid]
        transcript = row.get("transcript_estimate", row)["total_tokens"]
        assert transcript["output"] == sum(u["output_tokens"] for u in own), sid
        # the headline adds what Claude Code billed for the session and wrote no line for
        # (compaction's calls), and nothing another session billed
        billed = [reply["usage"] for reply in api.served if reply["session_id"] == sid]
        assert row["total_tokens"]["output"] == sum(u["output_tokens"] for u in billed), sid


def test_claude_codes_record_across_resume_continue_compaction_and_fork(lifecycle):
    """cost-state is cumulative over every process of a session; compaction's summary calls are
    billed but never written as assistant lines; a fork starts from its parent's total."""
    ws, api = lifecycle
    main = ws.projects.glob(f"*/{RESUMED}.jsonl").__next__()
    stats = stats_of_transcript(ws, main)
    record = stats["claude_code_cost"]
    billed = [r["usage"] for r in api.served if r["session_id"] == RESUMED]
    assert record["models"]["claude-opus-5-5"]["output"] == sum(u["output_tokens"] for u in billed)
    gaps = [r for r in record["reasons"] if r["reason"] == "not in transcript"]
    unwritten = {r["id"] for r in api.served if r["session_id"] == RESUMED} - \
        {r["message"]["id"] for r in records([main]) if r["type"] == "assistant"}
    assert len(unwritten) >= 1 and stats["compactions"] >= 1              # the compaction's own calls
    assert gaps and gaps[0]["tokens"]["output"] == sum(r["usage"]["output_tokens"] for r in api.served
                                                       if r["id"] in unwritten)
    [fork] = [t for t in ws.transcripts() if t.stem != RESUMED]
    forked = stats_of_transcript(ws, fork)["claude_code_cost"]
    assert forked["agrees"] is False and forked["reasons"][0]["reason"] == "replayed"
    assert forked["total_cost_usd"] > record["total_cost_usd"]               # the parent's total, and more


# ── the format itself ─────────────────────────────────────────────────────────

def test_every_record_type_is_read_or_knowingly_skipped(post_flow, lifecycle):
    paths = post_flow[0].transcripts() + lifecycle[0].transcripts()
    seen = records(paths)
    types = {r.get("type") for r in seen}
    assert types - READ_TYPES.keys() - SKIPPED_TYPES.keys() == set(), "unclassified record types"
    attachments = {r["attachment"].get("type") for r in seen if r.get("type") == "attachment"}
    assert attachments - KNOWN_ATTACHMENTS == set(), "unclassified attachment types"
    assert {"user", "assistant", "cost-state", "attachment", "api-request"} <= types
    assert {"skill_listing", "prompt_snapshot"} <= attachments
    assert all(r.get("version") == cs.PINNED_VERSION for r in seen if r.get("type") in ("user", "assistant"))


def test_every_record_type_in_the_committed_fixtures_is_read_or_knowingly_skipped():
    paths = sorted((Path(__file__).parent / "fixtures" / "claude-code").glob("*/projects/**/*.jsonl"))
    seen = records([p for p in paths if p.name != "journal.jsonl"])
    assert {r.get("type") for r in seen} - READ_TYPES.keys() - SKIPPED_TYPES.keys() == set()
    attachments = {r["attachment"].get("type") for r in seen if r.get("type") == "attachment"}
    assert attachments - KNOWN_ATTACHMENTS == set() and READ_ATTACHMENTS.keys() <= attachments
    assert {r.get("version") for r in seen if r.get("type") in ("user", "assistant")} == {cs.PINNED_VERSION}


# ── prices: ours against Claude Code's own, model by model ─────────────────────

# One call per case; Claude Code prices it in its cost-state record with its own table.
PRICE_CASES = [(model, {}) for model in (
    "claude-sonnet-5", "claude-sonnet-5-5", "claude-opus-5", "claude-opus-5-5", "claude-opus-4-8", "claude-opus-4-6",
    "claude-haiku-5-5", "claude-haiku-4-5", "claude-fable-5", "claude-fable-5-1", "claude-fable-5-2",
    "claude-mythos-5", "claude-sonnet-4-5")] + [
    (model, {"speed": "fast"}) for model in ("claude-opus-5-5", "claude-opus-5", "claude-opus-4-8",
                                             "claude-opus-4-6", "claude-fable-5-2")] + [
    ("claude-haiku-5-5", {"input_tokens": 60_001, "cache_read": 40_000}),      # over 100k: the higher tier
    ("claude-opus-5-5", {"cache_creation": 30_000, "cache_1h": 10_000}),         # 1-hour cache writes
]


def test_our_prices_are_claude_codes_own_for_every_current_model(claude_bin, tmp_path):
    """Claude Code 2.1.332 prices every call it makes; each of ours must be the same (Sonnet 4/4.5
    calls over 200k are the one known difference: Claude Code prices them at the standard rate,
    the pricing page's long-context rate applies, see docs/counting.md)."""
    from fake_anthropic import Turn
    turns = [Turn(text="ok", **{"input_tokens": 10_000, "output_tokens": 20_000, "cache_read": 40_000, **extra})
             for _, extra in PRICE_CASES]
    script = {"main": turns[:1]}
    api = FakeAnthropic(script).start()
    ws = cs.Workspace(tmp_path, api)
    try:
        for (model, extra), turn in zip(PRICE_CASES, turns):
            script["main"] = [turn]
            before = set(ws.transcripts())
            proc = ws.run("price check", "--model", model)
            assert proc.returncode == 0, proc.stderr
            [new] = set(ws.transcripts()) - before
            stats = stats_of_transcript(ws, new)
            record = stats["claude_code_cost"]
            assert record["reasons"] == [] and record["agrees"], (model, extra, record)
            assert stats["estimated_cost_usd"] == pytest.approx(record["total_cost_usd"], rel=1e-3), (model, extra)
    finally:
        api.stop()


def test_claude_codes_own_otlp_logs_of_a_live_run_give_that_runs_numbers(claude_bin, tmp_path):
    """The real Claude Code, offline, telemetry on: what `stats --otel-file` reads from its OTLP
    logs is what `stats` reads from its transcript of the same run, but the commit."""
    outcome = cs.otel(tmp_path / "run", claude_bin)
    outcome.otel.write_jsonl(tmp_path / "otel.jsonl")
    told = stats_json("--otel-file", tmp_path / "otel.jsonl", "--projects-dir", tmp_path / "none", "--quiet")
    written = stats_json("--projects-dir", outcome.ws.projects, "--session-id", cs.session_id(10), "--quiet")
    for field in ("session_id", "total_tokens", "estimated_cost_usd", "turns", "tools", "branch"):
        assert told[field] == written[field], field
    assert told["claude_code_cost"]["total_cost_usd"] == pytest.approx(written["claude_code_cost"]["total_cost_usd"])
    assert told["claude_code_cost"]["agrees"] and len(written["commits"]) == 1 and told["commits"] == []
