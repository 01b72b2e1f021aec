#!/usr/bin/env python3
"""Deterministic Claude Code histories for `make bench`, from tiny to gigabytes.

    python3 tests/bench/generate.py OUT --size 100M [--shape results|assistant] [--seed 1]

writes OUT/projects/<project>/... the way Claude Code does: compact JSON lines; big Read and
Bash results in user lines (shape "results", the common case) or many small assistant lines
(shape "assistant"); parallel tool calls written as several lines sharing one message id, the
early ones with placeholder output tokens; subagents in all three layouts (subagents/ folder,
flat agent-*.jsonl, inline sidechains); Skill calls, git commits, tool errors, several models.
OUT/manifest.json maps every flat agent file to its parent session, so per-session totals can
be compared with tools that list agent files as sessions of their own.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid as uuidlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

MODELS = ("claude-opus-4-6", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001")
SKILLS = ("tdd:ci", "rca:ci", "tdd:kind", "ci:status")
LAYOUTS = ("subagents", "flat", "inline")
VERSION_OF = {"subagents": "2.1.30", "flat": "2.0.55", "inline": "1.0.120"}
LOREM = ('def handler(event, context):\n    value = compute(event["payload"])\n'
         '    return {"status": 200, "body": json.dumps(value)}\n')


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


class SessionWriter:
    """Writes one session's lines; each call appends records with advancing timestamps."""

    def __init__(self, rng: random.Random, sid: str, cwd: str, branch: str, layout: str, start: datetime):
        self.rng, self.sid, self.cwd, self.branch, self.layout = rng, sid, cwd, branch, layout
        self.clock = start
        self.lines: list[str] = []
        self.parent = None
        self.agents: dict[str, list[str]] = {}     # agent id -> its file's lines

    def _uid(self) -> str:
        return str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))

    def _envelope(self, kind: str, agent: str | None = None, parent=None) -> dict:
        self.clock += timedelta(seconds=self.rng.randint(1, 40))
        rec = {"parentUuid": parent, "isSidechain": agent is not None, "userType": "external",
               "cwd": self.cwd, "sessionId": self.sid, "version": VERSION_OF[self.layout],
               "gitBranch": self.branch, "type": kind, "uuid": self._uid(),
               "timestamp": self.clock.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.rng.randint(0, 999):03d}Z"}
        if agent is not None and self.layout != "inline":
            rec["agentId"] = agent
        return rec

    def _emit(self, rec: dict, agent: str | None):
        text = dumps(rec)
        if agent is None or self.layout == "inline":
            self.lines.append(text)
        else:
            self.agents.setdefault(agent, []).append(text)

    def prompt(self, text: str, agent=None, parent=None):
        rec = self._envelope("user", agent, parent)
        rec["message"] = {"role": "user", "content": text}
        self._emit(rec, agent)
        return rec["uuid"]

    def assistant_turn(self, model: str, tools: list[tuple], agent=None, parent=None, big: bool = True):
        """One API call: thinking/text, then its tool calls on separate lines sharing the message id."""
        msg_id = "msg_" + self._uid().replace("-", "")[:24]
        request = "req_" + self._uid().replace("-", "")[:24]
        usage_final = {"input_tokens": self.rng.randint(1, 40),
                       "cache_creation_input_tokens": self.rng.randint(0, 30000),
                       "cache_read_input_tokens": self.rng.randint(1000, 180000),
                       "output_tokens": self.rng.randint(50, 4000),
                       "service_tier": "standard"}
        blocks = [{"type": "text", "text": "Let me look at that. " * self.rng.randint(1, 8)}]
        blocks += [{"type": "tool_use", "id": "toolu_" + self._uid().replace("-", "")[:24], "name": name,
                    "input": tool_input} for name, tool_input in tools]
        last_uuid = parent
        for i, block in enumerate(blocks):
            rec = self._envelope("assistant", agent, last_uuid)
            usage = dict(usage_final)
            if i < len(blocks) - 1:
                usage["output_tokens"] = self.rng.randint(1, 9)      # streaming placeholder
            rec["requestId"] = request
            rec["message"] = {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                              "content": [block], "stop_reason": None if i < len(blocks) - 1 else "tool_use",
                              "usage": usage}
            self._emit(rec, agent)
            last_uuid = rec["uuid"]
        return [b for b in blocks if b["type"] == "tool_use"], last_uuid

    def result(self, tool_use: dict, text: str, is_error: bool = False, agent=None, parent=None, extra=None):
        rec = self._envelope("user", agent, parent)
        rec["message"] = {"role": "user", "content": [{"tool_use_id": tool_use["id"], "type": "tool_result",
                                                       "content": text, "is_error": is_error}]}
        rec["toolUseResult"] = extra if extra is not None else {"stdout": text, "stderr": "",
                                                                 "interrupted": False, "isImage": False}
        self._emit(rec, agent)
        return rec["uuid"]


def big_text(rng: random.Random, shape: str) -> str:
    if shape == "assistant":
        return LOREM[: rng.randint(20, 160)]
    return LOREM * rng.randint(20, 600)          # about 2 KB to 60 KB, like Read of a source file


