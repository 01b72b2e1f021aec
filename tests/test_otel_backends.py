"""The real OTLP backends take a small GenAI trace and give it back as sent.

One trace, built here with opentelemetry-proto (test-only): a root `invoke_agent` span carrying
session.id, and two `chat` children with token usage, the second one failed. Phoenix gets it as
OTLP/HTTP protobuf (the only encoding it takes); MLflow as OTLP/HTTP JSON with its experiment
header. Each test reads the trace back and checks span count, parent links, token counts and
the error status, then re-sends the same span ids (one attribute changed) beside one new span:
both backends keep one row per span id, but Phoenix keeps the FIRST version (insert, on
conflict do nothing) while MLflow takes the LAST (upsert). Phoenix's and MLflow's own costs of
the chat spans are checked against their price tables too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from otel_backends import mlflow, phoenix  # noqa: F401  (session fixtures)

T0 = 1_767_000_000_000_000_000          # 2025-12-29T09:20:00Z, in ns
SECOND = 1_000_000_000
SONNET = "claude-sonnet-4-5-20250929"    # priced by both backends
OPUS_41 = "claude-opus-4-1-20250805"     # priced by MLflow, absent from Phoenix 20.26.1's table
# Anthropic usage of the first call: 100 uncached + 2000 cache-read + 300 cache-write input
# tokens; gen_ai.usage.input_tokens includes cached tokens (the semconv Anthropic rule).
USAGE_1 = {"input": 2400, "output": 50, "cache_read": 2000, "cache_write": 300}
USAGE_2 = {"input": 500, "output": 20}


def _any(value) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def _span(ids, name: str, parent: str | None, kind: int, start: int, end: int, attrs: dict,
          error: str | None = None) -> Span:
    span = Span(trace_id=ids("trace", 16), span_id=ids(name, 8), name=name, kind=kind,
                start_time_unix_nano=start, end_time_unix_nano=end,
                attributes=[KeyValue(key=k, value=_any(v)) for k, v in attrs.items()])
    if parent:
        span.parent_span_id = ids(parent, 8)
    if error:
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=error))
    return span


def build_trace(seed: str, project: str, *, revision: int = 1,
                marker: bool = False) -> ExportTraceServiceRequest:
    """The smoke trace; ids derive from `seed`, so a re-build re-sends the same span ids."""
    def ids(name: str, size: int) -> bytes:
        return hashlib.sha256(f"{seed}/{name}".encode()).digest()[:size]

    session = f"session-{seed}"
    root = "invoke_agent claude-code"
    spans = [
        _span(ids, root, None, Span.SPAN_KIND_INTERNAL, T0, T0 + 10 * SECOND, {
            "gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "anthropic",
            "gen_ai.agent.name": "claude-code", "gen_ai.conversation.id": session,
            "session.id": session, "test.revision": revision}),
        _span(ids, f"chat {SONNET}", root, Span.SPAN_KIND_CLIENT, T0 + SECOND, T0 + 3 * SECOND, {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": SONNET, "gen_ai.response.model": SONNET,
            "gen_ai.response.id": "msg_smoke_1",
            "gen_ai.usage.input_tokens": USAGE_1["input"],
            "gen_ai.usage.output_tokens": USAGE_1["output"],
            "gen_ai.usage.cache_read.input_tokens": USAGE_1["cache_read"],
            # the current name, and the one Phoenix 20.26.1 still reads
            "gen_ai.usage.cache_write.input_tokens": USAGE_1["cache_write"],
            "gen_ai.usage.cache_creation.input_tokens": USAGE_1["cache_write"]}),
        _span(ids, f"chat {OPUS_41}", root, Span.SPAN_KIND_CLIENT, T0 + 4 * SECOND, T0 + 5 * SECOND, {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": OPUS_41, "gen_ai.response.model": OPUS_41,
            "gen_ai.usage.input_tokens": USAGE_2["input"],
            "gen_ai.usage.output_tokens": USAGE_2["output"],
            "error.type": "overloaded_error"}, error="Overloaded"),
    ]
    if marker:      # a span never sent before: once it is stored, the re-sent ones were handled
        spans.append(_span(ids, "execute_tool Bash", root, Span.SPAN_KIND_INTERNAL,
                           T0 + 6 * SECOND, T0 + 7 * SECOND, {
                               "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "Bash",
                               "gen_ai.tool.call.id": "toolu_smoke_1", "gen_ai.tool.type": "function"}))
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend([
        KeyValue(key="service.name", value=_any("session-analytics")),
        KeyValue(key="openinference.project.name", value=_any(project))])   # Phoenix's project
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name, scope_spans.scope.version = "session-analytics", "test"
    scope_spans.spans.extend(spans)
    return request


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON: protobuf's JSON mapping, but enums as integers and ids as hex, not base64."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in data["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(data).encode()


def hex_id(seed: str, name: str, size: int = 8) -> str:
    return hashlib.sha256(f"{seed}/{name}".encode()).digest()[:size].hex()


def assert_otlp_success(status: int, headers: dict, body: bytes) -> None:
    assert status == 200, body[:2000]
    response = ExportTraceServiceResponse.FromString(body)
    assert not response.HasField("partial_success"), response


# ── Phoenix ───────────────────────────────────────────────────────────────────

def test_phoenix_takes_the_trace_as_protobuf_and_keeps_the_first_copy_of_a_span(phoenix):
    seed, project = "phoenix-smoke", "otel-smoke"
    assert_otlp_success(*phoenix.export(build_trace(seed, project).SerializeToString()))

    spans = {s["name"]: s for s in phoenix.wait_spans(project, 3)}
    assert len(spans) == 3, sorted(spans)
    root, chat1, chat2 = (spans["invoke_agent claude-code"], spans[f"chat {SONNET}"],
                          spans[f"chat {OPUS_41}"])
    root_id = hex_id(seed, "invoke_agent claude-code")
    assert root["context"]["span_id"] == root_id and root["parent_id"] is None
    assert {chat1["parent_id"], chat2["parent_id"]} == {root_id}
    assert {s["context"]["trace_id"] for s in spans.values()} == {hex_id(seed, "trace", 16)}
    # Phoenix turns gen_ai.* into OpenInference attributes where the span has none of its own
    assert (root["span_kind"], chat1["span_kind"], chat2["span_kind"]) == ("AGENT", "LLM", "LLM")
    attributes = chat1["attributes"]
    assert attributes["gen_ai.usage.input_tokens"] == USAGE_1["input"]
    assert attributes["llm.model_name"] == SONNET and attributes["llm.provider"] == "anthropic"
    assert (attributes["llm.token_count.prompt"], attributes["llm.token_count.completion"],
            attributes["llm.token_count.prompt_details.cache_read"],
            attributes["llm.token_count.prompt_details.cache_write"]) == (
        USAGE_1["input"], USAGE_1["output"], USAGE_1["cache_read"], USAGE_1["cache_write"])
    assert (chat2["status_code"], chat2["status_message"]) == ("ERROR", "Overloaded")
    assert chat1["status_code"] == root["status_code"] == "UNSET"

    # one session per session.id, summing the LLM spans' tokens
    [session] = phoenix.sessions(project)
    assert session["session_id"] == f"session-{seed}"
    assert (session["token_count_prompt"], session["token_count_completion"]) == (
        USAGE_1["input"] + USAGE_2["input"], USAGE_1["output"] + USAGE_2["output"])

    # Phoenix prices claude-sonnet-4-5 from its own table (input $3, output $15, cache read
    # $0.30, cache write $3.75 per MTok); input = prompt - cache_read - cache_write
    cost = phoenix.span_cost(chat1)
    assert cost["details"] == {
        "input": {"tokens": 100.0, "cost": pytest.approx(100 * 3e-6)},
        "cache_read": {"tokens": 2000.0, "cost": pytest.approx(2000 * 0.3e-6)},
        "cache_write": {"tokens": 300.0, "cost": pytest.approx(300 * 3.75e-6)},
        "output": {"tokens": 50.0, "cost": pytest.approx(50 * 15e-6)}}
    assert cost["summary"]["total"]["cost"] == pytest.approx(0.002775)
    # claude-opus-4-1 is not in Phoenix 20.26.1's price table: tokens counted, no cost
    cost = phoenix.span_cost(chat2)
    assert cost["summary"]["total"] == {"tokens": 520.0, "cost": None}
    assert phoenix.span_cost(root)["summary"] is None

    # the same span ids again (root changed) beside one new span: still one row per span id,
    # and the first version stays
    assert_otlp_success(*phoenix.export(
        build_trace(seed, project, revision=2, marker=True).SerializeToString()))
    spans = phoenix.wait_spans(project, 4)
    time.sleep(1)                   # anything else queued behind the marker lands meanwhile
    spans = phoenix.spans(project)
    assert sorted(s["name"] for s in spans) == sorted(
        ["invoke_agent claude-code", f"chat {SONNET}", f"chat {OPUS_41}", "execute_tool Bash"])
    [root] = [s for s in spans if s["parent_id"] is None]
    assert root["attributes"]["test.revision"] == 1, "Phoenix keeps the first copy of a span"
    assert [s["span_kind"] for s in spans if s["name"] == "execute_tool Bash"] == ["TOOL"]
    [session] = phoenix.sessions(project)
    assert session["token_count_prompt"] == USAGE_1["input"] + USAGE_2["input"]


def test_phoenix_refuses_otlp_json(phoenix):
    status, _, body = phoenix.export(otlp_json(build_trace("phoenix-json", "otel-json")),
                                     headers={"Content-Type": "application/json"})
    assert status == 415, body


# ── MLflow ────────────────────────────────────────────────────────────────────

def _value(any_value: dict):
    """An AnyValue as MLflow's REST API prints it (protobuf JSON, snake_case)."""
    [(kind, value)] = any_value.items()
    if kind == "int_value":
        return int(value)
    if kind == "kvlist_value":
        return {kv["key"]: _value(kv["value"]) for kv in value.get("values", [])}
    return value


