"""Command line: session selection precedence, environment, idempotence, help."""

from __future__ import annotations

import json
import os
import time

from conftest import Transcript, run_cli, sa, usage


def make_project(root, cwd, ids):
    paths = []
    for i, sid in enumerate(ids):
        t = Transcript(root / sa.encode_project_dir(cwd) / f"{sid}.jsonl", sid, cwd=cwd)
        t.assistant(f"msg_{sid}", usage(1, i + 1))
        paths.append(t.write())
        stamp = time.time() - 100 + i * 10                    # later ids are newer
        os.utime(paths[-1], (stamp, stamp))
    return paths


def sid_of(proc) -> str:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["session_id"]


def test_newest_session_of_the_current_directory(tmp_path):
    work = tmp_path / "work" / "my.repo"
    work.mkdir(parents=True)
    projects = tmp_path / "projects"
    make_project(projects, str(work), ["old-one", "new-one"])
    make_project(projects, "/elsewhere", ["other"])
    assert sid_of(run_cli("--phase", "stats", "--projects-dir", projects, cwd=work)) == "new-one"


def test_precedence_transcript_then_session_id_then_env(tmp_path):
    projects = tmp_path / "projects"
    paths = make_project(projects, "/r", ["s-a", "s-b", "s-c"])
    env = {"CLAUDE_CODE_SESSION_ID": "s-b"}
    base = ("--phase", "stats", "--projects-dir", projects)
    assert sid_of(run_cli(*base, env=env, cwd=tmp_path)) == "s-b"
    assert sid_of(run_cli(*base, "--session-id", "s-c", env=env)) == "s-c"
    assert sid_of(run_cli(*base, "--session-id", "s-c", "--transcript", paths[0], env=env)) == "s-a"


def test_claude_config_dir(tmp_path):
    make_project(tmp_path / "cfg" / "projects", "/r", ["s-x"])
    proc = run_cli("--phase", "stats", "--session-id", "s-x", env={"CLAUDE_CONFIG_DIR": tmp_path / "cfg"})
    assert sid_of(proc) == "s-x"
    proc = run_cli("--phase", "list", "--json", env={"CLAUDE_CONFIG_DIR": tmp_path / "cfg"})
    assert [r["session_id"] for r in json.loads(proc.stdout)] == ["s-x"]


def test_no_session_for_this_directory(tmp_path):
    (tmp_path / "projects").mkdir()
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path / "projects", cwd=tmp_path)
    assert proc.returncode == 3 and "pass --session-id or --transcript" in proc.stderr


def test_ambiguous_prefix(tmp_path):
    make_project(tmp_path, "/r", ["abc-1", "abc-2"])
    proc = run_cli("--phase", "stats", "--projects-dir", tmp_path, "--session-id", "abc")
    assert proc.returncode == 3 and "matches 2 sessions" in proc.stderr


def test_transcript_path_to_a_subagent_file_reports_its_session(real_projects):
    sub = next((real_projects / "-src-experiments-claude_p" /
                "29ccd257-68b1-427f-ae5f-6524b7cb6f20" / "subagents").glob("agent-*.jsonl"))
    assert sid_of(run_cli("--phase", "stats", "--transcript", sub)) == "29ccd257-68b1-427f-ae5f-6524b7cb6f20"
    flat = real_projects / "-src-deep-manifest" / "agent-c8d9b115.jsonl"
    assert sid_of(run_cli("--phase", "stats", "--transcript", flat)) == "a7da6a22-facc-4fcd-8bab-f83c87862004"


def test_output_is_byte_identical_across_runs(real_projects):
    args = ("--projects-dir", real_projects, "--quiet")
    first = run_cli("--phase", "stats", "--session-id", "ef958aa1", *args).stdout
    assert first == run_cli("--phase", "stats", "--session-id", "ef958aa1", *args).stdout
    listing = run_cli("--phase", "list", "--json", *args).stdout
    assert listing == run_cli("--phase", "list", "--json", *args).stdout


def test_help_shows_examples_and_exit_codes():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for text in ("examples:", "session-analytics.py stats", "session-analytics.py list", "--phase COMMAND",
                 "exit codes:", "3  no session found",
                 "CLAUDE_CODE_SESSION_ID", "CLAUDE_CONFIG_DIR"):
        assert text in proc.stdout


def test_script_imports_only_the_standard_library():
    import ast
    import sys
    tree = ast.parse(sa.__loader__.get_source("session_analytics"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    assert names <= set(sys.stdlib_module_names) | {"__future__"}
