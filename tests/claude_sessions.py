"""The real Claude Code (pinned in tests/claude/package-lock.json), run offline against the scripted
fake Messages API, writing real transcripts of the current format. Used by tests/test_claude_code.py
and by `make claude-transcripts` (which runs the same scenarios with another pin).

Each scenario runs `claude -p` in a git repository that holds this project's .claude folder (the
session skills, the script, and the README's SessionEnd hook in .claude/settings.json), with HOME
pointing at a fresh folder, so its transcripts land in HOME/.claude/projects.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from fake_anthropic import FakeAnthropic, Tool, Turn

ROOT = Path(__file__).resolve().parent.parent
CLAUDE_DIR = ROOT / "tests" / "claude"
CLAUDE_BIN = CLAUDE_DIR / "node_modules" / ".bin" / "claude"
PINNED_VERSION = json.loads((CLAUDE_DIR / "package.json").read_text())["dependencies"]["@anthropic-ai/claude-code"]
README = ROOT / "README.md"
MODEL = "claude-opus-5-5"
REPO = "o/r"
BRANCH = "feat/report"


def readme_hook_settings() -> dict:
    """The .claude/settings.json the README tells users to write for the SessionEnd hook."""
    blocks = re.findall(r"^```json\n(.*?)^```", README.read_text(), re.M | re.S)
    [settings] = [json.loads(b) for b in blocks if '"SessionEnd"' in b]
    return settings


@dataclass
class Workspace:
    """A project folder with this repository's .claude, a HOME for Claude Code, and the fakes."""
    root: Path
    api: FakeAnthropic
    extra_env: dict = field(default_factory=dict)
    claude: Path = CLAUDE_BIN

    def __post_init__(self):
        self.home = self.root / "home"
        self.work = self.root / "work"
        self.home.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / ".claude" / "scripts").mkdir(parents=True)
        shutil.copy(ROOT / ".claude" / "scripts" / "session-analytics.py", self.work / ".claude" / "scripts")
        shutil.copytree(ROOT / ".claude" / "skills" / "session", self.work / ".claude" / "skills" / "session")
        (self.work / ".claude" / "settings.json").write_text(json.dumps(readme_hook_settings(), indent=2))
        git = ["git", "-C", str(self.work)]
        subprocess.run(git + ["init", "-q", "-b", BRANCH], check=True)
        subprocess.run(git + ["config", "user.email", "dev@example.com"], check=True)
        subprocess.run(git + ["config", "user.name", "Dev"], check=True)
        subprocess.run(git + ["remote", "add", "origin", f"https://github.com/{REPO}.git"], check=True)
        (self.work / "README.md").write_text("# demo\n")
        subprocess.run(git + ["add", "README.md"], check=True)
        subprocess.run(git + ["commit", "-qm", "Start"], check=True)

    @property
    def projects(self) -> Path:
        return self.home / ".claude" / "projects"

    def env(self) -> dict:
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("CLAUDE", "ANTHROPIC", "GH_", "GITHUB_"))}
        return {**keep, "HOME": str(self.home), "XDG_CACHE_HOME": str(self.root / "cache"),
                "XDG_DATA_HOME": str(self.root / "data"),
                **self.api.env(), **self.extra_env}

    def run(self, prompt: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        model = [] if "--model" in args else ["--model", MODEL]
        argv = [str(self.claude), "-p", prompt, *model, "--allowedTools", "Bash Agent Skill Read", *args]
        return subprocess.run(argv, cwd=self.work, env=self.env(), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def transcripts(self) -> list[Path]:
        return sorted(self.projects.rglob("*.jsonl"))


# ── what the scripted agent does ──────────────────────────────────────────────

def _tool_results(body: dict) -> list[str]:
    """The texts of tool results and the text blocks beside them, newest last."""
    texts = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for block in content:
            if block.get("type") == "tool_result":
                inner = block.get("content")
                texts.append(inner if isinstance(inner, str) else "\n".join(
                    b.get("text", "") for b in inner or [] if isinstance(b, dict)))
            elif block.get("type") == "text":
                texts.append(block.get("text", ""))
    return texts


def read_post_skill(body: dict) -> Turn:
    """After the router skill loaded: read the sub-skill file it names, in the folder it gives."""
    router = next(t for t in reversed(_tool_results(body)) if "Base directory for this skill:" in t)
    base = re.search(r"Base directory for this skill: (\S+)", router).group(1)
    return Turn(text="Reading the post sub-skill.", tools=[Tool("Read", {"file_path": f"{base}/post/SKILL.md"})],
                input_tokens=120, output_tokens=30, cache_read=4000)


def run_post_command(body: dict) -> Turn:
    """Run step 3 of post/SKILL.md as written, with the session id the router skill gave."""
    texts = _tool_results(body)
    router = next(t for t in reversed(texts) if "Base directory for this skill:" in t)
    session_id = re.search(r"The current session is `([0-9a-f-]{36})`", router).group(1)
    skill = next(t for t in reversed(texts) if "# session:post" in t)
    step3 = skill[skill.index("## 3."):]
    command = re.search(r"```bash\n(?:\s*\d+\s*[→\t])?(.*?)\n", step3).group(1)
    command = re.sub(r"^\s*\d+[→\t]", "", command).replace("${CLAUDE_SESSION_ID}", session_id)
    command = command.replace(" --problems /tmp/session-problems.json", "")    # step 2 skipped
    return Turn(text="Posting the report.", tools=[Tool("Bash", {"command": command,
                                                                 "description": "Post the session report"})],
                input_tokens=130, output_tokens=60, cache_read=4500)


def post_flow_script() -> dict:
    """A session with two commits, an asynchronous subagent, the session skill and its post command."""
    return {
        "main_key": "Fix the parser",
        "main": [
            Turn(text="Writing the fix.", tools=[Tool("Bash", {
                "command": "echo 'def parse(): pass' > parser.py && git add parser.py && git commit -m 'Add the parser'",
                "description": "Commit the parser"})], input_tokens=2000, output_tokens=80, cache_creation=5000),
            Turn(text="Asking for a review.", tools=[Tool("Agent", {
                "description": "Review the parser", "prompt": "Review the parser in parser.py and report problems",
                "subagent_type": "general-purpose", "model": "haiku"})],
                input_tokens=90, output_tokens=40, cache_read=5000),
            Turn(text="Adding tests.", tools=[Tool("Bash", {
                "command": "echo 'assert True' > test_parser.py && git add test_parser.py && git commit -m 'Test the parser'",
                "description": "Commit the tests"})], input_tokens=100, output_tokens=70, cache_read=5200),
            Turn(text="Posting the session.", tools=[Tool("Skill", {"skill": "session", "args": "post"})],
                 input_tokens=110, output_tokens=25, cache_read=5400),
            read_post_skill,
            run_post_command,
            Turn(text="Posted the session report.", input_tokens=140, output_tokens=20, cache_read=4600),
        ],
        "agents": {
            "Review the parser in parser.py": [
                Turn(tools=[Tool("Bash", {"command": "cat parser.py", "description": "Show the parser"})],
                     input_tokens=600, output_tokens=30, cache_creation=1500),
                Turn(text="The parser is fine.", input_tokens=650, output_tokens=45, cache_read=1500),
            ],
        },
    }


def resume_script() -> dict:
    """Plain text turns, enough for a first run, a --resume, a --continue and a fork."""
    return {"main": [Turn(text=f"Answer {n}.", input_tokens=100 + n, output_tokens=10 + n, cache_read=1000 * n)
                     for n in range(12)]}
