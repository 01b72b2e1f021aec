"""The real Claude Code (pinned in tests/claude/package-lock.json), run offline against the scripted
fake Messages API, writing real transcripts of the current format. Used by tests/test_claude_code.py
and by `make claude-transcripts` (which runs the same scenarios with another pin).

Each scenario runs `claude -p` in a git repository that holds this project's .claude folder (the
session skills, the script, and the README's SessionEnd hook in .claude/settings.json), with HOME
pointing at a fresh folder, so its transcripts land in HOME/.claude/projects.

The scenarios of FIXTURE_SCENARIOS (advisor, prompt hooks and /compact, /goal, queued prompts, a
`!` shell commit in tmux, skills, pr-link, a Workflow, --fork-session, OpenTelemetry) each make it
write one more kind of record; their output is committed under tests/fixtures/claude-code/ (see
its README) and rewritten by `python3 tests/claude/regenerate.py --fixtures`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fake_anthropic import FakeAnthropic, Tool, Turn, advised, iteration
from otlp_receiver import OtlpReceiver

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


# ── scenarios kept as fixtures (tests/fixtures/claude-code/<name>/) ───────────
#
# Each makes the real Claude Code write one kind of record this project reads, offline, and
# returns an Outcome; `save` copies what it wrote (HOME/.claude/projects as Claude Code left it,
# the stream-json stdout, the OTLP capture) and a manifest (what the fake served, Claude Code's
# own cost-state) into a folder. tests/claude/regenerate.py runs them all (`make
# claude-transcripts`); tests/test_claude_fixtures.py checks the committed copies.

ALLOWED = "Bash Agent Skill Read"
ADVISOR = "claude-fable-5"
EXECUTOR = "claude-sonnet-5-5"
PR_URL = f"https://github.com/{REPO}/pull/7"


def session_id(n: int) -> str:
    """A fixed session id, so a scenario's transcript has the same name on every run."""
    return f"{n:08d}-0000-4000-8000-{n:012d}"


@dataclass
class Outcome:
    """What a scenario left: its workspace (transcripts in ws.projects), the fake's log, each run."""
    name: str
    ws: Workspace
    api: FakeAnthropic
    runs: list = field(default_factory=list)        # {"args": [...], "returncode": n}
    stdout: dict = field(default_factory=dict)      # file name -> stdout (stream-json; tmux: the screen)
    otel: OtlpReceiver | None = None

    def run(self, prompt: str, *args: str, stdout: str = "", timeout: int = 180) -> subprocess.CompletedProcess:
        """`claude -p prompt args`, stream-json out; kept as `stdout` when named; fails loudly."""
        proc = self.ws.run(prompt, "--output-format", "stream-json", "--verbose", *args, timeout=timeout)
        model = [] if "--model" in args else ["--model", MODEL]           # as Workspace.run adds them
        self.runs.append({"args": ["-p", prompt, *model, "--allowedTools", ALLOWED, "--output-format", "stream-json",
                                   "--verbose", *args], "returncode": proc.returncode})
        if stdout:
            self.stdout[stdout] = proc.stdout
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name}: claude -p {prompt!r} {' '.join(args)} exited {proc.returncode}: "
                               f"{proc.stderr[-1500:]}")
        return proc


def _start(name: str, root: Path, script: dict, claude: Path, env: dict | None = None) -> Outcome:
    api = FakeAnthropic(script).start()
    return Outcome(name, Workspace(root, api, extra_env=dict(env or {}), claude=claude), api)


def _git(ws: Workspace, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ws.work), *args], check=True, capture_output=True, text=True).stdout


def _settings(ws: Workspace, update) -> None:
    path = ws.work / ".claude" / "settings.json"
    settings = json.loads(path.read_text())
    update(settings)
    path.write_text(json.dumps(settings, indent=2))