def _attributes(span: dict) -> dict:
    return {kv["key"]: _value(kv["value"]) for kv in span.get("attributes", [])}


def _b64_hex(value: str | None) -> str | None:
    return base64.b64decode(value).hex() if value else None


def test_mlflow_takes_the_trace_as_json_and_keeps_the_last_copy_of_a_span(mlflow):
    seed = "mlflow-smoke"
    experiment = mlflow.new_experiment("otel-smoke")
    assert_otlp_success(*mlflow.export(otlp_json(build_trace(seed, "unused")), experiment))

    [trace] = mlflow.wait_traces(experiment, 3)
    spans = {s["name"]: s for s in trace["spans"]}
    assert len(spans) == 3, sorted(spans)
    root, chat1, chat2 = (spans["invoke_agent claude-code"], spans[f"chat {SONNET}"],
                          spans[f"chat {OPUS_41}"])
    root_id = hex_id(seed, "invoke_agent claude-code")
    assert _b64_hex(root["span_id"]) == root_id and "parent_span_id" not in root
    assert {_b64_hex(chat1["parent_span_id"]), _b64_hex(chat2["parent_span_id"])} == {root_id}
    assert {_b64_hex(s["trace_id"]) for s in spans.values()} == {hex_id(seed, "trace", 16)}
    assert trace["trace_info"]["trace_id"] == "tr-" + hex_id(seed, "trace", 16)
    # MLflow maps gen_ai.operation.name to its span types and gen_ai.usage.* to its usage
    assert [_attributes(s)["mlflow.spanType"] for s in (root, chat1, chat2)] == [
        "AGENT", "CHAT_MODEL", "CHAT_MODEL"]
    assert _attributes(chat1)["mlflow.chat.tokenUsage"] == {
        "input_tokens": USAGE_1["input"], "output_tokens": USAGE_1["output"],
        "total_tokens": USAGE_1["input"] + USAGE_1["output"],
        "cache_read_input_tokens": USAGE_1["cache_read"],
        "cache_creation_input_tokens": USAGE_1["cache_write"]}
    assert chat2["status"] == {"code": "STATUS_CODE_ERROR", "message": "Overloaded"}
    assert _attributes(chat2)["error.type"] == "overloaded_error"
    assert not chat1["status"] and not root["status"]         # UNSET

    info = trace["trace_info"]
    metadata = info["trace_metadata"]
    assert info["state"] == "OK"                              # the root's status decides
    assert metadata["mlflow.trace.session"] == f"session-{seed}"
    usage = {"input_tokens": USAGE_1["input"] + USAGE_2["input"],
             "output_tokens": USAGE_1["output"] + USAGE_2["output"],
             "total_tokens": sum(USAGE_1[k] + USAGE_2[k] for k in ("input", "output")),
             "cache_read_input_tokens": USAGE_1["cache_read"],
             "cache_creation_input_tokens": USAGE_1["cache_write"]}
    assert json.loads(metadata["mlflow.trace.tokenUsage"]) == usage
    # MLflow prices both models from its bundled table: sonnet-4-5 as Phoenix does, opus-4-1
    # at $15 / $75 per MTok
    assert _attributes(chat1)["mlflow.llm.cost"]["total_cost"] == pytest.approx(0.002775)
    assert _attributes(chat2)["mlflow.llm.cost"]["total_cost"] == pytest.approx(
        500 * 15e-6 + 20 * 75e-6)
    assert json.loads(metadata["mlflow.trace.cost"])["total_cost"] == pytest.approx(0.011775)

    # the same span ids again (root changed) beside one new span: one row per span id, the
    # last version wins, and the trace's token usage is not counted twice
    assert_otlp_success(*mlflow.export(
        otlp_json(build_trace(seed, "unused", revision=2, marker=True)), experiment))
    [trace] = mlflow.wait_traces(experiment, 4)
    assert sorted(s["name"] for s in trace["spans"]) == sorted(
        ["invoke_agent claude-code", f"chat {SONNET}", f"chat {OPUS_41}", "execute_tool Bash"])
    [root] = [s for s in trace["spans"] if "parent_span_id" not in s]
    assert _attributes(root)["test.revision"] == 2, "MLflow keeps the last copy of a span"
    assert json.loads(trace["trace_info"]["trace_metadata"]["mlflow.trace.tokenUsage"]) == usage


def test_mlflow_takes_protobuf_too(mlflow):
    experiment = mlflow.new_experiment("otel-protobuf")
    assert_otlp_success(*mlflow.export(build_trace("mlflow-protobuf", "unused").SerializeToString(),
                                       experiment, content_type="application/x-protobuf"))
    [trace] = mlflow.wait_traces(experiment, 3)
    assert len(trace["spans"]) == 3
