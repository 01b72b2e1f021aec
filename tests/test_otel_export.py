"""`otel` against the real things: our protobuf bytes are the official encoder's, and real Arize
Phoenix and MLflow take our export and give back every span, token, parent link and error, once,
however often a session is exported."""

from __future__ import annotations

import base64
import json
import time

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import DEMO_PROJECTS, run_cli, sa
from otel_backends import _poll, mlflow, phoenix  # noqa: F401  (session fixtures)
from test_otel import attributes, by_session, spans_of


def dry_run(*args) -> list[dict]:
    proc = run_cli("otel", "--dry-run", *args)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def official(request: dict) -> ExportTraceServiceRequest:
    """The request as opentelemetry-proto reads OTLP/JSON (its ids are hex, protobuf's JSON base64)."""
    data = json.loads(json.dumps(request))
    for span in spans_of([data]):
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in span:
                span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return json_format.Parse(json.dumps(data), ExportTraceServiceRequest())


def assert_encoded_as_the_official_encoder_does(requests: list[dict]) -> None:
    assert requests
    for request in requests:
        ours = sa.otlp_protobuf(request)
        theirs = official(request)
        assert ExportTraceServiceRequest.FromString(ours) == theirs
        assert ours == theirs.SerializeToString()


def test_our_protobuf_is_byte_for_byte_the_official_encoding_on_the_demo_sessions():
    assert_encoded_as_the_official_encoder_does(dry_run("--all", "--projects-dir", DEMO_PROJECTS))


def test_our_protobuf_is_byte_for_byte_the_official_encoding_on_the_real_sessions(real_projects):
    assert_encoded_as_the_official_encoder_does(dry_run("--all", "--projects-dir", real_projects))


# ── Phoenix: protobuf ─────────────────────────────────────────────────────────

def export_to(endpoint: str, projects, env: dict) -> None:
    proc = run_cli("otel", "--all", "--projects-dir", projects, "--otlp-endpoint", endpoint, env=env)
    assert proc.returncode == 0, proc.stderr


def test_phoenix_holds_every_span_token_parent_and_error_once(phoenix, real_projects):
    project = "session-analytics-export"
    env = {"OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}"}
    sent = [s for projects in (DEMO_PROJECTS, real_projects)
            for s in spans_of(dry_run("--all", "--projects-dir", projects))]
    for projects in (DEMO_PROJECTS, real_projects):
        export_to(phoenix.base_url, projects, env)
    stored = phoenix.wait_spans(project, len(sent), timeout=90)
    assert len(stored) == len(sent)
    ours = {s["spanId"]: s for s in sent}
    theirs = {s["context"]["span_id"]: s for s in stored}
    assert set(theirs) == set(ours)
    for span_id, span in ours.items():
        back = theirs[span_id]
        assert back["parent_id"] == span.get("parentSpanId") and back["name"] == span["name"]
        assert back["context"]["trace_id"] == span["traceId"]
        error = span.get("status", {}).get("code") == sa.STATUS_ERROR
        assert (back["status_code"] == "ERROR") == error, span["name"]
        if span["name"].startswith("chat "):
            sent_attributes = attributes(span)
            for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
                        "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_write.input_tokens"):
                assert back["attributes"][key] == sent_attributes[key], (span_id, key)
            assert back["span_kind"] == "LLM"

    # one Phoenix session per session, with our token sums
    sessions = {s["session_id"]: s for s in phoenix.sessions(project)}
    for session, spans in by_session(sent).items():
        chats = [attributes(s) for s in spans if s["name"].startswith("chat ")]
        prompt = sum(a["gen_ai.usage.input_tokens"] for a in chats)
        completion = sum(a["gen_ai.usage.output_tokens"] for a in chats)
        assert (sessions[session]["token_count_prompt"], sessions[session]["token_count_completion"]) == (
            prompt, completion), session

    # a second export of everything adds nothing
    for projects in (DEMO_PROJECTS, real_projects):
        export_to(phoenix.base_url, projects, env)
    time.sleep(3)
    assert len(phoenix.spans(project)) == len(sent)

    # Phoenix's own price of a call is ours, where it knows the model and the call wrote no
    # 1-hour cache (Phoenix prices those at the 5-minute rate)
    compared = 0
    for span in sorted(stored, key=lambda s: s["context"]["span_id"]):
        sent_attributes = attributes(ours[span["context"]["span_id"]])
        if not span["name"].startswith("chat ") or "session_analytics.cost_usd" not in sent_attributes \
                or sent_attributes.get("session_analytics.usage.cache_write_1h.input_tokens"):
            continue
        total = phoenix.span_cost(span)["summary"]
        if total is None or total["total"]["cost"] is None:
            continue
        assert total["total"]["cost"] == pytest.approx(sent_attributes["session_analytics.cost_usd"], abs=2e-6), \
            span["name"]
        compared += 1
        if compared == 25:
            break
    assert compared >= 5


# ── MLflow: OTLP/JSON, its experiment named by a header from the environment ──

def test_mlflow_holds_every_span_and_the_sessions_token_usage_once(mlflow):
    experiment = mlflow.new_experiment("session-analytics-export")
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
           "OTEL_EXPORTER_OTLP_HEADERS": f"x-mlflow-experiment-id={experiment}"}
    sent = spans_of(dry_run("--all", "--projects-dir", DEMO_PROJECTS))
    export_to(mlflow.base_url, DEMO_PROJECTS, env)
    traces = mlflow.wait_traces(experiment, len(sent))
    assert sum(len(t["spans"]) for t in traces) == len(sent)
    sessions = by_session(sent)
    assert len(traces) == len(sessions)
    for trace in traces:
        metadata = trace["trace_info"]["trace_metadata"]
        session = metadata["mlflow.trace.session"]
        chats = [attributes(s) for s in sessions[session] if s["name"].startswith("chat ")]
        usage = json.loads(metadata["mlflow.trace.tokenUsage"])
        assert (usage["input_tokens"], usage["output_tokens"]) == (
            sum(a["gen_ai.usage.input_tokens"] for a in chats), sum(a["gen_ai.usage.output_tokens"] for a in chats))
        assert {base64.b64decode(s["span_id"]).hex() for s in trace["spans"]} == \
            {s["spanId"] for s in sessions[session]}

    export_to(mlflow.base_url, DEMO_PROJECTS, env)
    time.sleep(2)
    again = _poll(lambda: mlflow.traces(experiment), lambda ts: len(ts) == len(sessions))
    assert sum(len(t["spans"]) for t in again) == len(sent)
