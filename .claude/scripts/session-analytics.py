#!/usr/bin/env python3
"""session-analytics: trustworthy numbers from Claude Code session transcripts.

Reads the JSONL transcripts Claude Code writes under ~/.claude/projects and turns
them into per-session statistics (tokens, cost, models, tools, skills, subagents,
commits, problems) and a listing of every session on the machine.

One file, Python >= 3.10 standard library only: copy it into any repository.

Layout of this file, in pipeline order:
  constants and pricing -> small helpers -> transcript reading ->
  session assembly (dedupe, ownership, subagents) -> stats -> list -> CLI
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_VERSION = 1
PROG = "session-analytics"

# Exit codes. Each failure class has its own code so that skills and CI can react.
EXIT_OK = 0
EXIT_INTERNAL = 1      # a bug in this script; reported as one line, never a traceback
EXIT_USAGE = 2         # bad command line (argparse uses 2 as well)
EXIT_NO_SESSION = 3    # no transcript matches the requested session
EXIT_BAD_INPUT = 4     # an input file (transcript, pricing, problems, stats) is unusable
EXIT_OUTPUT = 5        # an output file could not be written

# ── Constants and pricing ─────────────────────────────────────────────────────

PRICING_DATE = "2026-11-01"

# USD per million tokens: input, output, 5-minute cache write, 1-hour cache write, cache read.
# Sources: Anthropic's pricing page and LiteLLM's model_prices_and_context_window.json.
_OPUS_NEW = (5.0, 25.0, 6.25, 10.0, 0.50)
_OPUS_OLD = (15.0, 75.0, 18.75, 30.0, 1.50)
_SONNET = (3.0, 15.0, 3.75, 6.0, 0.30)
_SONNET_LONG = (6.0, 22.50, 7.50, 12.0, 0.60)   # whole request when input side > 200k tokens
LONG_CONTEXT_THRESHOLD = 200_000

BUILTIN_PRICES = {
    "claude-opus-4-8": {"rates": _OPUS_NEW},
    "claude-opus-4-7": {"rates": _OPUS_NEW},
    "claude-opus-4-6": {"rates": _OPUS_NEW, "fast_multiplier": 6.0},
    "claude-opus-4-5": {"rates": _OPUS_NEW},
    "claude-opus-4-1": {"rates": _OPUS_OLD},
    "claude-opus-4": {"rates": _OPUS_OLD},
    "claude-sonnet-4-6": {"rates": _SONNET},
    "claude-sonnet-4-5": {"rates": _SONNET, "long_context": _SONNET_LONG},
    "claude-sonnet-4": {"rates": _SONNET, "long_context": _SONNET_LONG},
    "claude-3-7-sonnet": {"rates": _SONNET},
    "claude-3-5-sonnet": {"rates": _SONNET},
    "claude-haiku-4-5": {"rates": (1.0, 5.0, 1.25, 2.0, 0.10)},
    "claude-3-5-haiku": {"rates": (0.80, 4.0, 1.0, 1.6, 0.08)},
    "claude-3-opus": {"rates": _OPUS_OLD},
    "claude-3-haiku": {"rates": (0.25, 1.25, 0.30, 0.50, 0.03)},
}

SYNTHETIC_MODEL = "<synthetic>"

# Slash commands that are Claude Code's own controls, not skills.
BUILTIN_COMMANDS = frozenset("""
add-dir agents bashes bug clear compact config context cost doctor exit export feedback fast
help hooks ide init install-github-app login logout mcp memory migrate-installer model
output-style permissions plugin pr-comments privacy-settings quit release-notes resume
review rewind sandbox security-review status statusline terminal-setup todos upgrade usage vim
""".split())

TASK_TOOLS = ("Task", "Agent")         # the subagent tool was renamed in 2.1.63
ACTIVE_GAP_SECONDS = 15 * 60           # gaps longer than this are idle time

# Prefixes of user text that Claude Code writes itself; such lines are not prompts.
NON_PROMPT_PREFIXES = (
    "<local-command-stdout>", "<local-command-stderr>", "<local-command-caveat>",
    "Caveat: The messages below", "[Request interrupted", "<task-notification>",
    "<teammate-message", "<system-reminder>",
)

# ── Small helpers ─────────────────────────────────────────────────────────────

class UserError(Exception):
    """A failure the user can fix; carries its exit code and one-line message."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.code = code


_TS_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?$")


def parse_ts(value) -> float | None:
    """ISO-8601 timestamp -> epoch seconds (UTC), or None when unreadable."""
    if not isinstance(value, str):
        return None
    m = _TS_RE.match(value.strip())
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        epoch = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    frac = float(m.group(7)) if m.group(7) else 0.0
    tz = m.group(8)
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch + frac


def format_ts(epoch: float | None) -> str | None:
    """Epoch seconds -> '2026-02-08T22:26:37Z'."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def as_int(value) -> int:
    """Token counts arrive as ints, but also as null, floats or strings in damaged files."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return max(int(value), 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return 0


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_str(value) -> str:
    return value if isinstance(value, str) else ""


def write_atomic(path: Path, text: str) -> None:
    """Write text so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}", EXIT_OUTPUT) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UserError(f"cannot write {path}: {exc.strerror or exc}", EXIT_OUTPUT) from None


def read_json_file(path: Path, what: str):
    """Load a JSON input file or fail with one clear line."""
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{what} file {path} is not valid JSON: {exc}") from None


_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b(gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,})"), "***"),
    (re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|xox[abprs]-[A-Za-z0-9\-]{10,}|AKIA[0-9A-Z]{16})"), "***"),
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._\-+/=]{12,}"), r"\1 ***"),
    (re.compile(r"(?i)(--?(?:password|passwd|token|secret|api[-_]?key|auth)[= ])\s*(\"[^\"]*\"|'[^']*'|\S+)"),
     r"\1***"),
    (re.compile(r"(?i)\b([A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY)"
                r"[A-Z0-9_]*)\s*[=:]\s*(\"[^\"]*\"|'[^']*'|\S+)"), r"\1=***"),
    (re.compile(r"(?i)\b(\w+://)[^/\s:@]+:[^/\s@]+@"), r"\1***@"),
]


def redact_secrets(text: str) -> str:
    """Blank out tokens, keys and passwords that command lines and errors may carry."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def encode_project_dir(cwd: str) -> str:
    """Claude Code's folder name for a working directory: every non-alphanumeric char -> '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


# ── Transcript reading ────────────────────────────────────────────────────────
#
# A transcript line is one JSON object. Only a few record types matter; the rest
# (progress, attachment, file-history-snapshot, ...) contribute their timestamp
# and nothing else. Everything read is reduced to small records right away so
# that memory stays proportional to what is kept, not to the file's size.

@dataclass(slots=True)
class Usage:
    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0
    cache_5m: int = 0
    cache_1h: int = 0
    web_search: int = 0
    web_fetch: int = 0
    speed: str = "standard"

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_creation + self.cache_read


@dataclass(slots=True)
class ApiCall:
    """One billed API response: the merge of every line that shares its key."""
    key: tuple
    model: str
    usage: Usage
    first_ts: float | None
    agent: str | None            # None for the main thread, else the subagent id


@dataclass(slots=True)
class ToolUse:
    id: str
    name: str
    ts: float | None
    agent: str | None
    call_key: tuple
    command: str = ""            # Bash command
    skill: str = ""              # Skill name
    target: str = ""             # file path or pattern, for problems
    subagent_type: str = ""
    description: str = ""
    prompt_head: str = ""        # first chars of a Task prompt, to link inline sidechains


@dataclass(slots=True)
class ToolResult:
    tool_use_id: str
    is_error: bool
    text: str                    # head of the result text
    ts: float | None
    agent_id: str = ""           # toolUseResult.agentId of a Task/Agent result
    agent_type: str = ""


@dataclass
class FileScan:
    """What one transcript file contributes to its session."""
    path: Path
    session_id: str = ""
    calls: dict = field(default_factory=dict)          # key -> ApiCall
    tool_uses: list = field(default_factory=list)
    tool_results: list = field(default_factory=list)
    prompts: list = field(default_factory=list)        # (uuid, ts) of user prompts
    commands: list = field(default_factory=list)       # (name, ts) of slash commands
    timestamps: list = field(default_factory=list)
    cwds: collections.Counter = field(default_factory=collections.Counter)          # main thread
    branches: collections.Counter = field(default_factory=collections.Counter)
    agent_cwds: collections.Counter = field(default_factory=collections.Counter)    # subagents
    agent_branches: collections.Counter = field(default_factory=collections.Counter)
    versions: set = field(default_factory=set)
    agent_first_prompt: dict = field(default_factory=dict)   # agent id -> first prompt text
    compactions: int = 0
    skipped: collections.Counter = field(default_factory=collections.Counter)


RESULT_TEXT_LIMIT = 4000
PROVISIONAL_AGENT = "~"          # prefix of inline sidechain ids before their root is known


def _text_of(content) -> str:
    """Plain text of a message or tool_result content (string or list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(as_str(block.get("text")))
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    return ""


def _usage_of(raw: dict) -> Usage:
    cache = as_dict(raw.get("cache_creation"))
    server = as_dict(raw.get("server_tool_use"))
    speed = raw.get("speed")
    return Usage(
        input=as_int(raw.get("input_tokens")),
        output=as_int(raw.get("output_tokens")),
        cache_creation=as_int(raw.get("cache_creation_input_tokens")),
        cache_read=as_int(raw.get("cache_read_input_tokens")),
        cache_5m=as_int(cache.get("ephemeral_5m_input_tokens")),
        cache_1h=as_int(cache.get("ephemeral_1h_input_tokens")),
        web_search=as_int(server.get("web_search_requests")),
        web_fetch=as_int(server.get("web_fetch_requests")),
        speed=speed if isinstance(speed, str) else "standard",
    )


def iter_json_lines(path: Path, skipped: collections.Counter):
    """Yield each line's JSON object; count and skip what cannot be read."""
    try:
        handle = open(path, "rb")
    except OSError:
        skipped["unreadable files"] += 1
        return
    with handle:
        pending = None
        for raw in handle:
            if pending is not None:
                yield pending
            pending = None
            line = raw.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except UnicodeDecodeError:
                try:
                    obj = json.loads(line.decode("utf-8", "replace"))
                    skipped["lines with non-UTF-8 bytes (repaired)"] += 1
                except ValueError:
                    skipped["invalid JSON lines"] += 1
                    continue
            except ValueError:
                if raw.endswith(b"\n"):
                    skipped["invalid JSON lines"] += 1
                else:
                    skipped["truncated last lines"] += 1
                continue
            except RecursionError:
                skipped["invalid JSON lines"] += 1
                continue
            if isinstance(obj, dict):
                pending = obj
            else:
                skipped["lines that are not JSON objects"] += 1
        if pending is not None:
            yield pending


def scan_transcript(path: Path, session_hint: str, agent_hint: str | None) -> FileScan:
    """Read one transcript file fully into a FileScan.

    session_hint is the session the file belongs to by its location ('' when the
    lines must say: flat agent-*.jsonl files). agent_hint is the subagent id a
    subagent file is for; lines' own agentId wins when present.
    """
    scan = FileScan(path=Path(path), session_id=session_hint)
    inline_parent = {}     # sidechain uuid -> parentUuid, for inline sidechains without agentId
    inline_lines = []      # (uuid, ApiCall or ToolUse) waiting for their agent id
    uuid_prompt = {}
    for rec in iter_json_lines(path, scan.skipped):
        ts = parse_ts(rec.get("timestamp"))
        if ts is not None:
            scan.timestamps.append(ts)
        if not scan.session_id and isinstance(rec.get("sessionId"), str):
            scan.session_id = rec["sessionId"]
        kind = rec.get("type")
        if kind not in ("assistant", "user", "system"):
            continue                      # progress, attachment, summary, unknown: nothing to count
        if kind == "system":
            if rec.get("subtype") == "compact_boundary":
                scan.compactions += 1
            continue
        if isinstance(rec.get("version"), str):
            scan.versions.add(rec["version"])
        sidechain = rec.get("isSidechain") is True
        agent = rec.get("agentId") if isinstance(rec.get("agentId"), str) and rec.get("agentId") else None
        if agent is None and sidechain:
            agent = agent_hint
        # Subagents may work in their own worktree: the session's branch and folder
        # are the main thread's; the subagents' only count when there is no main thread.
        on_main = not sidechain and agent is None
        cwd, branch = rec.get("cwd"), rec.get("gitBranch")
        if isinstance(cwd, str) and cwd:
            (scan.cwds if on_main else scan.agent_cwds)[cwd] += 1
        if isinstance(branch, str) and branch:
            (scan.branches if on_main else scan.agent_branches)[branch] += 1
        uuid = as_str(rec.get("uuid"))
        pending_inline = sidechain and agent is None
        if pending_inline:
            # A provisional id until the chain's root is known; it is not None, so a
            # main-thread copy of the same call still wins in merge_call.
            agent = PROVISIONAL_AGENT + uuid
            if uuid:
                inline_parent[uuid] = as_str(rec.get("parentUuid"))
        message = rec.get("message")
        if not isinstance(message, dict):
            continue
        if kind == "assistant":
            _read_assistant(scan, rec, message, ts, agent, pending_inline, inline_lines)
        else:
            _read_user(scan, rec, message, ts, agent, sidechain, uuid, uuid_prompt)
    if inline_lines:
        _resolve_inline_sidechains(scan, inline_parent, inline_lines, uuid_prompt)
    return scan


def _read_assistant(scan, rec, message, ts, agent, pending_inline, inline_lines):
    usage_raw = message.get("usage")
    model = as_str(message.get("model"))
    msg_id = as_str(message.get("id"))
    request_id = as_str(rec.get("requestId"))
    key = (msg_id, request_id) if msg_id else ("uuid", as_str(rec.get("uuid")))
    if isinstance(usage_raw, dict) and model != SYNTHETIC_MODEL:
        usage = _usage_of(usage_raw)
        call = ApiCall(key, model or "unknown", usage, ts, agent)
        merge_call(scan.calls, call)
        if pending_inline:
            inline_lines.append((as_str(rec.get("uuid")), call))
    content = message.get("content")
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict) or block.get("type") != "tool_use":
            continue
        name = as_str(block.get("name")) or "unknown"
        tool_input = as_dict(block.get("input"))
        use = ToolUse(id=as_str(block.get("id")), name=name, ts=ts, agent=agent, call_key=key)
        if name == "Bash":
            use.command = as_str(tool_input.get("command"))
        elif name == "Skill":
            use.skill = as_str(tool_input.get("skill")) or as_str(tool_input.get("command"))
        elif name in TASK_TOOLS:
            use.subagent_type = as_str(tool_input.get("subagent_type"))
            use.description = as_str(tool_input.get("description"))
            use.prompt_head = as_str(tool_input.get("prompt"))[:200]
        use.target = as_str(tool_input.get("file_path") or tool_input.get("notebook_path")
                            or tool_input.get("path") or tool_input.get("pattern")
                            or tool_input.get("url"))
        scan.tool_uses.append(use)
        if pending_inline:
            inline_lines.append((as_str(rec.get("uuid")), use))


