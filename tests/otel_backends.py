"""Real OTLP backends for the otel tests: Arize Phoenix and MLflow, each run from its own venv.

`make test-deps` builds tests/.venvs/phoenix and tests/.venvs/mlflow from the pinned
tests/otel/requirements-*.txt. The session-scoped fixtures `phoenix` and `mlflow` start the
real server on a free 127.0.0.1 port with a throw-away working dir / sqlite store, wait for it
to be ready (bounded: a server that dies or never answers fails with its log tail), and stop
its whole process group at the end. Under CI=true a missing venv fails; elsewhere it skips
with the `make test-deps` hint.

Use them from a test module with `from otel_backends import mlflow, phoenix  # noqa: F401`.

Nothing here reaches beyond 127.0.0.1 (checked with strace: no connect() but to loopback):
Phoenix's web-analytics pixels and WASM sandbox download, MLflow's usage telemetry, job runner
and price-catalog download are switched off, proxies are bypassed, and every
OTEL_*/PHOENIX_*/MLFLOW_* variable of the caller is dropped from the servers' environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "tests" / ".venvs"
# Seconds a server may take to answer its readiness probe. Each imports hundreds of MB of
# packages first: 30-60 s seen for either on this project's busy 2-core machines.
START_TIMEOUT = float(os.environ.get("OTEL_BACKEND_START_TIMEOUT", "240"))
# Phoenix answers an export at once and stores its spans later, from a queue: readers poll
# for up to this long (MLflow stores them before it answers).
INGEST_TIMEOUT = 30.0
# Loopback only, never through a proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _venv_bin(name: str, program: str) -> Path:
    path = VENVS / name / "bin" / program
    if not (path.is_file() and (VENVS / name / ".installed").is_file()):
        message = (f"{path} is missing: run `make test-deps` (it builds tests/.venvs/{name} "
                   f"from tests/otel/requirements-{name}.txt)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 30.0) -> tuple[int, dict, bytes]:
    """One HTTP request to a local server: (status, headers, body); HTTP errors are returned."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def http_json(method: str, url: str, payload=None, timeout: float = 30.0):
    body = None if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    status, _, data = http(method, url, body, headers, timeout)
    assert 200 <= status < 300, f"{method} {url} -> {status}: {data[:2000]!r}"
    return json.loads(data) if data else None


