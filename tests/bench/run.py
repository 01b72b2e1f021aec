#!/usr/bin/env python3
"""`make bench`: session-analytics against ccusage on the same generated histories, in one run.

Runs both tools alternately, several times, on each history and prints medians of wall time and
CPU time, peak memory, and the ratios ours ÷ ccusage; beside them a bare Python reader
(bare_reader.py: what pure Python needs for the tokens alone, the floor under ours). Ours three
ways: a first run (empty cache), an unchanged rerun, and a rerun after one session grew by a line
(as while Claude Code runs). Then checks that per-session token totals agree (ccusage lists flat
agent-*.jsonl files as sessions of their own: they are folded into their parent first), times
`stats` on one big session against a bare json.loads loop, and times `extract` against the fake
GitHub server with latency on every call.

    python3 tests/bench/run.py [--sizes 100M,1G] [--shapes results,assistant] [--repeats 3]

Nothing here is a test: the numbers go to stdout for people to read and compare.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCRIPT = ROOT / ".claude" / "scripts" / "session-analytics.py"
CCUSAGE = HERE / "node_modules" / ".bin" / "ccusage"
BARE_READER = HERE / "bare_reader.py"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))



def measure(argv: list, env: dict | None = None, stdout=subprocess.DEVNULL) -> dict:
    """Wall time, CPU time (user + system) and peak RSS of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"bench: {argv[0]} failed ({proc.returncode}): {err[-500:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}


def warm(folder: Path) -> None:
    """Read every transcript once so that each timed run starts from the page cache: this
    machine's kernel reclaims cold file pages between runs, and whichever tool ran first after a
    reclaim would pay for the disk."""
    for path in folder.rglob("*.jsonl"):
        with path.open("rb") as handle:
            while handle.read(1 << 22):
                pass


def grow_one_session(folder: Path):
    """Append a copy of the last line of the biggest session file, as Claude Code appends to the
    session it is running; returns a function that puts the file back as it was."""
    path = max((p for p in folder.rglob("*.jsonl") if "subagents" not in p.parts and not p.name.startswith("agent-")),
               key=lambda p: p.stat().st_size)
    info = path.stat()
    last = path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    with path.open("ab") as handle:
        handle.write(last.replace(b'"uuid":"', b'"uuid":"grown-', 1) + b"\n")

    def restore():
        os.truncate(path, info.st_size)
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    return restore


def ensure_ccusage() -> None:
    # Not `npm ci`: the lock names ccusage's other platform builds as optional dependencies
    # without entries of their own (the registry here has no such builds), which npm 11's ci
    # rejects as out of sync; install still takes exactly the locked versions and integrity.
    if not CCUSAGE.exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)


def history(data: Path, size: str, shape: str) -> Path:
    """A generated history, made once in a child process (so this process stays small: a child's
    peak RSS as wait4 reports it starts from what it inherited at fork)."""
    folder = data / f"{shape}-{size}"
    manifest = folder / "manifest.json"
    if not manifest.exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"bench: generating {size} of {shape}-shaped history in {folder}", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(folder), "--size", size, "--shape", shape],
                       check=True)
    return folder


def ours_list(folder: Path, out: Path | None, extra=()) -> list:
    argv = [sys.executable, str(SCRIPT), "--phase", "list", "--json", "--quiet",
            "--projects-dir", str(folder / "projects"), *extra]
    if out:
        argv += ["-o", str(out)]
    return argv


def compare_totals(folder: Path, ours_file: Path, theirs_file: Path) -> list[str]:
    manifest = json.loads((folder / "manifest.json").read_text())
    ours = {row["session_id"]: row["total_tokens"] for row in json.loads(ours_file.read_text())}
    theirs = {}
    for row in json.loads(theirs_file.read_text())["sessions"]:
        sid = manifest["flat_agents"].get(row["sessionId"], row["sessionId"])
        slot = theirs.setdefault(sid, {"input": 0, "output": 0, "cache_creation": 0, "cache_read": 0})
        slot["input"] += row["inputTokens"]
        slot["output"] += row["outputTokens"]
        slot["cache_creation"] += row["cacheCreationTokens"]
        slot["cache_read"] += row["cacheReadTokens"]
    problems = []
    for sid in sorted(set(ours) | set(theirs)):
        if ours.get(sid) != theirs.get(sid):
            problems.append(f"  {sid}: ours {ours.get(sid)} ccusage {theirs.get(sid)}")
    return problems