_COMMAND_RE = re.compile(r"<command-name>\s*/?([^<\s]+)\s*</command-name>")


def _read_user(scan, rec, message, ts, agent, sidechain, uuid, uuid_prompt):
    content = message.get("content")
    result_meta = rec.get("toolUseResult")
    if isinstance(content, list):
        has_result = False
        for block in content:
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            has_result = True
            meta = as_dict(result_meta)
            text = _text_of(block.get("content"))
            scan.tool_results.append(ToolResult(
                tool_use_id=as_str(block.get("tool_use_id")),
                is_error=block.get("is_error") is True,
                text=text[:RESULT_TEXT_LIMIT],
                ts=ts,
                agent_id=as_str(meta.get("agentId")) or _agent_id_in_text(text),
                agent_type=as_str(meta.get("agentType")),
            ))
        if has_result:
            return
    text = _text_of(content)
    if sidechain or agent is not None:
        if uuid and not as_str(rec.get("parentUuid")):
            uuid_prompt[uuid] = text
        if agent is not None and not agent.startswith(PROVISIONAL_AGENT) \
                and agent not in scan.agent_first_prompt:
            scan.agent_first_prompt[agent] = text
        return
    if rec.get("isMeta") is True or rec.get("isCompactSummary") is True:
        return
    match = _COMMAND_RE.search(text[:500]) if "<command-name>" in text[:500] else None
    if match:
        name = match.group(1)
        if name.lower() not in BUILTIN_COMMANDS:
            scan.commands.append((name, ts))
            scan.prompts.append((uuid, ts))
        return
    stripped = text.lstrip()
    if not stripped or stripped.startswith(NON_PROMPT_PREFIXES):
        return
    scan.prompts.append((uuid, ts))


_AGENT_ID_TEXT_RE = re.compile(r"\bagentId:\s*([A-Za-z0-9_\-]+)")


def _agent_id_in_text(text: str) -> str:
    """Async and teammate launches name their agent only in the result text."""
    m = _AGENT_ID_TEXT_RE.search(text[-600:]) if "agentId:" in text else None
    return m.group(1) if m else ""


def _resolve_inline_sidechains(scan, parents, pending, uuid_prompt):
    """Give inline sidechain lines (<= 2.0.27, no agentId) the id of their chain's root."""
    roots = {}

    def root_of(uuid):
        seen = []
        while uuid and uuid not in roots and parents.get(uuid):
            seen.append(uuid)
            uuid = parents[uuid]
            if len(seen) > 100000:
                break
        root = roots.get(uuid, uuid)
        for u in seen:
            roots[u] = root
        return root

    for uuid, item in pending:
        if item.agent is None or not item.agent.startswith(PROVISIONAL_AGENT):
            continue                     # a main-thread copy of this call won
        root = root_of(uuid) if uuid else ""
        agent = "sidechain-" + (root or "unknown")
        item.agent = agent
        scan.agent_first_prompt.setdefault(agent, uuid_prompt.get(root, ""))


def merge_call(calls: dict, call: ApiCall) -> None:
    """Fold one copy of an API call into the others with the same key.

    The copy with the largest token total carries the usage (early streaming lines
    hold placeholder output counts); a main-thread copy beats a sidechain replay;
    the earliest timestamp is the call's time.
    """
    known = calls.get(call.key)
    if known is None:
        calls[call.key] = call
        return
    if call.usage.total > known.usage.total:
        known.usage = call.usage
        known.model = call.model
    if call.agent is None:
        known.agent = None
    if call.first_ts is not None and (known.first_ts is None or call.first_ts < known.first_ts):
        known.first_ts = call.first_ts


# ── Finding transcripts ───────────────────────────────────────────────────────
#
# Three layouts hold a session's subagents:
#   <project>/<session>.jsonl with inline isSidechain lines      (<= 2.0.27)
#   <project>/agent-<id>.jsonl whose lines carry the parent's sessionId (~2.0.28-2.1.1)
#   <project>/<session>/subagents/**/agent-<id>.jsonl            (>= 2.1.2)

@dataclass
class TranscriptFile:
    path: Path
    session_hint: str          # '' when only the lines know the session (flat agent files)
    agent_hint: str | None


def default_projects_dir() -> Path:
    base = os.environ.get("CLAUDE_CONFIG_DIR")
    if base:
        return Path(base).expanduser() / "projects"
    return Path.home() / ".claude" / "projects"


def project_files(project_dir: Path) -> list[TranscriptFile]:
    """Every transcript file of one project folder, with what its location says."""
    files = []
    try:
        entries = sorted(project_dir.iterdir())
    except OSError:
        return files
    for entry in entries:
        if entry.is_file() and entry.suffix == ".jsonl":
            if entry.name.startswith("agent-"):
                files.append(TranscriptFile(entry, "", entry.stem[len("agent-"):]))
            else:
                files.append(TranscriptFile(entry, entry.stem, None))
        elif entry.is_dir() and (entry / "subagents").is_dir():
            for sub in sorted((entry / "subagents").rglob("agent-*.jsonl")):
                files.append(TranscriptFile(sub, entry.name, sub.stem[len("agent-"):]))
    return files


def flat_agent_session(path: Path) -> str:
    """The parent session of a flat agent-*.jsonl file, from its first lines."""
    try:
        with open(path, "rb") as handle:
            for _, raw in zip(range(50), handle):
                m = re.search(rb'"sessionId"\s*:\s*"([^"]+)"', raw)
                if m:
                    return m.group(1).decode("utf-8", "replace")
    except OSError:
        pass
    return ""


def agent_meta(path: Path) -> dict:
    """agent-<id>.meta.json beside a subagent transcript (2.1.x): agentType, description."""
    meta_path = path.with_name(path.stem + ".meta.json")
    try:
        return as_dict(json.loads(meta_path.read_text("utf-8")))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def group_by_session(files: list[TranscriptFile]) -> dict[str, list[TranscriptFile]]:
    """Session id -> its files; flat agent files join the session their lines name."""
    sessions = collections.defaultdict(list)
    for tf in files:
        sid = tf.session_hint or flat_agent_session(tf.path)
        if sid:
            tf.session_hint = sid
            sessions[sid].append(tf)
    return sessions


# ── Session assembly: dedupe and ownership ────────────────────────────────────
#
# Every API call is billed once, so it is counted once across all files read:
# it belongs to the session whose file recorded it first (earliest timestamp;
# on a tie, the session that ended first; then the smaller id, to be total).
# A resumed session that replays its parent's lines leaves those calls out.

@dataclass
class SessionFacts:
    """Everything read for one session, after dedupe; the input of compute_stats."""
    session_id: str
    project_dir: str
    calls: list
    tool_uses: list
    tool_results: list
    prompts: list
    commands: list
    timestamps: list
    cwds: collections.Counter
    branches: collections.Counter
    versions: set
    agent_meta: dict               # agent id -> {"agentType", "description"}
    agent_first_prompt: dict
    compactions: int
    skipped: collections.Counter


def read_session_files(sid: str, files: list[TranscriptFile]) -> list[FileScan]:
    scans = []
    for tf in files:
        scans.append(scan_transcript(tf.path, sid, tf.agent_hint))
    return scans


