"""The stats phase: numbers pinned to hand-computed expectations on real and synthetic transcripts."""

from __future__ import annotations

import json
import random

import pytest

from conftest import SYNTHETIC_SAMPLES, Transcript, sa, stats_json, stats_of, tokens, usage

WORKTREES = "-experiments-worktrees"


# ── Real transcripts ──────────────────────────────────────────────────────────
# The expected numbers below were computed by hand-written scripts that read the
# files line by line (tests/conftest.py reference_totals is the same idea).

def test_2_1_114_parallel_agents_and_placeholder_lines(real_projects):
    s = stats_of(real_projects, "ef958aa1-0e93-49f0-bb71-150f63befcd1")
    # 83 API calls: 17 on the main thread (three Agent calls share one message id and
    # are one call) plus 66 in six subagents/ files; placeholder output lines lose.
    assert s["models"]["claude-opus-4-7"]["messages"] == 83
    assert tokens(s) == [2546, 53458, 398573, 2455695]
    # main thread writes 102,189 cache tokens at the 1h rate, subagents 296,384 at 5m.
    expected = (2546 * 5 + 53458 * 25 + 296384 * 6.25 + 102189 * 10 + 2455695 * 0.5) / 1e6
    assert s["estimated_cost_usd"] == pytest.approx(expected, abs=1e-4) == 5.4513
    subs = {a["agent_id"]: a for a in s["subagents"]}
    assert len(subs) == 6
    assert subs["a4ca7529859c158c2"]["tokens"] == {"input": 445, "output": 7923,
                                                   "cache_creation": 113769, "cache_read": 615694}
    assert subs["a4ca7529859c158c2"]["messages"] == 20
    assert subs["a4ca7529859c158c2"]["description"] == "Research Claude Code plan mode"
    assert subs["a6aa8ad077d9ea083"]["tokens"] == {"input": 10, "output": 3122,
                                                   "cache_creation": 17715, "cache_read": 101254}
    assert subs["a6aa8ad077d9ea083"]["description"] == "Round 2: carol comparison"
    assert {a["type"] for a in subs.values()} == {"general-purpose"}
    assert all(a["tool_use_id"].startswith("toolu_") for a in subs.values())
    sub_total = sum(a["tokens"]["output"] for a in subs.values())
    assert sub_total == 53458 - 22901                      # main thread output is 22,901
    assert s["tools"]["Agent"] == 6
    assert s["tools_by_thread"]["main"]["TaskUpdate"] == 12
    assert s["tools_by_thread"]["subagents"]["TaskUpdate"] == 1
    assert s["branch"] == "master"                         # not a subagent's worktree branch
    # the skill ran inside subagent a52886dc…, whose calls write their cache at the 5-minute rate
    assert s["skills_invoked"] == [{
        "skill": "my-worktree-actors", "count": 1, "status": "pass",
        "tokens": {"input": 32, "output": 6270, "cache_creation": 78300, "cache_read": 404737},
        "cost_usd": round((32 * 5 + 6270 * 25 + 78300 * 6.25 + 404737 * 0.5) / 1e6, 4)}]
    shas = [c["commit_id"] for c in s["commits"]]
    assert shas == ["01788e7", "5ea305f", "e081dab", "ad2d134", "2552732", "9877e04", "3fd7533"]


