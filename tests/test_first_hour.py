"""The first hour of a new user: subcommands and their help, dates spelled one way, an old Python,
errors that say where and what next, and a dashboard that works where the user is."""

from __future__ import annotations

import datetime
import glob
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chromium import npm_file, run_page, serve
from conftest import DEMO_PROJECTS, ROOT, SCRIPT, Transcript, list_rows, run_cli, sa, usage

DEMO_STARTS = "2026-02"          # two of the three demo sessions started in February 2026


# ── subcommands: each with its own options and help ───────────────────────────

def test_each_command_shows_only_its_own_options_in_its_help():
    helps = {name: run_cli(name, "--help") for name in sa.COMMANDS}
    assert all(proc.returncode == 0 for proc in helps.values())
    assert "--by" in helps["list"].stdout and "--by" not in helps["stats"].stdout
    assert "--dry-run" in helps["comment"].stdout and "--dry-run" not in helps["list"].stdout
    assert "--chartjs" in helps["dashboard"].stdout and "--session-id" not in helps["dashboard"].stdout
    assert len({proc.stdout for proc in helps.values()}) == len(sa.COMMANDS)
    top = run_cli("--help").stdout
    assert all(name in top for name in sa.COMMANDS)


@pytest.mark.parametrize("argv", [
    ["stats", "--by", "day"], ["stats", "--wide"], ["stats", "--json"], ["stats", "--since", "2020-01-01"],
    ["--phase", "stats", "--by", "day", "--wide", "--json", "--since", "2020-01-01"],
    ["list", "--dry-run"], ["list", "--session-id", "x"], ["dashboard", "--session-id", "x"],
    ["summary", "--by", "day"], ["extract", "--wide"]])
def test_an_option_the_command_does_not_take_is_a_usage_error(argv):
    proc = run_cli(*argv, "--projects-dir", DEMO_PROJECTS) if argv[0] in ("stats", "list", "--phase") \
        else run_cli(*argv)
    assert proc.returncode == 2 and proc.stdout == ""
    command = argv[1] if argv[0] == "--phase" else argv[0]
    assert proc.stderr.count("\n") == 1 and f"{command} --help" in proc.stderr, proc.stderr


def test_the_phase_spelling_is_the_same_command():
    by_name = run_cli("list", "--json", "--projects-dir", DEMO_PROJECTS)
    by_phase = run_cli("--phase", "list", "--json", "--projects-dir", DEMO_PROJECTS)
    by_phase_after = run_cli("--json", "--projects-dir", DEMO_PROJECTS, "--phase=list")
    assert by_name.returncode == 0 and by_name.stdout == by_phase.stdout == by_phase_after.stdout
    assert len(json.loads(by_name.stdout)) == 3


def test_a_command_given_twice_or_unknown_is_a_usage_error():
    twice = run_cli("list", "--phase", "stats")
    unknown = run_cli("--phase", "lists")
    assert twice.returncode == unknown.returncode == 2
    assert "give the command once" in twice.stderr and "unknown command 'lists'" in unknown.stderr


def test_with_no_command_the_whole_pipeline_runs():
    proc = run_cli("--dry-run", "--help")
    assert proc.returncode == 0 and "--repost" in proc.stdout and "the whole pipeline" in proc.stdout


@pytest.mark.parametrize("since,until", [("--since", "--until"), ("--from", "--to")])
def test_dates_are_taken_in_either_spelling_by_list_and_extract(tmp_path, since, until):
    inside = run_cli("list", "--json", "--projects-dir", DEMO_PROJECTS, since, f"{DEMO_STARTS}-01",
                     until, f"{DEMO_STARTS}-28")
    outside = run_cli("list", "--json", "--projects-dir", DEMO_PROJECTS, since, "2030-01-01")
    assert len(json.loads(inside.stdout)) == 2 and json.loads(outside.stdout) == []
    extracted = run_cli("extract", "--source", "local", "--projects-dir", DEMO_PROJECTS, since, "2030-01-01",
                        until, "2030-12-31", "--output-dir", tmp_path, "--quiet")
    assert extracted.returncode == 0, extracted.stderr
    data = json.loads((tmp_path / "analytics.json").read_text())
    assert data["items"] == [] and (data["from"], data["to"]) == ("2030-01-01", "2030-12-31")