def session_claims(scans: list[FileScan]) -> tuple[dict, float]:
    """key -> earliest timestamp, and the session's end, for ownership."""
    claims = {}
    end = None
    for scan in scans:
        for key, call in scan.calls.items():
            ts = call.first_ts if call.first_ts is not None else float("inf")
            if key not in claims or ts < claims[key]:
                claims[key] = ts
        if scan.timestamps:
            last = max(scan.timestamps)
            end = last if end is None or last > end else end
    return claims, (end if end is not None else float("inf"))


_TIMESTAMP_RE = re.compile(rb'"timestamp"\s*:\s*"([^"]+)"')


def light_claims(files: list[TranscriptFile]) -> tuple[dict, float]:
    """Cheap version of session_claims for sessions we only compete with.

    Parses only lines that carry usage; takes other lines' timestamps by regex.
    """
    claims = {}
    end = None
    for tf in files:
        try:
            handle = open(tf.path, "rb")
        except OSError:
            continue
        with handle:
            for raw in handle:
                m = _TIMESTAMP_RE.search(raw)
                ts = parse_ts(m.group(1).decode("ascii", "replace")) if m else None
                if ts is not None and (end is None or ts > end):
                    end = ts
                if b'"usage"' not in raw or b'"assistant"' not in raw:
                    continue
                try:
                    rec = json.loads(raw)
                except (ValueError, RecursionError):
                    continue
                if not isinstance(rec, dict) or rec.get("type") != "assistant":
                    continue
                message = as_dict(rec.get("message"))
                if not isinstance(message.get("usage"), dict) or message.get("model") == SYNTHETIC_MODEL:
                    continue
                msg_id = as_str(message.get("id"))
                key = (msg_id, as_str(rec.get("requestId"))) if msg_id else ("uuid", as_str(rec.get("uuid")))
                t = ts if ts is not None else float("inf")
                if key not in claims or t < claims[key]:
                    claims[key] = t
    return claims, (end if end is not None else float("inf"))


def build_owner_index(claims_by_session: dict) -> dict:
    """key -> owning session id, from {session id: (claims, end)}."""
    best = {}
    for sid, (claims, end) in claims_by_session.items():
        for key, ts in claims.items():
            rank = (ts, end, sid)
            if key not in best or rank < best[key]:
                best[key] = rank
    return {key: rank[2] for key, rank in best.items()}


def assemble_session(sid: str, project_dir: str, files: list[TranscriptFile],
                     scans: list[FileScan], owner: dict) -> SessionFacts:
    """Merge a session's file scans, keeping only the API calls it owns."""
    calls = {}
    for scan in scans:
        for call in scan.calls.values():
            if owner.get(call.key, sid) == sid:
                merge_call(calls, ApiCall(call.key, call.model, call.usage, call.first_ts, call.agent))
    tool_uses, seen_uses = [], set()
    for scan in scans:
        for use in scan.tool_uses:
            if use.call_key not in calls or (use.id and use.id in seen_uses):
                continue
            seen_uses.add(use.id)
            tool_uses.append(use)
    tool_results, seen_results = [], set()
    for scan in scans:
        for res in scan.tool_results:
            if res.tool_use_id not in seen_uses or res.tool_use_id in seen_results:
                continue
            seen_results.add(res.tool_use_id)
            tool_results.append(res)
    meta = {}
    for tf in files:
        if tf.agent_hint:
            meta[tf.agent_hint] = agent_meta(tf.path)
    facts = SessionFacts(
        session_id=sid, project_dir=project_dir,
        calls=sorted(calls.values(), key=_call_order),
        tool_uses=sorted(tool_uses, key=lambda u: (u.ts or 0.0)),
        tool_results=sorted(tool_results, key=lambda r: (r.ts or 0.0)),
        prompts=[], commands=[], timestamps=[],
        cwds=collections.Counter(), branches=collections.Counter(), versions=set(),
        agent_meta=meta, agent_first_prompt={}, compactions=0, skipped=collections.Counter(),
    )
    seen_prompts = set()
    agent_cwds, agent_branches = collections.Counter(), collections.Counter()
    for scan in scans:
        for uuid, ts in scan.prompts:
            if uuid and uuid in seen_prompts:
                continue
            seen_prompts.add(uuid)
            facts.prompts.append((uuid, ts))
        facts.commands.extend(scan.commands)
        facts.timestamps.extend(scan.timestamps)
        facts.cwds.update(scan.cwds)
        facts.branches.update(scan.branches)
        agent_cwds.update(scan.agent_cwds)
        agent_branches.update(scan.agent_branches)
        facts.versions |= scan.versions
        for agent, prompt in scan.agent_first_prompt.items():
            facts.agent_first_prompt.setdefault(agent, prompt)
        facts.compactions += scan.compactions
        facts.skipped.update(scan.skipped)
    facts.cwds = facts.cwds or agent_cwds               # sessions known only from subagent files
    facts.branches = facts.branches or agent_branches
    facts.commands.sort(key=lambda c: (c[1] or 0.0))
    facts.timestamps.sort()
    return facts


def _call_order(call: ApiCall):
    return (call.first_ts if call.first_ts is not None else float("inf"), call.key)


# ── Pricing ───────────────────────────────────────────────────────────────────

@dataclass
class Pricing:
    """Price table (normalised model id -> entry) and the date it is current to."""
    table: dict
    date: str

    def entry(self, model: str) -> dict | None:
        return self.table.get(normalize_model_id(model))

    def cost(self, model: str, usage: Usage) -> float | None:
        """USD for one API call, or None when the model has no price."""
        entry = self.entry(model)
        if entry is None:
            return None
        rates = entry["rates"]
        long_rates = entry.get("long_context")
        if long_rates and usage.input + usage.cache_creation + usage.cache_read > LONG_CONTEXT_THRESHOLD:
            rates = long_rates
        price_in, price_out, write_5m, write_1h, read = rates
        one_hour = min(usage.cache_1h, usage.cache_creation)
        five_min = usage.cache_creation - one_hour     # no breakdown: all at the 5-minute rate
        dollars = (usage.input * price_in + usage.output * price_out + five_min * write_5m
                   + one_hour * write_1h + usage.cache_read * read) / 1_000_000
        if usage.speed == "fast":
            dollars *= entry.get("fast_multiplier", 1.0)
        return dollars


def normalize_model_id(model: str) -> str:
    """'us.anthropic.claude-opus-4-1-20250805-v1:0' -> 'claude-opus-4-1'."""
    m = model.strip().lower()
    m = re.sub(r"\[[^\]]*\]$", "", m)                       # claude-sonnet-4-5[1m]
    m = re.sub(r"^(anthropic|bedrock|vertex_ai)/", "", m)   # LiteLLM-style provider prefix
    m = re.sub(r"^(?:(?:us|eu|apac|global|jp|au|ca)\.)?anthropic\.", "", m)
    m = re.sub(r"-v\d+(?::\d+)?$", "", m)                   # Bedrock version suffix
    m = re.sub(r"@(?:\d{8}|latest)$", "", m)                # Vertex date
    m = re.sub(r"-(?:\d{8}|latest)$", "", m)                # Anthropic date suffix
    return m


def load_pricing(path: str | None) -> Pricing:
    """The built-in table, overridden and extended by a --pricing JSON file."""
    table = {key: dict(entry) for key, entry in BUILTIN_PRICES.items()}
    date = PRICING_DATE
    if not path:
        return Pricing(table, date)
    data = read_json_file(Path(path), "pricing")
    if not isinstance(data, dict):
        raise UserError(f"pricing file {path}: expected a JSON object")
    models = data.get("models", data if "date" not in data else {})
    if not isinstance(models, dict):
        raise UserError(f"pricing file {path}: 'models' must be an object")
    for model, spec in models.items():
        if model == "date":
            continue
        table[normalize_model_id(model)] = _pricing_entry(path, model, spec)
    if isinstance(data.get("date"), str):
        date = data["date"]
    return Pricing(table, date)


