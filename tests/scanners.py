"""Two independent secret scanners, run offline, as the oracle for what a posted comment leaks.

- detect-secrets (Yelp, pinned in tests/requirements.txt), through its Python API with its
  default plugins and filters. Same results as `detect-secrets scan --all-files --no-verify`
  but with the matched value; `--no-verify` matters: without it the CLI asks Slack, Stripe,
  AWS, ... whether a match is live (network) and drops the ones they deny. The API never does.
- secretlint with @secretlint/secretlint-rule-preset-recommend (pinned in tests/secrets/), at
  default options (tests/secrets/.secretlintrc.json). Its rules make no network calls.

Mind detect-secrets' default is_likely_id_string filter: on a line where "_id" (or a leading
"id") comes before a value, its entropy and keyword rules stay silent; its regex rules still fire.

scan() writes the texts into one temporary folder and runs each scanner once over all of them:
starting node costs about a second, so callers batch their texts into a single scan().
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest

SECRETS_DIR = Path(__file__).resolve().parent / "secrets"
SECRETLINT = SECRETS_DIR / "node_modules" / ".bin" / "secretlint"
SECRETLINT_RC = SECRETS_DIR / ".secretlintrc.json"


class Finding(NamedTuple):
    scanner: str        # "detect-secrets" or "secretlint"
    file: str           # the name the text was given in scan()
    line: int           # 1-based
    rule: str           # detect-secrets' secret type, secretlint's rule id (preset prefix dropped)
    snippet: str        # the match as the scanner reports it; detect-secrets 1.5.0 gives only
                        # "ghp"/"glpat" for GitHub/GitLab tokens, "BEGIN ... PRIVATE KEY" for keys


def scanners_available() -> dict[str, str]:
    """Which scanner is missing, and why: {} when both can run."""
    missing = {}
    try:
        import detect_secrets  # noqa: F401
    except ImportError:
        missing["detect-secrets"] = "not installed: pip install -r tests/requirements.txt"
    if not SECRETLINT.exists() or shutil.which("node") is None:
        missing["secretlint"] = "not installed: make test-deps (npm ci in tests/secrets)"
    return missing


def require_scanners() -> None:
    """Fail under CI (the oracle must run there); skip, saying what is missing, elsewhere."""
    missing = scanners_available()
    if not missing:
        return
    reason = "; ".join(f"{name} {why}" for name, why in missing.items())
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"secret scanners missing under CI: {reason}")
    pytest.skip(f"secret scanners missing: {reason}")


def scan(texts: dict[str, str]) -> list[Finding]:
    """Scan each text, saved under its name (e.g. "comment.md", "rows.csv"), with both scanners."""
    if not texts:
        return []
    with tempfile.TemporaryDirectory(prefix="secret-scan-") as tmp:
        folder = Path(tmp, "texts")
        folder.mkdir()
        paths = {}
        for name, text in texts.items():
            path = folder / name
            assert path.parent == folder and not path.exists(), f"bad or repeated name {name!r}"
            path.write_text(text, encoding="utf-8")
            paths[name] = path
        return _detect_secrets(paths) + _secretlint(paths, folder, Path(tmp, "secretlint.json"))


def _detect_secrets(paths: dict[str, Path]) -> list[Finding]:
    from detect_secrets.core.scan import scan_file
    from detect_secrets.filters.heuristic import is_lock_file, is_non_text_file, is_swagger_file
    from detect_secrets.settings import default_settings

    unread = [n for n in paths if is_non_text_file(n) or is_lock_file(n) or is_swagger_file(n)]
    assert not unread, f"detect-secrets skips files named like {unread}: pick other names"
    findings = set()
    with default_settings() as settings:
        assert not any("verification" in f for f in settings.filters), "would go online"
        for name, path in paths.items():
            for secret in scan_file(str(path)):
                findings.add(Finding("detect-secrets", name, secret.line_number, secret.type,
                                     secret.secret_value or ""))
    return sorted(findings)


def _secretlint(paths: dict[str, Path], folder: Path, report: Path) -> list[Finding]:
    # --output, not stdout: node cuts a large report piped to stdout at 64 KiB when it exits.
    proc = subprocess.run(
        [str(SECRETLINT), "--format", "json", "--output", str(report), "--no-maskSecrets",
         "--no-color", "--no-glob", "--secretlintrc", str(SECRETLINT_RC),
         "--secretlintignore", os.devnull, *(f"./{path.name}" for path in paths.values())],
        cwd=folder, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"secretlint failed ({proc.returncode}): {proc.stderr}"
    names = {path.resolve(): name for name, path in paths.items()}
    findings = []
    for result in json.loads(report.read_text(encoding="utf-8")):
        name = names[Path(result["filePath"]).resolve()]
        # ranges count UTF-16 code units, as JavaScript strings do
        content = paths[name].read_text(encoding="utf-8").encode("utf-16-le")
        for message in result["messages"]:
            start, end = message["range"]
            findings.append(Finding("secretlint", name, message["loc"]["start"]["line"],
                                    message["ruleId"].removeprefix("@secretlint/secretlint-rule-"),
                                    content[2 * start:2 * end].decode("utf-16-le")))
    return sorted(findings)
