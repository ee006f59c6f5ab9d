"""Benchmark alog against its peers: one command, every logger in a fresh process per round.

    .venv-bench/bin/python benchmarks/run.py                  # the full run (about 13 minutes)
    .venv-bench/bin/python benchmarks/run.py --quick          # a quick look (about a minute)
    .venv-bench/bin/python benchmarks/run.py --loggers alog,floor,structlog --no-stall
    .venv-bench/bin/python benchmarks/run.py --scenario service --quick   # benchmarks/service.py

Writes a Markdown report to stdout and the full results as JSON to benchmarks/results/
(``--json`` to choose the file); ``benchmarks/charts.py`` draws the charts from that file.
Loggers whose package is not installed are reported as unavailable, not failed. pino runs
when node is on PATH (``npm ci --prefix benchmarks/node`` is run once if needed).
See docs/performance.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import select
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import instructions
from contenders import CONTENDERS, FEATURES, FIELDS, MSG, STALL, THROUGHPUT

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
RESULTS = HERE / "results"

try:
    import msgspec

    _decode: Any = msgspec.json.decode
    _DecodeError: type[Exception] = msgspec.DecodeError
except ImportError:  # pragma: no cover - msgspec is an alog dependency
    _decode = json.loads
    _DecodeError = ValueError

FULL = {
    "events": 200_000,
    "rounds": 3,
    "disabled_calls": 1_000_000,
    "stall_seconds": 10.0,
    "recovery_seconds": 3.0,
    "grace_seconds": 2.0,
}
QUICK = {
    "events": 20_000,
    "rounds": 1,
    "disabled_calls": 200_000,
    "stall_seconds": 2.0,
    "recovery_seconds": 1.0,
    "grace_seconds": 1.0,
}
PACKAGES = (
    "alog",
    "msgspec",
    "anyio",
    "structlog",
    "orjson",
    "loguru",
    "aiologger",
    "aiofiles",
    "picologging",
    "matplotlib",
)

# --- output checks --------------------------------------------------------------------------------

_MSG_KEYS = frozenset({"msg", "message", "event"})
_LEVEL_KEYS = frozenset({"level", "levelname", "name"})
_TIME_KEYS = frozenset({"time", "timestamp", "logged_at"})


def _pairs(obj: Any, out: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Every (key, value) pair in a decoded line, nested ones included (loguru nests them)."""
    for key, value in obj.items():
        out.append((key, value))
        if isinstance(value, dict):
            _pairs(value, out)
    return out


def check_event(obj: Any, censored: frozenset[str] = frozenset()) -> str | None:
    """Why a decoded line is not the benchmark event, or None when it is (a ``censored``
    field must carry "[redacted]" instead of its value)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    pairs = _pairs(obj, [])
    for key, value in FIELDS.items():
        if (key, "[redacted]" if key in censored else value) not in pairs:
            return f"field {key}={value!r} missing"
    if not any(k in _MSG_KEYS and v == MSG for k, v in pairs):
        return "message missing"
    # pino writes the level as a number: 30 is info.
    if not any(
        k in _LEVEL_KEYS
        and ((isinstance(v, str) and v.lower() == "info") or (k, v) == ("level", 30))
        for k, v in pairs
    ):
        return "level missing"
    if not any(k in _TIME_KEYS and v for k, v in pairs):
        return "time missing"
    return None


def verify_file(path: Path, events: int, censored: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Exactly ``events`` lines, each one valid JSON holding the event."""
    lines = 0
    bad: dict[str, int] = {}
    sample: str | None = None
    nul = 0
    with path.open("rb") as f:
        for raw in f:
            lines += 1
            nul += raw.count(b"\0")
            try:
                problem = check_event(_decode(raw), censored)
            except _DecodeError:
                problem = "invalid JSON"
            if problem is not None:
                bad[problem] = bad.get(problem, 0) + 1
                if sample is None:
                    sample = raw[:200].decode("utf-8", "replace")
    problems = [f"{n:,} lines: {p}" for p, n in bad.items()]
    if lines != events:
        problems.insert(0, f"{lines:,} lines for {events:,} events")
    if nul:
        problems.append(f"{nul:,} NUL bytes")
    return {"lines": lines, "correct": not problems, "problems": problems, "sample": sample}


def verify_outputs(
    paths: list[Path], events: int, censored: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """:func:`verify_file` for each file a run wrote (fan-out writes two): correct only if
    every one is, each problem named by its file when there are several."""
    checks = [verify_file(p, events, censored) for p in paths]
    return {
        "lines": checks[0]["lines"],
        "correct": all(c["correct"] for c in checks),
        "problems": [
            f"{p.name}: {problem}" if len(paths) > 1 else problem
            for p, c in zip(paths, checks, strict=True)
            for problem in c["problems"]
        ],
        "sample": next((c["sample"] for c in checks if c["sample"]), None),
    }


# --- running workers ------------------------------------------------------------------------------


def _worker(
    args: list[str], result: Path, timeout: float, cmd: list[str] | None = None
) -> dict[str, Any]:
    cmd = cmd or [sys.executable, str(WORKER), *args, "--result", str(result)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0 or not result.exists():
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    data: dict[str, Any] = json.loads(result.read_text())
    result.unlink()
    if proc.stderr:
        data["stderr_lines"] = proc.stderr.count(b"\n")
    return data


def run_throughput(name: str, events: int, tmp: Path) -> dict[str, Any]:
    path = tmp / f"{name}.log"
    result = tmp / f"{name}.json"
    cls = CONTENDERS[name]
    data = _worker(
        ["throughput", "--logger", name, "--events", str(events), "--path", str(path)],
        result,
        timeout=60 + events * 0.003,
        cmd=cls.command(events, str(path), str(result)) if cls.external else None,
    )
    outputs = [Path(p) for p in cls.outputs(str(path))]
    if "error" not in data:
        data["check"] = verify_outputs(outputs, events, cls.censored)
    for p in outputs:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return data


def run_disabled(name: str, calls: int, tmp: Path) -> dict[str, Any]:
    path = tmp / f"{name}-disabled.log"
    data = _worker(
        ["disabled", "--logger", name, "--calls", str(calls), "--path", str(path)],
        tmp / f"{name}-disabled.json",
        timeout=120,
    )
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return data


HOT_PATH = HERE / "hot_path.py"


def run_hot_path(tmp: Path, *, quick: bool) -> dict[str, Any]:
    """benchmarks/hot_path.py's three modes, each in a process of its own."""
    result: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for mode in ("burst", "threads", "disabled"):
        _progress(f"hot path: {mode}")
        args = [mode, "--json", str(tmp / f"hot-{mode}.json")]
        if quick:
            args += ["--quick", *(["--events", "30000"] if mode == "burst" else [])]
        data = _worker(args, tmp / f"hot-{mode}.json", timeout=600, cmd=[
            sys.executable, str(HOT_PATH), *args])  # fmt: skip
        if "error" in data:
            errors[mode] = data["error"]
        else:
            data.pop("stderr_lines", None)
            result[mode] = data
    if errors:
        result["errors"] = errors
    return result


def run_instructions(loggers: list[str], *, quick: bool) -> dict[str, Any]:
    """benchmarks/instructions.py: instructions per event under valgrind, if installed."""
    if instructions.valgrind() is None:
        return {"unavailable": "valgrind is not on PATH"}
    _progress(f"instructions: {', '.join(loggers)}")
    small, large = (2_000, 4_000) if quick else (20_000, 60_000)
    return instructions.measure(loggers, small, large)


class _Drain(threading.Thread):
    """Reads a pipe to the end, keeping each chunk with the time it arrived."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.chunks: list[tuple[float, bytes]] = []

    def run(self) -> None:
        while chunk := os.read(self.fd, 1 << 20):
            self.chunks.append((time.monotonic(), chunk))


def run_stall(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The incident: stdout is a pipe nobody reads for ``stall_seconds``, then reading resumes."""
    result = tmp / f"{name}-stall.json"
    ctrl_r, ctrl_w = os.pipe()
    cmd = [
        sys.executable, str(WORKER), "stall", "--logger", name, "--result", str(result),
        "--stall-seconds", str(args.stall_seconds), "--recovery-seconds",
        str(args.recovery_seconds), "--grace-seconds", str(args.grace_seconds),
        "--ctrl-fd", str(ctrl_w),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(ctrl_w,))
    os.close(ctrl_w)
    assert proc.stdout is not None
    assert proc.stderr is not None
    err = _Drain(proc.stderr.fileno())
    err.start()
    out = _Drain(proc.stdout.fileno())
    ctrl = os.fdopen(ctrl_r, "rb")
    deadline = args.recovery_seconds + args.grace_seconds + 120
    try:
        # The worker says "ready" once its logger is configured (EOF if it died first).
        ready = ctrl.readline() if select.select([ctrl], [], [], 120)[0] else b""
        if not ready.startswith(b"ready"):
            proc.kill()
            proc.wait()
            err.join(5)
            tail = b"".join(c for _, c in err.chunks).decode("utf-8", "replace")
            return {"error": "worker failed to start: " + " | ".join(tail.splitlines()[-3:])}
        time.sleep(args.stall_seconds)
        resumed = time.monotonic()
        out.start()
        try:
            proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return {"error": f"timed out {deadline:.0f} s after the reader resumed"}
    finally:
        ctrl.close()
    out.join(30)
    err.join(30)
    if proc.returncode != 0 or not result.exists():
        tail = b"".join(c for _, c in err.chunks).decode("utf-8", "replace")
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail.splitlines()[-3:])}
    data: dict[str, Any] = json.loads(result.read_text())
    result.unlink()
    stderr = b"".join(c for _, c in err.chunks)
    data["stderr_lines"] = stderr.count(b"\n")
    data["stderr_sample"] = stderr[:300].decode("utf-8", "replace")
    data.update(_analyse_stall(data, out.chunks, resumed))
    data["resumed_at_s"] = resumed - data["t0"]
    return data


