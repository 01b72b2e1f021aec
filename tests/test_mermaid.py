"""Workflow templates: the flowchart reader, path inference, annotation, and the real Mermaid in chromium."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import pytest

from chromium import npm_file, run_page, serve
from conftest import DEMO_PROJECTS, ROOT, Transcript, run_cli, sa, stats_json, usage

SKILLS = ROOT / "tests" / "fixtures" / "skills"


def links_of(text: str) -> list[tuple]:
    _, links = sa.parse_flowchart(text)
    return [(l.src, l.dst, l.label, l.kind, l.head, l.both_ways) for l in links]


def pairs(text: str) -> list[str]:
    return [f"{a}->{b}" for a, b, *_ in links_of(text)]


# ── the reader: every syntax form, links in Mermaid's order ──

@pytest.mark.parametrize("header", ["flowchart TD", "flowchart LR", "graph TB", "graph RL", "flowchart BT",
                                    "graph", "flowchart TD;"])
def test_any_header_and_direction(header):
    assert pairs(f"{header}\n  A --> B\n") == ["A->B"]


@pytest.mark.parametrize("shape,label", [
    ('A[Plain text]', "Plain text"), ('A(Round)', "Round"), ('A([Stadium])', "Stadium"),
    ('A{Decision?}', "Decision?"), ('A[[Sub routine]]', "Sub routine"), ('A((Circle))', "Circle"),
    ('A>Flag]', "Flag"), ('A{{Hexagon}}', "Hexagon"), ('A[/Lean right/]', "Lean right"),
    ('A[\\Lean left\\]', "Lean left"), ('A[/Trapezoid\\]', "Trapezoid"), ('A[(Database)]', "Database"),
    ('A(((Double)))', "Double"), ('A["tdd:ci"]', "tdd:ci"), ('A(["/tdd"])', "/tdd"),
    ('A["with (parens) [and] {braces} | pipes"]', "with (parens) [and] {braces} | pipes"),
    ('A{"CI green?"}', "CI green?"),
])
def test_every_node_shape_inline_in_a_link(shape, label):
    labels, links = sa.parse_flowchart(f"flowchart TD\n  {shape} --> B\n")
    assert labels["A"] == label
    assert [(l.src, l.dst) for l in links] == [("A", "B")]


@pytest.mark.parametrize("arrow,kind,head,both", [
    ("-->", "normal", ">", False), ("---", "normal", "", False), ("-.->", "dotted", ">", False),
    ("-.-", "dotted", "", False), ("==>", "thick", ">", False), ("===", "thick", "", False),
    ("--o", "normal", "o", False), ("--x", "normal", "x", False), ("<-->", "normal", ">", True),
    ("---->", "normal", ">", False), ("-..->", "dotted", ">", False), ("~~~", "invisible", "", False),
])
def test_every_link_kind(arrow, kind, head, both):
    assert links_of(f"graph LR\n  A {arrow} B\n") == [("A", "B", None, kind, head, both)]


@pytest.mark.parametrize("line,label,kind", [
    ("A -->|CI green| B", "CI green", "normal"),
    ('A -->|"CI green"| B', "CI green", "normal"),
    ("A-->|yes|B", "yes", "normal"),
    ("A -- CI green --> B", "CI green", "normal"),
    ('A -- "quoted text" --> B', "quoted text", "normal"),
    ("A -. maybe .-> B", "maybe", "dotted"),
    ("A == strong ==> B", "strong", "thick"),
    ("A -.->|dotted label| B", "dotted label", "dotted"),
    ("A ==>|thick label| B", "thick label", "thick"),
    ("A --x|3+ failures| B", "3+ failures", "normal"),
])
def test_edge_labels_in_both_forms(line, label, kind):
    [(src, dst, got_label, got_kind, _, _)] = links_of(f"flowchart TD\n  {line}\n")
    assert (src, dst, got_label, got_kind) == ("A", "B", label, kind)


def test_chains_and_ampersands_in_mermaids_order():
    text = """flowchart TD
    A --> B --> C
    D & E --> F
    G --> H & I
    J & K --> L & M --> N
    """
    assert pairs(text) == ["A->B", "B->C", "D->F", "E->F", "G->H", "G->I",
                           "J->L", "J->M", "K->L", "K->M", "L->N", "M->N"]


def test_statements_that_are_not_links():
    text = """%%{init: {"theme": "dark"}}%%
