"""The skills and the documents: valid frontmatter, every command shown runs against sample data, and
the documents stand on their own (a short README with a table of contents, links that resolve, no
issue numbers and no documents from outside the repository)."""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import DEMO_PROJECTS, ROOT, SCRIPT, run_cli, sa
from chromium import NODE_MODULES

SESSION_SKILLS = ROOT / ".claude" / "skills" / "session"
SKILL_FILES = [SESSION_SKILLS / "SKILL.md"] + [SESSION_SKILLS / sub / "SKILL.md"
                                                for sub in ("post", "summary", "extract", "dashboard")]
README = ROOT / "README.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
# The documents whose commands run in the sandbox: the README, the reference in docs/, CONTRIBUTING.
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md")), CONTRIBUTING]
README_MAX_BYTES = 20_000
DEMO_SESSION = "00b11888-7e0c-4fb4-bb39-32ea32e09b64"

# Agent Skills keys, plus the extras Claude Code documents for SKILL.md frontmatter.
ALLOWED_KEYS = {"name", "description", "license", "compatibility", "metadata", "allowed-tools",
                "argument-hint", "disable-model-invocation", "user-invocable", "model", "effort",
                "context", "agent", "hooks"}


def frontmatter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    assert m, f"{path}: no YAML frontmatter"
    fields = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        assert sep and re.fullmatch(r"[a-z][a-z-]*", key), f"{path}: not a simple 'key: value' line: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        assert key not in fields, f"{path}: {key} given twice"
        fields[key] = value
    return fields


@pytest.mark.parametrize("path", SKILL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_skill_frontmatter_is_valid_for_agent_skills(path):
    fields = frontmatter(path)
    assert set(fields) <= ALLOWED_KEYS, set(fields) - ALLOWED_KEYS
    name = fields.get("name", "")
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) and len(name) <= 64
    assert name == path.parent.name
    description = fields.get("description", "")
    assert 40 <= len(description) <= 1024 and "<" not in description and ">" not in description
    assert re.search(r"\bUse (when|at|for|after)\b", description), "the description must say when to use it"


def test_router_maps_every_sub_skill_name_to_its_file():
    router = (SESSION_SKILLS / "SKILL.md").read_text()
    for sub in ("post", "summary", "extract", "dashboard"):
        assert f"| `session:{sub}` | `{sub}/SKILL.md` |" in router
        assert (SESSION_SKILLS / sub / "SKILL.md").is_file()


def test_every_documented_exit_code_is_in_help_readme_and_router():
    codes = {v for k, v in vars(sa).items() if k.startswith("EXIT_")}
    help_text = run_cli("--help").stdout
    readme = README.read_text()
    router = (SESSION_SKILLS / "SKILL.md").read_text()
    for code in codes:
        assert re.search(rf"^ *{code}  ", help_text, re.M), f"exit {code} missing from --help"
        assert f"| {code} |" in readme, f"exit {code} missing from README"
        if code >= 2:
            assert f"| {code} |" in router, f"exit {code} missing from the router skill"


# ── every command shown runs ──