def _find_seq(obj: Any) -> int | None:
    if isinstance(obj, dict):
        if isinstance(obj.get("seq"), int):
            return int(obj["seq"])
        for value in obj.values():
            if isinstance(value, dict) and (found := _find_seq(value)) is not None:
                return found
    return None


def _analyse_stall(
    data: dict[str, Any], chunks: list[tuple[float, bytes]], resumed: float
) -> dict[str, Any]:
    bursts = data.pop("bursts")
    starts = [s for s, _ in bursts]
    burst_times = [t for _, t in bursts]
    received: set[int] = set()
    duplicates = invalid = other = 0
    other_sample: list[str] = []
    first_fresh: float | None = None
    backlog = 0
    tail_latency: list[float] = []
    t_end = data["t_end"]
    pending = b""
    for arrived, chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            if not raw:
                continue
            try:
                seq = _find_seq(_decode(raw))
            except _DecodeError:
                invalid += 1
                continue
            if seq is None:
                other += 1
                if len(other_sample) < 3:
                    other_sample.append(raw[:300].decode("utf-8", "replace"))
                continue
            if seq in received:
                duplicates += 1
            received.add(seq)
            logged_at = burst_times[bisect.bisect_right(starts, seq) - 1]
            if logged_at < resumed:
                backlog += 1
            elif first_fresh is None:
                first_fresh = arrived
            if logged_at >= t_end - 1.0:
                tail_latency.append(arrived - logged_at)
    lost = data["logged"] - len(received) if data["writes"] else None
    return {
        "received": len(received),
        "lost": lost,
        "duplicates": duplicates,
        "invalid_lines": invalid,
        "other_lines": other,
        "other_sample": other_sample,
        "backlog_after_resume": backlog,
        "recovery_ms": None if first_fresh is None else (first_fresh - resumed) * 1e3,
        "latency_ms_last_second": (statistics.median(tail_latency) * 1e3 if tail_latency else None),
    }


# --- the run --------------------------------------------------------------------------------------


def _median(rounds: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rounds if key in r]
    return statistics.median(values) if values else None


def machine_info() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem = f.readline().split()[1]
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    versions["node"] = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10)
        versions["node"] = node.stdout.strip() or None
    commit = None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, check=True,
            text=True,
        ).stdout.strip()  # fmt: skip
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem) / 1024 / 1024, 1) if mem else None,
        "system": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": versions,
        "commit": commit,
        "load_average": os.getloadavg(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--scenario", choices=("micro", "service"), default="micro",
        help="micro: this harness; service: benchmarks/service.py with the other options "
        "(see its --help)",
    )  # fmt: skip
    p.add_argument("--quick", action="store_true", help="fewer events, one round, a 2 s stall")
    p.add_argument("--events", type=int, help="events per throughput run (200,000)")
    p.add_argument("--rounds", type=int, help="rounds; each logger runs once per round (3)")
    p.add_argument("--disabled-calls", type=int, help="calls below the level threshold (1,000,000)")
    p.add_argument("--stall-seconds", type=float, help="how long nobody reads the pipe (10)")
    p.add_argument("--recovery-seconds", type=float, help="logging after reading resumes (3)")
    p.add_argument(
        "--grace-seconds", type=float, help="idle time before the logger is shut down (2)"
    )
    p.add_argument("--loggers", help="comma-separated subset (default: all)")
    p.add_argument("--no-stall", action="store_true", help="skip the stall scenario")
    p.add_argument(
        "--no-hot-path", action="store_true", help="skip benchmarks/hot_path.py's three modes"
    )
    p.add_argument(
        "--no-instructions",
        action="store_true",
        help="skip benchmarks/instructions.py (instructions per event under valgrind)",
    )
    p.add_argument(
        "--slow-seconds", type=float, default=20.0,
        help="a logger whose first run takes longer runs only one round (20)",
    )  # fmt: skip
    p.add_argument("--json", type=Path, help="results file (benchmarks/results/<date>.json)")
    p.add_argument("--tmpdir", type=Path, help="where the log files go (the system temp dir)")
    p.add_argument(
        "--report", type=Path, metavar="RESULTS", help="only print the report of a results file"
    )
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    scenario = argparse.ArgumentParser(add_help=False)
    scenario.add_argument("--scenario", choices=("micro", "service"), default="micro")
    known, rest = scenario.parse_known_args(sys.argv[1:] if argv is None else argv)
    if known.scenario == "service":
        import service

        return service.main(rest)
    args = parse_args(argv)
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return 0
    names = args.loggers.split(",") if args.loggers else list(CONTENDERS)
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        sys.exit(f"unknown loggers: {', '.join(unknown)}; known: {', '.join(CONTENDERS)}")
    started = time.monotonic()
    out: dict[str, Any] = {
        "command": shlex.join([os.path.relpath(sys.executable), *sys.argv]),
        "machine": machine_info(),
        "config": {k: getattr(args, k) for k in (*FULL, "slow_seconds")},
        "contenders": {},
        "stall": {},
    }
    results: dict[str, Any] = out["contenders"]
    runnable = []
    for name in names:
        cls = CONTENDERS[name]
        entry: dict[str, Any] = {"description": cls.description, "rounds": [], "disabled": []}
        if reason := cls.unavailable():
            entry["status"] = "unavailable"
            entry["reason"] = reason
        else:
            runnable.append(name)
        results[name] = entry

    tmp_parent = args.tmpdir or Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix="alog-bench-", dir=tmp_parent) as tmp_name:
        tmp = Path(tmp_name)
        in_table = [n for n in runnable if n in THROUGHPUT]
        slow: set[str] = set()
        for r in range(args.rounds):
            order = (
                in_table[r % len(in_table) :] + in_table[: r % len(in_table)] if in_table else []
            )
            for name in order:
                entry = results[name]
                if name in slow or any("error" in x for x in entry["rounds"]):
                    continue
                _progress(f"round {r + 1}/{args.rounds}: {name}")
                data = run_throughput(name, args.events, tmp)
                entry["rounds"].append(data)
                if data.get("wall_s", 0) > args.slow_seconds:
                    slow.add(name)
                if CONTENDERS[name].has_disabled:
                    entry["disabled"].append(run_disabled(name, args.disabled_calls, tmp))
        if not args.no_stall:
            for name in [n for n in runnable if n in STALL]:
                _progress(f"stall: {name}")
                out["stall"][name] = run_stall(name, args, tmp)
        if not args.no_hot_path and "alog" in runnable:
            out["hot_path"] = run_hot_path(tmp, quick=args.quick)
        if not args.no_instructions and "alog" in runnable:
            counted = instructions.QUICK if args.quick else instructions.DEFAULT
            out["instructions"] = run_instructions(
                [n for n in runnable if n in counted], quick=args.quick
            )

    for name, entry in results.items():
        _summarise(name, entry, name in runnable)
    out["targets"] = targets(out)
    out["elapsed_s"] = round(time.monotonic() - started, 1)
    path = save_results(out, args.json)
    print(report(out))
    print(f"\nresults: {path}")
    return 0