def test_2_0_5_successful_and_rejected_git_commits(real_projects):
    s = stats_of(real_projects, "9e953218-585f-4692-89df-9e0747a31c68")
    assert s["commits"] == [
        {"commit_id": "030d80d", "message": "Add tokenizer application files and comprehensive README"},
        {"commit_id": "acf21f1", "message": "Fix relative paths for submodule deployment"},
        {"commit_id": "42b4429", "message": "Add dynamic base tag and favicon for standalone deployment"},
        {"commit_id": "d6cbb36", "message": "Update tokenizer submodule with dynamic base tag fix"},
        {"commit_id": "ef55c7b", "message": "Remove dynamic base tag - use simple relative paths"},
        {"commit_id": "2564804", "message": "Add rewrites for tokenizer assets to eliminate failed requests"},
    ]
    # The first commit was rejected once, then went through: a resolved problem.
    rejected = [p for p in s["problems_faced"] if p["description"].startswith("Bash failed: git commit")]
    assert rejected == [{"description": 'Bash failed: git commit -m "…"', "resolved": True, "iterations": 1,
                         "tool": "Bash", "error": "failed", "command": 'git commit -m "…"'}]
    assert s["models"] == {"claude-sonnet-4-5-20250929": {
        "messages": 101, "input_tokens": 419, "output_tokens": 3195, "cache_creation_tokens": 330302,
        "cache_read_tokens": 4775345,
        "cost_usd": round((419 * 3 + 3195 * 15 + 330302 * 3.75 + 4775345 * 0.3) / 1e6, 4)}}
    assert s["claude_code_versions"] == ["2.0.5"]


def test_multi_model_session_prices_each_model(real_projects):
    s = stats_of(real_projects, "f852ad25-1024-47da-964e-5eaae5bd6e6a")
    opus = s["models"]["claude-opus-4-1-20250805"]
    sonnet = s["models"]["claude-sonnet-4-20250514"]
    assert (opus["messages"], opus["input_tokens"], opus["output_tokens"],
            opus["cache_creation_tokens"], opus["cache_read_tokens"]) == (3, 24, 973, 50404, 39660)
    assert (sonnet["messages"], sonnet["input_tokens"], sonnet["output_tokens"],
            sonnet["cache_creation_tokens"], sonnet["cache_read_tokens"]) == (34, 125, 2157, 75878, 1188312)
    opus_cost = (24 * 15 + 973 * 75 + 50404 * 18.75 + 39660 * 1.5) / 1e6
    sonnet_cost = (125 * 3 + 2157 * 15 + 75878 * 3.75 + 1188312 * 0.3) / 1e6
    assert opus["cost_usd"] == pytest.approx(opus_cost, abs=1e-4)
    assert s["estimated_cost_usd"] == pytest.approx(opus_cost + sonnet_cost, abs=1e-4)
    assert tokens(s) == [149, 3130, 126282, 1227972]
    assert s["unpriced_models"] == []


def test_subagents_directory_layout_2_1_17(real_projects):
    s = stats_of(real_projects, "29ccd257-68b1-427f-ae5f-6524b7cb6f20")
    assert tokens(s) == [4468, 20, 50764, 272977]
    [agent] = s["subagents"]
    assert agent["agent_id"] == "a2271d1"
    assert agent["model"] == "claude-haiku-4-5-20251001"
    assert agent["messages"] == 10
    assert agent["tokens"] == {"input": 4466, "output": 18, "cache_creation": 42768, "cache_read": 236968}
    assert agent["cost_usd"] == pytest.approx((4466 * 1 + 18 * 5 + 42768 * 1.25 + 236968 * 0.1) / 1e6,
                                              abs=1e-4)


def test_flat_agent_files_fold_into_parent_2_0_55(real_projects):
    s = stats_of(real_projects, "a7da6a22-facc-4fcd-8bab-f83c87862004")
    assert tokens(s) == [2250 + 869, 31430 + 840, 175207 + 41483, 8505166 + 124362]
    [agent] = [a for a in s["subagents"] if a["agent_id"] == "c8d9b115"]
    assert agent["tokens"] == {"input": 869, "output": 840, "cache_creation": 41483, "cache_read": 124362}
    assert agent["model"] == "claude-haiku-4-5-20251001"
    assert agent["type"] != "unknown"


def test_session_known_only_from_flat_agent_files(real_projects):
    # 741790a4's own transcript is gone; nine agent-*.jsonl files still name it.
    s = stats_of(real_projects, "741790a4-4fe2-4644-9a51-fb4482074060")
    assert tokens(s) == [5173, 11549, 203280, 453218]
    assert len(s["subagents"]) == 9
    warmups = [a for a in s["subagents"] if a["type"] == "warmup"]
    assert {a["agent_id"] for a in warmups} == {"55b71465", "af75be79", "3b8502cb", "3d1bd44a"}
    assert s["turns"] == 0
    # no main thread at all: branch and folder come from the subagents' lines
    assert (s["branch"], s["cwd"]) == ("main", "/Users/dain/workspace/coderabbit-review-helper")


