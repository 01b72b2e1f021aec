"""The committed Claude Code fixtures (tests/fixtures/claude-code/, see its README) hold what they
claim: each was written by the real Claude Code against the fake Messages API, and these checks
read the committed files only, so they run without Claude Code installed. Nothing here depends on
the workspace path Claude Code wrote (cwd, the project folder's name): it differs per machine."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest

import claude_sessions as cs

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "claude-code"


def manifest(name: str) -> dict:
    return json.loads((FIXTURES / name / "manifest.json").read_text())


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def transcripts(name: str, subagents: bool = False) -> list[Path]:
    """The main transcripts of a fixture (one per session), or its subagents' transcripts."""
    found = sorted((FIXTURES / name / "projects").glob("*/*.jsonl"))
    if subagents:
        found = sorted(p for p in (FIXTURES / name / "projects").rglob("agent-*.jsonl") if "subagents" in p.parts)
    return found


def session(name: str, sid: str) -> list[dict]:
    [path] = [p for p in transcripts(name) if p.stem == sid]
    return lines(path)


def of_type(records: list[dict], kind: str, attachment: str = "") -> list[dict]:
    return [r for r in records if r.get("type") == kind
            and (not attachment or (r.get("attachment") or {}).get("type") == attachment)]


def assistant_calls(records: list[dict]) -> dict:
    """message.id -> (requestId, usage, model) of the assistant lines (a reply spans several lines)."""
    return {r["message"]["id"]: (r.get("requestId"), r["message"]["usage"], r["message"]["model"])
            for r in of_type(records, "assistant")}


# ── every fixture ──────────────────────────────────────────────────────────────

def test_every_fixture_scenario_is_committed_with_its_manifest():
    assert sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) == sorted(cs.FIXTURE_SCENARIOS)
    readme = (FIXTURES / "README.md").read_text()
    for name in cs.FIXTURE_SCENARIOS:
        m = manifest(name)
        assert m["scenario"] == name and re.fullmatch(r"\d+\.\d+\.\d+", m["claude_code_version"])
        assert m["served"] and m["sessions"], name
        assert f"`{name}/`" in readme, f"{name} is not described in the README"
        for sid, info in m["sessions"].items():
            assert (FIXTURES / name / info["transcript"]).stem == sid
            # the manifest's cost-state is the transcript's last
            assert info["cost_state"] == of_type(session(name, sid), "cost-state")[-1]
        for other in m["stdout"]:
            assert (FIXTURES / name / other).is_file()


@pytest.mark.parametrize("name", sorted(cs.FIXTURE_SCENARIOS))
def test_each_call_in_a_transcript_was_served_by_the_fake_with_its_request_id(name):
    served = {r["id"]: r for r in manifest(name)["served"]}
    for path in transcripts(name) + transcripts(name, subagents=True):
        records = lines(path)
        assert all(r.get("version") == manifest(name)["claude_code_version"]
                   for r in records if r.get("type") in ("user", "assistant"))
        for msg_id, (request_id, usage, model) in assistant_calls(records).items():
            assert msg_id in served, (path.name, msg_id)
            assert request_id == served[msg_id]["request_id"] == "req_fake_" + msg_id[len("msg_fake_"):]
            assert model == served[msg_id]["model"]
            for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                assert usage[key] == served[msg_id]["usage"][key], (path.name, msg_id, key)


# ── a. the advisor ─────────────────────────────────────────────────────────────

def test_advisor_lines_carry_iterations_of_both_kinds_with_their_own_cache_split():
    m = manifest("advisor")
    [sid] = m["sessions"]
    records = session("advisor", sid)
    [tool] = of_type(records, "attachment", "advisor_tool")
    assert tool["attachment"]["model"] == cs.ADVISOR and tool["attachment"]["available"] is True
    calls = assistant_calls(records)
    assert len(calls) == 3
    assert {r.get("advisorModel") for r in of_type(records, "assistant")} == {cs.ADVISOR}
    advised = {msg: usage for msg, (_, usage, _) in calls.items() if usage.get("iterations")}
    assert len(advised) == 2 and [u["iterations"] for _, u, _ in calls.values()].count([]) == 1
    for msg, usage in advised.items():
        kinds = collections.Counter(i["type"] for i in usage["iterations"])
        assert kinds["message"] >= 2 and kinds["advisor_message"] >= 1
        executor = [i for i in usage["iterations"] if i["type"] == "message"]
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            assert usage[key] == sum(i[key] for i in executor), (msg, key)      # the top level: the executor
        for advice in (i for i in usage["iterations"] if i["type"] == "advisor_message"):
            assert advice["model"] == cs.ADVISOR
            split = advice["cache_creation"]
            assert split["ephemeral_5m_input_tokens"] + split["ephemeral_1h_input_tokens"] == \
                advice["cache_creation_input_tokens"]
    # some advisor iteration's 5m/1h split is not the top level's: pricing it with the top's differs
    assert any(a["cache_creation"]["ephemeral_1h_input_tokens"] * u["cache_creation_input_tokens"]
               != u["cache_creation"]["ephemeral_1h_input_tokens"] * a["cache_creation_input_tokens"]
               for u in advised.values() for a in u["iterations"] if a["type"] == "advisor_message")
    # Claude Code's own record: the executor's top level under the executor, advisor iterations apart
    usage = m["sessions"][sid]["cost_state"]["modelUsage"]
    advice = [i for u in advised.values() for i in u["iterations"] if i["type"] == "advisor_message"]
    assert usage[cs.ADVISOR]["inputTokens"] == sum(i["input_tokens"] for i in advice)
    assert usage[cs.ADVISOR]["cacheCreationEphemeral1hInputTokens"] == \
        sum(i["cache_creation"]["ephemeral_1h_input_tokens"] for i in advice)
    assert usage[cs.EXECUTOR]["outputTokens"] == sum(u["output_tokens"] for _, u, _ in calls.values())