def _pricing_entry(path, model, spec) -> dict:
    if isinstance(spec, list) and len(spec) == 5 and all(_is_price(v) for v in spec):
        return {"rates": tuple(float(v) for v in spec)}
    if not isinstance(spec, dict) or not _is_price(spec.get("input")) or not _is_price(spec.get("output")):
        raise UserError(f"pricing file {path}: model {model!r} needs numeric 'input' and 'output' "
                        "(USD per million tokens)")
    price_in = float(spec["input"])
    rates = (price_in, float(spec["output"]),
             float(spec.get("cache_write_5m", price_in * 1.25)),
             float(spec.get("cache_write_1h", price_in * 2)),
             float(spec.get("cache_read", price_in * 0.1)))
    entry = {"rates": rates}
    if _is_price(spec.get("fast_multiplier")):
        entry["fast_multiplier"] = float(spec["fast_multiplier"])
    return entry


def _is_price(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


# ── Stats ─────────────────────────────────────────────────────────────────────
#
# compute_stats is pure: SessionFacts in, the design's per-session dict out.

_COMMIT_LINE_RE = re.compile(r"^\[(.+?) ([0-9a-f]{7,40})\] (.*)$", re.MULTILINE)
_GIT_COMMIT_CMD_RE = re.compile(r"\bgit\b[^\n|;&]*\bcommit\b")


def token_dict(usage_like) -> dict:
    return {"input": usage_like.input, "output": usage_like.output,
            "cache_creation": usage_like.cache_creation, "cache_read": usage_like.cache_read}


def _add_usage(total: Usage, usage: Usage) -> None:
    total.input += usage.input
    total.output += usage.output
    total.cache_creation += usage.cache_creation
    total.cache_read += usage.cache_read


def round_cost(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def compute_stats(facts: SessionFacts, pricing: Pricing, project: str,
                  target: dict | None = None, extra_problems: list | None = None) -> dict:
    """The per-session stats dict of the design, every field computed from facts."""
    models = {}
    totals = Usage()
    cost_total = 0.0
    unpriced = set()
    for call in facts.calls:
        row = models.setdefault(call.model, {"messages": 0, "usage": Usage(), "cost": 0.0})
        row["messages"] += 1
        _add_usage(row["usage"], call.usage)
        _add_usage(totals, call.usage)
        dollars = pricing.cost(call.model, call.usage)
        if dollars is None:
            unpriced.add(call.model)
        else:
            row["cost"] += dollars
            cost_total += dollars
    model_rows = {}
    for name in sorted(models):
        row = models[name]
        model_rows[name] = {
            "messages": row["messages"],
            "input_tokens": row["usage"].input,
            "output_tokens": row["usage"].output,
            "cache_creation_tokens": row["usage"].cache_creation,
            "cache_read_tokens": row["usage"].cache_read,
            "cost_usd": None if name in unpriced else round_cost(row["cost"]),
        }
    start = facts.timestamps[0] if facts.timestamps else None
    end = facts.timestamps[-1] if facts.timestamps else None
    tools_main = collections.Counter(u.name for u in facts.tool_uses if u.agent is None)
    tools_sub = collections.Counter(u.name for u in facts.tool_uses if u.agent is not None)
    stats = {
        "session_id": facts.session_id,
        "session_id_short": facts.session_id[:8],
        "project": project,
        "branch": _most_common(facts.branches),
        "target": target,
        "started_at": format_ts(start),
        "ended_at": format_ts(end),
        "duration_minutes": round((end - start) / 60, 1) if start is not None else 0,
        "active_minutes": active_minutes(facts.timestamps),
        "turns": len(facts.prompts),
        "models": model_rows,
        "total_tokens": token_dict(totals),
        "estimated_cost_usd": round_cost(cost_total),
        "unpriced_models": sorted(unpriced),
        "tools": _sorted_counts(tools_main + tools_sub),
        "tools_by_thread": {"main": _sorted_counts(tools_main), "subagents": _sorted_counts(tools_sub)},
        "skills_invoked": skills_invoked(facts),
        "subagents": subagents(facts, pricing),
        "commits": commits(facts),
        "problems_faced": merge_problems(derive_problems(facts), extra_problems or []),
        "workflow_edges": {},
        "schema_version": SCHEMA_VERSION,
        "pricing_date": pricing.date,
        "claude_code_versions": sorted(facts.versions, key=_version_key),
        "cwd": _most_common(facts.cwds),
        "compactions": facts.compactions,
    }
    return stats


def _most_common(counter: collections.Counter) -> str | None:
    if not counter:
        return None
    best = max(counter.values())
    return min(k for k, v in counter.items() if v == best)


def _sorted_counts(counter: collections.Counter) -> dict:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _version_key(version: str):
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.\-]", version))


def active_minutes(timestamps: list) -> float:
    """Wall time with every gap over 15 minutes left out."""
    active = 0.0
    for before, after in zip(timestamps, timestamps[1:]):
        gap = after - before
        if gap <= ACTIVE_GAP_SECONDS:
            active += gap
    return round(active / 60, 1)


# Skills: each invocation (Skill tool call or slash command) opens a window that
# lasts until the next invocation or the session's end. The window's API calls
# are the skill's tokens. Status rule, per invocation, the skill reporting its last:
#   fail    - the Skill call itself errored, or the last tool result in the window errored
#   pass    - the window has tool results and the last one succeeded
#   unknown - the window has no tool results at all

@dataclass
class _Invocation:
    name: str
    ts: float
    agent: str | None            # thread the skill was invoked in
    tool_use_id: str = ""
    results: list = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


def skill_invocations(facts: SessionFacts) -> list[_Invocation]:
    found = [_Invocation(u.skill.lstrip("/"), u.ts or 0.0, u.agent, u.id)
             for u in facts.tool_uses if u.name == "Skill" and u.skill]
    found += [_Invocation(name.lstrip("/"), ts or 0.0, None) for name, ts in facts.commands]
    found.sort(key=lambda inv: (inv.ts, inv.name))
    return found


class _SkillWindows:
    """Finds the invocation whose window holds an event of a given thread and time.

    A skill invoked in a subagent covers that subagent's later events; a skill
    invoked on the main thread covers the main thread and every subagent that has
    no window of its own open at that time.
    """

    def __init__(self, invocations: list[_Invocation]):
        self.by_thread = collections.defaultdict(list)
        for inv in invocations:
            self.by_thread[inv.agent].append(inv)
        self.starts = {t: [inv.ts for inv in invs] for t, invs in self.by_thread.items()}

    def find(self, agent: str | None, ts: float | None) -> _Invocation | None:
        if ts is None:
            return None
        for thread in ((agent, None) if agent is not None else (None,)):
            starts = self.starts.get(thread)
            if starts:
                i = bisect.bisect_left(starts, ts) - 1
                if i >= 0:
                    return self.by_thread[thread][i]
        return None


def skills_invoked(facts: SessionFacts) -> list[dict]:
    invocations = skill_invocations(facts)
    if not invocations:
        return []
    windows = _SkillWindows(invocations)
    for call in facts.calls:
        inv = windows.find(call.agent, call.first_ts)
        if inv is not None:
            _add_usage(inv.usage, call.usage)
    own_results = {inv.tool_use_id: inv for inv in invocations if inv.tool_use_id}
    thread_of_use = {u.id: u.agent for u in facts.tool_uses}
    for res in facts.tool_results:
        if res.tool_use_id in own_results:
            if res.is_error:
                own_results[res.tool_use_id].results.append("skill-error")
            continue
        inv = windows.find(thread_of_use.get(res.tool_use_id), res.ts)
        if inv is not None:
            inv.results.append(res.is_error)
    by_name = {}
    for inv in invocations:
        entry = by_name.setdefault(inv.name, {"skill": inv.name, "count": 0, "status": "unknown",
                                              "usage": Usage()})
        entry["count"] += 1
        _add_usage(entry["usage"], inv.usage)
        entry["status"] = _invocation_status(inv.results)
    return [{"skill": e["skill"], "count": e["count"], "status": e["status"],
             "tokens": token_dict(e["usage"])} for e in by_name.values()]


def _invocation_status(results: list) -> str:
    if "skill-error" in results:
        return "fail"
    outcomes = [r for r in results if r != "skill-error"]
    if not outcomes:
        return "unknown"
    return "fail" if outcomes[-1] else "pass"


def subagents(facts: SessionFacts, pricing: Pricing) -> list[dict]:
    """One entry per subagent with its own tokens, linked to its Task/Agent call."""
    uses = {u.id: u for u in facts.tool_uses if u.name in TASK_TOOLS}
    linked = {}
    for res in facts.tool_results:
        if res.agent_id and res.tool_use_id in uses:
            linked.setdefault(res.agent_id, (uses[res.tool_use_id], res))
    by_prompt = {}
    for use in uses.values():
        if use.prompt_head:
            by_prompt.setdefault(use.prompt_head.strip(), use)
    calls_by_agent = collections.defaultdict(list)
    for call in facts.calls:
        if call.agent is not None:
            calls_by_agent[call.agent].append(call)
    agents = list(calls_by_agent)
    agents += [a for a in linked if a not in calls_by_agent]
    rows = []
    for agent in agents:
        calls = calls_by_agent.get(agent, [])
        use, res = linked.get(agent, (None, None))
        first_prompt = as_str(facts.agent_first_prompt.get(agent))
        if use is None and first_prompt:
            use = by_prompt.get(first_prompt[:200].strip())
        meta = as_dict(facts.agent_meta.get(agent))
        usage, dollars, priced = Usage(), 0.0, True
        model_counts = collections.Counter()
        for call in calls:
            _add_usage(usage, call.usage)
            model_counts[call.model] += 1
            c = pricing.cost(call.model, call.usage)
            if c is None:
                priced = False
            else:
                dollars += c
        if use is not None:
            kind = use.subagent_type or "general-purpose"
        else:
            kind = (as_str(meta.get("agentType")) or (res.agent_type if res else "")
                    or ("warmup" if first_prompt.strip() == "Warmup" else "unknown"))
        description = ((use.description if use else "") or as_str(meta.get("description"))
                       or shorten(first_prompt, 80))
        row = {
            "id": agent,
            "type": kind,
            "model": _most_common(model_counts),
            "tokens": token_dict(usage),
            "cost_usd": round_cost(dollars) if priced else None,
            "messages": len(calls),
            "description": description,
            "tool_use_id": use.id if use else None,
        }
        if not calls:
            row["transcript_missing"] = True
        rows.append((calls[0].first_ts if calls and calls[0].first_ts is not None
                     else (use.ts if use and use.ts is not None else float("inf")), agent, row))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows]


