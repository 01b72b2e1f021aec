"""The script reads as its sections say: speed lives in "Reading fast", behind ReadOptions, and
nothing that turns facts into numbers, text or posts knows that it exists."""

from __future__ import annotations

import ast
import re

from conftest import SCRIPT

SPEED = "Reading fast"
BRIDGE = {"ReadOptions"}                 # the one name of the speed section the reader may use
CLI_MAY_USE = {"ReadOptions", "ReadCache"}


def sections(source: str) -> list[tuple[int, str]]:
    """(line, title) of every banner `# ── Title ──`; a top-level banner has a long rule."""
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        m = re.match(r"# ── (.+?) ─", line)
        if m:
            found.append((number, m.group(1).split(":")[0].strip(), line.rstrip().endswith("─" * 8)))
    return found


def top_level_names(source: str) -> dict[str, tuple[str, ast.AST]]:
    """Every top-level function, class and constant: name -> (its top-level section, its node)."""
    banners = [(line, title) for line, title, top in sections(source) if top]
    names = {}
    for node in ast.parse(source).body:
        section = next((title for line, title in reversed(banners) if line < node.lineno), "")
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = (section, node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    names[target.id] = (section, node)
    return names


def violations(source: str) -> list[str]:
    """Each use of a name of the speed section from outside it that the rules do not allow: the
    reader's sections (before Stats) may use ReadOptions, the CLI ReadOptions and ReadCache, and
    the rest (stats, mermaid, comments, GitHub, extract, the archive) nothing of it."""
    names = top_level_names(source)
    order = [""] + [title for _, title, top in sections(source) if top]     # "": above the first banner
    speed_at, stats_at, cli_at = order.index(SPEED), order.index("Stats"), order.index("CLI")
    where = {name: order.index(section) for name, (section, _) in names.items()}
    speed = {name for name, at in where.items() if speed_at <= at < cli_at}
    found = []
    for name, (section, node) in names.items():
        at = where[name]
        if speed_at <= at < cli_at:
            continue
        allowed = CLI_MAY_USE if at >= cli_at else BRIDGE if at < stats_at else set()
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & speed
        found += [f"{name} ({section}) uses {other}" for other in sorted(used - allowed)]
    return found


def test_nothing_outside_reading_fast_names_what_is_in_it_but_through_read_options():
    source = SCRIPT.read_text(encoding="utf-8")
    assert violations(source) == []


def test_the_check_sees_a_core_function_that_calls_a_speed_helper():
    source = SCRIPT.read_text(encoding="utf-8")
    for core, helper in (("scan_file", "line_hook(FULL, ReadOptions())"), ("compute_stats", "ReadOptions()"),
                         ("render_session_comment", "FastReading")):
        start = source.index(f"\ndef {core}(")
        body = source.index('"""\n', source.index('"""', start) + 3) + 4
        broken = source[:body] + f"    {helper}\n" + source[body:]
        assert violations(broken), core


def test_the_speed_section_holds_the_fast_paths():
    names = top_level_names(SCRIPT.read_text(encoding="utf-8"))
    for name in ("ReadOptions", "FastReading", "line_hook", "skim_tool_result", "glance_tool_result",
                 "ReadCache", "run_jobs", "lost_calls", "CACHE_MIN_BYTES", "SKIM_MIN_BYTES"):
        assert names[name][0] == SPEED, name
    for name in ("scan_file", "interpret_line", "HistoryReader", "PlainReading", "assemble_session",
                 "SCAN_COMBINE"):
        assert names[name][0] != SPEED, name