def test_warmup_agents_consume_tokens(real_projects):
    s = stats_of(real_projects, "7864f562-717b-4d70-a1cb-b588f7826a1a")
    assert tokens(s) == [1366 + 3, 146 + 87, 0 + 1374, 0]
    assert sorted(a["agent_id"] for a in s["subagents"]) == ["3ea04571", "b1f5d80e"]


# ── Dedupe and ownership rules on synthetic transcripts ──────────────────────

def test_streaming_placeholder_lines_keep_the_largest(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.prompt("go")
    t.assistant("msg_a", usage(10, 1, 100, 0))      # placeholder output
    t.assistant("msg_a", usage(10, 1, 100, 0))
    t.assistant("msg_a", usage(10, 250, 100, 0))    # final count
    t.assistant("msg_b", usage(5, 40, 0, 110))
    t.write()
    s = stats_of(tmp_path, "s1")
    assert tokens(s) == [15, 290, 100, 110]
    assert s["models"]["claude-sonnet-4-5-20250929"]["messages"] == 2


def test_message_id_alone_when_request_id_missing(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_a", usage(1, 5), request_id=None)
    t.assistant("msg_a", usage(1, 9), request_id=None)
    t.assistant("msg_a", usage(1, 9), request_id="req_other")   # a different request: counted
    t.write()
    assert tokens(stats_of(tmp_path, "s1")) == [2, 18, 0, 0]


def test_synthetic_model_is_excluded(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_a", usage(1, 2), model="<synthetic>")
    t.assistant("msg_b", usage(3, 4))
    t.write()
    s = stats_of(tmp_path, "s1")
    assert list(s["models"]) == ["claude-sonnet-4-5-20250929"]
    assert tokens(s) == [3, 4, 0, 0]


def test_main_thread_beats_inline_sidechain_replay(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1", version="2.0.20")
    t.tool_use("msg_main", "toolu_task", "Task",
               {"subagent_type": "Explore", "description": "Look around", "prompt": "Find the parser"},
               usage(2, 20))
    t.prompt("Find the parser", sidechain=True, new_chain=True)
    t.assistant("msg_main", usage(2, 20), sidechain=True)          # replay of the parent's call
    t.assistant("msg_side", usage(7, 70, 0, 700), sidechain=True)
    t.tool_result("toolu_task", "found it")
    t.tool_use("msg_main2", "toolu_task2", "Task",
               {"subagent_type": "Plan", "description": "Plan next", "prompt": "Plan the fix"}, usage(1, 1))
    t.prompt("Plan the fix", sidechain=True, new_chain=True)        # a second inline sidechain
    t.assistant("msg_side2", usage(3, 30), sidechain=True)
    t.tool_result("toolu_task2", "planned")
    t.write()
    s = stats_of(tmp_path, "s1")
    assert tokens(s) == [13, 121, 0, 700]
    first, second = s["subagents"]
    assert first["type"] == "Explore" and first["description"] == "Look around"
    assert first["tokens"] == {"input": 7, "output": 70, "cache_creation": 0, "cache_read": 700}
    assert first["tool_use_id"] == "toolu_task" and first["agent_id"].startswith("sidechain-")
    assert second["type"] == "Plan" and second["tokens"]["output"] == 30
    assert s["tools_by_thread"]["main"] == {"Task": 2}


def test_resumed_session_replay_belongs_to_the_first_session(tmp_path):
    first = Transcript(tmp_path / "p" / "aaaa1111.jsonl", "aaaa1111", start="2026-03-01T10:00:00Z")
    first.prompt("start")
    first.assistant("msg_1", usage(1, 10), ts="2026-03-01T10:00:05Z")
    first.assistant("msg_2", usage(1, 20), ts="2026-03-01T10:00:09Z")
    first.write()
    resumed = Transcript(tmp_path / "p" / "bbbb2222.jsonl", "bbbb2222", start="2026-03-01T11:00:00Z")
    # Replayed copies carry the original timestamps, so the tie goes to the session that ended first.
    resumed.assistant("msg_1", usage(1, 10), ts="2026-03-01T10:00:05Z")
    resumed.assistant("msg_2", usage(1, 20), ts="2026-03-01T10:00:09Z")
    resumed.prompt("continue", ts="2026-03-01T11:00:00Z")
    resumed.assistant("msg_3", usage(1, 30), ts="2026-03-01T11:00:04Z")
    resumed.write()
    assert tokens(stats_of(tmp_path, "aaaa1111")) == [2, 30, 0, 0]
    assert tokens(stats_of(tmp_path, "bbbb2222")) == [1, 30, 0, 0]


def test_flat_agent_file_is_linked_to_its_task_call(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.tool_use("msg_1", "toolu_1", "Task", {"subagent_type": "code-reviewer", "description": "Review diff",
                                            "prompt": "Review"}, usage(1, 1))
    t.tool_result("toolu_1", "looks fine", tool_use_result={"status": "completed", "agentId": "f00d",
                                                             "totalTokens": 999})
    t.write()
    agent = Transcript(tmp_path / "p" / "agent-f00d.jsonl", "s1")
    agent.prompt("Review", sidechain=True, agent="f00d")
    agent.assistant("msg_x", usage(4, 40, 400, 4000), model="claude-haiku-4-5-20251001",
                    sidechain=True, agent="f00d")
    agent.write()
    s = stats_of(tmp_path, "s1")
    [row] = s["subagents"]
    assert (row["agent_id"], row["type"], row["description"]) == ("f00d", "code-reviewer", "Review diff")
    # real usage from the agent's own lines, not toolUseResult.totalTokens
    assert row["tokens"] == {"input": 4, "output": 40, "cache_creation": 400, "cache_read": 4000}
    assert tokens(s) == [5, 41, 400, 4000]


def test_agent_tool_and_missing_subagent_transcript(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.tool_use("msg_1", "toolu_1", "Agent", {"subagent_type": "Plan", "description": "Plan it", "prompt": "x"},
               usage(1, 1))
    t.tool_result("toolu_1", "done", tool_use_result={"agentId": "gone1", "agentType": "Plan"})
    t.write()
    s = stats_of(tmp_path, "s1")
    [row] = s["subagents"]
    assert row["transcript_missing"] is True and row["tokens"] is None      # not recorded, never 0
    assert row["type"] == "Plan"


# ── Pricing ───────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("model,expected", [
    ("claude-opus-4-6-20260101", "claude-opus-4-6"),
    ("us.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
    ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
    ("claude-sonnet-4-5-20250929[1m]", "claude-sonnet-4-5"),
    ("claude-haiku-4-5", "claude-haiku-4-5"),
])
def test_model_ids_are_normalised(model, expected):
    assert sa.normalize_model_id(model) == expected
    assert sa.load_pricing(None).entry(model) is not None


def test_rates_from_the_pricing_page():
    p = sa.load_pricing(None)
    million = sa.Usage(input=1_000_000)
    assert p.cost("claude-opus-4-7", million) == 5
    assert p.cost("claude-opus-4-1", million) == 15
    assert p.cost("claude-sonnet-4-6", million) == 3
    assert p.cost("claude-haiku-4-5", million) == 1
    assert p.cost("claude-3-5-haiku-20241022", million) == pytest.approx(0.8)
    assert p.cost("claude-opus-4-5", sa.Usage(cache_creation=1_000_000, cache_1h=1_000_000)) == 10
    assert p.cost("claude-opus-4-5", sa.Usage(cache_creation=1_000_000)) == 6.25
    assert p.cost("claude-opus-4-5", sa.Usage(cache_read=1_000_000)) == 0.5


def test_long_context_and_fast_mode():
    p = sa.load_pricing(None)
    big = sa.Usage(input=150_000, cache_read=60_000, output=1_000)        # 210k input side
    assert p.cost("claude-sonnet-4-5", big) == pytest.approx((150_000 * 6 + 60_000 * 0.6 + 1_000 * 22.5) / 1e6)
    small = sa.Usage(input=150_000, output=1_000)
    assert p.cost("claude-sonnet-4", small) == pytest.approx((150_000 * 3 + 1_000 * 15) / 1e6)
    fast = sa.Usage(input=1_000_000, speed="fast")
    assert p.cost("claude-opus-4-6", fast) == pytest.approx(30)


def test_unknown_model_is_listed_never_zero(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1000, 1000), model="claude-future-9")
    t.assistant("msg_2", usage(100_000, 0))
    t.write()
    s = stats_of(tmp_path, "s1")
    assert s["unpriced_models"] == ["claude-future-9"]
    assert s["models"]["claude-future-9"]["cost_usd"] is None
    assert s["estimated_cost_usd"] == 0.3          # only the priced model, and the gap is named
    assert s["pricing_date"] == sa.PRICING_DATE


def test_pricing_file_overrides_and_extends(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.assistant("msg_1", usage(1_000_000, 1_000_000), model="claude-future-9")
    t.write()
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"date": "2027-01-01", "models": {"claude-future-9": {"input": 2, "output": 8}}}))
    s = stats_of(tmp_path, "s1", "--pricing", prices)
    assert s["estimated_cost_usd"] == 10.0 and s["unpriced_models"] == [] and s["pricing_date"] == "2027-01-01"


# ── Skills, commands, tools, commits, problems ────────────────────────────────

def test_skill_tool_and_slash_command_windows(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.prompt("<command-name>/tdd:ci</command-name>\n<command-message>tdd:ci</command-message>")
    t.assistant("msg_1", usage(1, 10))
    t.tool_use("msg_2", "toolu_b", "Bash", {"command": "make test"}, usage(2, 20))
    t.tool_result("toolu_b", "1 failed", is_error=True)
    t.tool_use("msg_3", "toolu_s", "Skill", {"skill": "rca:ci"}, usage(3, 30))
    t.tool_result("toolu_s", "Launching skill: rca:ci")
    t.tool_use("msg_4", "toolu_b2", "Bash", {"command": "make test"}, usage(4, 40))
    t.tool_result("toolu_b2", "all passed")
    t.prompt("<command-name>/clear</command-name>")             # built-in: not a skill
    t.write()
    s = stats_of(tmp_path, "s1")
    skills = {k["skill"]: k for k in s["skills_invoked"]}
    assert list(skills) == ["tdd:ci", "rca:ci"]
    # tdd:ci owns msg_1..msg_3 (msg_3 carries the Skill call itself), rca:ci owns msg_4.
    assert skills["tdd:ci"]["tokens"] == {"input": 6, "output": 60, "cache_creation": 0, "cache_read": 0}
    assert skills["rca:ci"]["tokens"] == {"input": 4, "output": 40, "cache_creation": 0, "cache_read": 0}
    assert skills["tdd:ci"]["status"] == "fail"       # its last tool result failed
    assert skills["rca:ci"]["status"] == "pass"
    assert s["tools"] == {"Bash": 2, "Skill": 1}
    assert s["turns"] == 1                            # the /tdd:ci command; /clear is not a prompt


def test_skill_without_tool_results_is_unknown_and_failed_load_is_fail(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.tool_use("msg_1", "toolu_s", "Skill", {"skill": "missing"}, usage(1, 1))
    t.tool_result("toolu_s", "Unknown skill: missing", is_error=True)
    t.tool_use("msg_2", "toolu_t", "Skill", {"skill": "quiet"}, usage(1, 1))
    t.tool_result("toolu_t", "Launching skill: quiet")
    t.assistant("msg_3", usage(1, 1))
    t.write()
    skills = {k["skill"]: k["status"] for k in stats_of(tmp_path, "s1")["skills_invoked"]}
    assert skills == {"missing": "fail", "quiet": "unknown"}


def test_root_commit_and_duplicate_shas(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.tool_use("msg_1", "toolu_1", "Bash", {"command": "git commit -m init"}, usage(1, 1))
    t.tool_result("toolu_1", "[main (root-commit) 1a2b3c4] init\n 1 file changed")
    t.tool_use("msg_2", "toolu_2", "Bash", {"command": "git log -1"}, usage(1, 1))
    t.tool_result("toolu_2", "[main 9999999] not a commit run")
    t.tool_use("msg_3", "toolu_3", "Bash", {"command": "git -C sub commit --amend --no-edit"}, usage(1, 1))
    t.tool_result("toolu_3", "[feature/x 1a2b3c4] init")
    t.tool_use("msg_4", "toolu_4", "Bash", {"command": "git commit -m 'x'"}, usage(1, 1))
    t.tool_result("toolu_4", "The user doesn't want to proceed with this tool use.", is_error=True)
    t.write()
    assert stats_of(tmp_path, "s1")["commits"] == [{"commit_id": "1a2b3c4", "message": "init"}]


def test_problems_are_grouped_resolved_and_redacted(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    for i in range(3):
        t.tool_use(f"msg_{i}", f"toolu_{i}", "Bash",
                   {"command": "cd /repo && API_TOKEN=sekrit123 npm test -- --token abcdef123456"}, usage(1, 1))
        t.tool_result(f"toolu_{i}", "Exit code 1\nnpm ERR! test failed", is_error=i < 2)
    t.tool_use("msg_e", "toolu_e", "Edit", {"file_path": "/repo/a.py"}, usage(1, 1))
    t.tool_result("toolu_e", "<tool_use_error>String to replace not found in file.</tool_use_error>", is_error=True)
    t.write()
    problems = stats_of(tmp_path, "s1")["problems_faced"]
    assert problems == [
        {"description": "Bash failed: npm test -- --token ***", "resolved": True, "iterations": 2,
         "tool": "Bash", "error": "exit code 1", "command": "npm test -- --token ***"},
        {"description": "Edit failed: /repo/a.py", "resolved": False, "iterations": 1,
         "tool": "Edit", "error": "text to replace not found", "path": "/repo/a.py"},
    ]
    assert "sekrit" not in json.dumps(problems) and "abcdef" not in json.dumps(problems)


def test_problems_file_is_merged_first(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1")
    t.tool_use("msg_1", "toolu_1", "Bash", {"command": "make lint"}, usage(1, 1))
    t.tool_result("toolu_1", "E501", is_error=True)
    t.write()
    extra = tmp_path / "problems.json"
    extra.write_text(json.dumps([{"description": "CI lint failure on line 42 password=hunter22",
                                  "resolved": True, "iterations": 2}]))
    problems = stats_of(tmp_path, "s1", "--problems", extra)["problems_faced"]
    assert problems[0] == {"description": "CI lint failure on line 42 password=***", "resolved": True,
                           "iterations": 2}
    assert problems[1]["description"] == "Bash failed: make lint"


@pytest.mark.parametrize("secret,leak", [
    ("ghp_" + "a" * 36, "aaaaaaaa"),
    ("https://user:pa55word@example.com/x", "pa55word"),
    ("AWS_SECRET_ACCESS_KEY=abc/def+ghi", "abc/def"),
    ("curl -H 'Authorization: Bearer abcdefghijklmnop'", "abcdefghijklmnop"),
    ("mysql --password=hunter2 db", "hunter2"),
    ("sk-ant-api03-abcdefghijklmnopqrstuv", "abcdefghijklmnop"),
])
def test_redaction(secret, leak):
    assert leak not in sa.redact_secrets(secret)


# ── Time, turns, compaction ───────────────────────────────────────────────────

def test_duration_active_minutes_and_turns(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1", start="2026-03-01T10:00:00Z")
    t.prompt("first", ts="2026-03-01T10:00:00Z")
    t.assistant("msg_1", usage(1, 1), ts="2026-03-01T10:10:00Z")
    t.prompt("back after lunch", ts="2026-03-01T11:10:00Z")           # 60-minute gap is idle
    t.assistant("msg_2", usage(1, 1), ts="2026-03-01T11:15:00Z")
    t.system("compact_boundary", ts="2026-03-01T11:16:00Z")
    t.raw({"type": "user", "isCompactSummary": True, "timestamp": "2026-03-01T11:16:02Z",
           "message": {"role": "user", "content": "This session is being continued..."}, "sessionId": "s1"})
    t.raw({"type": "user", "isMeta": True, "timestamp": "2026-03-01T11:16:04Z",
           "message": {"role": "user", "content": "Caveat: meta"}, "sessionId": "s1"})
    t.prompt("<local-command-stdout>done</local-command-stdout>", ts="2026-03-01T11:16:06Z")
    t.write()
    s = stats_of(tmp_path, "s1")
    assert s["started_at"] == "2026-03-01T10:00:00Z" and s["ended_at"] == "2026-03-01T11:16:06Z"
    assert s["duration_minutes"] == 76.1
    assert s["active_minutes"] == 16.1
    assert s["turns"] == 2
    assert s["compactions"] == 1


def test_stats_has_every_documented_field(real_projects):
    s = stats_of(real_projects, "ef958aa1-0e93-49f0-bb71-150f63befcd1")
    for key in ("session_id", "session_id_short", "project", "branch", "target", "started_at", "ended_at",
                "duration_minutes", "models", "total_tokens", "estimated_cost_usd", "tools",
                "skills_invoked", "subagents", "commits", "problems_faced", "workflow_edges",
                "active_minutes", "turns", "unpriced_models", "schema_version"):
        assert key in s
    assert s["session_id_short"] == "ef958aa1"
    assert s["workflow_edges"] == {}
    assert s["schema_version"] == sa.SCHEMA_VERSION


def test_target_and_repo_flags(real_projects):
    s = stats_of(real_projects, "ef958aa1", "--repo", "octo/demo", "--target", "pr", "--number", "12")
    assert s["project"] == "octo/demo" and s["target"] == {"type": "pr", "number": 12}
    assert s["session_id"] == "ef958aa1-0e93-49f0-bb71-150f63befcd1"    # found by prefix


@pytest.mark.parametrize("url,repo", [
    ("git@github.com:octo/demo.git", "octo/demo"),
    ("https://github.com/octo/demo", "octo/demo"),
    ("https://github.com/octo/demo.git", "octo/demo"),
    ("ssh://git@github.com/octo/demo.git", "octo/demo"),
    ("", None),
])
def test_repo_from_remote(url, repo):
    assert sa.repo_from_remote(url) == repo


def test_all_synthetic_samples_from_peers_parse(tmp_path):
    """Every synthetic sample from a peer project reads without error."""
    import shutil
    assert SYNTHETIC_SAMPLES.is_dir()
    project = tmp_path / "projects" / "-samples"
    shutil.copytree(SYNTHETIC_SAMPLES, project)
    for path in sorted(project.glob("*.jsonl")):
        proc = stats_json("--transcript", path, "--quiet") if path.stat().st_size else None
        if proc is not None:
            assert proc["session_id"] == path.stem


def test_main_thread_wins_even_when_the_sidechain_copy_comes_first(tmp_path):
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1", version="2.0.20")
    t.prompt("Find the parser", sidechain=True, new_chain=True)
    t.assistant("msg_shared", usage(2, 20), sidechain=True)         # replay written before the original
    t.assistant("msg_side", usage(7, 70), sidechain=True)
    t.assistant("msg_shared", usage(2, 20))
    t.write()
    s = stats_of(tmp_path, "s1")
    assert tokens(s) == [9, 90, 0, 0]
    [agent] = s["subagents"]
    assert agent["tokens"]["output"] == 70 and agent["messages"] == 1


@pytest.mark.parametrize("value, expected", [
    ("2026-02-08T22:26:37.123Z", 1770589597.123),
    ("2026-02-08T22:26:37Z", 1770589597.0),
    ("2026-02-08T23:26:37.123+01:00", 1770589597.123),
    ("2024-02-29T23:59:59.999Z", 1709251199.999),
    ("2026-02-08T22:26:²7.123Z", None),          # a digit to isdigit(), not to int()
    ("2026-02-08T22:2٣:37.123Z", None),
    ("2026-13-08T22:26:37.123Z", None),
    ("yesterday", None),
    (1770589597, None),
])
def test_timestamps_parse_to_utc_epochs_and_odd_ones_to_none(value, expected):
    assert sa.parse_ts(value) == expected


def test_lines_are_split_exactly_across_chunk_boundaries(tmp_path):
    rng = random.Random(5)
    lines = [bytes(rng.choice(b"ab{}\"\\\r") for _ in range(rng.choice((0, 1, 70_000, 150_000, rng.randint(2, 900)))))
             for _ in range(60)]
    data = b"\n".join(lines)                      # the last line has no newline
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    for start in (0, len(lines[0]) + 1):
        with open(path, "rb", buffering=0) as handle:
            got = list(sa.iter_lines(handle, start, chunk_bytes=1 << 16))
        expected = data[start:].split(b"\n")
        assert [bytes(line) for line, _, _ in got] == expected
        ends = [end for _, end, _ in got]
        assert ends[-1] == len(data) and all(data[e - 1:e] == b"\n" for e in ends[:-1])
        assert [t for _, _, t in got] == [True] * (len(expected) - 1) + [False]


def test_each_reason_claude_codes_record_can_differ_for(tmp_path):
    """A price that differs, a model only Claude Code priced, and calls after its last record:
    each named with its figures, in the stats and under the comment's token table."""
    t = Transcript(tmp_path / "p" / "s1.jsonl", "s1", start="2026-11-20T10:00:00Z")
    t.prompt("go")
    t.assistant("msg_1", usage(inp=1_000_000), model="claude-sonnet-5")          # $2.00 here
    t.assistant("msg_2", usage(inp=1_000), model="claude-nova-7")                 # no price here
    t.raw({"type": "cost-state", "sessionId": "s1", "totalCostUSD": 3.5, "hasUnknownModelCost": False,
           "modelUsage": {"claude-sonnet-5": {"inputTokens": 1_000_000, "outputTokens": 0, "costUSD": 2.5,
                                              "cacheReadInputTokens": 0, "cacheCreationInputTokens": 0},
                          "claude-nova-7": {"inputTokens": 1_000, "outputTokens": 0, "costUSD": 1.0,
                                            "cacheReadInputTokens": 0, "cacheCreationInputTokens": 0}}})
    t.assistant("msg_3", usage(out=1_000), model="claude-opus-5-5")               # after the record: $0.02
    t.write()
    stats = stats_of(tmp_path, "s1")
    record = stats["claude_code_cost"]
    assert stats["estimated_cost_usd"] == pytest.approx(2.02)
    assert record["total_cost_usd"] == 3.5 and record["difference_usd"] == pytest.approx(-1.48)
    assert record["agrees"] is False
    assert record["reasons"] == [
        {"reason": "no price here", "model": "claude-nova-7", "claude_code_usd": 1.0},
        {"reason": "not in Claude Code's record", "model": "claude-opus-5-5",
         "tokens": {"input": 0, "output": 1_000, "cache_creation": 0, "cache_read": 0}},
        {"reason": "price", "model": "claude-sonnet-5", "ours_usd": 2.0, "claude_code_usd": 2.5}]
    note = sa.claude_code_note(record)
    assert note == ("\n**Claude Code's own record:** $3.50: `claude-nova-7` has no price here; Claude Code "
                    "priced it at $1.00; the transcript has `claude-opus-5-5` calls after Claude Code's last "
                    "record (1,000 output); `claude-sonnet-5` priced at $2.00 here, $2.50 by Claude Code.\n")
