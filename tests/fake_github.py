"""A fake GitHub REST server on 127.0.0.1 over HTTPS, for driving the real `gh` in tests.

It keeps issues, pull requests and comments in memory and behaves like GitHub where our
script depends on it: `/api/v3/` paths (GitHub Enterprise style, which is how `gh` talks to a
host that is not github.com), page-numbered lists with absolute `Link` headers, the 65,536
character body limit answered with a 422, `author_association` on comments, and failures
that tests inject (status, headers, latency).
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import ssl

BODY_LIMIT = 65536


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for IP 127.0.0.1."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


# What GitHub's REST API returns for a string, checked against the real service's behaviour as
# gh documents it: gh's response sanitizer (cli/cli api/sanitize_ascii.go, v2.23.0) says "GitHub
# servers return non-printable characters as their unicode code point values", C0 (\u0000-\u001F)
# and C1 (\u0080-\u009F) alike, and GitHub Enterprise responses quoted in cli/cli#10474 carry
# `<b>`, `<`, `>` and `&` as they are. So: UTF-8, with `<`, `>`, `&`, emoji and right-to-left text
# literal; `"` and `\` escaped; newline and tab as \n and \t; other C0 controls, DEL and C1 as
# \u00XX. (Python's json already writes C0 that way; DEL and C1 need the extra step.)
_DEL_AND_C1 = re.compile("[\x7f-\x9f]")


def github_json(payload) -> bytes:
    text = json.dumps(payload, ensure_ascii=False)
    return _DEL_AND_C1.sub(lambda m: "\\u%04x" % ord(m.group()), text).encode("utf-8")


@dataclass
class Fault:
    """An injected failure: answers `status` to matching requests, `times` times."""
    method: str
    path_re: str
    status: int
    times: int = 1
    headers: dict = field(default_factory=dict)
    page: int | None = None
    message: str = "injected failure"
    after: bool = False      # do the request's work first, then answer with the failure
    before: object = None    # a function of the fake to run first (another client's write, say)


class FakeGitHub:
    """State and behaviour; `start()` serves it on a free port."""

    def __init__(self, cert: Path, key: Path):
        self.cert, self.key = cert, key
        self.lock = threading.Lock()
        self.tokens = {"x": "octo-bot"}            # token -> login
        self.associations = {"octo-bot": "OWNER"}  # login -> author_association
        self.issues = {}        # (repo, number) -> issue dict (pull requests too)
        self.pulls = {}         # (repo, number) -> pull dict
        self.comments = {}      # id -> comment dict (with "repo" and "issue_number")
        self.pinned = set()     # comment ids
        self.runs = {}          # (repo, head sha) -> list of workflow runs
        self.visibility = {}    # repo -> "public", "private" or "internal" (private unless set)
        self.topics = {}        # repo -> its topics, as the repository listings give them
        self.users = set()      # owners that are users, not organisations
        self.pr_commits = {}    # (repo, number) -> [{"sha": ..., "commit": {"message": ...}}]
        self.next_id = 1000
        self.per_page_default = 30
        self.per_page_cap = 100     # tests lower it to force several pages
        self.body_limit = BODY_LIMIT
        self.runs_listing_cap = 1000
        self.latency = 0.0
        self.faults: list[Fault] = []
        self.requests: list[tuple] = []   # (method, path, query) of every request
        self.writes: list[tuple] = []     # (method, path) of every successful write
        self.graphql_queries: list[str] = []
        self.graphql_variables: list[dict] = []
        self.graphql_unresolved: set = set()  # PR numbers whose facts a GraphQL page leaves to REST
        self.graphql_forbidden: set = set()   # repositories GraphQL answers with an error
        self.graphql_points = 5000            # GraphQL rate limit left, one point a query
        self.graphql_reset = "2026-03-01T13:00:00Z"
        self.server = None
        self.clock = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)

    # ── seeding ──

    def add_issue(self, repo: str, number: int, title: str = "An issue", user: str = "octo-bot",
                  state: str = "open", **extra) -> dict:
        issue = {"number": number, "title": title, "user": {"login": user}, "state": state,
                 "created_at": "2026-03-01T09:00:00Z", "closed_at": None, "comments": 0,
                 "html_url": f"https://github.example/{repo}/issues/{number}", **extra}
        self.issues[(repo, number)] = issue
        return issue

    def add_pull(self, repo: str, number: int, branch: str, title: str = "A pull request",
                 user: str = "octo-bot", state: str = "open", merged_at: str | None = None,
                 created_at: str = "2026-03-01T09:00:00Z", **extra) -> dict:
        owner = repo.split("/")[0]
        issue = self.add_issue(repo, number, title, user, state, created_at=created_at)
        issue["pull_request"] = {"url": f"https://github.example/{repo}/pull/{number}",
                                 "merged_at": merged_at}
        pull = {"number": number, "title": title, "user": {"login": user}, "state": state,
                "head": {"ref": branch, "sha": f"{number:07d}" + "a" * 33,
                         "label": f"{owner}:{branch}", "repo": {"full_name": repo}},
                "base": {"ref": "main"}, "created_at": issue["created_at"],
                "merged_at": merged_at, "closed_at": None, "additions": 10, "deletions": 2,
                "review_comments": 0, "comments": 0, **extra}
        self.pulls[(repo, number)] = pull
        return pull

    def add_runs(self, repo: str, number: int, conclusions: list, created_at: str | None = None) -> None:
        """CI runs for a pull request's head commit: 'success', 'failure', None (in progress)…"""
        sha = self.pulls[(repo, number)]["head"]["sha"]
        stamp = created_at or self.pulls[(repo, number)]["created_at"]
        self.runs[(repo, sha)] = [{"id": i + 1, "head_sha": sha, "status": "completed" if c else "in_progress",
                                   "conclusion": c, "created_at": stamp} for i, c in enumerate(conclusions)]

    def add_commits(self, repo: str, number: int, *shas: str, message: str = "A commit") -> None:
        """Commits GitHub shows on a pull request (full 40-character SHAs)."""
        self.pr_commits.setdefault((repo, number), []).extend(
            {"sha": sha, "commit": {"message": message}} for sha in shas)

    def add_comment(self, repo: str, number: int, body: str, login: str = "octo-bot",
                    association: str | None = None) -> dict:
        with self.lock:
            return self._create_comment(repo, number, body, login, association)

    def comments_on(self, repo: str, number: int) -> list[dict]:
        return sorted((c for c in self.comments.values()
                       if c["repo"] == repo and c["issue_number"] == number),
                      key=lambda c: c["id"])

    def fail(self, method: str, path_re: str, status: int, **kw) -> Fault:
        fault = Fault(method, path_re, status, **kw)
        self.faults.append(fault)
        return fault

    # ── serving ──

    def start(self) -> "FakeGitHub":
        fake = self

        class Handler(_Handler):
            state = fake

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def gh_env(self, config_dir: Path, token: str | None = "x") -> dict:
        """Environment under which the real `gh` talks to this server and nowhere else."""
        env = {"GH_HOST": self.host, "SSL_CERT_FILE": str(self.cert),
               "GH_CONFIG_DIR": str(config_dir), "GH_NO_UPDATE_NOTIFIER": "1",
               "GH_PROMPT_DISABLED": "1", "NO_COLOR": "1", "GH_ENTERPRISE_TOKEN": token or "",
               "GITHUB_TOKEN": "", "GH_TOKEN": "", "GITHUB_ENTERPRISE_TOKEN": ""}
        return env

    # ── behaviour ──

    def _stamp(self) -> str:
        self.clock += datetime.timedelta(seconds=1)
        return self.clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _create_comment(self, repo, number, body, login, association=None) -> dict:
        self.next_id += 1
        stamp = self._stamp()
        comment = {"id": self.next_id, "body": body, "user": {"login": login},
                   "author_association": association or self.associations.get(login, "NONE"),
                   "created_at": stamp, "updated_at": stamp, "repo": repo,
                   "issue_number": number,
                   "html_url": f"https://github.example/{repo}/issues/{number}#issuecomment-{self.next_id}"}
        self.comments[comment["id"]] = comment
        return comment

    def handle(self, method: str, path: str, query: dict, body: bytes | None, login: str | None):
        """Returns (status, headers, payload) for one request."""
        if path == "/api/graphql" and method == "POST":
            return self._graphql(body, login)
        m = re.fullmatch(r"/api/v3(/.*)", path)
        if not m:
            return 404, {}, {"message": "Not Found"}
        route = m.group(1).rstrip("/")
        if login is None:
            return 401, {}, {"message": "Bad credentials",
                             "documentation_url": "https://docs.github.com/rest"}
        if route == "/user" and method == "GET":
            return 200, {}, {"login": login, "id": 1, "type": "User"}
        m = re.fullmatch(r"/(orgs|users)/([^/]+)/repos", route)
        if m and method == "GET":
            return self._owner_repos(m.group(1), m.group(2), query)
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/?(.*)", route)
        if not m:
            return 404, {}, {"message": "Not Found"}
        repo, rest = m.group(1), m.group(2)
        if not any(r == repo for r, _ in self.issues):
            return 404, {}, {"message": "Not Found"}
        return self._repo_route(method, repo, rest, query, body, login)

    def _owner_repos(self, kind: str, owner: str, query: dict):
        """GET /orgs/{org}/repos (404 when the owner is a user, as GitHub answers) and
        GET /users/{user}/repos: every repository the fake holds for that owner, paginated."""
        if (kind == "orgs") != (owner not in self.users):
            return 404, {}, {"message": "Not Found"}
        names = sorted({r for r, _ in self.issues if r.split("/")[0].casefold() == owner.casefold()})
        repos = [{"full_name": name, "name": name.split("/")[1], "topics": self.topics.get(name, []),
                  "visibility": self.visibility.get(name, "private"), "archived": False} for name in names]
        return self._paged(repos, query)

    def _graphql(self, body, login):
        """The one GraphQL query extract sends: a page of several streams (a repository's PRs or its
        issues, newest first), answered as GitHub answers it: a repository that cannot be read is
        null with an error naming its alias, bots are `name` of type Bot, and rateLimit counts down."""
        if login is None:
            return 401, {}, {"message": "Bad credentials"}
        request = json.loads(body or b"{}")
        query, variables = request.get("query", ""), request.get("variables") or {}
        self.graphql_queries.append(query)              # (handle runs under the fake's lock)
        self.graphql_variables.append(variables)
        self.graphql_points -= 1
        if self.graphql_points < 0:
            # as GitHub answered a spent budget in 2026 (yanyongyu/githubkit#271): 200, an error of
            # type RATE_LIMIT, no data, and a remaining count that need not be 0
            reset = datetime.datetime.fromisoformat(self.graphql_reset.replace("Z", "+00:00")).timestamp()
            return 200, {"X-RateLimit-Remaining": "4", "X-RateLimit-Reset": str(int(reset))}, {
                "errors": [{"type": "RATE_LIMIT", "code": "graphql_rate_limit",
                            "message": "API rate limit already exceeded for user ID 1."}]}
        streams = re.findall(r"(s(\d+)): repository\(owner: \$o\2, name: \$n\2\) \{ visibility "
                             r"(pullRequests|issues)\(first: (\d+), after: \$c\2, "
                             r"orderBy: \{field: CREATED_AT, direction: DESC\}\) \{ pageInfo \{ hasNextPage endCursor \} "
                             r"nodes \{ \.\.\.(?:Pull|Issue) \} \} \}", query)
        if not streams or "rateLimit { cost remaining resetAt }" not in query:
            return 200, {}, {"errors": [{"message": "this fake answers only extract's streams query"}]}
        data = {"rateLimit": {"cost": 1, "remaining": self.graphql_points, "resetAt": self.graphql_reset}}
        errors = []
        for alias, n, kind, first in streams:
            repo = f"{variables.get('o' + n)}/{variables.get('n' + n)}"
            if repo in self.graphql_forbidden or not any(r == repo for r, _ in self.issues):
                data[alias] = None
                errors.append({"type": "FORBIDDEN" if repo in self.graphql_forbidden else "NOT_FOUND",
                               "path": [alias], "message": f"Could not resolve to a Repository with the name '{repo}'."})
                continue
            found = sorted((i for (r, _), i in self.issues.items() if r == repo
                            and bool(i.get("pull_request")) == (kind == "pullRequests")),
                           key=lambda i: (i["created_at"], i["number"]), reverse=True)
            start = int(base64.b64decode(variables["c" + n]).decode().split(":")[1]) if variables.get("c" + n) else 0
            page = found[start:start + int(first)]
            end = start + len(page)
            data[alias] = {"visibility": self.visibility.get(repo, "private").upper(), kind: {
                "pageInfo": {"hasNextPage": end < len(found),
                             "endCursor": base64.b64encode(f"cursor:{end}".encode()).decode() if page else None},
                "nodes": [self._graphql_item(repo, issue, kind) for issue in page]}}
        reply = {"data": data}
        if errors:
            reply["errors"] = errors
        return 200, {}, reply

    def _graphql_item(self, repo: str, issue: dict, kind: str) -> dict:
        number = issue["number"]
        comments = self.comments_on(repo, number)
        node = {"number": number, "title": issue["title"], "state": issue["state"].upper(),
                "createdAt": issue["created_at"], "closedAt": issue["closed_at"],
                "author": _actor(issue["user"]["login"]),
                "comments": {"totalCount": len(comments), "nodes": [
                    {"fullDatabaseId": str(c["id"]), "body": c["body"], "authorAssociation": c["author_association"],
                     "createdAt": c["created_at"], "updatedAt": c["updated_at"], "url": c["html_url"],
                     "author": _actor(c["user"]["login"])} for c in comments[:100]]}}
        if kind == "issues":
            return node
        pull = self.pulls[(repo, number)]
        reviewed = pull["review_comments"]
        runs = self.runs.get((repo, pull["head"]["sha"]), [])
        node.update(
            state="MERGED" if pull["merged_at"] else issue["state"].upper(), mergedAt=pull["merged_at"],
            additions=pull["additions"], deletions=pull["deletions"], headRefOid=pull["head"]["sha"],
            reviews={"totalCount": 101, "nodes": []} if number in self.graphql_unresolved else
            {"totalCount": 1 if reviewed else 0, "nodes": [{"comments": {"totalCount": reviewed}}] if reviewed else []},
            commits={"nodes": [{"commit": {"oid": pull["head"]["sha"], "checkSuites": {"totalCount": len(runs), "nodes": [
                {"status": run["status"].upper(), "conclusion": (run["conclusion"] or "").upper() or None,
                 "workflowRun": {"databaseId": run["id"]}} for run in runs[:100]]}}}]})
        return node

    def _repo_route(self, method, repo, rest, query, body, login):
        if rest == "" and method == "GET":
            visibility = self.visibility.get(repo, "private")
            if visibility is None:                         # an answer that names no visibility
                return 200, {}, {"full_name": repo}
            return 200, {}, {"full_name": repo, "private": visibility != "public", "visibility": visibility}
        m = re.fullmatch(r"issues/(\d+)", rest)
        if m and method == "GET":
            issue = self.issues.get((repo, int(m.group(1))))
            return (200, {}, issue) if issue else (404, {}, {"message": "Not Found"})
        m = re.fullmatch(r"issues/(\d+)/comments", rest)
        if m:
            number = int(m.group(1))
            if (repo, number) not in self.issues:
                return 404, {}, {"message": "Not Found"}
            if method == "GET":
                return self._paged([_public(c) for c in self.comments_on(repo, number)], query)
            if method == "POST":
                text, error = _comment_body(body, self.body_limit)
                if error:
                    return error
                comment = self._create_comment(repo, number, text, login)
                self.writes.append(("POST", rest))
                return 201, {}, _public(comment)
        m = re.fullmatch(r"issues/comments/(\d+)", rest)
        if m:
            comment = self.comments.get(int(m.group(1)))
            if not comment or comment["repo"] != repo:
                return 404, {}, {"message": "Not Found"}
            if method == "GET":
                return 200, {}, _public(comment)
            if method == "DELETE":
                if comment["user"]["login"] != login:
                    return 403, {}, {"message": "Must have admin rights to Repository."}
                del self.comments[comment["id"]]
                self.writes.append(("DELETE", rest))
                return 204, {}, None
            if method == "PATCH":
                if comment["user"]["login"] != login:
                    return 403, {}, {"message": "Must have admin rights to Repository."}
                text, error = _comment_body(body, self.body_limit)
                if error:
                    return error
                comment["body"] = text
                comment["updated_at"] = self._stamp()
                self.writes.append(("PATCH", rest))
                return 200, {}, _public(comment)
        m = re.fullmatch(r"issues/comments/(\d+)/pin", rest)
        if m and method == "PUT":
            comment = self.comments.get(int(m.group(1)))
            if not comment or comment["repo"] != repo:
                return 404, {}, {"message": "Not Found"}
            if "pull_request" in self.issues[(repo, comment["issue_number"])]:
                return 422, {}, {"message": "Comment pinning is not supported on Pull Requests."}
            self.pinned = {c for c in self.pinned
                           if self.comments[c]["issue_number"] != comment["issue_number"]}
            self.pinned.add(comment["id"])
            self.writes.append(("PUT", rest))
            return 204, {}, None
        if rest == "issues" and method == "GET":
            items = [i for (r, _), i in self.issues.items() if r == repo]
            if query.get("state", "open") != "all":
                items = [i for i in items if i["state"] == query.get("state", "open")]
            reverse = query.get("direction", "desc") == "desc"
            items.sort(key=lambda i: (i["created_at"], i["number"]), reverse=reverse)
            return self._paged([{k: v for k, v in i.items()} | {"comments": len(self.comments_on(repo, i["number"]))}
                                for i in items], query)
        if rest == "actions/runs" and method == "GET":
            runs = [r for (rp, _), rs in sorted(self.runs.items()) if rp == repo for r in rs]
            if "head_sha" in query:
                runs = [r for r in runs if r["head_sha"] == query["head_sha"]]
            if query.get("created", "").startswith(">="):
                runs = [r for r in runs if r["created_at"][:10] >= query["created"][2:]]
            total = len(runs)
            if {"created", "head_sha"} & set(query):
                runs = runs[:self.runs_listing_cap]        # GitHub: at most 1,000 for filtered queries
            per_page = min(int(query.get("per_page", 30)), 100)
            page = max(int(query.get("page", 1)), 1)
            return 200, {}, {"total_count": total, "workflow_runs": runs[(page - 1) * per_page: page * per_page]}
        if rest == "issues/comments" and method == "GET":
            found = [_public(c) | {"issue_url": f"https://{self.host}/api/v3/repos/{repo}/issues/{c['issue_number']}"}
                     for c in sorted(self.comments.values(), key=lambda c: c["id"])
                     if c["repo"] == repo and c["updated_at"] >= query.get("since", "")]
            return self._paged(found, query)
        if rest == "pulls" and method == "GET":
            pulls = [p for (r, _), p in sorted(self.pulls.items()) if r == repo]
            state = query.get("state", "open")
            if state != "all":
                pulls = [p for p in pulls if p["state"] == state]
            if "head" in query:
                pulls = [p for p in pulls if p["head"]["label"] == query["head"]]
            return self._paged(pulls, query)
        m = re.fullmatch(r"pulls/(\d+)/commits", rest)
        if m and method == "GET":
            if (repo, int(m.group(1))) not in self.pulls:
                return 404, {}, {"message": "Not Found"}
            return self._paged(self.pr_commits.get((repo, int(m.group(1))), []), query)
        m = re.fullmatch(r"pulls/(\d+)", rest)
        if m and method == "GET":
            pull = self.pulls.get((repo, int(m.group(1))))
            return (200, {}, pull) if pull else (404, {}, {"message": "Not Found"})
        return 404, {}, {"message": "Not Found"}

    def _paged(self, items: list, query: dict):
        per_page = min(int(query.get("per_page", self.per_page_default)), self.per_page_cap)
        page = max(int(query.get("page", 1)), 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []
        base = {k: v for k, v in query.items() if k != "page"}

        def url(n):
            q = urllib.parse.urlencode({**base, "page": n})
            return f"<https://{self.host}{self._current_path}?{q}>"

        if page < last:
            links += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            links += [f'{url(1)}; rel="first"', f'{url(page - 1)}; rel="prev"']
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, headers, chunk


def _actor(login: str) -> dict | None:
    """An author as GraphQL gives it: an app's bot without REST's `[bot]`, a deleted account
    (REST's `ghost`) as null."""
    if login == "ghost":
        return None
    if login.endswith("[bot]"):
        return {"__typename": "Bot", "login": login.removesuffix("[bot]")}
    return {"__typename": "User", "login": login}


def _public(comment: dict) -> dict:
    return {k: v for k, v in comment.items() if k not in ("repo", "issue_number")}


def _comment_body(raw: bytes | None, limit: int):
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        return None, (400, {}, {"message": "Problems parsing JSON"})
    text = payload.get("body")
    if not isinstance(text, str) or not text:
        return None, (422, {}, {"message": "Validation Failed",
                                "errors": [{"resource": "IssueComment", "code": "missing_field",
                                            "field": "body"}]})
    if len(text) > limit:
        return None, (422, {}, {"message": "Validation Failed",
                                "errors": [{"resource": "IssueComment", "code": "custom",
                                            "field": "body",
                                            "message": "body is too long (maximum is 65536 characters)"}],
                                "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment"})
    return text, None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FakeGitHub

    def log_message(self, *args):   # quiet: tests read state, not logs
        pass

    def setup(self):
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold every reply on a kept-alive connection for 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _serve(self):
        fake = self.state
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = self._body()
        auth = self.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else ""
        if fake.latency:
            time.sleep(fake.latency)
        with fake.lock:
            fake.requests.append((self.command, url.path, query))
            login = fake.tokens.get(token)
            fault = self._fault(url.path, query)
            if fault and fault.before:
                fault.before(fake)
            fake._current_path = url.path
            if not fault or fault.after:
                status, headers, payload = fake.handle(self.command, url.path, query, body, login)
            if fault:
                status, headers, payload = fault.status, dict(fault.headers), {"message": fault.message}
        data = b"" if payload is None else github_json(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, path, query) -> Fault | None:
        for fault in self.state.faults:
            if fault.times <= 0 or fault.method not in (self.command, "*"):
                continue
            if not re.search(fault.path_re, path):
                continue
            if fault.page is not None and int(query.get("page", 1)) != fault.page:
                continue
            fault.times -= 1
            return fault
        return None

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve
