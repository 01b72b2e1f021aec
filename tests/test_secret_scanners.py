"""The secret-scanner oracle is live: each corpus shape is found when planted unredacted in the
forms we publish (a Markdown comment body, a CSV row, a JSON string), and clean text is not.

All texts go through one scan() (one run of each scanner) for the whole module.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict

import pytest

from fixtures.secret_shapes import DETECTED_BY, SHAPES, UNDETECTED_BY_SCANNERS
from scanners import require_scanners, scan


def markdown(sample: str) -> str:
    return ("<!-- SESSION:1a2b3c4d -->\n## Claude Code Session Report\n\n"
            "| Tool | Count |\n|------|-------|\n| Bash | 12 |\n\n"
            f"<details><summary>Last error</summary>\n\n```text\n{sample}\n```\n</details>\n")


def csv_row(sample: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([["session_id", "tool", "input"], ["1a2b3c4d", "Bash", sample]])
    return out.getvalue()


def json_string(sample: str) -> str:
    return json.dumps({"session": "1a2b3c4d", "tool": "Bash", "input": sample}, indent=2) + "\n"


FORMS = {"txt": lambda sample: sample, "md": markdown, "csv": csv_row, "json": json_string}

CLEAN = ("Session `1a2b3c4d` on branch `fix/keycloak-652` ran 12 Bash and 3 Edit calls in 12m.\n"
         "Tokens: input 23, output 4,410, cache read 255,200; est. cost $0.52.\n"
         "Skills: tdd:ci (fail), rca:ci (pass). See https://github.com/kagenti/kagenti/pull/652\n")


@pytest.fixture(scope="module")
def found() -> dict[str, set[str]]:
    """File name -> the scanners that found something in it."""
    require_scanners()
    texts = {f"{name}.{ext}": plant(sample)
             for name, sample in {**SHAPES, **UNDETECTED_BY_SCANNERS}.items()
             for ext, plant in FORMS.items()}
    texts.update({f"clean.{ext}": plant(CLEAN) for ext, plant in FORMS.items()})
    by_file = defaultdict(set)
    for finding in scan(texts):
        by_file[finding.file].add(finding.scanner)
    return by_file


def test_corpus_is_large_and_consistent():
    assert len(SHAPES) >= 45
    assert set(DETECTED_BY) == set(SHAPES)
    assert not set(SHAPES) & set(UNDETECTED_BY_SCANNERS)


@pytest.mark.parametrize("name", SHAPES)
def test_each_shape_is_found_in_every_form(found, name):
    per_form = {ext: found[f"{name}.{ext}"] for ext in FORMS}
    assert all(per_form.values()), f"{name}: no scanner finds it in {per_form}"
    assert set.intersection(*per_form.values()) == set(DETECTED_BY[name]), per_form


@pytest.mark.parametrize("name", UNDETECTED_BY_SCANNERS)
def test_undetected_shapes_are_still_undetected(found, name):
    """When a scanner release learns one of these, move it to SHAPES: the oracle can prove it."""
    assert not all(found[f"{name}.{ext}"] for ext in FORMS), f"{name} is now found in every form"


def test_clean_text_gives_no_findings(found):
    assert not any(found[f"clean.{ext}"] for ext in FORMS)