# ── b. calls outside the transcript ───────────────────────────────────────────

def test_prompt_hooks_compact_and_suggestions_are_billed_but_not_written():
    m = manifest("hooks-and-compact")
    [sid] = m["sessions"]
    records = session("hooks-and-compact", sid)
    written = set(assistant_calls(records))
    kinds = collections.Counter(r["conversation"] for r in m["served"])
    assert kinds["evaluator"] >= 2 and kinds["compact"] >= 1 and kinds["suggestion"] >= 1
    unwritten = [r for r in m["served"] if r["id"] not in written]
    assert {r["conversation"] for r in unwritten} == {"evaluator", "compact", "suggestion"}
    assert any(json.loads(line).get("type") == "prompt_suggestion"
               for line in (FIXTURES / "hooks-and-compact" / "stdout-4-suggestions.jsonl").read_text().splitlines())
    assert of_type(records, "system") and any(r.get("subtype") == "compact_boundary" for r in records)
    usage = m["sessions"][sid]["cost_state"]["modelUsage"][cs.MODEL]
    assert usage["inputTokens"] == sum(r["usage"]["input_tokens"] for r in m["served"])
    assert usage["inputTokens"] > sum(u["input_tokens"] for _, u, _ in assistant_calls(records).values())


# ── c. /goal ──────────────────────────────────────────────────────────────────

def test_goal_writes_goal_status_attachments_not_met_then_met():
    m = manifest("goal")
    [sid] = m["sessions"]
    records = session("goal", sid)
    statuses = [r["attachment"] for r in of_type(records, "attachment", "goal_status")]
    assert statuses[0]["sentinel"] is True and statuses[0]["condition"] == "the tests pass"
    assert [s["met"] for s in statuses] == [False, False, True]
    assert any("<command-name>/goal</command-name>" in str(r["message"]["content"]) for r in of_type(records, "user"))
    evaluations = [r for r in m["served"] if r["conversation"] == "evaluator"]
    assert len(evaluations) == 2 and not {r["id"] for r in evaluations} & set(assistant_calls(records))


# ── d. where prompts come from ────────────────────────────────────────────────

def test_a_prompt_sent_while_busy_is_queued_and_a_task_notification_starts_a_turn():
    [sid] = manifest("queued-prompts")["sessions"]
    records = session("queued-prompts", sid)
    [queued] = of_type(records, "attachment", "queued_command")
    assert queued["attachment"]["prompt"] == "Also add tests"
    users = of_type(records, "user")
    assert not [u for u in users if u["message"]["content"] == "Also add tests"]       # no user line of its own
    assert {("enqueue", "Also add tests"), ("remove", "Also add tests")} <= \
        {(r["operation"], r.get("content")) for r in of_type(records, "queue-operation")}
    [first] = [u for u in users if u["message"]["content"] == "Fix the parser"]
    assert first["promptSource"] == "sdk"
    [notified] = [u for u in users if (u.get("origin") or {}).get("kind") == "task-notification"]
    assert notified["turnOrigin"] == "task_notification" and "<task-notification>" in notified["message"]["content"]


def test_a_shell_command_commit_typed_in_the_terminal():
    [sid] = manifest("shell-commit")["sessions"]
    records = session("shell-commit", sid)
    contents = [u["message"]["content"] for u in of_type(records, "user")]
    i = contents.index('<bash-input>git commit -m "Fix the typo"</bash-input>')
    assert re.match(r"<bash-stdout>\[feat/report [0-9a-f]{7,}\] Fix the typo\n", contents[i + 1])
    typed = [u for u in of_type(records, "user") if u.get("promptSource") == "typed"]
    assert [u["message"]["content"] for u in typed] == ["Say hi", "Thanks"]
    assert all(u["origin"] == {"kind": "human"} for u in typed)