def test_extract_from_github_without_dates_says_which_options_it_needs(tmp_path):
    proc = run_cli("extract", "--repo", "o/r", "--output-dir", tmp_path)
    assert proc.returncode == 2 and "needs --since and --until" in proc.stderr


# ── an older Python: one line, before anything newer is used ──────────────────

def older_pythons() -> list[str]:
    """Real interpreters (pyenv's shims are not: they run whichever version is selected)."""
    return sorted({os.path.realpath(p) for p in glob.glob("/root/.pyenv/versions/3.[789].*/bin/python3")
                   + glob.glob("/usr/bin/python3.[789]") + glob.glob("/usr/local/bin/python3.[789]")})


def test_a_python_older_than_3_10_gets_one_line_and_exit_2():
    interpreters = older_pythons()
    if os.environ.get("CI"):
        assert interpreters, "CI has no Python 3.7-3.9 to run the script with (pyenv's are expected)"
    for python in interpreters:
        proc = subprocess.run([python, str(SCRIPT), "list"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stdout == "", (python, proc.stderr)
        assert re.fullmatch(r"session-analytics: error: needs Python 3\.10 or newer; this is Python 3\.[789]\.\d+ "
                            r"\(.*\)\n", proc.stderr), proc.stderr


def test_the_version_check_comes_before_anything_newer_is_used():
    """The same check, wherever no old interpreter is installed: this one, claiming to be 3.9."""
    pretend = ("import sys, runpy; sys.version_info = (3, 9, 18, 'final', 0); "
               f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", pretend, "list"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "needs Python 3.10 or newer" in proc.stderr
    source = SCRIPT.read_text()
    assert source.index("sys.version_info < (3, 10)") < source.index("from dataclasses import")


# ── errors that say where, and what to do next ────────────────────────────────

def test_no_sessions_found_says_where_it_looked_and_what_it_kept_out():
    proc = run_cli("list", "--projects-dir", DEMO_PROJECTS, "--since", "2030-01-01", "--project", "nope")
    assert proc.returncode == 0
    assert proc.stdout == f"No sessions found in {DEMO_PROJECTS} with --since 2030-01-01 --project nope.\n"


def test_an_unknown_session_id_points_to_list():
    proc = run_cli("stats", "--projects-dir", DEMO_PROJECTS, "--session-id", "deadbeef")
    assert proc.returncode == 3 and "`session-analytics.py list` shows the sessions there" in proc.stderr


@pytest.mark.parametrize("argv,message", [
    (["stats", "--stats-file", "missing.json"], "stats file not found: missing.json"),
    (["list", "--pricing", "missing.json"], "pricing file not found: missing.json"),
    (["stats", "--problems", "missing.json"], "problems file not found: missing.json"),
    (["dashboard", "--output-dir", "."], "extract's analytics.json not found: analytics.json (run `extract` first)")])
def test_a_missing_input_file_is_named_once(tmp_path, argv, message):
    proc = run_cli(*argv, "--projects-dir", DEMO_PROJECTS, cwd=tmp_path) if argv[0] != "dashboard" \
        else run_cli(*argv, cwd=tmp_path)
    assert proc.returncode in (3, 4) and message in proc.stderr, proc.stderr
    assert not re.search(r"\b(\w+) \1\b", proc.stderr), proc.stderr       # no doubled word


def test_one_of_a_thing_is_counted_in_the_singular(tmp_path):
    assert [sa.plural(n, "PR") for n in (0, 1, 2)] == ["0 PRs", "1 PR", "2 PRs"]
    assert sa.plural(1, "PR or issue", "PRs and issues") == "1 PR or issue"
    project = tmp_path / "projects" / "-repo"
    Transcript(project / "0a0a0a0a-0000-4000-8000-000000000001.jsonl", "0a0a0a0a-0000-4000-8000-000000000001") \
        .prompt("hello").assistant("msg_1", usage(10, 5)).write()
    proc = run_cli("extract", "--source", "local", "--projects-dir", tmp_path / "projects", "--output-dir",
                   tmp_path / "out", "--quiet")
    assert proc.returncode == 0 and proc.stdout.startswith("extracted 1 session from 1 local session: ")


def test_a_rollup_cut_to_fit_the_terminal_says_which_columns_it_left_out():
    report = sa.rollup(list_rows(DEMO_PROJECTS), ["project"], datetime.timezone.utc)
    narrow = sa.render_rollup(report, 60)
    wide = sa.render_rollup(report, None)
    assert "CACHE CREATE" in wide and "left out" not in wide
    assert "CACHE CREATE" not in narrow.splitlines()[0]
    lines = narrow.splitlines()
    assert max(map(len, lines)) <= 60
    note = " ".join(lines[lines.index(next(l for l in lines if l.startswith("(CACHE CREATE"))):])
    assert "left out to fit 60 columns; --wide shows every column" in note


def test_a_title_made_of_a_prompt_keeps_the_words_and_leaves_the_markup(tmp_path):
    sid = "0b0b0b0b-0000-4000-8000-000000000002"
    Transcript(tmp_path / "-repo" / f"{sid}.jsonl", sid) \
        .prompt("<ide_opened_file>The user opened /home/me/a.py in the IDE.</ide_opened_file>"
                "Fix the <b>login</b> bug in List<String> parsing") \
        .assistant("msg_1", usage(10, 5)).write()
    rows = json.loads(run_cli("list", "--json", "--projects-dir", tmp_path).stdout)
    assert rows[0]["title"] == "Fix the login bug in List<String> parsing"


# ── the dashboard where the user is: offline, short ranges, time to scale ─────

def local_extract(tmp_path: Path, *extra, env=None, cwd=None) -> subprocess.CompletedProcess:
    return run_cli("extract", "--source", "local", "--projects-dir", DEMO_PROJECTS, "--output-dir",
                   tmp_path / "out", *extra, env=env, cwd=cwd)


def test_a_local_chartjs_is_found_in_the_environment_or_in_node_modules(tmp_path):
    chartjs = tmp_path / "chart.js"
    chartjs.write_text("/* the test's Chart.js */")
    by_env = local_extract(tmp_path, env={"SESSION_ANALYTICS_CHARTJS": str(chartjs)})
    assert by_env.returncode == 0 and by_env.stderr == ""
    assert "/* the test's Chart.js */" in (tmp_path / "out" / "dashboard.html").read_text()
    copy = tmp_path / "project" / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"
    copy.parent.mkdir(parents=True)
    copy.write_text("/* npm's Chart.js */")
    by_npm = local_extract(tmp_path, cwd=tmp_path / "project")
    page = (tmp_path / "out" / "dashboard.html").read_text()
    assert by_npm.returncode == 0 and "/* npm's Chart.js */" in page and 'class="empty needs-network"' not in page
    missing = local_extract(tmp_path, env={"SESSION_ANALYTICS_CHARTJS": str(tmp_path / "nothing.js")})
    assert missing.returncode == 4 and "cannot read $SESSION_ANALYTICS_CHARTJS" in missing.stderr


def test_with_no_local_chartjs_each_chart_says_it_needs_the_network_and_stderr_says_how_to_fix_it(tmp_path):
    proc = local_extract(tmp_path, cwd=tmp_path)
    assert proc.returncode == 0
    assert "loads Chart.js from the web" in proc.stderr and "npm install chart.js" in proc.stderr
    page = (tmp_path / "out" / "dashboard.html").read_text()
    assert page.count('class="empty needs-network"') == len(sa.LOCAL_PANELS)
    assert "offline, the tables below hold the same numbers" in page


def test_time_axes_hold_every_day_and_week_of_the_range():
    days = {"2026-03-01": {"cost": 1.0}, "2026-03-05": {"cost": 2.0}}
    assert sa.every_day(days) == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    assert sa.every_week({"2025-W52": {}, "2026-W02": {}}) == ["2025-W52", "2026-W01", "2026-W02"]
    assert sa.every_day({}) == [] and sa.every_week({"unknown": {}}) == []
    points = sa._cost_over_time(days)["points"]
    assert list(points) == sa.every_day(days) and points["2026-03-03"] == 0 and points["2026-03-05"] == 2.0
    long_range = {"2026-01-05": {"cost": 1.0}, "2026-04-27": {"cost": 1.0}}
    weekly = sa._cost_over_time(long_range)
    assert weekly["unit"] == "week" and len(weekly["points"]) == 17 and sum(weekly["points"].values()) == 2.0


LAYOUT_PROBE = """<script>
window.addEventListener('load', function () { setTimeout(function () {
  var out = {cards: Array.from(document.querySelectorAll('.card')).map(function (c) { return c.offsetTop; }),
             types: {}, notes: document.querySelectorAll('.needs-network').length};
  document.querySelectorAll('canvas').forEach(function (c) {
    var chart = Chart.getChart(c); out.types[c.id] = chart ? chart.config.type : null; });
  var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 500); });
</script></body>"""


def test_eight_cards_make_two_rows_and_a_range_of_one_day_is_drawn_as_bars(tmp_path):
    sid = "0c0c0c0c-0000-4000-8000-000000000003"
    Transcript(tmp_path / "projects" / "-repo" / f"{sid}.jsonl", sid, start="2026-03-02T10:00:00Z") \
        .prompt("one day of work").assistant("msg_1", usage(1000, 50)).write()
    proc = run_cli("extract", "--source", "local", "--projects-dir", tmp_path / "projects", "--output-dir",
                   tmp_path / "out", "--chartjs", npm_file("chart.js/dist/chart.umd.min.js"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "out" / "dashboard.html"
    page.write_text(page.read_text().replace("</body>", LAYOUT_PROBE))
    with serve(tmp_path / "out") as base:
        dom = run_page(f"{base}/dashboard.html", tmp_path / "profile").stdout
    probe = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1).replace("&quot;", '"'))
    rows = sorted(set(probe["cards"]))
    assert len(probe["cards"]) == 8 and len(rows) == 2 and probe["cards"].count(rows[0]) == 4, probe
    assert probe["types"]["tokens-over-time"] == "bar" and probe["notes"] == 0, probe


# ── a bare clone: the corpus tests are reported, not failed; under CI they must run ──

def collect(env_extra: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           str(ROOT / "tests" / "test_stats.py"), str(ROOT / "tests" / "test_reader.py")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_without_the_corpus_its_tests_are_left_out_with_one_line_and_under_ci_they_are_kept():
    bare = collect({"SESSION_ANALYTICS_SHARED": "/nonexistent"})
    full = collect({})
    ci = collect({"SESSION_ANALYTICS_SHARED": "/nonexistent", "CI": "true"})
    count = lambda proc: len([line for line in proc.stdout.splitlines() if "::" in line])  # noqa: E731
    [line] = [line for line in bare.stdout.splitlines() if "did not run" in line]
    left_out = int(line.split()[0])
    assert left_out > 5 and count(bare) + left_out == count(full) == count(ci)
    assert "test_all_synthetic_samples_from_peers_parse" not in bare.stdout
    assert "test_all_synthetic_samples_from_peers_parse" in ci.stdout and "did not run" not in ci.stdout


def test_make_check_leaves_out_exactly_the_tests_that_need_a_tool():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "-m", "tools", str(ROOT / "tests" / "test_first_hour.py"),
                           str(ROOT / "tests" / "test_github.py")], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    marked = {line.split("::")[1].split("[")[0] for line in proc.stdout.splitlines() if "::" in line}
    assert "test_eight_cards_make_two_rows_and_a_range_of_one_day_is_drawn_as_bars" in marked      # chromium
    assert "test_a_python_older_than_3_10_gets_one_line_and_exit_2" not in marked
    assert "test_each_command_shows_only_its_own_options_in_its_help" not in marked
    assert any(name.startswith("test_") for name in marked if "github" not in name) and len(marked) > 10   # gh