class Server:
    """A server process in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict, workdir: Path, ready_url: str):
        self.name, self.workdir, self.ready_url = name, workdir, ready_url
        self.log_path = workdir / f"{name}.log"
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("OTEL_", "PHOENIX_", "MLFLOW_"))
                 and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        clean.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
                     PYTHONUNBUFFERED="1", **env)
        self._log = open(self.log_path, "wb")
        # cwd is the scratch dir: the venv's packages must not be shadowed by the repository.
        self.proc = subprocess.Popen(argv, cwd=workdir, env=clean, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = START_TIMEOUT) -> float:
        """Seconds until the readiness URL answered 200; fails (never hangs) otherwise."""
        start = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"{self.name} exited with {self.proc.returncode} before it was ready; "
                            f"log tail:\n{self.log_tail()}")
            try:
                status, _, _ = http("GET", self.ready_url, timeout=5)
                if status == 200:
                    return time.monotonic() - start
            except OSError:
                pass
            if time.monotonic() - start > timeout:
                self.stop()
                pytest.fail(f"{self.name} was not ready at {self.ready_url} after {timeout:.0f} s; "
                            f"log tail:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL to whatever is left of it after 15 s."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:        # the leader may be gone while its workers are not
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._log.close()


def _poll(read, done, timeout: float = INGEST_TIMEOUT, interval: float = 0.25):
    """Call read() until done(result) or the timeout; returns the last result either way."""
    deadline = time.monotonic() + timeout
    while True:
        result = read()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(interval)


# ── Phoenix ───────────────────────────────────────────────────────────────────

class Phoenix:
    """A running Phoenix: OTLP/HTTP protobuf only, at `otlp_endpoint`."""

    def __init__(self, base_url: str, server: Server, started_in: float):
        self.base_url = base_url
        self.otlp_endpoint = base_url + "/v1/traces"
        self.server = server
        self.started_in = started_in

    def export(self, body: bytes, headers: dict | None = None) -> tuple[int, dict, bytes]:
        return http("POST", self.otlp_endpoint, body,
                    {"Content-Type": "application/x-protobuf", **(headers or {})})

    def spans(self, project: str, **filters) -> list[dict]:
        """Every span of a project (GET /v1/projects/{project}/spans, all pages); [] if no
        such project yet. filters: trace_id, span_id, parent_id, name, span_kind, status_code…"""
        spans, cursor = [], None
        while True:
            query = [("limit", "1000")] + [(k, v) for k, vs in filters.items()
                                           for v in (vs if isinstance(vs, list) else [vs])]
            if cursor:
                query.append(("cursor", cursor))
            url = (f"{self.base_url}/v1/projects/{urllib.parse.quote(project, safe='')}/spans?"
                   + urllib.parse.urlencode(query))
            status, _, data = http("GET", url)
            if status == 404:
                return []
            assert status == 200, f"GET {url} -> {status}: {data[:2000]!r}"
            page = json.loads(data)
            spans += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return spans

    def wait_spans(self, project: str, count: int, timeout: float = INGEST_TIMEOUT) -> list[dict]:
        """The project's spans once there are at least `count` (ingestion is asynchronous)."""
        return _poll(lambda: self.spans(project), lambda s: len(s) >= count, timeout)

    def sessions(self, project: str) -> list[dict]:
        """GET /v1/projects/{project}/sessions, all pages."""
        sessions, cursor = [], None
        while True:
            query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            url = (f"{self.base_url}/v1/projects/{urllib.parse.quote(project, safe='')}/sessions?"
                   + urllib.parse.urlencode(query))
            page = http_json("GET", url)
            sessions += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return sessions

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        result = http_json("POST", self.base_url + "/graphql",
                           {"query": query, "variables": variables or {}})
        assert not result.get("errors"), result["errors"]
        return result["data"]

    def span_cost(self, span: dict) -> dict:
        """Phoenix's own cost of one span (GraphQL costSummary and per-token-type details),
        computed at ingestion from its price table; {} when it priced nothing."""
        data = self.graphql(
            """query ($id: ID!) { node(id: $id) { ... on Span {
                 costSummary { prompt { tokens cost } completion { tokens cost } total { tokens cost } }
                 costDetailSummaryEntries { tokenType isPrompt value { tokens cost } } } } }""",
            {"id": span["id"]})["node"]
        return {"summary": data["costSummary"],
                "details": {e["tokenType"]: e["value"] for e in data["costDetailSummaryEntries"]}}


@pytest.fixture(scope="session")
def phoenix():
    program = _venv_bin("phoenix", "phoenix")
    workdir = Path(tempfile.mkdtemp(prefix="otel-phoenix-"))
    port, grpc_port = _free_port(), _free_port()
    env = {
        "PHOENIX_WORKING_DIR": str(workdir / "data"),       # sqlite database lives here
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),                # gRPC OTLP; Phoenix binds it on [::]
        "PHOENIX_TELEMETRY_ENABLED": "false",               # FullStory / Scarf pixels
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",         # no public-internet request of its own
        "PHOENIX_ALLOWED_SANDBOX_PROVIDERS": "NONE",          # no WASM binary fetch at start-up
        "PHOENIX_LOG_MIGRATIONS": "false",
    }
    base = f"http://127.0.0.1:{port}"
    server = Server("phoenix", [str(program), "serve"], env, workdir, base + "/readyz")
    try:
        started_in = server.wait_ready()
        yield Phoenix(base, server, started_in)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ── MLflow ────────────────────────────────────────────────────────────────────

