"""A scripted fake of Anthropic's Messages API on 127.0.0.1, for running the real Claude Code offline.

A script gives the turns of the main conversation and of each subagent. A request belongs to the
conversation whose key (a piece of its first prompt) its first user message contains, the main
one otherwise; the reply is that conversation's turn number N, N being how many assistant turns
the request already carries. So replies do not depend on timing: asynchronous subagents and the
main thread may interleave as they like. Claude Code's side requests (titles, summaries) that
belong to no scripted conversation get a short text reply with `side_usage`.

    fake = FakeAnthropic({"main": [Turn(tools=[Tool("Bash", {"command": "git commit -m x"})]),
                                   Turn(text="Done.")],
                          "agents": {"Look around": [Turn(text="Found it.", model="claude-haiku-5-5")]}})
    fake.start(); env = fake.env(); ...; fake.stop()

Replies stream as the real API does (SSE: message_start with the placeholder usage, content
blocks with text_delta / input_json_delta, message_delta with the final output tokens,
message_stop), with a `request-id` header (`req_fake_NNNN`, the number of the message id), so
Claude Code writes `requestId` on its lines as it does against the real API. Every request is
logged in `fake.requests`, every reply in `fake.served`.

A Turn may carry raw content blocks beside its text and tools (the server tool blocks of an
advisor call: server_tool_use, advisor_tool_result) and `usage.iterations` (per-iteration usage,
sent in the final message_delta as the real API does).

Claude Code's own model calls that are no conversation turn get scripted replies when the script
has a list for their kind, served in order (past its end, `SIDE_DEFAULTS`):

    "evaluator":  prompt-type hooks (UserPromptSubmit, Stop, ...) and /goal's condition check,
                  whose system prompt says "You are evaluating a ..."; reply JSON {"ok": ...}
    "suggestion": --prompt-suggestions' next-prompt guess
    "compact":    /compact's summary request

Without that key such a request is routed as before (by its first user message).
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Tool:
    name: str
    input: dict


@dataclass
class Turn:
    """One assistant reply: text, tool calls, and the usage it reports."""
    text: str = ""
    tools: list = field(default_factory=list)
    input_tokens: int = 100
    output_tokens: int = 50
    cache_creation: int = 0
    cache_read: int = 0
    cache_1h: int = 0                    # of cache_creation, written with a 1-hour TTL
    speed: str = "standard"
    model: str | None = None             # default: the model the request asked for
    stop_reason: str | None = None       # default: tool_use when there are tools, else end_turn
    blocks: list = field(default_factory=list)   # raw content blocks, after the text, before the tools
    iterations: list | None = None       # usage.iterations, in the final message_delta

    def usage(self, output: int, final: bool = True) -> dict:
        usage = {"input_tokens": self.input_tokens, "output_tokens": output,
                 "cache_creation_input_tokens": self.cache_creation,
                 "cache_read_input_tokens": self.cache_read,
                 "cache_creation": {"ephemeral_5m_input_tokens": self.cache_creation - self.cache_1h,
                                    "ephemeral_1h_input_tokens": self.cache_1h},
                 "speed": self.speed}
        if final and self.iterations is not None:
            usage["iterations"] = self.iterations
        return usage


def iteration(kind: str = "message", input_tokens: int = 0, output_tokens: int = 0, cache_read: int = 0,
              cache_5m: int = 0, cache_1h: int = 0, model: str | None = None) -> dict:
    """One entry of usage.iterations: an executor `message`, an `advisor_message` (give its model), ..."""
    return {"type": kind, **({"model": model} if model else {}), "input_tokens": input_tokens,
            "output_tokens": output_tokens, "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_5m + cache_1h,
            "cache_creation": {"ephemeral_5m_input_tokens": cache_5m, "ephemeral_1h_input_tokens": cache_1h}}


def advised(text: str, advice_ids, then: str = "", tools: list = (), **usage) -> Turn:
    """A reply that consulted the advisor: text, the advisor's server tool blocks (a server_tool_use
    and its advisor_tool_result per id in `advice_ids`), more text, tools. Its `usage` (Turn
    fields) gives the top level, `iterations=[...]` the per-iteration split."""
    blocks = []
    for advice_id in [advice_ids] if isinstance(advice_ids, str) else advice_ids:
        blocks += [{"type": "server_tool_use", "id": advice_id, "name": "advisor", "input": {}},
                   {"type": "advisor_tool_result", "tool_use_id": advice_id,
                    "content": {"type": "advisor_redacted_result", "encrypted_content": "ZmFrZSBhZHZpY2U=",
                                "stop_reason": "end_turn"}}]
    if then:
        blocks.append({"type": "text", "text": then})
    return Turn(text=text, blocks=blocks, tools=list(tools), **usage)


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _system(body: dict) -> str:
    system = body.get("system")
    return system if isinstance(system, str) else _text(system)


# Claude Code's model calls outside the conversation: where to recognise them, the default reply
SIDE_KINDS = {
    "evaluator": lambda body: "You are evaluating a" in _system(body),
    "suggestion": lambda body: "Reply with ONLY the suggestion" in _last_user_text(body),
    "compact": lambda body: _last_user_text(body).lstrip().startswith("CRITICAL: Respond with TEXT ONLY"),
}
SIDE_DEFAULTS = {
    "evaluator": lambda: Turn(text='{"ok": true}', input_tokens=40, output_tokens=8),
    "suggestion": lambda: Turn(text="Run the tests", input_tokens=30, output_tokens=4),
    "compact": lambda: Turn(text="<summary>The user asked for work on the project; it is done.</summary>",
                            input_tokens=300, output_tokens=40),
}


def _last_user_text(body: dict) -> str:
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    if not users:
        return ""
    content = users[-1].get("content")
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return content if isinstance(content, str) else ""


def request_id(msg_id: str) -> str:
    """The `request-id` header of a reply: req_fake_NNNN for msg_fake_NNNN."""
    return "req_fake_" + msg_id[len("msg_fake_"):]


def _session_of(body: dict) -> str:
    """The session a request comes from: Claude Code sends it in metadata.user_id (a JSON text)."""
    try:
        return json.loads(body["metadata"]["user_id"])["session_id"]
    except (KeyError, TypeError, ValueError):
        return ""


class FakeAnthropic:
    def __init__(self, script: dict, side_usage: tuple = (20, 5)):
        self.script = script
        self.side_usage = side_usage
        self.requests = []           # (conversation, turn index, request body)
        self.served = []             # one dict per reply: id, conversation, session, model, usage
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._side_counts = {}       # side kind -> how many of its requests were served
        self.server = None

    # ── choosing the reply ──

    def conversation(self, body: dict) -> str:
        messages = body.get("messages") or []
        first = next((_text(m.get("content")) for m in messages if m.get("role") == "user"
                      and _text(m.get("content")).strip()), "")
        for key in self.script.get("agents", {}):
            if key in first:
                return key
        main_key = self.script.get("main_key")
        if main_key is None or main_key in first:
            return "main"
        return "side"

    def side_reply(self, body: dict) -> tuple[str, int, Turn] | None:
        """A call outside the conversation whose kind the script gives replies for (see SIDE_KINDS)."""
        for kind, matches in SIDE_KINDS.items():
            if kind in self.script and matches(body):
                with self.lock:
                    index = self._side_counts.get(kind, 0)
                    self._side_counts[kind] = index + 1
                turns = self.script[kind]
                turn = turns[index] if index < len(turns) else SIDE_DEFAULTS[kind]()
                return kind, index, turn(body) if callable(turn) else turn
        return None

    def reply_for(self, body: dict) -> tuple[str, int, Turn]:
        side = self.side_reply(body)
        if side:
            return side
        conv = self.conversation(body)
        index = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
        turns = self.script["main"] if conv == "main" else self.script.get("agents", {}).get(conv, [])
        if conv == "side" or index >= len(turns):
            turn = Turn(text="OK.", input_tokens=self.side_usage[0], output_tokens=self.side_usage[1])
        else:
            turn = turns[index]
            if callable(turn):                  # a turn that reads the conversation so far
                turn = turn(body)
        return conv, index, turn

    def events(self, body: dict) -> list:
        conv, index, turn = self.reply_for(body)
        model = turn.model or body.get("model") or "claude-opus-5-5"
        with self.lock:
            self.requests.append((conv, index, body))
            msg_id = f"msg_fake_{next(self._ids):04d}"
            self.served.append({"id": msg_id, "request_id": request_id(msg_id), "conversation": conv,
                                "index": index, "model": model, "session_id": _session_of(body),
                                "usage": turn.usage(turn.output_tokens)})
        stop = turn.stop_reason or ("tool_use" if turn.tools else "end_turn")
        out = [("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": turn.usage(1, final=False)}})]
        blocks = ([{"type": "text", "text": turn.text}] if turn.text else []) + list(turn.blocks) + [
            {"type": "tool_use", "id": f"toolu_fake_{msg_id[9:]}_{n}", "name": t.name, "input": t.input}
            for n, t in enumerate(turn.tools)]
        for n, block in enumerate(blocks):
            if block["type"] == "text":
                out.append(("content_block_start", {"type": "content_block_start", "index": n,
                                                    "content_block": {"type": "text", "text": ""}}))
                out.append(("content_block_delta", {"type": "content_block_delta", "index": n,
                                                    "delta": {"type": "text_delta", "text": block["text"]}}))
            elif block["type"] in ("tool_use", "server_tool_use"):
                out.append(("content_block_start", {"type": "content_block_start", "index": n, "content_block": {
                    **block, "input": {}}}))
                out.append(("content_block_delta", {"type": "content_block_delta", "index": n, "delta": {
                    "type": "input_json_delta", "partial_json": json.dumps(block["input"]) if block["input"] else ""}}))
            else:                               # a result block arrives whole (advisor_tool_result, ...)
                out.append(("content_block_start", {"type": "content_block_start", "index": n,
                                                    "content_block": block}))
            out.append(("content_block_stop", {"type": "content_block_stop", "index": n}))
        # the real API repeats the whole usage in message_delta; the fake keeps to the output tokens
        # unless there are iterations, which only the final usage carries
        final = turn.usage(turn.output_tokens) if turn.iterations is not None else {"output_tokens": turn.output_tokens}
        out.append(("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": final}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out

    # ── serving ──

    def start(self) -> "FakeAnthropic":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, payload: bytes, kind: str = "application/json", rid: str = ""):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                if rid:
                    self.send_header("request-id", rid)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                self._send(200, b"{}")

            def do_HEAD(self):
                self._send(200, b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                if self.path.startswith("/v1/messages/count_tokens"):
                    return self._send(200, b'{"input_tokens": 100}')
                if not self.path.startswith("/v1/messages") or not isinstance(body, dict):
                    return self._send(200, b"{}")
                events = fake.events(body)
                rid = request_id(events[0][1]["message"]["id"])
                if body.get("stream"):
                    data = "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events)
                    return self._send(200, data.encode(), "text/event-stream", rid)
                start = events[0][1]["message"]
                content = []
                for name, event in events:
                    if name == "content_block_start":
                        content.append(dict(event["content_block"]))
                    elif name == "content_block_delta":
                        delta = event["delta"]
                        if delta["type"] == "text_delta":
                            content[-1]["text"] += delta["text"]
                        elif delta["partial_json"]:
                            content[-1]["input"] = json.loads(delta["partial_json"])
                final = events[-2][1]
                message = {**start, "content": content, "stop_reason": final["delta"]["stop_reason"],
                           "usage": {**start["usage"], **final["usage"]}}
                return self._send(200, json.dumps(message).encode(), rid=rid)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def env(self) -> dict:
        return {"ANTHROPIC_BASE_URL": self.url, "ANTHROPIC_API_KEY": "sk-ant-fake",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
