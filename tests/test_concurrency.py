"""Runs that post to the same PR at once converge: after any number of them end, each session has
exactly one comment and the PR exactly one summary, which lists every session.

The matrix drives the script's own settling code (upsert_comment, post_summary) from threads, with
the GitHub client's transport swapped for direct HTTPS to the fake server: a gh process per call
would make its 240 trials take many minutes. DirectGitHub is checked against the real gh on the
same calls, and the end-to-end tests at the bottom run the whole CLI through the real gh."""

from __future__ import annotations

import http.client
import json
import os
import random
import ssl
import subprocess
import sys
import threading
import time

import pytest

from conftest import SCRIPT, TEST_CACHE, NO_GH_ACCOUNT, Transcript, sa, usage

REPO = "o/r"


class DirectGitHub(sa.GitHub):
    """The script's GitHub client, its requests made over HTTPS by urllib instead of by gh."""

    def __init__(self, fake, token="x"):
        super().__init__(REPO, sleep=lambda seconds: time.sleep(seconds / 10))
        self.host, self.port = fake.host.split(":")
        self.token = token
        self.context = ssl.create_default_context(cafile=str(fake.cert))
        self.connection = None               # one kept-alive connection: a TLS handshake per call is slow

    def _http(self, method: str, url: str, payload=None):
        if self.connection is None:
            self.connection = http.client.HTTPSConnection(self.host, int(self.port), context=self.context, timeout=30)
        body = json.dumps(payload).encode() if payload is not None else None
        path = url if url.startswith("/") else "/" + url.split("/", 3)[3]
        self.connection.request(method, path, body=body, headers={"Authorization": f"token {self.token}",
                                                                  "Content-Type": "application/json"})
        reply = self.connection.getresponse()
        data = reply.read()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, json.loads(data) if data else None

    def request(self, method, path, payload=None, fields=None, retry=True):
        status, _, data = self._http(method, "/api/v3/" + path, payload)
        if status >= 400:
            message = f"{method} {path}: {(data or {}).get('message')} (HTTP {status})"
            raise sa.GitHubError(message, sa.EXIT_NOT_FOUND if status == 404 else sa.EXIT_GITHUB, status,
                                 retryable=status >= 500)
        return data

    def list(self, path, **fields):
        url, items = "/api/v3/" + path + "?per_page=100", []
        while url:
            status, headers, data = self._http("GET", url)
            assert status == 200, (status, data)
            items += data
            links = dict((rel, link) for link, rel in
                         ((part.split(";")[0].strip(" <>"), part.split('rel="')[1].rstrip('"'))
                          for part in headers.get("link", "").split(",") if 'rel="' in part))
            url = links.get("next")
        return items


def test_the_direct_transport_gives_what_the_real_gh_gives(github):
    github.add_pull(REPO, 7, "feat/x")
    github.per_page_cap = 2
    for i in range(5):
        github.add_comment(REPO, 7, f"note {i}", login="alice", association="MEMBER")
    real = sa.GitHub(REPO)
    env = {**os.environ, **github.env}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert DirectGitHub(github).list(real.repo_path("issues/7/comments")) == \
            real.list(real.repo_path("issues/7/comments"))
        assert DirectGitHub(github).login() == real.login() == "octo-bot"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def session_stats(n: int) -> dict:
    sid = f"c0c0{n:04d}-0000-4000-8000-000000000000"
    return {"session_id": sid, "session_id_short": sid[:8], "started_at": f"2026-03-01T10:{n:02d}:00Z",
            "duration_minutes": 1.0, "turns": 1, "models": {"claude-opus-4-6": {
                "messages": 1, "input_tokens": n + 1, "output_tokens": 10, "cache_creation_tokens": 0,
                "cache_read_tokens": 0, "cost_usd": 0.01}},
            "total_tokens": {"input": n + 1, "output": 10, "cache_creation": 0, "cache_read": 0},
            "estimated_cost_usd": 0.01, "cost_complete": True, "unpriced_models": [], "commits": []}


def one_run(fake, number: int, stats: dict, flow: str, errors: list):
    try:
        client = DirectGitHub(fake)
        target = sa.Target(REPO, "pr", number, "open")
        privacy = sa.Privacy("team", REPO)
        sa.post_session_comment(client, target, {**stats, "target": target.as_stats()}, {}, privacy)
        if flow == "pipeline":
            sa.post_summary(client, target, set(), privacy)
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(repr(exc))