def bench_list(data: Path, sizes: list, shapes: list, repeats: int) -> list[dict]:
    rows = []
    for size in sizes:
        for shape in shapes:
            folder = history(data, size, shape)
            env = {**os.environ, "CLAUDE_CONFIG_DIR": str(folder)}
            runs = {"ours": [], "ours, rerun": [], "ours, one session grew": [], "ccusage": [], "bare reader": []}
            with tempfile.TemporaryDirectory() as tmp:
                ours_out, theirs_out = Path(tmp) / "ours.json", Path(tmp) / "ccusage.json"
                ours_env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
                for _ in range(repeats):
                    shutil.rmtree(Path(tmp) / "cache", ignore_errors=True)      # first run: cold cache
                    warm(folder)
                    runs["ours"].append(measure(ours_list(folder, ours_out), env=ours_env))
                    warm(folder)
                    with theirs_out.open("wb") as handle:
                        runs["ccusage"].append(measure([str(CCUSAGE), "claude", "session", "--json", "--offline"],
                                                       env=env, stdout=handle))
                    warm(folder)
                    runs["bare reader"].append(measure([sys.executable, str(BARE_READER), str(folder / "projects")]))
                    runs["ours, rerun"].append(measure(ours_list(folder, ours_out), env=ours_env))
                    restore = grow_one_session(folder)
                    try:
                        runs["ours, one session grew"].append(
                            measure(ours_list(folder, Path(tmp) / "grown.json"), env=ours_env))
                    finally:
                        restore()
                disagreements = compare_totals(folder, ours_out, theirs_out)
            mib = json.loads((folder / "manifest.json").read_text())["bytes"] / 2**20
            row = {"what": f"list {shape} {mib:,.0f} MiB"}
            for tool, samples in runs.items():
                row[tool] = {"wall": statistics.median(s["wall"] for s in samples),
                             "cpu": statistics.median(s["cpu"] for s in samples),
                             "rss_mib": max(s["rss_mib"] for s in samples)}
            row["disagreements"] = disagreements
            rows.append(row)
    return rows


def bench_stats(data: Path, size: str, repeats: int) -> dict:
    folder = data / f"single-{size}"
    if not (folder / "manifest.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(folder), "--size", size, "--single-session"],
                       check=True)
    sid = json.loads((folder / "manifest.json").read_text())["session"]
    path = folder / "projects" / "-work-big" / f"{sid}.jsonl"
    loop = "import json,sys\nfor line in open(sys.argv[1],'rb'):\n    json.loads(line)\n"
    ours, bare = [], []
    for _ in range(repeats):
        warm(path.parent)
        ours.append(measure([sys.executable, str(SCRIPT), "--phase", "stats", "--quiet", "--no-cache",
                             "--transcript", str(path), "--skills-dir", str(folder / "none")]))
        bare.append(measure([sys.executable, "-c", loop, str(path)]))
    mib = path.stat().st_size / 2**20
    return {"what": f"stats one {mib:,.0f} MiB session",
            "ours": {k: statistics.median(s[k] for s in ours) for k in ("wall", "cpu", "rss_mib")},
            "json.loads loop": {k: statistics.median(s[k] for s in bare) for k in ("wall", "cpu", "rss_mib")}}


def timed_extract(pulls: list[tuple[str, int]], argv: list[str], latency: float) -> tuple[dict, int] | None:
    """(measure of `extract argv`, calls made) against a fake GitHub holding these (repository,
    number) PRs, each with one session comment and two CI runs, every call `latency` late."""
    if not shutil.which("gh") or not shutil.which("openssl"):
        print("bench: gh or openssl missing; extract not measured", file=sys.stderr)
        return None
    import importlib.util
    from fake_github import FakeGitHub, make_cert  # noqa: PLC0415
    spec = importlib.util.spec_from_file_location("session_analytics", SCRIPT)
    sa = importlib.util.module_from_spec(spec)
    sys.modules["session_analytics"] = sa
    spec.loader.exec_module(sa)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fake = FakeGitHub(*make_cert(tmp)).start()
        try:
            base = json.loads(subprocess.run(
                [sys.executable, str(SCRIPT), "stats", "--quiet", "--projects-dir",
                 str(ROOT / "tests" / "fixtures" / "demo-projects"), "--session-id", "00b11888"],
                capture_output=True, text=True, check=True).stdout)
            for n, (repo, number) in enumerate(pulls):
                fake.add_pull(repo, number, f"b{number}", created_at=f"2026-03-{1 + n % 28:02d}T10:00:00Z")
                fake.add_runs(repo, number, ["success", "failure"])
                stats = copy.deepcopy(base)
                stats["session_id"] = f"{n:08x}-0000-4000-8000-000000000000"
                fake.add_comment(repo, number, sa.render_session_comment(stats))
            fake.latency = latency
            (tmp / "gh").mkdir()
            env = {**os.environ, **fake.gh_env(tmp / "gh")}
            result = measure([sys.executable, str(SCRIPT), "extract", "--quiet", *argv, "--since", "2026-03-01",
                              "--until", "2026-03-31", "--output-dir", str(tmp / "out")], env=env)
            return result, len(fake.requests)
        finally:
            fake.stop()


