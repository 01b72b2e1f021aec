"""A capturing OTLP/HTTP receiver on 127.0.0.1, for what Claude Code's own telemetry exports.

Point an exporter at it with OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url and
OTEL_EXPORTER_OTLP_PROTOCOL=http/json. Every POST (to /v1/logs, /v1/metrics, /v1/traces) is
answered 200 and kept, in arrival order, as the request body's JSON (gzip undone):
ExportLogsServiceRequest {"resourceLogs": [...]}, ExportMetricsServiceRequest
{"resourceMetrics": [...]}, ExportTraceServiceRequest {"resourceSpans": [...]}.

`write_jsonl(path)` saves them one JSON object a line, the OpenTelemetry Collector file
exporter's format, so a capture reads like a Collector's `file` exporter output.

    rx = OtlpReceiver().start(); env = rx.env(); ...; rx.stop(); rx.write_jsonl("otel.jsonl")
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class OtlpReceiver:
    def __init__(self):
        self.posts = []              # (path, body) in arrival order
        self.lock = threading.Lock()
        self.server = None

    def start(self) -> "OtlpReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:           # not http/json (protobuf): kept so a test sees it
                    body = {"unparsed": raw[:200].hex(), "content_type": self.headers.get("Content-Type")}
                with receiver.lock:
                    receiver.posts.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def env(self, logs_interval_ms: int = 300, metrics_interval_ms: int = 500) -> dict:
        """Claude Code's variables for exporting its logs and metrics here, often."""
        return {"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_LOGS_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_ENDPOINT": self.url,
                "OTEL_LOGS_EXPORT_INTERVAL": str(logs_interval_ms),
                "OTEL_METRIC_EXPORT_INTERVAL": str(metrics_interval_ms)}

    def bodies(self, path: str = "") -> list[dict]:
        with self.lock:
            return [body for p, body in self.posts if p.startswith(path)]

    def write_jsonl(self, path) -> None:
        Path(path).write_text("".join(json.dumps(body, separators=(",", ":")) + "\n" for body in self.bodies()))

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
