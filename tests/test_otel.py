"""`otel`: sessions as OTLP traces. The span tree and its numbers, ids that make a re-export a
no-op, the privacy gate, the standard OTEL_* settings, and sending under a flaky collector.
(The same requests against real Phoenix and MLflow, and against the official protobuf encoder,
are in test_otel_backends.py.)"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import DEMO_PROJECTS, ROOT, Transcript, all_stats, run_cli, sa, usage

SKILLS = ROOT / "tests" / "fixtures" / "skills"


def requests_of(*args, env=None) -> list[dict]:
    proc = run_cli("otel", "--dry-run", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def spans_of(requests: list[dict]) -> list[dict]:
    return [span for r in requests for rs in r["resourceSpans"] for ss in rs["scopeSpans"] for span in ss["spans"]]


def attributes(span: dict) -> dict:
    def value(v):
        [(kind, item)] = v.items()
        if kind == "intValue":
            return int(item)
        if kind == "arrayValue":
            return [value(x) for x in item.get("values", [])]
        return item
    return {kv["key"]: value(kv["value"]) for kv in span["attributes"]}


def by_session(spans: list[dict]) -> dict:
    found = {}
    for span in spans:
        found.setdefault(attributes(span).get("session.id"), []).append(span)
    return found


# ── the span tree ─────────────────────────────────────────────────────────────

def test_a_session_is_one_trace_whose_spans_hang_from_its_root():
    spans = spans_of(requests_of("--projects-dir", DEMO_PROJECTS, "--session-id", "00b11888",
                                 "--skills-dir", SKILLS))
    ids = {s["spanId"] for s in spans}
    assert len(ids) == len(spans) and len({s["traceId"] for s in spans}) == 1
    [root] = [s for s in spans if "parentSpanId" not in s]
    assert root["name"] == "invoke_agent claude-code"
    assert all(s["parentSpanId"] in ids for s in spans if s is not root)
    names = [s["name"] for s in spans]
    assert names.count("invoke_agent Explore") == 1 and "execute_tool Grep" in names
    explore = next(s for s in spans if s["name"] == "invoke_agent Explore")
    assert {s["name"] for s in spans if s.get("parentSpanId") == explore["spanId"]} == {
        "chat claude-haiku-4-5-20251001", "execute_tool Grep"}
    root_attributes = attributes(root)
    assert root_attributes["gen_ai.conversation.id"] == root_attributes["session.id"] == \
        "00b11888-7e0c-4fb4-bb39-32ea32e09b64"
    assert root_attributes["session_analytics.skills"] == ["tdd:ci:fail", "rca:ci:pass"]
    skills = {s["name"]: s.get("status", {}).get("code", 0) for s in spans if s["name"].startswith("skill ")}
    assert skills == {"skill tdd:ci": sa.STATUS_ERROR, "skill rca:ci": sa.STATUS_OK}
    [failed] = [s for s in spans if s.get("status", {}).get("code") == sa.STATUS_ERROR
                and s["name"].startswith("execute_tool")]
    assert failed["name"] == "execute_tool Bash" and attributes(failed)["error.type"] == "failed"


def assert_chat_spans_add_up(stats: dict, spans: list[dict]) -> None:
    chats = [attributes(s) for s in spans if s["name"].startswith("chat ")]
    total = {"input": 0, "output": 0, "cache_read": 0, "cache_creation": 0}
    for a in chats:
        assert a["gen_ai.usage.input_tokens"] == (a["session_analytics.usage.uncached.input_tokens"]
                                                  + a["gen_ai.usage.cache_read.input_tokens"]
                                                  + a["gen_ai.usage.cache_write.input_tokens"])
        assert a["gen_ai.usage.cache_write.input_tokens"] == a["gen_ai.usage.cache_creation.input_tokens"]
        if "session_analytics.usage.cache_write_1h.input_tokens" in a:
            assert a["gen_ai.usage.cache_write.input_tokens"] == \
                a["session_analytics.usage.cache_write_5m.input_tokens"] \
                + a["session_analytics.usage.cache_write_1h.input_tokens"]
        total["input"] += a["session_analytics.usage.uncached.input_tokens"]
        total["output"] += a["gen_ai.usage.output_tokens"]
        total["cache_read"] += a["gen_ai.usage.cache_read.input_tokens"]
        total["cache_creation"] += a["gen_ai.usage.cache_write.input_tokens"]
    assert total == {k: stats["total_tokens"][k] for k in total}, stats["session_id"]
    if not stats.get("outside_transcript") and stats["cost_complete"]:
        cost = sum(a.get("session_analytics.cost_usd", 0) for a in chats)
        assert cost == pytest.approx(stats["estimated_cost_usd"], abs=0.00051), stats["session_id"]


def test_the_chat_spans_hold_every_token_and_cent_of_the_demo_sessions():
    spans = by_session(spans_of(requests_of("--all", "--projects-dir", DEMO_PROJECTS)))
    stats = {s["session_id"]: s for s in all_stats(DEMO_PROJECTS)}
    assert set(spans) == set(stats)
    for session, its_spans in spans.items():
        assert_chat_spans_add_up(stats[session], its_spans)


def test_the_chat_spans_hold_every_token_of_the_real_sessions(real_projects):
    spans = by_session(spans_of(requests_of("--all", "--projects-dir", real_projects)))
    stats = {s["session_id"]: s for s in all_stats(real_projects)}
    assert set(spans) == set(stats) and len(stats) > 10
    for session, its_spans in spans.items():
        assert_chat_spans_add_up(stats[session], its_spans)
        results = [s for s in its_spans if s["name"].startswith("execute_tool")]
        assert len({s["spanId"] for s in its_spans}) == len(its_spans)
        assert all(int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) for s in results)


def test_a_second_export_sends_the_same_ids_and_bytes():
    first = run_cli("otel", "--dry-run", "--all", "--projects-dir", DEMO_PROJECTS, "--no-cache")
    again = run_cli("otel", "--dry-run", "--all", "--projects-dir", DEMO_PROJECTS)
    assert first.returncode == again.returncode == 0 and first.stdout == again.stdout


def test_filters_pick_the_sessions_list_would_show():
    spans = spans_of(requests_of("--projects-dir", DEMO_PROJECTS, "--since", "2026-02-09"))
    assert set(by_session(spans)) == {"a3f92bc1-2d44-4e1b-9c0a-5b7f3e8d1a22"}
    assert spans_of(requests_of("--projects-dir", DEMO_PROJECTS, "--project", "notes", "--since", "2030-01-01")) == []


# ── nothing leaves in a span that the level would not post ────────────────────

HOSTILE_PROMPT = "deploy with AKIAIOSFODNN7EXAMPLE to db.corp.internal as alice@example.com"


def hostile_session(tmp_path):
    sid = "0d0d0d0d-0000-4000-8000-000000000004"
    projects = tmp_path / "projects"
    Transcript(projects / "-home-alice-secret-project" / f"{sid}.jsonl", sid, cwd="/home/alice/secret-project",
               branch="alice/feature") \
        .prompt(HOSTILE_PROMPT) \
        .tool_use("msg_1", "toolu_1", "mcp__build.corp.internal__deploy", {"command": HOSTILE_PROMPT},
                  usage(100, 10)) \
        .tool_result("toolu_1", "Error: password=hunter2hunter2 for alice@example.com", is_error=True) \
        .write()
    return projects, sid


@pytest.mark.parametrize("level", ["public", "team"])
def test_a_span_holds_no_prompt_no_secret_no_home_and_no_private_host(tmp_path, level):
    projects, sid = hostile_session(tmp_path)
    text = json.dumps(requests_of("--projects-dir", projects, "--session-id", sid, "--privacy", level))
    for leaked in ("AKIAIOSFODNN7EXAMPLE", "hunter2", "alice@example.com", "/home/alice", "corp.internal",
                   "deploy with", "alice"):
        assert leaked not in text, (level, leaked)
    assert "mcp__<internal-host>__deploy" in text


# ── where and how: the standard OTEL_EXPORTER_OTLP_* settings ─────────────────

@pytest.mark.parametrize("env,flag,url", [
    ({}, None, "http://localhost:4318/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, None, "http://collector:4318/v1/traces"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:1", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:2/custom"},
     None, "http://b:2/custom"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:2/custom"}, "http://c:3", "http://c:3/v1/traces")])
def test_the_endpoint_is_read_as_every_otlp_exporter_reads_it(monkeypatch, env, flag, url):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert sa.otlp_settings(flag)["url"] == url


def test_headers_protocol_compression_and_timeout_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, x-team=red")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    settings = sa.otlp_settings("http://x:1")
    assert settings["headers"] == {"api-key": "a b", "x-team": "red"}
    assert (settings["protocol"], settings["compression"], settings["timeout"]) == ("http/json", "gzip", 2.5)


@pytest.mark.parametrize("name,value,message", [
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTLP protocol 'grpc' is not supported"),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "OTLP compression 'zstd' is not supported"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "not key=value"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x", "not an http(s) OTLP endpoint")])
def test_settings_it_cannot_honour_are_a_usage_error(name, value, message):
    proc = run_cli("otel", "--projects-dir", DEMO_PROJECTS, "--session-id", "00b11888", env={name: value})
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1


# ── the protobuf writer ───────────────────────────────────────────────────────

def test_the_protobuf_writer_follows_the_wire_format():
    assert sa._varint(1) == b"\x01" and sa._varint(300) == b"\xac\x02"
    fields = {"a": (1, "int64!"), "b": (2, "string"), "c": (3, "fixed64"), "d": (4, "double!")}
    assert sa.otlp_protobuf({"a": "0", "b": ""}, fields) == b"\x08\x00"          # a oneof's zero is written
    assert sa.otlp_protobuf({"a": "-1"}, fields) == b"\x08" + b"\xff" * 9 + b"\x01"
    assert sa.otlp_protobuf({"c": "5", "b": "hé"}, fields) == b"\x12\x03h\xc3\xa9\x19" + (5).to_bytes(8, "little")
    assert sa.otlp_protobuf({"d": 0.5}, fields) == b"\x21" + bytes.fromhex("000000000000e03f")
    assert sa._protobuf_fields(b"\x08\x96\x01\x12\x02hi") == {1: [150], 2: [b"hi"]}


# ── sending, under a collector that fails ─────────────────────────────────────

class Collector:
    """An OTLP/HTTP endpoint on 127.0.0.1 that answers from a script: (status, headers, body)."""

    def __init__(self, answers):
        self.answers, self.received = list(answers), []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                collector.received.append((self.path, dict(self.headers), body))
                status, headers, answer = collector.answers.pop(0) if collector.answers else (200, {}, b"")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector(request):
    made = []

    def make(*answers):
        made.append(Collector(answers))
        return made[-1]
    yield make
    for c in made:
        c.close()


def export(collector_url, *extra, env=None):
    return run_cli("otel", "--projects-dir", DEMO_PROJECTS, "--session-id", "00b11888", "--otlp-endpoint",
                   collector_url, *extra, env=env)


def test_a_busy_collector_is_tried_again_after_the_wait_it_asks_for(collector):
    c = collector((503, {"Retry-After": "0"}, b""), (429, {"Retry-After": "1"}, b""), (200, {}, b""))
    proc = export(c.url)
    assert proc.returncode == 0, proc.stderr
    assert [path for path, _, _ in c.received] == ["/v1/traces"] * 3
    assert len({body for _, _, body in c.received}) == 1
    assert "HTTP 503; retrying in 0.0s" in proc.stderr and "HTTP 429; retrying in 1.0s" in proc.stderr
    assert proc.stdout.startswith("exported 1 session (") and "as http/protobuf" in proc.stdout


def test_a_refusal_is_final_one_line_and_exit_13(collector):
    c = collector((400, {"Content-Type": "application/json"}, b'{"code": 3, "message": "bad span"}'))
    proc = export(c.url)
    assert proc.returncode == 13 and len(c.received) == 1
    assert proc.stderr == f"session-analytics: error: OTLP export to {c.url}/v1/traces: HTTP 400 (bad span)\n"


def test_a_wait_longer_than_a_minute_is_reported_at_once(collector):
    c = collector((429, {"Retry-After": "3600"}, b""))
    proc = export(c.url)
    assert proc.returncode == 13 and len(c.received) == 1 and "try again later" in proc.stderr


def test_nobody_listening_is_tried_four_more_times_with_growing_pauses_then_exit_13(collector):
    c = collector()
    url = c.url
    c.close()
    waits, warnings = [], []
    exporter = sa.OtlpExporter(sa.otlp_settings(url), warnings.append, sleep=waits.append)
    with pytest.raises(sa.UserError) as failure:
        exporter.export(sa.otlp_request([], {"service.name": "test"}))
    assert failure.value.code == 13 and "no answer" in str(failure.value)
    assert waits == [1.0, 2.0, 4.0, 8.0] and len(warnings) == 4
    proc = run_cli("otel", "--projects-dir", DEMO_PROJECTS, "--session-id", "00b11888", "--otlp-endpoint", url,
                   "--dry-run")
    assert proc.returncode == 0               # a dry run sends nothing, so nothing can refuse it


def test_json_gzip_and_headers_as_configured_and_a_partial_success_is_reported(collector):
    c = collector((200, {"Content-Type": "application/json"},
                   b'{"partialSuccess": {"rejectedSpans": "2", "errorMessage": "too old"}}'))
    proc = export(c.url, env={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                              "OTEL_EXPORTER_OTLP_HEADERS": "x-mlflow-experiment-id=7"})
    assert proc.returncode == 0, proc.stderr
    [(_, headers, body)] = c.received
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["content-type"] == "application/json" and headers["content-encoding"] == "gzip"
    assert headers["x-mlflow-experiment-id"] == "7"
    request = json.loads(gzip.decompress(body))
    assert len(spans_of([request])) == 26
    assert "rejected 2 spans: too old" in proc.stderr and "(24 spans)" in proc.stdout


# ── Claude Code's own telemetry read as a session ─────────────────────────────

OTEL_RUN = ROOT / "tests" / "fixtures" / "claude-code" / "otel"      # the real 2.1.332, offline
OTEL_SESSION = "00000010-0000-4000-8000-000000000010"


def stats_json_of(*args) -> dict:
    proc = run_cli("stats", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_claude_codes_telemetry_of_a_run_gives_the_numbers_of_its_transcript(tmp_path):
    told = stats_json_of("--otel-file", OTEL_RUN / "otel.jsonl", "--projects-dir", tmp_path / "none")
    written = stats_json_of("--projects-dir", OTEL_RUN / "projects", "--session-id", OTEL_SESSION)
    assert told["session_id"] == written["session_id"] == OTEL_SESSION
    for field in ("total_tokens", "estimated_cost_usd", "turns", "tools", "branch", "claude_code_versions"):
        assert told[field] == written[field], field
    assert {m: {k: v for k, v in row.items() if k != "messages"} for m, row in told["models"].items()} == \
        {m: {k: v for k, v in row.items() if k != "messages"} for m, row in written["models"].items()}
    assert [s["type"] for s in told["subagents"]] == [s["type"] for s in written["subagents"]] == ["general-purpose"]
    assert [(p["tool"], p["command"]) for p in told["problems_faced"]] == \
        [(p["tool"], p["command"]) for p in written["problems_faced"]]
    # Claude Code's own total, from its telemetry as from its cost-state, agrees with ours
    assert told["claude_code_cost"]["agrees"] and written["claude_code_cost"]["agrees"]
    assert told["claude_code_cost"]["total_cost_usd"] == pytest.approx(written["claude_code_cost"]["total_cost_usd"])
    # what only the transcript has, named
    assert written["commits"] and told["commits"] == []
    assert told["capture"] == {"format": "otlp", "complete": True}
    comment = run_cli("comment", "--dry-run", "--offline", "--otel-file", OTEL_RUN / "otel.jsonl")
    assert comment.returncode == 0 and "From Claude Code's own telemetry" in comment.stdout


def test_a_telemetry_session_with_a_transcript_is_listed_once(tmp_path):
    both = json.loads(run_cli("list", "--json", "--projects-dir", OTEL_RUN / "projects", "--otel-file",
                              OTEL_RUN / "otel.jsonl").stdout)
    alone = json.loads(run_cli("list", "--json", "--projects-dir", tmp_path / "none", "--otel-file",
                               OTEL_RUN / "otel.jsonl").stdout)
    assert [r["session_id"] for r in both] == [r["session_id"] for r in alone] == [OTEL_SESSION]
    assert alone[0]["total_tokens"] == both[0]["total_tokens"]


def test_telemetry_events_without_a_session_or_with_bad_counts_are_skipped_and_noted(tmp_path):
    requests = [json.loads(line) for line in (OTEL_RUN / "otel.jsonl").read_text().splitlines()]
    events = [record for r in requests for rl in r.get("resourceLogs", []) for sl in rl["scopeLogs"]
              for record in sl["logRecords"]]
    calls = [e for e in events if {"key": "event.name", "value": {"stringValue": "api_request"}} in e["attributes"]]
    for kv in calls[0]["attributes"]:
        if kv["key"] == "session.id":
            kv["value"] = {"stringValue": "../../etc"}
    for kv in calls[1]["attributes"]:
        if kv["key"] == "input_tokens":
            kv["value"] = {"doubleValue": 1e300}
    path = tmp_path / "otel.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in requests) + "{not json\n")
    proc = run_cli("list", "--json", "--projects-dir", tmp_path / "none", "--otel-file", path)
    assert proc.returncode == 0, proc.stderr
    for reason in ("telemetry events without a usable session.id", "telemetry requests whose counts are not counts",
                   "invalid JSON lines"):
        assert reason in proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["session_id"] == OTEL_SESSION and row["total_tokens"]["input"] == 3670 - 2000 - 90


def test_a_telemetry_file_in_a_captures_folder_is_recognised_by_its_content(tmp_path):
    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / "collector-output.json").write_bytes((OTEL_RUN / "otel.jsonl").read_bytes())
    (captures / "run.jsonl").write_bytes((OTEL_RUN / "stdout.jsonl").read_bytes())     # the same run, streamed
    rows = json.loads(run_cli("list", "--json", "--projects-dir", tmp_path / "none", "--captures", captures).stdout)
    assert [r["session_id"] for r in rows] == [OTEL_SESSION]


def test_a_retry_after_is_read_as_seconds_or_as_an_http_date_by_github_and_otlp_alike():
    import email.utils
    import time
    assert sa.retry_after("7") == 7.0 and sa.retry_after(None) is None and sa.retry_after("soon") is None
    later = sa.retry_after(email.utils.formatdate(time.time() + 30, usegmt=True))
    assert 25 <= later <= 31
    assert sa.retry_after(email.utils.formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert sa._rate_limit_wait({"retry-after": "5"}) == 5.0


def test_an_archived_session_whose_transcript_is_gone_is_exported_as_its_session_span(tmp_path):
    import shutil
    projects, archive = tmp_path / "projects", tmp_path / "archive"
    shutil.copytree(DEMO_PROJECTS, projects)
    assert run_cli("list", "--projects-dir", projects, "--archive", archive).returncode == 0
    for path in projects.rglob("f7e01d4a*"):
        path.unlink()
    spans = by_session(spans_of(requests_of("--projects-dir", projects, "--archive", archive)))
    gone = spans["f7e01d4a-9b3c-4d2e-8f1a-6c5b4a3d2e1f"]
    assert [s["name"] for s in gone] == ["invoke_agent claude-code"] and len(spans) == 3
    assert attributes(gone[0])["session_analytics.cost_usd"] == 0.0431