def bench_extract(prs: int = 200, latency: float = 0.05) -> dict | None:
    timed = timed_extract([("o/r", n) for n in range(1, prs + 1)], ["--repo", "o/r"], latency)
    return timed and {"what": f"extract {prs} PRs, {latency * 1000:.0f} ms per call ({timed[1]} calls)",
                      "ours": timed[0]}


def bench_org_extract(repos: int = 30, prs: int = 2000, latency: float = 0.05) -> dict | None:
    """extract --org over `repos` repositories holding `prs` PRs (target: at most 60 calls, 15 s)."""
    timed = timed_extract([(f"org/r{n % repos:02d}", n // repos + 1) for n in range(prs)], ["--org", "org"], latency)
    return timed and {"what": f"extract --org: {repos} repositories, {prs} PRs, {latency * 1000:.0f} ms per call "
                              f"({timed[1]} calls)", "ours": timed[0]}


def bench_startup(repeats: int) -> dict:
    """What every run pays before reading anything: Python itself, then our --help (the file is
    compiled on every run: a script run as `python3 file.py` gets no cached bytecode)."""
    source = SCRIPT.read_text()
    started = time.perf_counter()
    for _ in range(repeats):
        compile(source, str(SCRIPT), "exec")
    compiled = (time.perf_counter() - started) / repeats
    python = [measure([sys.executable, "-c", "pass"]) for _ in range(repeats * 3)]
    ours = [measure([sys.executable, str(SCRIPT), "--help"]) for _ in range(repeats * 3)]
    return {"python": statistics.median(m["wall"] for m in python),
            "help": statistics.median(m["wall"] for m in ours), "compile": compiled}


def realistic_history(tmp: Path) -> Path | None:
    """Every real transcript of ../shared in one Claude config folder (projects/), as a user's
    history looks: many small sessions, a few big ones."""
    shared = Path(os.environ.get("SESSION_ANALYTICS_SHARED", ROOT.parent / "shared")) / "fixtures" / "transcripts"
    sources = sorted(p for p in shared.rglob("projects") if p.is_dir())
    if not sources:
        return None
    projects = tmp / "real" / "projects"
    projects.mkdir(parents=True)
    for n, source in enumerate(sources):
        for project in sorted(p for p in source.iterdir() if p.is_dir()):
            (projects / f"{project.name}-{n}").symlink_to(project.resolve())
    return projects.parent


def bench_realistic(repeats: int) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = realistic_history(Path(tmp))
        if folder is None:
            print("bench: ../shared missing; the realistic history is not measured", file=sys.stderr)
            return None
        env = {**os.environ, "CLAUDE_CONFIG_DIR": str(folder)}
        ours_env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        runs = {"ours, first run": [], "ours, rerun": [], "ccusage": []}
        for _ in range(repeats * 2):
            shutil.rmtree(Path(tmp) / "cache", ignore_errors=True)
            warm(folder)
            runs["ours, first run"].append(measure(ours_list(folder, None), env=ours_env))
            runs["ours, rerun"].append(measure(ours_list(folder, None), env=ours_env))
            runs["ccusage"].append(measure([str(CCUSAGE), "claude", "session", "--json", "--offline"], env=env))
        mib = sum(p.stat().st_size for p in folder.rglob("*.jsonl")) / 2**20
        sessions = len(json.loads(subprocess.run(ours_list(folder, None), capture_output=True, text=True,
                                                 env=ours_env).stdout))
    return {"what": f"list on the real transcripts of ../shared ({mib:,.0f} MiB, {sessions} sessions)",
            **{tool: {k: statistics.median(s[k] for s in samples) for k in ("wall", "cpu", "rss_mib")}
               for tool, samples in runs.items()}}


def bench_export(data: Path, repeats: int) -> dict:
    """OTLP encoding alone, in this process: spans a second, protobuf and JSON, for the sessions
    of the 100 MiB assistant-shaped history."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("session_analytics", SCRIPT)
    sa = importlib.util.module_from_spec(spec)
    sys.modules["session_analytics"] = sa
    spec.loader.exec_module(sa)
    folder = history(data, "100M", "assistant")
    pricing = sa.load_pricing(None)
    privacy = sa.Privacy("team")
    summarise = lambda facts: sa.otel_summary(facts, pricing, [], privacy)   # noqa: E731
    reader = sa.HistoryReader(folder / "projects", sa.ReadOptions(workers=1))
    traces = [found["trace"] for found in reader.each_session(sa.FULL, summarise)]
    spans = sum(len(t.spans) for t in traces)
    timings = {}
    for name, encode in (("protobuf", sa.otlp_protobuf), ("json", lambda r: json.dumps(r).encode())):
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            for request in sa.export_batches(traces, {"service.name": "bench"}):
                encode(request)
            samples.append(time.perf_counter() - started)
        timings[name] = spans / statistics.median(samples)
    return {"spans": spans, "sessions": len(traces), **timings}


def fmt(m: dict) -> str:
    return f"{m['wall']:7.2f} s wall {m['cpu']:7.2f} s cpu {m['rss_mib']:7.0f} MiB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "100M,1G"))
    parser.add_argument("--shapes", default="results,assistant")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stats-size", default="200M")
    parser.add_argument("--data", default=str(HERE / "data"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    ensure_ccusage()
    print(f"ccusage {subprocess.run([str(CCUSAGE), '--version'], capture_output=True, text=True).stdout.split()[-1]}"
          f", {os.cpu_count()} cores, median of {args.repeats} alternating runs\n")
    for row in bench_list(data, args.sizes.split(","), args.shapes.split(","), args.repeats):
        o, r, g, c = row["ours"], row["ours, rerun"], row["ours, one session grew"], row["ccusage"]
        b = row["bare reader"]
        print(f"{row['what']}")
        print(f"  ours, first run   {fmt(o)}")
        print(f"  ours, rerun       {fmt(r)}")
        print(f"  ours, one grew    {fmt(g)}")
        print(f"  ccusage           {fmt(c)}")
        print(f"  bare reader       {fmt(b)}   (tests/bench/bare_reader.py: json.loads of usage lines, nothing else)")
        print(f"  first run ÷ ccusage: wall {o['wall'] / c['wall']:.2f}x  cpu {o['cpu'] / c['cpu']:.2f}x  "
              f"memory {o['rss_mib'] / c['rss_mib']:.2f}x   (below 1: ours is better)")
        print(f"  bare reader ÷ ccusage: wall {b['wall'] / c['wall']:.2f}x;  first run ÷ bare reader: "
              f"wall {o['wall'] / b['wall']:.2f}x")
        print(f"  ccusage ÷ rerun:     wall {c['wall'] / r['wall']:.1f}x faster "
              f"(after one session grew: {c['wall'] / g['wall']:.1f}x)")
        if row["disagreements"]:
            print(f"  token totals differ in {len(row['disagreements'])} sessions:")
            print("\n".join(row["disagreements"][:10]))
        else:
            print("  per-session token totals: identical")
    row = bench_stats(data, args.stats_size, args.repeats)
    o, b = row["ours"], row["json.loads loop"]
    print(f"\n{row['what']} (no cache)\n  ours     {fmt(o)}\n  json     {fmt(b)}\n  ratio    wall {o['wall'] / b['wall']:.2f}x")
    row = bench_extract()
    if row:
        print(f"\n{row['what']}\n  ours     {fmt(row['ours'])}")
    row = bench_org_extract()
    if row:
        print(f"\n{row['what']}\n  ours     {fmt(row['ours'])}   (target: at most 60 calls and 15 s)")
    start = bench_startup(args.repeats)
    print(f"\nstart-up: python3 -c pass {start['python'] * 1000:.0f} ms; ours --help {start['help'] * 1000:.0f} ms "
          f"(of which compiling the script {start['compile'] * 1000:.0f} ms, paid on every run)")
    row = bench_realistic(args.repeats)
    if row:
        o, r, c = row["ours, first run"], row["ours, rerun"], row["ccusage"]
        print(f"\n{row['what']}\n  ours, first run   {fmt(o)}\n  ours, rerun       {fmt(r)}\n"
              f"  ccusage           {fmt(c)}\n  first run ÷ ccusage: wall {o['wall'] / c['wall']:.2f}x;  "
              f"rerun ÷ ccusage: wall {r['wall'] / c['wall']:.2f}x")
    row = bench_export(data, args.repeats)
    print(f"\notel: encoding {row['spans']:,} spans of {row['sessions']} sessions: "
          f"{row['protobuf']:,.0f} spans/s as protobuf, {row['json']:,.0f} spans/s as JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main())
