"""Shared helpers: the script as a module and as a CLI, real fixtures, a transcript builder."""

from __future__ import annotations

import ast
import collections
import functools
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".claude" / "scripts" / "session-analytics.py"
sys.path.insert(0, str(Path(__file__).resolve().parent))
SHARED = Path(os.environ.get("SESSION_ANALYTICS_SHARED", ROOT.parent / "shared")).resolve()
REAL_PROJECTS = SHARED / "fixtures" / "transcripts" / "claude-code-log" / "projects"
SYNTHETIC_SAMPLES = SHARED / "fixtures" / "transcripts" / "synthetic-samples" / "claude-code-log"
DEMO_PROJECTS = ROOT / "tests" / "fixtures" / "demo-projects"
TEST_CACHE = Path(tempfile.mkdtemp(prefix="session-analytics-test-cache-"))


def _load_module():
    spec = importlib.util.spec_from_file_location("session_analytics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["session_analytics"] = module
    spec.loader.exec_module(module)
    return module


sa = _load_module()


# ── What a test needs beyond Python and pytest ───────────────────────────────
#
# Two layers are told apart by what a test uses, directly or through any helper, fixture or
# constant of the tests (tests/*.py, read with ast):
# - "corpus": the real transcripts of ../shared (anything made from SHARED). They run whenever it
#   is there; from a bare clone they are left out with one line saying how many; under CI (CI set)
#   they always run, and fail if it is missing.
# - "tools": a program or package beyond pytest (anything that calls shutil.which, or names a path
#   under node_modules, tests/.venvs, tests/.deps or tests/github-schema, or a module that imports
#   a test-only package). `make check` runs the rest (-m "not tools"), `make test` everything.
TOOL_PATHS = ("node_modules", ".venvs", ".deps", "github-schema")
TEST_PACKAGES = ("google", "opentelemetry", "detect_secrets")


def _module_names(module: ast.Module, stem: str) -> dict:
    """A module's top-level names -> their qualified names (module.name): its own definitions, and
    what it imports from the other modules of tests/ (a test-only package: "<test package>")."""
    names = {}
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = f"{stem}.{node.name}"
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update((n.id, f"{stem}.{n.id}") for n in ast.walk(target) if isinstance(n, ast.Name))
    for node in module.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = ("<test package>" if node.module.split(".")[0] in TEST_PACKAGES
                                                     else f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                names[alias.asname or top] = "<test package>" if top in TEST_PACKAGES else f"<module {alias.name}>"
    return names


def _qualified_uses(node, names: dict) -> set:
    used = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in names:
            used.add(names[sub.id])
        elif isinstance(sub, ast.Attribute):
            if sub.attr == "which":
                used.add("<tool>")
            elif isinstance(sub.value, ast.Name) and names.get(sub.value.id, "").startswith("<module "):
                used.add(f"{names[sub.value.id][8:-1]}.{sub.attr}")
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) \
                and any(part in sub.value for part in TOOL_PATHS):
            used.add("<tool>")
    return used


@functools.lru_cache(maxsize=None)
def _uses() -> dict:
    """Qualified name (module.name) -> the qualified names its definition uses, over tests/*.py."""
    uses = collections.defaultdict(set)
    for path in sorted(Path(__file__).parent.glob("*.py")):
        module = ast.parse(path.read_text(), str(path))
        names = _module_names(module, path.stem)
        for node in module.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                local = {**names, **{alias.asname or alias.name: f"{sub.module}.{alias.name}"    # imports inside it
                                     for sub in ast.walk(node) if isinstance(sub, ast.ImportFrom) and sub.module
                                     for alias in sub.names}}
                uses[f"{path.stem}.{node.name}"] |= _qualified_uses(node, local)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    for n in ast.walk(target):
                        if isinstance(n, ast.Name):
                            uses[f"{path.stem}.{n.id}"] |= _qualified_uses(node.value, names)
        for name, qualified in names.items():        # an imported name is what it names
            if qualified == "<test package>":
                uses[f"{path.stem}.{name}"].add("<tool>")
    return uses


@functools.lru_cache(maxsize=None)
def _needs(name: str) -> frozenset:
    """The layers ("corpus", "tools") a qualified name needs, following what it uses."""
    uses, seen, todo, needs = _uses(), set(), [name], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current == "conftest.SHARED":
            needs.add("corpus")
        if current == "<tool>":
            needs.add("tools")
        todo.extend(uses.get(current, ()))
    return frozenset(needs)


def _item_needs(item) -> frozenset:
    stem = Path(str(item.fspath)).stem
    uses = _uses()
    names = set()
    for fixture in getattr(item, "fixturenames", ()):
        names |= {q for q in (f"{stem}.{fixture}", f"conftest.{fixture}") if q in uses}
        names |= {q for q in uses.get(f"{stem}.{fixture}", ()) if q.endswith(f".{fixture}")}
    function = getattr(item, "function", None)
    if function is not None:
        owner = getattr(item, "cls", None)
        names.add(f"{stem}.{owner.__name__ if owner else function.__name__}")
    return frozenset().union(*(_needs(name) for name in names))


CORPUS_NOT_RUN = []


def pytest_ignore_collect(collection_path, config):
    """`-m "not tools"` (make check): a module that imports a test-only package is not even
    imported, so that nothing but pytest is needed."""
    if "not tools" not in (config.option.markexpr or "") or collection_path.suffix != ".py":
        return None
    module = ast.parse(collection_path.read_text(), str(collection_path))
    return "<test package>" in _module_names(module, collection_path.stem).values() or None


def pytest_configure(config):
    config.addinivalue_line("markers", "corpus: needs the real transcripts of ../shared")
    config.addinivalue_line("markers", "tools: needs a program or package beyond pytest")


@pytest.hookimpl(tryfirst=True)            # before -m reads the marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        for layer in _item_needs(item):
            item.add_marker(layer)
    if SHARED.is_dir() or os.environ.get("CI"):
        return
    kept = [item for item in items if "corpus" not in _item_needs(item)]
    CORPUS_NOT_RUN.extend(item for item in items if "corpus" in _item_needs(item))
    if CORPUS_NOT_RUN:
        config.hook.pytest_deselected(items=CORPUS_NOT_RUN)
        items[:] = kept


def pytest_terminal_summary(terminalreporter):
    if CORPUS_NOT_RUN:
        terminalreporter.write_line(
            f"{len(CORPUS_NOT_RUN)} tests over the real transcripts did not run: {SHARED} is missing "
            "(check out shared/ beside the repository or set SESSION_ANALYTICS_SHARED; under CI they must run)")


@pytest.fixture(scope="session")
def real_projects() -> Path:
    """The real transcripts in ../shared; their absence is a failure, never a skip."""
    assert REAL_PROJECTS.is_dir(), (
        f"real fixtures missing at {REAL_PROJECTS}: check out shared/ beside the repository "
        "or set SESSION_ANALYTICS_SHARED")
    return REAL_PROJECTS


# gh with no account at all: a command that reaches gh without a test's fake GitHub fails at once,
# before any request (gh checks for a token first), so no test can reach github.com.
NO_GH_ACCOUNT = Path(tempfile.mkdtemp(prefix="session-analytics-test-gh-"))


# The script as `python3 session-analytics.py` runs it (as __main__, its argv), but loaded through
# importlib so that its bytecode is cached in .claude/scripts/__pycache__: a script run by path is
# compiled on every run, and the tests run it a thousand times. The commands of the README, the
# skills, the demo and the hook still run it by path (test_skills.py, test_demo.py,
# test_claude_code.py).
LAUNCHER = ("import importlib.util, sys; path = sys.argv[1]; sys.argv = sys.argv[1:]; "
            "spec = importlib.util.spec_from_file_location('__main__', path); "
            "module = importlib.util.module_from_spec(spec); sys.modules['__main__'] = module; "
            "spec.loader.exec_module(module)")


def run_cli(*args, env=None, cwd=None, input=None) -> subprocess.CompletedProcess:
    """Run the script as a user would; returns the completed process (text mode)."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("CLAUDE_CODE_SESSION_ID", "CLAUDE_CONFIG_DIR", "GH_REPO", "GH_HOST", "GH_TOKEN",
                             "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN")}
    full_env["GH_CONFIG_DIR"] = str(NO_GH_ACCOUNT)
    full_env["XDG_CACHE_HOME"] = str(TEST_CACHE)        # never the developer's own cache
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", LAUNCHER, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, env=full_env, cwd=cwd, input=input, timeout=120)


def stats_json(*args, **kwargs) -> dict:
    proc = run_cli("--phase", "stats", *args, **kwargs)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def stats_of(projects_dir: Path, session_id: str, *extra) -> dict:
    return stats_json("--projects-dir", projects_dir, "--session-id", session_id, "--quiet", *extra)


# ── A builder for small synthetic transcripts ─────────────────────────────────

class Transcript:
    """Writes Claude Code transcript lines; each method appends one record.

    Timestamps advance by one second per line unless given, so order is explicit.
    """

    def __init__(self, path: Path, session_id: str, cwd: str = "/repo", branch: str = "main",
                 start: str = "2026-03-01T10:00:00Z", version: str = "2.1.20"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.session_id = session_id
        self.cwd, self.branch, self.version = cwd, branch, version
        self.clock = sa.parse_ts(start)
        self.lines = []
        self.counter = 0
        self.last_uuid = {}          # thread -> uuid of its last line, for parentUuid chains

    def _ts(self, ts=None, advance=1.0) -> str:
        if ts is not None:
            self.clock = sa.parse_ts(ts)
        else:
            self.clock += advance
        return sa.format_ts(self.clock).replace("Z", ".%03dZ" % int(round((self.clock % 1) * 1000)))

    def _envelope(self, kind, ts=None, advance=1.0, sidechain=False, agent=None, new_chain=False,
                  **extra):
        """new_chain=True starts a fresh parentUuid chain (a new inline sidechain)."""
        self.counter += 1
        thread = agent or ("sidechain" if sidechain else "main")
        uuid = f"{self.session_id[:8]}-{thread}-{self.counter:05d}"
        rec = {"parentUuid": None if new_chain else self.last_uuid.get(thread),
               "isSidechain": sidechain, "userType": "external",
               "cwd": self.cwd, "sessionId": self.session_id, "version": self.version,
               "gitBranch": self.branch, "type": kind, "uuid": uuid,
               "timestamp": self._ts(ts, advance)}
        self.last_uuid[thread] = uuid
        if agent:
            rec["agentId"] = agent
        rec.update(extra)
        return rec

    def raw(self, obj) -> "Transcript":
        self.lines.append(json.dumps(obj) if not isinstance(obj, str) else obj)
        return self

    def prompt(self, text, **kw) -> "Transcript":
        rec = self._envelope("user", **kw)
        rec["message"] = {"role": "user", "content": text}
        return self.raw(rec)

    def assistant(self, msg_id, usage=None, content=None, model="claude-sonnet-4-5-20250929",
                  request_id="auto", **kw) -> "Transcript":
        rec = self._envelope("assistant", **kw)
        if request_id == "auto":
            request_id = "req_" + msg_id
        if request_id is not None:
            rec["requestId"] = request_id
        message = {"model": model, "id": msg_id, "type": "message", "role": "assistant",
                   "content": content if content is not None else [{"type": "text", "text": "ok"}]}
        if usage is not None:
            message["usage"] = usage
        rec["message"] = message
        return self.raw(rec)

    def tool_use(self, msg_id, tool_id, name, tool_input, usage=None, **kw) -> "Transcript":
        block = {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}
        return self.assistant(msg_id, usage, [block], **kw)

    def tool_result(self, tool_id, text, is_error=False, tool_use_result=None, **kw) -> "Transcript":
        rec = self._envelope("user", **kw)
        rec["message"] = {"role": "user", "content": [
            {"tool_use_id": tool_id, "type": "tool_result", "content": text, "is_error": is_error}]}
        if tool_use_result is not None:
            rec["toolUseResult"] = tool_use_result
        return self.raw(rec)

    def system(self, subtype, **kw) -> "Transcript":
        rec = self._envelope("system", **kw)
        rec["subtype"] = subtype
        rec["content"] = subtype
        return self.raw(rec)

    def write(self, trailing_newline=True) -> Path:
        text = "\n".join(self.lines) + ("\n" if trailing_newline else "")
        self.path.write_text(text, encoding="utf-8")
        return self.path


def replayed_history(root):
    """Three sessions in two projects; b replays a's first call, c replays b's own call."""
    a = Transcript(root / "p" / "aaaa.jsonl", "aaaa", start="2026-03-01T10:00:00Z")
    a.assistant("msg_1", usage(1, 100), ts="2026-03-01T10:00:05Z")
    a.write()
    b = Transcript(root / "p" / "bbbb.jsonl", "bbbb", start="2026-03-01T12:00:00Z")
    b.assistant("msg_1", usage(1, 100), ts="2026-03-01T10:00:05Z")
    b.assistant("msg_2", usage(1, 7), ts="2026-03-01T12:00:05Z")
    b.write()
    c = Transcript(root / "q" / "cccc.jsonl", "cccc", start="2026-03-02T12:00:00Z")
    c.assistant("msg_2", usage(1, 7), ts="2026-03-01T12:00:05Z")
    c.assistant("msg_3", usage(2, 9), ts="2026-03-02T12:00:05Z")
    c.write()


def usage(inp=0, out=0, cc=0, cr=0, c1h=None, speed=None) -> dict:
    u = {"input_tokens": inp, "output_tokens": out, "cache_creation_input_tokens": cc,
         "cache_read_input_tokens": cr}
    if c1h is not None:
        u["cache_creation"] = {"ephemeral_5m_input_tokens": cc - c1h, "ephemeral_1h_input_tokens": c1h}
    if speed:
        u["speed"] = speed
    return u


def tokens(stats: dict) -> list:
    t = stats["total_tokens"]
    return [t["input"], t["output"], t["cache_creation"], t["cache_read"]]


# ── An independent reference for token totals ─────────────────────────────────
# Written from the counting rules of docs/counting.md alone, sharing no code with the script:
# per session, one entry per (message.id, requestId) with the largest total; a key seen in
# several sessions belongs to the earliest copy (then the session that ended first).

def reference_totals(projects: Path) -> dict:
    files_by_session = collections.defaultdict(list)
    for proj in glob.glob(os.path.join(projects, "*")):
        for f in glob.glob(os.path.join(proj, "**", "*.jsonl"), recursive=True):
            rel = os.path.relpath(f, proj).split(os.sep)
            if len(rel) == 1 and not rel[0].startswith("agent-"):
                sid = rel[0][: -len(".jsonl")]
            elif len(rel) == 1:
                sid = None
                with open(f, "rb") as handle:
                    for line in handle:
                        try:
                            sid = json.loads(line).get("sessionId")
                            break
                        except ValueError:
                            continue
            elif len(rel) > 2 and rel[1] == "subagents" and rel[-1].startswith("agent-"):
                sid = rel[0]
            else:
                continue
            if sid:
                files_by_session[(proj, sid)].append(f)
    per_session, ends = {}, {}
    for session, files in files_by_session.items():
        keys, end = {}, ""
        for f in files:
            with open(f, "rb") as handle:
                for line in handle:
                    try:
                        d = json.loads(line)
                    except ValueError:
                        continue
                    if not isinstance(d, dict):
                        continue
                    ts = d.get("timestamp") if isinstance(d.get("timestamp"), str) else ""
                    end = max(end, ts)
                    m = d.get("message")
                    if d.get("type") != "assistant" or not isinstance(m, dict) \
                            or not isinstance(m.get("usage"), dict) or m.get("model") == "<synthetic>":
                        continue
                    u = m["usage"]
                    vals = [int(u.get(k) or 0) for k in ("input_tokens", "output_tokens",
                                                           "cache_creation_input_tokens",
                                                           "cache_read_input_tokens")]
                    key = (m.get("id"), d.get("requestId") or "")
                    old = keys.get(key)
                    if old is None:
                        keys[key] = [vals, ts or "9999"]
                    else:
                        if sum(vals) > sum(old[0]):
                            old[0] = vals
                        old[1] = min(old[1], ts or "9999")
        per_session[session], ends[session] = keys, end or "9999"
    owner = {}
    for session, keys in per_session.items():
        for key, (_, ts) in keys.items():
            rank = (ts, ends[session], session[1])
            if key not in owner or rank < owner[key][0]:
                owner[key] = (rank, session)
    result = {}
    for session, keys in per_session.items():
        total = [0, 0, 0, 0]
        for key, (vals, _) in keys.items():
            if owner[key][1] == session:
                total = [a + b for a, b in zip(total, vals)]
        result[session[1]] = total
    return result


# ── The real `gh` against a fake GitHub ───────────────────────────────────────

from fake_github import FakeGitHub, make_cert  # noqa: E402


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1; openssl and gh are required, never skipped."""
    for tool in ("openssl", "gh"):
        assert shutil.which(tool), f"{tool} is not installed: run .ci/run or apt-get install {tool}"
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def github(tls_cert, tmp_path):
    """A fresh fake GitHub server with repository o/r; `github.env` runs gh against it."""
    fake = FakeGitHub(*tls_cert).start()
    config = tmp_path / "gh-config"
    config.mkdir()
    fake.env = fake.gh_env(config)
    yield fake
    fake.stop()


def run_gh_cli(fake, *args, env=None, **kwargs) -> subprocess.CompletedProcess:
    """The script as a user runs it, with gh pointed at the fake server."""
    return run_cli(*args, env={**fake.env, **(env or {})}, **kwargs)


# ── Reading a history with the script's reader ───────────────────────────────

def list_rows(projects: Path, options=None, reader=None) -> list:
    """The list rows of a history, as `list` computes them, read with the given options."""
    reader = reader or sa.HistoryReader(projects, options or sa.ReadOptions())
    pricing = sa.load_pricing(None)
    return reader.each_session(sa.ROW, functools.partial(sa.list_row, pricing=pricing), sa.summary_key(pricing))


def all_stats(projects: Path, options=None) -> list:
    """The stats of every session of a history, as `extract --source local` computes them."""
    pricing = sa.load_pricing(None)
    return sa.HistoryReader(projects, options or sa.ReadOptions()).each_session(
        sa.FULL, functools.partial(sa.local_stats, pricing=pricing), sa.summary_key(pricing))


# The reference for every speed setting: decode every line, keep nothing, one process.
PLAIN = sa.ReadOptions(fast_lines=False, cache=None, workers=1)


def scan_with(options, path, session_hint: str, agent_hint, depth: str):
    """One file's scan as the Reading these options choose gives it."""
    return options.reading().scan(sa.TranscriptFile(Path(path), session_hint, agent_hint), session_hint, depth)