# ── e. skills ─────────────────────────────────────────────────────────────────

def test_calls_after_a_skill_carry_its_attribution_and_the_plugins():
    [sid] = manifest("skills")["sessions"]
    records = session("skills", sid)
    attributed = collections.Counter((r.get("attributionSkill"), r.get("attributionPlugin"))
                                     for r in of_type(records, "assistant"))
    assert attributed[("changelog", None)] >= 1 and attributed[("shipper:review", "shipper")] >= 1
    [agent] = transcripts("skills", subagents=True)
    for line in of_type(lines(agent), "assistant"):
        assert (line["attributionSkill"], line["attributionPlugin"], line["attributionAgent"]) == \
            ("shipper:review", "shipper", "general-purpose")


# ── f. pr-link ────────────────────────────────────────────────────────────────

def test_gh_pr_create_writes_a_pr_link():
    [sid] = manifest("pr-link")["sessions"]
    links = of_type(session("pr-link", sid), "pr-link")
    assert links and all((r["prRepository"], r["prNumber"], r["prUrl"], r["sessionId"]) ==
                         (cs.REPO, 7, cs.PR_URL, sid) for r in links)


# ── g. workflows ──────────────────────────────────────────────────────────────

def test_a_workflow_run_keeps_its_agents_under_subagents_workflows():
    [sid] = manifest("workflow")["sessions"]
    [main] = [p for p in transcripts("workflow") if p.stem == sid]
    agents = sorted(main.parent.glob(f"{sid}/subagents/workflows/wf_*/agent-*.jsonl"))
    assert len(agents) == 2
    for agent in agents:
        meta = json.loads(agent.with_suffix(".meta.json").read_text())
        assert meta["agentType"] == "workflow-subagent"
        assert {r.get("attributionAgent") for r in of_type(lines(agent), "assistant")} == {"workflow-subagent"}
    assert (agents[0].parent / "journal.jsonl").is_file()
    assert list(main.parent.glob(f"{sid}/workflows/wf_*.json"))


# ── h. fork ───────────────────────────────────────────────────────────────────

def test_a_fork_replays_its_parents_calls_with_the_same_ids():
    m = manifest("fork")
    parent = cs.session_id(9)
    [child] = [s for s in m["sessions"] if s != parent]
    parent_calls = assistant_calls(session("fork", parent))
    child_records = session("fork", child)
    child_calls = assistant_calls(child_records)
    assert parent_calls and set(parent_calls) < set(child_calls)
    for msg, (request_id, usage, _) in parent_calls.items():
        assert child_calls[msg][:2] == (request_id, usage)
    replayed = [r for r in of_type(child_records, "assistant") if r["message"]["id"] in parent_calls]
    assert all(r["sessionId"] == child and r.get("requestSessionId") == parent for r in replayed)
    assert m["sessions"][child]["cost_state"]["totalCostUSD"] > m["sessions"][parent]["cost_state"]["totalCostUSD"]


# ── i. OpenTelemetry ──────────────────────────────────────────────────────────

def otel_logs(name: str) -> list[dict]:
    """Every log record of otel.jsonl, its attributes flattened."""
    out = []
    for body in lines(FIXTURES / name / "otel.jsonl"):
        assert set(body) <= {"resourceLogs", "resourceMetrics", "resourceSpans"}, body.keys()
        for resource in body.get("resourceLogs", []):
            for scope in resource["scopeLogs"]:
                for record in scope["logRecords"]:
                    attrs = {a["key"]: next(iter(a["value"].values())) for a in record["attributes"]}
                    out.append({"body": record["body"].get("stringValue"), **attrs})
    return out


def test_claude_codes_otel_logs_beside_its_transcript():
    m = manifest("otel")
    [sid] = m["sessions"]
    logs = otel_logs("otel")
    requests = [r for r in logs if r["body"] == "claude_code.api_request"]
    assert requests and {r["session.id"] for r in requests} == {sid}
    # one api_request per call the fake served, with the request id written on the transcript's lines
    written = {**assistant_calls(session("otel", sid)),
               **{k: v for p in transcripts("otel", subagents=True) for k, v in assistant_calls(lines(p)).items()}}
    assert sorted(r["request_id"] for r in requests) == sorted(v[0] for v in written.values()) == \
        sorted(r["request_id"] for r in m["served"])
    [agent] = transcripts("otel", subagents=True)
    agent_id = of_type(lines(agent), "assistant")[0]["agentId"]
    assert {r.get("agent_id") for r in requests} == {None, agent_id}
    failed = [r for r in logs if r["body"] == "claude_code.tool_result" and r["success"] == "false"]
    assert {r.get("agent_id") for r in failed} == {None, agent_id}          # one in the main thread, one in the agent
    metrics = [b for b in lines(FIXTURES / "otel" / "otel.jsonl") if "resourceMetrics" in b]
    assert metrics