def shell_commands(path: Path, script_only: bool) -> list[str]:
    """Logical lines of the ```bash blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if script_only and not line.startswith("python3 .claude/scripts/session-analytics.py"):
                continue
            commands.append(line)
    return commands


@pytest.fixture
def sandbox(github, tmp_path):
    """A checkout on branch fix/keycloak-652 of kagenti/kagenti, the demo transcripts in ~/.claude,
    and a fake GitHub holding that PR and an issue."""
    home, work = tmp_path / "home", tmp_path / "work"
    shutil.copytree(DEMO_PROJECTS, home / ".claude" / "projects")
    (work / ".claude" / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, work / ".claude" / "scripts")
    shutil.copytree(ROOT / ".claude" / "skills", work / ".claude" / "skills")
    for skill in (ROOT / "tests" / "fixtures" / "skills").iterdir():
        shutil.copytree(skill, work / ".claude" / "skills" / skill.name)
    (work / "tests" / "fixtures").mkdir(parents=True)
    (work / "tests" / "fixtures" / "skills").symlink_to(ROOT / "tests" / "fixtures" / "skills")
    (work / "tests" / "fixtures" / "claude-code").symlink_to(ROOT / "tests" / "fixtures" / "claude-code")
    (work / "tests" / "fixtures" / "demo-projects").symlink_to(DEMO_PROJECTS)
    (work / "tests" / "browser").mkdir()
    (work / "tests" / "browser" / "node_modules").symlink_to(NODE_MODULES)
    for argv in (["init", "-q", "-b", "fix/keycloak-652"],
                 ["remote", "add", "origin", "https://github.com/kagenti/kagenti.git"]):
        subprocess.run(["git", "-C", work, *argv], check=True)
    subprocess.run(["make", "-s", "demo", f"DEMO_OUT={work / 'demo-output'}"], cwd=ROOT, check=True,
                   capture_output=True)
    stats = json.loads((work / "demo-output" / "stats-00b11888.json").read_text())
    (work / "a.json").write_text(json.dumps(stats))
    (work / "b.json").write_text((work / "demo-output" / "stats-a3f92bc1.json").read_text())
    github.add_pull("kagenti/kagenti", 652, "fix/keycloak-652", title="Fix keycloak token refresh",
                    created_at="2026-02-08T20:00:00Z")
    github.add_runs("kagenti/kagenti", 652, ["failure", "success"])
    github.add_issue("kagenti/kagenti", 123, "Investigate login flake", created_at="2026-02-10T08:00:00Z")
    env = {**github.env, "HOME": str(home), "CLAUDE_SESSION_ID": DEMO_SESSION,
           "CLAUDE_CODE_SESSION_ID": DEMO_SESSION, "CLAUDE_PROJECT_DIR": str(work)}
    (tmp_path / "tmp").mkdir()
    return work, env, tmp_path


def run_shell(command: str, work: Path, env: dict, tmp: Path, stdin: str | None = None):
    command = command.replace("/tmp/", f"{tmp}/tmp/")          # keep every output inside the test
    full_env = {k: v for k, v in os.environ.items() if k not in ("GH_REPO", "CLAUDE_CONFIG_DIR")}
    full_env.update(env)
    return subprocess.run(["bash", "-c", command], cwd=work, env=full_env, capture_output=True, text=True,
                          input=stdin, timeout=120)


def test_every_command_in_the_skills_runs(sandbox):
    work, env, tmp = sandbox
    commands = [c for path in SKILL_FILES for c in shell_commands(path, script_only=False)]
    assert len(commands) >= 9
    for command in commands:
        proc = run_shell(command, work, env, tmp)
        assert proc.returncode == 0, f"{command}\n{proc.stderr}"
    assert (tmp / "tmp" / "session-analytics" / "2026-02" / "dashboard.html").is_file()
    assert (tmp / "tmp" / "session-analytics" / "local" / "analytics.csv").is_file()


def test_every_command_in_the_readme_and_docs_runs(sandbox, github):
    work, env, tmp = sandbox
    commands = {path: shell_commands(path, script_only=True) for path in DOCUMENTS}
    assert len(commands[README]) >= 8 and sum(map(len, commands.values())) >= 25
    for path, shown in commands.items():
        for command in shown:
            proc = run_shell(command, work, env, tmp)
            assert proc.returncode == 0, f"{path.relative_to(ROOT)}: {command}\n{proc.stderr}"
    bodies = [c["body"].splitlines()[0] for c in github.comments_on("kagenti/kagenti", 652)]
    assert bodies.count(f"<!-- SESSION:{DEMO_SESSION[:8]} -->") == 1 and bodies.count("<!-- SESSION_SUMMARY -->") == 1
    assert [c["body"].splitlines()[0] for c in github.comments_on("kagenti/kagenti", 123)] == [
        f"<!-- SESSION:{DEMO_SESSION[:8]} -->"]


def test_documented_session_end_hook_saves_the_stats(sandbox):
    work, env, tmp = sandbox
    blocks = re.findall(r"^```json\n(.*?)^```", README.read_text(), re.M | re.S)
    [settings] = [json.loads(b) for b in blocks if '"SessionEnd"' in b]
    [hook] = settings["hooks"]["SessionEnd"][0]["hooks"]
    assert hook["type"] == "command" and hook["timeout"] <= 60
    transcript = Path(env["HOME"]) / ".claude" / "projects" / "-home-dev-kagenti" / f"{DEMO_SESSION}.jsonl"
    payload = {"session_id": DEMO_SESSION, "transcript_path": str(transcript), "cwd": str(work),
               "hook_event_name": "SessionEnd", "reason": "prompt_input_exit"}
    hook_env = {k: v for k, v in env.items() if not k.startswith(("GH_", "CLAUDE_SESSION", "CLAUDE_CODE"))}
    hook_env.update({"GH_HOST": "127.0.0.1:1", "PATH": "/usr/bin:/bin",    # no network, no gh needed
                     "XDG_DATA_HOME": str(tmp / "data")})
    before = subprocess.run(["git", "-C", work, "status", "--porcelain", "--untracked-files=all"],
                            capture_output=True, text=True).stdout
    proc = run_shell(hook["command"], work, hook_env, tmp, stdin=json.dumps(payload))
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp / "data" / "session-analytics" / "archive" / f"{DEMO_SESSION}.json").read_text())
    # nothing in the working tree, where `git add -A` would stage it
    assert subprocess.run(["git", "-C", work, "status", "--porcelain", "--untracked-files=all"],
                          capture_output=True, text=True).stdout == before
    direct = json.loads(run_cli("--phase", "stats", "--transcript", transcript, "--quiet", cwd=work).stdout)
    assert saved == direct
    assert saved["total_tokens"] == {"input": 23, "output": 4410, "cache_creation": 34700, "cache_read": 255200}


@pytest.mark.parametrize("stdin,message", [
    ("not json", "--hook-input: stdin is not the hook's JSON"),
    ('{"hook_event_name": "SessionEnd"}', "--hook-input: stdin JSON has neither transcript_path nor session_id"),
])
def test_hook_input_errors_are_one_line(stdin, message):
    proc = run_cli("--phase", "stats", "--hook-input", input=stdin)
    assert proc.returncode == 4
    assert proc.stderr.startswith(f"session-analytics: error: {message}") and proc.stderr.count("\n") == 1


@pytest.mark.tools          # its second half needs every system package installed
def test_the_installer_says_the_one_command_to_run_where_it_cannot_install(tmp_path):
    """Not root (or no apt-get): no install is tried, and the message names every package."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "id").write_text("#!/bin/sh\necho 1000\n")
    (fake_bin / "id").chmod(0o755)
    proc = subprocess.run(["/bin/bash", str(ROOT / "tests" / "install-system-deps.sh")], capture_output=True,
                          text=True, env={"PATH": str(fake_bin)})
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == ("  sudo apt-get install -y make git python3 gh openssl cmark-gfm "
                                            "chromium nodejs npm tmux python3-pip")
    done = subprocess.run(["/bin/bash", str(ROOT / "tests" / "install-system-deps.sh")], capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stderr == ""          # everything is here: nothing to do


# ── the documents stand on their own ──

def repository_documents() -> list[Path]:
    """Every Markdown document of the repository: README, CONTRIBUTING, docs/, the skills, and what
    tests/ holds, as git sees them (tracked or new, never what .gitignore leaves out, such as the
    packages the tests install)."""
    listed = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                             "--", "*.md"], capture_output=True, text=True, check=True).stdout.split("\0")
    wanted = [p for p in listed if p in ("README.md", "CONTRIBUTING.md") or p.startswith(("docs/", "tests/"))
              or (p.startswith(".claude/skills/") and p.endswith("/SKILL.md"))]
    return [ROOT / p for p in sorted(set(wanted)) if (ROOT / p).is_file()]


FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^ {0,3}\1[`~]*[ \t]*$|\Z)", re.M | re.S)


def without_code_blocks(text: str) -> str:
    return FENCE.sub("", text)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans: what a reader takes as sentences."""
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", without_code_blocks(text), flags=re.S)


def anchors(path: Path) -> set[str]:
    """The #anchors of a document's headings, as GitHub makes them."""
    seen = collections.Counter()
    found = set()
    for title in re.findall(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", without_code_blocks(path.read_text(encoding="utf-8")),
                            re.M):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return found


def links(path: Path) -> list[str]:
    """The targets of a document's inline links and images, outside code."""
    return re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose(path.read_text(encoding="utf-8")))


def test_the_readme_is_short_and_opens_with_a_table_of_contents():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move reference material to docs/"
    text = without_code_blocks(README.read_text(encoding="utf-8"))
    sections = re.findall(r"^## (.*)$", text, re.M)
    assert sections[0] == "Contents", "the table of contents must be the README's first section"
    toc = text.split("## Contents\n", 1)[1].split("\n## ", 1)[0]
    targets = re.findall(r"\]\(#([^)]+)\)", toc)
    assert len(targets) >= 6
    assert not set(targets) - anchors(README), "the table of contents points at headings that do not exist"
    titles = {re.sub(r"[^\w\- ]", "", s.replace("`", "").lower()).replace(" ", "-") for s in sections[1:]}
    assert titles <= set(targets), f"sections missing from the table of contents: {titles - set(targets)}"


FOREIGN = [
    (re.compile(r"\bSPEC\b"), "a design document outside the repository"),
    (re.compile(r"\bthe design\b|\bdesign's\b|\bdesign doc", re.I), "a design document outside the repository"),
]
FOREIGN_IN_PROSE = [
    (re.compile(r"\bissues?\s+#?\d+", re.I), "an issue number"),
    (re.compile(r"(?<![\w&/#])#\d+\b"), "an issue number"),
]


def test_documents_stand_on_their_own():
    documents = repository_documents()
    assert README in documents and CONTRIBUTING in documents and len(documents) >= 12
    found = []
    for path in documents:
        text = path.read_text(encoding="utf-8")
        for checks, body in ((FOREIGN, text), (FOREIGN_IN_PROSE, prose(text))):
            for pattern, what in checks:
                found += [f"{path.relative_to(ROOT)}: {m.group(0)!r} ({what})" for m in pattern.finditer(body)]
    assert not found, "\n".join(found)


def test_every_relative_link_in_the_documents_resolves():
    broken = []
    for path in repository_documents():
        for target in links(path):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):           # https:, mailto:: not ours to check
                continue
            file, _, fragment = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists() or not dest.is_relative_to(ROOT):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