def _skill(folder: Path, name: str, description: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text(f"---\nname: {name}\ndescription: {description}\n---\n# {name}\n{body}\n")


# a. the advisor tool: usage.iterations with per-iteration 5m/1h cache splits

def advisor_script() -> dict:
    """Two replies that consulted the advisor (claude-fable-5) and one that did not.

    The top-level usage of an advised reply is the sum of its executor (`message`) iterations; each
    `advisor_message` iteration is the advisor's own call, with its own model and its own 5m/1h
    split of cache writes, unlike the top level's: pricing an advisor iteration with the top level's
    split gives another cost than with its own."""
    first = [iteration("message", 100, 20, cache_read=1000, cache_5m=100, cache_1h=200),
             iteration("advisor_message", 5000, 700, cache_5m=400, model=ADVISOR),
             iteration("message", 50, 30, cache_read=1300)]
    last = [iteration("message", 120, 25, cache_read=2000, cache_1h=500),
            iteration("advisor_message", 6000, 800, cache_read=3000, cache_1h=600, model=ADVISOR),
            iteration("message", 60, 15, cache_read=2600, cache_5m=40),
            iteration("advisor_message", 2000, 300, cache_read=5000, cache_5m=250, cache_1h=50, model=ADVISOR),
            iteration("message", 30, 10, cache_read=2700)]
    return {"main_key": "Plan the parser", "main": [
        advised_turn("Let me ask the advisor first.", "a", first, then="Following the advice: look at the log.",
                     tools=[Tool("Bash", {"command": "git log --oneline", "description": "Show the history"})]),
        Turn(text="Checking the files.", tools=[Tool("Bash", {"command": "ls", "description": "List files"})],
             input_tokens=200, output_tokens=40, cache_read=2300, cache_creation=100, cache_1h=100),
        advised_turn("Asking the advisor about the plan.", "b", last, then="The plan is settled."),
    ]}


def advised_turn(text: str, key: str, iterations: list, then: str = "", tools: list = ()) -> Turn:
    """An advised reply whose top-level usage is the sum of its `message` iterations; one
    server_tool_use/advisor_tool_result pair per `advisor_message` iteration."""
    executor = [i for i in iterations if i["type"] == "message"]
    top = {"input_tokens": sum(i["input_tokens"] for i in executor),
           "output_tokens": sum(i["output_tokens"] for i in executor),
           "cache_read": sum(i["cache_read_input_tokens"] for i in executor),
           "cache_creation": sum(i["cache_creation_input_tokens"] for i in executor),
           "cache_1h": sum(i["cache_creation"]["ephemeral_1h_input_tokens"] for i in executor)}
    advices = sum(1 for i in iterations if i["type"] == "advisor_message")
    advice_ids = [f"srvtoolu_fake_{key}{n}" for n in range(advices)]
    return advised(text, advice_ids, then=then, tools=tools, iterations=iterations, **top)


def advisor(root: Path, claude: Path = CLAUDE_BIN) -> Outcome:
    """The advisor tool (CLAUDE_CODE_ENABLE_EXPERIMENTAL_ADVISOR_TOOL=1, --advisor claude-fable-5):
    an advisor_tool attachment, assistant lines with `advisorModel` and usage.iterations
    (`message` and `advisor_message`, each with its own cache 5m/1h split), one plain call, and a
    cost-state with a separate claude-fable-5 entry."""
    out = _start("advisor", root, advisor_script(), claude, {"CLAUDE_CODE_ENABLE_EXPERIMENTAL_ADVISOR_TOOL": "1"})
    try:
        out.run("Plan the parser", "--model", EXECUTOR, "--advisor", ADVISOR, "--session-id", session_id(1),
                stdout="stdout.jsonl")
    finally:
        out.api.stop()
    return out


# b. calls that never reach the transcript: prompt-type hooks and /compact

def hooks_and_compact(root: Path, claude: Path = CLAUDE_BIN) -> Outcome:
    """Prompt-type hooks (UserPromptSubmit, Stop), /compact and --prompt-suggestions: Claude Code
    bills their calls in cost-state but writes no assistant line for them, so cost-state exceeds
    the transcript. Four processes of one session: a prompt, /compact, two more prompts, the last
    with prompt suggestions (a `prompt_suggestion` message in its stream-json output)."""
    script = {"main": [Turn(text=f"Answer {n}.", input_tokens=100 + n, output_tokens=10 + n, cache_read=1000 * n)
                       for n in range(8)],
              "evaluator": [Turn(text='{"ok": true}', input_tokens=400 + n, output_tokens=9, cache_read=100)
                            for n in range(12)],
              "compact": [Turn(text="<summary>The user asked to fix the parser; it was answered.</summary>",
                               input_tokens=3000 + n, output_tokens=200, cache_read=500) for n in range(4)],
              "suggestion": [Turn(text="Run the tests", input_tokens=250 + n, output_tokens=4, cache_read=200)
                             for n in range(4)]}
    out = _start("hooks-and-compact", root, script, claude)
    _settings(out.ws, lambda s: s.setdefault("hooks", {}).update({
        "UserPromptSubmit": [{"hooks": [{"type": "prompt", "prompt": "Is this prompt allowed? $ARGUMENTS"}]}],
        "Stop": [{"hooks": [{"type": "prompt", "prompt": "Is the work finished? $ARGUMENTS"}]}]}))
    sid = session_id(2)
    try:
        out.run("Fix the parser please", "--session-id", sid, stdout="stdout-1-prompt.jsonl")
        out.run("/compact", "--resume", sid, stdout="stdout-2-compact.jsonl")
        out.run("Fix the parser again", "--resume", sid, stdout="stdout-3-prompt.jsonl")
        out.run("And the tests", "--resume", sid, "--prompt-suggestions", stdout="stdout-4-suggestions.jsonl")
    finally:
        out.api.stop()
    return out


# c. /goal

def goal(root: Path, claude: Path = CLAUDE_BIN) -> Outcome:
    """`/goal the tests pass`: goal_status attachments, the /goal command lines, and the goal's
    condition checks (Stop-hook evaluator calls, billed, not written) answered not met, then met."""
    script = {"main": [Turn(text="Running the tests.", tools=[Tool("Bash", {"command": "echo '1 passed'",
                                                                           "description": "Run the tests"})],
                            input_tokens=300, output_tokens=30, cache_creation=2000),
                       Turn(text="The tests pass.", input_tokens=110, output_tokens=12, cache_read=2000),
                       Turn(text="Shown above: 1 passed.", input_tokens=120, output_tokens=14, cache_read=2100)]
              + [Turn(text=f"Still passing ({n}).", input_tokens=130, output_tokens=10) for n in range(4)],
              "evaluator": [Turn(text=json.dumps({"ok": False, "reason": "no test run in the transcript yet"}),
                                 input_tokens=900, output_tokens=20),
                            Turn(text=json.dumps({"ok": True, "reason": "the transcript shows 1 passed"}),
                                 input_tokens=950, output_tokens=18)]}
    out = _start("goal", root, script, claude)
    try:
        out.run("/goal the tests pass", "--session-id", session_id(3), stdout="stdout.jsonl")
    finally:
        out.api.stop()
    return out


# d. where prompts come from: queued (stream-json input), a task notification, a `!` command

def queued_prompts(root: Path, claude: Path = CLAUDE_BIN) -> Outcome:
    """Stream-json input: the first prompt (promptSource sdk), a second one sent while a `sleep`
    Bash runs (queue-operation enqueue/remove, a queued_command attachment, no user line), then an
    asynchronous subagent whose completion comes back as a task notification."""
    script = {"main_key": "Fix the parser", "main": [
        Turn(text="Working.", tools=[Tool("Bash", {"command": "sleep 4; echo slept", "description": "Wait"})]),
        Turn(text="Asking a helper.", tools=[Tool("Agent", {
            "description": "Look around", "prompt": "Look around the repository and report",
            "subagent_type": "general-purpose", "model": "haiku"})], input_tokens=150, output_tokens=30),
        Turn(text="Waiting for the helper.", input_tokens=160, output_tokens=8),
        Turn(text="The helper is done; tests added.", input_tokens=170, output_tokens=12),
        Turn(text="Nothing more.", input_tokens=180, output_tokens=5)],
        "agents": {"Look around the repository": [
            Turn(tools=[Tool("Bash", {"command": "sleep 2; ls", "description": "List"})], input_tokens=500,
                 output_tokens=20),
            Turn(text="Only a README.", input_tokens=520, output_tokens=10)]}}
    out = _start("queued-prompts", root, script, claude)
    ws, api = out.ws, out.api
    argv = [str(ws.claude), "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose",
            "--model", MODEL, "--allowedTools", ALLOWED, "--session-id", session_id(4)]
    proc = subprocess.Popen(argv, cwd=ws.work, env=ws.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def send(text):
        proc.stdin.write(json.dumps({"type": "user", "message": {"role": "user", "content": text}}) + "\n")
        proc.stdin.flush()

    def wait(done, timeout=90):
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end or proc.poll() is not None:
                raise RuntimeError(f"queued-prompts: gave up waiting ({len(api.served)} replies served)")
            time.sleep(0.1)

    def served(index):
        return any(r["conversation"] == "main" and r["index"] >= index for r in api.served)

    try:
        send("Fix the parser")
        wait(lambda: served(0))
        time.sleep(1)                                   # the Bash tool sleeps 4 s: this one waits
        send("Also add tests")
        wait(lambda: served(3))                         # the turn the task notification started
        wait(lambda: sum('"type":"result"' in line for line in lines) >= 2)
        proc.stdin.close()
        proc.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        api.stop()
    out.runs.append({"args": argv[1:], "stdin": ["Fix the parser", "Also add tests"], "returncode": proc.returncode})
    out.stdout["stdout.jsonl"] = "".join(lines)
    return out


def shell_commit(root: Path, claude: Path = CLAUDE_BIN) -> Outcome:
    """Interactive Claude Code in tmux (runs only where tmux is installed): typed prompts
    (promptSource typed, origin human) and a `!git commit -m "Fix the typo"` shell command, whose
    <bash-input> / <bash-stdout> user lines carry git's `[branch sha] Fix the typo` line: a commit
    the user made, not a tool call."""
    if not shutil.which("tmux"):
        raise RuntimeError("shell-commit needs tmux")
    script = {"main_key": "Say hi", "main": [Turn(text=f"Answer {n}.", input_tokens=100 + n, output_tokens=10 + n)
                                             for n in range(8)]}
    out = _start("shell-commit", root, script, claude)
    ws = out.ws
    (ws.work / "typo.txt").write_text("teh\n")
    _git(ws, "add", "typo.txt")
    (ws.home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "dark", "numStartups": 5,
        "customApiKeyResponses": {"approved": [ws.env()["ANTHROPIC_API_KEY"][-20:]], "rejected": []},
        "projects": {str(ws.work): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True,
                                    "allowedTools": []}}}))
    env = {**ws.env(), "TERM": "xterm-256color"}
    passed = ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
              "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "PATH", "TERM")
    name = f"sa-shell-commit-{os.getpid()}"
    tmux = ["tmux", "-L", name]                         # a server of its own, not the user's
    command = f"{ws.claude} --model {MODEL} --session-id {session_id(5)}"
    subprocess.run(tmux + ["new-session", "-d", "-s", name, "-x", "200", "-y", "50", "-c", str(ws.work),
                           *sum([["-e", f"{k}={env[k]}"] for k in passed if k in env], []), command], check=True)

    def keys(*k):
        subprocess.run(tmux + ["send-keys", "-t", name, *k], check=True)

    def screen():
        return subprocess.run(tmux + ["capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout

    def wait_for(text, timeout=30):
        end = time.monotonic() + timeout
        while text not in screen():
            if time.monotonic() > end:
                raise RuntimeError(f"shell-commit: {text!r} never showed:\n{screen()}")
            time.sleep(0.2)

    try:
        wait_for("❯")
        keys("-l", "Say hi"); time.sleep(0.3); keys("Enter")
        wait_for("Answer 0.")
        keys("!"); time.sleep(0.5); keys("-l", 'git commit -m "Fix the typo"'); time.sleep(0.3); keys("Enter")
        wait_for("Answer 1.")
        keys("-l", "Thanks"); time.sleep(0.3); keys("Enter")
        wait_for("Answer 2.")
        out.stdout["screen.txt"] = screen()             # what the terminal showed at the end
        keys("C-c"); time.sleep(0.5); keys("C-c"); time.sleep(2)
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
        out.api.stop()
    out.runs.append({"args": command.split()[1:], "tmux_input": ["Say hi", '!git commit -m "Fix the typo"', "Thanks"],
                     "returncode": None})
    return out


# e. skills: attributionSkill, attributionPlugin, a subagent inside a skill

def skills(root: Path, claude: Path = CLAUDE_BIN) -> Outcome:
    """A project skill (`changelog`, in the workspace's .claude/skills) and a plugin skill
    (`shipper:review`, from --plugin-dir) called through the Skill tool: the calls after each carry
    `attributionSkill` (and `attributionPlugin` shipper for the plugin's), and the subagent the plugin
    skill starts writes lines with `attributionAgent` and `attributionSkill`."""
    script = {"main_key": "Update the changelog", "main": [
        Turn(text="Using the changelog skill.", tools=[Tool("Skill", {"skill": "changelog"})],
             input_tokens=300, output_tokens=20, cache_creation=3000),
        Turn(text="Adding the entry.", tools=[Tool("Bash", {
            "command": "echo '- Fix the parser' >> CHANGELOG.md", "description": "Add a changelog entry"})],
             input_tokens=120, output_tokens=30, cache_read=3000),
        Turn(text="Now the review skill.", tools=[Tool("Skill", {"skill": "shipper:review"})],
             input_tokens=130, output_tokens=20, cache_read=3100),
        Turn(text="Starting the reviewer.", tools=[Tool("Agent", {
            "description": "Review the change", "prompt": "Review the changelog change for style",
            "subagent_type": "general-purpose", "model": "haiku"})], input_tokens=140, output_tokens=35,
             cache_read=3200),
        Turn(text="Waiting for the review.", input_tokens=150, output_tokens=8, cache_read=3300),
        Turn(text="The review is in: fine.", input_tokens=160, output_tokens=9, cache_read=3400),
        Turn(text="Nothing more.", input_tokens=170, output_tokens=4, cache_read=3500)],
        "agents": {"Review the changelog change": [
            Turn(tools=[Tool("Bash", {"command": "git diff --stat", "description": "Show the change"})],
                 input_tokens=700, output_tokens=25, cache_creation=1200),
            Turn(text="The entry reads well.", input_tokens=720, output_tokens=12, cache_read=1200)]}}
    out = _start("skills", root, script, claude)
    _skill(out.ws.work / ".claude" / "skills" / "changelog", "changelog",
           "Add an entry to CHANGELOG.md for the change.", "Append one line to CHANGELOG.md.")
    plugin = root / "plugins" / "shipper"
    (plugin / ".claude-plugin").mkdir(parents=True)
    (plugin / ".claude-plugin" / "plugin.json").write_text(json.dumps(
        {"name": "shipper", "version": "1.0.0", "description": "Ship changes"}))
    _skill(plugin / "skills" / "review", "review", "Review the change with a subagent before shipping.",
           "Start a general-purpose subagent that reviews the change.")
    try:
        out.run("Update the changelog and review it", "--plugin-dir", str(plugin), "--session-id", session_id(6),
                stdout="stdout.jsonl")
    finally:
        out.api.stop()
    return out


# f. pr-link

FAKE_GH = f"""#!/bin/sh
# a stand-in gh: `gh pr create` prints the new pull request's URL, as the real one does
echo "gh $*" >> "$(dirname "$0")/gh.log"
case "$1 $2" in
  "pr create"|"pr view") echo "{PR_URL}" ;;
  *) echo "ok" ;;
esac
"""


def pr_link(root: Path, claude: Path = CLAUDE_BIN) -> Outcome:
    """`gh pr create` through the Bash tool (a fake gh first on PATH prints the URL of o/r#7):
    Claude Code writes a `pr-link` record (prNumber 7, prRepository o/r, prUrl)."""
    bindir = root / "bin"
    bindir.mkdir(parents=True)
    (bindir / "gh").write_text(FAKE_GH)
    (bindir / "gh").chmod(0o755)
    script = {"main_key": "Open a pull request", "main": [
        Turn(text="Committing.", tools=[Tool("Bash", {
            "command": "echo fix > fix.txt && git add fix.txt && git commit -m 'Fix the parser'",
            "description": "Commit the fix"})], input_tokens=400, output_tokens=40, cache_creation=2500),
        Turn(text="Opening the pull request.", tools=[Tool("Bash", {
            "command": "gh pr create --title 'Fix the parser' --body 'Fixes the parser.'",
            "description": "Open the pull request"})], input_tokens=120, output_tokens=45, cache_read=2500),
        Turn(text=f"Opened {PR_URL}.", input_tokens=130, output_tokens=15, cache_read=2600)]}
    out = _start("pr-link", root, script, claude, {"PATH": f"{bindir}:{os.environ.get('PATH', '')}"})
    try:
        out.run("Open a pull request for the fix", "--session-id", session_id(7), stdout="stdout.jsonl")
    finally:
        out.api.stop()
    return out


# g. the Workflow tool

WORKFLOW_SCRIPT = """export const meta = { name: 'review-pair', description: 'Review two files', phases: [{ title: 'Review' }] }
phase('Review')
const a = await agent('Review file A for bugs please', { description: 'Review A', model: 'haiku' })
const b = await agent('Review file B for bugs please', { description: 'Review B' })
return { a, b }
"""


def workflow(root: Path, claude: Path = CLAUDE_BIN) -> Outcome:
    """A Workflow tool run with two agents: their transcripts under
    <session>/subagents/workflows/wf_*/agent-*.jsonl (+ .meta.json, journal.jsonl), the run's
    <session>/workflows/wf_*.json and script, and the completion as a task notification."""
    script = {"main_key": "Run the review workflow", "main": [
        Turn(text="Starting the workflow.", tools=[Tool("Workflow", {"script": WORKFLOW_SCRIPT})],
             input_tokens=300, output_tokens=60, cache_creation=2000),
        Turn(text="Launched; waiting.", input_tokens=110, output_tokens=6, cache_read=2000),
        Turn(text="Workflow finished: both files are fine.", input_tokens=120, output_tokens=12, cache_read=2100),
        Turn(text="Nothing more.", input_tokens=130, output_tokens=4, cache_read=2200)],
        "agents": {"Review file A": [Turn(text="A is fine.", input_tokens=300, output_tokens=20)],
                   "Review file B": [Turn(text="B is fine.", input_tokens=310, output_tokens=21)]}}
    out = _start("workflow", root, script, claude)
    try:
        out.run("Run the review workflow", "--allowedTools", "Workflow", "--session-id", session_id(8),
                stdout="stdout.jsonl")
    finally:
        out.api.stop()
    return out


# h. --fork-session

def fork(root: Path, claude: Path = CLAUDE_BIN) -> Outcome:
    """A session run, resumed, then forked with --fork-session: the fork's file replays the parent's
    lines (same message.id and requestId, the fork's sessionId, requestSessionId the parent's), and
    its cost-state starts from the parent's total."""
    script = {"main": [Turn(text="Looking.", tools=[Tool("Bash", {"command": "ls", "description": "List files"})],
                            input_tokens=500, output_tokens=30, cache_creation=3000, cache_1h=1000)]
              + [Turn(text=f"Answer {n}.", input_tokens=100 + n, output_tokens=10 + n, cache_read=3000 + 100 * n)
                 for n in range(1, 8)]}
    out = _start("fork", root, script, claude)
    sid = session_id(9)
    try:
        out.run("Start", "--session-id", sid, stdout="stdout-1-start.jsonl")
        out.run("Go on", "--resume", sid, stdout="stdout-2-resume.jsonl")
        out.run("Fork it", "--resume", sid, "--fork-session", stdout="stdout-3-fork.jsonl")
    finally:
        out.api.stop()
    return out


# i. Claude Code's own OpenTelemetry, beside its transcript

def otel(root: Path, claude: Path = CLAUDE_BIN) -> Outcome:
    """Claude Code's OTLP logs and metrics (http/json, short export intervals, user prompts and tool
    details on) captured by tests/otlp_receiver.py into otel.jsonl, for a session that also has its
    transcript: a commit, a subagent, a failed tool call in the main thread and one in the subagent."""
    rx = OtlpReceiver().start()
    script = {"main_key": "Fix the parser", "main": [
        Turn(text="Writing the fix.", tools=[Tool("Bash", {
            "command": "echo 'def parse(): pass' > parser.py && git add parser.py && git commit -m 'Add the parser'",
            "description": "Commit the parser"})], input_tokens=2000, output_tokens=80, cache_creation=5000,
             cache_1h=2000),
        Turn(text="Asking for a review.", tools=[Tool("Agent", {
            "description": "Review the parser", "prompt": "Review the parser in parser.py and report problems",
            "subagent_type": "general-purpose", "model": "haiku"})], input_tokens=90, output_tokens=40,
             cache_read=5000),
        Turn(text="Running the tests.", tools=[Tool("Bash", {"command": "cat test_parser.py",
                                                             "description": "Show the tests"})],
             input_tokens=100, output_tokens=30, cache_read=5200),
        Turn(text="There are no tests yet.", input_tokens=110, output_tokens=20, cache_read=5300),
        Turn(text="The review is in: the parser is fine.", input_tokens=120, output_tokens=15, cache_read=5400),
        Turn(text="Nothing more.", input_tokens=130, output_tokens=4, cache_read=5500)],
        "agents": {"Review the parser in parser.py": [
            Turn(tools=[Tool("Bash", {"command": "cat parser.py missing.py", "description": "Show the parser"})],
                 input_tokens=600, output_tokens=30, cache_creation=1500),
            Turn(text="The parser is fine.", input_tokens=650, output_tokens=45, cache_read=1500)]}}
    out = _start("otel", root, script, claude, {**rx.env(), "OTEL_LOG_USER_PROMPTS": "1",
                                                "OTEL_LOG_TOOL_DETAILS": "1"})
    out.otel = rx
    try:
        out.run("Fix the parser", "--session-id", session_id(10), stdout="stdout.jsonl")
        time.sleep(1)                                   # the last export, in flight at exit
    finally:
        out.api.stop()
        rx.stop()
    return out


FIXTURE_SCENARIOS = {"advisor": advisor, "hooks-and-compact": hooks_and_compact, "goal": goal,
                     "queued-prompts": queued_prompts, "shell-commit": shell_commit, "skills": skills,
                     "pr-link": pr_link, "workflow": workflow, "fork": fork, "otel": otel}
NEEDS = {"shell-commit": "tmux"}                        # scenarios that need a program besides claude


def runnable(name: str) -> bool:
    return all(shutil.which(program) for program in NEEDS.get(name, "").split())


def claude_version(claude: Path = CLAUDE_BIN) -> str:
    version = subprocess.run([str(claude), "--version"], capture_output=True, text=True, timeout=60).stdout
    return version.split()[0] if version.strip() else ""


def save(outcome: Outcome, dest: Path, version: str = "", description: str = "") -> dict:
    """Copy what a scenario wrote into dest: projects/ (HOME/.claude/projects as Claude Code left it),
    the stdout files, otel.jsonl, and manifest.json (what the fake served, the cost-state of each session)."""
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(outcome.ws.projects, dest / "projects")
    for name, text in outcome.stdout.items():
        (dest / name).write_text(text)
    if outcome.otel:
        outcome.otel.write_jsonl(dest / "otel.jsonl")
    sessions = {}
    for path in sorted((dest / "projects").glob("*/*.jsonl")):          # a session's own file, no subagent's
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        costs = [r for r in lines if r.get("type") == "cost-state"]
        sessions[path.stem] = {"transcript": str(path.relative_to(dest)),
                               "cost_state": costs[-1] if costs else None}
        version = version or next((r["version"] for r in lines if r.get("version")), "")
    scenario = FIXTURE_SCENARIOS.get(outcome.name)
    doc = description or (scenario.__doc__ or "" if scenario else "")
    manifest = {"scenario": outcome.name, "claude_code_version": version,
                "description": " ".join(doc.split()), "runs": outcome.runs,
                "stdout": sorted(outcome.stdout), "otel": "otel.jsonl" if outcome.otel else None,
                "sessions": sessions,
                "served": [{k: r[k] for k in ("id", "request_id", "conversation", "index", "session_id", "model",
                                              "usage")} for r in outcome.api.served]}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
