"""Local analytics on their own: list --by day|week|month|project|model in a time zone, tables that
fit the terminal, and an archive that outlives Claude Code's transcript cleanup."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import shutil
import subprocess
import sys

import pytest

from conftest import SCRIPT, Transcript, run_cli, sa, usage
from test_pricing import REAL_2026


def list_json(projects, *extra) -> list | dict:
    proc = run_cli("--phase", "list", "--json", "--projects-dir", projects, *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


TOTAL_KEYS = ("input", "output", "cache_creation", "cache_read")


@pytest.mark.parametrize("by", [["day"], ["week"], ["month"], ["project"], ["model"], ["month", "model"],
                                ["week", "project"]])
@pytest.mark.parametrize("history", ["claude-code-log", "real-2026"])
def test_rollups_add_up_to_the_plain_list(real_projects, history, by):
    projects = real_projects if history == "claude-code-log" else REAL_2026
    rows = list_json(projects)
    report = list_json(projects, *[f"--by={b}" for b in by], "--timezone", "Europe/Paris")
    assert report["by"] == by and report["timezone"] == "Europe/Paris"
    for key in TOTAL_KEYS:
        total = sum(r["total_tokens"][key] for r in rows)
        assert report["total"]["total_tokens"][key] == total
        assert sum(g["total_tokens"][key] for g in report["groups"]) == total
    cost = sum(r["estimated_cost_usd"] or 0 for r in rows)
    assert report["total"]["estimated_cost_usd"] == pytest.approx(cost, abs=1e-3)
    assert sum(g["estimated_cost_usd"] for g in report["groups"]) == pytest.approx(cost, abs=1e-3)
    assert report["total"]["sessions"] == len(rows)
    if "model" not in by:
        assert sum(g["sessions"] for g in report["groups"]) == len(rows)


@pytest.fixture
def calendar(tmp_path):
    """Sessions placed on day, week and month edges, one project in two folders, one unpriced model."""
    projects = tmp_path / "projects"
    sessions = [("late", "-work-app", "/work/app", "2026-03-01T23:30:00Z", "claude-sonnet-5"),
                ("monday", "-work-app-old", "/work/app", "2026-03-30T10:00:00Z", "claude-sonnet-5"),
                ("thursday", "-work-tool", "/work/tool", "2026-04-02T10:00:00Z", "claude-nova-7")]
    for sid, folder, cwd, start, model in sessions:
        t = Transcript(projects / folder / f"{sid}.jsonl", sid, cwd=cwd, start=start)
        t.prompt("go")
        t.assistant(f"m-{sid}", usage(1_000_000, 100_000), model=model)
        t.write()
    return projects


def groups_by(report: dict, key: str) -> dict:
    return {g[key]: g for g in report["groups"]}


def test_days_are_cut_in_the_time_zone_given(calendar):
    utc = groups_by(list_json(calendar, "--by", "day", "--timezone", "UTC"), "day")
    tokyo = groups_by(list_json(calendar, "--by", "day", "--timezone", "Asia/Tokyo"), "day")
    los_angeles = groups_by(list_json(calendar, "--by", "day", "--timezone", "America/Los_Angeles"), "day")
    assert "2026-03-01" in utc and "2026-03-02" not in utc
    assert "2026-03-02" in tokyo and "2026-03-01" not in tokyo          # 08:30 the next morning there
    assert "2026-03-01" in los_angeles and los_angeles["2026-03-01"]["sessions"] == 1
    proc = run_cli("--phase", "list", "--projects-dir", calendar, "--by", "day", "--timezone", "Mars/Olympus")
    assert proc.returncode == 2 and "not a time zone: 'Mars/Olympus'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_week_across_a_month_end_is_one_week(calendar):
    weeks = groups_by(list_json(calendar, "--by", "week", "--timezone", "UTC"), "week")
    assert weeks["2026-03-30"]["sessions"] == 2                       # Monday 30 March and Thursday 2 April
    months = groups_by(list_json(calendar, "--by", "month", "--timezone", "UTC"), "month")
    assert months["2026-03"]["sessions"] == 2 and months["2026-04"]["sessions"] == 1


def test_a_project_with_sessions_in_two_folders_is_one_project(calendar):
    projects = groups_by(list_json(calendar, "--by", "project"), "project")
    assert projects["/work/app"]["sessions"] == 2 and projects["/work/tool"]["sessions"] == 1
    # 2 x (1M input at $2 + 100k output at $10) = $6 for the priced app; the tool's model has no price
    assert projects["/work/app"]["estimated_cost_usd"] == pytest.approx(6.0)
    assert projects["/work/tool"]["cost_complete"] is False


def test_the_table_shows_lower_bounds_and_a_total_row(calendar):
    proc = run_cli("--phase", "list", "--projects-dir", calendar, "--by", "month", "--by", "model",
                   "--timezone", "UTC")
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["MONTH", "MODEL", "SESSIONS", "INPUT", "OUTPUT", "CACHE", "CREATE", "CACHE", "READ",
                                "COST"]
    assert any(line.startswith("2026-04  claude-nova-7") and line.endswith("unknown") for line in lines)
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert total.split()[1] == "3" and total.endswith("≥ $6.00")
    assert "no price for claude-nova-7" in proc.stdout


# ── tables that fit ──

def test_the_session_table_fits_80_and_200_columns(real_projects):
    rows = list_json(real_projects)
    for width in (80, 200):
        text = sa.render_session_table(rows, width)
        table = text.split("\n\n")[0].splitlines()
        assert max(len(line) for line in table) <= width, width
        assert len({len(line.split("  ")[0]) for line in table}) >= 1
    narrow = sa.render_session_table(rows, 80).splitlines()
    assert narrow[0].split()[:5] == ["SESSION", "STARTED", "(UTC)", "TOKENS", "COST"]
    assert "RESUME" not in narrow[0] and "…" in narrow[1]
    assert narrow[1].split()[0].endswith("…") and len(narrow[1].split()[0]) == 9     # 8 characters of the id
    wide = sa.render_session_table(rows, None)
    assert "RESUME" in wide and all(r["session_id"] in wide for r in rows)
    piped = run_cli("--phase", "list", "--projects-dir", real_projects).stdout
    assert piped == wide                                            # a pipe gets every column whole


def test_a_terminal_gets_the_table_at_its_width(real_projects):
    """In a real terminal (a pty) of 80 columns the table fits; --wide keeps every column."""
    def in_terminal(*extra) -> str:
        leader, follower = pty.openpty()
        env = {**os.environ, "COLUMNS": "80", "LINES": "50", "XDG_CACHE_HOME": str(real_projects.parent / ".nocache")}
        proc = subprocess.Popen([sys.executable, str(SCRIPT), "--phase", "list", "--no-cache", "--projects-dir",
                                 str(real_projects), *extra], stdout=follower, stderr=subprocess.DEVNULL, env=env)
        os.close(follower)
        chunks = []
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=30)
        os.close(leader)
        return b"".join(chunks).decode().replace("\r\n", "\n")
    fitted = in_terminal()
    assert max(len(line) for line in fitted.split("\n\n")[0].splitlines()) <= 80
    assert "RESUME" in in_terminal("--wide")


# ── the archive ──

def test_an_archived_session_counts_when_its_transcript_is_gone_and_once_when_not(tmp_path):
    projects = tmp_path / "projects"
    shutil.copytree(REAL_2026, projects)
    for path in projects.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    archive = tmp_path / "archive"
    with open(next(projects.glob("*/*.jsonl")), "a") as damaged:
        damaged.write("{not json\n")
    before = list_json(projects)
    proc = run_cli("--phase", "list", "--json", "--projects-dir", projects, "--archive", archive)
    assert proc.returncode == 0 and json.loads(proc.stdout) == before       # both present: counted once
    assert "from the archive" not in proc.stderr
    assert "skipped 1 invalid JSON lines" in proc.stderr                 # the backfill's read is not counted again
    assert sorted(p.stem for p in archive.glob("*.json")) == sorted(r["session_id"] for r in before)
    gone = next(projects.glob("-home-christso-projects-agentv/*.jsonl"))
    gone_id = gone.stem
    gone.unlink()                                                          # Claude Code's cleanup
    after = run_cli("--phase", "list", "--json", "--projects-dir", projects, "--archive", archive)
    rows = json.loads(after.stdout)
    assert "1 session read from the archive" in after.stderr
    assert sorted(r["session_id"] for r in rows) == sorted(r["session_id"] for r in before)
    for key in TOTAL_KEYS:
        assert sum(r["total_tokens"][key] for r in rows) == sum(r["total_tokens"][key] for r in before)
    archived = next(r for r in rows if r["session_id"] == gone_id)
    assert archived["archived"] is True and archived["resume_command"] is None
    by_month = list_json(projects, "--by", "month", "--archive", archive, "--timezone", "UTC")
    assert by_month["total"]["total_tokens"] == {k: sum(r["total_tokens"][k] for r in before) for k in TOTAL_KEYS}
    out = tmp_path / "out"
    assert run_cli("--phase", "extract", "--source", "local", "--projects-dir", projects, "--archive", archive,
                   "--output-dir", out).returncode == 0
    csv_rows = list(csv.DictReader(io.StringIO((out / "analytics.csv").read_text())))
    assert sorted(r["session_id"] for r in csv_rows) == sorted(r["session_id"] for r in before)
    without = list_json(projects)
    assert len(without) == len(before) - 1                              # without the archive it is lost