def commits(facts: SessionFacts) -> list[dict]:
    """Commits reported by `git commit` output ('[branch sha] message'), unique by sha."""
    commands = {u.id: u.command for u in facts.tool_uses if u.name == "Bash" and u.command}
    found, seen = [], set()
    for res in facts.tool_results:
        command = commands.get(res.tool_use_id)
        if not command or not _GIT_COMMIT_CMD_RE.search(command):
            continue
        for m in _COMMIT_LINE_RE.finditer(res.text):
            sha = m.group(2)
            if sha in seen:
                continue
            seen.add(sha)
            found.append({"sha": sha, "message": m.group(3).strip()})
    return found


def normalize_command(command: str) -> str:
    """The recognisable head of a shell command: no cd prefix, env, quoted payloads or secrets."""
    lines = [ln for ln in command.strip().splitlines() if ln.strip()]
    head = lines[0].strip() if lines else ""
    head = redact_secrets(head)
    head = re.sub(r"^(?:cd\s+(?:\"[^\"]*\"|'[^']*'|\S+)\s*&&\s*)+", "", head)
    head = re.sub(r"^(?:[A-Za-z_][A-Za-z0-9_]*=(?:\"[^\"]*\"|'[^']*'|\S*)\s+)+", "", head)
    head = re.sub(r"\"[^\"]*\"?", '"…"', head)
    head = re.sub(r"'[^']*'?", "'…'", head)
    return shorten(head, 80)


def _problem_signature(use: ToolUse) -> tuple[str, str]:
    if use.name == "Bash":
        return ("Bash", normalize_command(use.command))
    return (use.name, shorten(redact_secrets(use.target), 80))


def derive_problems(facts: SessionFacts) -> list[dict]:
    """Failing tool calls grouped by tool and normalised command or target.

    iterations = how often it failed; resolved = the same call succeeded after
    its last failure.
    """
    uses = {u.id: u for u in facts.tool_uses}
    problems = {}
    for res in facts.tool_results:
        use = uses.get(res.tool_use_id)
        if use is None:
            continue
        sig = _problem_signature(use)
        if res.is_error:
            entry = problems.setdefault(sig, {"failures": 0, "resolved": False})
            entry["failures"] += 1
            entry["resolved"] = False
        elif sig in problems:
            problems[sig]["resolved"] = True
    out = []
    for (tool, what), entry in problems.items():
        description = f"{tool} failed: {what}" if what else f"{tool} failed"
        out.append({"description": description, "resolved": entry["resolved"],
                    "iterations": entry["failures"]})
    return out


def load_problems(path: str) -> list[dict]:
    """The --problems FILE an agent writes: a list (or {"problems": [...]}) of problems."""
    data = read_json_file(Path(path), "problems")
    if isinstance(data, dict):
        data = data.get("problems")
    if not isinstance(data, list):
        raise UserError(f"problems file {path}: expected a JSON list of problems")
    problems = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("description"), str) \
                or not item["description"].strip():
            raise UserError(f"problems file {path}: entry {i + 1} needs a 'description' string")
        iterations = item.get("iterations", 1)
        if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
            raise UserError(f"problems file {path}: entry {i + 1}: 'iterations' must be a whole number")
        problems.append({"description": shorten(redact_secrets(item["description"]), 200),
                         "resolved": item.get("resolved") is True, "iterations": iterations})
    return problems


def merge_problems(derived: list, supplied: list) -> list:
    """Agent-supplied problems first; they replace derived ones with the same description."""
    names = {p["description"].casefold() for p in supplied}
    return list(supplied) + [p for p in derived if p["description"].casefold() not in names]


# ── Reading a session from disk (the shell around the pure core) ──────────────

@dataclass
class ReadReport:
    """What was skipped while reading, reported once on stderr."""
    skipped: collections.Counter = field(default_factory=collections.Counter)
    empty_sessions: int = 0

    def emit(self, quiet: bool = False) -> None:
        parts = [f"{n} {what}" for what, n in sorted(self.skipped.items()) if n]
        if self.empty_sessions:
            parts.append(f"{self.empty_sessions} empty or summary-only sessions")
        if parts and not quiet:
            print(f"{PROG}: note: skipped " + ", ".join(parts), file=sys.stderr)