def write_session(rng: random.Random, root: Path, project: str, sid: str, layout: str, shape: str,
                  start: datetime, turns: int, manifest: dict) -> int:
    w = SessionWriter(rng, sid, "/work/" + project.strip("-").split("-")[-1], f"feat/{sid[:6]}", layout, start)
    parent = w.prompt("Fix the failing test in the auth module")
    commit_no = 0
    for turn in range(turns):
        model = MODELS[0] if rng.random() < 0.7 else MODELS[1]
        roll = rng.random()
        if roll < 0.06:
            tools = [("Skill", {"skill": rng.choice(SKILLS)})]
        elif roll < 0.12:
            tools = [("Task", {"subagent_type": rng.choice(("Explore", "general-purpose")),
                               "description": "Investigate the failure", "prompt": f"Look into part {turn}"})]
        elif roll < 0.5:       # parallel reads
            tools = [("Read", {"file_path": f"/work/src/mod_{rng.randint(1, 80)}.py"})
                     for _ in range(rng.randint(2, 4))]
        elif roll < 0.6:
            commit_no += 1
            tools = [("Bash", {"command": f"git add -A && git commit -m 'Fix step {commit_no}'"})]
        else:
            tools = [("Bash", {"command": rng.choice(("make test", "pytest -q", "ruff check ."))}),
                     ("Edit", {"file_path": "/work/src/auth.py", "old_string": "a", "new_string": "b"})]
        uses, parent = w.assistant_turn(model, tools, parent=parent)
        for use in uses:
            name = use["name"]
            if name == "Task":
                agent = format(rng.getrandbits(28), "07x")
                child = w.prompt(use["input"]["prompt"], agent=agent)
                for _ in range(rng.randint(2, 5)):
                    sub_uses, child = w.assistant_turn(MODELS[2], [("Grep", {"pattern": "token"})], agent=agent,
                                                       parent=child)
                    child = w.result(sub_uses[0], big_text(rng, shape), agent=agent, parent=child)
                if layout == "flat":
                    manifest[f"agent-{agent}"] = sid
                parent = w.result(use, f"Done.\nagentId: {agent}", parent=parent,
                                  extra={"agentId": agent, "status": "completed"})
            elif name == "Bash" and "commit" in use["input"]["command"]:
                sha = format(rng.getrandbits(28), "07x")
                parent = w.result(use, f"[{w.branch} {sha}] Fix step {commit_no}\n 2 files changed", parent=parent)
            elif name == "Bash":
                failed = rng.random() < 0.25
                parent = w.result(use, ("FAILED tests/test_auth.py::test_refresh\n" if failed else "ok\n")
                                  + big_text(rng, shape)[:4000], is_error=failed, parent=parent)
            elif name == "Skill":
                parent = w.result(use, f"Launching skill: {use['input']['skill']}", parent=parent)
            else:
                text = big_text(rng, shape)
                lines = text.count("\n")
                # Claude Code repeats a Read's text in toolUseResult.file.content.
                parent = w.result(use, text, parent=parent,
                                  extra={"type": "text", "file": {"filePath": use["input"].get("file_path", ""),
                                                                  "content": text, "numLines": lines,
                                                                  "startLine": 1, "totalLines": lines}})
        if rng.random() < 0.08:
            parent = w.prompt("Now run the full suite", parent=parent)
    folder = root / project
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    main = folder / f"{sid}.jsonl"
    text = "\n".join(w.lines) + "\n"
    main.write_text(text, encoding="utf-8")
    written += len(text.encode())
    for agent, lines in w.agents.items():
        path = (folder / sid / "subagents" / f"agent-{agent}.jsonl" if layout == "subagents"
                else folder / f"agent-{agent}.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(lines) + "\n"
        path.write_text(text, encoding="utf-8")
        written += len(text.encode())
    return written


def generate(out: Path, size: int, shape: str = "results", seed: int = 1) -> dict:
    rng = random.Random(f"{seed}-{shape}-{size}")
    root = out / "projects"
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"size": size, "shape": shape, "seed": seed, "sessions": [], "flat_agents": {}}
    total, n = 0, 0
    start = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    turns_per_session = 60 if shape == "results" else 400
    while total < size:
        layout = LAYOUTS[n % 3]
        project = f"-work-project-{n % 7}"
        sid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        total += write_session(rng, root, project, sid, layout, shape, start + timedelta(hours=3 * n),
                               turns_per_session, manifest["flat_agents"])
        manifest["sessions"].append(sid)
        n += 1
    manifest["bytes"] = total
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def generate_single(out: Path, size: int, seed: int = 7) -> dict:
    """One session of about `size` bytes (results-shaped), for timing `stats` alone."""
    rng = random.Random(f"single-{seed}-{size}")
    sid = "5ea51e00-0000-4000-8000-000000000001"
    turns = max(20, size // 134_000)
    written = write_session(rng, out / "projects", "-work-big", sid, "subagents", "results",
                            datetime(2026, 1, 5, tzinfo=timezone.utc), turns, {})
    manifest = {"session": sid, "bytes": written}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--size", default="10M")
    parser.add_argument("--shape", choices=("results", "assistant"), default="results")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--single-session", action="store_true", help="one big session of about --size")
    args = parser.parse_args(argv)
    if args.single_session:
        manifest = generate_single(Path(args.out), parse_size(args.size), args.seed)
        print(f"{args.out}: one session, {manifest['bytes'] / 2**20:.1f} MiB", file=sys.stderr)
        return 0
    manifest = generate(Path(args.out), parse_size(args.size), args.shape, args.seed)
    print(f"{args.out}: {len(manifest['sessions'])} sessions, {manifest['bytes'] / 2**20:.1f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