flowchart LR
    %% A --> Z is a comment, not a link
    classDef hot fill:#f00,stroke:#333
    class A,B hot
    style A fill:#ff0
    linkStyle 0 stroke:#000
    linkStyle default stroke-width:2px
    click A "https://example.com" "tooltip"
    click B callback
    subgraph one [First part]
        direction TB
        A:::hot --> B
    end
    subgraph "Second part"
        C[Alone]
    end
    B --> C; C --> D %% trailing comment --> X
    accTitle: Title with -- dashes
    """
    labels, links = sa.parse_flowchart(text)
    assert [f"{l.src}->{l.dst}" for l in links] == ["A->B", "B->C", "C->D"]
    assert labels["C"] == "Alone" and "X" not in labels and "Z" not in labels


def test_node_ids_with_dashes_dots_and_digits():
    assert pairs("graph TD\n  ci-status --> step.2 --> 3rd_node\n") == ["ci-status->step.2", "step.2->3rd_node"]


def test_link_spans_cover_arrow_and_label():
    text = 'flowchart TD\n  A -->|"go"| B -- text --> C\n'
    _, links = sa.parse_flowchart(text)
    assert [text[l.span[0]:l.span[1]] for l in links] == ['-->|"go"|', "-- text -->"]


def test_an_unreadable_template_is_a_warning_not_a_failure(tmp_path):
    skills = tmp_path / "skills"
    shutil_copy(SKILLS, skills)
    broken = skills / "broken"
    broken.mkdir()
    (broken / "SKILL.md").write_text("```mermaid\nflowchart TD\n  A[unclosed --> B\n```\n")
    (skills / "unreadable").mkdir()
    (skills / "unreadable" / "SKILL.md").write_bytes(b"\xff\xfe not utf-8 \x80")
    proc = run_cli("--phase", "mermaid", "--projects-dir", DEMO_PROJECTS, "--session-id", "00b11888",
                   "--skills-dir", skills)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("broken/SKILL.md: unclosed node shape") == 1       # said once, not per use
    assert proc.stderr.count("unreadable/SKILL.md unreadable") == 1
    assert "### TDD Workflow" in proc.stdout
    comment = run_cli("--phase", "comment", "--dry-run", "--projects-dir", DEMO_PROJECTS, "--session-id", "00b11888",
                      "--skills-dir", skills)
    assert comment.returncode == 0 and comment.stderr.count("broken/SKILL.md") == 1


def shutil_copy(src: Path, dst: Path):
    import shutil
    shutil.copytree(src, dst)


# ── path inference ──

def template(text: str, name: str = "wf") -> sa.WorkflowTemplate:
    labels, links = sa.parse_flowchart(text)
    return sa.WorkflowTemplate(name, name.upper(), text, labels, links)


FLOW = """flowchart TD
    START(["/tdd"]) --> TDDCI["tdd:ci"]
    TDDCI --> CHECK{CI green?}
    CHECK -->|CI green| REVIEW["review:pr"]
    CHECK -->|CI red| RCA["rca:ci"]
    RCA --> TDDCI
    REVIEW --> DONE((Done))
    ORPHAN["other:skill"] --> DONE