def find_session(projects_dir: Path, session_id: str) -> tuple[Path, str]:
    """(project folder, full session id) of a session id or unique id prefix."""
    if not projects_dir.is_dir():
        raise UserError(f"projects folder not found: {projects_dir} "
                        "(set --projects-dir or CLAUDE_CONFIG_DIR)", EXIT_NO_SESSION)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*", session_id):
        raise UserError(f"not a session id: {session_id!r}", EXIT_NO_SESSION)
    exact = sorted(projects_dir.glob(f"*/{session_id}.jsonl")) + \
        sorted(p for p in projects_dir.glob(f"*/{session_id}") if p.is_dir())
    if exact:
        return exact[0].parent, session_id
    prefixed = {(p.parent, p.stem) for p in projects_dir.glob(f"*/{session_id}*.jsonl")
                if not p.name.startswith("agent-")}
    if len(prefixed) == 1:
        return prefixed.pop()
    if len(prefixed) > 1:
        raise UserError(f"session id prefix {session_id!r} matches {len(prefixed)} sessions; "
                        "give more characters", EXIT_NO_SESSION)
    for project in sorted(p for p in projects_dir.iterdir() if p.is_dir()):
        for tf in project.glob("agent-*.jsonl"):
            if flat_agent_session(tf) == session_id:
                return project, session_id
    raise UserError(f"no session {session_id} under {projects_dir}", EXIT_NO_SESSION)


def newest_session(projects_dir: Path, cwd: str) -> tuple[Path, str]:
    project = projects_dir / encode_project_dir(cwd)
    candidates = []
    for path in project.glob("*.jsonl") if project.is_dir() else []:
        if path.name.startswith("agent-"):
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        if st.st_size > 0:
            candidates.append((st.st_mtime, path.stem))
    if not candidates:
        raise UserError(f"no sessions for {cwd} under {projects_dir}; "
                        "pass --session-id or --transcript", EXIT_NO_SESSION)
    return project, max(candidates)[1]


def locate_session(args) -> tuple[Path, str, list[TranscriptFile]]:
    """Which session the user means, by the precedence in the README, and its files."""
    projects_dir = Path(args.projects_dir).expanduser() if args.projects_dir else default_projects_dir()
    if args.transcript:
        path = Path(args.transcript).expanduser()
        if not path.is_file():
            raise UserError(f"transcript not found: {path}", EXIT_NO_SESSION)
        if path.parent.name == "subagents" or "subagents" in path.parts[-4:-1]:
            idx = len(path.parts) - 1 - path.parts[::-1].index("subagents")
            project, sid = Path(*path.parts[: idx - 1]), path.parts[idx - 1]
        elif path.name.startswith("agent-"):
            project, sid = path.parent, flat_agent_session(path) or path.stem
        else:
            project, sid = path.parent, path.stem
    else:
        wanted = args.session_id or os.environ.get("CLAUDE_CODE_SESSION_ID")
        if wanted:
            project, sid = find_session(projects_dir, wanted)
        else:
            project, sid = newest_session(projects_dir, os.getcwd())
    groups = group_by_session(project_files(project))
    if args.transcript and Path(args.transcript).expanduser().resolve() not in \
            {tf.path.resolve() for tf in groups.get(sid, [])}:
        groups.setdefault(sid, []).append(TranscriptFile(Path(args.transcript).expanduser(), sid, None))
    return project, sid, groups


def read_session(project: Path, sid: str, groups: dict, report: ReadReport) -> SessionFacts:
    """Full read of one session plus a cheap look at its neighbours, for ownership."""
    own_files = groups.get(sid, [])
    scans = read_session_files(sid, own_files)
    claims = {sid: session_claims(scans)}
    for other, files in groups.items():
        if other != sid:
            claims[other] = light_claims(files)
    facts = assemble_session(sid, project.name, own_files, scans, build_owner_index(claims))
    report.skipped.update(facts.skipped)
    return facts


def read_all_sessions(projects_dir: Path, report: ReadReport) -> list[SessionFacts]:
    """Every session under the projects folder, deduped globally."""
    scanned = []
    claims = {}
    try:
        projects = sorted(p for p in projects_dir.iterdir() if p.is_dir())
    except OSError as exc:
        raise UserError(f"cannot read projects folder {projects_dir}: {exc.strerror or exc}",
                        EXIT_NO_SESSION) from None
    for project in projects:
        for sid, files in group_by_session(project_files(project)).items():
            scans = read_session_files(sid, files)
            key = (project.name, sid)
            claims[key] = session_claims(scans)
            scanned.append((project, sid, files, scans))
    owner_by_key = build_owner_index({f"{p}\0{s}": c for (p, s), c in claims.items()})
    sessions = []
    for project, sid, files, scans in scanned:
        me = f"{project.name}\0{sid}"
        facts = assemble_session(sid, project.name, files, scans,
                                 _OwnerView(owner_by_key, me, sid))
        report.skipped.update(facts.skipped)
        if not facts.timestamps and not facts.calls:
            report.empty_sessions += 1
            continue
        sessions.append(facts)
    return sessions


class _OwnerView:
    """Adapts a global owner index keyed by 'project\\0session' to one session's view."""

    def __init__(self, index: dict, me: str, sid: str):
        self.index, self.me, self.sid = index, me, sid

    def get(self, key, default=None):
        owner = self.index.get(key)
        if owner is None:
            return default
        return self.sid if owner == self.me else owner


# ── Formatting helpers shared by the text outputs ─────────────────────────────

def human_count(n: int) -> str:
    """241 -> '241', 241558 -> '241.6K', 56722690 -> '56.7M', 1.4e9 -> '1.4B'."""
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return str(n)


def format_duration(minutes: float | None) -> str:
    """78.4 -> '1h 18m', 45 -> '45m', 0.2 -> '<1m'."""
    if minutes is None:
        return "-"
    whole = int(round(minutes))
    if minutes < 1:
        return "<1m"
    if whole < 60:
        return f"{whole}m"
    return f"{whole // 60}h {whole % 60:02d}m"


def format_cost(dollars: float | None) -> str:
    return "n/a" if dollars is None else f"${dollars:,.2f}"


def short_model(model: str) -> str:
    """'claude-opus-4-6-20260101' -> 'opus-4-6'."""
    m = normalize_model_id(model)
    return m[len("claude-"):] if m.startswith("claude-") else m


# ── List ──────────────────────────────────────────────────────────────────────

def session_summary(facts: SessionFacts, pricing: Pricing) -> dict:
    """The row `list` prints for one session; keys match the stats JSON."""
    stats = compute_stats(facts, pricing, project="")
    project_path = stats["cwd"] or facts.project_dir
    priced = not stats["unpriced_models"]
    return {
        "session_id": facts.session_id,
        "project": project_path,
        "project_dir": facts.project_dir,
        "branch": stats["branch"],
        "started_at": stats["started_at"],
        "ended_at": stats["ended_at"],
        "duration_minutes": stats["duration_minutes"],
        "active_minutes": stats["active_minutes"],
        "turns": stats["turns"],
        "models": sorted(stats["models"]),
        "total_tokens": stats["total_tokens"],
        "estimated_cost_usd": stats["estimated_cost_usd"],
        "cost_complete": priced,
        "unpriced_models": stats["unpriced_models"],
        "subagents": len(stats["subagents"]),
        "resume_command": f"claude -r {facts.session_id}",
    }