def save_results(out: dict[str, Any], path: Path | None, *, prefix: str = "") -> Path:
    """Write the results as JSON: to ``path``, else a dated file and ``<prefix>latest.json``."""
    if path is None:
        RESULTS.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"{prefix}{stamp}.json"
        latest: Path | None = RESULTS / f"{prefix}latest.json"
    else:
        latest = None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str))
    if latest is not None:
        latest.write_text(path.read_text())
    return path


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _summarise(name: str, entry: dict[str, Any], runnable: bool) -> None:
    if not runnable:
        return
    rounds = entry["rounds"]
    errors = [r["error"] for r in rounds if "error" in r]
    if name not in THROUGHPUT:
        entry["status"] = "stall only"
        return
    if not rounds:
        entry["status"] = "not run"
        return
    if errors:
        entry["status"] = "error"
        entry["reason"] = errors[0]
        return
    problems = sorted({p for r in rounds for p in r["check"]["problems"]})
    entry["status"] = "broken" if problems else "ok"
    entry["problems"] = problems
    entry["sample"] = next((r["check"]["sample"] for r in rounds if r["check"]["sample"]), None)
    keys = ("loop_ns_per_call", "call_ns", "cpu_us_per_event", "loop_thread_cpu_us_per_event",
            "events_per_s", "peak_rss",
            "setup_ms", "drain_ms", "wall_s", "file_bytes")  # fmt: skip
    entry["median"] = {k: _median(rounds, k) for k in keys}
    entry["n_rounds"] = len(rounds)
    disabled = [d for d in entry["disabled"] if "ns_per_call" in d]
    if disabled:
        for key, name in (
            ("disabled_ns", "ns_per_call"),
            ("disabled_one_field_ns", "one_field_ns"),
            ("noop_ns", "noop_ns"),
            ("noop_one_field_ns", "noop_one_field_ns"),
            ("empty_loop_ns", "loop_ns"),
        ):
            entry["median"][key] = _median(disabled, name)