"""


def test_direct_edge_and_start_node():
    assert sa.workflow_edges([template(FLOW)], ["tdd:ci"]) == {"wf": {"START->TDDCI": 1}}


def test_path_through_a_decision_node_and_error_edge():
    edges = sa.workflow_edges([template(FLOW)], ["tdd:ci", "rca:ci"])
    assert edges == {"wf": {"START->TDDCI": 1, "TDDCI->CHECK": 1, "CHECK->RCA": 1}}
    diagram = sa.annotate_workflow(template(FLOW), edges["wf"], {"tdd:ci", "rca:ci"})
    assert "CHECK -->|\"CI red (1x)\"| RCA" in diagram
    assert "linkStyle 0,1 stroke:#4CAF50" in diagram and "linkStyle 3 stroke:#F44336" in diagram
    assert "linkStyle 2,4,5,6 stroke:#9E9E9E" in diagram


def test_repeated_traversals_count_each_time():
    edges = sa.workflow_edges([template(FLOW)], ["tdd:ci", "rca:ci", "tdd:ci", "rca:ci", "tdd:ci", "review:pr"])
    assert edges["wf"] == {"START->TDDCI": 1, "TDDCI->CHECK": 3, "CHECK->REVIEW": 1, "CHECK->RCA": 2,
                           "RCA->TDDCI": 2}
    diagram = sa.annotate_workflow(template(FLOW), edges["wf"], {"tdd:ci"})
    assert 'TDDCI -->|"3x"| CHECK' in diagram and 'CHECK -->|"CI green (1x)"| REVIEW' in diagram
    assert 'RCA -->|"2x"| TDDCI' in diagram


def test_no_path_counts_nothing_but_still_marks_the_workflow():
    edges = sa.workflow_edges([template(FLOW)], ["other:skill", "tdd:ci"])
    assert edges == {"wf": {}}     # no way from START to ORPHAN, none from ORPHAN to TDDCI


def test_same_skill_twice_walks_the_loop_back_to_it():
    edges = sa.workflow_edges([template(FLOW)], ["tdd:ci", "tdd:ci"])
    assert edges["wf"] == {"START->TDDCI": 1, "TDDCI->CHECK": 1, "CHECK->RCA": 1, "RCA->TDDCI": 1}


def test_skills_not_in_a_template_leave_it_out():
    assert sa.workflow_edges([template(FLOW)], ["unrelated"]) == {}


def test_shortest_path_ties_break_by_link_order():
    text = "flowchart TD\n  A[\"a:x\"] --> P & Q\n  P --> B[\"b:x\"]\n  Q --> B\n"
    assert sa.workflow_edges([template(text)], ["a:x", "b:x"]) == {"wf": {"A->P": 1, "P->B": 1}}


def test_repeated_pairs_get_distinct_keys():
    text = "flowchart TD\n  A[\"a:x\"] -->|one| B[\"b:x\"]\n  A -->|two| B\n"
    t = template(text)
    assert t.edge_keys() == ["A->B", "A->B#2"]
    assert sa.workflow_edges([t], ["a:x", "b:x"]) == {"wf": {"A->B": 1}}


def test_shared_arrow_of_an_ampersand_gets_a_counter_only_when_counts_agree():
    text = 'flowchart TD\n  S(["/s"]) --> X["x:a"] & Y["y:a"]\n'
    t = template(text)
    one = sa.annotate_workflow(t, {"S->X": 1}, {"x:a"})
    assert 'S(["/s"]) --> X["x:a"] & Y["y:a"]' in one and "linkStyle 0 stroke:#4CAF50" in one
    both = sa.annotate_workflow(t, {"S->X": 2, "S->Y": 2}, {"x:a"})
    assert 'S(["/s"]) -->|"2x"| X["x:a"]' in both


@pytest.mark.parametrize("label,is_error", [
    ("CI red", True), ("fail", True), ("tests failed", True), ("3+ failures", True), ("error", True),
    ("timeout", True), ("rejected", True), ("CI green", False), ("pass", False), ("retry", False),
    ("redeploy", False), ("no", False),
])
def test_failure_labels(label, is_error):
    assert bool(sa.FAILURE_LABEL_RE.search(label)) == is_error


def test_skill_nodes_need_a_skill_like_label():
    t = sa.read_workflow_template("x", "```mermaid\nflowchart TD\n  A[\"tdd:ci\"] --> B[Done] --> C([\"/rca\"]) --> D[tdd]\n```\n")
    assert t.skill_nodes() == {"tdd:ci": "A", "rca": "C"}
    t.known_skills = frozenset({"tdd"})
    assert t.skill_nodes() == {"tdd:ci": "A", "rca": "C", "tdd": "D"}


# ── through the script ──

def skill_session(projects: Path, skills: list[str], sid="wf000001-0000-4000-8000-000000000001") -> Path:
    t = Transcript(projects / "-work-r" / f"{sid}.jsonl", sid, cwd="/work/r")
    t.prompt("go")
    for i, skill in enumerate(skills):
        t.tool_use(f"m{i}", f"s{i}", "Skill", {"skill": skill}, usage(1, 1), model="claude-opus-4-6")
        t.tool_result(f"s{i}", "Launching skill")
        t.tool_use(f"b{i}", f"t{i}", "Bash", {"command": "make test"}, usage(1, 1), model="claude-opus-4-6")
        t.tool_result(f"t{i}", "FAILED" if skill == "tdd:ci" and i == 0 else "ok", is_error=(skill == "tdd:ci" and i == 0))
    return t.write()


def test_workflow_edges_in_stats_and_mermaid_phase(tmp_path):
    skill_session(tmp_path, ["tdd:ci", "rca:ci", "tdd:ci"])
    stats = stats_json("--projects-dir", tmp_path, "--session-id", "wf000001", "--skills-dir", SKILLS)
    # tdd: START->SELECT->TDDCI, then TDDCI->CHECK-.->RCACI (CI red), then RCACI==>TDDCI.
    # rca: R0->RCAKIND->CAUSE->FIX is shorter than via RCACI and LOGS; FIX<-->CAUSE-.->RCACI;
    # RCACI->LOGS->CAUSE->FIX. ci: every node has a way in, so STATUS (the first) is the start.
    assert stats["workflow_edges"] == {
        "ci": {"STATUS->RESULT": 1, "RESULT->RCACI": 1},
        "rca": {"R0->RCAKIND": 1, "RCACI->LOGS": 1, "LOGS->CAUSE": 1, "RCAKIND->CAUSE": 1, "CAUSE->FIX": 2,
                "CAUSE->RCACI": 1, "FIX->CAUSE": 1},
        "tdd": {"START->SELECT": 1, "SELECT->TDDCI": 1, "TDDCI->CHECK": 1, "CHECK->RCACI": 1, "RCACI->TDDCI": 1},
    }
    proc = run_cli("--phase", "mermaid", "--projects-dir", tmp_path, "--session-id", "wf000001",
                   "--skills-dir", SKILLS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == run_cli("--phase", "mermaid", "--projects-dir", tmp_path, "--session-id", "wf000001",
                                  "--skills-dir", SKILLS, "--no-cache").stdout          # byte-identical rerun
    assert re.findall(r"^### (.*)$", proc.stdout, re.MULTILINE) == ["CI Workflow", "RCA Workflow", "TDD Workflow"]
    assert proc.stdout.count("```mermaid\n") == 3
    assert 'TDDCI -->|"1x"| CHECK{CI green?}:::decision' in proc.stdout
    assert 'CHECK -.->|"CI red (1x)"| RCACI>"rca:ci"]' in proc.stdout
    assert 'RCACI ==>|"1x"| TDDCI' in proc.stdout


def test_stats_without_templates_has_empty_workflow_edges(tmp_path):
    skill_session(tmp_path, ["tdd:ci"])
    stats = stats_json("--projects-dir", tmp_path, "--session-id", "wf000001", "--skills-dir", tmp_path / "none")
    assert stats["workflow_edges"] == {}
    proc = run_cli("--phase", "mermaid", "--projects-dir", tmp_path, "--session-id", "wf000001",
                   "--skills-dir", tmp_path / "none")
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no workflow under" in proc.stderr


def test_comment_embeds_one_heading_per_workflow(tmp_path):
    skill_session(tmp_path, ["tdd:ci", "rca:ci"])
    proc = run_cli("--phase", "comment", "--dry-run", "--projects-dir", tmp_path, "--session-id", "wf000001",
                   "--skills-dir", SKILLS)
    assert proc.returncode == 0, proc.stderr
    headings = re.findall(r"^#{2,3} .*$", proc.stdout, re.MULTILINE)
    assert headings == ["## Claude Code Session Report", "### Token Usage", "### Subagents", "### Skills & Tools",
                        "### CI Workflow", "### RCA Workflow", "### TDD Workflow", "### Problems Faced",
                        "### Commits"]


# ── the real Mermaid in headless chromium ──

RENDER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="mermaid.min.js"></script></head>
<body><div id="out"></div>
<script type="application/json" id="diagrams">{diagrams}</script>
<script>
const diagrams = JSON.parse(document.getElementById('diagrams').textContent);
mermaid.initialize({{startOnLoad: false, securityLevel: 'strict'}});
(async () => {{
  for (let i = 0; i < diagrams.length; i++) {{
    const box = document.createElement('div');
    box.id = 'result-' + i;
    try {{
      await mermaid.parse(diagrams[i]);
      box.innerHTML = (await mermaid.render('d' + i, diagrams[i])).svg;
    }} catch (e) {{
      box.className = 'error';
      box.textContent = String(e && e.message || e);
    }}
    document.getElementById('out').appendChild(box);
  }}
  document.body.setAttribute('data-done', 'yes');
}})();
</script></body></html>
"""