def parse_date_bound(value: str, end_of_day: bool) -> float:
    """'2026-02-15' or an ISO timestamp -> epoch; a bare date covers the whole day."""
    stamp = parse_ts(value if "T" in value else value + "T00:00:00Z")
    if stamp is None:
        raise UserError(f"not a date: {value!r} (use YYYY-MM-DD)", EXIT_USAGE)
    if end_of_day and "T" not in value:
        stamp += 86400 - 0.001
    return stamp


def filter_sessions(rows: list[dict], since: str | None, until: str | None,
                    project: str | None) -> list[dict]:
    lo = parse_date_bound(since, False) if since else None
    hi = parse_date_bound(until, True) if until else None
    kept = []
    for row in rows:
        start = parse_ts(row["started_at"]) if row["started_at"] else None
        if lo is not None and (start is None or start < lo):
            continue
        if hi is not None and (start is None or start > hi):
            continue
        if project and project.casefold() not in (row["project"] or "").casefold() \
                and project.casefold() not in row["project_dir"].casefold():
            continue
        kept.append(row)
    return kept


def render_session_table(rows: list[dict]) -> str:
    """A plain-text table, newest session first, for humans at a terminal."""
    if not rows:
        return "No sessions found.\n"
    header = ["SESSION", "STARTED (UTC)", "DURATION", "TURNS", "TOKENS", "COST", "MODELS",
              "BRANCH", "PROJECT", "RESUME"]
    table = [header]
    for row in rows:
        tokens = sum(row["total_tokens"].values())
        cost = format_cost(row["estimated_cost_usd"]) + ("" if row["cost_complete"] else "+")
        table.append([
            row["session_id"],
            (row["started_at"] or "-").replace("T", " ").rstrip("Z")[:16],
            format_duration(row["duration_minutes"]),
            str(row["turns"]),
            human_count(tokens),
            cost,
            ",".join(short_model(m) for m in row["models"]) or "-",
            _one_line(row["branch"] or "-"),
            _one_line(row["project"] or "-"),
            row["resume_command"],
        ])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in table]
    total_cost = sum(r["estimated_cost_usd"] or 0 for r in rows)
    lines.append("")
    noun = "session" if len(rows) == 1 else "sessions"
    lines.append(f"{len(rows)} {noun}, {format_cost(total_cost)} estimated"
                 + (" (+ marks sessions with unpriced models)"
                    if any(not r["cost_complete"] for r in rows) else ""))
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ── CLI ───────────────────────────────────────────────────────────────────────

EPILOG = """\
examples:
  %(prog)s --phase stats                         stats of the newest session in this folder
  %(prog)s --phase stats --session-id 00b11888   a session by id (or unique prefix)
  %(prog)s --phase stats --transcript ~/.claude/projects/-repo/ID.jsonl -o stats.json
  %(prog)s --phase list                          every session on this machine
  %(prog)s --phase list --json --since 2026-02-01 --project kagenti

session selection (stats): --transcript, else --session-id, else $CLAUDE_CODE_SESSION_ID,
else the newest session of the current directory's project. Transcripts are read from
--projects-dir, else $CLAUDE_CONFIG_DIR/projects, else ~/.claude/projects.

exit codes:
  0  ok
  1  internal error (a bug: please report the one-line message)
  2  usage error
  3  no session found (unknown id, no transcript, empty projects folder)
  4  bad input file (pricing, problems or stats file unreadable or invalid)
  5  output file could not be written
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(f"{message} (see --help)", EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="session-analytics.py", description=__doc__.split("\n\n")[0],
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=sorted(PHASES), help="what to do (see below)")
    pick = parser.add_argument_group("session selection")
    pick.add_argument("--session-id", help="session id or unique prefix")
    pick.add_argument("--transcript", help="path to a session's .jsonl transcript")
    pick.add_argument("--projects-dir", help="folder of Claude Code project transcripts")
    data = parser.add_argument_group("data")
    data.add_argument("--pricing", metavar="FILE", help="JSON price table that overrides the built-in one")
    data.add_argument("--problems", metavar="FILE", help="JSON list of problems an agent wrote, merged in")
    data.add_argument("--repo", metavar="OWNER/NAME", help="project name for the stats (default: GH_REPO, "
                      "else the session directory's origin remote)")
    data.add_argument("--target", choices=("pr", "issue"), help="what the session worked on")
    data.add_argument("--number", type=int, help="PR or issue number for --target")
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="FILE", help="write the result to FILE (atomically)")
    out.add_argument("--json", action="store_true", help="list: JSON instead of a table")
    out.add_argument("--quiet", action="store_true", help="no notes on stderr")
    filt = parser.add_argument_group("list filters")
    filt.add_argument("--since", metavar="DATE", help="sessions started on or after DATE (YYYY-MM-DD)")
    filt.add_argument("--until", metavar="DATE", help="sessions started on or before DATE")
    filt.add_argument("--project", metavar="TEXT", help="sessions whose project path contains TEXT")
    return parser


def emit(args, text: str) -> None:
    if args.output:
        write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def detect_project(args, cwd: str | None, fallback: str) -> str:
    """OWNER/NAME from --repo, GH_REPO or the session directory's origin remote."""
    if args.repo:
        return args.repo
    if os.environ.get("GH_REPO"):
        return os.environ["GH_REPO"]
    if cwd and os.path.isdir(cwd):
        try:
            url = subprocess.run(["git", "-C", cwd, "remote", "get-url", "origin"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            url = ""
        repo = repo_from_remote(url)
        if repo:
            return repo
    return fallback


def repo_from_remote(url: str) -> str | None:
    """'git@github.com:o/r.git' or 'https://github.com/o/r' -> 'o/r'."""
    m = re.search(r"(?:[:/])([^/:\s]+)/([^/\s]+?)(?:\.git)?/?$", url.strip())
    return f"{m.group(1)}/{m.group(2)}" if m and ("://" in url or "@" in url) else None


def run_stats(args) -> int:
    pricing = load_pricing(args.pricing)
    extra = load_problems(args.problems) if args.problems else []
    project, sid, groups = locate_session(args)
    report = ReadReport()
    facts = read_session(project, sid, groups, report)
    if not facts.timestamps and not facts.calls:
        report.emit(args.quiet)
        raise UserError(f"session {sid} has no readable records", EXIT_NO_SESSION)
    target = None
    if args.target or args.number is not None:
        if not (args.target and args.number is not None):
            raise UserError("--target and --number go together", EXIT_USAGE)
        target = {"type": args.target, "number": args.number}
    name = detect_project(args, _most_common(facts.cwds), project.name)
    stats = compute_stats(facts, pricing, name, target, extra)
    report.emit(args.quiet)
    emit(args, json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    return EXIT_OK


def run_list(args) -> int:
    projects_dir = Path(args.projects_dir).expanduser() if args.projects_dir else default_projects_dir()
    if not projects_dir.is_dir():
        raise UserError(f"projects folder not found: {projects_dir} "
                        "(set --projects-dir or CLAUDE_CONFIG_DIR)", EXIT_NO_SESSION)
    pricing = load_pricing(args.pricing)
    report = ReadReport()
    rows = [session_summary(f, pricing) for f in read_all_sessions(projects_dir, report)]
    rows = filter_sessions(rows, args.since, args.until, args.project)
    rows.sort(key=lambda r: (r["started_at"] or "", r["session_id"]), reverse=True)
    report.emit(args.quiet)
    if args.json:
        emit(args, json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    else:
        emit(args, render_session_table(rows))
    return EXIT_OK


PHASES = {
    "stats": run_stats,
    "list": run_list,
}


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if not args.phase:
            raise UserError("choose a phase with --phase " + "|".join(sorted(PHASES)), EXIT_USAGE)
        return PHASES[args.phase](args)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