def _check(name: str, value: float | None, limit: float, op: str, text: str) -> dict[str, Any]:
    """One target: ``value op limit`` (op is "<=" or ">="); None when it was not measured."""
    if value is None:
        status = "not measured"
    elif (value <= limit) if op == "<=" else (value >= limit):
        status = "met"
    else:
        status = "MISSED"
    return {"name": name, "value": value, "limit": limit, "op": op, "status": status, "text": text}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def targets(out: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, as ratios within this run: flat figures, and ``checks`` (each
    target's value, limit and met / MISSED / not measured)."""
    c = out["contenders"]
    ok = {n: e["median"] for n, e in c.items() if e.get("status") == "ok"}
    t: dict[str, Any] = {"checks": []}
    checks: list[dict[str, Any]] = t["checks"]
    if "alog" not in ok:
        t["alog"] = c.get("alog", {}).get("status", "not run")
        return t
    me = ok["alog"]
    alog = me["cpu_us_per_event"]
    for m in ok.values():
        m["cpu_vs_alog"] = m["cpu_us_per_event"] / alog

    def cpu(name: str) -> float | None:
        return ok[name]["cpu_us_per_event"] if name in ok else None

    t["alog_cpu_vs_floor"] = _ratio(alog, cpu("floor"))
    t["alog_cpu_vs_floor_inline"] = _ratio(alog, cpu("floor-inline"))
    checks.append(
        _check(
            "alog_cpu_vs_floor_inline",
            t["alog_cpu_vs_floor_inline"],
            1.3,
            "<=",
            "alog CPU per event vs the inline floor (no call per event)",
        )
    )

    def fastest(names: list[str]) -> tuple[str | None, float | None]:
        """The group's lowest CPU per event, as a multiple of alog's."""
        if not names:
            return None, None
        best = min(names, key=lambda n: ok[n]["cpu_us_per_event"])
        return best, ok[best]["cpu_us_per_event"] / alog

    peer, t["fastest_peer_cpu_vs_alog"] = fastest(
        [
            n
            for n in ok
            if not n.startswith(("alog", "floor", "pino")) and not CONTENDERS[n].external
        ]
    )
    t["fastest_peer"] = peer
    checks.append(
        _check(
            "fastest_peer_cpu_vs_alog",
            t["fastest_peer_cpu_vs_alog"],
            3.0,
            ">=",
            f"fastest correct Python peer ({peer or '-'}) CPU per event vs alog's",
        )
    )
    pino, t["pino_cpu_vs_alog"] = fastest([n for n in ok if n.startswith("pino")])
    t["fastest_pino"] = pino
    checks.append(
        _check(
            "pino_cpu_vs_alog",
            t["pino_cpu_vs_alog"],
            2.0,
            ">=",
            f"pino ({pino or c.get('pino', {}).get('status', 'not run')}) CPU per event vs alog's",
        )
    )
    floor = ok.get("floor")
    t["alog_events_per_s_vs_floor"] = _ratio(
        me["events_per_s"], floor["events_per_s"] if floor else None
    )
    checks.append(
        _check(
            "alog_events_per_s_vs_floor",
            t["alog_events_per_s_vs_floor"],
            0.8,
            ">=",
            "alog events/s to the file vs the floor's",
        )
    )
    t["alog_rss_vs_floor"] = _ratio(me["peak_rss"], floor["peak_rss"] if floor else None)
    checks.append(
        _check(
            "alog_rss_vs_floor", t["alog_rss_vs_floor"], 1.5, "<=", "alog peak RSS vs the floor's"
        )
    )
    if (d := me.get("disabled_ns")) is not None:
        t["alog_disabled_ns"] = d
        t["alog_disabled_one_field_ns"] = me.get("disabled_one_field_ns")
        # A do-nothing Python method with the same arguments, measured in every disabled run:
        # no Python-level API can be cheaper than this.
        refs = [e["median"] for e in c.values() if (e.get("median") or {}).get("noop_ns")]
        t["noop_method_ns"] = statistics.median(r["noop_ns"] for r in refs)
        t["noop_method_one_field_ns"] = statistics.median(r["noop_one_field_ns"] for r in refs)
    for name, label in (("alog", "one destination"), ("alog-levels", "levels per logger")):
        m = ok.get(name, {})
        for key, noop, fields in (
            ("disabled_ns", "noop_ns", "four fields"),
            ("disabled_one_field_ns", "noop_one_field_ns", "one field"),
        ):
            checks.append(
                _check(
                    f"{name}_{key}_vs_noop",
                    _ratio(m.get(key), m.get(noop)),
                    1.1,
                    "<=",
                    f"{name} disabled call ({label}, {fields}) vs a do-nothing method, "
                    "same process",
                )
            )
    t["features"] = {
        n: {
            "cpu_us_per_event": ok[n]["cpu_us_per_event"],
            "extra_us": ok[n]["cpu_us_per_event"] - alog,
        }
        for n in FEATURES
        if n in ok
    }
    hot = out.get("hot_path") or {}
    burst = hot.get("burst") or {}
    checks.append(
        _check(
            "hot_burst_lost",
            burst.get("lost"),
            0,
            "<=",
            f"events lost in a {burst.get('events', 300_000):,}-event burst into File "
            "(default caps)",
        )
    )
    threads = hot.get("threads") or {}
    checks.append(
        _check(
            "hot_threads_ratio",
            threads.get("ratio"),
            1.0,
            ">=",
            "8 threads logging at once vs one thread, events/s",
        )
    )
    hot_disabled = hot.get("disabled") or {}
    for key, label in (("four_fields", "four fields"), ("one_field", "one field")):
        checks.append(
            _check(
                f"hot_disabled_{key}",
                (hot_disabled.get(key) or {}).get("ratio"),
                1.1,
                "<=",
                f"disabled call with levels per logger ({label}) vs a do-nothing method, "
                f"hot_path.py (median of {hot_disabled.get('rounds', '-')} rounds)",
            )
        )
    counted = (out.get("instructions") or {}).get("ratios") or {}
    for key, limit, op, text in (
        ("alog_vs_floor_inline", 1.3, "<=", "alog instructions per event vs the inline floor"),
        ("picologging_vs_alog", 3.0, ">=", "picologging instructions per event vs alog's"),
    ):
        if "instructions" in out:
            checks.append(_check(f"instructions_{key}", counted.get(key), limit, op, text))
    if (b := out["stall"].get("baseline")) and "error" not in b:
        t["baseline_stall_max_lag_ms"] = b["max_lag_ms_stall"]
        t["baseline_stall_p99_lag_ms"] = b["p99_lag_ms_stall"]
    s = out["stall"].get("alog")
    if s and "error" not in s:
        t["alog_stall_p99_lag_ms"] = s["p99_lag_ms_stall"]
        t["alog_stall_max_lag_ms"] = s["max_lag_ms_stall"]
        t["alog_stall_lag_ok"] = s["max_lag_ms_stall"] < 5.0
        t["alog_stall_rss_growth_mb"] = s["rss_growth_stall"] / 1e6
        # max_bytes is 8 MiB in the stall configuration; "a small constant" is taken as 8 MB.
        t["alog_stall_rss_ok"] = s["rss_growth_stall"] < 8 * 1024 * 1024 + 8e6
    return t


# --- the report -----------------------------------------------------------------------------------


def _f(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} us"


def header_lines(title: str, out: dict[str, Any]) -> list[str]:
    """A report's title, command and machine record: one format for every harness."""
    m = out["machine"]
    return [
        f"# {title}",
        "",
        f"- command: `{out['command']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; {m['system']}",
        f"- {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v),
        f"- {m['date']}, commit {m['commit'] or '-'}, load average at start "
        + " ".join(f"{x:.2f}" for x in m["load_average"]),
    ]


def report(out: dict[str, Any]) -> str:
    cfg = out["config"]
    lines = [
        *header_lines("alog benchmark", out),
        f"- {cfg['events']:,} events per run, {cfg['rounds']} rounds interleaved, medians; "
        f"disabled calls: {cfg['disabled_calls']:,}",
        "",
        f"## Throughput: {cfg['events']:,} events to a file",
        "",
        "| logger | ns per call on the loop | CPU per event | of which on the loop's thread "
        "| CPU vs alog | events/s to file | peak RSS | output | disabled call |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    entries = out["contenders"]
    ordered = sorted(
        entries.items(),
        key=lambda kv: (
            kv[1].get("status") != "ok",
            (kv[1].get("median") or {}).get("cpu_us_per_event") or 1e99,
        ),
    )
    for name, e in ordered:
        if name not in THROUGHPUT:
            continue
        status = e.get("status")
        med = e.get("median") or {}
        disabled = _f(med.get("disabled_ns"))
        if status == "ok":
            rounds = "" if e["n_rounds"] == cfg["rounds"] else f" ({e['n_rounds']} round)"
            lines.append(
                f"| {name}{rounds} | {_f(med['loop_ns_per_call'])} | "
                f"{_f(med['cpu_us_per_event'], '.2f')} us | "
                f"{_us(med.get('loop_thread_cpu_us_per_event'))} | "
                f"{_f(med.get('cpu_vs_alog'), '.2f')}x | "
                f"{_f(med['events_per_s'] / 1e3, ',.0f')} k | {_f(med['peak_rss'] / 1e6)} MB | "
                f"yes | {disabled} |"
            )
        elif status == "broken":
            lines.append(
                f"| {name} | - | - | - | - | - | {_f(med.get('peak_rss', 0) / 1e6)} MB | "
                f"**broken**: {'; '.join(e['problems'][:3])} | {disabled} |"
            )
        else:
            lines.append(
                f"| {name} | - | - | - | - | - | - | {status}: {e.get('reason', '')} | - |"
            )
    t = out["targets"]
    lines += ["", "## Targets (ratios within this run)", ""]
    for check in t.get("checks", []):
        value = check["value"]
        if value is None:
            shown = "not measured"
        elif check["name"] == "hot_burst_lost":
            shown = f"**{value:,}**"
        else:
            shown = f"**{value:.2f}x**"
        limit = f"{check['limit']:,}" if check["name"] == "hot_burst_lost" else f"{check['limit']}x"
        lines.append(
            f"- {check['text']}: {shown} (target {check['op']} {limit}): {check['status']}"
        )
    if t.get("alog_cpu_vs_floor") is not None:
        lines.append(
            f"- for reference, alog CPU per event vs the floor called as a logger API is called "
            f"(one call with the fields as keywords): {t['alog_cpu_vs_floor']:.2f}x"
        )
    if "alog_disabled_ns" in t:
        lines.append(
            f"- alog call below the level threshold: {t['alog_disabled_ns']:.0f} ns with the "
            f"benchmark's four fields, {_f(t['alog_disabled_one_field_ns'])} ns with one field; "
            f"a do-nothing Python method with the same arguments: {t['noop_method_ns']:.0f} ns "
            f"and {t['noop_method_one_field_ns']:.0f} ns (medians over every disabled run)"
        )
    if "alog_stall_max_lag_ms" in t:
        baseline = ""
        if "baseline_stall_max_lag_ms" in t:
            baseline = (
                f" (with no logging at all, the machine itself: max "
                f"{t['baseline_stall_max_lag_ms']:.2f} ms, "
                f"p99 {t['baseline_stall_p99_lag_ms']:.2f})"
            )
        lines.append(
            f"- alog during the stall: max loop lag **{t['alog_stall_max_lag_ms']:.2f} ms**, p99 "
            f"{t['alog_stall_p99_lag_ms']:.2f} ms{baseline} "
            f"(target < 5 ms): {'met' if t['alog_stall_lag_ok'] else 'MISSED'}; RSS growth "
            f"**{t['alog_stall_rss_growth_mb']:.1f} MB** (bound: max_bytes 8 MiB + a few MB): "
            f"{'met' if t['alog_stall_rss_ok'] else 'MISSED'}"
        )
    if "alog" in t:
        lines.append(f"- alog: {t['alog']}")
    empty = [e["median"].get("empty_loop_ns") for e in entries.values() if e.get("median")]
    empty = [x for x in empty if x is not None]
    if empty:
        lines.append(
            f"- disabled-call figures include the `for` loop around the calls, "
            f"{statistics.median(empty):.0f} ns per iteration on its own"
        )
    if t.get("features"):
        lines += [
            "",
            "## Features: alog with one feature on, against alog (same run)",
            "",
            "| row | CPU per event | extra over alog |",
            "| --- | ---: | ---: |",
        ]
        for name, f in t["features"].items():
            lines.append(f"| {name} | {f['cpu_us_per_event']:.2f} us | {f['extra_us']:+.2f} us |")
    lines += _hot_path_report(out.get("hot_path") or {})
    lines += _instructions_report(out.get("instructions") or {})
    if out["stall"]:
        lines += [
            "",
            f"## Stall: stdout is a pipe nobody reads for {cfg['stall_seconds']:g} s, "
            f"the app logs 20,000 events/s (200 every 10 ms)",
            "",
            "| logger | max loop lag (p99) | RSS growth during stall (2nd half) | peak RSS "
            "| logged | app could not log | lost | loss reported | backlog after resume "
            "| fresh events after resume | latency, last second |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        ]
        for name, s in out["stall"].items():
            if "error" in s:
                lines.append(f"| {name} | error: {s['error']} |" + " |" * 9)
                continue
            lines.append(
                f"| {name} | {_f(s['max_lag_ms_stall'], ',.1f')} ms "
                f"({_f(s['p99_lag_ms_stall'], ',.1f')}) | "
                f"{_f(s['rss_growth_stall'] / 1e6, ',.1f')} MB "
                f"({_f(s['rss_growth_second_half'] / 1e6, ',.1f')}) | "
                f"{_f(s['peak_rss'] / 1e6)} MB | "
                f"{s['logged']:,} | {s['scheduled'] - s['logged']:,} | {_f(s['lost'])} | "
                f"{_loss_report(name, s)} | {s['backlog_after_resume']:,} | "
                f"{_f(s['recovery_ms'], ',.0f')} ms | "
                f"{_f(s['latency_ms_last_second'], ',.1f')} ms |"
            )
    lines.append("")
    lines.append(f"Whole run: {out.get('elapsed_s', 0):.0f} s.")
    return "\n".join(lines)


def _hot_path_report(hot: dict[str, Any]) -> list[str]:
    if not hot:
        return []
    lines = ["", "## Hot path (benchmarks/hot_path.py, each mode in a process of its own)", ""]
    if "error" in hot:
        return [*lines, f"- error: {hot['error']}"]
    if b := hot.get("burst"):
        lines.append(
            f"- burst: {b['events']:,} events at full speed into `File`, default caps: "
            f"{b['lines']:,} lines, lost {b['lost']:,} (dropped {b['dropped']:,}, undelivered "
            f"{b['undelivered']:,}), {b['batches']:,} batches, peak queued "
            f"{b['peak_queued']:,}, {b['events_per_s'] / 1e3:,.0f} k events/s"
        )
    if th := hot.get("threads"):
        lines.append(
            f"- threads: 1 thread {th['one_per_s'] / 1e3:,.0f} k events/s, 8 threads "
            f"{th['eight_per_s'] / 1e3:,.0f} k events/s (medians of {th['rounds']}): "
            f"{th['ratio']:.2f}x"
        )
    if d := hot.get("disabled"):
        for key, label in (("four_fields", "four fields"), ("one_field", "one field")):
            if r := d.get(key):
                lines.append(
                    f"- disabled, levels per logger, {label}: {r['ns']:.0f} ns; a do-nothing "
                    f"method {r['noop_ns']:.0f} ns ({r['ratio']:.2f}x)"
                )
    for mode, error in (hot.get("errors") or {}).items():
        lines.append(f"- {mode}: error: {error}")
    return lines


def _instructions_report(counted: dict[str, Any]) -> list[str]:
    if not counted:
        return []
    lines = ["", "## Instructions per event (benchmarks/instructions.py, valgrind)", ""]
    if "unavailable" in counted:
        return [*lines, f"- unavailable: {counted['unavailable']}"]
    return lines + instructions.report(counted)


def _loss_report(name: str, s: dict[str, Any]) -> str:
    parts = []
    dropped = (s.get("stats") or {}).get("dropped")
    if dropped is not None:
        parts.append(f"statistics().dropped = {dropped:,}")
    if s.get("other_lines"):
        parts.append(f"notice lines in the stream: {s['other_lines']:,}")
    if s.get("stderr_lines"):
        parts.append(f"{s['stderr_lines']:,} lines on stderr")
    if not parts:
        return "-" if not s["lost"] else "**no**"
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
