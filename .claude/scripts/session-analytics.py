#!/usr/bin/env python3
"""session-analytics: trustworthy numbers from Claude Code session transcripts.

Reads the JSONL transcripts Claude Code writes under ~/.claude/projects and turns
them into per-session statistics (tokens, cost, models, tools, skills, subagents,
commits, problems), annotated workflow diagrams, PR/issue comments with a summary,
a CSV dataset, a report and a dashboard, and a listing of every session on the machine.

One file, Python >= 3.10 standard library only: copy it into any repository.

Layout of this file, in pipeline order:
  constants and pricing -> small helpers and records -> the line interpreter ->
  finding transcripts -> ownership -> assembling a session -> the reader (HistoryReader) ->
  stats -> mermaid workflows -> formatting and list -> what leaves the machine (the privacy
  gate) -> markdown comments -> GitHub client and its workflows -> extract and dashboard ->
  the archive -> reading fast (glance, skim, cache, workers) -> CLI
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 10):      # checked before anything newer is used: one line, not a traceback
    print("session-analytics: error: needs Python 3.10 or newer; this is Python %s (%s)"
          % (sys.version.split()[0], sys.executable), file=sys.stderr)
    sys.exit(2)

import argparse
import array
import bisect
import calendar
import collections
import copy
import csv
import datetime
import dataclasses
import decimal
import email.utils
import functools
import gzip
import hashlib
import html
import io
import itertools
import json
import math
import os
import pickle
import random
import re
import shutil
import signal
import stat
import string
import struct
import subprocess
import tempfile
import textwrap
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from typing import TypedDict
from pathlib import Path

# The stats' shape. 2: a subagent's id is `agent_id` and a commit's SHA `commit_id` (was `id` and
# `sha`): common secret scanners take a long hex string under any other key for a secret.
SCHEMA_VERSION = 2
PROG = "session-analytics"

# Exit codes. Each failure class has its own code so that skills and CI can react.
EXIT_OK = 0
EXIT_INTERNAL = 1      # a bug in this script; reported as one line, never a traceback
EXIT_USAGE = 2         # bad command line (argparse uses 2 as well)
EXIT_NO_SESSION = 3    # no transcript matches the requested session
EXIT_BAD_INPUT = 4     # an input file (transcript, pricing, problems, stats) is unusable
EXIT_OUTPUT = 5        # an output file could not be written
EXIT_GH_MISSING = 6    # gh, the GitHub CLI, is not installed
EXIT_GH_AUTH = 7       # gh is not authenticated for the host
EXIT_NOT_FOUND = 8     # repository, PR or issue not found, or no open PR for the branch
EXIT_RATE_LIMIT = 9    # GitHub's rate limit outlasted the bounded retries, or its GraphQL budget is spent
EXIT_GITHUB = 10       # any other GitHub failure: 5xx or network after retries, 403, a list cut short
EXIT_REJECTED = 11     # GitHub refused a write as invalid (422)
EXIT_PARTIAL = 12      # extract wrote its files, but some PRs or issues could not be read
EXIT_OTLP = 13         # the OTLP endpoint refused the export, or did not answer after retries
EXIT_OVER_BUDGET = 14  # --fail-over-budget: the PR's sessions cost more than its budget


# ── Constants and pricing ─────────────────────────────────────────────────────

SYNTHETIC_MODEL = "<synthetic>"

# Slash commands that are Claude Code's own controls, not skills: the names and aliases of
# Claude Code 2.1.332's command table (read from its bundle), with the older ones it dropped.
# One name is left out on purpose: `session`, there an alias of /remote, is this project's own
# skill; a rare /remote typed as /session would count as a skill run, never our skill as nothing.
BUILTIN_COMMANDS = frozenset("""
access add-dir advisor agents allowed-tools android app artifacts auto-mode-setup autocompact
autofix-pr autopilot background bashes bg branch break-reminder breaks brief btw bug bugfix cd
channel checkpoint checkup chrome clear cloud-plugins color compact config context continue copy
cost daemon dashboard debug-tool-call desktop diff docs doctor downtime effort env exit
experiments export extra-usage fast feedback focus fork goal heapdump help hooks ide import init
input-debug insights install-github-app install-slack-app investigate ios issue keybindings
limit-reset list-agents login logout loop low-priority marketplace mcp memory memory-pause
migrate-installer mobile model name new onboarding output-style passes pause-memory peers
permissions plan plugin plugins powerup pr-comments privacy-settings project quit radio rc recap
release-notes reload-plugins reload-skills remote remote-control remote-env rename reset restart
resume review rewind routines sandbox schedule security-review send-to-project settings
settings-review setup-bedrock setup-vertex share skill-doctor skills stats status statusline
stickers stop subtask tasks team-onboarding teleport terminal-setup theme todos toggle-memory tp
tui ultraplan ultrareview undo update upgrade usage usage-credits use-case version vim voice
web-setup wellbeing workflows
""".split())

# Built-in commands that give Claude a task (`/goal the tests pass`): a turn, though not a skill.
TASK_COMMANDS = frozenset({"goal"})

TASK_TOOLS = ("Task", "Agent")         # the subagent tool was renamed in 2.1.63
ACTIVE_GAP_SECONDS = 15 * 60           # gaps longer than this are idle time

# Prefixes of user text that Claude Code writes itself; such lines are not prompts.
NON_PROMPT_PREFIXES = (
    "<local-command-stdout>", "<local-command-stderr>", "<local-command-caveat>",
    "Caveat: The messages below", "[Request interrupted", "<task-notification>",
    "<teammate-message", "<system-reminder>", "Another Claude session sent a message",
    "<bash-input>", "<bash-stdout>", "<bash-stderr>",
)

# Where Claude Code (2.1.2xx on) says where a user line came from, it is believed over the text:
# a prompt is one a person gave (typed, queued while Claude worked, a suggestion accepted) or a
# `claude -p` run was given; not a task notification, a teammate's message, a scheduled trigger.
PROMPT_SOURCES = frozenset({"typed", "queued", "suggestion_accepted", "sdk"})
PROMPT_ORIGINS = frozenset({"human"})
PROMPT_TURN_ORIGINS = frozenset({"human", "sdk"})

RESULT_TEXT_TOOLS = ("Bash",) + TASK_TOOLS     # tools whose result text the stats read
PROVISIONAL_AGENT = "~"          # prefix of inline sidechain ids before their root is known


READ_CHUNK_BYTES = 4 << 20        # how much of a file one read takes (iter_lines)

# The price table is data: one JSON-shaped literal, the same shape `--pricing FILE` takes. USD per
# million tokens. Every rate is copied from Anthropic's pricing page or the model's overview page
# (never derived: Fable 5.1, Opus 5.5, Sonnet 5.5 and Haiku 5.5 read cache hits below 0.1x input),
# and tests/test_pricing.py compares it with LiteLLM's model_prices_and_context_window.json.
#
# Rules, applied per API call (Pricing.cost):
# - `rates` is a list of periods, oldest first; a period without `from` starts with the model.
#   A call is priced by the period in force at its own timestamp; a call before the first
#   period's `from` uses the first period, and a call without a timestamp the newest.
# - `tier`: when the call's prompt (input + cache writes + cache reads) is over `above_tokens`,
#   the whole call, output included, is billed at the tier's rates.
# - `fast_multiplier`: a call with usage.speed == "fast" costs that many times the rates that
#   apply to it otherwise (tier included). Models without one bill fast calls at standard rates.
# - Cache writes with a 1-hour TTL (usage.cache_creation.ephemeral_1h_input_tokens) are priced at
#   `cache_write_1h`, the rest of cache_creation_input_tokens at `cache_write_5m`.

_PRICING_PAGE = "https://platform.claude.com/docs/en/about-claude/pricing"
_FAST_PAGE = "https://platform.claude.com/docs/en/build-with-claude/fast-mode"
_CODE_FAST_PAGE = "https://code.claude.com/docs/en/fast-mode"


def _rates(input, output, write_5m, write_1h, read, since: str | None = None,
           above_tokens: int | None = None) -> dict:
    """One period of rates (or a tier, above_tokens) as the table writes it."""
    rates = {"from": since} if since else {}
    if above_tokens is not None:
        rates["above_tokens"] = above_tokens
    return {**rates, "input": input, "output": output, "cache_write_5m": write_5m, "cache_write_1h": write_1h,
            "cache_read": read}


PRICE_TABLE = {
    "date": "2026-12-01",
    "source": _PRICING_PAGE,
    "rules": {
        "rates": "USD per million tokens: input, output, cache_write_5m, cache_write_1h, cache_read",
        "from": "a period starts on its date (UTC); a call takes the period in force at its timestamp, "
                "the first period if it is older, the newest if it has no timestamp",
        "tier": "a call whose input + cache writes + cache reads exceed above_tokens is billed whole "
                "at the tier's rates",
        "fast_multiplier": "a call with usage.speed == 'fast' costs this multiple of its rates",
    },
    "models": {
        "claude-fable-5-2": {
            "source": "pricing page; models/fable-5-2 overview (released 2026-11-09); fast: " + _FAST_PAGE,
            "rates": [_rates(8, 40, 10, 16, 0.20, since="2026-11-09")], "fast_multiplier": 2.0},
        "claude-mythos-5-2": {
            "source": "models/mythos-5 overview: Mythos shares Fable's specifications and pricing; " + _FAST_PAGE,
            "rates": [_rates(8, 40, 10, 16, 0.20, since="2026-11-09")], "fast_multiplier": 2.0},
        "claude-fable-5-1": {
            "source": _PRICING_PAGE + " (cache hits 0.025x input, released 2026-09-01)",
            "rates": [_rates(10, 50, 12.50, 20, 0.25, since="2026-09-01")]},
        "claude-mythos-5-1": {
            "source": _PRICING_PAGE + " (limited availability)",
            "rates": [_rates(10, 50, 12.50, 20, 0.25, since="2026-09-01")]},
        "claude-fable-5": {
            "source": _PRICING_PAGE + "; models/fable-5 overview (released 2026-06-09)",
            "rates": [_rates(10, 50, 12.50, 20, 1.00, since="2026-06-09")]},
        "claude-mythos-5": {
            "source": _PRICING_PAGE + " (limited availability)",
            "rates": [_rates(10, 50, 12.50, 20, 1.00, since="2026-06-09")]},
        "claude-opus-5-5": {
            "source": "models/opus-5-5 overview (cache hits 0.05x input); fast $8/$40: " + _FAST_PAGE,
            "rates": [_rates(4, 20, 5, 8, 0.20)], "fast_multiplier": 2.0},
        "claude-opus-5": {
            "source": _PRICING_PAGE + "; models/opus-5 overview (released 2026-07-24); fast 2x: " + _FAST_PAGE,
            "rates": [_rates(5, 25, 6.25, 10, 0.50, since="2026-07-24")], "fast_multiplier": 2.0},
        "claude-opus-4-8": {
            "source": _PRICING_PAGE + "; fast $10/$50, deprecated 2026-10-30: " + _CODE_FAST_PAGE,
            "rates": [_rates(5, 25, 6.25, 10, 0.50)], "fast_multiplier": 2.0},
        "claude-opus-4-7": {
            "source": _PRICING_PAGE + "; fast $30/$150 until its removal on 2026-07-24: " + _CODE_FAST_PAGE,
            "rates": [_rates(5, 25, 6.25, 10, 0.50)], "fast_multiplier": 6.0},
        "claude-opus-4-6": {
            "source": _PRICING_PAGE + "; fast $30/$150 across the full context window: " + _CODE_FAST_PAGE,
            "rates": [_rates(5, 25, 6.25, 10, 0.50)], "fast_multiplier": 6.0},
        "claude-opus-4-5": {"source": _PRICING_PAGE, "rates": [_rates(5, 25, 6.25, 10, 0.50)]},
        "claude-opus-4-1": {"source": _PRICING_PAGE, "rates": [_rates(15, 75, 18.75, 30, 1.50)]},
        "claude-opus-4": {"source": _PRICING_PAGE, "rates": [_rates(15, 75, 18.75, 30, 1.50)]},
        "claude-3-opus": {"source": _PRICING_PAGE + " (retired)", "rates": [_rates(15, 75, 18.75, 30, 1.50)]},
        "claude-sonnet-5-5": {
            "source": "models/sonnet-5-5 overview; cache hits cut from $0.20 to $0.10 on 2026-10-07: "
                      + _PRICING_PAGE,
            "rates": [_rates(2, 10, 2.50, 4, 0.20),
                      _rates(2, 10, 2.50, 4, 0.10, since="2026-10-07")]},
        "claude-sonnet-5": {
            "source": "models/sonnet-5 overview (released 2026-06-30; the planned $3/$15 increase "
                      "was cancelled)",
            "rates": [_rates(2, 10, 2.50, 4, 0.20, since="2026-06-30")]},
        "claude-sonnet-4-6": {"source": _PRICING_PAGE, "rates": [_rates(3, 15, 3.75, 6, 0.30)]},
        "claude-sonnet-4-5": {
            "source": _PRICING_PAGE + " (long context: requests over 200k input tokens)",
            "rates": [_rates(3, 15, 3.75, 6, 0.30)],
            "tier": _rates(6, 22.50, 7.50, 12, 0.60, above_tokens=200_000)},
        "claude-sonnet-4": {
            "source": _PRICING_PAGE + " (long context: requests over 200k input tokens)",
            "rates": [_rates(3, 15, 3.75, 6, 0.30)],
            "tier": _rates(6, 22.50, 7.50, 12, 0.60, above_tokens=200_000)},
        "claude-3-7-sonnet": {"source": _PRICING_PAGE + " (retired)", "rates": [_rates(3, 15, 3.75, 6, 0.30)]},
        "claude-3-5-sonnet": {"source": _PRICING_PAGE + " (retired)", "rates": [_rates(3, 15, 3.75, 6, 0.30)]},
        "claude-haiku-5-5": {
            "source": "models/haiku-5-5 overview (released 2026-10-07; prompts over 100k tokens "
                      "billed whole at the higher rates): " + _PRICING_PAGE,
            "rates": [_rates(0.10, 0.50, 0.125, 0.20, 0.01, since="2026-10-07")],
            "tier": _rates(0.50, 2.50, 0.625, 1.00, 0.05, above_tokens=100_000)},
        "claude-haiku-4-5": {"source": _PRICING_PAGE, "rates": [_rates(1, 5, 1.25, 2, 0.10)]},
        "claude-3-5-haiku": {"source": _PRICING_PAGE, "rates": [_rates(0.80, 4, 1, 1.6, 0.08)]},
        "claude-3-haiku": {"source": _PRICING_PAGE, "rates": [_rates(0.25, 1.25, 0.30, 0.50, 0.03)]},
    },
}
PRICING_DATE = PRICE_TABLE["date"]
RATE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")


@dataclass(frozen=True)
class ModelPrice:
    """One model's prices: rate periods by start date, an optional per-call tier, fast mode."""
    periods: tuple                    # ((start epoch or None, rates in RATE_FIELDS order), ...)
    tier_above: int | None = None     # prompt tokens over which the whole call takes tier_rates
    tier_rates: tuple | None = None
    fast_multiplier: float = 1.0
    source: str = ""

    def rates_at(self, ts: float | None) -> tuple:
        """The rates in force at ts: the last period started by then, else the first one."""
        if ts is None:
            return self.periods[-1][1]
        chosen = self.periods[0][1]
        for start, rates in self.periods:
            if start is None or start <= ts:
                chosen = rates
        return chosen


@dataclass
class Pricing:
    """Price table (normalised model id -> ModelPrice) and the date it is current to."""
    table: dict
    date: str

    def entry(self, model: str) -> ModelPrice | None:
        return self.table.get(normalize_model_id(model))

    def cost(self, model: str, usage: Usage, ts: float | None = None) -> float | None:
        """USD for one API call made at ts, or None when the model has no price."""
        price = self.entry(model)
        if price is None:
            return None
        rates = price.rates_at(ts)
        if price.tier_above is not None \
                and usage.input + usage.cache_creation + usage.cache_read > price.tier_above:
            rates = price.tier_rates
        price_in, price_out, write_5m, write_1h, read = rates
        one_hour = min(usage.cache_1h, usage.cache_creation)
        five_min = usage.cache_creation - one_hour     # no breakdown: all at the 5-minute rate
        dollars = (usage.input * price_in + usage.output * price_out + five_min * write_5m
                   + one_hour * write_1h + usage.cache_read * read) / 1_000_000
        if usage.speed == "fast":
            dollars *= price.fast_multiplier
        return dollars


_MODEL_ALIASES = {"claude-4-opus": "claude-opus-4", "claude-4-sonnet": "claude-sonnet-4",
                  "claude-opus-4-0": "claude-opus-4", "claude-sonnet-4-0": "claude-sonnet-4"}


def normalize_model_id(model: str) -> str:
    """'us.anthropic.claude-opus-4-1-20250805-v1:0' -> 'claude-opus-4-1'."""
    m = model.strip().lower()
    m = re.sub(r"\[[^\]]*\]$", "", m)                       # claude-sonnet-4-5[1m]
    m = re.sub(r"^(anthropic|bedrock|vertex_ai)/", "", m)   # LiteLLM-style provider prefix
    m = re.sub(r"^(?:(?:us|eu|apac|global|jp|au|ca)\.)?anthropic\.", "", m)
    m = re.sub(r"-v\d+(?::\d+)?$", "", m)                   # Bedrock version suffix
    m = re.sub(r"@(?:\d{8}|latest)$", "", m)                # Vertex date
    m = re.sub(r"-(?:\d{8}|latest)$", "", m)                # Anthropic date suffix
    return _MODEL_ALIASES.get(m, m)


def load_pricing(path: str | None) -> Pricing:
    """The built-in table, overridden and extended by a --pricing JSON file (ours or LiteLLM's)."""
    table = {model: model_price(spec, "built-in price table") for model, spec in PRICE_TABLE["models"].items()}
    date = PRICING_DATE
    if not path:
        return Pricing(table, date)
    data = read_json_file(Path(path), "pricing file")
    if not isinstance(data, dict):
        raise UserError(f"pricing file {path}: expected a JSON object")
    if any(isinstance(v, dict) and "input_cost_per_token" in v for v in data.values()):
        table.update(litellm_prices(data))
        return Pricing(table, date)
    models = data.get("models", data if "date" not in data else {})
    if not isinstance(models, dict):
        raise UserError(f"pricing file {path}: 'models' must be an object")
    for model, spec in models.items():
        if model in ("date", "source"):
            continue
        table[normalize_model_id(model)] = model_price(spec, f"pricing file {path}: model {model!r}")
    if isinstance(data.get("date"), str):
        date = data["date"]
    return Pricing(table, date)


def model_price(spec, where: str) -> ModelPrice:
    """A table entry, in any of the shapes the table and --pricing take, as a ModelPrice."""
    if isinstance(spec, list):
        return ModelPrice(((None, _rate_tuple(spec, where)),))
    if not isinstance(spec, dict):
        raise UserError(f"{where}: expected an object or a list of five rates")
    periods = spec.get("rates", spec)
    periods = periods if isinstance(periods, list) and periods and not _is_price(periods[0]) else [periods]
    parsed = []
    for period in periods:
        start = period.get("from") if isinstance(period, dict) else None
        stamp = parse_ts(start + "T00:00:00Z") if isinstance(start, str) else None
        if start is not None and stamp is None:
            raise UserError(f"{where}: 'from' must be a date (YYYY-MM-DD), not {start!r}")
        parsed.append((stamp, _rate_tuple(period, where)))
    parsed.sort(key=lambda p: -1e18 if p[0] is None else p[0])
    price = ModelPrice(tuple(parsed), source=as_str(spec.get("source")))
    tier = spec.get("tier")
    if tier is not None:
        if not isinstance(tier, dict) or not _is_price(tier.get("above_tokens")):
            raise UserError(f"{where}: 'tier' needs 'above_tokens' and the five rates")
        price = dataclasses.replace(price, tier_above=int(tier["above_tokens"]),
                                    tier_rates=_rate_tuple(tier, where))
    if spec.get("fast_multiplier") is not None:
        if not _is_price(spec["fast_multiplier"]):
            raise UserError(f"{where}: 'fast_multiplier' must be a number")
        price = dataclasses.replace(price, fast_multiplier=float(spec["fast_multiplier"]))
    return price


def _rate_tuple(rates, where: str) -> tuple:
    """Five rates from a list or from named fields; a user's file may leave out the cache rates."""
    if isinstance(rates, list):
        if len(rates) == 5 and all(_is_price(v) for v in rates):
            return tuple(float(v) for v in rates)
        raise UserError(f"{where}: a list of rates needs five numbers ({', '.join(RATE_FIELDS)})")
    if not isinstance(rates, dict) or not _is_price(rates.get("input")) or not _is_price(rates.get("output")):
        raise UserError(f"{where} needs numeric 'input' and 'output' (USD per million tokens)")
    price_in = float(rates["input"])
    defaults = {"cache_write_5m": price_in * 1.25, "cache_write_1h": price_in * 2, "cache_read": price_in * 0.1}
    out = []
    for name in RATE_FIELDS:
        value = rates.get(name, defaults.get(name))
        if not _is_price(value):
            raise UserError(f"{where}: {name!r} must be a number")
        out.append(float(value))
    return tuple(out)


# LiteLLM prices per token; its tiered fields end in _above_<N>k_tokens.
_LITELLM_FIELDS = ("input_cost_per_token", "output_cost_per_token", "cache_creation_input_token_cost",
                   "cache_creation_input_token_cost_above_1hr", "cache_read_input_token_cost")
_LITELLM_TIER_RE = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


def litellm_prices(data: dict) -> dict:
    """ModelPrices from LiteLLM's model_prices_and_context_window.json, as LiteLLM ships it.

    Several keys name one model (provider prefixes, dates); Anthropic's own entry wins, then
    the key that is already the bare id, then the first in the file."""
    chosen = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or not _is_price(entry.get("input_cost_per_token")) \
                or not _is_price(entry.get("output_cost_per_token")):
            continue
        model = normalize_model_id(key)
        rank = (entry.get("litellm_provider") != "anthropic", key.lower() != model)
        if model not in chosen or rank < chosen[model][0]:
            chosen[model] = (rank, entry)
    return {model: _litellm_price(entry) for model, (_, entry) in chosen.items()}


def _litellm_price(entry: dict) -> ModelPrice:
    def rates(suffix: str, base: tuple | None) -> tuple:
        """The five rates of one tier; a missing cache rate scales like the tier's input rate."""
        out = []
        for i, name in enumerate(_LITELLM_FIELDS):
            value = entry.get(name + suffix)
            if _is_price(value):
                out.append(round(value * 1_000_000, 10))
            elif base is not None and base[0]:
                out.append(base[i] * out[0] / base[0])
            else:
                out.append(out[0] * (1, 1, 1.25, 2, 0.1)[i])
        return tuple(out)

    standard = rates("", None)
    price = ModelPrice(((None, standard),), source="LiteLLM")
    for key in entry:
        m = _LITELLM_TIER_RE.match(key)
        if m:
            price = dataclasses.replace(price, tier_above=int(m.group(1)) * 1000,
                                        tier_rates=rates(f"_above_{m.group(1)}k_tokens", standard))
            break
    fast = as_dict(entry.get("provider_specific_entry")).get("fast")
    if _is_price(fast):
        price = dataclasses.replace(price, fast_multiplier=float(fast))
    return price


def _is_price(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


# ── Small helpers and the records that travel ─────────────────────────────────

class UserError(Exception):
    """A failure the user can fix; carries its exit code and one-line message."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.code = code


_TS_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?$", re.ASCII)


@functools.lru_cache(maxsize=4096)     # 7% of a first list on a history of many small lines (measured)
def _day_epoch(day: str) -> int | None:
    """'2026-02-08' -> epoch of that day's midnight, UTC (cached: a history spans few days)."""
    if len(day) != 10 or not day.isascii() or day[4] != "-" or day[7] != "-" \
            or not (day[:4] + day[5:7] + day[8:10]).isdigit():
        return None
    try:
        return calendar.timegm((int(day[0:4]), int(day[5:7]), int(day[8:10]), 0, 0, 0, 0, 0, 0))
    except (ValueError, OverflowError):
        return None


def parse_ts(value) -> float | None:
    """ISO-8601 timestamp -> epoch seconds (UTC), or None when unreadable."""
    if not isinstance(value, str):
        return None
    # Claude Code's own form, 2026-02-08T22:26:37.123Z, one per line, without the regex: 10% of a
    # first list on a history of many small lines (measured). The sum is timegm's own (whole
    # seconds, exact) before the milliseconds are added.
    if len(value) == 24 and value[23] == "Z" and value[19] == "." and value[16] == ":" and value[13] == ":" \
            and value[10] == "T":
        day, digits = _day_epoch(value[:10]), value[11:13] + value[14:16] + value[17:19] + value[20:23]
        if day is not None and digits.isascii() and digits.isdigit():
            return day + int(digits[0:2]) * 3600 + int(digits[2:4]) * 60 + int(digits[4:6]) + int(digits[6:9]) / 1000
    m = _TS_RE.match(value.strip())
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        epoch = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    frac = float(m.group(7)) if m.group(7) else 0.0
    tz = m.group(8)
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch + frac


def format_ts(epoch: float | None) -> str | None:
    """Epoch seconds -> '2026-02-08T22:26:37Z'."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def as_int(value) -> int:
    """Token counts arrive as ints, but also as null, floats or strings in damaged files."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return max(int(value), 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return 0


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_str(value) -> str:
    return value if isinstance(value, str) else ""


def write_atomic(path: Path, text: str) -> None:
    """Write text so that readers see the old file or the whole new one, never a part.

    Only a regular file (or a new one) is replaced that way; through a symlink, the file it points
    at. A device, FIFO or socket (-o /dev/stdout, -o /dev/null as root) is written through, as a
    shell redirection would: replacing it would put a regular file where the device was."""
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UserError(f"cannot write {path}: it is a folder", EXIT_OUTPUT)
    if info is not None and not stat.S_ISREG(info.st_mode):
        try:
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            return
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}", EXIT_OUTPUT) from None
    if info is not None and path.is_symlink():
        path = Path(os.path.realpath(path))
    directory = path.parent if str(path.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}", EXIT_OUTPUT) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UserError(f"cannot write {path}: {exc.strerror or exc}", EXIT_OUTPUT) from None


def open_regular(path):
    """An open binary file, or None when the path is not a regular file (a FIFO would block a
    read forever, a device such as /dev/zero never ends): opened without blocking, then checked."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return os.fdopen(fd, "rb", buffering=0)
    except OSError:
        os.close(fd)
        return None


def read_json_file(path: Path, what: str, hint: str = ""):
    """Load a JSON input file (`what`: "pricing file", ...) or fail with one clear line."""
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}{hint}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{what} {path} is not valid JSON: {exc}") from None


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 PR', '2 PRs', '0 sessions'."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


# ── Secrets: every shape we know, blanked wherever session text is kept or goes out ──
#
# A command line, an error text, a commit subject or a subagent's description may carry a
# credential. redact_secrets replaces each one it recognises with ***, keeping what names it (the
# option, the variable, the URL's scheme) so that the text still reads. The shapes follow the
# rules of the common scanners (gitleaks, detect-secrets, secretlint): tokens whose prefix names
# them, credentials inside something else (a URL, a header, a command-line option, an
# assignment), and long random strings. tests/test_privacy.py plants each shape of
# tests/fixtures/secret_shapes.py in text and has two real scanners find nothing of it after.

_SECRET_TOKENS = re.compile("|".join((
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*)",
    r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}", r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"\bgl(?:pat|dt|rt|ptt|ft|imt|agent|oas|cbt|soat|ffct|sat)-[A-Za-z0-9_\-]{20,}", r"\bGR1348941[A-Za-z0-9_\-]{20,}",
    r"\bATBB[A-Za-z0-9_\-=.]{20,}", r"\bATCTT3xFfGN0[A-Za-z0-9_\-=]{20,}", r"\bATATT3xFfGF0[A-Za-z0-9_\-=]{20,}",
    r"\bsk-[A-Za-z0-9_\-]{20,}", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}", r"\bwhsec_[A-Za-z0-9]{20,}",
    r"\bxox[abposre]-[A-Za-z0-9\-]{10,}", r"\bxapp-\d-[A-Za-z0-9\-]{10,}",
    r"\bhttps://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+",
    r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
    r"\bAIza[0-9A-Za-z_\-]{35}", r"\bya29\.[0-9A-Za-z_\-]{20,}", r"\bGOCSPX-[A-Za-z0-9_\-]{20,}",
    r"\bnpm_[A-Za-z0-9]{36}", r"\bpypi-[A-Za-z0-9_\-]{50,}", r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
    r"\b(?:SK|AC)[0-9a-fA-F]{32}\b", r"\b[0-9a-f]{32}-us\d{1,2}\b", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
    r"\b[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,}",
    r"\bhttps://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_\-]+",
    r"\b\d{8,10}:AA[A-Za-z0-9_\-]{33}", r"\bdo[por]_v1_[a-f0-9]{64}", r"\bhf_[A-Za-z0-9]{30,}",
    r"\bdapi[a-f0-9]{32}(?:-\d)?", r"\bglc_[A-Za-z0-9+/]{32,}={0,2}", r"\bdckr_pat_[A-Za-z0-9_\-]{20,}",
    r"\bLTAI[A-Za-z0-9]{12,20}\b", r"\bsq0(?:atp|csp)-[0-9A-Za-z_\-]{22,}", r"\bkey-[0-9a-zA-Z]{32}\b",
    r"\bxkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}", r"\bsntry[su]_[A-Za-z0-9+/=_]{40,}", r"\blin_api_[A-Za-z0-9]{40}",
    r"\bsecret_[A-Za-z0-9]{43}\b", r"\bntn_[A-Za-z0-9]{40,}", r"\brubygems_[a-f0-9]{48}",
    r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}", r"\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\-=.]{32,}",
    r"\bpat[A-Za-z0-9]{14}\.[a-f0-9]{64}", r"\bEAA[A-Za-z0-9]{30,}", r"\bnfp_[A-Za-z0-9]{36}",
)), re.DOTALL)

# (pattern, replacement): the credential is the last group or what the replacement leaves out.
_SECRET_PARTS = tuple((re.compile(pattern, flags), replacement) for pattern, flags, replacement in (
    # a URL's user:password@ (or a token alone before the @, as git clone https://TOKEN@host takes it)
    (r"\b([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]*@", 0, r"\1***@"),
    (r"\b(https?://)[A-Za-z0-9_\-]{20,}@", 0, r"\1***@"),
    # Authorization: Basic|Bearer|Token ...
    (r"\b(bearer|token|basic|digest)(\s+)[A-Za-z0-9._~+/=\-]{8,}", re.I, r"\1\2***"),
    # command-line options that take a secret: --password X, --token=X, ...
    (r"(--?(?:password|passwd|pass|pwd|token|secret|api[-_]?key|apikey|access[-_]?key|secret[-_]?key"
     r"|client[-_]?secret|auth(?:[-_]?token)?|private[-_]?key|passphrase|credentials?|http-password"
     r"|proxy-password)(?:=|\s+))(?:\"[^\"]*\"|'[^']*'|\S+)", re.I, r"\1***"),
    # mysql -pSECRET (attached), redis-cli -a X, sshpass -p X, mongo/sqlcmd -p X, docker login -p X
    (r"(\bmysql(?:dump|admin|sh|import|check|slap)?\b[^\n|;&]*?\s-p)(?=\S)(?:\"[^\"]*\"|'[^']*'|\S+)", 0, r"\1***"),
    (r"(\b(?:redis-cli|keydb-cli)\b[^\n|;&]*?\s-a\s+)\S+", 0, r"\1***"),
    (r"(\bsshpass\b[^\n|;&]*?\s-p\s*)\S+", 0, r"\1***"),
    (r"(\b(?:mongo|mongosh|mongodump|mongorestore|sqlcmd|bcp|isql)\b[^\n|;&]*?\s-[pP]\s+)\S+", 0, r"\1***"),
    (r"(\bdocker\b[^\n|;&]*\blogin\b[^\n|;&]*?\s-p\s+)\S+", 0, r"\1***"),
    # openssl ... -k X, -pass pass:X, -passin env:X's value is not there, file: is a path
    (r"(\bopenssl\b[^\n|;&]*?\s-[kK]\s+)\S+", 0, r"\1***"),
    (r"(\s-pass(?:in|out)?\s+pass:)\S+", 0, r"\1***"),
    # curl -u user:password, --user user:password (also -uuser:password)
    (r"((?:\s|^)(?:-u\s*|--user[=\s]\s*|--proxy-user[=\s]\s*)(?:\"|')?[^\s:\"']+:)(?:\"[^\"]*\"|'[^']*'|[^\s\"']+)",
     0, r"\1***"),
    # NAME=value and "name": "value" where the name says secret
    (r"\b([A-Za-z0-9_.\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key"
     r"|private[_\-]?key|client[_\-]?secret|credentials?|auth[_\-]?key|session[_\-]?key|signing[_\-]?key"
     r"|encryption[_\-]?key|conn(?:ection)?[_\-]?string)[A-Za-z0-9_.\-]*(?<![Tt]okens)(?<!TOKENS)[\"']?\s*[:=]\s*)"
     r"(?!\*\*\*)(?:\"[^\"]*\"|'[^']*'|[^\s,;&|)\"']+)", re.I, r"\1***"),
))

# Long random strings: a key with no known prefix (a bare AWS secret key, a generated password).
_RANDOM_RUN_RE = re.compile(r"[A-Za-z0-9+/=_\-]{20,}")


def _looks_random(run: str) -> bool:
    """A run of 20+ key characters that reads as random: three character classes and high
    entropy, or 32+ hex digits, or AWS's 40-character secret shape. Paths are judged by part."""
    if len(run) == 40 and not run.startswith("/") and re.fullmatch(r"[A-Za-z0-9+/]{40}", run) \
            and re.search(r"[A-Z]", run) and re.search(r"[a-z]", run) and re.search(r"\d", run):
        return True
    if run.startswith("/") or run.count("/") > 2:
        return any(_looks_random(part) for part in run.split("/") if len(part) >= 20)
    letters = run.strip("=")
    if re.fullmatch(r"[0-9a-fA-F]{32,}", letters):
        return _entropy(letters) >= 3.0
    classes = bool(re.search(r"[a-z]", run)) + bool(re.search(r"[A-Z]", run)) + bool(re.search(r"\d", run))
    if classes < 3 or len(run) < 24 or _entropy(run) < 4.2:
        return False
    # an identifier (SessionAnalyticsDashboard2024, test_parse_v2_Header) is mostly words
    words = sum(len(w) for w in _WORD_RE.findall(run))
    return words < 0.6 * len(run)


_WORD_RE = re.compile(r"[A-Z]?[a-z]{3,}|[A-Z]{2,}(?![a-z])")


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = collections.Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def redact_secrets(text: str) -> str:
    """Every credential in text replaced by ***; see _SECRET_TOKENS, _SECRET_PARTS, _looks_random."""
    if not text:
        return text
    text = _SECRET_TOKENS.sub("***", text)
    for pattern, replacement in _SECRET_PARTS:
        text = pattern.sub(replacement, text)
    if len(text) >= 20:
        text = _RANDOM_RUN_RE.sub(lambda m: "***" if _looks_random(m.group()) else m.group(), text)
    return text


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# What a session or agent id must look like before it names a file or leaves the machine. Ids are
# also read from file content (a flat agent file's sessionId, a capture's session_id), where
# `../../x` or an absolute path would otherwise write outside the output folder.
SAFE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def session_file(folder: Path, sid: str) -> Path:
    """FOLDER/<session id>.json, for an id that can only name a file inside FOLDER."""
    if not SAFE_ID_RE.fullmatch(sid):
        raise UserError(f"not a session id, so it names no file: {sid!r}", EXIT_BAD_INPUT)
    return folder / f"{sid}.json"


def encode_project_dir(cwd: str) -> str:
    """Claude Code's folder name for a working directory: every non-alphanumeric char -> '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


class Skipped(collections.Counter):
    """What was skipped, by reason, and where each reason first happened ("path:line"), for the
    one note that says so."""

    def __init__(self, *args, **kwargs):
        self.first = {}
        super().__init__(*args, **kwargs)

    def add(self, reason: str, where: str) -> None:
        self[reason] += 1
        self.first.setdefault(reason, where)

    def update(self, other=(), **kwargs):
        super().update(other, **kwargs)
        for reason, where in getattr(other, "first", {}).items():
            self.first.setdefault(reason, where)

    def __reduce__(self):                # Counter's own leaves `first` out
        return self.__class__, (dict(self),), {"first": self.first}


@dataclass(slots=True)
class Usage:
    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0
    cache_5m: int = 0
    cache_1h: int = 0
    web_search: int = 0
    web_fetch: int = 0
    speed: str = "standard"

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_creation + self.cache_read


@dataclass(slots=True)
class ApiCall:
    """One billed API response: the merge of every line that shares its key."""
    key: tuple
    model: str
    usage: Usage
    first_ts: float | None
    agent: str | None            # None for the main thread, else the subagent id
    correction: bool = False     # a capture's tokens its result counted beyond the streamed messages
    skill: str | None = None     # the skill Claude Code says the call was made for (attributionSkill)


# What is kept of tool calls and results is what the stats need, never the text itself: a digest
# of each call's command or target (to group failures and see them resolved), the command's head
# or the target only of a call that failed, a result's commit lines and error class, a subagent
# prompt's digest. So neither memory nor the cache holds command output, prompts, or the commands
# and paths of calls that went well.

@dataclass(slots=True)
class ToolUse:
    id: str
    name: str
    ts: float | None
    agent: str | None
    call_key: tuple
    signature: str = ""          # digest of the command's head (Bash) or of the target: call_signature
    commits: bool = False        # Bash: the command runs `git commit`
    skill: str = ""              # Skill name
    subagent_type: str = ""
    description: str = ""
    prompt_key: str = ""         # digest of a Task prompt's head, to link inline sidechains


@dataclass(slots=True)
class ToolResult:
    tool_use_id: str
    is_error: bool
    ts: float | None
    error: str = ""              # the error's class (error_class), for a failed call
    what: str = ""               # a failed call's command head (Bash) or target, secrets redacted
    what_kind: str = ""          # "command", "path", "pattern" or "url"
    commits: tuple = ()          # (sha, subject) of each `[branch sha] subject` line of a commit
    agent_id: str = ""           # toolUseResult.agentId of a Task/Agent result
    agent_type: str = ""
    reported: dict | None = None # toolUseResult's usage of a Task/Agent result: its last call only


# How deep a read goes: a list row needs tokens, times and subagent links (ROW); the stats need
# everything (FULL). What a read returns says which it was, and compute_stats refuses a row.
ROW, FULL = "row", "full"


@dataclass
class FileScan:
    """What one transcript file contributes to its session."""
    path: Path
    session_id: str = ""
    depth: str = FULL
    calls: dict = field(default_factory=dict)          # key -> ApiCall
    tool_uses: list = field(default_factory=list)
    tool_results: list = field(default_factory=list)
    prompts: list = field(default_factory=list)        # (uuid, ts) of user prompts
    commands: list = field(default_factory=list)       # (name, ts) of slash commands
    timestamps: list = field(default_factory=list)
    cwds: collections.Counter = field(default_factory=collections.Counter)          # main thread
    branches: collections.Counter = field(default_factory=collections.Counter)
    agent_cwds: collections.Counter = field(default_factory=collections.Counter)    # subagents
    agent_branches: collections.Counter = field(default_factory=collections.Counter)
    versions: set = field(default_factory=set)
    agent_prompt_keys: dict = field(default_factory=dict)    # agent id -> prompt_key of its first prompt
    compactions: int = 0
    skipped: Skipped = field(default_factory=lambda: Skipped())
    cost_state: dict | None = None     # Claude Code's own cost record: the file's last cost-state
    titles: dict = field(default_factory=dict)   # "custom", "ai", "summary" -> the latest of each
    user_commits: list = field(default_factory=list)   # (sha, subject, ts) of `!git commit` the user ran
    pr_links: list = field(default_factory=list)       # (repository, number, ts) of pr-link records
    hidden_calls: set = field(default_factory=set)     # features that make calls no line records
    first_prompt: str = ""                           # the title's fallback: secrets redacted
    # how many lines the fast paths read without decoding them (speed only: not compared)
    skimmed: int = field(default=0, compare=False)
    glanced: int = field(default=0, compare=False)


@dataclass
class SessionFacts:
    """Everything read for one session, after dedupe; the input of compute_stats."""
    session_id: str
    project_dir: str
    calls: list
    tool_uses: list
    tool_results: list
    prompts: list
    commands: list
    timestamps: list
    cwds: collections.Counter
    branches: collections.Counter
    versions: set
    agent_meta: dict               # agent id -> {"agentType", "description"}
    agent_prompt_keys: dict
    compactions: int
    skipped: Skipped
    depth: str = FULL
    cost_state: dict | None = None # Claude Code's own record of the session's cost (cost_state_of)
    capture: dict | None = None    # for a stream-json capture: its format, results, completeness
    title: str | None = None       # custom or AI title, else the first prompt (never posted)
    replayed: dict = field(default_factory=dict)   # model -> Usage of calls another session owns
    user_commits: list = field(default_factory=list)   # (sha, subject, ts) of `!git commit` runs
    pr_links: list = field(default_factory=list)       # (repository, number, ts), in time order
    hidden_calls: set = field(default_factory=set)     # features that make calls no line records


# ── The line interpreter: one transcript line into a file's scan ──────────────
#
# A transcript line is one JSON object. Only a few record types matter; the rest
# (progress, attachment, file-history-snapshot, ...) contribute their timestamp
# and nothing else. Everything read is reduced to small records right away so
# that memory stays proportional to what is kept, not to the file's size.

def _text_of(content) -> str:
    """Plain text of a message or tool_result content (string or list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(as_str(block.get("text")))
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    return ""


MAX_TOKENS = 10 ** 12       # more than this in one count is damage, not usage


def token_count(value) -> int | None:
    """A token count as written, or None when it is not one: negative, fractional, infinite
    (1e999), text ("123"), a boolean, or beyond MAX_TOKENS. A count left out is 0."""
    if type(value) is int:
        return value if 0 <= value <= MAX_TOKENS else None
    if value is None:
        return 0
    if type(value) is float and value.is_integer() and 0 <= value <= MAX_TOKENS:
        return int(value)
    return None


def usage_of(raw: dict) -> Usage | None:
    """One API call's usage, or None when a count in it is not a count (see token_count): such a
    call is invalid input, skipped and noted, never counted as 0."""
    get = raw.get
    inp, out = token_count(get("input_tokens")), token_count(get("output_tokens"))
    cc, cr = token_count(get("cache_creation_input_tokens")), token_count(get("cache_read_input_tokens"))
    if inp is None or out is None or cc is None or cr is None:
        return None
    usage = Usage(input=inp, output=out, cache_creation=cc, cache_read=cr)
    cache = get("cache_creation")
    if cache and isinstance(cache, dict):
        usage.cache_5m = token_count(cache.get("ephemeral_5m_input_tokens"))
        usage.cache_1h = token_count(cache.get("ephemeral_1h_input_tokens"))
        if usage.cache_5m is None or usage.cache_1h is None:
            return None
    server = get("server_tool_use")
    if server and isinstance(server, dict):
        usage.web_search = as_int(server.get("web_search_requests"))
        usage.web_fetch = as_int(server.get("web_fetch_requests"))
    speed = get("speed")
    if isinstance(speed, str):
        usage.speed = speed
    return usage




def iter_lines(handle, start: int, chunk_bytes: int = READ_CHUNK_BYTES, end: int | None = None):
    """(line without its newline, end offset, newline-terminated) for each line of an open binary
    file from byte offset `start` (to `end`, a line's start, if given), read in big chunks into
    one reused buffer (fresh memory for every chunk costs more in page faults than the reading)
    and split with find."""
    pos = handle.seek(start)
    left = (os.fstat(handle.fileno()).st_size if end is None else end) - start
    buf = bytearray(max(min(chunk_bytes, left + 1), 1 << 16))
    pieces = []                      # a line longer than what is left of a chunk, so far
    with memoryview(buf) as view:
        while True:
            size = handle.readinto(view if end is None or left >= len(buf) else view[:max(left, 0)])
            if not size:
                break
            left -= size
            lo = 0
            nl = buf.find(b"\n", 0, size)
            if pieces and nl >= 0:
                pieces.append(buf[:nl])
                line = b"".join(pieces)
                pieces = []
                pos += len(line) + 1
                yield line, pos, True
                lo = nl + 1
                nl = buf.find(b"\n", lo, size)
            while nl >= 0:
                pos += nl + 1 - lo
                yield buf[lo:nl], pos, True
                lo = nl + 1
                nl = buf.find(b"\n", lo, size)
            if lo < size:
                pieces.append(buf[lo:size])
    if pieces:
        line = b"".join(pieces)
        yield line, pos + len(line), False


def decode_line(line: bytes, terminated: bool):
    """(object or None, skip reason or None) for one line; the caller counts what was skipped."""
    if not line:
        return None, None
    if line[0] != 0x7B or line[-1] != 0x7D:          # not `{...}`: maybe wrapped in whitespace
        line = line.strip().removeprefix(b"\xef\xbb\xbf")   # or a BOM before the first line
        if not line:
            return None, None
    try:
        text, repaired = line.decode("utf-8"), False
    except UnicodeDecodeError:
        text, repaired = line.decode("utf-8", "replace"), True
    try:
        obj = json.loads(text)
    except ValueError:
        return None, "invalid JSON lines" if terminated or repaired else "truncated last lines"
    except RecursionError:
        return None, "invalid JSON lines"
    if type(obj) is not dict:
        return None, "lines that are not JSON objects"
    return obj, "lines with non-UTF-8 bytes (repaired)" if repaired else None


def result_text_read(tool_names: dict, tool_use_id, text_tools: tuple = RESULT_TEXT_TOOLS) -> bool:
    """Is this result's text read? Yes for the text tools (Bash and Task/Agent for the stats,
    Task/Agent alone for list rows), and for a call the file does not hold (its tool is unknown)."""
    name = tool_names.get(tool_use_id)
    return name is None or name in text_tools


@dataclass
class ScanState:
    """A file's scan so far, before inline sidechains are resolved: what the cache keeps."""
    scan: FileScan
    inline_parent: dict = field(default_factory=dict)   # sidechain uuid -> parentUuid
    inline_lines: list = field(default_factory=list)    # (uuid, ApiCall or ToolUse) awaiting an agent
    uuid_prompt_key: dict = field(default_factory=dict)  # an inline chain's first line -> prompt_key
    tool_names: dict = field(default_factory=dict)      # tool_use id -> tool name, for its result
    commit_calls: set = field(default_factory=set)      # ids of Bash calls that run git commit
    call_text: dict = field(default_factory=dict)       # call id -> (command head or target, kind),
                                                        # until its result says whether it failed
    line: int = 0                                       # the number of the line being read
    shell_commits: bool = False                         # the last `!` command runs git commit

    @property
    def text_tools(self) -> tuple:
        """The tools whose results are read in full (the rest are skimmed)."""
        return TASK_TOOLS if self.scan.depth == ROW else RESULT_TEXT_TOOLS


def interpret_line(state: ScanState, line: bytes, terminated: bool, agent_hint: str | None) -> None:
    """One line of a transcript into the scan state: decoded, then read by _scan_record."""
    rec, problem = decode_line(line, terminated)
    if problem:
        skip(state, problem)
    if rec is not None:
        _scan_record(state, rec, agent_hint)


def skip(state: ScanState, reason: str) -> None:
    """Count what was skipped and why, and where it first happened (the note names it)."""
    state.scan.skipped.add(reason, f"{state.scan.path}:{state.line}")


def _result_blocks(content) -> list:
    """The tool_result blocks of a user line's content: such a line is a tool result, not a prompt."""
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


# Changing what is counted: a checklist. The counting rules live here, in _scan_record and the
# _read_* functions it calls. "Reading fast", at the end of this file, reads some lines without
# decoding them, and relies on these rules as they stand; a change to one of them must keep:
# - A tool-result line (a user line whose content is a list of tool_result blocks) gives the scan
#   its members in _SKIM_KEYS, each block's tool_use_id and is_error, the text of the tools in
#   RESULT_TEXT_TOOLS and the text of a failed call (its error class). The skim reads exactly
#   those from a big line and steps over the rest; to read anything else from such lines, add the
#   member to _SKIM_KEYS, or make the skim decline the lines that carry it (result_text_read, the
#   is_error check). tests/test_skim.py holds the skim to a full decode on every real line.
# - At ROW depth (a list row) a tool-result line gives only its timestamp, and a Task/Agent
#   result its subagent link; other tool calls are not recorded. The glance takes only the
#   timestamp; a list row that shows more must record it at ROW depth and the glance must decline
#   the lines that carry it. tests/test_glance.py.
# - A billed API call is what billed_usage and call_key say, for every reader of lines.
# - What a session's summary depends on besides its transcripts (prices, templates) is in
#   summary_key: results kept between runs are keyed on it. tests/test_cache.py.
# - A summarise function (list_row, local_stats) is pure and picklable: it may run in a worker.
# - A new FileScan field needs its rule in SCAN_COMBINE (how the scans of one session combine).
# tests/test_reader.py holds every speed setting to the plain reader's result, on the real
# transcripts and on generated histories.

def _scan_record(state: ScanState, rec: dict, agent_hint: str | None) -> None:
    """One decoded line into the scan: its time, session and version, where it ran (cwd and branch,
    counted on the main thread only, and not on tool-result lines, which repeat their call's
    envelope), and by record type: an assistant line's billed call and tool uses (_read_assistant),
    a user line's tool results (_read_results) or prompt and slash command (_read_prompt), a
    compaction, Claude Code's own cost record, a title. Other types add their time and nothing
    else."""
    scan = state.scan
    get = rec.get
    ts = parse_ts(get("timestamp"))
    if ts is not None:
        scan.timestamps.append(ts)
    if not scan.session_id and isinstance(get("sessionId"), str):
        scan.session_id = rec["sessionId"]
    kind = get("type")
    if kind != "assistant" and kind != "user":
        if kind == "system" and get("subtype") == "compact_boundary":
            scan.compactions += 1
        elif kind == "cost-state" and agent_hint is None:
            record = cost_state_of(rec)
            if record is not None:
                scan.cost_state = record
            elif "totalCostUSD" in rec:
                skip(state, "cost records with numbers that are not numbers")
        elif kind in _TITLE_FIELDS and agent_hint is None and isinstance(get(_TITLE_FIELDS[kind][1]), str):
            scan.titles[_TITLE_FIELDS[kind][0]] = rec[_TITLE_FIELDS[kind][1]]
        elif kind == "attachment" and agent_hint is None:
            _read_attachment(state, rec, ts)
        elif kind == "system" and get("subtype") == "stop_hook_summary" \
                and any(isinstance(h, dict) and h.get("promptText") for h in get("hookInfos") or []):
            scan.hidden_calls.add("prompt hooks")          # each asks a model, in no line
        elif kind == "pr-link" and type(get("prNumber")) is int and isinstance(get("prRepository"), str):
            scan.pr_links.append((rec["prRepository"], rec["prNumber"], ts))
        return                            # progress, most attachments, summary, unknown: nothing to count
    message = get("message")
    if not isinstance(message, dict):
        message = None
    results = _result_blocks(message.get("content")) if kind == "user" and message else []
    sidechain = get("isSidechain") is True
    agent = get("agentId")
    if not agent or not isinstance(agent, str):
        agent = agent_hint if sidechain else None
    if not results:
        # Tool results repeat their call's envelope; they are skimmed, so they do not count here.
        # Subagents may work in their own worktree: the session's branch and folder are the main
        # thread's; the subagents' only count when there is no main thread.
        version = get("version")
        if isinstance(version, str):
            scan.versions.add(version)
        on_main = not sidechain and agent is None
        cwd, branch = get("cwd"), get("gitBranch")
        if cwd and isinstance(cwd, str):
            (scan.cwds if on_main else scan.agent_cwds)[cwd] += 1
        if branch and isinstance(branch, str):
            (scan.branches if on_main else scan.agent_branches)[branch] += 1
    uuid = get("uuid")
    if not isinstance(uuid, str):
        uuid = ""
    pending_inline = sidechain and agent is None
    if pending_inline:
        # A provisional id until the chain's root is known; it is not None, so a
        # main-thread copy of the same call still wins in merge_call.
        agent = PROVISIONAL_AGENT + uuid
        if uuid:
            state.inline_parent[uuid] = as_str(rec.get("parentUuid"))
    if message is None:
        return
    if kind == "assistant":
        _read_assistant(state, rec, message, ts, agent, pending_inline)
    elif results:
        _read_results(state, rec, results, ts)
    else:
        _read_prompt(state, rec, message, ts, agent, sidechain, uuid)


def _read_attachment(state: ScanState, rec: dict, ts: float | None) -> None:
    """The attachments that count: a prompt the user typed while Claude worked (queued_command,
    2.1.2xx: it gets no user line of its own), and /goal's status (its evaluator's calls are in
    no line)."""
    attachment = rec.get("attachment")
    if not isinstance(attachment, dict):
        return
    kind = attachment.get("type")
    if kind == "queued_command" and attachment.get("commandMode", "prompt") == "prompt" \
            and as_dict(attachment.get("origin")).get("kind", "human") in PROMPT_ORIGINS:
        state.scan.prompts.append((as_str(attachment.get("source_uuid")) or as_str(rec.get("uuid")), ts))
    elif kind == "goal_status":
        state.scan.hidden_calls.add("/goal")


# A session's title: the one its user gave it (custom-title), else Claude Code's (ai-title, or the
# summary records of older versions), else its first prompt.
_TITLE_FIELDS = {"custom-title": ("custom", "customTitle"), "ai-title": ("ai", "aiTitle"),
                 "summary": ("summary", "summary")}
TITLE_LIMIT = 120


# Claude Code writes its own running total of the session's cost as `cost-state` records (2.1.x):
# the record is cumulative over every process that wrote to the session (a --resume or --continue
# carries the total on), and a --fork-session starts from its parent's total.
_COST_STATE_FIELDS = (("input", "inputTokens"), ("output", "outputTokens"),
                      ("cache_creation", "cacheCreationInputTokens"), ("cache_read", "cacheReadInputTokens"))


MAX_COST_USD = 1e7          # more than this for one session is damage, not spend


def cost_state_of(rec: dict) -> dict | None:
    """The parts of a cost-state record the stats compare with their own: total and per model.
    None when it has no total, or when a number in it is not one (NaN, 1e999, negative, a count
    that is not a count): then it is invalid input, and the caller notes it."""
    total = _dollars(rec.get("totalCostUSD"))
    if total is None:
        return None
    models = {}
    for model, raw in as_dict(rec.get("modelUsage")).items():
        raw = as_dict(raw)
        counts = {ours: token_count(raw.get(theirs)) for ours, theirs in _COST_STATE_FIELDS}
        if "cacheCreationEphemeral1hInputTokens" in raw:       # 2.1.2xx on: the 1h/5m split
            counts["cache_creation_1h"] = token_count(raw["cacheCreationEphemeral1hInputTokens"])
        cost = raw.get("costUSD")
        if None in counts.values() or (cost is not None and _dollars(cost) is None):
            return None
        models[as_str(model)] = {**counts, "cost_usd": None if cost is None else round(_dollars(cost), 6)}
    return {"total_cost_usd": round(total, 6), "models": models,
            "has_unknown_model_cost": rec.get("hasUnknownModelCost") is True}


def _dollars(value) -> float | None:
    """A cost in USD as written, or None when it is not one (NaN, infinite, negative, too big)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and 0 <= value <= MAX_COST_USD:
        return float(value)
    return None


def call_key(rec: dict, message: dict) -> tuple:
    """What identifies one API call across the lines that repeat it: (message.id, requestId),
    or the line's uuid when the message has no id."""
    msg_id = message.get("id")
    if msg_id and isinstance(msg_id, str):
        return (msg_id, as_str(rec.get("requestId")))
    return ("uuid", as_str(rec.get("uuid")))


def billed_usage(message: dict) -> dict | None:
    """The usage of a billed API call; None when there is none, or for the <synthetic> messages
    Claude Code makes up itself (errors, aborts), which cost nothing."""
    usage = message.get("usage")
    return usage if isinstance(usage, dict) and message.get("model") != SYNTHETIC_MODEL else None


def _add_usage(total: Usage, usage: Usage) -> None:
    total.input += usage.input
    total.output += usage.output
    total.cache_creation += usage.cache_creation
    total.cache_read += usage.cache_read
    total.cache_1h += usage.cache_1h


def billed_calls(key: tuple, model: str, usage_raw: dict, advisor_model, ts, agent) -> list[ApiCall] | None:
    """The API calls one assistant line bills (None when a count in it is not a count). Most lines
    bill one call, its usage as written. With the advisor tool (2.1.98 on) the usage also lists
    `iterations`: the executor's requests (type "message", and "fallback_message", "compaction",
    whose tokens the top level may leave out) are the call, summed, each with its own 1h/5m cache
    split (the top level's split is the first's only); each "advisor_message" is a request of its
    own on the advisor's model, which the top level does not count: a call of that model here,
    keyed under the line's call (its lines repeat the iterations, so it is merged like them).
    Anthropic: "Top-level usage fields reflect executor tokens only ... Iterations with type
    advisor_message are billed at the advisor model's rates" (platform.claude.com, advisor tool)."""
    usage = usage_of(usage_raw)
    iterations = usage_raw.get("iterations")
    if usage is None or not iterations or not isinstance(iterations, list):
        return None if usage is None else [ApiCall(key, model, usage, ts, agent)]
    executor, calls = Usage(web_search=usage.web_search, web_fetch=usage.web_fetch, speed=usage.speed), []
    for index, iteration in enumerate(iterations):
        if not isinstance(iteration, dict):
            continue
        part = usage_of(iteration)
        if part is None:
            return None
        if iteration.get("type") == "advisor_message":
            on = as_str(iteration.get("model")) or as_str(advisor_model) or "unknown"
            calls.append(ApiCall((*key, "advisor", str(index)), on, part, ts, agent))
        else:
            _add_usage(executor, part)
            executor.cache_5m += part.cache_5m
    return [ApiCall(key, model, executor if executor.total else usage, ts, agent), *calls]


def _read_assistant(state, rec, message, ts, agent, pending_inline):
    scan = state.scan
    model = message.get("model")
    if not isinstance(model, str):
        model = ""
    key = call_key(rec, message)
    usage_raw = billed_usage(message)
    if usage_raw is not None:
        calls = billed_calls(key, model or "unknown", usage_raw, rec.get("advisorModel"), ts, agent)
        if calls is None:
            skip(state, "lines whose token counts are not counts")
            return
        skill = rec.get("attributionSkill")
        for call in calls:
            if isinstance(skill, str) and skill:
                call.skill = skill
            if call.key in scan.calls:
                merge_call(scan.calls, call)
            else:
                scan.calls[call.key] = call
            if pending_inline:
                state.inline_lines.append((as_str(rec.get("uuid")), call))
    content = message.get("content")
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict) or block.get("type") != "tool_use":
            continue
        name = as_str(block.get("name")) or "unknown"
        use_id = as_str(block.get("id"))
        state.tool_names[use_id] = name
        if state.scan.depth == ROW and name not in TASK_TOOLS:
            continue                    # a list row reads only Task/Agent calls: subagent links
        tool_input = as_dict(block.get("input"))
        use = ToolUse(id=use_id, name=name, ts=ts, agent=agent, call_key=key)
        what, kind = tool_target(name, tool_input)
        if name == "Bash":
            if _GIT_COMMIT_CMD_RE.search(as_str(tool_input.get("command"))):
                use.commits = True
                state.commit_calls.add(use_id)
        elif name == "Skill":
            use.skill = as_str(tool_input.get("skill")) or as_str(tool_input.get("command"))
        elif name in TASK_TOOLS:
            use.subagent_type = as_str(tool_input.get("subagent_type"))
            use.description = as_str(tool_input.get("description"))
            use.prompt_key = prompt_key(as_str(tool_input.get("prompt")))
        if what:
            use.signature = call_signature(name, what)
            state.call_text[use_id] = (what, kind)
        scan.tool_uses.append(use)
        if pending_inline:
            state.inline_lines.append((as_str(rec.get("uuid")), use))


_TARGET_KEYS = (("file_path", "path"), ("notebook_path", "path"), ("path", "path"), ("pattern", "pattern"),
                ("url", "url"))


def tool_target(name: str, tool_input: dict) -> tuple[str, str]:
    """(what a tool call acts on, its kind): a Bash command's head, else the first target its
    input names; a call on the same thing again is the same call, for problems."""
    if name == "Bash":
        head = normalize_command(as_str(tool_input.get("command")))
        if head:
            return head, "command"
    for key, kind in _TARGET_KEYS:
        value = tool_input.get(key)
        if value and isinstance(value, str):
            return value, kind
    return "", ""


def call_signature(tool: str, what: str) -> str:
    """Which calls are the same call again, for problems: a digest of the tool and its command
    head or target."""
    return hashlib.blake2b(f"{tool}\0{what}".encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()


def failed_call_text(state, use_id: str) -> tuple[str, str]:
    """The command head or target of a call whose result says it failed, secrets redacted."""
    what, kind = state.call_text.get(use_id, ("", ""))
    return (what if kind == "command" else shorten(redact_secrets(what), 200)), kind


def _read_results(state, rec, blocks, ts):
    """One ToolResult per block: whether the call failed and how (error_class), and from the text
    of the tools the stats read (Bash, Task/Agent) the facts in it: commit lines, subagent link."""
    meta = None
    for block in blocks:
        use_id = as_str(block.get("tool_use_id"))
        is_error = block.get("is_error") is True
        what, kind = failed_call_text(state, use_id) if is_error else ("", "")
        state.call_text.pop(use_id, None)
        if not result_text_read(state.tool_names, use_id, state.text_tools):
            if state.scan.depth != ROW:     # a list row reads only subagent links
                error = error_class(_text_of(block.get("content"))) if is_error else ""
                state.scan.tool_results.append(ToolResult(use_id, is_error, ts, error, what, kind))
            continue
        if meta is None:
            meta = as_dict(rec.get("toolUseResult"))
        text = _text_of(block.get("content"))
        reported = meta.get("usage")
        # a call this file does not hold may be a commit too: session_commits checks its command
        commits = use_id in state.commit_calls or use_id not in state.tool_names
        state.scan.tool_results.append(ToolResult(
            tool_use_id=use_id, is_error=is_error, ts=ts, error=error_class(text) if is_error else "",
            what=what, what_kind=kind, commits=commit_lines(text) if commits else (),
            agent_id=as_str(meta.get("agentId")) or _agent_id_in_text(text),
            agent_type=as_str(meta.get("agentType")),
            reported=_reported(reported, meta),
        ))


def _reported(raw, meta: dict) -> dict | None:
    """What a Task/Agent result says its subagent used (its last API call only), if it says."""
    usage = usage_of(raw) if isinstance(raw, dict) else None
    return None if usage is None else {**token_dict(usage), "total_tokens": as_int(meta.get("totalTokens"))}


_GIT_COMMIT_CMD_RE = re.compile(r"\bgit\b[^\n|;&]*\bcommit\b")

# `git commit` prints `[branch sha] subject` (`[branch (root-commit) sha]` for a first commit),
# possibly after pages of pre-commit hook output: every such line of the result counts.
_COMMIT_LINE_RE = re.compile(r"^\[(.+?) ([0-9a-f]{7,40})\] (.*)$", re.MULTILINE)


def commit_lines(text: str) -> tuple:
    """(sha, subject) of each commit line in a result text, subjects stripped of secrets."""
    if "] " not in text:
        return ()
    return tuple((m.group(2), redact_secrets(m.group(3).strip())) for m in _COMMIT_LINE_RE.finditer(text))


# What a failed call's result says, as one of a few classes: a public comment names the class
# instead of quoting the error text, which may hold anything (a path, a host, a secret, or the
# words the user typed when they refused the call). Checked in order against the text's head.
_ERROR_CLASSES = tuple((re.compile(pattern), label) for pattern, label in (
    (r"^\s*Exit code (\d+)", "exit code {0}"),
    (r"doesn't want to proceed|user rejected|was rejected", "rejected by the user"),
    (r"\[Request interrupted|[Ii]nterrupted by user", "interrupted"),
    (r"requires approval|requested permissions|was blocked|[Pp]ermission denied|EACCES|not permitted",
     "permission denied"),
    (r"has not been read yet|[Rr]ead it first", "file not read first"),
    (r"String to replace not found", "text to replace not found"),
    (r"Found \d+ matches of the string to replace", "more than one match to replace"),
    (r"No such tool available", "no such tool"),
    (r"EISDIR|[Ii]s a directory", "is a directory"),
    (r"No such file or directory|[Dd]oes not exist|ENOENT|[Nn]ot found", "not found"),
    (r"status code (\d{3})|HTTP (\d{3})", "HTTP {0}"),
    (r"[Tt]imed? ?out", "timed out"),
    (r"Traceback \(most recent call last\)", "exception"),
))


def error_class(text: str) -> str:
    """'exit code 1', 'rejected by the user', 'not found', ... or 'failed'."""
    head = text[:400]
    for pattern, label in _ERROR_CLASSES:
        m = pattern.search(head)
        if m:
            return label.format(*(g for g in m.groups() if g))
    return "failed"


_COMMAND_RE = re.compile(r"<command-name>\s*/?([^<\s]+)\s*</command-name>")


def _read_prompt(state, rec, message, ts, agent, sidechain, uuid):
    """A user line that is not a tool result: a prompt, a slash command, a `!` shell command and
    its output, or text Claude Code wrote itself. Where the line says where it came from
    (promptSource, origin, turnOrigin: 2.1.2xx on), that decides; else its text does."""
    scan = state.scan
    content = message.get("content")
    text = _text_of(content)
    if sidechain or agent is not None:
        if uuid and not as_str(rec.get("parentUuid")):
            state.uuid_prompt_key[uuid] = prompt_key(text)
        if agent is not None and not agent.startswith(PROVISIONAL_AGENT) \
                and agent not in scan.agent_prompt_keys:
            scan.agent_prompt_keys[agent] = prompt_key(text)
        return
    if rec.get("isMeta") is True or rec.get("isCompactSummary") is True:
        return
    if text.startswith("<bash-"):
        _read_shell(state, text, ts)
        return
    match = _COMMAND_RE.search(text[:500]) if "<command-name>" in text[:500] else None
    if match:
        name = match.group(1)
        if name.lower() not in BUILTIN_COMMANDS:
            scan.commands.append((name, ts))
            scan.prompts.append((uuid, ts))
        elif name.lower() in TASK_COMMANDS and _given_by_a_person(rec):
            scan.prompts.append((uuid, ts))
        return
    stripped = text.lstrip()
    if not stripped or stripped.startswith(NON_PROMPT_PREFIXES) or not _given_by_a_person(rec):
        return
    scan.prompts.append((uuid, ts))
    if not scan.first_prompt:
        words = " ".join(_plain_words(stripped[:8 * TITLE_LIMIT]).split())
        scan.first_prompt = redact_secrets(shorten(words, TITLE_LIMIT))


# What Claude Code wraps around or inside a prompt (the file open in the IDE, a reminder, a command's
# output) is not what the user asked: a title made of a prompt leaves those blocks out, and keeps
# the words of any other tag without its markup (`<bash-input>make</bash-input>` reads `make`).
_WRAPPER_BLOCK_RE = re.compile(r"<(system-reminder|ide_[a-z_]+|local-command-std(?:out|err)|bash-std(?:out|err)"
                               r"|command-message|command-args)>.*?(?:</\1>|$)", re.S)
_PAIRED_TAG_RE = re.compile(r"<([A-Za-z][\w-]*)(?:\s[^<>]*)?>(.*?)</\1>", re.S)


def _plain_words(text: str) -> str:
    text, plain = None, _WRAPPER_BLOCK_RE.sub(" ", text)
    while plain != text:                    # nested tags come off one layer a pass
        text, plain = plain, _PAIRED_TAG_RE.sub(r" \2 ", plain)
    return text


def _given_by_a_person(rec: dict) -> bool:
    """What the line says of where it came from, if it says: a person, or a `claude -p` run."""
    source = rec.get("promptSource")
    if isinstance(source, str):
        return source in PROMPT_SOURCES
    origin = rec.get("origin")
    if isinstance(origin, dict) and isinstance(origin.get("kind"), str):
        return origin["kind"] in PROMPT_ORIGINS
    turn = rec.get("turnOrigin")
    if isinstance(turn, str):
        return turn in PROMPT_TURN_ORIGINS
    return True


_BASH_INPUT_RE = re.compile(r"<bash-input>(.*?)</bash-input>", re.DOTALL)
_BASH_STDOUT_RE = re.compile(r"<bash-stdout>(.*?)</bash-stdout>", re.DOTALL)


def _read_shell(state, text: str, ts) -> None:
    """A `!` command the user ran in Claude Code, and its output: not prompts, but a commit it
    made counts (as the user's)."""
    command = _BASH_INPUT_RE.search(text)
    if command:
        state.shell_commits = bool(_GIT_COMMIT_CMD_RE.search(command.group(1)))
        return
    output = _BASH_STDOUT_RE.search(text)
    if output and state.shell_commits:
        state.scan.user_commits += [(sha, subject, ts) for sha, subject in commit_lines(output.group(1))]
        state.shell_commits = False


def prompt_key(text: str) -> str:
    """A digest of a prompt's head: it matches a subagent's first prompt to the Task call that sent
    it (and tells the warm-up agents), and keeps nothing of the prompt."""
    head = text[:200].strip()
    return hashlib.blake2b(head.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest() if head else ""


_AGENT_ID_TEXT_RE = re.compile(r"\bagentId:\s*([A-Za-z0-9_\-]+)")


def _agent_id_in_text(text: str) -> str:
    """Async and teammate launches name their agent only in the result text."""
    m = _AGENT_ID_TEXT_RE.search(text[-600:]) if "agentId:" in text else None
    return m.group(1) if m else ""


def _resolve_inline_sidechains(scan, parents, pending, uuid_prompt_key):
    """Give inline sidechain lines (<= 2.0.27, no agentId) the id of their chain's root."""
    roots = {}

    def root_of(uuid):
        seen = []
        while uuid and uuid not in roots and parents.get(uuid):
            seen.append(uuid)
            uuid = parents[uuid]
            if len(seen) > 100000:
                break
        root = roots.get(uuid, uuid)
        for u in seen:
            roots[u] = root
        return root

    for uuid, item in pending:
        if item.agent is None or not item.agent.startswith(PROVISIONAL_AGENT):
            continue                     # a main-thread copy of this call won
        root = root_of(uuid) if uuid else ""
        agent = "sidechain-" + (root or "unknown")
        item.agent = agent
        scan.agent_prompt_keys.setdefault(agent, uuid_prompt_key.get(root, ""))


def merge_call(calls: dict, call: ApiCall) -> None:
    """Fold one copy of an API call into the others with the same key.

    The copy with the largest token total carries the usage (early streaming lines
    hold placeholder output counts); a main-thread copy beats a sidechain replay;
    the earliest timestamp is the call's time.
    """
    known = calls.get(call.key)
    if known is None:
        calls[call.key] = call
        return
    if call.usage.total > known.usage.total:
        known.usage = call.usage
        known.model = call.model
    if call.agent is None:
        known.agent = None
    if call.first_ts is not None and (known.first_ts is None or call.first_ts < known.first_ts):
        known.first_ts = call.first_ts
    known.skill = known.skill or call.skill


# ── Reading one transcript file ───────────────────────────────────────────────

def new_scan(path: Path, session_hint: str, depth: str) -> ScanState:
    return ScanState(FileScan(path=Path(path), session_id=session_hint, depth=depth))


def scan_file(path: Path, session_hint: str, agent_hint: str | None, depth: str = FULL) -> FileScan:
    """One transcript file read into a FileScan: every line through interpret_line, then the
    inline sidechains given their agents.

    session_hint is the session the file belongs to by its location ('' when the lines must say:
    flat agent-*.jsonl files). agent_hint is the subagent id a subagent file is for; a line's own
    agentId wins. Only a regular file is read: a FIFO would block, a device never end."""
    state = new_scan(path, session_hint, depth)
    handle = open_regular(path)
    if handle is None:
        return unreadable(state)
    with handle:
        for line, _, terminated in iter_lines(handle, 0):
            state.line += 1
            interpret_line(state, line, terminated, agent_hint)
    return finish_scan(state)


def unreadable(state: ScanState) -> FileScan:
    """The scan of a file that could not be read, counted as skipped and why."""
    path = state.scan.path
    state.scan.skipped.add("unreadable files" if path.is_file() or not os.path.lexists(path)
                           else "files that are not regular files", str(path))
    return state.scan


def finish_scan(state: ScanState) -> FileScan:
    """The file's scan once every line is read: inline sidechains (<= 2.0.27) get their agents."""
    if state.inline_lines:
        _resolve_inline_sidechains(state.scan, state.inline_parent, state.inline_lines, state.uuid_prompt_key)
    return state.scan


# ── Finding transcripts ───────────────────────────────────────────────────────
#
# Three layouts hold a session's subagents:
#   <project>/<session>.jsonl with inline isSidechain lines      (<= 2.0.27)
#   <project>/agent-<id>.jsonl whose lines carry the parent's sessionId (~2.0.28-2.1.1)
#   <project>/<session>/subagents/**/agent-<id>.jsonl            (>= 2.1.2)

@dataclass
class TranscriptFile:
    path: Path
    session_hint: str          # '' when only the lines know the session (flat agent files)
    agent_hint: str | None


def default_projects_dir() -> Path:
    base = os.environ.get("CLAUDE_CONFIG_DIR")
    if base:
        return Path(base).expanduser() / "projects"
    return Path.home() / ".claude" / "projects"


def project_files(project_dir: Path) -> list[TranscriptFile]:
    """Every transcript file of one project folder, with what its location says.

    os.scandir and name order: a rerun over an unchanged history is mostly this listing, and
    pathlib's per-entry objects, stats and comparisons cost more than the rest of it."""
    files = []
    try:
        with os.scandir(project_dir) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        return files
    for entry in entries:
        name = entry.name
        if len(name) > 6 and name.endswith(".jsonl") and entry.is_file():
            stem = name[:-6]
            if stem.startswith("agent-"):
                files.append(TranscriptFile(Path(entry.path), "", stem[len("agent-"):]))
            else:
                files.append(TranscriptFile(Path(entry.path), stem, None))
        elif entry.is_dir() and os.path.isdir(os.path.join(entry.path, "subagents")):
            for sub in _subagent_files(os.path.join(entry.path, "subagents")):
                files.append(TranscriptFile(Path(sub), name, os.path.basename(sub)[len("agent-"):-len(".jsonl")]))
    return files


def merged_projects(projects: list[Path]) -> list[tuple[Path, list]]:
    """(project folder, its transcript files) of each project of one or several histories: a
    project in several of them (histories copied from several machines) is one project, and a
    file in more than one is read once, its longest copy (the one written last)."""
    by_name = {}
    for project in projects:
        by_name.setdefault(project.name, []).append(project)
    listed = []
    for name in sorted(by_name):
        folders = by_name[name]
        if len(folders) == 1:
            listed.append((folders[0], project_files(folders[0])))
            continue
        copies = {}
        for folder in folders:
            for tf in project_files(folder):
                where = tf.path.relative_to(folder)
                if where not in copies or tf.path.stat().st_size > copies[where].path.stat().st_size:
                    copies[where] = tf
        listed.append((folders[0], [copies[where] for where in sorted(copies)]))
    return listed


def _subagent_files(folder: str) -> list[str]:
    """The agent-*.jsonl files below a subagents folder, at any depth, ordered as pathlib orders
    them (by path components), without pathlib's cost for every session folder of a history."""
    found = []
    for root, _, names in os.walk(folder):
        found += [os.path.join(root, n) for n in names if n.startswith("agent-") and n.endswith(".jsonl")]
    return sorted(found, key=lambda path: path.split(os.sep))


def flat_agent_session(path: Path) -> str:
    """The parent session of a flat agent-*.jsonl file, from its first lines."""
    handle = open_regular(path)
    if handle is None:
        return ""
    with handle:
        for raw in handle.read(1 << 20).split(b"\n")[:50]:
            m = re.search(rb'"sessionId"\s*:\s*"([^"]+)"', raw)
            if m:
                return m.group(1).decode("utf-8", "replace")
    return ""


def agent_meta(path: Path) -> dict:
    """agent-<id>.meta.json beside a subagent transcript (2.1.x): agentType, description."""
    handle = open_regular(path.with_name(path.stem + ".meta.json"))
    if handle is None:
        return {}
    try:
        with handle:
            return as_dict(json.loads(handle.read(1 << 20).decode("utf-8")))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return {}


def group_by_session(files: list[TranscriptFile], skipped: Skipped | None = None
                     ) -> dict[str, list[TranscriptFile]]:
    """Session id -> its files; flat agent files join the session their lines name. A file
    whose id is not one (SAFE_ID_RE) is left out, and counted in `skipped`."""
    sessions = collections.defaultdict(list)
    for tf in files:
        sid = tf.session_hint or flat_agent_session(tf.path)
        if not sid:
            continue
        if not SAFE_ID_RE.fullmatch(sid):
            if skipped is not None:
                skipped.add("files with an unsafe session id", str(tf.path))
            continue
        tf.session_hint = sid
        sessions[sid].append(tf)
    return sessions


def find_session(projects_dir: Path, session_id: str) -> tuple[Path, str]:
    """(project folder, full session id) of a session id or unique id prefix."""
    if not projects_dir.is_dir():
        raise UserError(f"projects folder not found: {projects_dir} "
                        "(set --projects-dir or CLAUDE_CONFIG_DIR)", EXIT_NO_SESSION)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*", session_id):
        raise UserError(f"not a session id: {session_id!r}", EXIT_NO_SESSION)
    exact = sorted(projects_dir.glob(f"*/{session_id}.jsonl")) + \
        sorted(p for p in projects_dir.glob(f"*/{session_id}") if p.is_dir())
    if exact:
        return exact[0].parent, session_id
    prefixed = {(p.parent, p.stem) for p in projects_dir.glob(f"*/{session_id}*.jsonl")
                if not p.name.startswith("agent-")}
    if len(prefixed) == 1:
        return prefixed.pop()
    if len(prefixed) > 1:
        raise UserError(f"session id prefix {session_id!r} matches {len(prefixed)} sessions; "
                        "give more characters", EXIT_NO_SESSION)
    for project in sorted(p for p in projects_dir.iterdir() if p.is_dir()):
        for tf in project.glob("agent-*.jsonl"):
            if flat_agent_session(tf) == session_id:
                return project, session_id
    raise UserError(f"no session {session_id} under {projects_dir} (`session-analytics.py list` shows "
                    "the sessions there)", EXIT_NO_SESSION)


def newest_session(projects_dir: Path, cwd: str) -> tuple[Path, str]:
    project = projects_dir / encode_project_dir(cwd)
    candidates = []
    for path in project.glob("*.jsonl") if project.is_dir() else []:
        if path.name.startswith("agent-"):
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        if st.st_size > 0:
            candidates.append((st.st_mtime, path.stem))
    if not candidates:
        raise UserError(f"no sessions for {cwd} under {projects_dir}; "
                        "pass --session-id or --transcript", EXIT_NO_SESSION)
    return project, max(candidates)[1]


@dataclass
class SessionRef:
    """One session to read: its project folder, its id, and every project session's files
    (the neighbours decide which replayed API calls the session owns)."""
    project: Path
    sid: str
    groups: dict                 # session id -> [TranscriptFile]
    capture: Path | None = None  # a stream-json capture, read on its own (no neighbours)
    otlp: Path | None = None     # a file of Claude Code's OTLP logs that holds the session


# ── Ownership: every API call counted once, by the session that recorded it first ───
#
# Every API call is billed once, so it is counted once across all files read:
# it belongs to the session whose file recorded it first (earliest timestamp;
# on a tie, the session that ended first; then the smaller id, to be total).
# A resumed session that replays its parent's lines leaves those calls out.

def owner_rank(first_ts: float, session_end: float, project: str, sid: str) -> tuple:
    """Of the sessions that recorded one API call, the lowest rank owns it: the earliest copy,
    then the session that ended first, then the name, so that the order is total."""
    return (first_ts, session_end, f"{project}\0{sid}")


def session_claims(scans: list[FileScan]) -> tuple[dict, float]:
    """key -> earliest timestamp, and the session's end, for ownership."""
    claims = {}
    end = None
    for scan in scans:
        for key, call in scan.calls.items():
            ts = call.first_ts if call.first_ts is not None else float("inf")
            if key not in claims or ts < claims[key]:
                claims[key] = ts
        if scan.timestamps:
            last = max(scan.timestamps)
            end = last if end is None or last > end else end
    return claims, (end if end is not None else float("inf"))


def build_owner_index(claims_by_session: dict) -> dict:
    """key -> the (project, session id) that owns it, from {(project, session id): (claims, end)}."""
    best = {}
    for (project, sid), (claims, end) in claims_by_session.items():
        for key, ts in claims.items():
            rank = owner_rank(ts, end, project, sid)
            if key not in best or rank < best[key][0]:
                best[key] = (rank, (project, sid))
    return {key: owner for key, (_, owner) in best.items()}


def owns_every_call(key) -> bool:
    """A session read on its own (a capture) owns every call it recorded."""
    return True


def owned_by(owner: dict, project: str, sid: str):
    """The test assemble_session asks of each call: does this session own it?"""
    me = (project, sid)
    return lambda key: owner.get(key, me) == me


# ── Assembling a session ──────────────────────────────────────────────────────

# A session is read from several files (its own, its subagents', a flat agent file). Their scans
# combine field by field by the rules of SCAN_COMBINE, the one place that says how; a FileScan
# field without a rule here fails tests/test_reader.py.

def _concatenated(values):
    return [item for value in values for item in value]


def _counted(values, total=None):
    total = collections.Counter() if total is None else total
    for value in values:
        total.update(value)
    return total


def _merged_calls(values):
    """By call key, as merge_call folds the copies of one call (copies: the scans stay as read)."""
    calls = {}
    for value in values:
        for call in value.values():
            merge_call(calls, dataclasses.replace(call))
    return calls


def _unique_prompts(values):
    """(uuid, ts) in file order, a uuid seen before (a replayed prompt) left out."""
    seen, prompts = set(), []
    for uuid, ts in _concatenated(values):
        if uuid and uuid in seen:
            continue
        seen.add(uuid)
        prompts.append((uuid, ts))
    return prompts


def _first_per_key(values):
    merged = {}
    for value in values:
        for key, item in value.items():
            merged.setdefault(key, item)
    return merged


def _latest_per_key(values):
    merged = {}
    for value in values:
        merged.update(value)
    return merged


SCAN_COMBINE = {
    "path": lambda values: values[0],
    "session_id": lambda values: next((v for v in values if v), ""),
    "depth": lambda values: ROW if ROW in values else FULL,
    "calls": _merged_calls,
    "tool_uses": _concatenated, "tool_results": _concatenated, "commands": _concatenated,
    "timestamps": _concatenated,
    "prompts": _unique_prompts,
    "cwds": _counted, "branches": _counted, "agent_cwds": _counted, "agent_branches": _counted,
    "skipped": lambda values: _counted(values, Skipped()),
    "versions": lambda values: set().union(*values),
    "agent_prompt_keys": _first_per_key,
    "compactions": sum, "skimmed": sum, "glanced": sum,
    "cost_state": lambda values: next((v for v in reversed(values) if v is not None), None),   # the last
    "titles": _latest_per_key,
    "first_prompt": lambda values: next((v for v in values if v), ""),
    "user_commits": _concatenated, "pr_links": _concatenated,
    "hidden_calls": lambda values: set().union(*values),
}


def combine_scans(scans: list[FileScan]) -> FileScan:
    """The scans of one session's files as one, by SCAN_COMBINE."""
    return FileScan(**{name: rule([getattr(scan, name) for scan in scans]) for name, rule in SCAN_COMBINE.items()})


def assemble_session(sid: str, project_dir: str, files: list[TranscriptFile], scans: list[FileScan],
                     owns) -> SessionFacts:
    """A session's facts from its files' scans: only the API calls it owns (`owns(key)`: see
    Ownership) count, the others are kept apart as replayed; a tool call counts once, and only
    with an API call the session owns; its result counts once."""
    scan = combine_scans(scans) if scans else FileScan(path=Path(project_dir), session_id=sid)
    calls = {key: call for key, call in scan.calls.items() if owns(key)}
    tool_uses, seen_uses = [], set()
    for use in scan.tool_uses:
        if use.call_key not in calls or (use.id and use.id in seen_uses):
            continue
        seen_uses.add(use.id)
        tool_uses.append(use)
    tool_results, seen_results = [], set()
    for res in scan.tool_results:
        if res.tool_use_id not in seen_uses or res.tool_use_id in seen_results:
            continue
        seen_results.add(res.tool_use_id)
        tool_results.append(res)
    facts = SessionFacts(
        session_id=sid, project_dir=project_dir,
        calls=sorted(calls.values(), key=_call_order),
        tool_uses=sorted(tool_uses, key=lambda u: (u.ts or 0.0)),
        tool_results=sorted(tool_results, key=lambda r: (r.ts or 0.0)),
        prompts=scan.prompts, commands=sorted(scan.commands, key=lambda c: (c[1] or 0.0)),
        timestamps=sorted(scan.timestamps),
        cwds=scan.cwds or scan.agent_cwds,              # sessions known only from subagent files
        branches=scan.branches or scan.agent_branches, versions=scan.versions,
        agent_meta={tf.agent_hint: agent_meta(tf.path) for tf in files if tf.agent_hint},
        agent_prompt_keys=scan.agent_prompt_keys, compactions=scan.compactions, skipped=scan.skipped,
        depth=scan.depth, cost_state=scan.cost_state, title=session_title(scan),
        user_commits=scan.user_commits, pr_links=sorted(scan.pr_links, key=lambda p: p[2] or 0.0),
        hidden_calls=scan.hidden_calls | ({"compaction"} if scan.compactions else set()),
    )
    replay_end = None
    for key, call in scan.calls.items():
        if key not in calls:
            _add_usage(facts.replayed.setdefault(call.model, Usage()), call.usage)
            if call.first_ts is not None and (replay_end is None or call.first_ts > replay_end):
                replay_end = call.first_ts
    if replay_end is not None:
        # A fork's file begins with its parent's conversation, lines and times as they were: the
        # prompts, commands and `!` commits up to the last call it replays are the parent's.
        own = lambda ts: ts is None or ts > replay_end
        facts.prompts = [p for p in facts.prompts if own(p[1])]
        facts.commands = [c for c in facts.commands if own(c[1])]
        facts.user_commits = [c for c in facts.user_commits if own(c[2])]
    return facts


def session_title(scan: FileScan) -> str | None:
    """custom-title, else ai-title, else a summary record, else the first prompt."""
    for kind in ("custom", "ai", "summary"):
        if scan.titles.get(kind):
            return shorten(" ".join(scan.titles[kind].split()), TITLE_LIMIT)
    return scan.first_prompt or None


def _call_order(call: ApiCall):
    return (call.first_ts if call.first_ts is not None else float("inf"), call.key)


# ── The reader: a history of sessions, read at a depth, owned once ────────────
#
# main builds one HistoryReader for the projects folder and passes it to the phase: `stats` and
# `comment` ask it for one session (.session), `list` and `extract --source local` for all of
# them (.each_session) with the pure function that turns a session's facts into their result.
# How the files are read is its Reading: PlainReading here, the plain read every test holds the
# others to; ReadOptions (in "Reading fast") picks a faster one that gives the same.


@dataclass
class Summaries:
    """What reading every session gives: the summaries, and what was skipped on the way."""
    rows: list
    skipped: Skipped
    empty: int                   # sessions with no records at all
    read: list                   # ids of the sessions read this run (not served from a cache)
    sessions: list               # ids of every session found


class PlainReading:
    """Every line decoded, nothing kept between runs, one process."""

    def scan(self, tf: TranscriptFile, sid: str, depth: str) -> FileScan:
        return scan_file(tf.path, sid, tf.agent_hint, depth)

    def claims(self, files: list[TranscriptFile], sid: str) -> tuple[dict, float]:
        """What a session recorded, for ownership: each call's earliest time, and its end."""
        return session_claims([self.scan(tf, sid, ROW) for tf in files])

    def summaries(self, projects_dir: Path, listed: list, depth: str, summarise, key: str) -> Summaries:
        """summarise(facts) of every session of the listed projects [(folder, its files)], each
        API call owned by one session across all of them. `key` is for readings that keep
        results between runs; this one keeps nothing."""
        out = Summaries([], Skipped(), 0, [], [])
        sessions = [(project, sid, files) for project, listing in listed
                    for sid, files in group_by_session(listing, out.skipped).items()]
        scans = {(project.name, sid): [self.scan(tf, sid, depth) for tf in files] for project, sid, files in sessions}
        owner = build_owner_index({who: session_claims(found) for who, found in scans.items()})
        out.read = out.sessions = [sid for _, sid, _ in sessions]
        for project, sid, files in sessions:
            facts = assemble_session(sid, project.name, files, scans[(project.name, sid)],
                                     owned_by(owner, project.name, sid))
            out.skipped.update(facts.skipped)
            if facts.timestamps or facts.calls:
                out.rows.append(summarise(facts))
            else:
                out.empty += 1
        return out


class HistoryReader:
    """Owns reading a history of transcripts: finding sessions, reading them at a depth, deciding
    who owns each API call, and counting what it skipped. It knows nothing of prices or
    templates: what a session becomes is the `summarise` function passed in. How files are read
    is its Reading (plain unless ReadOptions says otherwise), never what comes of it."""

    def __init__(self, projects_dir: Path | None = None, options: "ReadOptions | None" = None,
                 captures_dir: Path | None = None, otel_files: list | None = None, more_dirs: list | None = None):
        self.projects_dir = Path(projects_dir).expanduser() if projects_dir else default_projects_dir()
        self.options = options
        self.reading = options.reading() if options is not None else PlainReading()
        self.captures_dir = Path(captures_dir).expanduser() if captures_dir else None
        self.otel_files = [Path(p).expanduser() for p in otel_files or []]
        self.more_dirs = [Path(p).expanduser() for p in more_dirs or []]      # histories from other machines
        self._telemetry = {}                      # OTLP file -> its sessions, read once a run
        self.from_captures = 0                    # sessions known only from a stream-json capture
        self.from_archive = 0                     # sessions known only from archived stats
        self.skipped = Skipped()                  # what was skipped, by reason, and where first
        self.empty_sessions = 0                   # sessions with no records at all
        self.sessions_read = []                   # sessions read this run (not taken from a cache)

    # ── one session ──

    def locate(self, session_id: str | None = None, transcript: str | None = None,
               cwd: str | None = None, transcript_format: str | None = None) -> SessionRef:
        """The session the user means, by the precedence in the README: a transcript file (or a
        stream-json capture: transcript_format, else recognised by its content), else a session
        id (or unique prefix), else the newest session of the folder cwd. With --otel-file, the
        session of those files by id (or prefix), else their newest."""
        if self.otel_files and not transcript:
            return self._otel_session(session_id)
        if transcript:
            path = Path(transcript).expanduser()
            if not path.is_file():
                raise UserError(f"transcript not found: {path}", EXIT_NO_SESSION)
            if transcript_format == CAPTURE_FORMAT or (transcript_format is None and is_capture(path)):
                return SessionRef(Path("captures"), path.stem, {}, capture=path)
            if path.parent.name == "subagents" or "subagents" in path.parts[-4:-1]:
                idx = len(path.parts) - 1 - path.parts[::-1].index("subagents")
                project, sid = Path(*path.parts[: idx - 1]), path.parts[idx - 1]
            elif path.name.startswith("agent-"):
                project, sid = path.parent, flat_agent_session(path) or path.stem
            else:
                project, sid = path.parent, path.stem
        elif session_id:
            project, sid = self._find(session_id)
        else:
            project, sid = newest_session(self.projects_dir, cwd or os.getcwd())
        groups = group_by_session(project_files(project), self.skipped)
        if transcript and path.resolve() not in {tf.path.resolve() for tf in groups.get(sid, [])}:
            groups.setdefault(sid, []).append(TranscriptFile(path, sid, None))
        return SessionRef(project, sid, groups)

    def _find(self, session_id: str) -> tuple[Path, str]:
        """find_session in each history in turn (several --projects-dir): the first that has it."""
        for n, folder in enumerate([self.projects_dir] + self.more_dirs):
            try:
                return find_session(folder, session_id)
            except UserError:
                if n == len(self.more_dirs):
                    raise
        raise AssertionError("unreachable")

    def fresh(self) -> "HistoryReader":
        """Another reader of the same history with the same settings, its counts at zero."""
        return HistoryReader(self.projects_dir, self.options, self.captures_dir, self.otel_files, self.more_dirs)

    def telemetry(self, path: Path) -> list[SessionFacts]:
        """The sessions of one file of Claude Code's OTLP logs, read the first time they are asked for."""
        if path not in self._telemetry:
            self._telemetry[path] = read_otel_file(path)
        return self._telemetry[path]

    def _otel_session(self, session_id: str | None) -> SessionRef:
        found = [(path, facts) for path in self.otel_files for facts in self.telemetry(path)]
        if session_id:
            found = [(p, f) for p, f in found if f.session_id.startswith(session_id)]
            if len({f.session_id for _, f in found}) > 1:
                raise UserError(f"session id prefix {session_id!r} matches {len(found)} sessions; "
                                "give more characters", EXIT_NO_SESSION)
        if not found:
            where = ", ".join(map(str, self.otel_files))
            raise UserError(f"no session {session_id} in {where}" if session_id else
                            f"no Claude Code telemetry events in {where}", EXIT_NO_SESSION)
        path, facts = max(found, key=lambda pf: (pf[1].timestamps[-1] if pf[1].timestamps else 0.0))
        return SessionRef(Path("otel"), facts.session_id, {}, otlp=path)

    def session(self, ref: SessionRef) -> SessionFacts:
        """Everything one session recorded (FULL depth), without the API calls a neighbour in its
        project folder recorded first; of the neighbours only their claims are read."""
        if ref.capture is not None:
            facts = read_capture(ref.capture)
            self.skipped.update(facts.skipped)
            return facts
        if ref.otlp is not None:
            [facts] = [f for f in self.telemetry(ref.otlp) if f.session_id == ref.sid]
            self.skipped.update(facts.skipped)
            return facts
        own_files = ref.groups.get(ref.sid, [])
        scans = [self.reading.scan(tf, ref.sid, FULL) for tf in own_files]
        project = ref.project.name
        claims = {(project, ref.sid): session_claims(scans)}
        for other, files in ref.groups.items():
            if other != ref.sid:
                claims[(project, other)] = self.reading.claims(files, other)
        facts = assemble_session(ref.sid, project, own_files, scans,
                                 owned_by(build_owner_index(claims), project, ref.sid))
        self.skipped.update(facts.skipped)
        return facts

    # ── every session ──

    def each_session(self, depth: str, summarise, key: str = "") -> list:
        """summarise(facts) for every session of the history with records, each API call counted
        once across it. summarise is a pure, picklable function (it may run in a worker); `key`
        names everything its result depends on besides the facts (prices, templates: see
        summary_key), so that results can be kept between runs."""
        # The default projects folder may be missing when captures or telemetry are the history;
        # a folder the user named, never.
        folders = [self.projects_dir] + self.more_dirs
        if not self.projects_dir.is_dir() and (self.captures_dir is not None or self.otel_files):
            folders = self.more_dirs
        projects = []
        for folder in folders:
            try:
                projects += sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError as exc:
                raise UserError(f"cannot read projects folder {folder}: {exc.strerror or exc}",
                                EXIT_NO_SESSION) from None
        listed = merged_projects(projects)
        found = self.reading.summaries(self.projects_dir, listed, depth, summarise, key)
        self.skipped.update(found.skipped)
        self.empty_sessions += found.empty
        self.sessions_read += found.read
        return found.rows + self._captured(summarise, set(found.sessions))

    def _captured(self, summarise, known: set) -> list:
        """summarise(facts) of each capture in captures_dir, and each session of the --otel-file
        files, whose session no transcript holds."""
        rows = []
        in_captures = []
        if self.captures_dir is not None:
            if not self.captures_dir.is_dir():
                raise UserError(f"captures folder not found: {self.captures_dir}", EXIT_NO_SESSION)
            in_captures = sorted(p for p in self.captures_dir.rglob("*") if p.is_file())
        for path in self.otel_files + [p for p in in_captures if is_otlp_file(p)]:
            for facts in self.telemetry(path):
                self.skipped.update(facts.skipped)
                if facts.session_id not in known and (facts.timestamps or facts.calls):
                    known.add(facts.session_id)
                    rows.append(summarise(facts))
                    self.from_captures += 1
        for path in in_captures:
            if not is_capture(path):
                continue
            facts = read_capture(path)
            self.skipped.update(facts.skipped)
            if not SAFE_ID_RE.fullmatch(facts.session_id):
                self.skipped.add("captures with an unsafe session id", str(path))
                continue
            if facts.session_id in known:
                continue                          # the transcript of the same run was read
            known.add(facts.session_id)
            if facts.timestamps or facts.calls:
                rows.append(summarise(facts))
                self.from_captures += 1
            else:
                self.empty_sessions += 1
        return rows

    def note(self) -> str | None:
        """The one line that says what was skipped, or None."""
        parts = [f"{n} {what}" + (f" (first: {self.skipped.first[what]})" if what in self.skipped.first else "")
                 for what, n in sorted(self.skipped.items()) if n]
        if self.empty_sessions:
            parts.append(f"{self.empty_sessions} empty or summary-only sessions")
        line = f"{PROG}: note: skipped " + ", ".join(parts) if parts else None
        for count, where in ((self.from_captures, "captures"), (self.from_archive, "the archive")):
            if count:
                told = f"{plural(count, 'session')} read from {where}"
                line = f"{line}; {told}" if line else f"{PROG}: note: {told}"
        return line




# ── Captures: a `claude -p --output-format stream-json` run is a session too ──────
#
# A headless run (CI job, pod, Agent SDK) leaves the stream it printed, one JSON object a line:
# system/init (session_id, cwd, model, claude_code_version), assistant and user messages (snake_case
# session_id, timestamp, parent_tool_use_id and agent_id for a subagent's, tool_use_result), system
# task and vcs events, and one `result` per prompt (total_cost_usd, duration_ms, modelUsage per
# model, cumulative). Each message is translated into the transcript record it stands for and read
# by the same interpreter. But a streamed message's usage is the placeholder from its start
# (output_tokens 1): the true totals are the last result's modelUsage, so the difference per model
# is added as one call of that model. A capture cut off before any result (the pod died) gives
# lower bounds, and says so.

CAPTURE_FORMAT = "stream-json"


def file_head(path: Path, size: int) -> bytes:
    """The first `size` bytes of a regular file; nothing when it is not one or cannot be read."""
    handle = open_regular(path)
    if handle is None:
        return b""
    with handle:
        return handle.read(size)


def is_capture(path: Path) -> bool:
    """Does the file start like a stream-json capture (a system/init line with session_id)?"""
    for raw in file_head(path, 1 << 20).split(b"\n")[:20]:
        rec, _ = decode_line(raw, True)
        if rec is not None:
            return rec.get("type") == "system" and rec.get("subtype") == "init" \
                and isinstance(rec.get("session_id"), str)
    return False


def read_capture(path: Path) -> SessionFacts:
    """One captured stream as a session's facts, totals corrected from its last result."""
    scan = FileScan(path=Path(path), depth=FULL)
    state = ScanState(scan)
    init, results, branch = {}, [], None
    handle = open_regular(path)
    if handle is None:
        scan.skipped.add("unreadable files", str(path))
    else:
        with handle:
            for line, _, terminated in iter_lines(handle, 0):
                state.line += 1
                rec, problem = decode_line(line, terminated)
                if problem:
                    skip(state, problem)
                if rec is None:
                    continue
                kind, subtype = rec.get("type"), rec.get("subtype")
                if kind == "system" and subtype == "init":
                    init = init or rec
                    scan.session_id = scan.session_id or as_str(rec.get("session_id"))
                elif kind == "system" and subtype == "vcs_state_changed" and as_str(rec.get("branch")):
                    branch = rec["branch"]
                elif kind == "result":
                    results.append(rec)
                    if rec.get("origin") is None:         # a prompt's result, not a notification's
                        scan.prompts.append((as_str(rec.get("uuid")), None))
                elif kind in ("assistant", "user") and isinstance(rec.get("message"), dict):
                    _scan_record(state, _transcript_record(rec, init, branch), None)
    if state.inline_lines:
        _resolve_inline_sidechains(scan, state.inline_parent, state.inline_lines, state.uuid_prompt_key)
    sid = scan.session_id or Path(path).stem
    project_dir = encode_project_dir(as_str(init.get("cwd"))) if init.get("cwd") else "captures"
    facts = assemble_session(sid, project_dir, [TranscriptFile(Path(path), sid, None)], [scan], owns_every_call)
    last = results[-1] if results else None
    facts.capture = {"format": CAPTURE_FORMAT, "complete": last is not None,
                     "results": len(results), "duration_ms": sum(as_int(r.get("duration_ms")) for r in results),
                     "num_turns": sum(as_int(r.get("num_turns")) for r in results)}
    if last is not None:
        facts.cost_state = cost_state_of({"totalCostUSD": last.get("total_cost_usd"),
                                          "modelUsage": last.get("modelUsage")})
        main_thread = Usage()
        for result in results:
            usage = usage_of(as_dict(result.get("usage")))
            if usage is None:
                scan.skipped.add("results whose token counts are not counts", str(path))
            else:
                _add_usage(main_thread, usage)
        _correct_from_result(facts, main_thread)
    return facts


def _transcript_record(rec: dict, init: dict, branch: str | None) -> dict:
    """A streamed message as the transcript line it stands for."""
    agent = as_str(rec.get("agent_id")) or (as_str(rec.get("parent_tool_use_id")) or None)
    out = {"type": rec["type"], "sessionId": as_str(rec.get("session_id")), "uuid": as_str(rec.get("uuid")),
           "timestamp": rec.get("timestamp"), "message": rec["message"], "cwd": as_str(init.get("cwd")),
           "version": as_str(init.get("claude_code_version"))}
    if branch:
        out["gitBranch"] = branch
    if agent:
        out["agentId"], out["isSidechain"] = agent, True
    if isinstance(rec.get("tool_use_result"), dict):
        out["toolUseResult"] = rec["tool_use_result"]
    if rec.get("isSynthetic") is True:
        out["isMeta"] = True             # text Claude Code added itself (a skill's body): not a prompt
    return out


def _correct_from_result(facts: SessionFacts, main_thread: Usage) -> None:
    """Add what the results counted beyond the streamed placeholders, as one call per thread and
    model. Each result's `usage` is the main thread's exact total since the one before, and
    modelUsage everything per model; so the main thread gets its exact tokens, and what is left
    of a model goes to the subagent that used it. Where several subagents share a model their
    split is unknown: the rest goes to the first, and the capture says their output is a bound."""
    if facts.cost_state is None:
        return
    streamed, threads = {}, collections.defaultdict(list)
    for call in facts.calls:
        model = normalize_model_id(call.model)
        _add_usage(streamed.setdefault(model, Usage()), call.usage)
        if call.agent not in threads[model]:
            threads[model].append(call.agent)
    end = facts.timestamps[-1] if facts.timestamps else None
    main_calls = [call for call in facts.calls if call.agent is None]
    if main_calls and main_thread.total:
        model = collections.Counter(call.model for call in main_calls).most_common(1)[0][0]
        have = Usage()
        for call in main_calls:
            _add_usage(have, call.usage)
        extra = _usage_beyond(main_thread, have)
        if extra.total:
            facts.calls.append(ApiCall(("result", "main", model), model, extra, end, None, correction=True))
            _add_usage(streamed[normalize_model_id(model)], extra)
    for model, counted in facts.cost_state["models"].items():
        key = normalize_model_id(model)
        extra = _usage_beyond(Usage(counted["input"], counted["output"], counted["cache_creation"],
                                    counted["cache_read"], cache_1h=counted.get("cache_creation_1h", 0)),
                              streamed.get(key, Usage()))
        if not extra.total:
            continue
        agents = [a for a in threads.get(key, []) if a is not None] if main_thread.total else threads.get(key, [])
        if len(agents) > 1:
            facts.capture["subagent_output_lower_bound"] = True
        agent = agents[0] if agents else None
        facts.calls.append(ApiCall(("result", model), model, extra, end, agent, correction=True))


def _usage_beyond(total: Usage, have: Usage) -> Usage:
    return Usage(input=max(total.input - have.input, 0), output=max(total.output - have.output, 0),
                 cache_creation=max(total.cache_creation - have.cache_creation, 0),
                 cache_read=max(total.cache_read - have.cache_read, 0),
                 cache_1h=max(total.cache_1h - have.cache_1h, 0))


# ── Claude Code's own telemetry: OTLP logs are a session too ──────────────────
#
# With CLAUDE_CODE_ENABLE_TELEMETRY=1 and OTEL_LOGS_EXPORTER=otlp, Claude Code sends an event for
# each API request, tool result and prompt (code.claude.com/docs/en/monitoring-usage). A hosted
# agent may leave nothing else: no transcript, only what its collector kept. A file of OTLP/JSON
# export requests, one a line (what the Collector's file exporter writes), is read here as the
# sessions it holds, by session.id:
#   claude_code.api_request   a billed call: model, the four token counts and the 5m/1h split,
#                             request_id, agent_id for a subagent's; its cost_usd summed per model
#                             is Claude Code's own record of the cost, as a cost-state is
#   claude_code.tool_result   a tool call of that request, failed when success is "false"; a
#                             Skill call names its skill, an Agent call its subagent's type
#   claude_code.user_prompt   a prompt, unless its text says Claude Code wrote it (a task
#                             notification); the text itself is never kept
# Unlike a transcript, telemetry has every call Claude Code made, those no transcript line
# records among them; it has no commit lines and no working folder.

OTLP_FORMAT = "otlp"


def is_otlp_file(path: Path) -> bool:
    """Does the file start like OTLP/JSON export requests (resourceLogs, resourceSpans, ...)?"""
    return re.match(rb'\s*\{\s*"resource', file_head(path, 64)) is not None


def _otlp_value(value):
    """An OTLP/JSON AnyValue as a plain value."""
    value = as_dict(value)
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in value:
            return value[kind]
    if "intValue" in value:
        return as_int(value["intValue"]) if as_str(value["intValue"]).lstrip("-").isdigit() \
            or isinstance(value["intValue"], int) else None
    if "arrayValue" in value:
        return [_otlp_value(v) for v in as_dict(value["arrayValue"]).get("values") or []]
    return None


def _otlp_attributes(items) -> dict:
    return {as_str(kv.get("key")): _otlp_value(kv.get("value")) for kv in items or [] if isinstance(kv, dict)}


def read_otel_file(path: Path) -> list[SessionFacts]:
    """Every session of a file of Claude Code's OTLP logs, as facts (see the banner above)."""
    scans, models, skipped = {}, {}, Skipped()
    handle = open_regular(path)
    if handle is None:
        raise UserError(f"OTLP file not found or not readable: {path}", EXIT_BAD_INPUT)
    with handle:
        for number, (line, _, terminated) in enumerate(iter_lines(handle, 0), 1):
            request, problem = decode_line(line, terminated)
            if problem:
                skipped.add(problem, f"{path}:{number}")
            for resource_logs in as_dict(request).get("resourceLogs") or []:
                version = as_str(_otlp_attributes(as_dict(as_dict(resource_logs).get("resource")).get("attributes"))
                                 .get("service.version"))
                for scope_logs in as_dict(resource_logs).get("scopeLogs") or []:
                    for record in as_dict(scope_logs).get("logRecords") or []:
                        _read_otel_event(_otlp_attributes(as_dict(record).get("attributes")), version, scans,
                                         models, skipped, f"{path}:{number}")
    found = []
    for sid, (scan, agents) in scans.items():
        facts = assemble_session(sid, "otel", [], [scan], owns_every_call)
        facts.capture = {"format": OTLP_FORMAT, "complete": True}
        facts.agent_meta = {agent: {"agentType": kind, "description": ""} for agent, kind in agents.items()}
        totals = models.get(sid, {})
        facts.cost_state = {"total_cost_usd": round(sum(m["cost_usd"] for m in totals.values()), 6),
                            "models": {name: {**m, "cost_usd": round(m["cost_usd"], 6)} for name, m in totals.items()},
                            "has_unknown_model_cost": False, "source": "telemetry"}
        facts.skipped.update(skipped)
        found.append(facts)
    return sorted(found, key=lambda f: (f.timestamps[-1] if f.timestamps else 0.0, f.session_id))


def _read_otel_event(attrs: dict, version: str, scans: dict, models: dict, skipped: Skipped, where: str) -> None:
    event = as_str(attrs.get("event.name")).removeprefix("claude_code.")
    sid = as_str(attrs.get("session.id"))
    if event not in ("api_request", "tool_result", "user_prompt"):
        return
    if not SAFE_ID_RE.fullmatch(sid):
        skipped.add("telemetry events without a usable session.id", where)
        return
    scan, agents = scans.setdefault(sid, (FileScan(path=Path(where.rpartition(":")[0]), session_id=sid, depth=FULL), {}))
    ts = parse_ts(attrs.get("event.timestamp"))
    if ts is not None:
        scan.timestamps.append(ts)
    if version:
        scan.versions.add(version)
    if as_str(attrs.get("vcs.ref.head.name")):
        scan.branches[attrs["vcs.ref.head.name"]] += 1
    agent = as_str(attrs.get("agent_id")) or None
    request = as_str(attrs.get("request_id"))
    if event == "user_prompt":
        # Claude Code logs a task notification as a prompt too; only the text tells it apart, and
        # the text is there only with OTEL_LOG_USER_PROMPTS=1 (else each one counts as a turn).
        if not as_str(attrs.get("prompt")).lstrip().startswith(NON_PROMPT_PREFIXES):
            scan.prompts.append((as_str(attrs.get("prompt.id")), ts))
    elif event == "api_request":
        counts = [token_count(attrs.get(name)) for name in ("input_tokens", "output_tokens", "cache_creation_tokens",
                                                             "cache_read_tokens", "cache_creation_5m_tokens",
                                                             "cache_creation_1h_tokens")]
        cost = _dollars(attrs.get("cost_usd"))
        if None in counts[:4] or (attrs.get("cost_usd") is not None and cost is None):
            skipped.add("telemetry requests whose counts are not counts", where)
            return
        usage = Usage(input=counts[0], output=counts[1], cache_creation=counts[2], cache_read=counts[3],
                      cache_5m=counts[4] or 0, cache_1h=counts[5] or 0,
                      speed="fast" if attrs.get("speed") == "fast" else "standard")
        model = as_str(attrs.get("model")) or "unknown"
        key = ("otel", request or f"{where}:{attrs.get('event.sequence')}")
        scan.calls[key] = ApiCall(key, model, usage, ts, agent)
        if agent and as_str(attrs.get("agent.name")):
            agents[agent] = as_str(attrs["agent.name"])
        total = models.setdefault(sid, {}).setdefault(model, {"input": 0, "output": 0, "cache_creation": 0,
                                                                "cache_read": 0, "cache_creation_1h": 0, "cost_usd": 0.0})
        for name, count in zip(("input", "output", "cache_creation", "cache_read"), counts):
            total[name] += count
        total["cache_creation_1h"] += counts[5] or 0
        total["cost_usd"] += cost or 0.0
    else:
        tool = as_str(attrs.get("tool_name")) or "unknown"
        use_id = as_str(attrs.get("tool_use_id"))
        try:
            arguments = as_dict(json.loads(as_str(attrs.get("tool_input")) or "{}"))
        except ValueError:
            arguments = {}
        what, kind = tool_target(tool, arguments)
        use = ToolUse(use_id, tool, ts, agent, ("otel", request), signature=call_signature(tool, what) if what else "",
                      skill=as_str(arguments.get("skill")) if tool == "Skill" else "",
                      subagent_type=as_str(arguments.get("subagent_type")))
        scan.tool_uses.append(use)
        failed = as_str(attrs.get("success")) == "false"
        if failed:
            what = what if kind == "command" else shorten(redact_secrets(what), 200)
        scan.tool_results.append(ToolResult(use_id, failed, ts, error=error_class(as_str(attrs.get("error"))) if failed
                                            else "", what=what if failed else "", what_kind=kind if failed else ""))


# ── Stats ─────────────────────────────────────────────────────────────────────
#
# compute_stats is pure: SessionFacts in, the per-session dict out (Stats). The shapes
# that cross stages are declared here and at their stage (ListRow, Item, SummaryData); data that
# comes in from outside (comments, --stats-file, the archive) is brought to them once, by
# session_data, and indexed directly afterwards. A token count is spelled `input`, `output`,
# `cache_creation`, `cache_read` in a Tokens dict and `<kind>_tokens` in a model's row.

class Tokens(TypedDict):
    input: int
    output: int
    cache_creation: int
    cache_read: int


class ModelUsage(TypedDict):
    messages: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost_usd: float | None              # None: no price for the model


class Stats(TypedDict, total=False):
    """One session, as `stats` prints it and a comment's JSON block carries it (schema 2)."""
    session_id: str
    session_id_short: str
    project: str
    branch: str | None
    target: dict | None                 # {"type": "pr" | "issue", "number": int}
    started_at: str | None
    ended_at: str | None
    duration_minutes: float
    active_minutes: float
    turns: int
    models: dict[str, ModelUsage]
    total_tokens: Tokens
    estimated_cost_usd: float | None
    cost_complete: bool
    unpriced_models: list[str]
    claude_code_cost: dict | None       # Claude Code's own record, reconciled
    transcript_estimate: dict           # when the record adds calls: the transcript's part alone
    outside_transcript: dict            # ...and what it adds: cost, features, tokens per model
    hidden_calls: list[str]             # features that made calls no record covers (cost a bound)
    pr_links: list[dict]                # {repository, number} of its pr-link records (never posted)
    tools: dict[str, int]
    tools_by_thread: dict
    skills_invoked: list[dict]          # {skill, count, status, tokens: Tokens}
    subagents: list[dict]               # {agent_id, type, model, tokens, cost_usd, messages, description}
    commits: list[dict]                 # {commit_id, message}
    problems_faced: list[dict]          # {description, resolved, iterations, tool, error, command|path|target}
    workflow_edges: dict
    schema_version: int
    pricing_date: str
    claude_code_versions: list[str]
    cwd: str | None
    compactions: int
    title: str | None                   # local only: the gate never lets it out
    capture: dict                       # a stream-json capture's completeness
    omitted: dict[str, int]             # entries a size-limited comment left out
    privacy: str                        # in what left the machine: the level it was made at

TOKEN_KINDS = ("input", "output", "cache_creation", "cache_read")    # the keys of every token dict


def token_dict(usage_like) -> dict:
    return {"input": usage_like.input, "output": usage_like.output,
            "cache_creation": usage_like.cache_creation, "cache_read": usage_like.cache_read}


def _tokens_of(row) -> dict:
    """The token dict of a per-model stats row ({input_tokens, ...}), missing counts as 0."""
    row = as_dict(row)
    return {kind: as_int(row.get(kind + "_tokens")) for kind in TOKEN_KINDS}


def round_cost(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def usage_by_model(facts: SessionFacts, pricing: Pricing) -> tuple[dict, Usage, float, set]:
    """Per-model rows of the stats, the token totals, the priced cost and the unpriced models."""
    models = {}
    totals = Usage()
    cost_total = 0.0
    unpriced = set()
    for call in facts.calls:
        row = models.setdefault(call.model, {"messages": 0, "usage": Usage(), "cost": 0.0})
        row["messages"] += not call.correction
        _add_usage(row["usage"], call.usage)
        _add_usage(totals, call.usage)
        dollars = pricing.cost(call.model, call.usage, call.first_ts)
        if dollars is None:
            unpriced.add(call.model)
        else:
            row["cost"] += dollars
            cost_total += dollars
    model_rows = {}
    for name in sorted(models):
        row = models[name]
        model_rows[name] = {
            "messages": row["messages"],
            "input_tokens": row["usage"].input,
            "output_tokens": row["usage"].output,
            "cache_creation_tokens": row["usage"].cache_creation,
            "cache_read_tokens": row["usage"].cache_read,
            "cost_usd": None if name in unpriced else round_cost(row["cost"]),
        }
    return model_rows, totals, cost_total, unpriced


def session_cost(cost_total: float, model_rows: dict, unpriced: set) -> float | None:
    """The session's estimate: None when no model it used has a price, never a silent 0."""
    if unpriced and all(name in unpriced for name in model_rows):
        return None
    return round_cost(cost_total)


def priced_session(facts: SessionFacts, pricing: Pricing) -> tuple[dict, dict, dict | None]:
    """(per-model rows, the totals fields the stats and a list row share, Claude Code's record
    reconciled). The cost is the best figure there is: the transcript's calls priced, plus the
    calls Claude Code's own record has and no transcript line does (hook evaluators, compaction,
    titles, /goal's evaluator), priced by the same table from the record's tokens. It is a lower
    bound when a model has no price, a capture was cut off, or, with no record, the session used
    a feature that makes such calls (compaction, prompt hooks, /goal)."""
    model_rows, totals, cost_total, unpriced = usage_by_model(facts, pricing)
    cost = session_cost(cost_total, model_rows, unpriced)
    record = reconcile(facts, model_rows, cost)
    fields = {
        "total_tokens": token_dict(totals),
        "estimated_cost_usd": cost,
        "cost_complete": not unpriced and (facts.capture is None or facts.capture["complete"]),
        "unpriced_models": sorted(unpriced),
    }
    outside = outside_calls(facts, record, pricing)
    if outside:
        fields["transcript_estimate"] = {"estimated_cost_usd": cost, "total_tokens": token_dict(totals)}
        named = {normalize_model_id(name): name for name in model_rows}
        for model, (usage, dollars) in outside.items():
            row = model_rows.setdefault(named.get(model, model),
                                        {"messages": 0, **{f"{k}_tokens": 0 for k in TOKEN_KINDS}, "cost_usd": 0.0})
            for kind, count in token_dict(usage).items():
                row[f"{kind}_tokens"] += count
                fields["total_tokens"][kind] += count
            if dollars is None:
                row["cost_usd"] = None
                unpriced.add(model)
            elif row["cost_usd"] is not None:
                row["cost_usd"] = round_cost(row["cost_usd"] + dollars)
        extra = sum(dollars for _, dollars in outside.values() if dollars is not None)
        fields["estimated_cost_usd"] = round_cost(cost_total + extra) if cost is not None or extra else cost
        fields["unpriced_models"] = sorted(unpriced)
        fields["cost_complete"] = fields["cost_complete"] and not unpriced
        fields["outside_transcript"] = {"cost_usd": round_cost(extra), "features": sorted(facts.hidden_calls),
                                        "models": {m: token_dict(u) for m, (u, _) in sorted(outside.items())}}
        headline = fields["estimated_cost_usd"]
        record["difference_usd"] = None if headline is None else round_cost(headline - record["total_cost_usd"])
        record["agrees"] = headline is not None and _costs_agree(headline, record["total_cost_usd"])
    elif record is None and facts.hidden_calls and facts.capture is None:
        fields["cost_complete"] = False
        fields["hidden_calls"] = sorted(facts.hidden_calls)
    return dict(sorted(model_rows.items())), fields, record


def outside_calls(facts: SessionFacts, record: dict | None, pricing: Pricing) -> dict:
    """model -> (Usage, cost or None) of what Claude Code's record has and the transcript does
    not (the record's "not in transcript" reasons), priced as of the session's end; its 1-hour
    cache writes where the record tells them apart, as cost-state does from 2.1.2xx.

    Only a record that is the session's own: a session that replays another's calls (a
    --fork-session, or a session started from another's history) has a record that carries the
    other's total on, calls its file never shows included, and what is the other's cannot be
    told from what is its own; there the reasons say why the two differ, and nothing is added."""
    if not record or facts.replayed:
        return {}
    ours_1h = collections.Counter()
    for call in facts.calls:
        ours_1h[normalize_model_id(call.model)] += call.usage.cache_1h
    theirs_1h = collections.Counter()
    for name, row in record["models"].items():
        theirs_1h[normalize_model_id(name)] += row.get("cache_creation_1h", 0)
    end = facts.timestamps[-1] if facts.timestamps else None
    outside = {}
    for reason in record["reasons"]:
        if reason["reason"] != "not in transcript":
            continue
        model, tokens = reason["model"], reason["tokens"]
        usage = Usage(tokens["input"], tokens["output"], tokens["cache_creation"], tokens["cache_read"])
        usage.cache_1h = min(max(theirs_1h[model] - ours_1h[model], 0), usage.cache_creation)
        outside[model] = (usage, pricing.cost(model, usage, end))
    return outside


# Claude Code's own record of a session's cost (its last cost-state, what /cost shows) beside ours,
# to verify one by the other. Where the two differ, the reasons say why in data:
#   replayed                 - calls this session replays from the one it resumes or forks: Claude
#                              Code's record carries that session's cost over, ours counts them there
#   not in transcript        - tokens Claude Code billed that no transcript line records (side calls)
#   not in Claude Code's record - calls the transcript has after the last cost-state (a process that
#                              ended before writing it)
#   price                    - the same tokens, priced differently (our table vs Claude Code's)
#   no price here            - a model our table lacks and Claude Code priced
COST_AGREEMENT = 0.005              # relative difference below which the two costs agree


def reconcile(facts: SessionFacts, model_rows: dict, cost: float | None) -> dict | None:
    """Claude Code's record next to our estimate, with the reasons where they differ; None when
    the transcript has no cost-state (before 2.1.x, or a session Claude Code never finished)."""
    record = facts.cost_state
    if record is None:
        return None
    zero = {**dict.fromkeys(TOKEN_KINDS, 0), "cost_usd": 0.0}
    ours = _by_normalised_model((name, _tokens_of(row), row["cost_usd"]) for name, row in model_rows.items())
    theirs = _by_normalised_model((name, row, row["cost_usd"]) for name, row in record["models"].items())
    replayed = {model: {kind: slot[kind] for kind in TOKEN_KINDS} for model, slot in
                _by_normalised_model((name, token_dict(usage), 0.0) for name, usage in facts.replayed.items()).items()}
    reasons = []
    if replayed:
        reasons.append({"reason": "replayed", "models": dict(sorted(replayed.items()))})
    for model in sorted(set(ours) | set(theirs)):
        mine, claude = ours.get(model, zero), theirs.get(model, zero)
        gap = {key: claude[key] - mine[key] - replayed.get(model, zero)[key] for key in TOKEN_KINDS}
        if any(v > 0 for v in gap.values()):
            reasons.append({"reason": "not in transcript", "model": model,
                            "tokens": {k: max(v, 0) for k, v in gap.items()}})
        if any(v < 0 for v in gap.values()):
            reasons.append({"reason": "not in Claude Code's record", "model": model,
                            "tokens": {k: max(-v, 0) for k, v in gap.items()}})
        if any(gap.values()) or model in replayed:
            continue
        if mine["cost_usd"] is None:
            reasons.append({"reason": "no price here", "model": model, "claude_code_usd": claude["cost_usd"]})
        elif claude["cost_usd"] is not None and not _costs_agree(mine["cost_usd"], claude["cost_usd"]):
            reasons.append({"reason": "price", "model": model, "ours_usd": round_cost(mine["cost_usd"]),
                            "claude_code_usd": round_cost(claude["cost_usd"])})
    total = record["total_cost_usd"]
    return {"total_cost_usd": round_cost(total), "models": record["models"],
            "has_unknown_model_cost": record["has_unknown_model_cost"],
            "difference_usd": None if cost is None else round_cost(cost - total),
            "agrees": cost is not None and _costs_agree(cost, total), "reasons": reasons}


def _by_normalised_model(rows) -> dict:
    """(model, tokens, cost or None) summed per normalised model id; a None cost makes the sum None."""
    out = {}
    for name, tokens, cost in rows:
        slot = out.setdefault(normalize_model_id(name), {**dict.fromkeys(TOKEN_KINDS, 0), "cost_usd": 0.0})
        for kind in TOKEN_KINDS:
            slot[kind] += tokens[kind]
        slot["cost_usd"] = None if slot["cost_usd"] is None or cost is None else slot["cost_usd"] + cost
    return out


def _costs_agree(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= max(COST_AGREEMENT * max(abs(ours), abs(theirs)), 0.00005)


def session_times(facts: SessionFacts) -> dict:
    """started_at, ended_at, wall and active minutes, and turns, as the stats show them."""
    start = facts.timestamps[0] if facts.timestamps else None
    end = facts.timestamps[-1] if facts.timestamps else None
    return {
        "started_at": format_ts(start),
        "ended_at": format_ts(end),
        "duration_minutes": round((end - start) / 60, 1) if start is not None else 0,
        "active_minutes": active_minutes(facts.timestamps),
        "turns": len(facts.prompts),
    }


def compute_stats(facts: SessionFacts, pricing: Pricing, project: str,
                  target: dict | None = None, extra_problems: list | None = None,
                  templates: list | None = None) -> Stats:
    """The per-session stats dict (Stats), every field computed from facts."""
    if facts.depth != FULL:
        raise ValueError(f"compute_stats needs a FULL read of session {facts.session_id}, not {facts.depth}")
    model_rows, totals_fields, record = priced_session(facts, pricing)
    tools_main = collections.Counter(u.name for u in facts.tool_uses if u.agent is None)
    tools_sub = collections.Counter(u.name for u in facts.tool_uses if u.agent is not None)
    stats = {
        "session_id": facts.session_id,
        "session_id_short": facts.session_id[:8],
        "project": project,
        "branch": _most_common(facts.branches),
        "target": target,
        **session_times(facts),
        "models": model_rows,
        **totals_fields,
        "claude_code_cost": record,
        "tools": _sorted_counts(tools_main + tools_sub),
        "tools_by_thread": {"main": _sorted_counts(tools_main), "subagents": _sorted_counts(tools_sub)},
        "skills_invoked": skills_invoked(facts, pricing),
        "subagents": session_subagents(facts, pricing),
        "commits": session_commits(facts),
        "problems_faced": merge_problems(derive_problems(facts), extra_problems or []),
        "workflow_edges": workflow_edges(templates or [], [i.name for i in skill_invocations(facts)]),
        "schema_version": SCHEMA_VERSION,
        "pricing_date": pricing.date,
        "claude_code_versions": sorted(facts.versions, key=_version_key),
        "cwd": _most_common(facts.cwds),
        "compactions": facts.compactions,
        "title": facts.title,
        "pr_links": [{"repository": repo, "number": number} for repo, number, _ in facts.pr_links],
    }
    if facts.capture is not None:
        stats["capture"] = facts.capture
    return stats


def local_stats(facts: SessionFacts, pricing: Pricing, templates: list | None = None) -> dict:
    """The stats of a session read from a whole history: its project is its working folder."""
    return compute_stats(facts, pricing, _most_common(facts.cwds) or facts.project_dir, templates=templates)


def summary_key(pricing: Pricing, templates: list | None = None) -> str:
    """A digest of what a session's summary depends on besides its transcripts: the price table
    and the workflow templates (for HistoryReader.each_session's cache)."""
    digest = hashlib.sha256(repr((pricing.date, sorted(pricing.table.items()))).encode())
    digest.update(pickle.dumps([(t.name, t.source, sorted(t.known_skills)) for t in templates or []]))
    return digest.hexdigest()


def _most_common(counter: collections.Counter) -> str | None:
    if not counter:
        return None
    best = max(counter.values())
    return min(k for k, v in counter.items() if v == best)


def _sorted_counts(counter: collections.Counter) -> dict:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _version_key(version: str):
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.\-]", version))


def active_minutes(timestamps: list) -> float:
    """Wall time with every gap over 15 minutes left out."""
    active = 0.0
    for before, after in zip(timestamps, timestamps[1:]):
        gap = after - before
        if gap <= ACTIVE_GAP_SECONDS:
            active += gap
    return round(active / 60, 1)


# Skills: each invocation (Skill tool call or slash command) opens a window that
# lasts until the next invocation or the session's end. The window's API calls
# are the skill's tokens and cost. Status rule, per invocation, the skill reporting its last:
#   fail    - the Skill call itself errored, or the last tool result in the window errored
#   pass    - the window has tool results and the last one succeeded
#   unknown - the window has no tool results at all

@dataclass
class _Invocation:
    name: str
    ts: float
    agent: str | None            # thread the skill was invoked in
    tool_use_id: str = ""
    results: list = field(default_factory=list)


def skill_invocations(facts: SessionFacts) -> list[_Invocation]:
    found = [_Invocation(u.skill.lstrip("/"), u.ts or 0.0, u.agent, u.id)
             for u in facts.tool_uses if u.name == "Skill" and u.skill]
    found += [_Invocation(name.lstrip("/"), ts or 0.0, None) for name, ts in facts.commands]
    found.sort(key=lambda inv: (inv.ts, inv.name))
    return found


class _SkillWindows:
    """Finds the invocation whose window holds an event of a given thread and time.

    A skill invoked in a subagent covers that subagent's later events; a skill
    invoked on the main thread covers the main thread and every subagent that has
    no window of its own open at that time.
    """

    def __init__(self, invocations: list[_Invocation]):
        self.by_thread = collections.defaultdict(list)
        for inv in invocations:
            self.by_thread[inv.agent].append(inv)
        self.starts = {t: [inv.ts for inv in invs] for t, invs in self.by_thread.items()}

    def find(self, agent: str | None, ts: float | None) -> _Invocation | None:
        if ts is None:
            return None
        for thread in ((agent, None) if agent is not None else (None,)):
            starts = self.starts.get(thread)
            if starts:
                i = bisect.bisect_left(starts, ts) - 1
                if i >= 0:
                    return self.by_thread[thread][i]
        return None


def skills_invoked(facts: SessionFacts, pricing: Pricing) -> list[dict]:
    """Each skill run in the session: how often, whether its last run passed, and the tokens and
    cost of the calls made for it (None when one of them is on an unpriced model). From 2.1.2xx
    Claude Code names the skill on each call it made for one (attributionSkill), and that is the
    answer; older transcripts get the time-window heuristic: a call belongs to the last skill
    invoked in its thread before it."""
    invocations = skill_invocations(facts)
    attributed = any(call.skill and not call.correction for call in facts.calls)
    if not invocations and not attributed:
        return []
    windows = _SkillWindows(invocations)
    calls_of = collections.defaultdict(list)        # skill -> the calls made for it
    for call in facts.calls:
        if call.correction:
            continue
        if attributed:
            name = call.skill.lstrip("/") if call.skill else None
        else:
            inv = windows.find(call.agent, call.first_ts)
            name = inv.name if inv else None
        if name:
            calls_of[name].append(call)
    own_results = {inv.tool_use_id: inv for inv in invocations if inv.tool_use_id}
    thread_of_use = {u.id: u.agent for u in facts.tool_uses}
    for res in facts.tool_results:
        if res.tool_use_id in own_results:
            if res.is_error:
                own_results[res.tool_use_id].results.append("skill-error")
            continue
        inv = windows.find(thread_of_use.get(res.tool_use_id), res.ts)
        if inv is not None:
            inv.results.append(res.is_error)
    by_name = {}
    for inv in invocations:
        entry = by_name.setdefault(inv.name, {"skill": inv.name, "count": 0, "status": "unknown"})
        entry["count"] += 1
        entry["status"] = _invocation_status(inv.results)
    for name in calls_of:                           # a skill whose invocation no line of ours shows
        by_name.setdefault(name, {"skill": name, "count": 0, "status": "unknown"})
    for name, entry in by_name.items():
        usage, costs = Usage(), []
        for call in calls_of.get(name, []):
            _add_usage(usage, call.usage)
            costs.append(pricing.cost(call.model, call.usage, call.first_ts))
        entry["tokens"] = token_dict(usage)
        entry["cost_usd"] = None if None in costs else round_cost(sum(costs))
    return list(by_name.values())


def _invocation_status(results: list) -> str:
    if "skill-error" in results:
        return "fail"
    outcomes = [r for r in results if r != "skill-error"]
    if not outcomes:
        return "unknown"
    return "fail" if outcomes[-1] else "pass"


WARMUP_PROMPT_KEY = prompt_key("Warmup")      # the prompt of the agents a session starts with


def session_subagents(facts: SessionFacts, pricing: Pricing) -> list[dict]:
    """One entry per subagent with its own tokens, linked to its Task/Agent call."""
    uses = {u.id: u for u in facts.tool_uses if u.name in TASK_TOOLS}
    linked = {}
    for res in facts.tool_results:
        if res.agent_id and res.tool_use_id in uses:
            linked.setdefault(res.agent_id, (uses[res.tool_use_id], res))
    by_prompt = {}
    for use in uses.values():
        if use.prompt_key:
            by_prompt.setdefault(use.prompt_key, use)
    calls_by_agent = collections.defaultdict(list)
    for call in facts.calls:
        if call.agent is not None:
            calls_by_agent[call.agent].append(call)
    agents = list(calls_by_agent)
    agents += [a for a in linked if a not in calls_by_agent]
    rows = []
    for agent in agents:
        calls = calls_by_agent.get(agent, [])
        use, res = linked.get(agent, (None, None))
        first_prompt = as_str(facts.agent_prompt_keys.get(agent))
        if use is None and first_prompt:
            use = by_prompt.get(first_prompt)
        meta = as_dict(facts.agent_meta.get(agent))
        usage, dollars, priced = Usage(), 0.0, True
        model_counts = collections.Counter()
        for call in calls:
            _add_usage(usage, call.usage)
            model_counts[call.model] += 1
            c = pricing.cost(call.model, call.usage, call.first_ts)
            if c is None:
                priced = False
            else:
                dollars += c
        if use is not None:
            kind = use.subagent_type or "general-purpose"
        else:
            kind = (as_str(meta.get("agentType")) or (res.agent_type if res else "")
                    or ("warmup" if first_prompt == WARMUP_PROMPT_KEY else "unknown"))
        # never the subagent's prompt: a subagent without a description is shown by its type
        description = (use.description if use else "") or as_str(meta.get("description"))
        row = {
            "agent_id": agent,
            "type": kind,
            "model": _most_common(model_counts),
            "tokens": token_dict(usage) if calls else None,
            "cost_usd": round_cost(dollars) if priced and calls else None,
            "messages": sum(not call.correction for call in calls),
            "description": description,
            "tool_use_id": use.id if use else None,
        }
        if not calls:
            # No transcript: its tokens are not recorded (not zero). What the parent's result
            # says is the subagent's own report, and covers only its last API call.
            row["transcript_missing"] = True
            if res is not None and res.reported:
                row["reported_tokens"] = {**res.reported, "scope": "last API call, as the subagent reported it"}
        rows.append((calls[0].first_ts if calls and calls[0].first_ts is not None
                     else (use.ts if use and use.ts is not None else float("inf")), agent, row))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows]


def session_commits(facts: SessionFacts) -> list[dict]:
    """Commits reported by `git commit` output ('[branch sha] message'), unique by sha: Claude's,
    then those the user made through a `!` command in the session, marked "by": "user"."""
    committing = {u.id for u in facts.tool_uses if u.commits}
    found, seen = [], set()
    for res in facts.tool_results:
        if res.tool_use_id not in committing:
            continue
        for sha, subject in res.commits:
            if sha in seen:
                continue
            seen.add(sha)
            found.append({"commit_id": sha, "message": subject})
    for sha, subject, _ in facts.user_commits:         # made by the user with `!git commit`
        if sha not in seen:
            seen.add(sha)
            found.append({"commit_id": sha, "message": subject, "by": "user"})
    return found


def normalize_command(command: str) -> str:
    """The recognisable head of a shell command: no cd prefix, env, quoted payloads or secrets."""
    lines = [ln for ln in command.strip().splitlines() if ln.strip()]
    head = lines[0].strip() if lines else ""
    head = redact_secrets(head)
    head = re.sub(r"^(?:cd\s+(?:\"[^\"]*\"|'[^']*'|\S+)\s*&&\s*)+", "", head)
    head = re.sub(r"^(?:[A-Za-z_][A-Za-z0-9_]*=(?:\"[^\"]*\"|'[^']*'|\S*)\s+)+", "", head)
    head = re.sub(r"\"[^\"]*\"?", '"…"', head)
    head = re.sub(r"'[^']*'?", "'…'", head)
    return shorten(head, 80)


def derive_problems(facts: SessionFacts) -> list[dict]:
    """Failing tool calls grouped by tool and call (its command head or target: call_signature).
    iterations = how often it failed; resolved = the same call succeeded after its last failure;
    error = the class of its last failure. Besides the description, each problem keeps its parts
    (tool, error class, command or path or target), from which the privacy gate describes it at
    each level."""
    uses = {u.id: u for u in facts.tool_uses}
    if not any(res.is_error for res in facts.tool_results):
        return []
    problems = {}
    for res in facts.tool_results:
        use = uses.get(res.tool_use_id)
        if use is None:
            continue
        sig = (use.name, use.signature)
        if res.is_error:
            entry = problems.setdefault(sig, {"failures": 0, "resolved": False, "error": "", "what": "", "kind": ""})
            entry["failures"] += 1
            entry["resolved"] = False
            entry["error"] = res.error or "failed"
            entry["what"], entry["kind"] = res.what or entry["what"], res.what_kind or entry["kind"]
        elif sig in problems:
            problems[sig]["resolved"] = True
    out = []
    for (tool, _), entry in problems.items():
        what = entry["what"]
        shown = shorten(what, 80)
        part = {"command": "command", "path": "path"}.get(entry["kind"], "target")
        out.append({"description": f"{tool} failed: {shown}" if shown else f"{tool} failed",
                    "resolved": entry["resolved"], "iterations": entry["failures"],
                    "tool": tool, "error": entry["error"], **({part: what} if what else {})})
    return out


def load_problems(path: str) -> list[dict]:
    """The --problems FILE an agent writes: a list (or {"problems": [...]}) of problems."""
    data = read_json_file(Path(path), "problems file")
    if isinstance(data, dict):
        data = data.get("problems")
    if not isinstance(data, list):
        raise UserError(f"problems file {path}: expected a JSON list of problems")
    problems = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("description"), str) \
                or not item["description"].strip():
            raise UserError(f"problems file {path}: entry {i + 1} needs a 'description' string")
        iterations = item.get("iterations", 1)
        if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
            raise UserError(f"problems file {path}: entry {i + 1}: 'iterations' must be a whole number")
        problems.append({"description": shorten(redact_secrets(item["description"]), 200),
                         "resolved": item.get("resolved") is True, "iterations": iterations})
    return problems


def merge_problems(derived: list, supplied: list) -> list:
    """Agent-supplied problems first; they replace derived ones with the same description."""
    names = {p["description"].casefold() for p in supplied}
    return list(supplied) + [p for p in derived if p["description"].casefold() not in names]


# ── Mermaid workflows: templates, traversed edges, annotated diagrams ─────────
#
# Workflow skills keep a ```mermaid flowchart at the top of their SKILL.md; nodes labelled with a
# skill name (TDDCI["tdd:ci"]) stand for that skill. The reader below enumerates links exactly in
# Mermaid's order, because `linkStyle N` addresses the N-th link: every link of a chain, every
# pair of an `&` group (sources outer, targets inner), links whose nodes are defined inline.

LINK_GREEN, LINK_RED, LINK_GREY = "#4CAF50", "#F44336", "#9E9E9E"
FAILURE_LABEL_RE = re.compile(
    r"(?i)\b(?:fail(?:s|ed|ure|ures|ing)?|errors?|red|broken|time[ds]? ?out|crash(?:es|ed)?|"
    r"reject(?:s|ed)?|flaky)\b|\d+\+|✗|❌")
_FLOW_SKIP_WORDS = {"flowchart", "graph", "subgraph", "end", "classDef", "class", "style",
                    "linkStyle", "click", "direction", "accTitle", "accDescr"}

# A node id character: an ASCII word character or any from U+00C0 to U+FFFF.
_ID_CHAR = "[A-Za-z0-9_\u00c0-\uffff]"
_NODE_ID_RE = re.compile(_ID_CHAR + r"+(?:[.\-]" + _ID_CHAR + r"+)*")
_SHAPES = (("(((", (")))",)), ("([", ("])",)), ("[[", ("]]",)), ("[(", (")]",)), ("((", ("))",)),
           ("{{", ("}}",)), ("[/", ("/]", "\\]")), ("[\\", ("\\]", "/]")), ("[", ("]",)),
           ("(", (")",)), ("{", ("}",)), (">", ("]",)))
_ARROW_RE = re.compile(r"(?P<start><|[ox](?=[-=]))?(?P<body>-{2,}|={2,}|-\.+-|~{3,})"
                       r"(?P<end>>|[ox](?=[\s|]|$))?")
_TEXT_ARROW_RE = re.compile(r"(?P<start><)?(?P<open>--|==|-\.)(?![-=.>])\s*(?P<text>\"[^\"]*\"|[^\n]*?)\s*"
                            r"(?P<close>-{2,}>|={2,}>|\.-+>|-{3,}|={3,}|\.-+|-{2,}[ox]|={2,}[ox])(?=[\s\w\"]|$)")
_PIPE_LABEL_RE = re.compile(r"\s*\|(?P<label>[^|\n]*)\|")
_LOOKS_LIKE_LINK_RE = re.compile(r"--|==|-\.|~~~")
_SKILL_LABEL_RE = re.compile(r"/?[A-Za-z0-9_.\-]+(?::(?:[A-Za-z0-9_.\-]+|\*))*")


class MermaidError(ValueError):
    """A flowchart statement we cannot read with certainty; its links would be misnumbered."""


@dataclass
class MermaidLink:
    index: int              # Mermaid's own order: the N of `linkStyle N`
    src: str
    dst: str
    label: str | None       # label text without quotes, None when the link has none
    kind: str               # normal, thick, dotted or invisible
    head: str               # ">", "o", "x" or "" at the target end
    both_ways: bool         # <-->
    span: tuple[int, int]   # where the arrow and its label are in the template text

    @property
    def key(self) -> str:
        return f"{self.src}->{self.dst}"


@dataclass
class WorkflowTemplate:
    name: str               # skill folder, e.g. "tdd"
    title: str              # heading text, e.g. "TDD"
    source: str             # the flowchart text between the fences
    labels: dict            # node id -> label (last one given), in order of appearance
    links: list
    known_skills: frozenset = frozenset()   # skill names found beside it under --skills-dir

    def edge_keys(self) -> list[str]:
        """One key per link, 'SRC->DST', with '#2', '#3' for repeated pairs."""
        seen, keys = collections.Counter(), []
        for link in self.links:
            seen[link.key] += 1
            keys.append(link.key if seen[link.key] == 1 else f"{link.key}#{seen[link.key]}")
        return keys

    def skill_nodes(self) -> dict[str, str]:
        """Skill name (lower case) -> the first node labelled with it.

        A label is a skill when it reads like one ("tdd:ci", "/tdd", "tdd:*" for any tdd
        sub-skill) or names a skill that exists under --skills-dir; "Done" or "Logs" stay
        plain nodes.
        """
        found = {}
        for node, label in self.labels.items():
            text = (label or "").strip()
            name = text.lstrip("/").casefold()
            if _SKILL_LABEL_RE.fullmatch(text) and (":" in text or text.startswith("/")
                                                     or name in self.known_skills):
                found.setdefault(name, node)
        return found

    def start_node(self) -> str | None:
        """The first node no link enters; the first node when every node has a way in."""
        entered = {link.dst for link in self.links if link.kind != "invisible"}
        entered |= {link.src for link in self.links if link.both_ways}
        order = list(dict.fromkeys([n for link in self.links for n in (link.src, link.dst)]
                                   + list(self.labels)))
        return next((n for n in order if n not in entered), order[0] if order else None)


def _mask_comments(text: str) -> str:
    """The text with %% comments blanked out, same length, so offsets stay true."""
    return re.sub(r"%%[^\n]*", lambda m: " " * len(m.group(0)), text)


def _statements(masked: str):
    """(start, end) of each statement: split on newlines and ';' outside quotes."""
    start, quoted = 0, False
    for i, ch in enumerate(masked):
        if ch == '"':
            quoted = not quoted
        elif ch == "\n" or (ch == ";" and not quoted):
            yield start, i
            start, quoted = i + 1, False
    yield start, len(masked)


def parse_flowchart(text: str) -> tuple[dict, list]:
    """Nodes (id -> label) and links, in Mermaid's order, of a flowchart's text."""
    masked = _mask_comments(text)
    labels, links = {}, []
    for start, end in _statements(masked):
        line = masked[start:end]
        stripped = line.strip()
        if not stripped:
            continue
        word = re.match(r"[A-Za-z]+", stripped)
        if word and word.group(0) in _FLOW_SKIP_WORDS and (
                len(stripped) == len(word.group(0)) or not stripped[len(word.group(0))].isalnum()):
            if word.group(0) == "end" and len(stripped) > 3 and _LOOKS_LIKE_LINK_RE.search(stripped):
                raise MermaidError(f"cannot read: {stripped}")
            continue
        _parse_chain(line, start, labels, links)
    return labels, links


def _parse_chain(line: str, base: int, labels: dict, links: list) -> None:
    pos = _skip_ws(line, 0)
    group, pos = _parse_group(line, pos, labels)
    if not group:
        if _LOOKS_LIKE_LINK_RE.search(line):
            raise MermaidError(f"cannot read: {line.strip()}")
        return
    while True:
        pos = _skip_ws(line, pos)
        if pos >= len(line):
            return
        arrow = _parse_arrow(line, pos)
        if arrow is None:
            raise MermaidError(f"cannot read: {line.strip()}")
        arrow_end, kind, head, both_ways, label = arrow
        targets, after = _parse_group(line, _skip_ws(line, arrow_end), labels)
        if not targets:
            raise MermaidError(f"link without a target: {line.strip()}")
        for src in group:
            for dst in targets:
                links.append(MermaidLink(len(links), src, dst, label, kind, head, both_ways,
                                         (base + pos, base + arrow_end)))
        group, pos = targets, after


def _skip_ws(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t\r":
        pos += 1
    return pos


def _parse_group(line: str, pos: int, labels: dict) -> tuple[list, int]:
    """node ('&' node)* -> node ids in order, and the position after them."""
    nodes = []
    while True:
        node, after = _parse_node(line, pos, labels)
        if node is None:
            return nodes, pos
        nodes.append(node)
        pos = after
        amp = _skip_ws(line, after)
        if amp < len(line) and line[amp] == "&":
            pos = _skip_ws(line, amp + 1)
            continue
        return nodes, pos


def _parse_node(line: str, pos: int, labels: dict) -> tuple[str | None, int]:
    m = _NODE_ID_RE.match(line, pos)
    if not m:
        return None, pos
    node, pos = m.group(0), m.end()
    labels.setdefault(node, None)
    for opener, closers in _SHAPES:
        if line.startswith(opener, pos):
            label, pos = _shape_label(line, pos + len(opener), closers)
            labels[node] = label
            break
    if line.startswith("@{", pos):                     # Mermaid 11 shape data: A@{ shape: rect }
        close = line.find("}", pos)
        if close < 0:
            raise MermaidError(f"unclosed @{{ in: {line.strip()}")
        pos = close + 1
    m = re.compile(r":::[\w\-]+").match(line, pos)
    return node, (m.end() if m else pos)


def _shape_label(line: str, pos: int, closers: tuple) -> tuple[str, int]:
    inner = _skip_ws(line, pos)
    if inner < len(line) and line[inner] == '"':
        quote_end = line.find('"', inner + 1)
        if quote_end < 0:
            raise MermaidError(f"unclosed quote in: {line.strip()}")
        after = _skip_ws(line, quote_end + 1)
        for closer in closers:
            if line.startswith(closer, after):
                return line[inner + 1:quote_end], after + len(closer)
        raise MermaidError(f"unclosed node shape in: {line.strip()}")
    ends = [(line.find(c, pos), c) for c in closers if line.find(c, pos) >= 0]
    if not ends:
        raise MermaidError(f"unclosed node shape in: {line.strip()}")
    end, closer = min(ends)
    return line[pos:end].strip(), end + len(closer)


def _parse_arrow(line: str, pos: int):
    """(end, kind, head, both_ways, label) of the link at pos, or None."""
    m = _ARROW_RE.match(line, pos)
    if m and (m.group("end") or re.fullmatch(r"-{3,}|={3,}|-\.+-|~{3,}", m.group("body"))):
        body, end = m.group("body"), m.end()
        label = None
        p = _PIPE_LABEL_RE.match(line, end)
        if p:
            label, end = p.group("label").strip(), p.end()
        return end, _link_kind(body), _head(m.group("end")), m.group("start") == "<", _unquote(label)
    m = _TEXT_ARROW_RE.match(line, pos)
    if m:
        close = m.group("close")
        head = close[-1] if close[-1] in ">ox" else ""
        return (m.end(), _link_kind(m.group("open") + close), _head(head), m.group("start") == "<",
                _unquote(m.group("text").strip()))
    return None


def _link_kind(body: str) -> str:
    if "~" in body:
        return "invisible"
    if "=" in body:
        return "thick"
    return "dotted" if "." in body else "normal"


def _head(end: str | None) -> str:
    return end or ""


def _unquote(label: str | None) -> str | None:
    if label is None:
        return None
    label = label.strip()
    if len(label) >= 2 and label[0] == label[-1] == '"':
        label = label[1:-1]
    return label or None


def read_workflow_template(name: str, skill_md: str) -> WorkflowTemplate | None:
    """The first ```mermaid flowchart of a SKILL.md, parsed; None when it has none."""
    for m in re.finditer(r"^```mermaid[ \t]*\n(.*?)^```", skill_md, re.DOTALL | re.MULTILINE):
        body = m.group(1)
        first = next((ln.strip() for ln in _mask_comments(body).splitlines() if ln.strip()), "")
        if not re.match(r"(flowchart|graph)\b", first):
            continue
        labels, links = parse_flowchart(body)
        title = _workflow_title(skill_md[:m.start()])
        title = title or (name.upper() if len(name) <= 4 else name.replace("-", " ").title())
        return WorkflowTemplate(name, title, body, labels, links)
    return None


def _workflow_title(text_before: str) -> str | None:
    """'TDD' from the nearest heading above the diagram that reads '<name> Workflow'."""
    for heading in reversed(re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text_before, re.MULTILINE)):
        m = re.fullmatch(r"(?i)(?:the\s+)?(.*?)\s*workflow", heading.strip())
        if m and m.group(1):
            return m.group(1)
    return None


def load_workflow_templates(skills_dir: Path, warn) -> list[WorkflowTemplate]:
    """Every workflow template under a skills folder; unreadable ones are a warning, not a failure."""
    templates = []
    if not skills_dir.is_dir():
        return templates
    files = sorted(skills_dir.rglob("SKILL.md"))
    known = frozenset(":".join(f.parent.relative_to(skills_dir).parts).casefold() for f in files)
    for skill_md in files:
        name = ":".join(skill_md.parent.relative_to(skills_dir).parts) or skills_dir.name
        try:
            template = read_workflow_template(name, skill_md.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            warn(f"workflow template {skill_md} unreadable ({exc}); skipped")
            continue
        except MermaidError as exc:
            warn(f"workflow template {skill_md}: {exc}; skipped")
            continue
        if template and template.links:
            template.known_skills = known
            templates.append(template)
    return templates


def _shortest_path(template: WorkflowTemplate, src: str, dst: str) -> list[int] | None:
    """Link indexes of the shortest walk src -> dst (a cycle when src == dst); ties by link order."""
    adjacency = collections.defaultdict(list)
    for link in template.links:
        if link.kind == "invisible":
            continue
        adjacency[link.src].append((link.dst, link.index))
        if link.both_ways:
            adjacency[link.dst].append((link.src, link.index))
    parent = {}                      # node -> (previous node, link index) on the first way found
    queue = collections.deque([src])
    while queue:
        node = queue.popleft()
        for nxt, idx in adjacency[node]:
            if nxt in parent or (nxt == src and src != dst):
                continue
            parent[nxt] = (node, idx)
            if nxt == dst:
                path, cur = [], dst
                while True:
                    prev, link_index = parent[cur]
                    path.append(link_index)
                    if prev == src:
                        return path[::-1]
                    cur = prev
            queue.append(nxt)
    return None


def skill_node(nodes: dict[str, str], skill: str) -> str | None:
    """The node standing for a skill: its own label first, else a 'name:*' wildcard."""
    name = skill.lstrip("/").casefold()
    if name in nodes:
        return nodes[name]
    return next((node for label, node in nodes.items()
                 if label.endswith(":*") and name.startswith(label[:-1])), None)


def workflow_edges(templates: list[WorkflowTemplate], skill_sequence: list[str]) -> dict:
    """Per template whose skills were invoked: traversal count per edge key ('SRC->DST')."""
    result = {}
    for template in templates:
        nodes = template.skill_nodes()
        visits = [n for n in (skill_node(nodes, s) for s in skill_sequence) if n is not None]
        if not visits:
            continue
        keys = template.edge_keys()
        counts = collections.Counter()
        start = template.start_node()
        walk = ([start] if start is not None and start != visits[0] else []) + visits
        for a, b in zip(walk, walk[1:]):
            for idx in _shortest_path(template, a, b) or []:
                counts[keys[idx]] += 1
        result[template.name] = {k: counts[k] for k in keys if counts[k]}
    return result


def annotate_workflow(template: WorkflowTemplate, edges: dict, invoked_skills: set) -> str:
    """The template with counters on traversed edges, linkStyle colours and skill node fills."""
    keys = template.edge_keys()
    text = template.source
    by_span = collections.defaultdict(list)      # an arrow with & on either side is several links
    for link in template.links:
        by_span[link.span].append(link)
    for span in sorted(by_span, reverse=True):
        links = by_span[span]
        counts = {as_int(edges.get(keys[link.index])) for link in links}
        count = counts.pop() if len(counts) == 1 else 0      # one label cannot tell unequal counts
        link = links[0]
        if count and link.kind != "invisible":
            label = f"{link.label} ({count}x)" if link.label else f"{count}x"
            text = text[:span[0]] + _arrow_text(link) + f'|"{_mermaid_text(label)}"|' + text[span[1]:]
    green, red, grey = [], [], []
    for link in template.links:
        if not as_int(edges.get(keys[link.index])):
            grey.append(link.index)
        elif link.label and FAILURE_LABEL_RE.search(link.label):
            red.append(link.index)
        else:
            green.append(link.index)
    lines = [text.rstrip("\n")]
    for indexes, colour, width in ((green, LINK_GREEN, 3), (red, LINK_RED, 3), (grey, LINK_GREY, 1)):
        if indexes:
            lines.append(f"    linkStyle {','.join(map(str, indexes))} stroke:{colour},stroke-width:{width}px")
    nodes = template.skill_nodes()
    invoked = {skill_node(nodes, s) for s in invoked_skills}
    for node in dict.fromkeys(nodes.values()):
        fill, stroke = (LINK_GREEN, "#2E7D32") if node in invoked else (LINK_GREY, "#616161")
        lines.append(f"    style {node} fill:{fill},stroke:{stroke},color:#fff")
    return "\n".join(lines) + "\n"


def _arrow_text(link: MermaidLink) -> str:
    """A link's arrow written anew in the |label| form, keeping its kind and heads."""
    tail = "<" if link.both_ways else ""
    if link.kind == "thick":
        return tail + ("==" + link.head if link.head else "===")
    if link.kind == "dotted":
        return tail + "-.-" + link.head
    return tail + ("--" + link.head if link.head else "---")


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def workflow_sections(templates: list[WorkflowTemplate], stats: dict) -> dict[str, str]:
    """Heading title -> fenced annotated diagram, for each template the session's skills touched."""
    edges_by_template = as_dict(stats.get("workflow_edges"))
    invoked = {as_str(s.get("skill")) for s in stats.get("skills_invoked") or [] if isinstance(s, dict)}
    sections = {}
    for template in templates:
        if template.name not in edges_by_template:
            continue
        diagram = annotate_workflow(template, as_dict(edges_by_template[template.name]), invoked)
        sections[template.title] = f"```mermaid\n{diagram}```\n"
    return sections


# ── Formatting helpers shared by the text outputs ─────────────────────────────

def human_count(n: int) -> str:
    """241 -> '241', 241558 -> '241.6K', 56722690 -> '56.7M', 1.4e9 -> '1.4B'."""
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return str(n)


def format_duration(minutes: float | None) -> str:
    """78.4 -> '1h 18m', 45 -> '45m', 0.2 -> '<1m'."""
    if minutes is None:
        return "-"
    whole = int(round(minutes))
    if minutes < 1:
        return "<1m"
    if whole < 60:
        return f"{whole}m"
    return f"{whole // 60}h {whole % 60:02d}m"


def cents(dollars) -> int:
    """Dollars to whole cents, half up, from the decimal text so 12.445 becomes 1245."""
    if dollars is None or not math.isfinite(dollars):
        return 0
    return int(decimal.Decimal(repr(float(dollars))).quantize(decimal.Decimal("0.01"),
                                                              decimal.ROUND_HALF_UP) * 100)


def format_cents(value: int) -> str:
    return f"${value // 100:,}.{value % 100:02d}"


def format_cost(dollars: float | None, complete: bool = True) -> str:
    """12.4451 -> '$12.45'; rounded half up like the summary's sums, so the two always agree.

    A cost that leaves out models with no price is a lower bound, '≥ $12.45'; with nothing
    priced at all it is 'unknown', never '$0.00'."""
    if dollars is None or (not complete and cents(dollars) == 0):
        return "unknown"
    return ("" if complete else "≥ ") + format_cents(cents(dollars))


def cost_complete(stats: dict) -> bool:
    """Whether a stats dict's (or a row's) cost covers every model it used."""
    return not stats.get("unpriced_models") and stats.get("cost_complete", True) is not False


class Tally:
    """Sessions (or models, or days) summed: how many, their tokens, their cost and whether that
    cost covers everything. The one place where sums of sessions are made (list rollups, the
    summary comment, the extract's tables), and so the one rule for rounding them: a total cost
    is the exact sum, rounded to 4 decimals (cost_usd); only where a total is printed as the
    addition of its printed parts (the summary's verification) is it the sum of the parts as
    printed, each in whole cents, half up (shown_cost_usd), so that the addition is right."""

    def __init__(self):
        self.count = 0
        self.tokens = dict.fromkeys(TOKEN_KINDS, 0)
        self.exact = 0.0
        self.cents = 0
        self.complete = True
        self.unpriced = set()

    def add(self, tokens: dict, cost: float | None, complete: bool = True, unpriced=()) -> "Tally":
        self.count += 1
        for kind in TOKEN_KINDS:
            self.tokens[kind] += as_int(tokens.get(kind))
        self.exact += cost or 0
        self.cents += cents(cost)
        self.complete = self.complete and complete and cost is not None
        self.unpriced |= set(unpriced)
        return self

    def add_session(self, stats: dict) -> "Tally":
        """A session's stats (or a list row): its total tokens and cost."""
        return self.add(as_dict(stats.get("total_tokens")), stats.get("estimated_cost_usd"),
                        cost_complete(stats), stats.get("unpriced_models") or ())

    @property
    def cost_usd(self) -> float:
        return round(self.exact, 4)

    @property
    def shown_cost_usd(self) -> float:
        return self.cents / 100

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())


def unpriced_note(models) -> str:
    """'no price for claude-x, claude-y' or ''."""
    return "no price for " + ", ".join(sorted(models)) if models else ""


def short_model(model: str) -> str:
    """'claude-opus-4-6-20260101' -> 'opus-4-6'."""
    m = normalize_model_id(model)
    return m[len("claude-"):] if m.startswith("claude-") else m


# ── List ──────────────────────────────────────────────────────────────────────

class ListRow(TypedDict):
    """One session as `list` shows it; the keys and values it shares with Stats are the same."""
    session_id: str
    project: str
    project_dir: str
    branch: str | None
    started_at: str | None
    ended_at: str | None
    duration_minutes: float
    active_minutes: float
    turns: int
    models: list[str]
    total_tokens: Tokens
    estimated_cost_usd: float | None
    cost_complete: bool
    unpriced_models: list[str]
    claude_code_cost_usd: float | None
    claude_code_agrees: bool | None
    subagents: int
    title: str | None
    pr: str | None                  # owner/repo#N of the session's last pr-link record
    by_model: dict
    resume_command: str | None


def list_row(facts: SessionFacts, pricing: Pricing) -> ListRow:
    """The row `list` prints for one session; keys and values match the stats JSON.

    It takes only the parts of compute_stats a row shows (no skills, commits or problems),
    because list does this for every session on the machine.
    """
    model_rows, totals_fields, record = priced_session(facts, pricing)
    return {
        "session_id": facts.session_id,
        "project": _most_common(facts.cwds) or facts.project_dir,
        "project_dir": facts.project_dir,
        "branch": _most_common(facts.branches),
        **session_times(facts),
        "models": sorted(model_rows),
        **totals_fields,
        "claude_code_cost_usd": record and record["total_cost_usd"],
        "claude_code_agrees": record and record["agrees"],
        "subagents": len(session_subagents(facts, pricing)),
        "title": facts.title,
        "pr": f"{facts.pr_links[-1][0]}#{facts.pr_links[-1][1]}" if facts.pr_links else None,
        "by_model": {name: {**_tokens_of(row), "cost_usd": row["cost_usd"]} for name, row in model_rows.items()},
        "resume_command": f"claude -r {facts.session_id}",
    }


def row_from_stats(stats: dict) -> dict:
    """The list row of a session known only from its archived stats (its transcript is gone)."""
    cwd = stats.get("cwd")
    models = as_dict(stats.get("models"))
    record = as_dict(stats.get("claude_code_cost"))
    return {
        "session_id": stats["session_id"], "project": cwd or stats.get("project"),
        "project_dir": encode_project_dir(cwd) if cwd else as_str(stats.get("project")),
        "branch": stats.get("branch"),
        **{k: stats.get(k) for k in ("started_at", "ended_at", "duration_minutes", "active_minutes", "turns")},
        "models": sorted(models), "total_tokens": stats["total_tokens"],
        "estimated_cost_usd": stats.get("estimated_cost_usd"), "cost_complete": cost_complete(stats),
        "unpriced_models": list(stats.get("unpriced_models") or []),
        "claude_code_cost_usd": record.get("total_cost_usd"), "claude_code_agrees": record.get("agrees"),
        "subagents": list_total(stats, "subagents"), "title": stats.get("title"),
        "pr": pr_of(stats),
        "by_model": {name: {**_tokens_of(row), "cost_usd": as_dict(row).get("cost_usd")}
                     for name, row in models.items()},
        "resume_command": None, "archived": True,
    }


def pr_of(stats: dict) -> str | None:
    """owner/repo#N of the last PR a session's pr-link records name (kept in local stats only)."""
    links = [link for link in stats.get("pr_links") or [] if isinstance(link, dict)]
    return f"{as_str(links[-1].get('repository'))}#{as_int(links[-1].get('number'))}" if links else None


def parse_date_bound(value: str, end_of_day: bool) -> float:
    """'2026-02-15' or an ISO timestamp -> epoch; a bare date covers the whole day."""
    stamp = parse_ts(value if "T" in value else value + "T00:00:00Z")
    if stamp is None:
        raise UserError(f"not a date: {value!r} (use YYYY-MM-DD)", EXIT_USAGE)
    if end_of_day and "T" not in value:
        stamp += 86400 - 0.001
    return stamp


def filter_sessions(rows: list[dict], since: str | None, until: str | None,
                    project: str | None) -> list[dict]:
    lo = parse_date_bound(since, False) if since else None
    hi = parse_date_bound(until, True) if until else None
    kept = []
    for row in rows:
        start = parse_ts(row["started_at"]) if row["started_at"] else None
        if lo is not None and (start is None or start < lo):
            continue
        if hi is not None and (start is None or start > hi):
            continue
        if project and project.casefold() not in (row["project"] or "").casefold() \
                and project.casefold() not in row["project_dir"].casefold():
            continue
        kept.append(row)
    return kept


def render_session_table(rows: list[dict], width: int | None = None) -> str:
    """A plain-text table, newest session first, for humans at a terminal: with a width, the
    resume command, then turns, duration and branch go first, then ids and names are shortened."""
    if not rows:
        return "No sessions found.\n"
    header = ["SESSION", "STARTED (UTC)", "DURATION", "TURNS", "TOKENS", "COST", "MODELS",
              "BRANCH", "PR", "PROJECT", "RESUME"]
    with_pr = any(row.get("pr") for row in rows)
    if not with_pr:
        header.remove("PR")
    table = [header]
    for row in rows:
        tokens = sum(row["total_tokens"].values())
        cost = format_cost(row["estimated_cost_usd"], row["cost_complete"])
        table.append([
            row["session_id"],
            (row["started_at"] or "-").replace("T", " ").rstrip("Z")[:16],
            format_duration(row["duration_minutes"]),
            str(row["turns"]),
            human_count(tokens),
            cost,
            ",".join(short_model(m) for m in row["models"]) or "-",
            _one_line(row["branch"] or "-"),
            *([_one_line(row.get("pr") or "-")] if with_pr else []),
            _one_line(row["project"] or "-"),
            row["resume_command"] or "-",
        ])
    at = header.index
    lines = fit_table(table, width, shrink=[(at("PROJECT"), 20, True), (0, 9, False), (at("MODELS"), 12, False),
                                            (at("PROJECT"), 10, True)],
                      drop=[at("RESUME"), at("TURNS"), at("DURATION"), *([at("PR")] if with_pr else []),
                            at("BRANCH")]).rstrip("\n").split("\n")
    total_cost = sum(r["estimated_cost_usd"] or 0 for r in rows)
    unpriced = {m for r in rows for m in r["unpriced_models"]}
    complete = not unpriced and all(r["cost_complete"] for r in rows)
    lines.append("")
    noun = "session" if len(rows) == 1 else "sessions"
    lines.append(f"{len(rows)} {noun}, {format_cost(total_cost, complete)} estimated"
                 + (f" ({unpriced_note(unpriced)}: their tokens are not in the cost)" if unpriced else ""))
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return terminal_text(" ".join(str(text).split()))


# A transcript's folder, branch or model name is data: in a terminal, an escape sequence in it
# could move the cursor, set the window title or write to the clipboard, and a bidirectional
# override could reorder what is shown. Control characters become visible stand-ins (C0 as their
# control pictures, DEL and C1 as U+FFFD), and so do the bidirectional controls.
_TERMINAL_UNSAFE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: str) -> str:
    """Text that is safe to print: no control character but tab and newline is left as it is."""
    return _TERMINAL_UNSAFE_RE.sub(lambda m: chr(0x2400 + ord(m.group())) if m.group() < "\x20" else "\ufffd", text)


# JSON escapes C0 itself; DEL, C1, the bidirectional controls and the line separators are valid
# in a JSON string as they are, so they are written as \\u escapes: the same value, nothing a
# terminal acts on. NaN and infinities are not JSON: none may be written (allow_nan=False).
_JSON_UNSAFE_RE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def json_text(obj, indent: int | None = 2, sort_keys: bool = False) -> str:
    """obj as JSON text for a file or a terminal, ending with a newline."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False, sort_keys=sort_keys)
    return _JSON_UNSAFE_RE.sub(lambda m: "\\u%04x" % ord(m.group()), text) + "\n"


# ── rollups: list --by day|week|month|project|branch|repository|skill|model ──
#
# Sums of the list rows' own numbers, so that a rollup always adds up to the plain list. Days,
# weeks (Monday to Sunday, named by their Monday) and months are cut in --timezone. By model, a
# session counts in each model it used, with that model's tokens and cost. By skill, a session
# counts once in each skill it ran, with its whole tokens and cost (a session's cost is not split
# between its skills), and in "(none)" when it ran none: skill groups may add up to more than the
# total. A row's repository and skills are filled in by `list` when asked for (see run_list).

ROLLUP_KEYS = ("day", "week", "month", "project", "branch", "repository", "skill", "model")
NO_VALUE = "(none)"


def rollup(rows: list[dict], by: list[str], tz) -> dict:
    """Groups of sessions by the given keys, each with sessions, tokens and cost; and the total."""
    groups = {}
    for row in rows:
        keys = {key: _rollup_key(row, key, tz) for key in by if key not in ("model", "skill")}
        if "skill" in by:
            for skill in sorted(set(row.get("skills") or [])) or [NO_VALUE]:
                groups.setdefault(tuple({**keys, "skill": skill}[k] for k in by), Tally()).add_session(row)
            continue
        if "model" not in by:
            groups.setdefault(tuple(keys[k] for k in by), Tally()).add_session(row)
            continue
        for model, m in sorted(as_dict(row.get("by_model")).items()):
            group_key = tuple({**keys, "model": model}[k] for k in by)
            groups.setdefault(group_key, Tally()).add(m, m["cost_usd"], m["cost_usd"] is not None,
                                                      [] if m["cost_usd"] is not None else [model])
    total = Tally()
    for row in rows:
        total.add_session(row)
    return {"by": by, "groups": [{**dict(zip(by, key)), **_group(groups[key])} for key in sorted(groups)],
            "total": _group(total)}


def _group(tally: Tally) -> dict:
    return {"sessions": tally.count, "total_tokens": tally.tokens, "estimated_cost_usd": tally.cost_usd,
            "cost_complete": tally.complete, "unpriced_models": sorted(tally.unpriced)}


def _rollup_key(row: dict, key: str, tz) -> str:
    if key == "project":
        return row.get("project") or row.get("project_dir") or "unknown"
    if key == "branch":
        return row.get("branch") or NO_VALUE
    if key == "repository":
        return row.get("repository") or as_str(row.get("pr")).partition("#")[0] or "unknown"
    stamp = parse_ts(row.get("started_at"))
    if stamp is None:
        return "unknown"
    local = datetime.datetime.fromtimestamp(stamp, tz)
    if key == "day":
        return local.strftime("%Y-%m-%d")
    if key == "week":
        return (local.date() - datetime.timedelta(days=local.weekday())).isoformat()
    return local.strftime("%Y-%m")


def render_rollup(report: dict, width: int | None = None) -> str:
    """The rollup as a table, its total last; fitted to `width` columns when given."""
    by = report["by"]
    header = [("WEEK OF" if k == "week" else k.upper()) for k in by] + \
        ["SESSIONS", "INPUT", "OUTPUT", "CACHE CREATE", "CACHE READ", "COST"]
    lines = []
    for group in report["groups"] + [report["total"]]:
        t = group["total_tokens"]
        keys = [_one_line(group.get(k, "")) for k in by] if group is not report["total"] else \
            ["TOTAL"] + [""] * (len(by) - 1)
        lines.append(keys + [str(group["sessions"]), human_count(t["input"]), human_count(t["output"]),
                             human_count(t["cache_creation"]), human_count(t["cache_read"]),
                             format_cost(group["estimated_cost_usd"], group["cost_complete"])])
    text = fit_table([header] + lines, width, shrink=[(i, 12, by[i] == "project") for i in range(len(by))],
                     drop=[len(by) + 3, len(by) + 4])
    unpriced = report["total"]["unpriced_models"]
    return text + (f"\n(≥: {unpriced_note(unpriced)}; their tokens are counted, their cost is not)\n"
                   if unpriced else "")


def fit_table(table: list[list[str]], width: int | None, shrink: list = (), drop: list = ()) -> str:
    """Left-aligned columns two spaces apart. With a width, the columns in `drop` go first (in
    that order) until the rows fit, then those in `shrink`, as (column, narrowest, keep the end),
    are cut in turn with an ellipsis (at the start for paths, whose end says the most)."""
    keep = list(range(len(table[0])))
    widths = [max(len(row[i]) for row in table) for i in keep]
    cut_start = set()

    def total():
        return sum(widths[i] for i in keep) + 2 * (len(keep) - 1)

    if width:
        for column in drop:
            if total() <= width:
                break
            keep.remove(column)
        for column, narrowest, keep_end in shrink:
            excess = total() - width
            if excess <= 0:
                break
            widths[column] = min(widths[column], max(widths[column] - excess, narrowest, len(table[0][column])))
            if keep_end:
                cut_start.add(column)

    def cell(row, i):
        text = row[i]
        if len(text) <= widths[i]:
            return text
        return "…" + text[len(text) - widths[i] + 1:] if i in cut_start else text[:widths[i] - 1] + "…"

    lines = ["  ".join(cell(row, i).ljust(widths[i]) for i in keep).rstrip() for row in table]
    dropped = [table[0][i] for i in range(len(table[0])) if i not in keep]
    if dropped:      # a column that silently vanished would read as one the data lacks
        lines += textwrap.wrap(f"({', '.join(dropped)} left out to fit {width} columns; --wide shows every "
                               "column)", width, break_on_hyphens=False)
    return "\n".join(lines) + "\n"


# ── What leaves the machine: the privacy gate ─────────────────────────────────
#
# A comment on a public PR is world-readable, and GitHub keeps every edit of it. So everything
# that leaves the machine (session and summary comments, extract files, OpenTelemetry spans) is
# made from outbound_stats(stats, privacy) and from nothing else: OUTBOUND below lists every field
# that may go out and the rule that shapes it. A field it does not name never leaves: the title
# (it may be the first prompt), a subagent's call id, whatever a later version adds.
#
# Three levels (--privacy; the default follows the repository's visibility on GitHub):
#   public  numbers and names only: models, tokens, costs, tools, skills, subagent types,
#           durations, commit SHAs; commit subjects only of the commits GitHub shows on the PR;
#           a problem as its tool, its error class and its path inside the repository; no text
#           written in the session, no path outside the repository, no host, no email. The
#           default for a public repository and whenever the visibility is unknown.
#   team    the full report, with secrets and personal details removed: home folders as ~, the
#           user's name, emails, private IPs and internal host names masked; the working folder
#           as the repository's name. The default for a private or internal repository.
#   full    team, with paths, hosts and emails as they are; on request only.
# At every level secrets are removed (redact_secrets) and no prompt is ever included.

PRIVACY_LEVELS = ("public", "team", "full")
PRIVACY_TEXT = {"public": "numbers and names only",
                "team": "secrets and personal details removed",
                "full": "secrets removed; paths, hosts and emails as they are"}

# Names too common to be someone's (a machine's service account, a container's user): masking
# them would mangle ordinary words.
_GENERIC_USERS = frozenset("""root user users runner ubuntu admin administrator dev developer app node home
vscode codespace codespaces build builder ci jenkins docker default test tester me claude shared
guest nobody www data""".split())


@dataclass(frozen=True)
class Privacy:
    """How much may leave, and what the gate must know to decide it."""
    level: str = "public"
    repo: str | None = None               # OWNER/NAME the output is about
    pr_branch: str | None = None          # the PR's head branch: GitHub shows it
    pr_commits: frozenset = frozenset()   # SHAs of the commits GitHub shows on the PR
    people: frozenset = frozenset()       # user names to remove, lower-case


def machine_people() -> frozenset:
    """This machine's user names: $USER, $LOGNAME, the home folder's name."""
    names = {os.environ.get("USER", ""), os.environ.get("LOGNAME", ""), Path.home().name}
    return frozenset(n.lower() for n in names if n)


_HOME_RE = re.compile(r"(?:/(?:home|Users)/|\b[A-Za-z]:\\+Users\\+)([^/\\\s'\"`:;,)]+)")
_ROOT_HOME_RE = re.compile(r"(?<![\w.~/-])/root(?=/|\b)")
_EMAIL_RE = re.compile(r"(?<![\w.+\-])([A-Za-z0-9][A-Za-z0-9._%+\-]*)@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+"
                       r"[A-Za-z]{2,})\b")
_IPV4_RE = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_IPV6_PRIVATE_RE = re.compile(r"(?i)(?<![0-9a-f:])(?:f[cd][0-9a-f]{2}|fe80):[0-9a-f:]*[0-9a-f]")
# An underscore ends a host name too: `mcp__build.corp.internal__deploy` names one.
_INTERNAL_HOST_RE = re.compile(r"(?i)(?<![a-z0-9.\-])(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?:local|internal|intranet|"
                               r"corp|lan|localdomain|home\.arpa|cluster\.local|svc|private|priv)(?![a-z0-9\-])")
_URL_HOST_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s:@?#'\"`]+)")


def people_in(stats) -> frozenset:
    """User names the stats give away: the owners of home folders in any of their strings."""
    found = set()
    for text in _strings(stats):
        found.update(m.group(1).lower() for m in _HOME_RE.finditer(text))
    return frozenset(found)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def scrub(text, privacy: Privacy) -> str:
    """Text from a session as it may leave: secrets removed at every level; at team and public
    also home folders, the user's names, emails, private IPs and internal hosts; at public every
    host and IP address."""
    text = redact_secrets(str(text))
    if privacy.level == "full":
        return text
    text = _ROOT_HOME_RE.sub("~", _HOME_RE.sub("~", text))
    text = _EMAIL_RE.sub(lambda m: m.group() if m.group(1) == "git" else "<email>", text)
    public = privacy.level == "public"
    text = _IPV4_RE.sub(lambda m: _masked_ip(m, public), text)
    text = _IPV6_PRIVATE_RE.sub("<private-ip>", text)
    text = _INTERNAL_HOST_RE.sub("<internal-host>", text)
    text = _URL_HOST_RE.sub(lambda m: _masked_url_host(m, public), text)
    people = [p for p in privacy.people if len(p) >= 3 and p not in _GENERIC_USERS]
    if people:
        names = "|".join(re.escape(p) for p in sorted(people, key=len, reverse=True))
        text = re.sub(rf"(?i)(?<![A-Za-z0-9])(?:{names})(?![A-Za-z0-9])", "<user>", text)
    return text


def _masked_ip(m: re.Match, public: bool) -> str:
    a, b = int(m.group(1)), int(m.group(2))
    if a == 127 or m.group() == "0.0.0.0":
        return m.group()                  # loopback: the same on every machine
    private = a == 10 or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168) or (a == 169 and b == 254) \
        or (a == 100 and 64 <= b <= 127)
    return "<private-ip>" if private else "<ip>" if public else m.group()


def _masked_url_host(m: re.Match, public: bool) -> str:
    host = m.group(2)
    if host.startswith("<") or host.lower() in ("localhost", "127.0.0.1"):
        return m.group()
    if public:
        return m.group(1) + "<host>"
    return m.group() if "." in host else m.group(1) + "<internal-host>"


def outbound_stats(stats: dict, privacy: Privacy) -> dict:
    """The stats as they may leave at this level: only the fields OUTBOUND names, each by its
    rule, every string scrubbed. The one way session data reaches a comment, a file or a span."""
    stats = as_dict(stats)
    privacy = dataclasses.replace(privacy, people=privacy.people | people_in(stats))
    out = {}
    for name, rule in OUTBOUND.items():
        if name in stats:
            value = rule(stats[name], privacy, stats)
            if value is not _WITHHELD:
                out[name] = value
    out["privacy"] = privacy.level
    return out


_WITHHELD = object()      # what a rule returns for a field that does not go out at this level


def _number(value, privacy, stats):
    """Counts, costs, minutes and flags: finite numbers, booleans or null, nothing else."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    return _WITHHELD


def _names(value, privacy, stats):
    """Names and numbers in any nesting (models, tools, skills, versions, Claude Code's record):
    every string scrubbed, every number finite."""
    if isinstance(value, str):
        return scrub(value, privacy)
    if isinstance(value, dict):
        kept = {scrub(k, privacy): _names(v, privacy, stats) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not _WITHHELD}
    if isinstance(value, list):
        return [v for v in (_names(item, privacy, stats) for item in value) if v is not _WITHHELD]
    return _number(value, privacy, stats)


def _identifier(value, privacy, stats):
    return value if isinstance(value, str) and SAFE_ID_RE.fullmatch(value) else _WITHHELD


GITHUB_LOGIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}(?:\[bot\])?")


def _login(value, privacy, stats):
    """A GitHub login (who posted or ran a session): GitHub shows it beside the comment anyway."""
    return value if isinstance(value, str) and GITHUB_LOGIN_RE.fullmatch(value) else _WITHHELD


def _timestamp(value, privacy, stats):
    return format_ts(parse_ts(value)) if parse_ts(value) is not None else None


def _target(value, privacy, stats):
    value = as_dict(value)
    if value.get("type") in ("pr", "issue") and type(value.get("number")) is int:
        return {"type": value["type"], "number": value["number"]}
    return None


def _project(value, privacy, stats):
    """OWNER/NAME as it is; a folder as the working folder is shown."""
    if privacy.repo:
        return privacy.repo
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+", value):
        return value
    return _working_folder(value, privacy, stats)


def _working_folder(value, privacy, stats):
    """The repository's name when the output is about one; else the folder: its path at full and
    at team (the home folder as ~, the user's name masked), its own name at public."""
    if not isinstance(value, str) or not value:
        return None
    if privacy.repo and privacy.level != "full":
        return privacy.repo
    if privacy.level != "public":
        return scrub(value, privacy)
    return scrub(value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or value, privacy)


def _branch(value, privacy, stats):
    """The PR's own branch is public on GitHub: as it is. Any other branch: scrubbed, and at
    public not at all (a branch name is text written in the session)."""
    if not isinstance(value, str) or not value:
        return None
    if value == privacy.pr_branch:
        return redact_secrets(value)
    return None if privacy.level == "public" else scrub(value, privacy)


def _commits(value, privacy, stats):
    """SHAs always; subjects at team and full, and at public for the commits GitHub shows on
    the PR (they are public there)."""
    out = []
    for commit in value if isinstance(value, list) else []:
        sha = as_str(as_dict(commit).get("commit_id"))
        if not re.fullmatch(r"[0-9a-f]{7,40}", sha):
            continue
        entry = {"commit_id": sha}
        shown = privacy.level != "public" or any(full.startswith(sha) for full in privacy.pr_commits)
        if shown and isinstance(commit.get("message"), str):
            entry["message"] = scrub(commit["message"], privacy)
        if commit.get("by") == "user":
            entry["by"] = "user"
        out.append(entry)
    return out


def _subagents(value, privacy, stats):
    """Each subagent's id, type, model and numbers; its description (written by the model)
    at team and full. Never its prompt, never its call id."""
    out = []
    for agent in value if isinstance(value, list) else []:
        agent = as_dict(agent)
        entry = {key: _names(agent[key], privacy, stats) for key in
                 ("type", "model", "tokens", "cost_usd", "messages", "transcript_missing", "reported_tokens")
                 if key in agent}
        entry = {"agent_id": _identifier(agent.get("agent_id"), privacy, stats), **entry}
        if entry["agent_id"] is _WITHHELD:
            entry["agent_id"] = None
        if privacy.level != "public" and agent.get("description") and isinstance(agent["description"], str):
            entry["description"] = scrub(agent["description"], privacy)
        out.append({k: v for k, v in entry.items() if v is not _WITHHELD})
    return out


def _problems(value, privacy, stats):
    """A problem the stats derived from failed calls has parts (tool, error class, command or
    target): at public it is told by its tool, class and path inside the repository; at team and
    full by the same with the command or target, scrubbed. A problem an agent described in words
    (--problems, or a comment of an older version) is those words, scrubbed, except at public."""
    out = []
    for problem in value if isinstance(value, list) else []:
        problem = as_dict(problem)
        entry = {"resolved": problem.get("resolved") is True, "iterations": as_int(problem.get("iterations"))}
        tool = problem.get("tool")
        if isinstance(tool, str) and tool:
            tool = scrub(tool, privacy)
            error = scrub(as_str(problem.get("error")) or "failed", privacy)
            where = _repo_path(as_str(problem.get("path")), privacy, stats)
            entry.update(tool=tool, error=error)
            if where:
                entry["path"] = where
            if privacy.level == "public":
                what = where
            elif tool == "Bash":
                what = scrub(as_str(problem.get("command")), privacy)
                entry["command"] = what
            else:
                what = where or scrub(as_str(problem.get("target")), privacy)     # a pattern or URL
            entry["description"] = f"{tool} failed" + (f" ({error})" if error != "failed" else "") \
                + (f": {shorten(what, 80)}" if what else "")
        elif privacy.level == "public":
            entry["description"] = "a problem described in the session (shown at team level)"
        else:
            entry["description"] = shorten(scrub(as_str(problem.get("description")), privacy), 200)
        out.append(entry)
    return out


def _repo_path(path: str, privacy: Privacy, stats: dict) -> str | None:
    """A file path as the outside may see it: inside the repository, relative to its root;
    outside it, nothing at public, the scrubbed path at team, the path at full."""
    if not path or "://" in path:
        return None
    if privacy.level == "full":
        return redact_secrets(path)
    root = as_str(stats.get("cwd")).rstrip("/")
    name = (privacy.repo or "").rsplit("/", 1)[-1]
    if name and f"/{name}/" in root + "/":            # the repository's root, above a subfolder
        root = root[:(root + "/").rindex(f"/{name}/") + len(name) + 1]
    if root and (path == root or path.startswith(root + "/")):
        return scrub(path[len(root) + 1:] or ".", privacy)
    if not path.startswith(("/", "~", "\\")) and not re.match(r"[A-Za-z]:\\", path) and ".." not in path.split("/"):
        return scrub(path, privacy)                   # already relative to the working folder
    return None if privacy.level == "public" else scrub(path, privacy)


# Every field that may leave the machine, and its rule. Anything else stays.
OUTBOUND = {
    "session_id": _identifier, "session_id_short": _identifier, "schema_version": _number,
    "project": _project, "branch": _branch, "target": _target,
    "started_at": _timestamp, "ended_at": _timestamp, "duration_minutes": _number,
    "active_minutes": _number, "turns": _number,
    "models": _names, "total_tokens": _names, "estimated_cost_usd": _number, "cost_complete": _number,
    "unpriced_models": _names, "claude_code_cost": _names,
    "transcript_estimate": _names, "outside_transcript": _names, "hidden_calls": _names,
    "tools": _names, "tools_by_thread": _names, "skills_invoked": _names,
    "subagents": _subagents, "commits": _commits, "problems_faced": _problems,
    "workflow_edges": _names, "pricing_date": _names, "claude_code_versions": _names,
    "cwd": _working_folder, "compactions": _number, "capture": _names, "omitted": _names,
    "github_actor": _login, "session_author": _login,
}


# ── Markdown rendering: the per-session and summary comments ──────────────────
#
# Everything here is pure: a stats dict in, comment text out, and back again. Text that comes
# from data (branch names, commit messages, skill names, problems, descriptions) passes through
# md_text or md_code so it cannot break a table, a code span, a <details> block or a marker.

COMMENT_LIMIT = 65_536                 # GitHub rejects longer comment bodies with a 422
SESSION_MARKER = "<!-- SESSION:{short} -->"
SUMMARY_MARKER = "<!-- SESSION_SUMMARY -->"
SESSION_DATA_TITLE = "Session Data (JSON)"
SUMMARY_DATA_TITLE = "Summary Data (JSON)"
_SESSION_MARKER_RE = re.compile(r"<!-- SESSION:([0-9A-Za-z_\-]{1,64}) -->")
TRUSTED_ASSOCIATIONS = ("OWNER", "MEMBER", "COLLABORATOR")

SESSION_COMMENT_TEMPLATE = """\
{marker}
## Claude Code Session Report

**TL;DR:** {tldr}

**Session:** {short} | **Branch:** {branch} | **Duration:** {duration}

### Token Usage

{token_table}{unpriced}
### Subagents

{subagents}
### Skills & Tools

{skills}
<details><summary>Tool Usage</summary>

{tools}
</details>
{workflows}
### Problems Faced

{problems}
### Commits

{commits}
{privacy}
<details><summary>{data_title}</summary>

```json
{data}
```

</details>
"""

SUMMARY_COMMENT_TEMPLATE = """\
{marker}
## Claude Code {kind} Summary

**TL;DR:** {tldr}

**Sessions:** {sessions} | **Total Cost:** {cost} | **Commits:** {commits}

### Aggregate Token Usage

{token_table}
### Session History

{history}
### Totals Verification

{verification}
{privacy}
<details><summary>{data_title}</summary>

```json
{data}
```

</details>
"""

_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]|~#!])")


def md_text(value, limit: int = 200) -> str:
    """Data as inert Markdown text on one line: no HTML, no emphasis, no table break, no @-ping."""
    text = shorten(" ".join(str(value).split()), limit)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCTUATION.sub(r"\\\1", text)
    return text.replace("@", "@&#8203;")


def md_code(value, in_table: bool = False, limit: int = 120) -> str:
    """Data as a code span on one line, fenced with more backticks than it contains; '-' for none."""
    text = shorten(" ".join(str(value).split()), limit) if value is not None else ""
    if not text:
        return "-"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    if text.startswith("`") or text.endswith("`"):
        text = f" {text} "
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{text}{fence}"


def format_tokens(n) -> str:
    """Token counts as the comments show them: 241,558 below a million, then 56.7M and 1.4B."""
    n = as_int(n)
    if n >= 1_000_000_000:
        return f"{n / 1_000_000_000:.1f}B"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{n:,}"


def md_table(header: list[str], rows: list[list[str]], omitted: int = 0, noun: str = "rows") -> str:
    """A GFM table; cells must already be escaped. Ends with one newline."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * (len(h) + 2) for h in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if omitted:
        lines.append("")
        lines.append(f"_…and {omitted:,} more {noun} (in the JSON below)._")
    return "\n".join(lines) + "\n"


def data_block(obj, indent: int | None) -> str:
    """JSON for the fenced block, characters as they are: in a fenced block '<', '>' and '&' are inert,
    and no line of json.dumps' output can start with the backticks that would close the fence.
    The data must have been through inert_data, so no string needs a \\u00XX escape."""
    return json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False, separators=None if indent else (",", ":"))


# Bodies go to GitHub and come back through gh, whose response sanitizer rewrites every \u00XX in
# the JSON GitHub returns (C0 and C1 controls arrive as such escapes; gh 2.23, Debian 12's, also
# mangles a literal backslash before one). So a body holds no control character but the newline,
# and no text `\u00`: both are replaced, in data and Markdown alike, before rendering.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")    # all but tab, newline, CR
_GH_ESCAPE_RE = re.compile(r"\\u00([0-9A-Fa-f]{2})?")


def _control_picture(match: re.Match) -> str:
    code = ord(match.group())
    return chr(0x2400 + code) if code < 0x20 else "\u2421" if code == 0x7f else "\ufffd"


def inert_text(text: str, whole_body: bool = False) -> str:
    """ESC -> '␛' (C0 as their control pictures, DEL '␡', C1 '\ufffd'), and a literal \\u0026 -> \\u{0026}.

    Tab, newline and carriage return stay in data (JSON writes them as \\t, \\n and \\r); in a
    whole body, tabs become spaces and carriage returns newlines."""
    if whole_body:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    if _CONTROL_RE.search(text) is not None:
        text = _CONTROL_RE.sub(_control_picture, text)
    if "\\u00" in text:
        text = _GH_ESCAPE_RE.sub(lambda m: "\\u{00" + (m.group(1) or "") + "}", text)
    return text


def inert_data(obj):
    """The data with every string (keys too) through inert_text: what a comment carries."""
    if isinstance(obj, str):
        return inert_text(obj)
    if isinstance(obj, dict):
        return {inert_text(k) if isinstance(k, str) else k: inert_data(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [inert_data(v) for v in obj]
    return obj


def subagent_tokens(subagent: dict, key: str) -> str:
    """A subagent's token count; without its transcript, 'not recorded' or its own last-call report."""
    tokens = subagent.get("tokens")
    if isinstance(tokens, dict):
        return format_tokens(tokens.get(key))
    reported = as_dict(subagent.get("reported_tokens"))
    if key in reported:
        return f"{format_tokens(reported[key])} (last call, own report)"
    return "not recorded"


def _token_rows(models: dict, bold_total: dict | None) -> list[list[str]]:
    rows = []
    for name, row in models.items():
        rows.append([md_text(name), format_tokens(row.get("input_tokens")),
                     format_tokens(row.get("output_tokens")),
                     format_tokens(row.get("cache_creation_tokens")),
                     format_tokens(row.get("cache_read_tokens")), format_cost(row.get("cost_usd"))])
    if bold_total is not None:
        t = bold_total
        rows.append(["**Total**"] + [f"**{format_tokens(t['tokens'].get(k))}**"
                                     for k in TOKEN_KINDS]
                    + [f"**{format_cost(t['cost'], t['complete'])}**"])
    return rows


TOKEN_HEADER = ["Model", "Input", "Output", "Cache Create", "Cache Read", "Est. Cost"]


def _capped(items: list, limit: int | None) -> tuple[list, int]:
    if limit is None or len(items) <= limit:
        return items, 0
    return items[:limit], len(items) - limit


def list_total(stats: dict, key: str) -> int:
    """Length of a stats list, counting entries a size-limited comment left out."""
    return len(stats.get(key) or []) + as_int(as_dict(stats.get("omitted")).get(key))


def trim_stats(stats: dict, keep: int | None) -> dict:
    """The stats with long lists cut to `keep` entries; `omitted` records how many were left out."""
    if keep is None:
        return stats
    trimmed = dict(stats)
    omitted = dict(as_dict(stats.get("omitted")))
    for key in ("commits", "subagents", "problems_faced", "skills_invoked"):
        items = stats.get(key) or []
        if len(items) > keep:
            trimmed[key] = items[:keep]
            omitted[key] = omitted.get(key, 0) + len(items) - keep
    if omitted:
        trimmed["omitted"] = omitted
    return trimmed


# Each step gives up a little more to fit the 65,536 limit: rows in tables first, then JSON
# whitespace, then list entries inside the JSON (their counts stay in `omitted`), then diagrams.
SHRINK_STEPS = (
    # (table rows, JSON indent, JSON list entries kept, workflows shown)
    (None, 2, None, True),
    (50, 2, None, True),
    (20, None, None, True),
    (5, None, None, True),
    (5, None, 200, True),
    (0, None, 50, False),
    (0, None, 10, False),
    (0, None, 0, False),
)


def render_session_comment(stats: dict, workflows: dict | None = None, privacy: Privacy = Privacy()) -> str:
    """The per-session comment at a privacy level (public unless told), shrunk step by
    step until it fits GitHub's limit. Everything in it comes through the privacy gate."""
    stats = inert_data(outbound_stats(stats, privacy))
    for rows, indent, keep, show_workflows in SHRINK_STEPS:
        body = inert_text(_session_comment(stats, workflows if show_workflows else None, rows, indent, keep),
                          whole_body=True)
        if len(body) <= COMMENT_LIMIT:
            return body
    return body   # only reachable with absurd tool or model counts; GitHub will say so


def _session_comment(stats, workflows, rows, indent, keep) -> str:
    short = as_str(stats.get("session_id"))[:8] or as_str(stats.get("session_id_short"))
    models = as_dict(stats.get("models"))
    totals = as_dict(stats.get("total_tokens"))
    cost = stats.get("estimated_cost_usd")
    skills = [s for s in stats.get("skills_invoked") or [] if isinstance(s, dict)]
    commit_count = list_total(stats, "commits")

    tldr = [f"Session {md_code(short)}", ", ".join(md_text(short_model(m)) for m in models) or "no model",
            format_duration(stats.get("duration_minutes")), format_cost(cost, cost_complete(stats)),
            f"{commit_count} commit{'' if commit_count == 1 else 's'}"]
    if skills:
        tldr.append(", ".join(md_text(s.get("skill")) for s in skills))

    token_table = md_table(TOKEN_HEADER, _token_rows(models, {"tokens": totals, "cost": cost,
                                                              "complete": cost_complete(stats)}))
    unpriced = stats.get("unpriced_models") or []
    no_price = ("\n_No price is known for " + ", ".join(md_code(m) for m in unpriced)
                + "; their tokens are not in the cost, which is a lower bound._\n") if unpriced else ""
    no_price += outside_note(stats) + claude_code_note(stats.get("claude_code_cost")) \
        + capture_note(stats.get("capture"))

    subagent_rows, more = _capped([s for s in stats.get("subagents") or [] if isinstance(s, dict)], rows)
    more += as_int(as_dict(stats.get("omitted")).get("subagents"))
    subagent_table = md_table(
        ["ID", "Type", "Model", "Input", "Output"],
        [[md_code(s.get("agent_id"), True), md_text(s.get("type") or "-"),
          md_text(short_model(as_str(s.get("model"))) or "-"),
          subagent_tokens(s, "input"), subagent_tokens(s, "output")] for s in subagent_rows],
        more, "subagents") if subagent_rows or more else "_None._\n"

    skill_rows, more = _capped(skills, rows)
    more += as_int(as_dict(stats.get("omitted")).get("skills_invoked"))
    skill_table = md_table(["Skill", "Invocations", "Status"],
                           [[md_text(s.get("skill")), str(as_int(s.get("count"))),
                             md_text(s.get("status") or "unknown")] for s in skill_rows],
                           more, "skills") if skill_rows or more else "_No skills invoked._\n"

    tools = list(as_dict(stats.get("tools")).items())
    tool_rows, more = _capped(tools, rows if rows is None else max(rows, 10))
    tool_table = md_table(["Tool", "Count"], [[md_text(n), f"{as_int(c):,}"] for n, c in tool_rows],
                          more, "tools") if tools else "_No tool calls._\n"

    problems = [p for p in stats.get("problems_faced") or [] if isinstance(p, dict)]
    problem_rows, more = _capped(problems, rows)
    more += as_int(as_dict(stats.get("omitted")).get("problems_faced"))
    problem_table = md_table(
        ["Problem", "Resolved", "Iterations"],
        [[md_text(p.get("description")), "yes" if p.get("resolved") else "no",
          str(as_int(p.get("iterations")))] for p in problem_rows],
        more, "problems") if problem_rows or more else "_None._\n"

    commit_rows, more = _capped([c for c in stats.get("commits") or [] if isinstance(c, dict)], rows)
    more += as_int(as_dict(stats.get("omitted")).get("commits"))
    commit_lines = [f"- {md_code(c.get('commit_id'))}" + (f" - {md_text(c['message'], 120)}" if c.get("message") else "")
                    + (" _(by the user)_" if c.get("by") == "user" else "") for c in commit_rows]
    if more:
        commit_lines.append(f"- _…and {more:,} more commits (in the JSON below)._")
    commit_list = "\n".join(commit_lines) + "\n" if commit_lines else "_None._\n"

    workflow_text = "".join(f"\n### {md_text(title)} Workflow\n\n{diagram}"
                            for title, diagram in (workflows or {}).items())

    return SESSION_COMMENT_TEMPLATE.format(
        marker=SESSION_MARKER.format(short=_marker_id(short)), tldr=" | ".join(tldr), short=md_code(short),
        branch=md_code(stats.get("branch")) if stats.get("branch") else "-",
        duration=format_duration(stats.get("duration_minutes")),
        token_table=token_table, unpriced=no_price, subagents=subagent_table,
        skills=skill_table, tools=tool_table, workflows=workflow_text, problems=problem_table,
        commits=commit_list, data_title=SESSION_DATA_TITLE,
        privacy=privacy_line(stats.get("privacy")), data=data_block(trim_stats(stats, keep), indent))


_REASON_TEXT = {
    "replayed": "this session replays calls of the one it resumes or forks, whose cost Claude Code "
                "carries over (they count in their own session here)",
    "not in transcript": "Claude Code billed {model} tokens that no transcript line records ({tokens})",
    "not in Claude Code's record": "the transcript has {model} calls after Claude Code's last record ({tokens})",
    "price": "{model} priced at {ours} here, {claude} by Claude Code",
    "no price here": "{model} has no price here; Claude Code priced it at {claude}",
}


def capture_note(capture) -> str:
    """What a stream-json capture could not say, under the token table; nothing when it says all."""
    if not isinstance(capture, dict):
        return ""
    if capture.get("format") == OTLP_FORMAT:
        return ("\n_From Claude Code's own telemetry: every call it made is counted, but telemetry has no "
                "commit lines, working folder or title, so those are missing here._\n")
    if not capture.get("complete"):
        return ("\n_From a stream-json capture cut off before its result: each streamed message carries "
                "only the usage of its start, so tokens and cost are lower bounds._\n")
    if capture.get("subagent_output_lower_bound"):
        return ("\n_From a stream-json capture: subagents sharing a model with the main thread show "
                "lower bounds of their output tokens (the totals are exact)._\n")
    return ""


def outside_note(stats: dict) -> str:
    """One line when the cost counts calls no transcript line records: from Claude Code's record,
    or, with no record, the features that made them and so a lower bound."""
    outside = stats.get("outside_transcript")
    if isinstance(outside, dict) and _finite(outside.get("cost_usd")) is not None:
        features = [md_text(f) for f in outside.get("features") or [] if isinstance(f, str)]
        return (f"\n_Includes {format_cost(outside['cost_usd'])} of calls Claude Code made outside the "
                f"transcript{': ' + ', '.join(features) if features else ''} (tokens from its own record)._\n")
    hidden = [md_text(f) for f in stats.get("hidden_calls") or [] if isinstance(f, str)]
    if hidden:
        return (f"\n_The session used {', '.join(hidden)}, whose calls no transcript line records, and "
                "Claude Code left no record of its cost: the cost is a lower bound._\n")
    return ""


def claude_code_note(record) -> str:
    """One line under the token table: Claude Code's own record of the cost, and why it differs."""
    if not isinstance(record, dict) or not isinstance(record.get("total_cost_usd"), (int, float)):
        return ""
    line = f"\n**Claude Code's own record:** {format_cost(record['total_cost_usd'])}"
    if record.get("agrees"):
        return line + " (agrees with the estimate).\n"
    reasons = []
    for r in record.get("reasons") or []:
        if not isinstance(r, dict) or r.get("reason") not in _REASON_TEXT:
            continue
        tokens = as_dict(r.get("tokens"))
        reasons.append(_REASON_TEXT[r["reason"]].format(
            model=md_code(r.get("model") or "-"), ours=format_cost(r.get("ours_usd")),
            claude=format_cost(r.get("claude_code_usd")),
            tokens=", ".join(f"{format_tokens(v)} {k.replace('_', ' ')}" for k, v in tokens.items() if v)))
    return line + (": " + "; ".join(reasons) if reasons else "") + ".\n"


def privacy_line(level) -> str:
    """The footer that names the privacy level a body was made at."""
    level = level if level in PRIVACY_TEXT else "public"
    return f"<sub>Privacy level: {level} ({PRIVACY_TEXT[level]}).</sub>\n"


def _marker_id(short: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-]", "", short)[:64] or "unknown"


# ── Reading comments back ──

def comment_data(body: str, title: str):
    """The JSON object in a comment's <details> data block, or None if there is none."""
    return read_comment_data(body, title)[0]


# Comments written before bodies were kept free of \u00XX wrote '<', '>' and '&' as \u003c,
# \u003e and \u0026 in the data block, which gh 2.23 hands back as \<, \> and \&: not JSON, but
# nothing else produces a backslash before such a character, so it is read as the escape it was.
_GH_MANGLED_RE = re.compile(r'(?<!\\)((?:\\\\)*)\\([^"\\/bfnrtu])')


def read_comment_data(body: str, title: str) -> tuple[object, str | None]:
    """(the JSON in the comment's data block, None) or (None, why it cannot be read)."""
    m = re.search(r"<details><summary>" + re.escape(title) + r"</summary>\s*```json\n(.*?)\n```\s*</details>",
                  body, re.DOTALL)
    if not m:
        return None, f"no readable {title} block"
    try:
        return json.loads(m.group(1)), None
    except ValueError as exc:
        repaired = _GH_MANGLED_RE.sub(lambda r: r.group(1) + "\\u%04x" % ord(r.group(2)), m.group(1))
        try:
            return json.loads(repaired), None
        except ValueError:
            return None, f"its {title} block is not valid JSON ({exc})"


def first_line(body) -> str:
    return as_str(body).split("\n", 1)[0].strip()


def session_marker_id(body) -> str | None:
    """The short id of a body whose first line is a session marker."""
    m = _SESSION_MARKER_RE.fullmatch(first_line(body))
    return m.group(1) if m else None


def is_trusted(comment: dict, trusted: set) -> bool:
    login = as_str(as_dict(comment.get("user")).get("login")).casefold()
    return comment.get("author_association") in TRUSTED_ASSOCIATIONS or login in trusted


def session_data(data, marker_id: str | None = None) -> tuple[Stats | None, str | None]:
    """Session data from outside (a comment's JSON block, --stats-file, the archive) brought to
    today's shape (Stats), or None and why it cannot be counted. Checked and shaped once, here:
    counts are whole numbers, costs and minutes finite numbers or null, lists are lists of
    objects, names are text; an entry that is none of these is dropped, and the block refused
    when what its sums rest on (its id, its token totals, its cost) is not readable. Schema 1
    named a subagent's id `id` and a commit's SHA `sha`."""
    if not isinstance(data, dict):
        return None, "no readable Session Data (JSON) block"
    sid = data.get("session_id")
    if not isinstance(sid, str) or not sid:
        return None, "no session_id"
    if marker_id is not None and not sid.startswith(marker_id):
        return None, f"marker {marker_id} does not match session_id {sid[:8]}"
    totals = data.get("total_tokens")
    if not isinstance(totals, dict) or not all(_is_count(totals.get(k)) for k in TOKEN_KINDS):
        return None, "total_tokens missing or not counts"
    cost = data.get("estimated_cost_usd")
    if cost is not None and _finite(cost) is None:
        return None, "estimated_cost_usd is not a number"
    if not isinstance(data.get("models", {}), dict) or not isinstance(data.get("commits", []), list):
        return None, "models or commits malformed"
    shape = {
        "total_tokens": lambda v: {k: v[k] for k in TOKEN_KINDS},
        "models": lambda v: {name: {"messages": as_int(row.get("messages")),
                                    **{f"{k}_tokens": as_int(row.get(f"{k}_tokens")) for k in TOKEN_KINDS},
                                    "cost_usd": _finite(row.get("cost_usd"))}
                             for name, row in v.items() if isinstance(name, str) and isinstance(row, dict)},
        "commits": lambda v: [{"commit_id": c.get("commit_id", c.get("sha")),
                               **({"message": c["message"]} if isinstance(c.get("message"), str) else {}),
                               **({"by": "user"} if c.get("by") == "user" else {})}
                              for c in _objects(v) if isinstance(c.get("commit_id", c.get("sha")), str)],
        "subagents": lambda v: [{("agent_id" if k == "id" and "agent_id" not in a else k): x for k, x in a.items()}
                                for a in _objects(v)],
        "skills_invoked": lambda v: [{"skill": as_str(k.get("skill")), "count": as_int(k.get("count")),
                                      "status": as_str(k.get("status")) or "unknown",
                                      "tokens": {kind: as_int(as_dict(k.get("tokens")).get(kind))
                                                 for kind in TOKEN_KINDS},
                                      "cost_usd": _finite(k.get("cost_usd"))} for k in _objects(v)],
        "problems_faced": _objects,
        "tools": lambda v: {name: as_int(n) for name, n in as_dict(v).items() if isinstance(name, str)},
        "unpriced_models": lambda v: [m for m in v if isinstance(m, str)] if isinstance(v, list) else [],
        "omitted": lambda v: {name: as_int(n) for name, n in as_dict(v).items()},
        "cost_complete": lambda v: v is not False,
        "duration_minutes": _finite, "active_minutes": _finite, "turns": as_int,
    }
    out = {key: shape[key](value) if key in shape else value for key, value in data.items()}
    return out, None


def _is_count(value) -> bool:
    return type(value) is int and value >= 0


def _finite(value) -> float | None:
    """A finite, non-negative number, else None (JSON from outside may say NaN or 1e999)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return value
    return None


def _objects(value) -> list:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def session_author(login: str, data: dict) -> str | None:
    """Who ran a session: who posted its comment (from their own `gh` login), unless a bot did (a
    CI job's token), then the GITHUB_ACTOR the comment recorded, else nobody known (the caller
    falls back to the PR's author)."""
    if login.endswith("[bot]") or login in ("github-actions", "?"):
        actor = as_str(data.get("github_actor"))
        return actor if GITHUB_LOGIN_RE.fullmatch(actor) else None
    return login


def collect_sessions(comments: list, trusted: set) -> tuple[list[dict], list[str]]:
    """Session stats from trusted session comments, one per session, and a warning per skip."""
    chosen, warnings = {}, []
    for comment in comments:
        if not isinstance(comment, dict):
            continue
        body = as_str(comment.get("body"))
        marker_id = session_marker_id(body)
        if marker_id is None:
            continue
        login = as_str(as_dict(comment.get("user")).get("login")) or "?"
        where = f"comment {comment.get('id')} by @{login}"
        if not is_trusted(comment, trusted):
            warnings.append(f"skipped {where}: author is not trusted "
                            f"({comment.get('author_association') or 'NONE'}); "
                            "use --trusted-authors to count it")
            continue
        data, problem = read_comment_data(body, SESSION_DATA_TITLE)
        if not problem:
            data, problem = session_data(data, marker_id)
        if problem:
            warnings.append(f"skipped {where}: {problem}")
            continue
        rank = (as_str(comment.get("updated_at")), as_int(comment.get("id")))
        previous = chosen.get(data["session_id"])
        if previous is not None:
            warnings.append(f"session {data['session_id'][:8]} appears in more than one comment; "
                            "counting the most recently updated")
        if previous is None or rank > previous[0]:
            chosen[data["session_id"]] = (rank, {**data, "session_author": session_author(login, data)})
    sessions = sorted((data for _, data in chosen.values()),
                      key=lambda d: (as_str(d.get("started_at")), d["session_id"]))
    return sessions, warnings


# ── The summary comment ──

def session_status(stats: dict) -> str:
    """'done', or how many problems were left unresolved."""
    unresolved = sum(1 for p in stats.get("problems_faced") or []
                     if isinstance(p, dict) and not p.get("resolved"))
    return "done" if not unresolved else plural(unresolved, "open problem")


class SummaryData(TypedDict):
    """The summary comment's data, recomputed from its sessions every time."""
    schema_version: int
    target: dict | None
    state: str | None
    session_count: int
    sessions: list[dict]        # {session_id, started_at, duration_minutes, estimated_cost_usd, ...}
    models: dict
    total_tokens: Tokens
    estimated_cost_usd: float
    cost_complete: bool
    unpriced_models: list[str]
    commits: int
    privacy: str


def summary_data(sessions: list[Stats], target: dict | None, state: str | None,
                 privacy: Privacy = Privacy(), budget_usd: float | None = None) -> SummaryData:
    """The summary's data: per-session rows and sums, all recomputed from the sessions as the
    privacy gate lets them out (the summary never shows more than its sessions)."""
    sessions = [out for out in (outbound_stats(stats, privacy) for stats in sessions) if "session_id" in out]
    models, messages, total = {}, collections.Counter(), Tally()
    rows = []
    for stats in sessions:
        for name, m in as_dict(stats.get("models")).items():
            m = as_dict(m)
            models.setdefault(name, Tally()).add(_tokens_of(m), m.get("cost_usd"))
            messages[name] += as_int(m.get("messages"))
        total.add_session(stats)
        rows.append({
            "session_id": stats["session_id"],
            "started_at": stats.get("started_at"),
            "duration_minutes": stats.get("duration_minutes"),
            "estimated_cost_usd": (None if stats.get("estimated_cost_usd") is None
                                   else cents(stats.get("estimated_cost_usd")) / 100),
            "cost_complete": cost_complete(stats),
            "commits": list_total(stats, "commits"),
            "skills": [as_str(s.get("skill")) for s in stats.get("skills_invoked") or []
                       if isinstance(s, dict)],
            "status": session_status(stats),
            "unpriced_models": list(stats.get("unpriced_models") or []),
        })
    return {
        "schema_version": SCHEMA_VERSION,
        "target": target,
        "state": state,
        "session_count": len(rows),
        "sessions": rows,
        "models": {name: {"messages": messages[name],
                          **{f"{kind}_tokens": tally.tokens[kind] for kind in TOKEN_KINDS},
                          "cost_usd": tally.shown_cost_usd if tally.complete else None}
                   for name, tally in sorted(models.items())},
        "total_tokens": total.tokens,
        "estimated_cost_usd": total.shown_cost_usd,
        "cost_complete": total.complete,
        "unpriced_models": sorted(total.unpriced),
        "commits": sum(r["commits"] for r in rows),
        "privacy": privacy.level,
        **({"budget": budget_state(total.shown_cost_usd, total.complete, budget_usd)} if budget_usd else {}),
    }


def budget_state(cost: float, complete: bool, budget_usd: float) -> dict:
    """How much of a PR's budget its sessions used. Over budget only when the estimate, a lower
    bound when it is incomplete, is already over it."""
    return {"usd": budget_usd, "used_percent": round(100 * cost / budget_usd, 1), "over": cost > budget_usd,
            "cost_complete": complete}


SUMMARY_SHRINK_STEPS = (
    # (history table rows, JSON indent, sessions kept in the JSON)
    (None, 2, None),
    (200, None, None),
    (50, None, 300),
    (10, None, 50),
)


def render_summary_comment(summary: dict) -> str:
    """The summary comment; long histories are cut to fit GitHub's limit."""
    summary = inert_data(summary)
    for rows, indent, keep in SUMMARY_SHRINK_STEPS:
        body = inert_text(_summary_comment(summary, rows, indent, keep), whole_body=True)
        if len(body) <= COMMENT_LIMIT:
            return body
    return body


def _summary_comment(summary: dict, limit: int | None, indent: int | None, keep: int | None) -> str:
    rows = summary["sessions"]
    complete = summary.get("cost_complete", True) is not False
    total = format_cost(summary["estimated_cost_usd"], complete)
    commits = summary["commits"]
    target = summary.get("target") or {}
    kind = "Issue" if target.get("type") == "issue" else "PR"
    noun = "session" if len(rows) == 1 else "sessions"
    tldr = [f"{len(rows)} {noun}", f"{total} total",
            f"{commits} commit{'' if commits == 1 else 's'}"]
    if summary.get("state"):
        tldr.append(md_text(summary["state"]))
    budget = summary.get("budget")
    if isinstance(budget, dict):
        allowed = format_cost(budget.get("usd"))
        tldr.append(f"**over budget** ({budget.get('used_percent')}% of {allowed})" if budget.get("over")
                    else f"{budget.get('used_percent')}% of its {allowed} budget")

    model_rows = _token_rows(summary["models"], None)
    if len(summary["models"]) > 1:
        t = summary["total_tokens"]
        model_rows.append(["**Total**"] + [f"**{format_tokens(t[k])}**" for k in TOKEN_KINDS]
                          + [f"**{total}**"])
    token_table = md_table(TOKEN_HEADER, model_rows) if model_rows else "_No API calls recorded._\n"

    shown, more = _capped(rows, limit)
    history = md_table(
        ["#", "Session", "Duration", "Cost", "Skills", "Commits", "Status"],
        [[str(i), md_code(r["session_id"][:8], True), format_duration(r["duration_minutes"]),
          format_cost(r["estimated_cost_usd"], cost_complete(r)),
          ", ".join(md_text(s) for s in r["skills"]) or "-", str(r["commits"]), md_text(r["status"])]
         for i, r in enumerate(shown, 1)], more, "sessions") if rows else "_No session comments yet._\n"

    if limit is None or len(rows) <= limit:
        cost_terms = " + ".join(format_cost(r["estimated_cost_usd"], cost_complete(r)) for r in rows) or "$0.00"
        commit_terms = " + ".join(str(r["commits"]) for r in rows) or "0"
    else:
        cost_terms = f"{len(rows)} session costs"
        commit_terms = f"{len(rows)} session commit counts"
    verification = (f"- Sum of session costs: {cost_terms} = **{total}**\n"
                    f"- Sum of session commits: {commit_terms} = **{commits}**\n")
    unpriced = {m for r in rows for m in r["unpriced_models"]}
    if unpriced:
        verification += (f"- The cost is a lower bound: {md_text(unpriced_note(unpriced))}; "
                         "their tokens are not in it.\n")
    if isinstance(budget, dict):
        verification += (f"- Budget: {total} of {format_cost(budget.get('usd'))} = {budget.get('used_percent')}%"
                         + (" (**over budget**)" if budget.get("over") else "") + "\n")

    return SUMMARY_COMMENT_TEMPLATE.format(
        marker=SUMMARY_MARKER, kind=kind, tldr=" | ".join(tldr), sessions=len(rows),
        cost=total, commits=commits, token_table=token_table,
        history=history, verification=verification, privacy=privacy_line(summary.get("privacy")),
        data_title=SUMMARY_DATA_TITLE,
        data=data_block(_trim_summary(summary, keep), indent))


def _trim_summary(summary: dict, keep: int | None) -> dict:
    """The summary data with only the latest `keep` session rows; sums still cover them all."""
    if keep is None or len(summary["sessions"]) <= keep:
        return summary
    return {**summary, "sessions": summary["sessions"][-keep:],
            "omitted": {"sessions": len(summary["sessions"]) - keep}}


# ── GitHub client: `gh api`, REST only ────────────────────────────────────────
#
# One small class runs the real `gh` and is passed to whatever needs GitHub, so tests drive it
# against a fake server and the pure core above never touches the network. gh's exit code is
# checked before its output is read: a list that failed on page 2 prints page 1 and exits 1.

GH_ATTEMPTS = 4              # first try plus three retries, for rate limits, 5xx and network errors
GH_BASE_DELAY = 0.5          # seconds; doubled per retry when GitHub names no wait
GH_MAX_WAIT = 90             # a rate-limit reset further away than this is reported, not awaited
_HTTP_STATUS_RE = re.compile(r"\(HTTP (\d{3})\)")


# GitHub answers a spent GraphQL budget with HTTP 200 and an error, whose type has been seen as
# RATE_LIMITED and, in 2026, RATE_LIMIT with code graphql_rate_limit, its x-ratelimit-remaining
# not always 0 (yanyongyu/githubkit#271, octokit/plugin-throttling.js#636).
GRAPHQL_RATE_LIMITED = ("RATE_LIMITED", "RATE_LIMIT")


class GitHubError(UserError):
    """A gh failure with the HTTP status (0 when none) and whether retrying may help."""

    def __init__(self, message: str, code: int, status: int = 0, retryable: bool = False,
                 wait: float | None = None):
        super().__init__(message, code)
        self.status, self.retryable, self.wait = status, retryable, wait


@dataclass
class GhReply:
    status: int
    headers: dict
    data: object


class GitHub:
    """Runs `gh api` for REST calls; retries rate limits and server errors a bounded number of times."""

    def __init__(self, repo: str, warn=None, sleep=time.sleep, attempts: int = GH_ATTEMPTS,
                 base_delay: float = GH_BASE_DELAY, max_wait: float = GH_MAX_WAIT, gh: str = "gh"):
        self.repo, self.gh = repo, gh
        self.warn = warn or (lambda message: None)
        self.sleep, self.attempts = sleep, attempts
        self.base_delay, self.max_wait = base_delay, max_wait
        self._login = None

    # ── the calls the phases make ──

    def login(self) -> str:
        if self._login is None:
            self._login = as_str(as_dict(self.request("GET", "user")).get("login"))
            if not self._login:
                raise GitHubError("gh api user returned no login", EXIT_GITHUB)
        return self._login

    def get(self, path: str, **fields):
        return self.request("GET", path, fields=fields)

    def list(self, path: str, **fields) -> list:
        """Every item of a paginated list (gh follows the Link headers)."""
        return self._with_retries(lambda: self._list_once(path, fields), f"GET {path}")

    def request(self, method: str, path: str, payload=None, fields=None, retry: bool = True):
        once = lambda: self._request_once(method, path, payload, fields or {})  # noqa: E731
        return self._with_retries(once, f"{method} {path}") if retry else once()

    def graphql(self, query: str, **variables) -> tuple[dict, list]:
        """(data, errors) of one `gh api graphql` query; a reply with data and some errors (a repository
        that does not exist) is data, one with no data a failure. Retried like REST."""
        def once():
            argv = ["graphql", "--include", "-f", f"query={query}"]
            for key, value in variables.items():
                argv += ["-F" if isinstance(value, int) else "-f", f"{key}={value}"]
            proc = self._run(argv, None)
            reply = parse_included(proc.stdout)
            body = as_dict(reply.data)
            if reply.status == 200 and isinstance(body.get("data"), dict):
                return body["data"], [as_dict(e) for e in body.get("errors") or []]
            errors = [as_dict(e) for e in body.get("errors") or []]
            messages = "; ".join(as_str(e.get("message")) for e in errors)
            if reply.status == 200 and any(e.get("type") in GRAPHQL_RATE_LIMITED or
                                           e.get("code") == "graphql_rate_limit" for e in errors):
                raise GitHubError(f"POST graphql: rate limited by GitHub ({messages})", EXIT_RATE_LIMIT, 200,
                                  retryable=True, wait=_rate_limit_wait(reply.headers, spent=True))
            if proc.returncode == 0 and reply.status == 200:
                raise GitHubError(f"POST graphql: {messages or 'no data in the reply'}", EXIT_GITHUB)
            raise gh_failure(proc, reply, "POST graphql")
        return self._with_retries(once, "POST graphql")

    def repo_path(self, rest: str) -> str:
        return f"repos/{self.repo}/{rest}"

    def at(self, repo: str | None) -> "GitHub":
        """This client, for one repository."""
        if not repo:
            raise UserError("no GitHub repository: pass --repo OWNER/NAME or set GH_REPO", EXIT_USAGE)
        other = copy.copy(self)
        other.repo = repo
        return other

    # ── running gh ──

    def _with_retries(self, call, what: str):
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except GitHubError as exc:
                if not exc.retryable or attempt == self.attempts:
                    raise
                wait = exc.wait if exc.wait is not None else self.base_delay * 2 ** (attempt - 1)
                if wait > self.max_wait:
                    raise GitHubError(f"{exc} (GitHub asks to wait {wait:.0f}s; try again later)",
                                      exc.code, exc.status) from None
                self.warn(f"{exc}; retrying in {wait:.1f}s ({attempt}/{self.attempts - 1})")
                self.sleep(wait)
        raise AssertionError("unreachable")

    def _run(self, argv: list[str], payload) -> subprocess.CompletedProcess:
        body_file = None
        try:
            if payload is not None:
                fd, body_file = tempfile.mkstemp(prefix="session-analytics-", suffix=".json")
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(payload, handle, ensure_ascii=False)
                argv = argv + ["--input", body_file]
            try:
                return subprocess.run([self.gh, "api", *argv], capture_output=True, timeout=300,
                                      stdin=subprocess.DEVNULL)
            except FileNotFoundError:
                raise GitHubError("gh (the GitHub CLI) is not installed: see https://cli.github.com "
                                  "or `apt-get install gh`", EXIT_GH_MISSING) from None
            except subprocess.TimeoutExpired:
                raise GitHubError(f"gh api {argv[0]} timed out", EXIT_GITHUB, retryable=True) from None
        finally:
            if body_file:
                os.unlink(body_file)

    def _request_once(self, method, path, payload, fields) -> object:
        argv = [path, "-X", method, "--include"]
        for key, value in fields.items():
            argv += ["-f", f"{key}={value}"]
        proc = self._run(argv, payload)
        reply = parse_included(proc.stdout)
        if proc.returncode != 0 or reply.status >= 400:
            raise gh_failure(proc, reply, f"{method} {path}")
        return reply.data

    def _list_once(self, path, fields) -> list:
        """Every item of every page, with each page's status and headers (--include), so that a page
        that fails says what GitHub asked: its status, its Retry-After or rate-limit reset."""
        argv = [path, "--paginate", "--include", "--jq", ".[]"]
        if fields:
            argv += ["-X", "GET"]
            for key, value in fields.items():
                argv += ["-f", f"{key}={value}"]
        proc = self._run(argv, None)
        pages = list(included_pages(proc.stdout.decode("utf-8", "replace")))
        if proc.returncode != 0 or (pages and pages[-1][0].status >= 400):
            reply = pages[-1][0] if pages and pages[-1][0].status >= 400 else GhReply(0, {}, None)
            failure = gh_failure(proc, reply, f"GET {path}")
            read = [page for page, _ in pages if page.status < 400]
            if read:
                failure.args = (f"{failure.args[0]} (failed on page {len(read) + 1}, after "
                                f"{plural(len(read), 'page')} read)",)
            raise failure
        return [item for page, body in pages for item in iter_json_values(body)]


def included_pages(text: str):
    """(GhReply of the page's status and headers, and the error body of a failed page; the text
    after its headers) for each page of `gh api --include --paginate --jq` output."""
    starts = [m.start() for m in re.finditer(r"^HTTP/[\d.]+ \d{3}", text, re.MULTILINE)]
    for start, end in zip(starts, starts[1:] + [len(text)]):
        reply = parse_included(text[start:end].encode("utf-8"))
        head, _, body = text[start:end].replace("\r\n", "\n").partition("\n\n")
        yield reply, body


def parse_included(raw: bytes) -> GhReply:
    """Status, headers and JSON body of `gh api --include` output."""
    text = raw.decode("utf-8", "replace")
    m = re.match(r"HTTP/[\d.]+ (\d{3})[^\n]*\n", text)
    if not m:
        return GhReply(0, {}, _json_or_none(text))
    head, _, body = text[m.end():].partition("\r\n\r\n")
    if not _ and "\n\n" in text[m.end():]:
        head, _, body = text[m.end():].partition("\n\n")
    headers = {}
    for line in head.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return GhReply(int(m.group(1)), headers, _json_or_none(body))


def _json_or_none(text: str):
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


def iter_json_values(text: str):
    """The JSON values gh --jq prints, one after another."""
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            return
        try:
            value, pos = decoder.raw_decode(text, pos)
        except ValueError:
            raise GitHubError("gh printed output that is not JSON", EXIT_GITHUB) from None
        yield value


def gh_failure(proc: subprocess.CompletedProcess, reply: GhReply, what: str) -> GitHubError:
    """One clear GitHubError for a failed gh call, classified by HTTP status."""
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    status = reply.status
    if not status:
        m = _HTTP_STATUS_RE.search(stderr)
        status = int(m.group(1)) if m else 0
    data = as_dict(reply.data)
    message = as_str(data.get("message")) or (stderr.splitlines()[-1] if stderr else "no output")
    message = _HTTP_STATUS_RE.sub("", message.removeprefix("gh: ")).strip()
    details = "; ".join(as_str(e.get("message") or e.get("code")) for e in data.get("errors") or []
                        if isinstance(e, dict))
    if details:
        message += f" ({details})"
    headers = reply.headers
    if proc.returncode == 4 or status == 401 or "gh auth login" in stderr:
        return GitHubError("gh is not authenticated for this host: run `gh auth login` "
                           "or set GH_TOKEN", EXIT_GH_AUTH, status)
    rate_limited = status == 429 or (status == 403 and (
        headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
        or "rate limit" in message.lower()))
    if rate_limited:
        return GitHubError(f"{what}: rate limited by GitHub ({message})", EXIT_RATE_LIMIT, status,
                           retryable=True, wait=_rate_limit_wait(headers))
    if status == 404:
        return GitHubError(f"{what}: not found (check the repository, the number, and that gh's "
                           "account can see them)", EXIT_NOT_FOUND, status)
    if status == 422:
        return GitHubError(f"{what}: GitHub rejected the request: {message}", EXIT_REJECTED, status)
    if status >= 500 or status == 0:
        return GitHubError(f"{what}: {message}" + (f" (HTTP {status})" if status else ""),
                           EXIT_GITHUB, status, retryable=True)
    return GitHubError(f"{what}: {message} (HTTP {status})", EXIT_GITHUB, status)


def _rate_limit_wait(headers: dict, spent: bool = False) -> float | None:
    """Seconds GitHub asks us to wait: retry-after (seconds, or an HTTP date), else until the rate
    limit resets (x-ratelimit-reset, when none remain, or when the reply says the budget is spent:
    a GraphQL one may still count some remaining)."""
    after = retry_after(headers.get("retry-after"))
    if after is not None:
        return after
    if (spent or headers.get("x-ratelimit-remaining") == "0") and headers.get("x-ratelimit-reset", "").isdigit():
        return max(float(headers["x-ratelimit-reset"]) - time.time(), 0.0) + 1.0
    return None


def retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (RFC 9110: seconds, or an HTTP date); None without
    one, or with one that is neither. GitHub and OTLP collectors both send it."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0) if value else None
    except (TypeError, ValueError, IndexError):
        return None


# ── GitHub workflows: targets, idempotent comments, the summary ───────────────

@dataclass
class Target:
    repo: str
    kind: str          # "pr" or "issue"
    number: int
    state: str         # open, closed or merged

    def as_stats(self) -> dict:
        return {"type": self.kind, "number": self.number}


def resolve_target(github: GitHub, kind: str | None, number: int | None, branch: str | None) -> Target:
    """The PR or issue to comment on: --target/--number, else the open PR of the branch."""
    if number is None:
        if not branch:
            raise UserError("no --number given and no current branch to find its pull request; "
                            "pass --target pr|issue --number N", EXIT_USAGE)
        owners = [github.repo.split("/")[0]]
        pulls = []
        for owner in owners + [github.login()]:
            pulls = github.list(github.repo_path("pulls"), head=f"{owner}:{branch}", state="open")
            if pulls:
                break
        if not pulls:
            raise GitHubError(f"no open pull request for branch {branch} in {github.repo}; "
                              "pass --target pr|issue --number N", EXIT_NOT_FOUND)
        pulls.sort(key=lambda p: as_int(as_dict(p).get("number")))
        number = as_int(pulls[-1].get("number"))
        if len(pulls) > 1:
            github.warn(f"branch {branch} has {len(pulls)} open pull requests; using #{number}")
    issue = as_dict(github.get(github.repo_path(f"issues/{number}")))
    actual = "pr" if issue.get("pull_request") else "issue"
    if kind and kind != actual:
        github.warn(f"#{number} is {'a pull request' if actual == 'pr' else 'an issue'}, "
                    f"not {'a pull request' if kind == 'pr' else 'an issue'}; reporting it as such")
    state = as_str(issue.get("state")) or "open"
    if actual == "pr" and as_dict(issue.get("pull_request")).get("merged_at"):
        state = "merged"
    return Target(github.repo, actual, number, state)


@dataclass
class Posted:
    action: str        # created, updated or unchanged
    comment: dict


# GitHub has no lock. Two runs on one target may both find no comment and both create one, one may
# delete the comment another is updating, and a summary computed before another session's comment
# landed is stale. So a post settles instead of writing once: it lists the comments, writes what
# the listing needs (the body, computed from that listing for a summary; our oldest matching
# comment kept, our others deleted, a comment deleted under us created again), and lists again
# after any write, until a listing needs none. Every run ends by checking what it wrote, so after
# any number of concurrent runs each session has one comment and the target one summary, which
# lists every session. A random pause between rounds keeps racing runs out of step.
SETTLE_ROUNDS = 8
SETTLE_JITTER = 0.3          # seconds, at most, between two rounds


def upsert_comment(github: GitHub, target: Target, body, is_mine, listed: list | None = None,
                   repost: bool = False) -> Posted:
    """Settle our comment that `is_mine` picks on the target: exactly one, holding `body` (text, or
    a function of the comments listed that gives it). No write at all when it already does.
    `listed` is a listing just made, if any. `repost` deletes our earlier comments first and
    creates a new one: an edit keeps the old text in the comment's history, a new comment has none."""
    path = github.repo_path(f"issues/{target.number}/comments")
    action, kept = None, {}
    for round_ in range(SETTLE_ROUNDS):
        comments = listed if round_ == 0 and listed is not None else github.list(path)
        login = github.login()
        mine = sorted((c for c in comments if isinstance(c, dict) and as_dict(c.get("user")).get("login") == login
                       and is_mine(c)), key=lambda c: as_int(c.get("id")))
        wanted = body(comments) if callable(body) else body
        wrote = False
        if repost and mine:
            for comment in mine:
                _delete_comment(github, comment)
            mine, repost, action, wrote = [], False, "reposted", True
        if not mine:
            created = _create_comment(github, path, wanted)
            if created is not None:
                kept, action = created, action or "created"
            wrote = True
        else:
            kept = mine[0]
            if kept.get("body") != wanted:
                updated = _update_comment(github, kept, wanted)
                if updated is not None:
                    kept, action = updated, action or "updated"
                wrote = True
            for extra in mine[1:]:               # left by a run that raced this one
                _delete_comment(github, extra)
                wrote = True
        if not wrote:
            return Posted(action or "unchanged", kept)
        github.sleep(random.uniform(0, SETTLE_JITTER))
    github.warn(f"the comments on #{target.number} did not settle after {SETTLE_ROUNDS} rounds: other runs "
                "are still writing; a later run settles them")
    return Posted(action or "unchanged", kept)


def _create_comment(github: GitHub, path: str, body: str) -> dict | None:
    """POST the comment, never retried as such: a create that failed may still have reached GitHub
    (a 5xx, a timeout), so the next round's listing decides. None when it failed that way."""
    try:
        return as_dict(github.request("POST", path, {"body": body}, retry=False))
    except GitHubError as exc:
        if not exc.retryable:
            raise
        github.warn(f"creating the comment failed ({exc}); looking again before trying again")
        github.sleep(min(exc.wait if exc.wait is not None else github.base_delay, github.max_wait))
        return None


def _update_comment(github: GitHub, comment: dict, body: str) -> dict | None:
    """PATCH the comment; None when it was deleted meanwhile (the next round creates it again)."""
    try:
        return as_dict(github.request("PATCH", github.repo_path(f"issues/comments/{comment['id']}"), {"body": body}))
    except GitHubError as exc:
        if exc.status != 404:
            raise
        github.warn("the comment was deleted while we updated it; creating it again")
        return None


def _delete_comment(github: GitHub, comment: dict) -> None:
    """DELETE the comment; one already gone (deleted by a racing run) is as good."""
    try:
        github.request("DELETE", github.repo_path(f"issues/comments/{comment['id']}"))
    except GitHubError as exc:
        if exc.status != 404:
            raise


def pin_comment(github: GitHub, target: Target, comment: dict) -> None:
    """Pin a comment where GitHub allows it (issues); failing to pin is only a warning."""
    if target.kind != "issue" or not comment.get("id"):
        return
    try:
        github.request("PUT", github.repo_path(f"issues/comments/{comment['id']}/pin"))
    except GitHubError as exc:
        if exc.code in (EXIT_GH_MISSING, EXIT_GH_AUTH):
            raise
        github.warn(f"could not pin the summary comment: {exc}")


def stats_for_target(stats: dict, target: Target) -> dict:
    return {**stats, "project": target.repo, "target": target.as_stats()}


def repository_visibility(github: GitHub) -> str | None:
    """'public', 'private' or 'internal' as GitHub says; None when it does not say (a token that may
    comment but not read the repository's settings, say): that is treated as public."""
    try:
        repo = as_dict(github.get(f"repos/{github.repo}"))
    except GitHubError as exc:
        if exc.code in (EXIT_GH_MISSING, EXIT_GH_AUTH):
            raise
        github.warn(f"the visibility of {github.repo} is unknown ({exc}): public, the safe default")
        return None
    if repo.get("visibility") in ("public", "private", "internal"):
        return repo["visibility"]
    return ("private" if repo["private"] else "public") if isinstance(repo.get("private"), bool) else None


def default_level(visibility: str | None) -> str:
    """team for a repository GitHub says is private or internal; public otherwise, unknown included."""
    return "team" if visibility in ("private", "internal") else "public"


def target_privacy(github: GitHub, target: Target, level: str | None, stats: dict | None) -> tuple[Privacy, str]:
    """The privacy of a post to this target, and why: --privacy, else the repository's visibility.
    For a PR, what GitHub already shows: its branch and, at public, its commits."""
    visibility = repository_visibility(github)
    why = f"{target.repo} is {visibility}" if visibility else f"the visibility of {target.repo} is unknown"
    chosen = level or default_level(visibility)
    branch, commits = None, frozenset()
    if target.kind == "pr":
        branch = as_str(as_dict(as_dict(github.get(github.repo_path(f"pulls/{target.number}"))).get("head")).get("ref"))
        if chosen == "public" and (stats or {}).get("commits"):
            commits = frozenset(as_str(as_dict(c).get("sha"))
                                for c in github.list(github.repo_path(f"pulls/{target.number}/commits")))
    return (Privacy(chosen, target.repo, branch or None, commits, machine_people()),
            "--privacy" if level else why)


def post_session_comment(github: GitHub, target: Target, stats: dict, workflows: dict, privacy: Privacy,
                         repost: bool = False) -> Posted:
    """Create or update this session's comment on the target (delete and create it, to repost)."""
    return upsert_comment(github, target, render_session_comment(stats, workflows, privacy),
                          session_comment_is_mine(stats["session_id"]), repost=repost)


def session_comment_is_mine(sid: str):
    """The test that picks this session's own earlier comment among a target's comments."""
    def is_mine(comment: dict) -> bool:
        body = as_str(comment.get("body"))
        if session_marker_id(body) != sid[:8]:
            return False
        data = comment_data(body, SESSION_DATA_TITLE)
        return not isinstance(data, dict) or data.get("session_id") in (None, sid)
    return is_mine


def summary_of(comments: list, target: Target, trusted: set, privacy: Privacy, warn,
               replace: dict | None = None, budget_usd: float | None = None) -> str:
    """The summary's body, recomputed from the trusted session comments among `comments` (their
    authors' association, or a login in `trusted`); `replace` stands in for one session's."""
    sessions, warnings = collect_sessions(comments, trusted)
    for warning in warnings:
        warn(warning)
    if replace is not None:
        sessions = [s for s in sessions if s["session_id"] != replace["session_id"]] + [replace]
        sessions.sort(key=lambda d: (as_str(d.get("started_at")), d["session_id"]))
    return render_summary_comment(summary_data(sessions, target.as_stats(), target.state, privacy, budget_usd))


def post_summary(github: GitHub, target: Target, trusted: set, privacy: Privacy,
                 budget_usd: float | None = None) -> Posted:
    """Settle the summary comment, recomputed from the comments of each listing."""
    told = set()

    def warn_once(message: str) -> None:          # every round lists again: say each thing once
        if message not in told:
            told.add(message)
            github.warn(message)

    posted = upsert_comment(github, target, lambda comments: summary_of(comments, target, trusted, privacy, warn_once,
                                                                        budget_usd=budget_usd),
                            lambda c: first_line(c.get("body")) == SUMMARY_MARKER)
    if posted.action != "unchanged":
        pin_comment(github, target, posted.comment)
    return posted


# ── Extract and dashboard: CSV, Markdown report and a Chart.js page ───────────
#
# extract gathers "items" (a PR or issue with its sessions, or, from local transcripts, one
# session on its own) into analytics.json; the CSV, the report and the dashboard are all
# rendered from that one data file, so `--phase dashboard` can regenerate the page offline.

CSV_COLUMNS = (
    "pr_number", "target_type", "pr_title", "pr_author", "pr_status", "session_id", "session_started",
    "session_duration_min", "models_used", "total_input_tokens", "total_output_tokens",
    "total_cache_create", "total_cache_read", "estimated_cost_usd", "commits_count", "commit_shas",
    "ci_runs", "ci_pass_rate", "skills_used", "per_skill_tokens", "subagent_count",
    "per_subagent_tokens", "problems_count", "problems_resolved", "review_comments", "lines_added",
    "lines_removed", "time_to_merge_hours", "acceptance_status", "session_author",
)
# An extract over several repositories starts each row with its repository (one keeps the above).
REPOSITORY_COLUMN = "repository"
EXTRACT_WORKERS = 8                 # concurrent gh calls: enough to hide latency, polite to GitHub
EXTRACT_REPOSITORIES = 4            # GraphQL queries, or repositories read over REST, at once
CHARTJS_VERSION = "4.6.1"
CHARTJS_URL = f"https://cdn.jsdelivr.net/npm/chart.js@{CHARTJS_VERSION}/dist/chart.umd.min.js"
CHARTJS_SRI = "sha384-Emf5ZVIUiarAdhkgtqK+5/Z5qIvM6QoVrS+qAVtfyZVuD5lIHrac0me485+Antp0"
# A spreadsheet runs a cell as a formula when it starts with one of = + - @, also after blanks
# (a space, tab, CR, LF, the ideographic space) and in their full-width forms: such a cell, and
# any cell that starts with a blank, gets a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", " ", "\u3000", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _day(value) -> str:
    return as_str(value)[:10]


def _hours_between(start, end) -> float | None:
    a, b = parse_ts(start), parse_ts(end)
    return round((b - a) / 3600, 1) if a is not None and b is not None else None


# ── gathering from GitHub ──

class Progress:
    """One stderr line now and then on long runs; silent when quiet or quick."""

    def __init__(self, what: str, total: int, quiet: bool, clock=time.monotonic):
        self.what, self.total, self.quiet, self.clock = what, total, quiet, clock
        self.started = self.last = clock()
        self.done = 0
        self.lock = threading.Lock()

    def step(self) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        self.show(f"{self.what}: {done}/{self.total}", last=done >= self.total)

    def show(self, text: str, last: bool = False) -> None:
        """The line, unless quiet, the run is young, or a line went out less than a second ago
        (the last one always goes out)."""
        with self.lock:
            now = self.clock()
            if self.quiet or now - self.started < 2 or (now - self.last < 1 and not last):
                return
            self.last = now
            print(f"{PROG}: {text}", file=sys.stderr, flush=True)


def list_created_between(github: GitHub, since: float, until: float) -> list[dict]:
    """PRs and issues created in [since, until], newest first, by listing (no search-API cap)."""
    found, page = [], 1
    while True:
        batch = github.get(github.repo_path("issues"), state="all", sort="created", direction="desc",
                           per_page=100, page=page)
        if not isinstance(batch, list) or not batch:
            return found
        for item in batch:
            created = parse_ts(as_dict(item).get("created_at"))
            if created is not None and since <= created <= until:
                found.append(item)
        oldest = parse_ts(as_dict(batch[-1]).get("created_at"))
        if len(batch) < 100 or (oldest is not None and oldest < since):
            return found
        page += 1


RUNS_LISTING_CAP = 1000             # GitHub answers a filtered runs query with at most this many
RUNS_LOOKBACK_DAYS = 14             # a branch's CI may start before its pull request is opened


def comments_by_number(github: GitHub, since: float) -> dict[int, list]:
    """Every comment updated since the range began, by PR or issue number: one paginated
    listing for the whole repository instead of one per item (a session comment on an item
    created in the range cannot be older than the range)."""
    grouped = collections.defaultdict(list)
    for comment in github.list(github.repo_path("issues/comments"), since=format_ts(since),
                               sort="created", direction="asc"):
        m = re.search(r"/issues/(\d+)$", as_str(as_dict(comment).get("issue_url")))
        if m:
            grouped[int(m.group(1))].append(comment)
    return grouped


def runs_by_sha(github: GitHub, since: float) -> dict[str, list] | None:
    """CI runs created since shortly before the range, by head commit; None when GitHub's cap
    on filtered run listings would cut them short (each PR then asks for its own)."""
    created = format_ts(since - RUNS_LOOKBACK_DAYS * 86400)[:10]
    runs, page, total = [], 0, None
    while total is None or len(runs) < total:
        page += 1
        batch = as_dict(github.get(github.repo_path("actions/runs"), created=f">={created}",
                                   per_page=100, page=page))
        total = as_int(batch.get("total_count"))
        if total > RUNS_LISTING_CAP:
            return None
        found = [r for r in batch.get("workflow_runs") or [] if isinstance(r, dict)]
        if not found:
            break
        runs += found
    grouped = collections.defaultdict(list)
    for run in runs:
        grouped[as_str(run.get("head_sha"))].append(run)
    return grouped


def ci_summary(runs: list) -> tuple[int, float | None]:
    """(number of runs, percentage of completed runs that succeeded)."""
    completed = [r for r in runs if as_dict(r).get("conclusion")]
    if not completed:
        return len(runs), None
    passed = sum(1 for r in completed if r.get("conclusion") == "success")
    return len(runs), round(100 * passed / len(completed), 1)


def github_item(github: GitHub, issue: dict, comments: list, runs: dict | None, trusted: set,
                warn, pull: dict | None = None) -> dict | None:
    """One PR or issue with its trusted sessions and PR facts; None when it has no sessions."""
    number = as_int(issue.get("number"))
    is_pr = bool(issue.get("pull_request"))
    sessions, warnings = collect_sessions(comments, trusted)
    for warning in warnings:
        warn(f"#{number}: {warning}")
    if not sessions:
        return None
    author = as_str(as_dict(issue.get("user")).get("login"))
    sessions = [s if s.get("session_author") else {**s, "session_author": author or None} for s in sessions]
    item = {"number": number, "type": "pr" if is_pr else "issue", "title": as_str(issue.get("title")),
            "author": author, "status": as_str(issue.get("state")),
            "created_at": issue.get("created_at"), "closed_at": issue.get("closed_at"),
            "merged_at": None, "additions": None, "deletions": None, "review_comments": None,
            "ci_runs": None, "ci_pass_rate": None, "sessions": sessions}
    if is_pr:
        pull = pull if pull is not None else as_dict(github.get(github.repo_path(f"pulls/{number}")))
        item.update(merged_at=pull.get("merged_at"), additions=pull.get("additions"),
                    deletions=pull.get("deletions"), review_comments=pull.get("review_comments"))
        if pull.get("merged_at"):
            item["status"] = "merged"
        sha = as_str(as_dict(pull.get("head")).get("sha"))
        if sha and runs is not None:
            item["ci_runs"], item["ci_pass_rate"] = ci_summary(runs.get(sha, []))
        elif sha:
            own = as_dict(github.get(github.repo_path("actions/runs"), head_sha=sha, per_page=100))
            count, rate = ci_summary([r for r in own.get("workflow_runs") or [] if isinstance(r, dict)])
            item["ci_runs"], item["ci_pass_rate"] = max(count, as_int(own.get("total_count"))), rate
    return item


def gather_github(github: GitHub, since: float, until: float, trusted: set, quiet: bool,
                  workers: int = EXTRACT_WORKERS) -> tuple[list, list]:
    """Items with sessions, and failures (number, message), of a repository GraphQL could not
    read: over REST, by repository-wide listings and a call per PR, with a bounded thread pool."""
    issues = list_created_between(github, since, until)
    comments = comments_by_number(github, since) if issues else {}
    issues = [i for i in issues if comments.get(as_int(i.get("number")))]
    runs = runs_by_sha(github, since) if any(i.get("pull_request") for i in issues) else {}
    return read_items(github, [(i, comments[as_int(i.get("number"))], None, runs) for i in issues], trusted,
                      Progress("extract: PRs and issues read", len(issues), quiet), workers)


def read_items(github: GitHub, found: list[tuple], trusted: set, progress: Progress | None = None,
               workers: int = EXTRACT_WORKERS) -> tuple[list, list]:
    """Items with sessions, and failures (number, message), from (issue, its comments, the PR's
    facts, CI runs by sha) as REST shapes them; what is None is asked of REST, a few calls at once."""
    def one(issue, comments, pull, runs):
        number = as_int(issue.get("number"))
        try:
            if comments is None:
                comments = github.list(github.repo_path(f"issues/{number}/comments"))
            return github_item(github, issue, comments, runs, trusted, github.warn, pull), None
        except GitHubError as exc:
            if exc.code in (EXIT_GH_MISSING, EXIT_GH_AUTH):
                raise
            return None, {"number": number, "error": str(exc)}
        finally:
            if progress:
                progress.step()

    import concurrent.futures  # noqa: PLC0415 - imported where used: most runs never need it
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        read = list(pool.map(lambda shapes: one(*shapes), found))
    items = sorted((item for item, _ in read if item), key=lambda i: (as_str(i["created_at"]), i["number"]))
    return items, sorted((failure for _, failure in read if failure), key=lambda f: f["number"])


# ── extract over GraphQL: pages of several repositories in one query ──
#
# Everything extract needs of a repository comes in GraphQL pages, several repositories to a query:
# its PRs and its issues, newest first, each with its comments, its PR facts and the CI runs of its
# head commit. A repository is read as two streams (its PRs, its issues) that end at the first item
# created before the range. A stream's pages double (10, 20, 40, 80, then 100 items), so a quiet
# repository takes a small slot in a shared query and a busy one few calls; a query holds at most
# GRAPHQL_ITEMS items, far inside GitHub's limit of 500,000 nodes a call even at 100 comments each
# (docs.github.com/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api). What a page
# cannot hold (more than 100 comments, reviews or check suites on one item) is read over REST for
# that item alone. A query that fails after its retries (GitHub stops one that runs past ten
# seconds) is asked again with first-page sizes, and its streams keep to them; one that fails even
# so, or a repository the query cannot read (its alias null with an error), is read over REST
# whole, by gather_github. Listing, unlike search, has no cap of 1,000 results and no index that
# lags behind. Each reply says how many points are left (rateLimit): when too few remain, we wait
# for the reset if it is near, and otherwise stop, with what was read kept for --resume.

GRAPHQL_FIRST_PAGE = 10             # items in a stream's first page; each next page doubles, to 100
GRAPHQL_ITEMS = 100                 # items in one query, over all its streams
GRAPHQL_RESERVE = 100               # points of the hourly GraphQL budget we leave untouched

ACTOR = "author { __typename login }"
ITEM_FIELDS = ("number title state createdAt closedAt " + ACTOR + " comments(first: 100) { totalCount "
               "nodes { fullDatabaseId body authorAssociation createdAt updatedAt url " + ACTOR + " } }")
FRAGMENTS = {       # what a page holds of each item, by stream kind: (fragment name, fragment)
    "issues": ("Issue", f"fragment Issue on Issue {{ {ITEM_FIELDS} }}"),
    "pullRequests": ("Pull", f"fragment Pull on PullRequest {{ {ITEM_FIELDS} mergedAt additions deletions "
                             "headRefOid reviews(first: 100) { totalCount nodes { comments { totalCount } } } "
                             "commits(last: 1) { nodes { commit { oid checkSuites(first: 100) { totalCount "
                             "nodes { status conclusion workflowRun { databaseId } } } } } } }"),
}


@dataclass
class Stream:
    """One repository's PRs or issues, read a page at a time, newest first."""
    repo: str
    kind: str                           # "pullRequests" or "issues"
    size: int = GRAPHQL_FIRST_PAGE
    largest: int = 100                  # after a page that failed, GRAPHQL_FIRST_PAGE
    cursor: str | None = None
    done: bool = False


def streams_query(streams: list[Stream]) -> tuple[str, dict]:
    """The query for the next page of each stream (alias s<n>), and its variables."""
    declared, parts, variables = [], [], {}
    for n, stream in enumerate(streams):
        owner, name = stream.repo.split("/", 1)
        declared += [f"$o{n}: String!", f"$n{n}: String!", f"$c{n}: String"]
        variables.update({f"o{n}": owner, f"n{n}": name})
        if stream.cursor:
            variables[f"c{n}"] = stream.cursor
        parts.append(f"s{n}: repository(owner: $o{n}, name: $n{n}) {{ visibility "
                     f"{stream.kind}(first: {stream.size}, after: $c{n}, orderBy: {{field: CREATED_AT, "
                     f"direction: DESC}}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ "
                     f"...{FRAGMENTS[stream.kind][0]} }} }} }}")
    fragments = [FRAGMENTS[kind][1] for kind in FRAGMENTS if any(s.kind == kind for s in streams)]
    query = f"query({', '.join(declared)}) {{ rateLimit {{ cost remaining resetAt }} {' '.join(parts)} }} "
    return query + " ".join(fragments), variables


def rest_login(actor) -> str:
    """The login REST gives for a GraphQL author: GraphQL names an app's bot `name`, REST and our
    trusted logins `name[bot]` (fullsend-ai/fullsend#6205 shows the two side by side); a deleted
    account is null in GraphQL and `ghost` in REST."""
    if actor is None:
        return "ghost"
    actor = as_dict(actor)
    login = as_str(actor.get("login"))
    return f"{login}[bot]" if login and actor.get("__typename") == "Bot" else login


def rest_shapes(node: dict, kind: str) -> tuple[dict, list | None, dict | None, dict | None]:
    """A GraphQL item as the REST shapes github_item reads: (issue, its comments, the PR's facts,
    its head commit's CI runs by sha); None for a part the page could not hold whole."""
    pr = kind == "pullRequests"
    issue = {"number": as_int(node.get("number")), "title": as_str(node.get("title")),
             "user": {"login": rest_login(node.get("author"))},
             "state": "open" if node.get("state") == "OPEN" else "closed",
             "created_at": node.get("createdAt"), "closed_at": node.get("closedAt"),
             **({"pull_request": {"merged_at": node.get("mergedAt")}} if pr else {})}
    listed = whole(node.get("comments"))
    comments = [{"id": as_int(c.get("fullDatabaseId")), "body": as_str(c.get("body")),
                 "user": {"login": rest_login(c.get("author"))}, "author_association": c.get("authorAssociation"),
                 "created_at": c.get("createdAt"), "updated_at": c.get("updatedAt"), "html_url": c.get("url")}
                for c in listed] if listed is not None else None
    if not pr:
        return issue, comments, None, None
    reviews, head = whole(node.get("reviews")), as_str(node.get("headRefOid"))
    pull = {"additions": node.get("additions"), "deletions": node.get("deletions"),
            "merged_at": node.get("mergedAt"), "head": {"sha": head},
            "review_comments": sum(as_int(as_dict(r.get("comments")).get("totalCount")) for r in reviews)
            } if reviews is not None else None
    commit = as_dict(as_dict((as_dict(node.get("commits")).get("nodes") or [None])[-1]).get("commit"))
    suites = whole(commit.get("checkSuites")) if head and commit.get("oid") == head else None
    runs = None
    if suites is not None:
        # a run is listed once, as its latest attempt, as REST lists it
        latest = {as_int(as_dict(s.get("workflowRun")).get("databaseId")): s for s in suites if s.get("workflowRun")}
        runs = {head: [{"status": as_str(s.get("status")).lower(),
                        "conclusion": as_str(s.get("conclusion")).lower() or None} for s in latest.values()]}
    return issue, comments, pull, runs


def whole(connection) -> list[dict] | None:
    """A connection's nodes when the page holds them all, every one whole; None when it does not
    (more than a page, or a node GitHub could not give, which it answers as null with an error)."""
    connection = as_dict(connection)
    nodes = connection.get("nodes")
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes) \
            or as_int(connection.get("totalCount")) > len(nodes):
        return None
    return nodes


def read_repositories(github: GitHub, repos: list[str], since: float, until: float, trusted: set,
                      finished, listed=lambda count: None, workers: int = EXTRACT_REPOSITORIES) -> list[str]:
    """Reads these repositories over GraphQL, calling finished(name, visibility, items, failures)
    as each one ends, and listed(PRs and issues so far) after each round of queries; returns those
    GraphQL could not read, for REST."""
    streams = [Stream(name, kind) for name in repos for kind in ("pullRequests", "issues")]
    pages = {name: {} for name in repos}            # number -> (node, kind) of items that may hold sessions
    visibility, over_rest, count = {}, [], 0

    def to_rest(name: str, reason: str) -> None:
        github.warn(f"{name} over GraphQL: {reason}; reading it over REST")
        over_rest.append(name)
        for stream in streams:
            stream.done = stream.done or stream.repo == name

    import concurrent.futures  # noqa: PLC0415 - imported where used: most runs never need it
    replies = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        while any(not s.done for s in streams):
            batches = query_batches([s for s in streams if not s.done])
            wait_for_points(github, [data for _, (data, _, _) in replies if data], len(batches))
            replies = list(pool.map(lambda batch: (batch, query_page(github, batch)), batches))
            for batch, (data, errors, failure) in replies:
                shrink = failure and any(stream.size > GRAPHQL_FIRST_PAGE for stream in batch)
                for n, stream in enumerate(batch):
                    if stream.done:                     # its repository went to REST this round
                        continue
                    repository = as_dict(as_dict(data).get(f"s{n}"))
                    page = repository.get(stream.kind)
                    problem = failure or page_problem(stream, page)
                    if shrink:                          # asked again next round, in small pages
                        stream.size = stream.largest = GRAPHQL_FIRST_PAGE
                    elif problem:
                        to_rest(stream.repo, "; ".join(as_str(e.get("message")) for e in errors if (
                            e.get("path") or [None])[0] == f"s{n}") or problem)
                    else:
                        visibility[stream.repo] = as_str(repository.get("visibility")).lower()
                        count += advance(stream, page, since, until, pages[stream.repo])
            listed(count)
            ended = [name for name in pages if name not in over_rest
                     and all(s.done for s in streams if s.repo == name)]
            for name in ended:                          # each with its own few REST calls at once
                shapes = [rest_shapes(node, kind) for node, kind in pages.pop(name).values()]
                finished(name, visibility.get(name), *read_items(github.at(name), shapes, trusted))
    return over_rest


def page_problem(stream: Stream, page) -> str | None:
    """What makes a page unusable, if anything: no page, an item GitHub could not give (null, with
    an error), or a next page promised without a new cursor to ask for it by."""
    if not isinstance(page, dict):
        return "no page"
    nodes, info = page.get("nodes"), as_dict(page.get("pageInfo"))
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        return "an item GitHub could not give"
    if info.get("hasNextPage") and (not as_str(info.get("endCursor")) or info.get("endCursor") == stream.cursor):
        return "a next page without a cursor"
    return None


def query_batches(streams: list[Stream]) -> list[list[Stream]]:
    """The streams in queries of at most GRAPHQL_ITEMS items, biggest pages first."""
    batches, room = [], []
    for stream in sorted(streams, key=lambda s: -s.size):
        for n, batch in enumerate(batches):
            if room[n] >= stream.size:
                batch.append(stream)
                room[n] -= stream.size
                break
        else:
            batches.append([stream])
            room.append(GRAPHQL_ITEMS - stream.size)
    return batches


def query_page(github: GitHub, batch: list[Stream]) -> tuple[dict | None, list, str | None]:
    """(data, errors, why it failed) of one query; a failure other than gh's own or a spent
    budget leaves its repositories to REST."""
    query, variables = streams_query(batch)
    try:
        data, errors = github.graphql(query, **variables)
        return data, errors, None
    except GitHubError as exc:
        if exc.code in (EXIT_GH_MISSING, EXIT_GH_AUTH, EXIT_RATE_LIMIT):
            raise                   # REST would not help: stop, and keep what was read for --resume
        return None, [], str(exc)


def advance(stream: Stream, page: dict, since: float, until: float, kept: dict) -> int:
    """Keeps the page's items created in the range that may hold a session comment (one is on the
    page, or not all its comments are); moves the stream on. Returns how many items it listed."""
    nodes = page["nodes"]
    for node in nodes:
        created = parse_ts(node.get("createdAt"))
        listed = whole(node.get("comments"))
        if created is not None and since <= created <= until and (
                listed is None or any(session_marker_id(c.get("body")) for c in listed)):
            kept[as_int(node.get("number"))] = (node, stream.kind)
    info = as_dict(page.get("pageInfo"))
    oldest = parse_ts(nodes[-1].get("createdAt")) if nodes else None
    stream.done = not nodes or not info.get("hasNextPage") or (oldest is not None and oldest < since)
    stream.cursor, stream.size = as_str(info.get("endCursor")), min(stream.size * 2, stream.largest)
    return len(nodes)


def wait_for_points(github: GitHub, replies: list[dict], queries: int = 1) -> None:
    """Waits for GitHub's GraphQL budget to reset when the next queries (each costing what the
    dearest last one did) would leave fewer than GRAPHQL_RESERVE points; a reset further off than
    we wait stops the run (what was read is kept for --resume)."""
    limits = [as_dict(r.get("rateLimit")) for r in replies if as_dict(r.get("rateLimit")).get("remaining") is not None]
    if not limits:
        return
    lowest = min(limits, key=lambda r: as_int(r.get("remaining")))
    cost = max(max(as_int(r.get("cost")) for r in limits), 1)
    if as_int(lowest.get("remaining")) - queries * cost >= GRAPHQL_RESERVE:
        return
    reset = parse_ts(lowest.get("resetAt"))
    wait = max(reset - time.time(), 0.0) + 1.0 if reset is not None else github.max_wait + 1
    if wait > github.max_wait:
        raise GitHubError(f"GitHub's GraphQL budget is spent ({as_int(lowest.get('remaining'))} points left "
                          f"until {lowest.get('resetAt') or 'its reset'}); run again with --resume then",
                          EXIT_RATE_LIMIT)
    github.warn(f"{as_int(lowest.get('remaining'))} GraphQL points left; waiting {wait:.0f}s for the reset")
    github.sleep(wait)


def outbound_items(items: list[dict], privacy: Privacy) -> list[dict]:
    """Extract items as they may leave: every session through the privacy gate, a PR's title
    scrubbed (GitHub shows it, but a title may carry what a comment must not), logins as logins."""
    out = []
    for item in items:
        sessions = [s for s in (outbound_stats(x, privacy) for x in item["sessions"]) if "session_id" in s]
        author = as_str(item.get("author"))
        out.append({**item, "title": scrub(item["title"], privacy) if item.get("title") else item.get("title"),
                    "author": author if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9\-]*(?:\[bot\])?", author) else None,
                    "sessions": sessions})
    return out


class Item(TypedDict):
    """A PR or issue with the sessions posted on it; from local transcripts, one session alone."""
    number: int | None
    type: str | None            # "pr", "issue", or None for a local session
    title: str | None
    author: str | None
    status: str | None          # open, closed, merged
    created_at: str | None
    closed_at: str | None
    merged_at: str | None
    additions: int | None
    deletions: int | None
    review_comments: int | None
    ci_runs: int | None
    ci_pass_rate: float | None
    sessions: list[Stats]


def local_items(sessions: list[Stats]) -> list[Item]:
    """Each local session as an item of its own. Its PR is the last one its pr-link records name
    (Claude Code writes one when the session opens or names a PR); the other GitHub fields stay
    empty, as nothing was asked of GitHub."""
    def item(stats: Stats) -> Item:
        links = [link for link in stats.get("pr_links") or [] if isinstance(link, dict)]
        number = as_int(links[-1].get("number")) if links else None
        return {"number": number, "type": "pr" if number else None, "title": None, "author": None,
                "status": None, "created_at": stats.get("started_at"), "closed_at": None, "merged_at": None,
                "additions": None, "deletions": None, "review_comments": None, "ci_runs": None,
                "ci_pass_rate": None, "sessions": [stats]}
    return [item(s) for s in sorted(sessions, key=lambda s: (as_str(s.get("started_at")), s["session_id"]))]


# ── CSV ──

def _per_key_tokens(entries, key: str) -> str:
    totals = {}
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        tokens = as_dict(entry.get("tokens"))
        slot = totals.setdefault(as_str(entry.get(key)) or "unknown", {"in": 0, "out": 0})
        slot["in"] += as_int(tokens.get("input"))
        slot["out"] += as_int(tokens.get("output"))
    return json.dumps(totals, ensure_ascii=False, allow_nan=False, sort_keys=True) if totals else ""


def csv_rows(items: list[dict]) -> list[list]:
    """One row per session, the columns of CSV_COLUMNS in order; first its repository when the
    items come from several."""
    rows = []
    for item in items:
        status = item.get("status")
        for s in item["sessions"]:
            totals = as_dict(s.get("total_tokens"))
            problems = [p for p in s.get("problems_faced") or [] if isinstance(p, dict)]
            rows.append([
                item.get("number"), item.get("type"), item.get("title"), item.get("author"), status,
                s.get("session_id"), s.get("started_at"), s.get("duration_minutes"),
                ",".join(as_dict(s.get("models"))),
                as_int(totals.get("input")), as_int(totals.get("output")),
                as_int(totals.get("cache_creation")), as_int(totals.get("cache_read")),
                csv_cost(s), list_total(s, "commits"),
                ";".join(as_str(c.get("commit_id")) for c in s.get("commits") or [] if isinstance(c, dict)),
                item.get("ci_runs"), item.get("ci_pass_rate"),
                ",".join(as_str(k.get("skill")) for k in s.get("skills_invoked") or [] if isinstance(k, dict)),
                _per_key_tokens(s.get("skills_invoked"), "skill"), list_total(s, "subagents"),
                _per_key_tokens(s.get("subagents"), "type"),
                len(problems) + as_int(as_dict(s.get("omitted")).get("problems_faced")),
                sum(1 for p in problems if p.get("resolved")),
                item.get("review_comments"), item.get("additions"), item.get("deletions"),
                _hours_between(item.get("created_at"), item.get("merged_at")), status, s.get("session_author"),
            ])
            if several_repositories(items):
                rows[-1].insert(0, item.get("repository"))
    return rows


def several_repositories(items: list[dict]) -> bool:
    return any(item.get("repository") for item in items)


def csv_cost(stats: dict):
    """The cost as a number; '>=12.34' when unpriced models make it a lower bound, else 'unknown'."""
    cost = stats.get("estimated_cost_usd")
    if cost_complete(stats):
        return cost
    return f">={cost:.4f}".rstrip("0").rstrip(".") if cost else "unknown"


def csv_cell(value) -> str:
    """A cell as text; text that a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_csv(rows: list[list], repository: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")      # RFC 4180
    writer.writerow(((REPOSITORY_COLUMN,) if repository else ()) + CSV_COLUMNS)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()


# ── the numbers the report and the dashboard share ──

def analytics_view(data: dict) -> dict:
    """Everything the report and the dashboard show, computed once from analytics.json: the
    figures of the summary, and one table each (items, models, skills, days, projects, tools,
    top sessions, weeks). Every sum is a Tally."""
    items = data.get("items") or []
    sessions = [s for i in items for s in i["sessions"]]
    prs = [i for i in items if i.get("type") == "pr"]
    decided = [i for i in prs if i.get("status") in ("merged", "closed")]
    merge_hours = [h for h in (_hours_between(i.get("created_at"), i.get("merged_at")) for i in prs)
                   if h is not None]
    total = Tally()
    for s in sessions:
        total.add_session(s)
    per_item = view_items(items)
    days = view_days(sessions)
    skills = view_skills(sessions)
    pr_cost = Tally()
    for p in per_item:
        if p["type"] == "pr":
            pr_cost.add({}, p["cost"])
    return {
        "repo": data.get("repo"), "from": data.get("from"), "to": data.get("to"), "source": data.get("source"),
        "pr_count": len(prs), "issue_count": sum(1 for i in items if i.get("type") == "issue"),
        "session_count": len(sessions), "total_cost": total.cost_usd,
        "active_hours": round(sum(s.get("active_minutes") or 0 for s in sessions) / 60, 1),
        "cost_complete": not total.unpriced, "unpriced_models": sorted(total.unpriced),
        "claude_code": claude_code_totals(sessions),
        "total_commits": sum(list_total(s, "commits") for s in sessions),
        "total_tokens": total.total_tokens,
        "avg_cost_per_pr": round(pr_cost.cost_usd / len(prs), 4) if prs else None,
        "acceptance_rate": round(100 * sum(1 for i in decided if i["status"] == "merged") / len(decided), 1)
        if decided else None,
        "avg_hours_to_merge": round(sum(merge_hours) / len(merge_hours), 1) if merge_hours else None,
        "items": per_item,
        "models": view_models(sessions),
        "skills": skills,
        "days": days,
        "cost_over_time": _cost_over_time(days),
        "projects": view_projects(sessions),
        "tools": view_tools(sessions),
        "top_sessions": view_top_sessions(sessions),
        "weeks": view_weeks(decided),
        "outcomes": view_outcomes(per_item, total.cost_usd, sum(list_total(s, "commits") for s in sessions),
                                  not total.unpriced, failed_skill_runs(skills)),
        "budget_usd": data.get("budget_usd"),
        "authors": view_groups([(s.get("session_author") or "unknown", s) for s in sessions]),
        "months": dict(sorted(view_groups([(_day(s.get("started_at"))[:7], s) for s in sessions]).items())),
        "repositories": view_groups([(i.get("repository"), s) for i in items for s in i["sessions"]])
        if several_repositories(items) else {},
        "over_budget": [p for p in per_item if p["type"] == "pr" and data.get("budget_usd")
                        and p["cost"] > data["budget_usd"]],
        "day_axis": every_day(days),
        "week_axis": every_week(view_weeks(decided)),
        "failures": data.get("failures") or [],
    }


def view_items(items: list[dict]) -> list[dict]:
    """One row per PR, issue or (from local transcripts) session."""
    rows = []
    for i in items:
        tally = Tally()
        for s in i["sessions"]:
            tally.add_session(s)
        first = i["sessions"][0] if i["sessions"] else {}
        rows.append({"label": f"#{i['number']}" if i.get("number") is not None
                     else as_str(first.get("session_id"))[:8],
                     "project": first.get("cwd") or first.get("project"), "session_title": first.get("title"),
                     "started_at": first.get("started_at"),
                     "number": i.get("number"), "type": i.get("type"), "title": i.get("title"),
                     "status": i.get("status"), "sessions": len(i["sessions"]), "cost": tally.cost_usd,
                     "cost_complete": all(cost_complete(s) for s in i["sessions"]),
                     "commits": sum(list_total(s, "commits") for s in i["sessions"]), "tokens": tally.total_tokens,
                     "ci_pass_rate": i.get("ci_pass_rate"),
                     "time_to_merge_hours": _hours_between(i.get("created_at"), i.get("merged_at"))})
    return rows


def view_groups(pairs: list) -> dict:
    """(name, session) pairs summed by name: sessions, cost, commits, tokens; costliest first."""
    tallies, commits = {}, collections.Counter()
    for name, stats in pairs:
        tallies.setdefault(as_str(name) or "unknown", Tally()).add_session(stats)
        commits[as_str(name) or "unknown"] += list_total(stats, "commits")
    groups = {name: {"sessions": t.count, "cost": t.cost_usd, "cost_complete": t.complete,
                     "commits": commits[name], "tokens": t.total_tokens} for name, t in tallies.items()}
    return dict(sorted(groups.items(), key=lambda kv: (-kv[1]["cost"], kv[0])))


def view_outcomes(per_item: list[dict], total_cost: float, commits: int, complete: bool,
                  failed_skills: dict) -> dict:
    """What the spend bought: cost per merged PR and per PR closed unmerged (median and total),
    per commit, the share of PR spend on PRs never merged, and what failed skill runs cost. Each
    figure says how many PRs (commits, runs) it rests on, and whether a cost in it is a lower bound."""
    def figures(rows):
        costs = sorted(p["cost"] for p in rows)
        return {"prs": len(rows), "total_usd": round(sum(costs), 4),
                "median_usd": round((costs[(len(costs) - 1) // 2] + costs[len(costs) // 2]) / 2, 4) if costs else None,
                "cost_complete": all(p["cost_complete"] for p in rows)}
    prs = [p for p in per_item if p["type"] == "pr" and p["status"]]     # local sessions know no PR's fate
    merged = figures([p for p in prs if p["status"] == "merged"])
    unmerged = figures([p for p in prs if p["status"] == "closed"])
    pr_spend = sum(p["cost"] for p in prs)
    return {"merged": merged, "closed_unmerged": unmerged,
            "per_commit_usd": round(total_cost / commits, 4) if commits else None, "commits": commits,
            "per_commit_complete": complete,
            "unmerged_share_percent": round(100 * unmerged["total_usd"] / pr_spend, 1) if pr_spend else None,
            "prs": len(prs), "failed_skill_runs": failed_skills}


def view_models(sessions: list[dict]) -> dict:
    """Per model: sessions, tokens and cost, costliest first."""
    tallies = {}
    for s in sessions:
        for name, m in as_dict(s.get("models")).items():
            m = as_dict(m)
            tallies.setdefault(name, Tally()).add(_tokens_of(m), m.get("cost_usd"))
    models = {name: {"sessions": t.count, **t.tokens, "cost": t.cost_usd, "cost_complete": t.complete}
              for name, t in tallies.items()}
    return dict(sorted(models.items(), key=lambda kv: (-kv[1]["cost"], kv[0])))


def view_skills(sessions: list[dict]) -> dict:
    """Per skill: sessions, invocations, their outcomes, tokens and cost, and what its failed runs
    cost (a session's runs of a skill fail when its last run does), most invoked first. A run
    with no cost (an unpriced model, or a comment posted before skills were priced) makes the
    sum a lower bound."""
    skills = {}
    for s in sessions:
        for k in s.get("skills_invoked") or []:
            if not isinstance(k, dict):
                continue
            agg = skills.setdefault(as_str(k.get("skill")), {
                "sessions": 0, "invocations": 0, "pass": 0, "fail": 0, "unknown": 0, "input": 0, "output": 0,
                "cost": 0.0, "cost_complete": True, "fail_cost": 0.0, "fail_cost_complete": True})
            status = k.get("status") if k.get("status") in ("pass", "fail") else "unknown"
            cost = _finite(k.get("cost_usd"))
            agg["sessions"] += 1
            agg["invocations"] += as_int(k.get("count"))
            agg[status] += 1
            agg["input"] += as_int(as_dict(k.get("tokens")).get("input"))
            agg["output"] += as_int(as_dict(k.get("tokens")).get("output"))
            for prefix in ("", "fail_") if status == "fail" else ("",):
                agg[prefix + "cost"] = round_cost(agg[prefix + "cost"] + (cost or 0.0))
                agg[prefix + "cost_complete"] = agg[prefix + "cost_complete"] and cost is not None
    return dict(sorted(skills.items(), key=lambda kv: (-kv[1]["invocations"], kv[0])))


def failed_skill_runs(skills: dict) -> dict:
    """What skills' failed runs cost, over every skill: the outcome figure."""
    failing = [k for k in skills.values() if k["fail"]]
    return {"runs": sum(k["fail"] for k in failing), "skills": len(failing),
            "cost_usd": round_cost(sum(k["fail_cost"] for k in failing)),
            "cost_complete": all(k["fail_cost_complete"] for k in failing)}


def view_days(sessions: list[dict]) -> dict:
    """Per UTC day a session started: tokens and cost, in date order."""
    tallies = {}
    for s in sessions:
        tallies.setdefault(_day(s.get("started_at")) or "unknown", Tally()).add_session(s)
    return {day: {**t.tokens, "cost": t.cost_usd, "cost_complete": t.complete}
            for day, t in sorted(tallies.items())}


def view_projects(sessions: list[dict]) -> dict:
    """Per project (working folder): sessions, cost and tokens, the costliest fifteen."""
    tallies = {}
    for s in sessions:
        tallies.setdefault(as_str(s.get("cwd") or s.get("project")) or "unknown", Tally()).add_session(s)
    projects = {name: {"sessions": t.count, "cost": t.cost_usd, "cost_complete": t.complete,
                       "tokens": t.total_tokens} for name, t in tallies.items()}
    return dict(sorted(projects.items(), key=lambda kv: (-kv[1]["cost"], kv[0]))[:15])


def view_tools(sessions: list[dict]) -> dict:
    """The twelve most called tools over every session."""
    tools = collections.Counter()
    for s in sessions:
        tools.update({as_str(name): as_int(n) for name, n in as_dict(s.get("tools")).items()})
    return dict(sorted(tools.items(), key=lambda kv: (-kv[1], kv[0]))[:12])


def view_top_sessions(sessions: list[dict]) -> list[dict]:
    """The ten costliest sessions."""
    return sorted(({"label": as_str(s.get("session_id"))[:8], "title": s.get("title"),
                    "project": s.get("cwd") or s.get("project"), "cost": round(s.get("estimated_cost_usd") or 0, 4)}
                   for s in sessions), key=lambda t: (-t["cost"], t["label"]))[:10]


def view_weeks(decided: list[dict]) -> dict:
    """Per ISO week a decided PR was opened: how many were merged."""
    weeks = {}
    for i in decided:
        stamp = parse_ts(i.get("created_at"))
        week = time.strftime("%G-W%V", time.gmtime(stamp)) if stamp is not None else "unknown"
        slot = weeks.setdefault(week, {"merged": 0, "decided": 0})
        slot["decided"] += 1
        slot["merged"] += i.get("status") == "merged"
    return {w: {**v, "rate": round(100 * v["merged"] / v["decided"], 1)} for w, v in sorted(weeks.items())}


def every_day(days: dict) -> list[str]:
    """Every day from the first to the last of `days` (YYYY-MM-DD keys), the empty ones too."""
    dates = sorted(datetime.date.fromisoformat(d) for d in days if d != "unknown")
    if not dates:
        return []
    return [(dates[0] + datetime.timedelta(days=n)).isoformat() for n in range((dates[-1] - dates[0]).days + 1)]


def every_week(weeks: dict) -> list[str]:
    """Every ISO week (YYYY-Www) from the first to the last of `weeks`, the empty ones too."""
    mondays = sorted(datetime.date.fromisocalendar(int(w[:4]), int(w[6:]), 1) for w in weeks if w != "unknown")
    if not mondays:
        return []
    return [(mondays[0] + datetime.timedelta(weeks=n)).strftime("%G-W%V")
            for n in range((mondays[-1] - mondays[0]).days // 7 + 1)]


def _cost_over_time(days: dict) -> dict:
    """Cost per day, or per week (named by its Monday) when the days span more than two months;
    every day or week of the range, the empty ones at zero, so that the bars read as time."""
    dates = sorted(d for d in days if d != "unknown")
    weekly = len(dates) > 1 and \
        (datetime.date.fromisoformat(dates[-1]) - datetime.date.fromisoformat(dates[0])).days > 62
    points = {}
    for day in every_day(days):
        date = datetime.date.fromisoformat(day)
        key = (date - datetime.timedelta(days=date.weekday())).isoformat() if weekly else day
        points[key] = round(points.get(key, 0) + (days[day]["cost"] if day in days else 0), 4)
    return {"unit": "week" if weekly else "day", "points": points}


def claude_code_totals(sessions: list[dict]) -> dict:
    """Claude Code's own records summed over the sessions that have one, beside our estimate of
    the same sessions, and how many of them disagree."""
    records = [(s, as_dict(s.get("claude_code_cost"))) for s in sessions]
    records = [(s, r) for s, r in records if isinstance(r.get("total_cost_usd"), (int, float))]
    return {"sessions": len(records), "cost_usd": round(sum(r["total_cost_usd"] for _, r in records), 4),
            "estimated_usd": round(sum(s.get("estimated_cost_usd") or 0 for s, _ in records), 4),
            "disagree": sum(1 for _, r in records if not r.get("agrees"))}


def period_text(view: dict, markdown: bool = True) -> str:
    escape = md_text if markdown else str
    if not view["from"] and not view["to"]:
        return "all sessions"
    return f"{escape(view['from'] or 'the first session')} to {escape(view['to'] or 'the last session')}"


def claude_code_text(totals: dict) -> str:
    """'$1.23 for 4 sessions (estimate $1.20; 1 differs)'."""
    n = totals["sessions"]
    text = (f"{format_cost(totals['cost_usd'])} for {n} session{'' if n == 1 else 's'} "
            f"(estimate {format_cost(totals['estimated_usd'])}")
    return text + (f"; {totals['disagree']} differ{'s' if totals['disagree'] == 1 else ''})" if totals["disagree"]
                   else ")")


def _percent(value) -> str:
    return "-" if value is None else f"{value:g}%"


def _hours(value) -> str:
    return "-" if value is None else f"{value:g}h"


REPORT_TEMPLATE = """\
# Claude Code Analytics Report

**Period:** {period}
**Repository:** {repo}

## Summary

{summary}
## Per-PR Breakdown

{per_item}
## Model Usage Distribution

{models}
## Skill Effectiveness

{skills}
## What the Spend Bought

{outcomes}{groups}{over_budget}{failures}"""


def render_report(data: dict, v: dict | None = None) -> str:
    """The Markdown report (from analytics_view(data), when it is not given); every number comes
    from the same rows as the CSV."""
    v = v or analytics_view(data)
    summary = md_table(["Metric", "Value"], [
        ["PRs with session data", str(v["pr_count"])], ["Issues with session data", str(v["issue_count"])],
        ["Total sessions", str(v["session_count"])],
        ["Total cost", format_cost(v["total_cost"], v["cost_complete"])
         + (f" ({md_text(unpriced_note(v['unpriced_models']))})" if v["unpriced_models"] else "")],
        ["Total commits", str(v["total_commits"])], ["Total tokens", format_tokens(v["total_tokens"])],
        ["Average cost per PR", format_cost(v["avg_cost_per_pr"], v["cost_complete"])
         if v["avg_cost_per_pr"] is not None else "-"],
        ["PR acceptance rate", _percent(v["acceptance_rate"])],
        ["Average time to merge", _hours(v["avg_hours_to_merge"])]]
        + ([["Claude Code's own record", claude_code_text(v["claude_code"])]] if v["claude_code"]["sessions"] else []))
    per_item = md_table(
        ["Item", "Type", "Title", "Status", "Sessions", "Cost", "Commits", "Tokens", "CI pass rate", "Time to merge"],
        [[md_text(p["label"]), md_text(p["type"] or "session"), md_text(p["title"] or "-", 80),
          md_text(p["status"] or "-"), str(p["sessions"]), format_cost(p["cost"], p["cost_complete"]),
          str(p["commits"]),
          format_tokens(p["tokens"]), _percent(p["ci_pass_rate"]), _hours(p["time_to_merge_hours"])]
         for p in v["items"]]) if v["items"] else "_No sessions in this period._\n"
    total_cost = v["total_cost"] or 0
    models = md_table(
        ["Model", "Sessions", "Input", "Output", "Cache Create", "Cache Read", "Est. Cost", "Share of cost"],
        [[md_text(name), str(m["sessions"]), format_tokens(m["input"]), format_tokens(m["output"]),
          format_tokens(m["cache_creation"]), format_tokens(m["cache_read"]),
          format_cost(m["cost"] if m["cost_complete"] else None),
          f"{100 * m['cost'] / total_cost:.1f}%" if total_cost and m["cost_complete"] else "-"]
         for name, m in v["models"].items()]) if v["models"] else "_No model usage._\n"
    skills = md_table(
        ["Skill", "Sessions", "Invocations", "Pass", "Fail", "Unknown", "Input", "Output", "Output per invocation",
         "Cost", "Cost of failed runs"],
        [[md_text(name), str(k["sessions"]), str(k["invocations"]), str(k["pass"]), str(k["fail"]),
          str(k["unknown"]), format_tokens(k["input"]), format_tokens(k["output"]),
          format_tokens(k["output"] // k["invocations"]) if k["invocations"] else "-",
          format_cost(k["cost"], k["cost_complete"]),
          format_cost(k["fail_cost"], k["fail_cost_complete"]) if k["fail"] else "-"]
         for name, k in v["skills"].items()]) if v["skills"] else "_No skills invoked._\n"
    failures = ""
    if v["failures"]:
        failures = "\n## Not Read\n\n" + "".join(f"- #{f['number']}: {md_text(f['error'])}\n" for f in v["failures"])
    over_budget = ""
    if v["budget_usd"]:
        over_budget = f"\n## Over Budget ({format_cost(v['budget_usd'])} a PR)\n\n" + (md_table(
            ["PR", "Title", "Status", "Cost", "Of the budget"],
            [[md_text(p["label"]), md_text(p["title"] or "-", 80), md_text(p["status"] or "-"),
              format_cost(p["cost"], p["cost_complete"]), f"{100 * p['cost'] / v['budget_usd']:.0f}%"]
             for p in v["over_budget"]]) if v["over_budget"] else "_No PR over its budget._\n")
    return REPORT_TEMPLATE.format(period=period_text(v),
                                  repo=md_text(v["repo"] or "local transcripts"), summary=summary,
                                  per_item=per_item, models=models, skills=skills,
                                  outcomes=render_outcomes(v["outcomes"]), groups=render_groups(v),
                                  over_budget=over_budget,
                                  failures=failures)


def spend_groups(v: dict) -> list[tuple[str, str, dict]]:
    """(title, label, groups) of the spend tables: by repository (an extract of several), by the
    person who ran the sessions (from GitHub), and by month (when the sessions span several)."""
    return [("By Repository", "Repository", v["repositories"]),
            ("By Person", "Person", v["authors"] if v["source"] != "local" else {}),
            ("By Month", "Month", v["months"] if len(v["months"]) > 1 else {})]


def render_groups(v: dict) -> str:
    """The spend tables of spend_groups, in Markdown."""
    text = ""
    for title, label, groups in spend_groups(v):
        if groups:
            text += f"\n## {title}\n\n" + md_table(
                [label, "Sessions", "Cost", "Commits", "Tokens"],
                [[md_text(name), str(g["sessions"]), format_cost(g["cost"], g["cost_complete"]), str(g["commits"]),
                  format_tokens(g["tokens"])] for name, g in groups.items()])
    return text


OUTCOME_HEADER = ["Figure", "Value", "Rests on"]


def outcome_rows(o: dict) -> list[list[str]]:
    """The outcome figures, each with what it rests on: the PR figures when there are PRs, and
    what failed skill runs cost when any failed."""
    def money(value, complete):
        return format_cost(value, complete) if value is not None else "-"
    m, u, f = o["merged"], o["closed_unmerged"], o["failed_skill_runs"]
    rows = [
        ["Cost per merged PR (median)", money(m["median_usd"], m["cost_complete"]), plural(m["prs"], "merged PR")],
        ["Cost of merged PRs (total)", money(m["total_usd"], m["cost_complete"]), plural(m["prs"], "merged PR")],
        ["Cost per PR closed unmerged (median)", money(u["median_usd"], u["cost_complete"]),
         plural(u["prs"], "closed PR")],
        ["Cost of PRs closed unmerged (total)", money(u["total_usd"], u["cost_complete"]),
         plural(u["prs"], "closed PR")],
        ["Share of PR spend on PRs never merged", _percent(o["unmerged_share_percent"]), plural(o["prs"], "PR")],
        ["Cost per commit", money(o["per_commit_usd"], o["per_commit_complete"]), plural(o["commits"], "commit")],
    ] if o["prs"] else []
    if f["runs"] or rows:
        rows.append(["Cost of failed skill runs", money(f["cost_usd"], f["cost_complete"]) if f["runs"] else "-",
                     plural(f["runs"], "failed skill run") + (f" of {plural(f['skills'], 'skill')}" if f["runs"] else "")])
    return rows


def render_outcomes(o: dict) -> str:
    rows = outcome_rows(o)
    return md_table(OUTCOME_HEADER, rows) if rows else "_No PRs in this period._\n"


# ── the dashboard ──

# The page, its style and its script as they are (a string.Template: $name is filled in, and the
# braces of CSS and JavaScript need no doubling).
DASHBOARD_TEMPLATE = string.Template("""\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Claude Code Analytics: $title</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
  header { background: #24292f; color: #fff; padding: 18px 28px; }
  header h1 { margin: 0 0 4px; font-size: 20px; }
  header p { margin: 0; opacity: .8; }
  main { padding: 20px 28px; max-width: 1280px; margin: auto; }
  .cards { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 12px; }
  @media (max-width: 720px) { .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
  .card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 12px 14px; }
  .card b { display: block; font-size: 22px; margin-top: 2px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; margin-top: 18px; }
  figure { margin: 0; background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 12px; }
  figcaption { font-weight: 600; margin-bottom: 6px; }
  .chart { position: relative; height: 300px; }
  .empty { color: #656d76; font-style: italic; }
  table { border-collapse: collapse; width: 100%; background: #fff; margin: 8px 0 20px; }
  th, td { border: 1px solid #d0d7de; padding: 5px 8px; text-align: left; }
  th { background: #f0f3f6; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  h2 { margin-top: 28px; font-size: 17px; }
</style>
$chartjs
</head>
<body>
<header><h1>Claude Code Analytics</h1><p>$subtitle</p></header>
<main>
$notice<section class="cards">$cards</section>
<section class="charts">
$figures</section>
<h2>$items_heading</h2>
$items_table
<h2>Models</h2>
$models_table
<h2>Skills</h2>
$skills_table
<h2>$last_heading</h2>
$last_table
$groups</main>
<script type="application/json" id="analytics-data">$data</script>
<script>
(function () {
  var view = JSON.parse(document.getElementById('analytics-data').textContent);
  if (typeof Chart === 'undefined') {
    document.querySelectorAll('.chart').forEach(function (box) {
      box.innerHTML = '<p class="empty">Charts need Chart.js, which did not load; the tables below hold the same data.</p>';
    });
    return;
  }
  document.querySelectorAll('.needs-network').forEach(function (note) { note.remove(); });
  var palette = ['#0969da', '#1a7f37', '#bf8700', '#cf222e', '#8250df', '#1b7c83', '#bc4c00', '#57606a'];
  function draw(id, hasData, config) {
    var canvas = document.getElementById(id);
    if (!canvas) {
      return;                       // a panel this page does not show
    }
    if (!hasData) {
      canvas.parentNode.innerHTML = '<p class="empty">No data for this chart in this period.</p>';
      return;
    }
    config.options = Object.assign({responsive: true, maintainAspectRatio: false, animation: false}, config.options || {});
    new Chart(canvas, config);
  }
  // Time runs along a continuous axis (every day or week of the range, empty ones included), so
  // that distances read as time; a range too short for a line is drawn as bars.
  function overTime(labels) { return labels.length < 3 ? 'bar' : 'line'; }
  var days = view.day_axis;
  draw('tokens-over-time', days.length > 0, {type: overTime(days), data: {labels: days, datasets: [
    ['input', 'Input'], ['output', 'Output'], ['cache_creation', 'Cache create'], ['cache_read', 'Cache read']
  ].map(function (k, n) { return {label: k[1], data: days.map(function (d) { return view.days[d] ? view.days[d][k[0]] : 0; }),
    borderColor: palette[n], backgroundColor: palette[n], tension: 0}; })}});
  var prs = view.items.filter(function (i) { return i.type === 'pr'; });
  draw('cost-per-pr', prs.length > 0, {type: 'bar', data: {labels: prs.map(function (p) { return p.label; }),
    datasets: [{label: 'Cost (USD)', data: prs.map(function (p) { return p.cost; }), backgroundColor: palette[0]}]}});
  var skills = Object.keys(view.skills);
  draw('skills-frequency', skills.length > 0, {type: 'pie', data: {labels: skills, datasets: [{
    data: skills.map(function (s) { return view.skills[s].invocations; }),
    backgroundColor: skills.map(function (s, n) { return palette[n % palette.length]; })}]}});
  var weeks = view.week_axis;
  draw('acceptance-trend', weeks.length > 0, {type: overTime(weeks), data: {labels: weeks, datasets: [{
    label: 'Merged of decided PRs (%)', data: weeks.map(function (w) { return view.weeks[w] ? view.weeks[w].rate : null; }),
    borderColor: palette[1], backgroundColor: palette[1], spanGaps: true}]}, options: {scales: {y: {min: 0, max: 100}}}});
  var models = Object.keys(view.models);
  draw('model-distribution', models.length > 0, {type: 'doughnut', data: {labels: models, datasets: [{
    data: models.map(function (m) { return view.models[m].cost; }),
    backgroundColor: models.map(function (m, n) { return palette[n % palette.length]; })}]}});
  var periods = Object.keys(view.cost_over_time.points);
  draw('cost-over-time', periods.length > 0, {type: 'bar', data: {labels: periods, datasets: [{
    label: 'Cost (USD) per ' + view.cost_over_time.unit,
    data: periods.map(function (p) { return view.cost_over_time.points[p]; }), backgroundColor: palette[2]}]}});
  var projects = Object.keys(view.projects);
  function tail(path) { return path.split('/').filter(Boolean).slice(-2).join('/') || path; }
  draw('project-cost', projects.length > 0, {type: 'bar', data: {labels: projects.map(tail), datasets: [
    {label: 'Cost (USD)', yAxisID: 'y', backgroundColor: palette[0],
      data: projects.map(function (p) { return view.projects[p].cost; })},
    {label: 'Tokens', yAxisID: 'y1', backgroundColor: palette[4],
      data: projects.map(function (p) { return view.projects[p].tokens; })}]},
    options: {scales: {y: {position: 'left'}, y1: {position: 'right', grid: {drawOnChartArea: false}}}}});
  var tools = Object.keys(view.tools);
  draw('tool-usage', tools.length > 0, {type: 'bar', data: {labels: tools, datasets: [{
    label: 'Tool calls', data: tools.map(function (t) { return view.tools[t]; }), backgroundColor: palette[5]}]}});
  draw('top-sessions', view.top_sessions.length > 0, {type: 'bar', data: {
    labels: view.top_sessions.map(function (t) { return t.label; }), datasets: [{label: 'Cost (USD)',
      data: view.top_sessions.map(function (t) { return t.cost; }), backgroundColor: palette[3]}]},
    options: {indexAxis: 'y'}});
})();
</script>
</body>
</html>
""")


def _h(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _html_table(header: list[str], rows: list[list], numeric: set = frozenset()) -> str:
    if not rows:
        return '<p class="empty">None in this period.</p>'
    head = "".join(f"<th>{_h(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{_h(c)}</td>' if i in numeric else f"<td>{_h(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"


def script_json(obj) -> str:
    """JSON that can sit inside <script> without ending it or opening a comment."""
    return (json.dumps(obj, ensure_ascii=False, allow_nan=False, sort_keys=True).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029"))


GITHUB_PANELS = (("tokens-over-time", "Token usage over time"), ("cost-per-pr", "Cost per PR"),
                 ("skills-frequency", "Skills usage frequency"), ("acceptance-trend", "Acceptance rate trend"),
                 ("model-distribution", "Model distribution (cost)"))
# Without GitHub there are no PRs to cost or accept: those panels give way to local ones.
LOCAL_PANELS = (("tokens-over-time", "Token usage over time"), ("cost-over-time", "Cost over time"),
                ("project-cost", "Cost and tokens per project"), ("skills-frequency", "Skills usage frequency"),
                ("model-distribution", "Model distribution (cost)"), ("top-sessions", "Top sessions by cost"))


def dashboard_panels(v: dict) -> tuple:
    """The panels a page shows: GitHub's five, or for local data the local six (tool calls in place
    of skills when no session invoked one)."""
    if v["source"] != "local":
        return GITHUB_PANELS
    if v["skills"] or not v["tools"]:
        return LOCAL_PANELS
    return tuple(("tool-usage", "Tool calls by tool") if key == "skills-frequency" else (key, title)
                 for key, title in LOCAL_PANELS)


def render_dashboard(data: dict, chartjs_source: str | None = None, v: dict | None = None) -> str:
    """A self-contained page: summary cards, the charts and the same data as plain tables (from
    analytics_view(data), when it is not given)."""
    v = v or analytics_view(data)
    local = v["source"] == "local"
    if chartjs_source is not None:
        chartjs = "<script>\n" + chartjs_source.replace("</script", "<\\/script") + "\n</script>"
    else:
        chartjs = (f'<script src="{CHARTJS_URL}" integrity="{CHARTJS_SRI}" crossorigin="anonymous" '
                   'referrerpolicy="no-referrer"></script>')
    common = (("Sessions", v["session_count"]), ("Total cost", format_cost(v["total_cost"], v["cost_complete"])),
              ("Commits", v["total_commits"]), ("Tokens", format_tokens(v["total_tokens"])))
    if local:
        average = v["total_cost"] / v["session_count"] if v["session_count"] else None
        extra = (("Projects", len(v["projects"])), ("Models", len(v["models"])),
                 ("Avg. cost per session", format_cost(average, v["cost_complete"]) if average is not None else "-"),
                 ("Claude Code's own record", format_cost(v["claude_code"]["cost_usd"]))
                 if v["claude_code"]["sessions"] else ("Active hours", f"{v['active_hours']:g}"))
    else:
        extra = (("PRs", v["pr_count"]), ("Issues", v["issue_count"]),
                 ("PR acceptance", _percent(v["acceptance_rate"])), ("Avg. time to merge", _hours(v["avg_hours_to_merge"])))
    cards = "".join(f'<div class="card">{_h(label)}<b>{_h(value)}</b></div>' for label, value in common + extra)
    needs_network = "" if chartjs_source is not None else (
        '<p class="empty needs-network">This chart is drawn by Chart.js, which this page loads from the web '
        '(cdn.jsdelivr.net): offline, the tables below hold the same numbers.</p>')
    figures = "".join(f'<figure><figcaption>{_h(title)}</figcaption><div class="chart">{needs_network}'
                      f'<canvas id="{key}"></canvas></div></figure>\n' for key, title in dashboard_panels(v))
    if local:
        items_table = _html_table(["Session", "Project", "Title", "Started", "Cost", "Commits", "Tokens"],
                                  [[p["label"], p["project"] or "", shorten(_one_line(p["session_title"] or ""), 80),
                                    (p["started_at"] or "").replace("T", " ").rstrip("Z"),
                                    format_cost(p["cost"], p["cost_complete"]), p["commits"], f"{p['tokens']:,}"]
                                   for p in v["items"]], {4, 5, 6})
    else:
        items_table = _html_table(["Item", "Type", "Title", "Status", "Sessions", "Cost", "Commits", "Tokens",
                                   "CI pass rate", "Time to merge"],
                                  [[p["label"], p["type"] or "session", p["title"] or "", p["status"] or "",
                                    p["sessions"], format_cost(p["cost"], p["cost_complete"]), p["commits"],
                                    f"{p['tokens']:,}", _percent(p["ci_pass_rate"]), _hours(p["time_to_merge_hours"])]
                                   for p in v["items"]], {4, 5, 6, 7})
    notice = ""
    if not v["session_count"]:
        notice = '<p class="empty" id="no-data">No sessions were found for this period, so there is nothing to chart yet.</p>\n'
    if v["unpriced_models"]:
        notice += ('<p class="empty" id="unpriced">Costs are lower bounds: '
                   + _h(unpriced_note(v["unpriced_models"])) + ", so their tokens are not in them.</p>\n")
    if v["failures"]:
        notice += ('<p class="empty">Not read because GitHub calls failed: '
                   + ", ".join(_h(f"#{f['number']}") for f in v["failures"]) + "</p>\n")
    subtitle = f"{v['repo'] or 'local transcripts'} · {period_text(v, markdown=False)}"
    return DASHBOARD_TEMPLATE.substitute(
        title=_h(v["repo"] or "local transcripts"), subtitle=_h(subtitle), chartjs=chartjs, notice=notice,
        cards=cards, figures=figures, items_heading="Sessions" if local else "PRs and issues",
        items_table=items_table,
        models_table=_html_table(["Model", "Sessions", "Input", "Output", "Cache create", "Cache read", "Cost"],
                                 [[name, m["sessions"], f"{m['input']:,}", f"{m['output']:,}",
                                   f"{m['cache_creation']:,}", f"{m['cache_read']:,}",
                                   format_cost(m["cost"] if m["cost_complete"] else None)]
                                  for name, m in v["models"].items()], {1, 2, 3, 4, 5, 6}),
        skills_table=_html_table(["Skill", "Sessions", "Invocations", "Pass", "Fail", "Unknown", "Cost",
                                  "Cost of failed runs"],
                                 [[name, k["sessions"], k["invocations"], k["pass"], k["fail"], k["unknown"],
                                   format_cost(k["cost"], k["cost_complete"]),
                                   format_cost(k["fail_cost"], k["fail_cost_complete"]) if k["fail"] else "-"]
                                  for name, k in v["skills"].items()], {1, 2, 3, 4, 5, 6, 7}),
        groups=("<h2>What the spend bought</h2>\n" + _html_table(OUTCOME_HEADER, outcome_rows(v["outcomes"])) + "\n"
                if outcome_rows(v["outcomes"]) else "") + "".join(f"<h2>{title.capitalize()}</h2>\n" + _html_table(
            [label, "Sessions", "Cost", "Commits", "Tokens"],
            [[name, g["sessions"], format_cost(g["cost"], g["cost_complete"]), g["commits"], f"{g['tokens']:,}"]
             for name, g in groups.items()], {1, 2, 3, 4}) + "\n"
            for title, label, groups in spend_groups(v) if groups),
        last_heading="Projects" if local else "Acceptance by week",
        last_table=_html_table(["Project", "Sessions", "Cost", "Tokens"],
                               [[name, p["sessions"], format_cost(p["cost"], p["cost_complete"]), f"{p['tokens']:,}"]
                                for name, p in v["projects"].items()], {1, 2, 3}) if local else
        _html_table(["Week", "Decided PRs", "Merged", "Acceptance"],
                    [[w, k["decided"], k["merged"], _percent(k["rate"])] for w, k in v["weeks"].items()], {1, 2, 3}),
        data=script_json(v))


# ── OpenTelemetry: a session as a GenAI trace ─────────────────────────────────
#
# `otel` sends sessions to an observability backend (Phoenix, MLflow, an OpenTelemetry Collector
# in front of Tempo, Jaeger, Honeycomb, ...) as OTLP traces over HTTP: one session, one trace.
# Span names and attributes follow the OpenTelemetry GenAI semantic conventions
# (opentelemetry.io/docs/specs/semconv/gen-ai/: gen-ai-spans, gen-ai-agent-spans and anthropic;
# the cache-write count's current name from open-telemetry/semantic-conventions-genai):
#
#   invoke_agent claude-code     the session: its totals, cost, commits, PR, branch, skills
#   ├─ chat <model>              an API call: gen_ai.usage.input_tokens counts cache reads and
#   │                            writes too, as the conventions define it
#   ├─ execute_tool <name>       a tool call, status ERROR (and error.type) when it failed
#   ├─ skill <name>              a skill run, status OK or ERROR by the skill's outcome
#   └─ invoke_agent <type>       a subagent, parent of its own calls, tool calls and skills
#
# Ids derive from the session id and each span's key (the call's, the tool call's, the agent's),
# so a second export sends the same ids and a backend keeps one copy of each span. Times come
# from the transcript: a call's span is the moment its response was written, as the transcript
# records no request start. What a span holds passed the privacy gate: the root's attributes are
# made from outbound_stats, every name in a child span is scrubbed, and no text is sent.

OTEL_SCOPE = "session-analytics"
SPAN_INTERNAL, SPAN_CLIENT = 1, 3              # OTLP SpanKind
STATUS_OK, STATUS_ERROR = 1, 2                 # OTLP StatusCode (0: unset)


@dataclass
class TraceSpan:
    key: str                     # what its id derives from, unique in the session
    name: str
    parent: str | None           # the parent span's key; None for the session's root
    kind: int
    start: float                 # seconds since the epoch
    end: float
    attributes: dict
    status: int = 0
    message: str = ""            # the status message of an ERROR span


@dataclass
class SessionTrace:
    session_id: str
    spans: list                  # TraceSpan, the root first


def _usage_attributes(usage: Usage) -> dict:
    cache_write = usage.cache_creation
    return {"gen_ai.usage.input_tokens": usage.input + usage.cache_read + cache_write,
            "gen_ai.usage.output_tokens": usage.output,
            "gen_ai.usage.cache_read.input_tokens": usage.cache_read,
            "gen_ai.usage.cache_write.input_tokens": cache_write,
            "gen_ai.usage.cache_creation.input_tokens": cache_write,      # the older name, still read
            "session_analytics.usage.uncached.input_tokens": usage.input,
            # the split by cache lifetime, where the transcript gives it (2.x; 1.x has only the sum)
            **({"session_analytics.usage.cache_write_5m.input_tokens": usage.cache_5m,
                "session_analytics.usage.cache_write_1h.input_tokens": usage.cache_1h}
               if usage.cache_5m + usage.cache_1h == cache_write else {})}


def session_trace(facts: SessionFacts, stats: dict, pricing: Pricing, privacy: Privacy) -> SessionTrace:
    """The spans of one session, every name through the privacy gate (see the banner above)."""
    out = outbound_stats(stats, privacy)
    name = functools.partial(scrub, privacy=privacy)
    session = facts.session_id
    start, end = parse_ts(stats.get("started_at")), parse_ts(stats.get("ended_at"))
    start = start if start is not None else 0.0
    end = end if end is not None else start
    agents = {}                                  # agent id -> [first ts, last ts]
    for when, agent in [(c.first_ts, c.agent) for c in facts.calls] + [(u.ts, u.agent) for u in facts.tool_uses]:
        if agent is not None and when is not None:
            span = agents.setdefault(agent, [when, when])
            span[0], span[1] = min(span[0], when), max(span[1], when)

    def parent_of(agent):
        return f"agent {agent}" if agent in agents else "session"

    spans = [TraceSpan("session", "invoke_agent claude-code", None, SPAN_INTERNAL, start, end,
                       root_attributes(out, session))]
    for agent, (first, last) in sorted(agents.items(), key=lambda kv: (kv[1][0], kv[0])):
        kind = name(as_str(as_dict(facts.agent_meta.get(agent)).get("agentType")) or "subagent")
        spans.append(TraceSpan(f"agent {agent}", f"invoke_agent {kind}", "session", SPAN_INTERNAL, first, last, {
            "gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "anthropic",
            "gen_ai.agent.name": kind, "gen_ai.conversation.id": session,
            "session.id": session}))
    for call in facts.calls:
        when = call.first_ts if call.first_ts is not None else start
        model = name(call.model)
        cost = pricing.cost(call.model, call.usage, call.first_ts)
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                      "gen_ai.request.model": model, "gen_ai.response.model": model,
                      "gen_ai.conversation.id": session, "session.id": session,
                      **_usage_attributes(call.usage)}
        if cost is not None:
            attributes["session_analytics.cost_usd"] = round(cost, 6)
        if call.skill:
            attributes["session_analytics.skill"] = name(call.skill.lstrip("/"))
        if call.correction:
            attributes["session_analytics.correction"] = True
        spans.append(TraceSpan(f"call {call.key!r}", f"chat {model}", parent_of(call.agent), SPAN_CLIENT,
                               when, when, attributes))
    results = {r.tool_use_id: r for r in facts.tool_results}
    for use in facts.tool_uses:
        tool = name(use.name)
        result = results.get(use.id)
        began = use.ts if use.ts is not None else start
        finished = result.ts if result is not None and result.ts is not None else began
        span = TraceSpan(f"tool {use.id}", f"execute_tool {tool}", parent_of(use.agent), SPAN_INTERNAL,
                         began, max(began, finished), {
                             "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                             "gen_ai.tool.call.id": name(use.id), "gen_ai.tool.type": "function",
                             "session.id": session})
        if result is not None and result.is_error:
            span.status, span.message = STATUS_ERROR, result.error or "error"
            span.attributes["error.type"] = result.error or "error"
        spans.append(span)
    outcome = {as_str(s.get("skill")): as_str(s.get("status")) for s in out.get("skills_invoked") or []}
    runs = skill_invocations(facts)
    for n, run in enumerate(runs):
        later = [r.ts for r in runs[n + 1:] if r.agent == run.agent]
        skill = name(run.name)
        status = outcome.get(skill, "unknown")
        span = TraceSpan(f"skill {n} {run.name}", f"skill {skill}", parent_of(run.agent), SPAN_INTERNAL,
                         run.ts or start, max(run.ts or start, later[0] if later else end), {
                             "gen_ai.operation.name": "invoke_skill", "session_analytics.skill": skill,
                             "session_analytics.skill.status": status, "session.id": session})
        span.status = {"pass": STATUS_OK, "fail": STATUS_ERROR}.get(status, 0)
        span.message = "the skill's run failed" if span.status == STATUS_ERROR else ""
        spans.append(span)
    return SessionTrace(session, spans)


def archived_trace(stats: dict, privacy: Privacy) -> SessionTrace:
    """An archived session (its transcript gone): its root span, from its stats alone."""
    out = outbound_stats(stats, privacy)
    start = parse_ts(out.get("started_at")) or 0.0
    end = parse_ts(out.get("ended_at")) or start
    session = as_str(out.get("session_id"))
    return SessionTrace(session, [TraceSpan("session", "invoke_agent claude-code", None, SPAN_INTERNAL,
                                            start, end, root_attributes(out, session))])


def root_attributes(out: dict, session: str) -> dict:
    """The session span's attributes, from its outbound stats."""
    tokens = as_dict(out.get("total_tokens"))
    attributes = {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "anthropic",
        "gen_ai.agent.name": "claude-code", "gen_ai.conversation.id": session, "session.id": session,
        "session_analytics.tokens.input": as_int(tokens.get("input")),
        "session_analytics.tokens.output": as_int(tokens.get("output")),
        "session_analytics.tokens.cache_creation": as_int(tokens.get("cache_creation")),
        "session_analytics.tokens.cache_read": as_int(tokens.get("cache_read")),
        "session_analytics.cost_usd": out.get("estimated_cost_usd"),
        "session_analytics.cost_complete": out.get("cost_complete"),
        "session_analytics.turns": out.get("turns"),
        "session_analytics.duration_minutes": out.get("duration_minutes"),
        "session_analytics.commits": len(out.get("commits") or []),
        "session_analytics.models": sorted(as_dict(out.get("models"))),
        "session_analytics.skills": [f"{as_str(s.get('skill'))}:{as_str(s.get('status'))}"
                                     for s in out.get("skills_invoked") or []],
        "session_analytics.privacy": out.get("privacy"),
    }
    outside = as_dict(out.get("outside_transcript"))
    if outside:
        attributes["session_analytics.outside_transcript.cost_usd"] = outside.get("cost_usd")
    project = as_str(out.get("project"))
    if re.fullmatch(r"[\w.-]+/[\w.-]+", project):
        attributes["vcs.repository.url.full"] = f"https://github.com/{project}"
    if out.get("branch"):
        attributes["vcs.ref.head.name"] = as_str(out["branch"])
    target = as_dict(out.get("target"))
    if target.get("number") is not None:
        attributes["vcs.change.id"] = str(target["number"])
        attributes["session_analytics.target.type"] = as_str(target.get("type")) or "pr"
    return {k: v for k, v in attributes.items() if v is not None and v != []}


# ── OTLP: the request, as JSON and as protobuf ──
#
# One request is built once, in OTLP/JSON's shape (ids in hex, 64-bit integers as strings, enums
# as numbers: opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding), and written either as
# JSON or, by OTLP_FIELDS below, as protobuf. The protobuf writer is a small one: fields in number
# order, proto3 defaults left out, a oneof's value always written, as the official encoders do
# (tests/test_otel.py holds its bytes equal to theirs).

def otlp_request(traces: list, resource: dict) -> dict:
    """ExportTraceServiceRequest, OTLP/JSON-shaped, for these sessions' traces."""
    spans = []
    for trace in traces:
        trace_id = _trace_id(trace.session_id)
        for span in trace.spans:
            item = {"traceId": trace_id, "spanId": _span_id(trace.session_id, span.key)}
            if span.parent is not None:
                item["parentSpanId"] = _span_id(trace.session_id, span.parent)
            item.update({"name": span.name, "kind": span.kind,
                         "startTimeUnixNano": str(_nanos(span.start)), "endTimeUnixNano": str(_nanos(span.end)),
                         "attributes": _key_values(span.attributes)})
            if span.status:
                item["status"] = {"message": span.message, "code": span.status} if span.message \
                    else {"code": span.status}
            spans.append(item)
    return {"resourceSpans": [{"resource": {"attributes": _key_values(resource)},
                               "scopeSpans": [{"scope": {"name": OTEL_SCOPE},
                                               "spans": spans}]}]}


def _trace_id(session: str) -> str:
    return hashlib.sha256(f"session-analytics trace\0{session}".encode()).hexdigest()[:32]


def _span_id(session: str, key: str) -> str:
    return hashlib.sha256(f"session-analytics span\0{session}\0{key}".encode()).hexdigest()[:16]


def _nanos(seconds: float) -> int:
    return int(round(seconds * 1000)) * 1_000_000          # transcripts keep milliseconds


def _key_values(attributes: dict) -> list:
    return [{"key": key, "value": _any_value(value)} for key, value in attributes.items()]


def _any_value(value) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": str(value)}


# OTLP's messages (opentelemetry-proto: collector/trace/v1, trace/v1, common/v1, resource/v1), by
# their JSON names: field number, type, and for a message its own fields. A type ending in "!" is
# a oneof's member, written even when it holds its default; "*" marks a repeated field.
_ANY_VALUE: dict = {}
_KEY_VALUE = {"key": (1, "string"), "value": (2, "message", _ANY_VALUE)}
_ANY_VALUE.update({"stringValue": (1, "string!"), "boolValue": (2, "bool!"), "intValue": (3, "int64!"),
                   "doubleValue": (4, "double!"),
                   "arrayValue": (5, "message!", {"values": (1, "message*", _ANY_VALUE)})})
OTLP_FIELDS = {"resourceSpans": (1, "message*", {
    "resource": (1, "message", {"attributes": (1, "message*", _KEY_VALUE)}),
    "scopeSpans": (2, "message*", {
        "scope": (1, "message", {"name": (1, "string"), "version": (2, "string")}),
        "spans": (2, "message*", {
            "traceId": (1, "hex"), "spanId": (2, "hex"), "parentSpanId": (4, "hex"), "name": (5, "string"),
            "kind": (6, "enum"), "startTimeUnixNano": (7, "fixed64"), "endTimeUnixNano": (8, "fixed64"),
            "attributes": (9, "message*", _KEY_VALUE),
            "status": (15, "message", {"message": (2, "string"), "code": (3, "enum")})})})})}


def otlp_protobuf(message: dict, fields: dict = OTLP_FIELDS) -> bytes:
    """A message of OTLP/JSON shape as protobuf bytes."""
    out = bytearray()
    for name, tag, kind, repeated, always, sub in _wire_plan(fields):
        if name not in message:
            continue
        for value in message[name] if repeated else (message[name],):
            if kind == "message":
                body = otlp_protobuf(value, sub)
                out += tag + _varint(len(body)) + body
            elif kind == "string" or kind == "hex":
                data = bytes.fromhex(value) if kind == "hex" else value.encode("utf-8")
                if data or always:
                    out += tag + _varint(len(data)) + data
            elif kind == "fixed64":
                if int(value) or always:
                    out += tag + int(value).to_bytes(8, "little")
            elif kind == "double":
                out += tag + struct.pack("<d", value)
            else:                                               # enum, int64, bool: a varint
                number = int(value)
                if number or always:
                    out += tag + _varint(number & 0xFFFF_FFFF_FFFF_FFFF)
    return bytes(out)


_WIRE_TYPES = {"message": 2, "string": 2, "hex": 2, "fixed64": 1, "double": 1, "enum": 0, "int64": 0, "bool": 0}
_WIRE_PLANS: dict = {}


def _wire_plan(fields: dict) -> list:
    """A message's fields in number order, each as (name, tag bytes, type, repeated, always
    written, its own fields), worked out once per message type."""
    plan = _WIRE_PLANS.get(id(fields))
    if plan is None:
        plan = []
        for name, (number, kind, *sub) in sorted(fields.items(), key=lambda kv: kv[1][0]):
            base = kind.rstrip("*!")
            plan.append((name, _varint(number << 3 | _WIRE_TYPES[base]), base, kind.endswith("*"),
                         kind.endswith("!"), sub[0] if sub else None))
        _WIRE_PLANS[id(fields)] = plan
    return plan


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _protobuf_fields(data: bytes) -> dict:
    """number -> [value] of one protobuf message (varints as ints, the rest as bytes): enough to
    read a collector's ExportTraceServiceResponse."""
    fields, i = collections.defaultdict(list), 0
    while i < len(data):
        key, i = _read_varint(data, i)
        wire = key & 7
        if wire == 0:
            value, i = _read_varint(data, i)
        elif wire == 2:
            size, i = _read_varint(data, i)
            value, i = data[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = data[i:i + size], i + size
        else:
            raise ValueError(f"wire type {wire}")
        fields[key >> 3].append(value)
    return fields


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return value, i


# ── sending: OTLP/HTTP with the standard environment variables ──
#
# Where and how, as every OpenTelemetry exporter reads them (opentelemetry.io/docs/specs/otel/
# protocol/exporter/): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is the traces URL as it is, else
# OTEL_EXPORTER_OTLP_ENDPOINT (or --otlp-endpoint) with /v1/traces added; headers, protocol,
# compression and timeout likewise, the TRACES_ variable first. A 429, 502, 503 or 504 (or a
# connection that fails) is tried again, after the Retry-After the server gives, else after a
# growing pause; any other answer but 2xx is final.

OTLP_RETRY_STATUSES = (429, 502, 503, 504)
OTLP_BATCH_SPANS = 2000          # spans a request at most (a session is never split)


def _otel_env(name: str) -> str:
    return (os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or os.environ.get(f"OTEL_EXPORTER_OTLP_{name}")
            or "").strip()


def otlp_settings(endpoint: str | None) -> dict:
    """The exporter's settings from --otlp-endpoint and the OTEL_EXPORTER_OTLP_* variables."""
    traces = None if endpoint else os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or "http://localhost:4318"
    url = traces or base.rstrip("/") + "/v1/traces"
    if not re.match(r"(?i)https?://[^/\s]+", url):
        raise UserError(f"not an http(s) OTLP endpoint: {url!r}", EXIT_USAGE)
    protocol = _otel_env("PROTOCOL") or "http/protobuf"
    if protocol not in ("http/protobuf", "http/json"):
        raise UserError(f"OTLP protocol {protocol!r} is not supported: use http/protobuf or http/json", EXIT_USAGE)
    compression = _otel_env("COMPRESSION") or "none"
    if compression not in ("gzip", "none"):
        raise UserError(f"OTLP compression {compression!r} is not supported: use gzip or none", EXIT_USAGE)
    headers = {}
    for pair in filter(None, (p.strip() for p in _otel_env("HEADERS").split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"OTEL_EXPORTER_OTLP_HEADERS: not key=value: {pair!r}", EXIT_USAGE)
        headers[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    timeout = _otel_env("TIMEOUT")
    return {"url": url, "protocol": protocol, "compression": compression, "headers": headers,
            "timeout": float(timeout) / 1000 if timeout.replace(".", "", 1).isdigit() else 10.0}


def otel_resource() -> dict:
    """Resource attributes: OTEL_RESOURCE_ATTRIBUTES (k=v,...), and service.name from
    OTEL_SERVICE_NAME, else session-analytics."""
    resource = {}
    for pair in filter(None, (p.strip() for p in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","))):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            resource[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    resource["service.name"] = os.environ.get("OTEL_SERVICE_NAME") or resource.get("service.name") or OTEL_SCOPE
    return resource


class OtlpExporter:
    """Sends export requests to one OTLP/HTTP endpoint; `post` is replaceable for tests."""

    def __init__(self, settings: dict, warn, attempts: int = 5, base_delay: float = 1.0,
                 max_wait: float = 60.0, sleep=time.sleep):
        self.settings, self.warn = settings, warn
        self.attempts, self.base_delay, self.max_wait, self.sleep = attempts, base_delay, max_wait, sleep

    def body(self, request: dict) -> bytes:
        if self.settings["protocol"] == "http/json":
            return json.dumps(request, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        return otlp_protobuf(request)

    def export(self, request: dict) -> int:
        """Sends one request; returns the spans the backend said it rejected (partial success)."""
        body = self.body(request)
        headers = {**self.settings["headers"], "Content-Type": "application/json"
                   if self.settings["protocol"] == "http/json" else "application/x-protobuf"}
        if self.settings["compression"] == "gzip":
            body, headers["Content-Encoding"] = gzip.compress(body, mtime=0), "gzip"
        url = self.settings["url"]
        for attempt in range(1, self.attempts + 1):
            status, answer, wait = self.post(url, body, headers)
            if 200 <= status < 300:
                return self.rejected(answer)
            retryable = status in OTLP_RETRY_STATUSES or status == 0
            what = f"OTLP export to {url}: " + (f"HTTP {status}" if status else answer.decode("utf-8", "replace"))
            if not retryable or attempt == self.attempts:
                detail = self.error_message(answer) if status else ""
                raise UserError(what + (f" ({detail})" if detail else ""), EXIT_OTLP)
            wait = wait if wait is not None else self.base_delay * 2 ** (attempt - 1)
            if wait > self.max_wait:
                raise UserError(f"{what}; the server asks to wait {wait:.0f}s: try again later", EXIT_OTLP)
            self.warn(f"{what}; retrying in {wait:.1f}s ({attempt}/{self.attempts - 1})")
            self.sleep(wait)
        raise AssertionError("unreachable")

    def post(self, url: str, body: bytes, headers: dict) -> tuple[int, bytes, float | None]:
        """(HTTP status, body, seconds the server asks to wait); status 0 when no answer came,
        the body then saying why."""
        import http.client, urllib.error, urllib.request  # noqa: E401, PLC0415 - only otel speaks HTTP: no start-up cost
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler(urllib.request.getproxies()))
        try:
            with opener.open(request, timeout=self.settings["timeout"]) as reply:
                return reply.status, reply.read(), None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read() or b"", retry_after(exc.headers.get("Retry-After"))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            return 0, f"no answer ({reason})".encode(), None

    def rejected(self, answer: bytes) -> int:
        """The rejected spans a 2xx answer reports (ExportTraceServiceResponse.partial_success)."""
        try:
            if self.settings["protocol"] == "http/json":
                partial = as_dict(as_dict(json.loads(answer or b"{}")).get("partialSuccess"))
                count, message = as_int(partial.get("rejectedSpans")), as_str(partial.get("errorMessage"))
            else:
                partial = _protobuf_fields(_protobuf_fields(answer).get(1, [b""])[0])
                count = partial.get(1, [0])[0]
                message = partial.get(2, [b""])[0].decode("utf-8", "replace")
        except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
            return 0
        if count or message:
            self.warn(f"the OTLP endpoint rejected {plural(count, 'span')}" + (f": {message}" if message else ""))
        return count

    def error_message(self, answer: bytes) -> str:
        """The message of a refusal's body: OTLP's google.rpc.Status (field 2), else its text."""
        try:
            data = json.loads(answer)
            return terminal_text(as_str(as_dict(data).get("message")) or json.dumps(data)[:200])
        except ValueError:
            pass
        try:
            return _protobuf_fields(answer).get(2, [b""])[0].decode("utf-8")[:200]
        except (ValueError, UnicodeDecodeError, AttributeError):
            return answer[:200].decode("utf-8", "replace")


def export_batches(traces: list, resource: dict, limit: int = OTLP_BATCH_SPANS) -> list:
    """Requests of whole sessions, each of at most `limit` spans unless one session is bigger."""
    batches, current, size = [], [], 0
    for trace in traces:
        if current and size + len(trace.spans) > limit:
            batches.append(otlp_request(current, resource))
            current, size = [], 0
        current.append(trace)
        size += len(trace.spans)
    if current:
        batches.append(otlp_request(current, resource))
    return batches


def otel_summary(facts: SessionFacts, pricing: Pricing, templates: list, privacy: Privacy) -> dict:
    """A session of a history, for `otel`: its stats (to filter on) and its trace."""
    stats = local_stats(facts, pricing, templates)
    return {"stats": stats, "trace": session_trace(facts, stats, pricing, privacy)}


# ── The archive: stats that outlive Claude Code's transcript cleanup ────────
#
# Claude Code deletes transcripts older than cleanupPeriodDays (30 by default). An archive is a
# folder of stats JSON files (the SessionEnd hook's, or `list --archive DIR`'s backfill): list,
# its rollups and extract --source local count an archived session only when its transcript is
# gone, so no session counts twice.

def read_archive(folder: Path, skip: set, reader: HistoryReader) -> list[dict]:
    """The stats in the archive folder (searched recursively) of sessions not in `skip`."""
    found = {}
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        handle = open_regular(path)
        try:
            if handle is None:
                raise OSError("not a regular file")
            with handle:
                stats = json.loads(handle.read().decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            reader.skipped.add("unreadable archive files", str(path))
            continue
        stats, problem = session_data(stats)
        if problem is not None:
            reader.skipped.add("unreadable archive files", str(path))
            continue
        if stats["session_id"] not in skip:
            found.setdefault(stats["session_id"], stats)
    reader.from_archive += len(found)
    return list(found.values())


def write_archive(folder: Path, every_stats: list[dict], warn) -> None:
    """Each session's stats as FOLDER/<session id>.json, written only when they changed."""
    for stats in every_stats:
        try:
            path = session_file(folder, stats["session_id"])
        except UserError as exc:
            warn(f"archive: {exc}; skipped")
            continue
        text = json_text(stats)
        try:
            if path.read_text(encoding="utf-8") == text:
                continue
        except (OSError, UnicodeDecodeError):
            pass
        write_atomic(path, text)


# ── Reading fast: how fast, never what ────────────────────────────────────────
#
# Everything from here to the CLI changes how fast a history is read, never what comes of it.
# ReadOptions picks the Reading: PlainReading (in "The reader") for ReadOptions(fast_lines=False,
# cache=None, workers=1), else a FastReading, which every test holds to the plain one. Each
# mechanism here keeps its place only with a measured gain, recorded in the ledger of
# docs/performance.md; the rest of the file never names any of them.
#
#   the glance and the skim - big tool-result lines read without decoding them
#   the cache               - file scans (resumed when a file grew), neighbours' claims, session
#                             results and whole runs, kept between runs
#   worker processes        - sessions read on every core, digests instead of calls coming back

SKIM_MIN_BYTES = 8192             # lines shorter than this are decoded: cheaper than a skim
QUOTE_STEPS = 16                  # a skim's quote-by-quote steps before it looks ahead
PARALLEL_MIN_BYTES = 16 << 20     # below this, starting worker processes costs more than it saves
GLANCE_HEAD_BYTES = 4096          # how far into a line the glance looks for the message
CACHE_VERSION = 1
CACHE_PROBE_BYTES = 64 * 1024
# A file's scan state is stored only from this size: storing costs about a sixth of reading (its
# calls pickled), paid for every file of a first read, while only the files still being written
# ever resume; a smaller file that grew is read again in less than a tenth of a second.
CACHE_MIN_BYTES = 4 << 20
CACHE_UNUSED_DAYS = 30            # another version's cache folder unused this long is deleted


@dataclass(frozen=True)
class ReadOptions:
    """How fast a history is read, never what comes of it."""
    cache: "ReadCache | None" = None        # where scans and results are kept between runs
    fast_lines: bool = True                 # glance at and skim big tool results instead of decoding
    skim_min_bytes: int = SKIM_MIN_BYTES    # lines shorter than this are decoded: cheaper than a skim
    quote_steps: int = QUOTE_STEPS          # a skim's quote-by-quote steps before it looks ahead
    workers: int = 0                        # processes to read with; 0: one per core, at most 8
    parallel_min_bytes: int = PARALLEL_MIN_BYTES   # below this, starting workers costs more
    chunk_bytes: int = READ_CHUNK_BYTES     # how much of a file one read takes

    def reading(self) -> PlainReading:
        if not self.fast_lines and self.cache is None and self.workers == 1:
            return PlainReading()
        return FastReading(self)


class FastReading(PlainReading):
    """PlainReading's results, sooner."""

    def __init__(self, options: ReadOptions):
        self.options = options

    def scan(self, tf: TranscriptFile, sid: str, depth: str) -> FileScan:
        """scan_file's scan, with big tool results glanced at or skimmed, and for a big file its
        state kept in the cache: an unchanged file is not read again, a grown one from where the
        last read stopped."""
        options = self.options
        state = new_scan(tf.path, sid, depth)
        handle = open_regular(tf.path)
        if handle is None:
            return unreadable(state)
        hook = line_hook(depth, options) if options.fast_lines else None
        with handle:
            cache = options.cache
            if cache and os.fstat(handle.fileno()).st_size < CACHE_MIN_BYTES:
                cache = None        # most subagent files: storing them would cost a first run a third
            kind = "list-scans" if depth == ROW else "scans"
            cached = cache.lookup(tf.path, handle, kind) if cache else None
            state, consumed, exact = cached or (state, 0, False)
            start = consumed
            state, consumed, snapshot = read_range(state, handle, consumed, tf.agent_hint, hook, options.chunk_bytes)
            if cache and not (exact and consumed == start and snapshot is None):    # else it is stored
                if snapshot is None:
                    snapshot = (pickle.dumps(state, pickle.HIGHEST_PROTOCOL), consumed)
                cache.store(tf.path, handle, *snapshot, kind)
        return finish_scan(state)

    def claims(self, files: list[TranscriptFile], sid: str) -> tuple[dict, float]:
        """PlainReading's claims, each file's kept in the cache on its exact size, mtime and inode:
        `stats` in a big project reads its neighbours once."""
        claims, end = {}, float("inf")
        for tf in files:
            file_claims, file_end = self._file_claims(tf, sid)
            for key, ts in file_claims.items():
                if key not in claims or ts < claims[key]:
                    claims[key] = ts
            if file_end != float("inf") and (end == float("inf") or file_end > end):
                end = file_end
        return claims, end

    def _file_claims(self, tf: TranscriptFile, sid: str) -> tuple[dict, float]:
        cache = self.options.cache
        try:
            info = os.stat(tf.path)          # before the read: a file that grows is read next time
            stamp = (str(Path(tf.path).absolute()), info.st_size, info.st_mtime_ns, info.st_ino)
        except OSError:
            stamp = None
        if cache and stamp:
            hit = cache.read(stamp[0], "claims")
            if isinstance(hit, dict) and hit.get("stamp") == stamp:
                return hit["claims"], hit["end"]
        claims, end = session_claims([self.scan(tf, sid, ROW)])
        if cache and stamp:
            cache.write(stamp[0], "claims", {"stamp": stamp, "claims": claims, "end": end}, source=stamp[0])
        return claims, end

    def summaries(self, projects_dir: Path, listed: list, depth: str, summarise, key: str) -> Summaries:
        """PlainReading's summaries, from the cache when nothing changed, else read in worker
        processes with little memory: each session is read and summarised as if it owned every
        call it recorded, and only returns its summary and a digest of each call's key; only
        the few that lose a call to another (resumed and forked sessions replay calls) are read
        again."""
        cache = self.options.cache
        settings = hashlib.sha256(f"{depth}\0{key}".encode()).hexdigest() if key else ""
        whole = history_fingerprint(projects_dir, [tf for _, files in listed for tf in files], settings) \
            if cache else None
        if whole:
            hit = cache.read(whole[0], "runs")
            if isinstance(hit, dict) and hit.get("fingerprint") == whole[1]:
                return Summaries(hit["rows"], hit["skipped"], hit["empty"], [], hit["sessions"])
        # Grouping reads the first lines of flat agent files, so it waits until the cache missed
        # (the fingerprint covers those files' bytes through their size, mtime and inode).
        out = Summaries([], Skipped(), 0, [], [])
        jobs = [SessionJob(project, sid, files, depth, summarise, self, settings=settings)
                for project, listing in listed for sid, files in group_by_session(listing, out.skipped).items()]
        results = run_jobs(jobs, self.options)
        out.read += [job.sid for job, result in zip(jobs, results) if result.read]
        lost = lost_calls(results, [(job.project.name, job.sid) for job in jobs])
        if lost:
            again = sorted(lost)
            redone = run_jobs([dataclasses.replace(jobs[i], lost=frozenset(lost[i])) for i in again], self.options)
            for index, result in zip(again, redone):
                results[index] = result
            out.read += [jobs[i].sid for i, result in zip(again, redone) if result.read]
        for result in results:
            out.skipped.update(result.skipped)
            if result.row is None:
                out.empty += 1
            else:
                out.rows.append(result.row)
        out.sessions = [job.sid for job in jobs]
        if whole:
            cache.evict()
            cache.write(whole[0], "runs", source=str(projects_dir), value={
                "fingerprint": whole[1], "rows": out.rows, "skipped": out.skipped, "empty": out.empty,
                "sessions": out.sessions})
        return out


def read_range(state: ScanState, handle, start: int, agent_hint: str | None, hook, chunk_bytes: int
               ) -> tuple[ScanState, int, tuple | None]:
    """Interpret the lines from `start`, offering each to the hook first: (state, offset read
    to, snapshot), the snapshot being the pickled state before an unterminated last line (it may
    still be growing, so the cache keeps the state before it)."""
    consumed, snapshot = start, None
    min_bytes = hook.min_bytes if hook is not None else 0
    for line, pos, terminated in iter_lines(handle, start, chunk_bytes):
        if not terminated and snapshot is None:
            snapshot = (pickle.dumps(state, pickle.HIGHEST_PROTOCOL), consumed)
        state.line += 1
        if hook is None or not terminated or len(line) < min_bytes or not state.scan.session_id \
                or _USER_CONTENT not in line or not hook(state, line, agent_hint):
            interpret_line(state, line, terminated, agent_hint)
        if terminated:
            consumed = pos
    return state, consumed, snapshot


# ── the glance and the skim: big tool results read without decoding them ──
#
# Most of a history's bytes are tool results: a Read of a source file, a long test log, each
# written twice (message content and toolUseResult). What the stats need from such a line is
# small: its timestamp, whether it is a sidechain, and each result's tool_use_id and is_error.
# The text itself matters only for Bash (commits) and Task/Agent (subagent links). So a big
# tool-result line of any other tool is skimmed: its small members are read where they stand and
# its big strings are stepped over with bytes.find, never decoded. This relies on what makes
# JSON.stringify's output (which Claude Code writes) compact: no whitespace between tokens, so
# a string value ends at the first unescaped quote that is followed by `,"` or `}`. Anything the
# skim does not expect (another layout, nested values before the result, a string it cannot
# bound, a repeated key) makes it decline, and the line is decoded whole; both ways give the same
# scan, which tests check on every line of the real transcripts.

# What both fast paths look for: the opening of a user message's list of blocks. A line without
# it (an assistant line, a prompt given as a string) is never offered to them.
_USER_CONTENT = b',"message":{"role":"user","content":['
_SKIM_KEYS = ("type", "timestamp", "sessionId", "isSidechain", "agentId", "uuid", "parentUuid")


def _escaped(line: bytes, quote: int) -> bool:
    """Is the quote at this index escaped (an odd run of backslashes before it)?"""
    r = quote - 1
    while r >= 0 and line[r] == 0x5C:
        r -= 1
    return (quote - 1 - r) % 2 == 1


def _string_end(line: bytes, start: int, steps: int = QUOTE_STEPS) -> int:
    """Index of the closing quote of the string value whose text begins at `start`, or -1.

    Text with few quotes (logs, prose) is crossed from quote to quote at memchr speed; in
    quote-dense text (source code) that loop would cost more than two finds of what follows a
    string value in compact JSON."""
    q = line.find(b'"', start)
    for _ in range(steps):
        if q < 0 or not _escaped(line, q):
            return q
        q = line.find(b'"', q + 1)
    return _compact_string_end(line, q) if q >= 0 else -1


def _compact_string_end(line: bytes, start: int) -> int:
    """The same, from compact JSON's followers: a string value is followed by `,"` or `}`, and
    `","` cannot occur inside a string (its last quote is unescaped), so its first occurrence
    bounds the search for `"}`."""
    bound = line.find(b'","', start)
    if bound >= 0 and _escaped(line, bound):
        return -1                        # the text ends in `",`: ambiguous, decode instead
    limit = bound if bound >= 0 else len(line)
    q = line.find(b'"}', start, limit)
    while q >= 0 and _escaped(line, q):
        q = line.find(b'"}', q + 1, limit)
    return q if q >= 0 else bound


def _members(text: bytes) -> dict | None:
    """`"a":1,"b":"c"` as a dict, or None unless it is exactly a run of complete members."""
    try:
        obj = json.loads("{" + text.decode("utf-8") + "}") if text else {}
    except ValueError:                   # UnicodeDecodeError included
        return None
    return obj if isinstance(obj, dict) else None


def _skim_blocks(line: bytes, at: int, tool_names: dict, text_tools: tuple,
                 steps: int) -> tuple[list, int] | None:
    """The tool_result blocks of `[{...},...]` at `at`, their text stepped over; and the end."""
    blocks = []
    while True:
        if line[at:at + 1] != b"{":
            return None
        key = line.find(b'"content":"', at)
        if key < 0 or line[key - 1:key] not in (b"{", b","):
            return None
        block = _members(line[at + 1:key - 1])    # the members before the text
        if block is None or block.get("type") != "tool_result" or "content" in block:
            return None
        if "tool_use_id" in block and result_text_read(tool_names, block["tool_use_id"], text_tools):
            return None                  # its text is read: decode the line (before stepping over it)
        end = _string_end(line, key + 11, steps)
        close = line.find(b"}", end)
        if end < 0 or close < 0 or line[end + 1] not in b",}":
            return None
        rest = _members(line[end + 2:close]) if close > end + 1 else {}
        if rest is None or rest.keys() & block.keys() or "content" in rest:
            return None
        block.update(rest)
        if result_text_read(tool_names, block.get("tool_use_id"), text_tools) or block.get("is_error") is True:
            return None                  # a failed call's text gives its error class: decode it
        block["content"] = ""
        blocks.append(block)
        at = close + 1
        if line[at:at + 1] == b"]":
            return blocks, at + 1
        if line[at:at + 1] != b",":
            return None
        at += 1


def skim_tool_result(line: bytes, tool_names: dict, text_tools: tuple = RESULT_TEXT_TOOLS,
                     quote_steps: int = QUOTE_STEPS) -> dict | None:
    """A tool-result user line reduced to what the scan reads from it, or None to decode it whole.

    The members before `"message"` and those between it and `"toolUseResult"` are decoded as
    they stand (a run of members that decodes on its own is exactly the object's own members);
    the result text is stepped over and toolUseResult is never read. tool_names maps the file's
    tool_use ids to tool names: a result of a tool whose text is read, or of a call this file
    does not hold, declines; text_tools names the tools whose text is read."""
    start = line.find(_USER_CONTENT)
    if start < 0 or line[:1] != b"{":
        return None
    head = _members(line[1:start])
    if head is None or head.get("type") != "user":
        return None
    found = _skim_blocks(line, start + len(_USER_CONTENT), tool_names, text_tools, quote_steps)
    if found is None:
        return None
    blocks, at = found
    if line[at:at + 1] != b"}" or (line[at + 1:at + 2] != b"," and at + 2 != len(line)):
        return None
    after = line.find(b',"toolUseResult":', at + 1)
    if after >= 0:
        tail = _members(line[at + 2:after])
        if tail is None or "timestamp" not in head.keys() | tail.keys():
            return None                  # what comes after the result could still matter
    else:
        if line[-1:] != b"}":
            return None
        tail = _members(line[at + 2:-1])
    if tail is None or tail.keys() & head.keys():
        return None
    record = {key: value for part in (head, tail) for key, value in part.items() if key in _SKIM_KEYS}
    record["message"] = {"role": "user", "content": blocks}
    return record


# A list row needs even less of a big tool result: its time, and whether it is a Task/Agent
# result (a subagent link). When the small members before the message say it all, the line is
# only glanced at: they must hold no object, array or escape (so every quote in them is JSON's own
# and each member is the top-level one), the message must open with exactly one tool_result block
# of a call the file holds (one pass counts the tool_use_id keys: a quote that is not escaped
# cannot occur inside a string, so each counted key is a real one), and the time is read either
# among those members or, in the layout that writes it after the message, at the exact place
# after the message's close and the uuid. Anything else is skimmed or decoded as before.

_GLANCE_OPENING = _USER_CONTENT + b"{"


def _flat_value(line: bytes, key: bytes, end: int) -> bytes | None:
    """The string value of `key` among the flat members before `end`, or None."""
    at = line.find(key, 1, end)
    if at < 0:
        return None
    at += len(key)
    close = line.find(b'"', at, end)
    return line[at:close] if close >= 0 else None


def glance_tool_result(line: bytes, tool_names: dict, agent_hint: str | None) -> str | None:
    """The timestamp of a tool-result line that a list row reads nothing else of, or None to
    read the line the usual way (also for inline sidechain lines, whose uuid links a chain).
    On lines of a few hundred bytes every call counts: the tests are plain bytes methods."""
    opening = line.find(_GLANCE_OPENING, 0, GLANCE_HEAD_BYTES)
    if opening < 0 or not line.startswith(b'{"') or not line.endswith(b"}"):
        return None
    head = line[1:opening]                  # not a regex: sre would cost 4 us a line here
    if b"{" in head or b"[" in head or b"\\" in head or head.count(b'"type":') != 1 \
            or b'"type":"user"' not in head:
        return None
    if agent_hint is None and line.find(b'"isSidechain":true', 1, opening) >= 0 \
            and not _flat_value(line, b'"agentId":"', opening):
        return None
    at = opening + len(_GLANCE_OPENING)
    if line.startswith(b'"tool_use_id":"', at):
        id_start = at + 15
        id_end = line.find(b'"', id_start, id_start + 256)
        if id_end < 0 or not line.startswith(b',"type":"tool_result"', id_end + 1):
            return None
    elif line.startswith(b'"type":"tool_result","tool_use_id":"', at):
        id_start = at + 36
        id_end = line.find(b'"', id_start, id_start + 256)
    else:
        return None
    if id_end < 0 or line.find(b"\\", id_start, id_end) >= 0 \
            or result_text_read(tool_names, line[id_start:id_end].decode("ascii", "replace"), TASK_TOOLS) \
            or line.count(b'"tool_use_id":"', at) != 1:
        return None
    stamp = _flat_value(line, b'"timestamp":"', opening)
    if stamp is None:
        # 2.1.x writes `...}]},"uuid":"<uuid>","timestamp":"...` right after the message
        key = line.find(b'"timestamp":"', at)
        uuid = line.rfind(b']},"uuid":"', max(key - 80, at), key)
        if key < 0 or uuid < 0 or line[key - 2:key] != b'",' or line.find(b'"', uuid + 11, key - 2) >= 0:
            return None
        end = line.find(b'"', key + 13, key + 64)
        stamp = line[key + 13:end] if end >= 0 else None
    if not stamp or b"\\" in stamp:
        return None
    return stamp.decode("ascii", "replace")


def line_hook(depth: str, options: ReadOptions):
    """What read_range offers a big user line before decoding it: at ROW depth a glance (the
    time is taken, nothing else to read), else a skim of a big tool result (its record is read);
    True when the line was taken, False to decode it. Its min_bytes spares the call for lines
    neither could take: a glance takes any, a skim big ones. A plain function, not an object: it
    runs for most lines of a history."""
    glance = depth == ROW
    skim_min_bytes, quote_steps = options.skim_min_bytes, options.quote_steps

    def hook(state: ScanState, line: bytes, agent_hint: str | None) -> bool:
        scan = state.scan
        if glance:
            stamp = glance_tool_result(line, state.tool_names, agent_hint)
            if stamp is not None:
                ts = parse_ts(stamp)
                if ts is not None:
                    scan.timestamps.append(ts)
                scan.glanced += 1
                return True
            if len(line) < skim_min_bytes:
                return False
        rec = skim_tool_result(line, state.tool_names, state.text_tools, quote_steps)
        if rec is None or (rec.get("isSidechain") is True and agent_hint is None and not rec.get("agentId")):
            return False                 # not skimmed, or an inline sidechain line: its uuid links the chain
        scan.skimmed += 1
        _scan_record(state, rec, agent_hint)
        return True

    hook.min_bytes = 0 if glance else skim_min_bytes
    return hook


# ── the cache: unchanged files are nearly free, grown files resume ──
#
# A file's scan state is kept under $XDG_CACHE_HOME/session-analytics, keyed on its path, with
# its size, mtime, inode and a hash of its first bytes and of the bytes before the point the scan
# reached. Unchanged: reuse. Grown on the same inode with those bytes intact (Claude Code only
# appends): resume from that point. Anything else (truncated, replaced, rewritten): read it
# again. A cache that could serve stale numbers would be worse than none, so entries live in a
# folder named after the script's own bytes: a script that reads transcripts differently (or
# keeps other fields in its scan state) never sees another version's entries. Besides scans, the
# cache keeps neighbours' claims (for `stats`), each session's result and whole runs (for `list`
# and `extract`), each under a key that covers every file it depends on.


def _private(path: Path, fd: int | None = None) -> bool:
    info = os.fstat(fd) if fd is not None else path.stat()
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


class ReadCache:
    """What reading a history leaves for the next run, in a folder only this user can write:
    file scans (resumed when a file grew), neighbours' claims, session results and whole runs,
    each under its own kind. Every failure is a miss."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._checked = None

    @classmethod
    def default(cls) -> "ReadCache":
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        try:
            with open(__file__, "rb") as handle:
                build = hashlib.sha256(handle.read()).hexdigest()[:16]
        except OSError:
            build = "unknown"
        return cls(Path(base) / "session-analytics" / f"v{CACHE_VERSION}-{build}")

    def _usable(self) -> bool:
        """Only a folder this user owns and nobody else can write: entries are pickles."""
        if self._checked is None:
            try:
                self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._checked = _private(self.root)
            except OSError:
                self._checked = False
        return self._checked

    def entry_path(self, key: str, kind: str) -> Path:
        return self.root / kind / (hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:40])

    # An entry is its pickle behind a magic and a digest of it: a flipped bit, a torn write or
    # random bytes are a miss, never a wrong number, and never reach the unpickler.
    ENTRY_MAGIC = b"session-analytics cache 1\n"

    def read(self, key: str, kind: str):
        if not self._usable():
            return None
        try:
            with open(self.entry_path(key, kind), "rb") as handle:
                if not (_private(Path(handle.name).parent) and _private(Path(handle.name), handle.fileno())):
                    return None
                raw = handle.read()
        except OSError:
            return None
        head = len(self.ENTRY_MAGIC)
        data = raw[head + 32:]
        if raw[:head] != self.ENTRY_MAGIC or raw[head:head + 32] != hashlib.blake2b(data, digest_size=32).digest():
            return None
        try:
            return pickle.loads(data)
        except Exception:            # noqa: BLE001 - an entry of another build of this script is a miss
            return None

    def write(self, key: str, kind: str, value, source: str) -> None:
        """Keep value under (key, kind) for as long as the file or folder `source` exists."""
        if not self._usable():
            return
        target = self.entry_path(key, kind)
        try:
            target.parent.mkdir(exist_ok=True, mode=0o700)
            data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
            fd, tmp = tempfile.mkstemp(prefix=".", dir=target.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.ENTRY_MAGIC + hashlib.blake2b(data, digest_size=32).digest() + data)
            os.replace(tmp, target)
            with open(self.root / "index", "a", encoding="utf-8", errors="surrogateescape") as index:
                index.write(f"{kind}/{target.name}\t{source}\n")
        except OSError:
            pass                      # a read-only or full disk only costs speed

    # The cache is no place for history: an entry goes when the transcript it was made from is
    # gone (the archive keeps stats), and a folder of another version of this script when no
    # run has used it for CACHE_UNUSED_DAYS.
    def evict(self) -> None:
        """Delete the entries whose source is gone, and other versions' unused folders."""
        if not self._usable():
            return
        try:
            with open(self.root / "index", encoding="utf-8", errors="surrogateescape") as index:
                lines = dict(line.rstrip("\n").split("\t", 1) for line in index if "\t" in line)
        except OSError:
            lines = {}
        kept = []
        for entry, source in lines.items():
            if os.path.exists(source):
                kept.append(f"{entry}\t{source}\n")
                continue
            try:
                os.unlink(self.root / entry)
            except OSError:
                pass
        if len(kept) != len(lines):
            try:
                fd, tmp = tempfile.mkstemp(prefix=".", dir=self.root)
                with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as index:
                    index.writelines(kept)
                os.replace(tmp, self.root / "index")
            except OSError:
                pass
        horizon = time.time() - CACHE_UNUSED_DAYS * 86400
        for folder in self.root.parent.glob("v*-*"):
            try:
                if folder != self.root and os.stat(folder / "index").st_mtime < horizon and _private(folder):
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass

    @staticmethod
    def _probe(handle, offset: int) -> str:
        digest = hashlib.sha256()
        handle.seek(0)
        digest.update(handle.read(min(offset, CACHE_PROBE_BYTES)))
        handle.seek(max(offset - CACHE_PROBE_BYTES, 0))
        digest.update(handle.read(min(offset, CACHE_PROBE_BYTES)))
        return digest.hexdigest()

    def lookup(self, path: Path, handle, kind: str = "scans"):
        """(scan state, offset to resume from, whether the file's size and mtime are the ones
        stored) for an open transcript, or None to read it all."""
        key = str(path.absolute())
        entry = self.read(key, kind)
        if not isinstance(entry, dict) or entry.get("path") != key:
            return None
        info = os.fstat(handle.fileno())
        if info.st_ino != entry["ino"] or info.st_size < entry["size"] or entry["offset"] > info.st_size:
            return None                  # replaced, or shrunk (truncated in place): read it all
        exact = (info.st_size, info.st_mtime_ns) == (entry["size"], entry["mtime_ns"])
        if not exact and self._probe(handle, entry["offset"]) != entry["probe"]:
            return None
        try:
            state = pickle.loads(entry["state"])
        except Exception:             # noqa: BLE001
            return None
        return (state, entry["offset"], exact) if isinstance(state, ScanState) else None

    def store(self, path: Path, handle, state: bytes, offset: int, kind: str = "scans") -> None:
        info = os.fstat(handle.fileno())
        if offset > info.st_size:
            return                       # truncated while it was read: what was read is gone
        key = str(path.absolute())
        self.write(key, kind, source=key, value={
            "path": key, "size": info.st_size, "mtime_ns": info.st_mtime_ns, "ino": info.st_ino,
            "offset": offset, "probe": self._probe(handle, offset), "state": state})


# ── worker processes, and the results kept of each session ──

def key_hash(key: tuple) -> int:
    """A stable 64-bit digest of an API call's key, small enough to hold for a whole history."""
    return int.from_bytes(hashlib.blake2b("\0".join(key).encode("utf-8", "surrogateescape"),
                                          digest_size=8).digest(), "big")


# A history's call digests are compared a sixteenth at a time (by their top four bits): a set of
# every digest of a 1 GiB history held 20 MiB, and grew with the history.
DIGEST_BUCKETS = 16


def lost_calls(results: list[SessionResult], sessions: list[tuple[str, str]]) -> dict[int, set]:
    """Session index -> digests of the calls it recorded that another session owns (by
    owner_rank; sessions are (project, sid)). Set operations find the few calls recorded twice
    without a Python step for every call; each session's digests come sorted, so a bucket of
    them is a slice."""
    best, claimants = {}, collections.defaultdict(list)    # digest -> (rank, index); -> indices
    for bucket in range(DIGEST_BUCKETS):
        low, high = bucket << (64 - 4), (bucket + 1) << (64 - 4)
        spans = [(bisect.bisect_left(r.keys, low), bisect.bisect_left(r.keys, high)) for r in results]
        seen, shared = set(), set()
        for result, (lo, hi) in zip(results, spans):
            mine = set(result.keys[lo:hi])
            shared |= seen & mine
            seen |= mine
        del seen
        if not shared:
            continue
        for index, (result, (lo, hi)) in enumerate(zip(results, spans)):
            if shared.isdisjoint(result.keys[lo:hi]):
                continue
            for key, ts in zip(result.keys[lo:hi], result.stamps[lo:hi]):
                if key not in shared:
                    continue
                claimants[key].append(index)
                rank = owner_rank(ts, result.end, *sessions[index])
                held = best.get(key)
                if held is None or rank < held[0]:
                    best[key] = (rank, index)
    lost = collections.defaultdict(set)
    for key, indices in claimants.items():
        for index in indices:
            if index != best[key][1]:
                lost[index].add(key)
    return lost


@dataclass
class SessionJob:
    """One session to read and summarise, maybe in a worker; `lost` holds digests of the keys of
    the API calls another session owns (known only after every session has been read once)."""
    project: Path
    sid: str
    files: list
    depth: str
    summarise: object            # facts -> result; pure and picklable
    reading: FastReading
    lost: frozenset = frozenset()
    settings: str = ""           # digest of the depth and of summarise, for the session cache


@dataclass
class SessionResult:
    """What comes back of a session: its summary, and what ownership needs to know of it."""
    row: object | None           # summarise's result; None when the session has no records
    keys: array.array            # 'Q': the digest of each API call's key it recorded, ascending ...
    stamps: array.array          # 'd': ... and the call's earliest timestamp there
    end: float
    skipped: Skipped
    read: bool = True            # False when it came whole from the cache


def read_and_summarise(job: SessionJob) -> SessionResult:
    """Read one session at its depth, as if it owned every call but the lost ones, and summarise it."""
    scans = [job.reading.scan(tf, job.sid, job.depth) for tf in job.files]
    claims, end = session_claims(scans)
    facts = assemble_session(job.sid, job.project.name, job.files, scans,
                             (lambda key: key_hash(key) not in job.lost) if job.lost else owns_every_call)
    row = job.summarise(facts) if facts.timestamps or facts.calls else None
    digests = sorted(zip(map(key_hash, claims), claims.values()))     # sorted: lost_calls slices them
    return SessionResult(row, array.array("Q", (d for d, _ in digests)), array.array("d", (t for _, t in digests)),
                         end, facts.skipped)


def session_from_cache(job: SessionJob) -> SessionResult | None:
    """The session's result as the cache keeps it, if none of its files changed since."""
    entry = _session_entry(job)
    if entry is None:
        return None
    hit = job.reading.options.cache.read(entry[0], "sessions")
    if isinstance(hit, dict) and hit.get("stamp") == entry[1] and isinstance(hit.get("result"), SessionResult):
        return dataclasses.replace(hit["result"], read=False)
    return None


def read_and_keep(job: SessionJob) -> SessionResult:
    """read_and_summarise, and the result kept in the cache for the next run under the stamp its
    files had before they were read (a file that grows meanwhile is read again next time)."""
    entry = _session_entry(job)
    result = read_and_summarise(job)
    if entry is not None:
        job.reading.options.cache.write(entry[0], "sessions", {"stamp": entry[1], "result": result},
                                source=str(job.files[0].path) if job.files else str(job.project))
    return result


def _session_entry(job: SessionJob) -> tuple[str, tuple] | None:
    """(cache key, stamp) of a session's result, or None when it is not kept."""
    stamp = _session_stamp(job) if job.reading.options.cache and job.settings else None
    # A session that loses calls to another is summarised twice a run: once whole, once without
    # them. Each has its own entry, so neither evicts the other.
    key = f"{job.project.absolute()}\0{job.sid}" + ("\0without lost calls" if job.lost else "")
    return (key, stamp) if stamp else None


def _session_stamp(job: SessionJob) -> tuple | None:
    """What a session's result depends on: its files' paths, sizes, mtimes and inodes, the
    depth and the summary settings, and the calls it loses to others. None if a file is gone."""
    try:
        return (job.settings, tuple(_file_stamp(tf.path) for tf in job.files), sorted(job.lost))
    except OSError:
        return None


def _file_stamp(path: Path) -> str:
    info = os.stat(path)
    return f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}"


def run_jobs(jobs: list[SessionJob], options: ReadOptions) -> list[SessionResult]:
    """Every job's result: from the cache when none of its session's files changed, else read
    and summarised, spread over the CPU cores when there is enough to read. The cache is looked
    up here first: while Claude Code runs one session grows, and starting worker processes to
    read it and to look up all the others would cost more than it saves."""
    results = [session_from_cache(job) for job in jobs]
    todo = [i for i, result in enumerate(results) if result is None]
    for i, result in zip(todo, _read_jobs([jobs[i] for i in todo], options)):
        results[i] = result
    return results


def _read_jobs(jobs: list[SessionJob], options: ReadOptions) -> list[SessionResult]:
    """read_and_keep for every job, in worker processes when there is enough to read."""
    sizes = []
    for job in jobs:
        total = 0
        for tf in job.files:
            try:
                total += tf.path.stat().st_size
            except OSError:
                pass
        sizes.append(total)
    workers = options.workers or min(os.cpu_count() or 1, 8)
    if workers > 1 and len(jobs) > 1 and sum(sizes) >= options.parallel_min_bytes:
        # Imported here: only a first read of a big history uses them, and importing them
        # would add 30 ms to every run, cached reruns included.
        import concurrent.futures  # noqa: PLC0415
        import multiprocessing  # noqa: PLC0415
        if "fork" in multiprocessing.get_all_start_methods():
            order = sorted(range(len(jobs)), key=lambda i: -sizes[i])     # big sessions first
            try:
                with concurrent.futures.ProcessPoolExecutor(
                        max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                        initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                    results = list(pool.map(read_and_keep, [jobs[i] for i in order]))
                by_index = dict(zip(order, results))
                return [by_index[i] for i in range(len(jobs))]
            except (OSError, pickle.PicklingError, concurrent.futures.process.BrokenProcessPool):
                pass            # no processes here (or run under a profiler): read them in this one
    return [read_and_keep(job) for job in jobs]


def die_with_parent(parent: int) -> None:
    """In a worker: end as soon as the process that started it is gone, however it ended (a
    SIGKILL gives it no chance to stop its workers): Linux's parent-death signal where there is
    one, and everywhere a thread that looks twice a second."""
    try:
        import ctypes  # noqa: PLC0415 - only workers need it
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def history_fingerprint(projects_dir: Path, files: list[TranscriptFile], settings: str) -> tuple[str, str] | None:
    """(cache key, fingerprint) of a whole history: every file's path, size, mtime and inode,
    and the settings digest. None if a file cannot be seen or nothing may be cached."""
    if not settings:
        return None
    digest = hashlib.sha256(settings.encode())
    try:
        for tf in files:
            digest.update(_file_stamp(tf.path).encode("utf-8", "surrogateescape") + b"\n")
    except OSError:
        return None
    return f"{projects_dir.absolute()}\0{settings}", digest.hexdigest()


# ── CLI ───────────────────────────────────────────────────────────────────────

# Every option once, with the subcommands that take it: each subcommand's parser, and so its
# --help, is built from this table, an option a subcommand does not take is a usage error, and
# the run functions read every option from one namespace (options not taken hold their default).
SELECT = ("stats", "mermaid", "comment", "post", "otel")   # the commands that read one session
ALL_SESSIONS = ("list", "extract", "otel")                  # ... and those that read them all
READ = tuple(dict.fromkeys(SELECT + ALL_SESSIONS))


@dataclass(frozen=True)
class Option:
    flags: tuple
    commands: tuple
    group: str
    kwargs: dict


def _option(*flags, commands, group, **kwargs) -> Option:
    return Option(flags, tuple(commands), group, kwargs)


OPTIONS = (
    _option("--session-id", commands=SELECT, group="session selection", help="session id or unique prefix"),
    _option("--transcript", commands=SELECT, group="session selection", help="path to a session's .jsonl "
            "transcript, or to a captured `claude -p --output-format stream-json` run (recognised by its content)"),
    _option("--format", commands=SELECT, group="session selection", choices=("transcript", CAPTURE_FORMAT),
            help="read --transcript as this format instead of recognising it"),
    _option("--hook-input", commands=SELECT, group="session selection", action="store_true",
            help="read the session from the JSON a Claude Code hook gets on stdin (session_id, transcript_path)"),
    _option("--stats-file", commands=SELECT + ("summary",), group="session selection", metavar="FILE",
            action="append", help="reuse a stats JSON instead of reading transcripts (summary --dry-run: "
            "repeat it to summarise several)"),
    _option("--projects-dir", commands=READ, group="session selection", metavar="DIR", action="append",
            help="folder of Claude Code project transcripts (default: $CLAUDE_CONFIG_DIR/projects, else "
            "~/.claude/projects); repeat it for histories copied from several machines (a session in "
            "more than one counts once)"),
    _option("--otel-file", commands=READ, group="session selection", metavar="FILE", action="append",
            help="also read Claude Code's own telemetry: a file of OTLP/JSON log exports, one a line (the "
            "Collector's file exporter); a session with a transcript is counted once"),
    _option("--captures", commands=ALL_SESSIONS, group="session selection", metavar="DIR",
            help="also read the stream-json captures in DIR (a session with a transcript is counted once)"),
    _option("--no-cache", commands=READ, group="session selection", action="store_true",
            help="read every transcript in full; neither use nor update the scan cache "
            "($XDG_CACHE_HOME/session-analytics)"),
    _option("--since", "--from", dest="since", commands=ALL_SESSIONS, group="dates and filters", metavar="DATE",
            help="sessions (extract: PRs and issues) started on or after DATE (YYYY-MM-DD)"),
    _option("--until", "--to", dest="until", commands=ALL_SESSIONS, group="dates and filters", metavar="DATE",
            help="... started on or before DATE, inclusive"),
    _option("--project", commands=ALL_SESSIONS, group="dates and filters", metavar="TEXT",
            help="local sessions whose project path contains TEXT"),
    _option("--archive", commands=ALL_SESSIONS, group="dates and filters", metavar="DIR",
            help="count the sessions archived in DIR whose transcript is gone (list, extract: and keep every "
            "session's stats there)"),
    _option("--by", commands=("list",), group="dates and filters", action="append", choices=ROLLUP_KEYS,
            help="sums by day, week, month, project, branch, repository (its origin remote), skill or model "
            "instead of one row a session (repeat to combine)"),
    _option("--timezone", commands=("list",), group="dates and filters", metavar="ZONE",
            help="with --by: cut days, weeks and months in this IANA zone (default: the local one)"),
    _option("--source", commands=("extract",), group="dates and filters", choices=("github", "local"),
            default="github", help="session comments on GitHub (default), or local transcripts with no network"),
    _option("--pricing", commands=READ, group="data", metavar="FILE",
            help="JSON price table that overrides the built-in one"),
    _option("--problems", commands=SELECT, group="data", metavar="FILE",
            help="JSON list of problems an agent wrote, merged in"),
    _option("--skills-dir", commands=READ, group="data", metavar="DIR", default=".claude/skills",
            help="where workflow skills (SKILL.md with a mermaid flowchart) live (default: .claude/skills)"),
    _option("--repo", commands=SELECT + ("summary",), group="GitHub", metavar="OWNER/NAME",
            help="repository (default: GH_REPO, else the origin remote)"),
    _option("--repo", commands=("extract",), group="GitHub", metavar="OWNER/NAME", action="append",
            help="repository (default: GH_REPO, else the origin remote); repeat it for several"),
    _option("--resume", commands=("extract",), group="GitHub", action="store_true",
            help="go on from where an extract over several repositories into the same --output-dir stopped"),
    _option("--org", commands=("extract",), group="GitHub", metavar="OWNER",
            help="every repository of this organisation or user that gh's account can read"),
    _option("--exclude", commands=("extract",), group="GitHub", metavar="NAME", action="append",
            help="with --org: leave out this repository (NAME or OWNER/NAME; repeatable)"),
    _option("--topic", commands=("extract",), group="GitHub", metavar="TOPIC", action="append",
            help="with --org: only repositories with this topic (repeatable: any of them)"),
    _option("--target", commands=("stats", "comment", "summary", "post", "otel"), group="GitHub", choices=("pr", "issue"),
            help="comment on a pull request or an issue"),
    _option("--number", commands=("stats", "comment", "summary", "post", "otel"), group="GitHub", type=int,
            help="PR or issue number (default: the PR the session linked, else the open PR of the current branch)"),
    _option("--trusted-authors", commands=("summary", "post", "extract"), group="GitHub", metavar="LOGINS",
            default="", help="comma-separated logins trusted besides owners, members and collaborators"),
    _option("--dry-run", commands=("comment", "summary", "post", "otel"), group="GitHub", action="store_true",
            help="print what would be posted or sent, and post or send nothing (comment, summary, post: GitHub "
            "is still read, to show exactly what a post would send; otel: the OTLP/JSON requests)"),
    _option("--offline", commands=("comment",), group="GitHub", action="store_true",
            help="with --dry-run: ask GitHub nothing; preview at --privacy, else public"),
    _option("--privacy", commands=("comment", "summary", "post", "extract", "otel"), group="GitHub",
            choices=PRIVACY_LEVELS, help="what may leave the machine: public (numbers and names "
            "only), team (secrets and personal details removed) or full; default: public for a public "
            "repository or an unknown one, team for a private one (extract --source local and otel: team)"),
    _option("--budget-usd", commands=("summary", "post", "extract"), group="GitHub", metavar="USD", type=float,
            help="what a PR's sessions may cost: the summary says how much is used and marks a PR over it; extract "
            "lists the PRs over it (default: budget_usd in .claude/session-analytics.json, if any)"),
    _option("--fail-over-budget", commands=("summary", "post"), group="GitHub", action="store_true",
            help="exit 14 when the PR's sessions cost more than its budget (after the summary is posted)"),
    _option("--all", commands=("otel",), group="session selection", action="store_true",
            help="every session `list` would show (also implied by --since, --until, --project or --archive)"),
    _option("--otlp-endpoint", commands=("otel",), group="OpenTelemetry", metavar="URL",
            help="the OTLP/HTTP base URL (/v1/traces is added); default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as "
            "it is, else $OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318"),
    _option("--repost", commands=("comment", "post"), group="GitHub", action="store_true",
            help="delete this session's earlier comment and post a new one, so that GitHub's edit history "
            "no longer holds the old text"),
    _option("--output-dir", commands=("stats", "extract", "dashboard"), group="output", metavar="DIR",
            help="extract, dashboard: where analytics.csv, analytics.md, analytics.json and dashboard.html "
            "go; stats: DIR/<session id>.json"),
    _option("--chartjs", commands=("extract", "dashboard"), group="output", metavar="FILE",
            help="draw the dashboard's charts with this Chart.js file, inlined (default: a local copy when "
            "one is found, see `dashboard --help`)"),
    _option("--json", commands=("list",), group="output", action="store_true", help="JSON instead of a table"),
    _option("--wide", commands=("list",), group="output", action="store_true",
            help="every column whole, however wide the terminal"),
    _option("-o", "--output", commands=READ + ("summary", "dashboard"), group="output", metavar="FILE",
            help="write the result to FILE (atomically)"),
    _option("--quiet", commands=READ + ("summary", "dashboard"), group="output", action="store_true",
            help="no notes or warnings on stderr"),
)

# name: (what it does, examples). `post`, the whole pipeline, is also what runs with no subcommand.
COMMANDS = {
    "stats": ("one session's statistics as JSON", """\
  %(prog)s                                  the newest session of this folder's project
  %(prog)s --session-id 00b11888            a session by id (or unique prefix)
  %(prog)s --transcript run.jsonl -o s.json  a transcript or a `claude -p` capture"""),
    "list": ("every session on this machine: a table, JSON, or sums by day, week, month, project, model",
             """\
  %(prog)s                                  newest first, fitted to the terminal
  %(prog)s --json --since 2026-02-01 --project kagenti
  %(prog)s --by week --by model             sums instead of rows"""),
    "mermaid": ("the session's workflow skills as annotated Mermaid diagrams", """\
  %(prog)s --session-id 00b11888 --skills-dir .claude/skills"""),
    "comment": ("post (or --dry-run: print) the session's comment on its PR or issue", """\
  %(prog)s --dry-run                        print this session's PR comment, post nothing
  %(prog)s --target issue --number 123"""),
    "summary": ("post (or --dry-run: print) the summary of every session comment on a PR or issue", """\
  %(prog)s --target pr --number 652
  %(prog)s --dry-run --stats-file a.json --stats-file b.json"""),
    "post": ("the whole pipeline: stats, the session comment, then the summary (what runs with no "
             "subcommand)", """\
  %(prog)s --session-id "$CLAUDE_CODE_SESSION_ID"
  %(prog)s --hook-input                     from a Claude Code hook's stdin"""),
    "otel": ("send sessions to an observability backend as OpenTelemetry (OTLP) traces", """\
  %(prog)s --otlp-endpoint http://127.0.0.1:6006               this session, to Phoenix
  %(prog)s --all --since 2026-11-01                             every session since, to $OTEL_EXPORTER_OTLP_ENDPOINT
  %(prog)s --dry-run -o spans.jsonl                             the OTLP/JSON requests, sent nowhere

Also read: OTEL_EXPORTER_OTLP_HEADERS (k=v,...), OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf, the default,
or http/json), OTEL_EXPORTER_OTLP_COMPRESSION (gzip), OTEL_EXPORTER_OTLP_TIMEOUT (ms), their TRACES_
forms, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (Phoenix's project: openinference.project.name)."""),
    "extract": ("a dataset (CSV, Markdown report, JSON) and a dashboard from PR comments or local sessions",
                """\
  %(prog)s --repo o/r --since 2026-01-01 --until 2026-02-15 --output-dir out/
  %(prog)s --source local --output-dir out/"""),
    "dashboard": ("the dashboard again, from an extract's analytics.json", """\
  %(prog)s --output-dir out/

Chart.js is inlined so that the page draws offline: --chartjs FILE, else $SESSION_ANALYTICS_CHARTJS,
else node_modules/chart.js/dist/chart.umd.min.js under the current folder. With none, the page
loads it from the web, and says so where the charts would be; its tables need nothing."""),
}

EPILOG = """\
examples:
  %(prog)s list                                every session on this machine
  %(prog)s stats --session-id 00b11888         one session's numbers as JSON
  %(prog)s comment --dry-run                   this session's PR comment, posted nowhere
  %(prog)s --session-id "$CLAUDE_CODE_SESSION_ID"   post: the comment and the PR's summary
  %(prog)s extract --source local --output-dir out/   a CSV, a report and a dashboard

`%(prog)s COMMAND --help` shows a command's options; `--phase COMMAND` is the same as COMMAND.

session selection: --stats-file, else --transcript, else --session-id, else
$CLAUDE_CODE_SESSION_ID, else the newest session of the current directory's project.
Transcripts are read from --projects-dir, else $CLAUDE_CONFIG_DIR/projects, else
~/.claude/projects.

GitHub (comment, summary, post): the repository is --repo, else GH_REPO, else the origin remote
of the current directory; the target is --target/--number, else the PR the session linked, else
the open pull request whose head is the current branch. All calls go through `gh api`.

exit codes:
  0  ok
  1  internal error (a bug: please report the one-line message)
  2  usage error (also: a Python older than 3.10)
  3  no session found (unknown id, no transcript, empty projects folder)
  4  bad input file (pricing, problems or stats file unreadable or invalid)
  5  output file could not be written
  6  gh (the GitHub CLI) is not installed
  7  gh is not authenticated
  8  repository, PR or issue not found, or no open PR for the branch
  9  rate limited by GitHub beyond the bounded retries, or its GraphQL budget spent
 10  other GitHub failure (server errors or network after retries, permission, a list cut short)
 11  GitHub rejected a write as invalid (422)
 12  extract: files written, but some PRs or issues could not be read (listed on stderr)
 13  otel: the OTLP endpoint refused the export, or did not answer after retries
 14  summary, post --fail-over-budget: the PR's sessions cost more than its budget
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)", EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser, with one subparser a command built from OPTIONS."""
    parser = _Parser(prog="session-analytics.py", description=__doc__.split("\n\n")[0],
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="phase", title="commands", metavar="COMMAND", parser_class=_Parser)
    for name, (what, examples) in COMMANDS.items():
        sub = commands.add_parser(name, help=what, description=what, epilog="examples:\n" + examples,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        groups = {}
        for option in OPTIONS:
            if name in option.commands:
                group = groups.get(option.group) or groups.setdefault(option.group,
                                                                      sub.add_argument_group(option.group))
                group.add_argument(*option.flags, **option.kwargs)
    return parser


def option_defaults() -> dict:
    """Every option's value when it is not given: what a command that does not take it reads."""
    every, dests = argparse.ArgumentParser(add_help=False), set()
    for option in OPTIONS:
        dest = option.kwargs.get("dest") or option.flags[-1].lstrip("-").replace("-", "_")
        if dest not in dests:               # an option spelled twice (one per set of commands)
            dests.add(dest)
            every.add_argument(*option.flags, **option.kwargs)
    return vars(every.parse_args([]))


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line, read as the subcommand it names: first, or as `--phase NAME` anywhere
    (the older spelling, which skills and scripts use), else `post`, the whole pipeline."""
    argv, phase = list(argv), None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--phase" or arg.startswith("--phase="):
            phase = arg.partition("=")[2] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            del argv[i:i + (1 if "=" in arg else 2)]
            if phase not in COMMANDS:
                raise UserError(f"--phase: unknown command {phase!r} (choose from {', '.join(COMMANDS)})",
                                EXIT_USAGE)
            if argv and argv[0] in COMMANDS:
                raise UserError(f"give the command once: {argv[0]!r} and --phase {phase}", EXIT_USAGE)
            argv.insert(0, phase)
            break
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "post")
    args, extra = build_parser().parse_known_args(argv)
    if extra:
        raise UserError(f"{args.phase} does not take {' '.join(extra)} (see session-analytics.py "
                        f"{args.phase} --help)", EXIT_USAGE)
    for dest, default in option_defaults().items():
        if not hasattr(args, dest):
            setattr(args, dest, default)
    return args


def emit(args, text: str) -> None:
    if args.output:
        write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def warner(args):
    """A function that prints one warning line on stderr, unless --quiet."""
    def warn(message: str) -> None:
        if not args.quiet:
            print(f"{PROG}: warning: {terminal_text(message)}", file=sys.stderr)
    return warn


def _git(folder: str | None, *argv: str) -> str:
    if not folder or not os.path.isdir(folder):
        return ""
    try:
        return subprocess.run(["git", "-C", folder, *argv], capture_output=True, text=True,
                              timeout=10, stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def repo_from_remote(url: str) -> str | None:
    """'git@github.com:o/r.git' or 'https://github.com/o/r' -> 'o/r'."""
    m = re.search(r"(?:[:/])([^/:\s]+)/([^/\s]+?)(?:\.git)?/?$", url.strip())
    return f"{m.group(1)}/{m.group(2)}" if m and ("://" in url or "@" in url) else None


def detect_repo(args, *folders: str | None) -> str | None:
    """OWNER/NAME from --repo, GH_REPO ([HOST/]OWNER/NAME), else the origin remote of a folder."""
    for given in (args.repo, os.environ.get("GH_REPO")):
        if given:
            parts = given.strip().strip("/").split("/")
            if len(parts) not in (2, 3) or not all(parts):
                raise UserError(f"not a repository: {given!r} (use OWNER/NAME)", EXIT_USAGE)
            return "/".join(parts[-2:])
    for folder in folders:
        repo = repo_from_remote(_git(folder, "remote", "get-url", "origin"))
        if repo:
            return repo
    return None


def current_branch() -> str | None:
    branch = _git(os.getcwd(), "rev-parse", "--abbrev-ref", "HEAD")
    return branch if branch and branch != "HEAD" else None


def flag_target(args) -> dict | None:
    """The target named on the command line, as the stats record it."""
    if args.target and args.number is None:
        raise UserError("--target needs --number", EXIT_USAGE)
    if args.number is None:
        return None
    return {"type": args.target or "pr", "number": args.number}


def load_stats_file(path: str) -> dict:
    data, problem = session_data(read_json_file(Path(path), "stats file"))
    if problem:
        raise UserError(f"stats file {path}: {problem}", EXIT_BAD_INPUT)
    return data


def session_stats(args, reader: HistoryReader, templates: list) -> dict:
    """The stats of the chosen session: from --stats-file, else computed from its transcripts."""
    return chosen_session(args, reader, templates)[1]


def chosen_session(args, reader: HistoryReader, templates: list) -> tuple[SessionFacts | None, dict]:
    """(facts, stats) of the chosen session; no facts when the stats come from --stats-file."""
    if args.stats_file:
        if len(args.stats_file) > 1:
            raise UserError("give one --stats-file for this phase", EXIT_USAGE)
        stats = load_stats_file(args.stats_file[0])
        return None, {**stats, "target": flag_target(args) or stats.get("target")}
    pricing = load_pricing(args.pricing)
    extra = load_problems(args.problems) if args.problems else []
    ref = reader.locate(args.session_id or os.environ.get("CLAUDE_CODE_SESSION_ID"), args.transcript,
                        transcript_format=args.format)
    facts = reader.session(ref)
    note(args, reader)
    if not facts.timestamps and not facts.calls:
        raise UserError(f"session {facts.session_id} has no readable records", EXIT_NO_SESSION)
    session_cwd = _most_common(facts.cwds)
    name = detect_repo(args, session_cwd) or ref.project.name
    return facts, compute_stats(facts, pricing, name, flag_target(args), extra, templates)


def note(args, reader: HistoryReader) -> None:
    """What the reader skipped, once on stderr, unless --quiet."""
    line = reader.note()
    if line and not args.quiet:
        print(line, file=sys.stderr)


# A repository's own settings for the skills and CI: .claude/session-analytics.json at the top of
# the checkout (the current folder's git top level, else the current folder), e.g.
# {"budget_usd": 25}. A flag on the command line wins over it.
SETTINGS_FILE = Path(".claude") / "session-analytics.json"


def repository_settings() -> dict:
    top = _git(os.getcwd(), "rev-parse", "--show-toplevel") or os.getcwd()
    path = Path(top) / SETTINGS_FILE
    if not path.is_file():
        return {}
    settings = read_json_file(path, "settings file")
    if not isinstance(settings, dict):
        raise UserError(f"settings file {path} is not a JSON object", EXIT_BAD_INPUT)
    return settings


def budget_of(args) -> float | None:
    """The PR budget in USD: --budget-usd, else the repository's settings; None for none."""
    budget = args.budget_usd if args.budget_usd is not None else repository_settings().get("budget_usd")
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget <= 0:
        raise UserError(f"a budget must be a positive number of USD, not {budget!r}", EXIT_USAGE)
    return float(budget)


def check_budget(args, body: str) -> None:
    """--fail-over-budget: exit 14 when the summary just made says the PR is over its budget."""
    budget = as_dict(as_dict(comment_data(body, SUMMARY_DATA_TITLE)).get("budget"))
    if args.fail_over_budget and budget.get("over"):
        raise UserError(f"over budget: the sessions cost {budget.get('used_percent')}% of "
                        f"{format_cost(budget.get('usd'))}", EXIT_OVER_BUDGET)


def trusted_logins(args) -> set:
    """--trusted-authors as a set of lower-case logins."""
    return {login.strip().casefold() for login in args.trusted_authors.split(",") if login.strip()}


def workflow_templates(args) -> list[WorkflowTemplate]:
    return load_workflow_templates(Path(args.skills_dir).expanduser(), warner(args))


def render_workflows(sections: dict[str, str]) -> str:
    return "".join(f"### {title} Workflow\n\n{diagram}\n" for title, diagram in sections.items())


def open_github(github: GitHub, args, stats: dict | None) -> GitHub:
    """The client main made, for the repository of --repo, GH_REPO or the git remote."""
    return github.at(detect_repo(args, os.getcwd(), (stats or {}).get("cwd")))


def find_target(github: GitHub, args, stats: dict | None) -> Target:
    """--target/--number, else the last PR the session linked in this repository (Claude Code's
    pr-link records: the PR it opened or named), else the open PR of the branch."""
    flag_target(args)
    number = args.number
    if number is None:
        linked = [as_int(link.get("number")) for link in (stats or {}).get("pr_links") or []
                  if isinstance(link, dict) and as_str(link.get("repository")).casefold() == github.repo.casefold()]
        number = linked[-1] if linked else None
    return resolve_target(github, args.target, number, current_branch() or (stats or {}).get("branch"))


def posted_line(what: str, posted: Posted) -> str:
    return f"{what} {posted.action}: {as_str(posted.comment.get('html_url')) or posted.comment.get('id')}\n"


def apply_hook_input(args, stdin) -> None:
    """Take the session from a hook's stdin JSON: its transcript_path, else its session_id."""
    try:
        payload = json.loads(stdin.read() or "{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"--hook-input: stdin is not the hook's JSON ({exc})", EXIT_BAD_INPUT) from None
    if not isinstance(payload, dict) or not (payload.get("transcript_path") or payload.get("session_id")):
        raise UserError("--hook-input: stdin JSON has neither transcript_path nor session_id", EXIT_BAD_INPUT)
    transcript = as_str(payload.get("transcript_path"))
    if transcript and Path(transcript).expanduser().is_file():
        args.transcript = transcript
    else:
        args.session_id = as_str(payload.get("session_id")) or None


def run_stats(args, reader: HistoryReader, github: GitHub) -> int:
    stats = session_stats(args, reader, workflow_templates(args))
    text = json_text(stats)
    if args.output_dir and not args.output:
        path = session_file(output_dir(args), stats["session_id"])
        write_atomic(path, text)
        emit(args, f"wrote {path}\n")
        return EXIT_OK
    emit(args, text)
    return EXIT_OK


def run_list(args, reader: HistoryReader, github: GitHub) -> int:
    require_projects_dir(reader)
    pricing = load_pricing(args.pricing)
    rows = reader.each_session(ROW, functools.partial(list_row, pricing=pricing), summary_key(pricing))
    if args.archive:
        archive = Path(args.archive).expanduser()
        templates = workflow_templates(args)
        full = reader.fresh()             # its counts are the same
        every = full.each_session(FULL, functools.partial(local_stats, pricing=pricing, templates=templates),
                                  summary_key(pricing, templates))
        write_archive(archive, every, warner(args))
        rows += [row_from_stats(s) for s in read_archive(archive, {r["session_id"] for r in rows}, reader)]
    rows = filter_sessions(rows, args.since, args.until, args.project)
    rows.sort(key=lambda r: (r["started_at"] or "", r["session_id"]), reverse=True)
    by = list(dict.fromkeys(args.by or []))
    if "model" in by and "skill" in by:
        raise UserError("--by model and --by skill cannot be combined: a session's cost is split by model "
                        "but not by skill", EXIT_USAGE)
    if "repository" in by:
        repositories = {}
        for row in rows:
            folder = as_str(row.get("project"))
            if folder not in repositories:
                repositories[folder] = repo_from_remote(_git(folder, "remote", "get-url", "origin"))
            row["repository"] = repositories[folder]
    if "skill" in by:
        full = reader.fresh()
        templates = workflow_templates(args)
        skills = {s["session_id"]: [as_str(k.get("skill")) for k in s.get("skills_invoked") or [] if k.get("count")]
                  for s in full.each_session(FULL, functools.partial(local_stats, pricing=pricing, templates=templates),
                                             summary_key(pricing, templates))}
        for row in rows:
            row["skills"] = skills.get(row["session_id"], [])
    note(args, reader)
    if not rows and not args.json:
        emit(args, no_sessions_line(args, reader))
        return EXIT_OK
    width = None if args.wide or args.output or not sys.stdout.isatty() else shutil.get_terminal_size().columns
    if by:
        report = {**rollup(rows, by, timezone(args.timezone)),
                  "timezone": args.timezone or "local"}
        emit(args, json_text(report) if args.json else terminal_text(render_rollup(report, width)))
    elif args.json:
        emit(args, json_text(rows))
    else:
        emit(args, terminal_text(render_session_table(rows, width)))
    return EXIT_OK


def no_sessions_line(args, reader: HistoryReader) -> str:
    """Where list looked, and what it kept out, when it found nothing."""
    where = [str(reader.projects_dir)] + ([str(reader.captures_dir)] if reader.captures_dir else [])
    kept_out = [f"--{name} {value}" for name, value in (("since", args.since), ("until", args.until),
                                                          ("project", args.project)) if value]
    return (f"No sessions found in {' or '.join(where)}"
            + (f" with {' '.join(kept_out)}" if kept_out else "") + ".\n")


def timezone(name: str | None):
    """An IANA zone (zoneinfo), or the local one."""
    if not name:
        return datetime.datetime.now().astimezone().tzinfo
    import zoneinfo  # noqa: PLC0415 - only rollups need it
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UserError(f"not a time zone: {name!r} (use an IANA name such as Europe/Paris)", EXIT_USAGE) from None


def run_mermaid(args, reader: HistoryReader, github: GitHub) -> int:
    templates = workflow_templates(args)
    stats = session_stats(args, reader, templates)
    sections = workflow_sections(templates, stats)
    if not sections:
        warner(args)(f"no workflow under {args.skills_dir} has a skill this session invoked")
    emit(args, render_workflows(sections))
    return EXIT_OK


def with_actor(stats: dict) -> dict:
    """In a GitHub Actions job the comment is posted by a bot: record who started the job."""
    actor = os.environ.get("GITHUB_ACTOR", "")
    return {**stats, "github_actor": actor} if GITHUB_LOGIN_RE.fullmatch(actor) else stats


def run_comment(args, reader: HistoryReader, github: GitHub) -> int:
    templates = workflow_templates(args)       # read once: a broken one is reported once
    stats = with_actor(session_stats(args, reader, templates))
    workflows = workflow_sections(templates, stats)
    if args.dry_run:
        emit(args, preview_session_comment(args, github, stats, workflows))
        return EXIT_OK
    github = open_github(github, args, stats)
    target = find_target(github, args, stats)
    privacy, _ = target_privacy(github, target, args.privacy, stats)
    posted = post_session_comment(github, target, stats_for_target(stats, target), workflows, privacy,
                                  args.repost)
    emit(args, posted_line("comment", posted))
    return EXIT_OK


def preview_session_comment(args, github: GitHub, stats: dict, workflows: dict) -> str:
    """--dry-run: the body a real run would post, from the same reads of GitHub (its target, the
    repository's visibility, what the PR shows), with nothing written. With --offline, or when
    GitHub cannot be asked, the body at --privacy (else public), and one line says why."""
    warn = warner(args)
    repo = detect_repo(args, os.getcwd(), stats.get("cwd"))
    if repo and not args.offline:
        try:
            github = github.at(repo)
            target = find_target(github, args, stats)
            privacy, why = target_privacy(github, target, args.privacy, stats)
            listed = github.list(github.repo_path(f"issues/{target.number}/comments"))
            login = github.login()
            is_mine = session_comment_is_mine(stats["session_id"])
            mine = any(as_dict(c.get("user")).get("login") == login and is_mine(c) for c in listed
                       if isinstance(c, dict))
            warn(f"dry run: would {'update' if mine else 'create'} the comment on {repo}#{target.number} "
                 f"at privacy level {privacy.level} ({why}); nothing posted")
            return render_session_comment(stats_for_target(stats, target), workflows, privacy)
        except GitHubError as exc:
            reason = f"GitHub could not be asked ({exc})"
    else:
        reason = "--offline" if repo else "no repository known"
    privacy = Privacy(args.privacy or "public", repo, None, frozenset(), machine_people())
    warn(f"dry run: {reason}; previewing at privacy level {privacy.level}"
         + ("" if args.privacy else " (the default when the repository's visibility is unknown)"))
    return render_session_comment({**stats, "project": repo or stats.get("project")}, workflows, privacy)


def run_summary(args, reader: HistoryReader, github: GitHub) -> int:
    budget = budget_of(args)                 # a wrong one is said before anything is read
    if args.stats_file:
        if not args.dry_run:
            raise UserError("--stats-file with --phase summary needs --dry-run: a posted summary is "
                            "always recomputed from the comments on GitHub", EXIT_USAGE)
        by_id = {}
        for path in args.stats_file:
            stats = load_stats_file(path)
            by_id[stats["session_id"]] = stats
        sessions = sorted(by_id.values(), key=lambda d: (as_str(d.get("started_at")), d["session_id"]))
        target = flag_target(args)
        privacy = Privacy(args.privacy or "public", people=machine_people())
        body = render_summary_comment(summary_data(sessions, target, None, privacy, budget))
        emit(args, body)
        check_budget(args, body)
        return EXIT_OK
    github = open_github(github, args, None)
    target = find_target(github, args, None)
    privacy, _ = target_privacy(github, target, args.privacy, None)
    trusted = trusted_logins(args)
    if args.dry_run:
        comments = github.list(github.repo_path(f"issues/{target.number}/comments"))
        body = summary_of(comments, target, trusted, privacy, github.warn, budget_usd=budget)
        emit(args, body)
    else:
        posted = post_summary(github, target, trusted, privacy, budget)
        emit(args, posted_line("summary", posted))
        body = as_str(posted.comment.get("body"))
    check_budget(args, body)
    return EXIT_OK


def run_pipeline(args, reader: HistoryReader, github: GitHub) -> int:
    """No --phase: stats, mermaid, the session comment, then the summary, on one target."""
    templates = workflow_templates(args)       # read once: a broken one is reported once
    stats = with_actor(session_stats(args, reader, templates))
    workflows = workflow_sections(templates, stats)
    github = open_github(github, args, stats)
    target = find_target(github, args, stats)
    stats = stats_for_target(stats, target)
    privacy, why = target_privacy(github, target, args.privacy, stats)
    trusted, budget = trusted_logins(args), budget_of(args)
    if args.dry_run:
        warner(args)(f"dry run: both bodies at privacy level {privacy.level} ({why}); nothing posted")
        summary = summary_of(github.list(github.repo_path(f"issues/{target.number}/comments")), target, trusted,
                             privacy, github.warn, replace=stats, budget_usd=budget)
        emit(args, render_session_comment(stats, workflows, privacy) + "\n" + summary)
        check_budget(args, summary)
        return EXIT_OK
    lines = posted_line("comment", post_session_comment(github, target, stats, workflows, privacy, args.repost))
    posted = post_summary(github, target, trusted, privacy, budget)
    emit(args, lines + posted_line("summary", posted))
    check_budget(args, as_str(posted.comment.get("body")))
    return EXIT_OK


def extract_range(args, required: bool) -> tuple[float, float]:
    if required and not (args.since and args.until):
        raise UserError("extract from GitHub needs --since and --until (YYYY-MM-DD)", EXIT_USAGE)
    since = parse_date_bound(args.since, False) if args.since else float("-inf")
    until = parse_date_bound(args.until, True) if args.until else float("inf")
    if since > until:
        raise UserError(f"--since {args.since} is after --until {args.until}", EXIT_USAGE)
    return since, until


def output_dir(args) -> Path:
    if not args.output_dir:
        raise UserError(f"{args.phase} needs --output-dir DIR", EXIT_USAGE)
    folder = Path(args.output_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {folder}: {exc.strerror or exc}", EXIT_OUTPUT) from None
    return folder


# Where a local Chart.js is looked for when --chartjs is not given: inlined, it lets the page draw
# with no network. `npm install chart.js` in the current folder puts one at the second place.
CHARTJS_ENV = "SESSION_ANALYTICS_CHARTJS"
CHARTJS_LOCAL = Path("node_modules") / "chart.js" / "dist" / "chart.umd.min.js"


def read_chartjs(args) -> str | None:
    """Chart.js to inline: --chartjs, else $SESSION_ANALYTICS_CHARTJS, else ./node_modules's copy;
    None (the page loads it from the web, and says so) when there is none."""
    given = [(f"--chartjs {args.chartjs}", args.chartjs), (f"${CHARTJS_ENV}", os.environ.get(CHARTJS_ENV))]
    for what, path in given:
        if path:
            try:
                return Path(path).expanduser().read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UserError(f"cannot read {what}: {getattr(exc, 'strerror', None) or exc}",
                                EXIT_BAD_INPUT) from None
    try:
        return CHARTJS_LOCAL.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def warn_if_online_only(args, chartjs: str | None) -> None:
    if chartjs is None:
        warner(args)(f"dashboard.html loads Chart.js from the web; offline it shows tables, no charts "
                     f"(`npm install chart.js` here, ${CHARTJS_ENV} or --chartjs FILE give it a local copy)")


def require_projects_dir(reader: HistoryReader) -> None:
    if not reader.projects_dir.is_dir() and reader.captures_dir is None and not reader.otel_files:
        raise UserError(f"projects folder not found: {reader.projects_dir} "
                        "(set --projects-dir or CLAUDE_CONFIG_DIR)", EXIT_NO_SESSION)


def local_sessions(args, reader: HistoryReader, since: float, until: float) -> list[dict]:
    """Stats of every local session that started in the range."""
    require_projects_dir(reader)
    pricing, templates = load_pricing(args.pricing), workflow_templates(args)
    found = []
    summarise = functools.partial(local_stats, pricing=pricing, templates=templates)
    every = reader.each_session(FULL, summarise, summary_key(pricing, templates))
    if args.archive:
        every += read_archive(Path(args.archive).expanduser(), {s["session_id"] for s in every}, reader)
    for stats in every:
        start = parse_ts(stats.get("started_at"))
        if start is None or not since <= start <= until:
            continue
        if not args.project or args.project.casefold() in as_str(stats["project"]).casefold():
            found.append(stats)
    note(args, reader)
    return found


def write_outputs(folder: Path, data: dict, chartjs: str | None) -> list[Path]:
    """The four files of an extract; the JSON carries what the spend bought, for whoever reads it."""
    view = analytics_view(data)
    data = {**data, "outcomes": view["outcomes"]}
    files = {"analytics.json": json_text(data, indent=1, sort_keys=True),
             "analytics.csv": render_csv(csv_rows(data["items"]), several_repositories(data["items"])),
             "analytics.md": render_report(data, view),
             "dashboard.html": render_dashboard(data, chartjs, view)}
    for name, text in files.items():
        write_atomic(folder / name, text)
    return [folder / name for name in files]


def run_extract(args, reader: HistoryReader, github: GitHub) -> int:
    folder, budget = output_dir(args), budget_of(args)
    chartjs = read_chartjs(args)
    if args.source == "local":
        since, until = extract_range(args, required=False)
        items, failures, repo = local_items(local_sessions(args, reader, since, until)), [], None
        privacy = Privacy(args.privacy or "team", people=machine_people())
    else:
        since, until = extract_range(args, required=True)
        visibilities = extract_repositories(github, args)
        repos = list(visibilities)
        items, failures, levels = gather_repositories(github, args, visibilities, since, until, folder)
        repo = repos[0] if len(repos) == 1 else None
        # one level for the whole dataset: the strictest any of its repositories asks for
        level = min(levels, key=PRIVACY_LEVELS.index) if levels else "public"
        privacy = Privacy(level, repo, people=machine_people())
    data = {"schema_version": SCHEMA_VERSION, "source": args.source, "repo": repo,
            **({"repositories": repos} if args.source == "github" and len(repos) > 1 else {}),
            "from": args.since or "", "to": args.until or "", "privacy": privacy.level,
            **({"budget_usd": budget} if budget else {}),
            "items": outbound_items(items, privacy),
            "failures": [{**f, "error": scrub(f["error"], privacy)} for f in failures]}
    paths = write_outputs(folder, data, chartjs)
    warn_if_online_only(args, chartjs)
    sessions = sum(len(i["sessions"]) for i in items)
    emit(args, f"extracted {plural(sessions, 'session')} from "
               + (plural(len(items), "PR or issue", "PRs and issues") if args.source == "github"
                  else plural(len(items), "local session")) + ": "
               + ", ".join(str(p) for p in paths) + "\n")
    if failures:
        warn = warner(args)
        for failure in failures:
            warn(f"{failure.get('repository', '')}#{failure['number']} not read: {failure['error']}")
        raise UserError(f"{plural(len(failures), 'PR or issue', 'PRs and issues')} could not be read; the files hold "
                        "the rest", EXIT_PARTIAL)
    return EXIT_OK


class PartialExtract:
    """What an extract over several repositories has read so far, so that a run cut short (a rate
    limit, a lost connection, ^C) loses only the repositories in flight: a folder in the output
    folder with the range and settings, and one file per repository, each written atomically as
    soon as it is read (keeping n repositories costs n writes, not one growing file rewritten n
    times). --resume starts from it when the range and settings are the same; a finished extract
    removes it."""

    FOLDER = ".extract-partial"

    def __init__(self, output: Path, key: dict, warn):
        self.folder, self.key, self.warn = output / self.FOLDER, key, warn

    def kept(self, resume: bool) -> dict:
        """Repository -> what was read of it; nothing, and the folder cleared, unless resuming."""
        settings = self.folder / "settings.json"
        if resume and settings.is_file():
            try:
                same = read_json_file(settings, "partial extract") == self.key
            except UserError:
                same = False
            if same:
                return dict(self._entries())
            self.warn(f"{self.folder} is from another range or other settings: starting over")
        self.remove()
        return {}

    def keep(self, name: str, entry: dict) -> None:
        if not (self.folder / "settings.json").is_file():
            write_atomic(self.folder / "settings.json", json_text(self.key))
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        write_atomic(self.folder / f"repository-{digest}.json", json_text({"repository": name, **entry}))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _entries(self):
        for path in sorted(self.folder.glob("repository-*.json")):
            try:
                entry = as_dict(read_json_file(path, "partial extract"))
            except UserError as exc:
                self.warn(f"{exc}: reading that repository again")
                continue
            if isinstance(entry.get("repository"), str) and isinstance(entry.get("level"), str) and \
                    isinstance(entry.get("items"), list) and isinstance(entry.get("failures"), list):
                yield entry["repository"], {k: entry[k] for k in ("level", "items", "failures")}


def gather_repositories(github: GitHub, args, visibilities: dict, since: float, until: float,
                        folder: Path) -> tuple[list, list, list]:
    """(items, failures, privacy levels) of every repository, resumed from a partial extract."""
    several = len(visibilities) > 1
    key = {"since": since, "until": until, "trusted": sorted(trusted_logins(args)), "privacy": args.privacy}
    partial = PartialExtract(folder, key, warner(args))
    done = partial.kept(args.resume)
    lock, trusted = threading.Lock(), trusted_logins(args)

    def finished(name: str, visibility: str | None, found: list, failed: list) -> None:
        """Keeps a repository that was read, in the partial extract too."""
        listed = visibilities[name]
        if listed != "?":
            visibility = listed
        elif visibility not in ("public", "private", "internal"):
            visibility = repository_visibility(github.at(name))
        with lock:
            done[name] = {"level": args.privacy or default_level(visibility), "items": found, "failures": failed}
            if several:
                partial.keep(name, done[name])

    def over_rest(name: str) -> None:
        finished(name, None, *gather_github(github.at(name), since, until, trusted, args.quiet))

    progress = Progress("extract", len(visibilities), args.quiet)
    left = read_repositories(github, [name for name in visibilities if name not in done], since, until,
                             trusted, finished, lambda count: progress.show(
                                 f"extract: {plural(count, 'PR or issue', 'PRs and issues')} listed, "
                                 f"{len(done)} of {plural(len(visibilities), 'repository', 'repositories')} read"))
    # A few at a time: each waits on GitHub most of its time.
    import concurrent.futures  # noqa: PLC0415 - imported where used: most runs never need it
    with concurrent.futures.ThreadPoolExecutor(max_workers=EXTRACT_REPOSITORIES) as pool:
        list(pool.map(over_rest, left))
    items, failures, levels = [], [], []
    for name in visibilities:
        levels.append(done[name]["level"])
        items += [{**item, "repository": name} for item in done[name]["items"]] if several else done[name]["items"]
        failures += [{**f, "repository": name} for f in done[name]["failures"]] if several else done[name]["failures"]
    partial.remove()
    return items, failures, levels


def extract_repositories(github: GitHub, args) -> dict[str, str]:
    """The repositories to extract from, each with its visibility when the listing gave it ("?"
    when not): each --repo, and with --org every repository of that organisation (or user) gh's
    account can read, less --exclude, narrowed to --topic; else the one of GH_REPO or origin."""
    repos = {detect_repo(argparse.Namespace(repo=given)): "?" for given in args.repo or []}
    if args.org:
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,38})", args.org):
            raise UserError(f"not an organisation or user: {args.org!r}", EXIT_USAGE)
        try:
            listed = github.list(f"orgs/{args.org}/repos", type="all", per_page=100)
        except GitHubError as exc:
            if exc.status != 404:
                raise
            listed = github.list(f"users/{args.org}/repos", type="owner", per_page=100)
        excluded = {e.casefold() for e in args.exclude or []}
        topics = {t.casefold() for t in args.topic or []}
        for repository in sorted((as_dict(r) for r in listed), key=lambda r: as_str(r.get("full_name")).casefold()):
            name = as_str(repository.get("full_name"))
            if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", name) or {name.casefold(), name.partition("/")[2].casefold()} & excluded:
                continue
            if topics and not topics & {as_str(t).casefold() for t in repository.get("topics") or []}:
                continue
            visibility = as_str(repository.get("visibility"))
            repos.setdefault(name, visibility if visibility in ("public", "private", "internal") else "?")
        if not repos:
            raise UserError(f"no repository of {args.org} to extract from (after --exclude and --topic)", EXIT_NOT_FOUND)
    if not repos:
        repos = {open_github(github, argparse.Namespace(repo=None), None).repo: "?"}      # GH_REPO, else origin
    return repos


def run_dashboard(args, reader: HistoryReader, github: GitHub) -> int:
    folder = output_dir(args)
    data = read_json_file(folder / "analytics.json", "extract's analytics.json", " (run `extract` first)")
    if not isinstance(data, dict) or not isinstance(data.get("items"), list) or not all(
            isinstance(i, dict) and isinstance(i.get("sessions"), list) for i in data["items"]):
        raise UserError(f"{folder / 'analytics.json'} is not extract output", EXIT_BAD_INPUT)
    chartjs = read_chartjs(args)
    write_atomic(folder / "dashboard.html", render_dashboard(data, chartjs))
    warn_if_online_only(args, chartjs)
    emit(args, f"wrote {folder / 'dashboard.html'}\n")
    return EXIT_OK


def run_otel(args, reader: HistoryReader, github: GitHub) -> int:
    """The chosen session, or with --all (or a filter) every session `list` shows, as OTLP
    traces: sent to the endpoint, or with --dry-run written as OTLP/JSON, one request a line."""
    settings = otlp_settings(args.otlp_endpoint)
    privacy = Privacy(args.privacy or "team", detect_repo(args, os.getcwd()), people=machine_people())
    pricing, templates = load_pricing(args.pricing), workflow_templates(args)
    if args.all or args.since or args.until or args.project or args.archive:
        require_projects_dir(reader)
        summarise = functools.partial(otel_summary, pricing=pricing, templates=templates, privacy=privacy)
        found = reader.each_session(FULL, summarise, f"{summary_key(pricing, templates)}:otel:{privacy!r}")
        if args.archive:
            archived = read_archive(Path(args.archive).expanduser(), {f["stats"]["session_id"] for f in found}, reader)
            found += [{"stats": stats, "trace": archived_trace(stats, privacy)} for stats in archived]
        since, until = extract_range(args, required=False)
        traces = [f["trace"] for f in sorted(found, key=lambda f: (as_str(f["stats"].get("started_at")),
                                                                    f["stats"]["session_id"]))
                  if since <= (parse_ts(f["stats"].get("started_at")) or 0.0) <= until
                  and (not args.project or args.project.casefold() in as_str(f["stats"]["project"]).casefold())]
        note(args, reader)
    else:
        facts, stats = chosen_session(args, reader, templates)
        traces = [session_trace(facts, stats, pricing, privacy) if facts is not None
                  else archived_trace(stats, privacy)]
    batches = export_batches(traces, otel_resource())
    spans = sum(len(t.spans) for t in traces)
    if args.dry_run:
        emit(args, "".join(json.dumps(b, ensure_ascii=False, allow_nan=False) + "\n" for b in batches))
        return EXIT_OK
    exporter = OtlpExporter(settings, warner(args))
    rejected = sum(exporter.export(batch) for batch in batches)
    emit(args, f"exported {plural(len(traces), 'session')} ({plural(spans - rejected, 'span')}) to "
               f"{settings['url']} as {settings['protocol']}\n")
    return EXIT_OK


PHASES = {
    "stats": run_stats,
    "mermaid": run_mermaid,
    "comment": run_comment,
    "summary": run_summary,
    "extract": run_extract,
    "dashboard": run_dashboard,
    "list": run_list,
    "post": run_pipeline,
    "otel": run_otel,
}


def main(argv=None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        flag_target(args)    # reject a bad --target/--number pair before any slow work
        if args.hook_input:
            apply_hook_input(args, sys.stdin)
        histories = args.projects_dir or [None]
        reader = HistoryReader(histories[0], ReadOptions(cache=None if args.no_cache else ReadCache.default()),
                               args.captures, args.otel_file, histories[1:])
        github = GitHub(None, warn=warner(args))
        return PHASES[args.phase](args, reader, github)
    except UserError as exc:
        print(f"{PROG}: error: {terminal_text(str(exc))}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        if os.environ.get("SESSION_ANALYTICS_DEBUG") == "1":
            raise                   # the whole traceback, for whoever is fixing the bug
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"{PROG}: internal error: {type(exc).__name__}: {terminal_text(str(exc))} (at {where.name}, "
              f"line {where.lineno}; SESSION_ANALYTICS_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
