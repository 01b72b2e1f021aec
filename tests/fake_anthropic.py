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
message_stop). Every request is logged in `fake.requests`.
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

    def usage(self, output: int) -> dict:
        return {"input_tokens": self.input_tokens, "output_tokens": output,
                "cache_creation_input_tokens": self.cache_creation,
                "cache_read_input_tokens": self.cache_read,
                "cache_creation": {"ephemeral_5m_input_tokens": self.cache_creation - self.cache_1h,
                                   "ephemeral_1h_input_tokens": self.cache_1h},
                "speed": self.speed}


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


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

    def reply_for(self, body: dict) -> tuple[str, int, Turn]:
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
            self.served.append({"id": msg_id, "conversation": conv, "index": index, "model": model,
                                "session_id": _session_of(body), "usage": turn.usage(turn.output_tokens)})
        stop = turn.stop_reason or ("tool_use" if turn.tools else "end_turn")
        out = [("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": turn.usage(1)}})]
        blocks = ([{"type": "text", "text": turn.text}] if turn.text else []) + [
            {"type": "tool_use", "id": f"toolu_fake_{msg_id[9:]}_{n}", "name": t.name, "input": t.input}
            for n, t in enumerate(turn.tools)]
        for n, block in enumerate(blocks):
            if block["type"] == "text":
                out.append(("content_block_start", {"type": "content_block_start", "index": n,
                                                    "content_block": {"type": "text", "text": ""}}))
                out.append(("content_block_delta", {"type": "content_block_delta", "index": n,
                                                    "delta": {"type": "text_delta", "text": block["text"]}}))
            else:
                out.append(("content_block_start", {"type": "content_block_start", "index": n, "content_block": {
                    "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}))
                out.append(("content_block_delta", {"type": "content_block_delta", "index": n, "delta": {
                    "type": "input_json_delta", "partial_json": json.dumps(block["input"])}}))
            out.append(("content_block_stop", {"type": "content_block_stop", "index": n}))
        out.append(("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": turn.output_tokens}}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out

    # ── serving ──

    def start(self) -> "FakeAnthropic":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, payload: bytes, kind: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
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
                if body.get("stream"):
                    data = "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events)
                    return self._send(200, data.encode(), "text/event-stream")
                start = events[0][1]["message"]
                content = []
                for name, event in events:
                    if name == "content_block_start":
                        content.append(dict(event["content_block"]))
                    elif name == "content_block_delta":
                        delta = event["delta"]
                        if delta["type"] == "text_delta":
                            content[-1]["text"] += delta["text"]
                        else:
                            content[-1]["input"] = json.loads(delta["partial_json"])
                final = events[-2][1]
                message = {**start, "content": content, "stop_reason": final["delta"]["stop_reason"],
                           "usage": {**start["usage"], "output_tokens": final["usage"]["output_tokens"]}}
                return self._send(200, json.dumps(message).encode())

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