def diagram_cases(tmp_path) -> list[tuple[sa.WorkflowTemplate, dict, str]]:
    """(template, edges, annotated text) for every diagram the tests produce."""
    cases = []
    for n, skills in enumerate((["tdd:ci", "rca:ci", "tdd:ci"], ["tdd:ci"], ["rca:kind", "tdd:ci", "rca:ci"],
                                ["ci:status", "rca:ci", "ci:status", "rca:ci"], ["tdd:hypershift"])):
        projects = tmp_path / f"p{n}"
        skill_session(projects, skills)
        stats = stats_json("--projects-dir", projects, "--session-id", "wf000001", "--skills-dir", SKILLS)
        templates = {t.name: t for t in sa.load_workflow_templates(SKILLS, print)}
        for name, title in (("tdd", "TDD"), ("rca", "RCA"), ("ci", "CI")):
            if name in stats["workflow_edges"]:
                text = sa.workflow_sections([templates[name]], stats)[title]
                cases.append((templates[name], stats["workflow_edges"][name],
                              text.removeprefix("```mermaid\n").removesuffix("```\n")))
    for text in (FLOW, 'flowchart LR\n  S(["/s"]) --> X["x:a"] & Y["y:a"] --> Z\n  X -->|fail| S\n',
                 'flowchart LR\n  A["a:x"] & B["b:x"] --> C["c:x"] & D["d:x"] --> E["e:x"]\n'):
        t = template(text)
        edges = sa.workflow_edges([t], ["x:a", "y:a", "rca:ci", "x:a", "tdd:ci", "review:pr", "a:x", "d:x",
                                        "e:x"]).get("wf", {})
        cases.append((t, edges, sa.annotate_workflow(t, edges, {"x:a", "tdd:ci"})))
    return cases


def expected_colour(t: sa.WorkflowTemplate, edges: dict, link) -> str:
    if not edges.get(t.edge_keys()[link.index]):
        return sa.LINK_GREY
    return sa.LINK_RED if link.label and sa.FAILURE_LABEL_RE.search(link.label) else sa.LINK_GREEN


def render_and_check(cases, tmp_path) -> dict:
    """Render every case with the real Mermaid; each edge, found by its two end nodes, has its colour."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "mermaid.min.js").symlink_to(npm_file("mermaid/dist/mermaid.min.js"))
    (site / "index.html").write_text(RENDER_PAGE.format(
        diagrams=json.dumps([text for _, _, text in cases]).replace("</", "<\\/")))
    with serve(site) as base:
        proc = run_page(f"{base}/index.html", tmp_path / "profile")
    dom = proc.stdout
    assert 'data-done="yes"' in dom, proc.stderr[-2000:]
    errors = re.findall(r'<div id="result-(\d+)" class="error">([^<]*)', dom)
    assert not errors, errors
    checked = {"green": 0, "grey": 0, "red": 0}
    for i, (t, edges, _) in enumerate(cases):
        block = dom.split(f'id="result-{i}"', 1)[1].split('id="result-', 1)[0]
        drawn = {}
        for tag in re.findall(r'<path [^>]*data-id="L_[^"]+"[^>]*>', block):
            ends = re.search(r'data-id="L_(.+)_\d+"', tag).group(1)
            style = html.unescape(re.search(r'style="([^"]*)"', tag).group(1))
            colours = re.findall(r"stroke:\s*(#[0-9A-Fa-f]{6})", style)
            drawn.setdefault(ends, []).append(colours[-1].upper() if colours else None)
        seen = {}
        for link in t.links:
            if link.kind == "invisible":
                continue
            ends = f"{link.src}_{link.dst}"
            k = seen.get(ends, 0)
            seen[ends] = k + 1
            assert ends in drawn and k < len(drawn[ends]), f"diagram {i}: no edge {ends} drawn"
            want = expected_colour(t, edges, link)
            assert drawn[ends][k] == want, f"diagram {i}: edge {link.src}->{link.dst} (link {link.index}) " \
                                           f"drawn {drawn[ends][k]}, expected {want}"
            checked[{sa.LINK_GREEN: "green", sa.LINK_GREY: "grey", sa.LINK_RED: "red"}[want]] += 1
    return checked


def test_real_mermaid_renders_every_diagram_and_colours_the_intended_edges(tmp_path):
    cases = diagram_cases(tmp_path)
    assert len(cases) >= 10
    checked = render_and_check(cases, tmp_path)
    assert all(checked.values()), checked     # every colour was exercised


def test_workflow_skills_from_elsewhere_render_too(tmp_path):
    """SESSION_ANALYTICS_SKILLS_DIRS (os.pathsep-separated) adds real skills folders to check;
    without it the bundled samples are checked, so this test always runs."""
    folders = [Path(p) for p in os.environ.get("SESSION_ANALYTICS_SKILLS_DIRS", "").split(os.pathsep) if p]
    cases = []
    for folder in folders or [SKILLS]:
        templates = sa.load_workflow_templates(folder, print)
        assert templates, f"no workflow template under {folder}"
        for t in templates:
            skills = list(t.skill_nodes())
            sequence = [s.replace("*", "x") for s in skills[::2] + skills[1::2] + skills[:1]]
            edges = sa.workflow_edges([t], sequence).get(t.name, {})
            cases.append((t, edges, sa.annotate_workflow(t, edges, set(sequence[:2]))))
    checked = render_and_check(cases, tmp_path)
    assert checked["green"] and checked["grey"], checked


@pytest.mark.parametrize("before,title", [
    ("# TDD-CI Workflow\n\n## The Workflow\n", "TDD-CI"), ("## RCA Workflow\n", "RCA"),
    ("# Notes\n", None), ("## Workflow\n", None), ("### Release workflow ##\n", "Release"),
])
def test_workflow_titles(before, title):
    assert sa._workflow_title(before) == title


def test_wildcard_skill_label_stands_for_every_sub_skill():
    text = 'flowchart TD\n  R["rca:ci"] --> ROOT[Root cause] --> T["tdd:*"]\n'
    t = template(text)
    assert sa.workflow_edges([t], ["rca:ci", "tdd:kind"]) == {"wf": {"R->ROOT": 1, "ROOT->T": 1}}
    assert "style T fill:#4CAF50" in sa.annotate_workflow(t, {}, {"tdd:kind"})
    assert "style T fill:#9E9E9E" in sa.annotate_workflow(t, {}, {"rca:ci"})