class MLflow:
    """A running MLflow tracking server: OTLP/HTTP (JSON or protobuf) at `otlp_endpoint`,
    each request naming its experiment in the x-mlflow-experiment-id header."""

    EXPERIMENT_HEADER = "x-mlflow-experiment-id"

    def __init__(self, base_url: str, server: Server, started_in: float):
        self.base_url = base_url
        self.otlp_endpoint = base_url + "/v1/traces"
        self.server = server
        self.started_in = started_in

    def new_experiment(self, name: str) -> str:
        """POST /api/2.0/mlflow/experiments/create; returns the experiment id."""
        return http_json("POST", self.base_url + "/api/2.0/mlflow/experiments/create",
                         {"name": name})["experiment_id"]

    def export(self, body: bytes, experiment_id: str, content_type: str = "application/json",
               headers: dict | None = None) -> tuple[int, dict, bytes]:
        return http("POST", self.otlp_endpoint, body,
                    {"Content-Type": content_type, self.EXPERIMENT_HEADER: experiment_id,
                     **(headers or {})})

    def trace_infos(self, experiment_id: str) -> list[dict]:
        """POST /api/3.0/mlflow/traces/search, all pages: the experiment's trace infos."""
        infos, token = [], None
        while True:
            body = {"locations": [{"type": "MLFLOW_EXPERIMENT",
                                   "mlflow_experiment": {"experiment_id": experiment_id}}],
                    "max_results": 500, **({"page_token": token} if token else {})}
            page = http_json("POST", self.base_url + "/api/3.0/mlflow/traces/search", body)
            infos += page.get("traces", [])
            token = page.get("next_page_token")
            if not token:
                return infos

    def trace(self, trace_id: str) -> dict:
        """GET /api/3.0/mlflow/traces/get: {"trace_info": {…, "trace_metadata": {…}},
        "spans": [OTLP spans in protobuf's own JSON: snake_case keys, base64 ids]}."""
        url = (self.base_url + "/api/3.0/mlflow/traces/get?"
               + urllib.parse.urlencode({"trace_id": trace_id}))
        return http_json("GET", url)["trace"]

    def traces(self, experiment_id: str) -> list[dict]:
        """Every trace of an experiment, each with its spans."""
        return [self.trace(info["trace_id"]) for info in self.trace_infos(experiment_id)]

    def wait_traces(self, experiment_id: str, span_count: int,
                    timeout: float = INGEST_TIMEOUT) -> list[dict]:
        """The experiment's traces once they hold at least `span_count` spans in all."""
        return _poll(lambda: self.traces(experiment_id),
                     lambda ts: sum(len(t["spans"]) for t in ts) >= span_count, timeout)


@pytest.fixture(scope="session")
def mlflow():
    program = _venv_bin("mlflow", "mlflow")
    workdir = Path(tempfile.mkdtemp(prefix="otel-mlflow-"))
    port = _free_port()
    env = {
        "MLFLOW_DISABLE_TELEMETRY": "true",      # usage telemetry (also off under CI=true)
        "DO_NOT_TRACK": "true",
        # No job runner: it forks 7 huey consumers (~230 MB each) and a /dev/shm queue
        # that nothing here uses; span ingestion and trace token totals do not need it.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        # Prices come from the catalog bundled in the pinned wheel: by default MLflow fetches
        # github.com/mlflow/mlflow/releases/…/model-catalog on the first cost it computes
        # (3 retries, 5 s timeout), then falls back to the bundled one.
        "MLFLOW_MODEL_CATALOG_URI": "",
    }
    argv = [str(program), "server",
            "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
            "--default-artifact-root", str(workdir / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    base = f"http://127.0.0.1:{port}"
    server = Server("mlflow", argv, env, workdir, base + "/health")
    try:
        started_in = server.wait_ready()
        yield MLflow(base, server, started_in)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