def assert_settled(fake, number: int, sessions: list[dict], flow: str):
    comments = fake.comments_on(REPO, number)
    markers = [c["body"].split("\n", 1)[0] for c in comments]
    expected = sorted(f"<!-- SESSION:{s['session_id'][:8]} -->" for s in sessions)
    summaries = [c for c in comments if c["body"].startswith(sa.SUMMARY_MARKER)]
    assert sorted(m for m in markers if m != sa.SUMMARY_MARKER) == expected, markers
    if flow == "pipeline":
        assert len(summaries) == 1, markers
        data = sa.comment_data(summaries[0]["body"], sa.SUMMARY_DATA_TITLE)
        assert sorted(r["session_id"] for r in data["sessions"]) == sorted(s["session_id"] for s in sessions)
    else:
        assert not summaries


@pytest.mark.parametrize("flow", ["comment", "pipeline"])
@pytest.mark.parametrize("same", [True, False], ids=["same session", "different sessions"])
@pytest.mark.parametrize("runs", [2, 5, 10])
def test_any_number_of_concurrent_posts_converge(github, runs, same, flow):
    github.latency = 0.005
    rng = random.Random(runs * 7 + same)
    for trial in range(20):
        number = 100 + trial
        github.add_pull(REPO, number, f"feat/{trial}")
        sessions = [session_stats(0 if same else n) for n in range(runs)]
        errors = []
        threads = [threading.Thread(target=one_run, args=(github, number, s, flow, errors)) for s in sessions]
        for thread in threads:
            thread.start()
            time.sleep(rng.uniform(0, 0.02))
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert_settled(github, number, sessions[:1] if same else sessions, flow)


def test_duplicates_an_earlier_version_left_are_repaired(github):
    """Three copies of a session's comment and two summaries: one post leaves one of each."""
    github.add_pull(REPO, 7, "feat/x")
    stats = session_stats(1)
    old = sa.render_session_comment(stats, privacy=sa.Privacy("team", REPO))
    copies = [github.add_comment(REPO, 7, old) for _ in range(3)]
    for _ in range(2):
        github.add_comment(REPO, 7, sa.SUMMARY_MARKER + "\nstale")
    one_run(github, 7, {**stats, "estimated_cost_usd": 0.02}, "pipeline", errors := [])
    assert not errors
    assert_settled(github, 7, [stats], "pipeline")
    [kept] = [c for c in github.comments_on(REPO, 7) if c["body"].startswith("<!-- SESSION:c0c0")]
    assert kept["id"] == copies[0]["id"]                 # the oldest is kept, and updated


# ── the whole CLI through the real gh ─────────────────────────────────────────

def write_session(projects, n: int):
    sid = f"5e55{n:04d}-0000-4000-8000-000000000001"
    t = Transcript(projects / "-work-r" / f"{sid}.jsonl", sid, cwd="/work/r", branch="feat/x",
                   start=f"2026-03-01T10:{n:02d}:00Z")
    t.prompt("go")
    t.assistant(f"m{n}", usage(10 + n, 20), model="claude-opus-4-6")
    t.write()
    return sid


def run_all_at_once(github, argvs, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GH_", "GITHUB_"))}
    env.update({"XDG_CACHE_HOME": str(TEST_CACHE), **github.env})
    procs = [subprocess.Popen([sys.executable, str(SCRIPT), *map(str, argv)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in argvs]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    return outputs


@pytest.mark.parametrize("trial", range(2))
def test_five_pipelines_through_the_real_gh_leave_one_summary_of_five_sessions(github, tmp_path, trial):
    github.add_pull(REPO, 7, "feat/x")
    github.latency = 0.05
    sids = [write_session(tmp_path / "projects", n) for n in range(5)]
    run_all_at_once(github, [("--projects-dir", tmp_path / "projects", "--session-id", sid[:8], "--repo", REPO,
                              "--number", 7) for sid in sids], tmp_path)
    comments = github.comments_on(REPO, 7)
    assert sorted(c["body"].split("\n", 1)[0] for c in comments) == \
        sorted([sa.SUMMARY_MARKER] + [f"<!-- SESSION:{sid[:8]} -->" for sid in sids])
    [summary] = [c for c in comments if c["body"].startswith(sa.SUMMARY_MARKER)]
    assert sa.comment_data(summary["body"], sa.SUMMARY_DATA_TITLE)["session_count"] == 5


def test_five_posts_of_one_session_through_the_real_gh_leave_one_comment(github, tmp_path):
    github.add_pull(REPO, 7, "feat/x")
    github.latency = 0.2
    sid = write_session(tmp_path / "projects", 1)
    outputs = run_all_at_once(github, [("--phase", "comment", "--projects-dir", tmp_path / "projects",
                                        "--session-id", sid[:8], "--repo", REPO, "--number", 7)] * 5, tmp_path)
    assert len(github.comments_on(REPO, 7)) == 1
    assert sum(out.startswith("comment created") for out, _ in outputs) >= 1
