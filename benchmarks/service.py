"""The service benchmark: a real uvicorn server, a load generator in another process.

    .venv-bench/bin/python benchmarks/service.py             # 20,000 requests, 5 rounds
    .venv-bench/bin/python benchmarks/service.py --quick     # 2,000 requests, 1 round
    .venv-bench/bin/python benchmarks/run.py --scenario service --quick   # the same

The app (``benchmarks/service_app.py``) is one FastAPI endpoint under uvicorn: every request
logs two events of four fields and one access line. ``benchmarks/service_load.py`` sends the
requests over keep-alive connections. The figure is the server's CPU time per request (all
its threads: ``/proc/<pid>/task/*/schedstat``, or the process's ``utime + stime`` when a
thread ended in between), from after a warm-up until every line the requests logged has
reached its destination, and what each logger adds to it over the same server with no
logging at all. Every line is then
checked: valid JSON, and exactly the three lines of each request (by its ``X-Request-ID``).

Writes a Markdown report to stdout and the results as JSON to
``benchmarks/results/service-<date>.json`` (and ``service-latest.json``).
See docs/performance.md, "The service benchmark".
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOAD = HERE / "service_load.py"

sys.path.insert(0, str(ROOT))

from tests._servers import UVICORN_READY, ServerProcess  # noqa: E402

try:
    import msgspec

    _decode: Any = msgspec.json.decode
    _DecodeError: type[Exception] = msgspec.DecodeError
except ImportError:  # pragma: no cover - msgspec is an alog dependency
    _decode = json.loads
    _DecodeError = ValueError

FULL = {"requests": 20_000, "warmup": 1_000, "rounds": 5}
QUICK = {"requests": 2_000, "warmup": 200, "rounds": 1}

# The rows: which loggers run, with which destinations, needing which modules.
LOGGERS: dict[str, tuple[str, ...]] = {
    "none": (),
    "alog": ("alog",),
    "alog-filtered": ("alog",),
    "structlog": ("structlog", "orjson"),
    "stdlib": (),
    "loguru": ("loguru",),
}
DESTS = ("stdout-file", "stdout-pipe", "file", "tcp")
# "none" writes nothing and "alog-filtered" filters every call: their destination changes
# nothing, so they run once per loop, with stdout to a file. Only alog has a TCP destination
# that writes JSON lines.
ROWS: dict[str, tuple[str, ...]] = {
    "none": ("stdout-file",),
    "alog": DESTS,
    "alog-filtered": ("stdout-file",),
    "structlog": ("stdout-file", "stdout-pipe", "file"),
    "stdlib": ("stdout-file", "stdout-pipe", "file"),
    "loguru": ("stdout-file", "stdout-pipe", "file"),
}
LOOPS = {"asyncio": (), "uvloop": ("uvloop",)}
SERVER_MODULES = ("fastapi", "uvicorn")
MESSAGES = frozenset({"item requested", "item loaded", "request"})
LINES_PER_REQUEST = len(MESSAGES)
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def missing(modules: tuple[str, ...]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


# --- the server's process ---------------------------------------------------------------------


def server_cpu_s(pid: int) -> float:
    """utime + stime of a process, every thread (also those that ended), in seconds.

    In clock ticks (10 ms here): precise enough over 20,000 requests, not over 100.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """Each live thread's CPU time in ns (``/proc/<pid>/task/<tid>/schedstat``)."""
    times = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
            times[int(tid)] = int(f.read().split()[0])
    return times


class CpuClock:
    """The server's CPU time between two readings: per thread in ns when that is complete.

    The per-thread figures miss the time of threads that ended between the readings; the
    process's ticks do not, but are coarse. The per-thread sum is used when no thread ended
    and it agrees with the ticks within their resolution; otherwise the ticks.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._ticks = server_cpu_s(pid)
        self._threads = thread_cpu_ns(pid)

    def elapsed(self) -> tuple[float, str]:
        """CPU seconds since the first reading, and which clock gave them."""
        threads = thread_cpu_ns(self.pid)
        ticks = server_cpu_s(self.pid) - self._ticks
        if self._threads.keys() <= threads.keys():
            precise = sum(ns - self._threads.get(tid, 0) for tid, ns in threads.items()) / 1e9
            if abs(precise - ticks) <= 2 / CLOCK_TICK + 0.02 * ticks:
                return precise, "schedstat"
        return ticks, "ticks"


def peak_rss(pid: int) -> int | None:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


class _Sink:
    """Where the server's lines end up, and how many complete lines have arrived so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._counted = 0
        self._offset = 0

    def lines(self) -> int:
        """Newlines in the file so far (read incrementally)."""
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as f:
            f.seek(self._offset)
            while chunk := f.read(1 << 20):
                self._counted += chunk.count(b"\n")
                self._offset += len(chunk)
        return self._counted

    def close(self) -> None:
        """Stop receiving (the server has exited)."""


class _PipeSink(_Sink):
    """Reads the server's stdout pipe to the end in a thread, into a file."""

    def __init__(self, path: Path, pipe: IO[bytes]) -> None:
        super().__init__(path)
        self._pipe = pipe
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fd = self._pipe.fileno()
        with self.path.open("wb") as out:
            while chunk := os.read(fd, 1 << 20):
                out.write(chunk)
                out.flush()

    def close(self) -> None:
        self._thread.join(30)
        self._pipe.close()


class _TcpSink(_Sink):
    """A 127.0.0.1 receiver: accepts connections and writes what they send to a file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._out = path.open("wb")
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            reader = threading.Thread(target=self._read, args=(conn,), daemon=True)
            self._readers.append(reader)
            reader.start()

    def _read(self, conn: socket.socket) -> None:
        with conn:
            while chunk := conn.recv(1 << 20):
                with self._lock:
                    self._out.write(chunk)
                    self._out.flush()

    def close(self) -> None:
        self._listener.close()
        for reader in self._readers:
            reader.join(30)
        self._out.close()


def _load(port: int, requests: int, concurrency: int, first_id: int, tmp: Path) -> dict[str, Any]:
    result = tmp / "load.json"
    cmd = [
        sys.executable, str(LOAD), "--port", str(port), "--requests", str(requests),
        "--concurrency", str(concurrency), "--first-id", str(first_id), "--result", str(result),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=120 + requests * 0.01, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "the load generator timed out"}
    if not result.exists():
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        return {"error": f"load generator exit {proc.returncode}: " + " | ".join(tail)}
    data: dict[str, Any] = json.loads(result.read_text())
    result.unlink()
    if proc.returncode != 0:
        data["error"] = f"{data['completed']:,} of {requests:,} requests: {data['errors'][:3]}"
    return data


def run_one(
    logger: str, dest: str, loop: str, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    """One server, one warm-up, one measured load; then the output is checked."""
    out_path = tmp / f"{logger}-{dest}-{loop}.log"
    env = {
        "ALOG_BENCH_LOGGER": logger,
        "ALOG_BENCH_DEST": "stdout" if dest.startswith("stdout") else dest,
        "ALOG_BENCH_PATH": str(out_path),
        # Loggers flush each line themselves; an unbuffered stdout would change nothing for
        # them but is not what a server has by default.
        "PYTHONUNBUFFERED": "",
    }
    sink: _Sink
    stdout: int | IO[Any]
    stdout_file = None
    if dest == "stdout-file":
        stdout = stdout_file = out_path.open("wb")
    elif dest == "stdout-pipe":
        stdout = subprocess.PIPE
    else:
        stdout = subprocess.DEVNULL
    if dest == "tcp":
        sink = tcp = _TcpSink(out_path)
        env["ALOG_BENCH_TCP_PORT"] = str(tcp.port)
    cmd = [
        "-m", "uvicorn", "service_app:app", "--app-dir", str(HERE), "--host", "127.0.0.1",
        "--port", "0", "--loop", loop, "--no-access-log",
    ]  # fmt: skip
    server = ServerProcess(cmd, cwd=ROOT, ready=UVICORN_READY, env=env, stdout=stdout)
    if stdout_file is not None:
        stdout_file.close()  # the server holds its own copy
    if dest == "stdout-pipe":
        assert server.proc.stdout is not None
        sink = _PipeSink(out_path, server.proc.stdout)
    elif dest != "tcp":
        sink = _Sink(out_path)
    writes = logger not in ("none", "alog-filtered")
    total = args.warmup + args.requests
    expected = total * LINES_PER_REQUEST if writes else 0
    data: dict[str, Any] = {"logger": logger, "dest": dest, "loop": loop}
    try:
        try:
            port = server.port
        except AssertionError as error:
            data["error"] = str(error).splitlines()[-1][:300]
            return data
        warm = _load(port, args.warmup, args.concurrency, 0, tmp)
        if "error" in warm:
            data["error"] = "warm-up: " + warm["error"]
            return data
        pid = server.proc.pid
        clock = CpuClock(pid)
        load = _load(port, args.requests, args.concurrency, args.warmup, tmp)
        ended = time.monotonic()
        if "error" in load:
            data["error"] = load["error"]
            return data
        # The CPU of writing every line counts: wait until they have all arrived.
        deadline = ended + args.drain_timeout
        while sink.lines() < expected and time.monotonic() < deadline:
            time.sleep(0.005)
        arrived = time.monotonic()
        cpu, source = clock.elapsed()
        data.update(
            {
                "server_cpu_s": cpu,
                "cpu_clock": source,
                "cpu_us_per_request": cpu * 1e6 / args.requests,
                "requests_per_s": load["requests_per_s"],
                "latency_ms_p50": load["latency_ms_p50"],
                "latency_ms_p99": load["latency_ms_p99"],
                "statuses": load["statuses"],
                "lines_at_measure": sink.lines(),
                "drain_ms": (arrived - ended) * 1e3,
                "peak_rss": peak_rss(pid),
            }
        )
        data["exit_status"] = server.stop()
    finally:
        server.kill()
        sink.close()
    stderr = server.stderr_lines()
    data["stderr_lines"] = len(stderr)
    data["stderr_tail"] = [s[:300] for s in stderr[-3:]]
    data["check"] = verify(out_path, total if writes else 0)
    with contextlib.suppress(FileNotFoundError):
        out_path.unlink()
    return data


# --- the output check -------------------------------------------------------------------------

_MSG_KEYS = ("msg", "event", "message")


def _find(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The first of ``keys`` in a decoded line, looking into nested objects (loguru's record)."""
    for key in keys:
        if key in obj and not isinstance(obj[key], dict):
            return obj[key]
    for value in obj.values():
        if isinstance(value, dict) and (found := _find(value, keys)) is not None:
            return found
    return None


def verify(path: Path, requests: int) -> dict[str, Any]:
    """Every line valid JSON, and each of ``requests`` requests' three lines exactly once."""
    seen: dict[str, set[str]] = {}
    lines = invalid = duplicates = other = 0
    sample: str | None = None
    with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
        for raw in f:
            lines += 1
            try:
                obj = _decode(raw)
            except _DecodeError:
                invalid += 1
                sample = sample or raw[:200].decode("utf-8", "replace")
                continue
            rid = _find(obj, ("request_id",)) if isinstance(obj, dict) else None
            msg = _find(obj, _MSG_KEYS) if isinstance(obj, dict) else None
            if not isinstance(rid, str) or msg not in MESSAGES:
                other += 1
                sample = sample or raw[:200].decode("utf-8", "replace")
                continue
            got = seen.setdefault(rid, set())
            if msg in got:
                duplicates += 1
            got.add(msg)
    expected = {f"bench-{n}" for n in range(requests)}
    incomplete = sum(1 for rid in expected if len(seen.get(rid, ())) != LINES_PER_REQUEST)
    unknown = len(seen.keys() - expected)
    problems = []
    if lines != requests * LINES_PER_REQUEST:
        problems.append(f"{lines:,} lines for {requests:,} requests x {LINES_PER_REQUEST}")
    for count, what in (
        (incomplete, "requests without their three lines"),
        (invalid, "lines: invalid JSON"),
        (other, "lines: not a request's event"),
        (duplicates, "duplicate lines"),
        (unknown, "unknown request ids"),
    ):
        if count:
            problems.append(f"{count:,} {what}")
    return {"lines": lines, "correct": not problems, "problems": problems, "sample": sample}


# --- the run ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2,000 requests, one round")
    p.add_argument("--requests", type=int, help="measured requests per run (20,000)")
    p.add_argument("--warmup", type=int, help="requests before the measurement (1,000)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (5)")
    p.add_argument("--concurrency", type=int, default=32, help="keep-alive connections (32)")
    p.add_argument("--loggers", help=f"comma-separated subset of {', '.join(LOGGERS)}")
    p.add_argument("--dests", help=f"comma-separated subset of {', '.join(DESTS)}")
    p.add_argument("--loops", default="asyncio,uvloop", help="asyncio,uvloop")
    p.add_argument(
        "--drain-timeout", type=float, default=30.0,
        help="seconds to wait for the lines after the load ends (30)",
    )  # fmt: skip
    p.add_argument(
        "--json", type=Path, help="results file (benchmarks/results/service-<date>.json)"
    )
    p.add_argument("--tmpdir", type=Path, help="where the log files go (the system temp dir)")
    p.add_argument("--report", type=Path, metavar="RESULTS", help="only print a results file")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def _names(value: str | None, known: tuple[str, ...], what: str) -> list[str]:
    names = value.split(",") if value else list(known)
    if unknown := [n for n in names if n not in known]:
        sys.exit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return 0
    import run  # the micro benchmark's machine record, one format for both

    loggers = _names(args.loggers, tuple(LOGGERS), "loggers")
    dests = _names(args.dests, DESTS, "destinations")
    loops = _names(args.loops, tuple(LOOPS), "loops")
    started = time.monotonic()
    machine = run.machine_info()
    for pkg in ("fastapi", "uvicorn", "uvloop", "httptools"):
        machine["packages"][pkg] = _version(pkg)
    out: dict[str, Any] = {
        "command": shlex.join([os.path.relpath(sys.executable), *sys.argv]),
        "machine": machine,
        "config": {k: getattr(args, k) for k in ("requests", "warmup", "rounds", "concurrency")},
        "rows": {},
    }
    rows: dict[str, Any] = out["rows"]
    plan: list[tuple[str, str, str]] = []
    server_missing = missing(SERVER_MODULES)
    for loop in loops:
        for logger in loggers:
            for dest in ROWS[logger]:
                if dest not in dests and logger not in ("none", "alog-filtered"):
                    continue
                key = f"{loop}/{logger}/{dest}"
                absent = server_missing + missing(LOGGERS[logger]) + missing(LOOPS[loop])
                rows[key] = {"loop": loop, "logger": logger, "dest": dest, "rounds": []}
                if absent:
                    rows[key]["status"] = "unavailable"
                    rows[key]["reason"] = f"not installed: {', '.join(absent)}"
                else:
                    plan.append((logger, dest, loop))
    tmp_parent = args.tmpdir or Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix="alog-service-", dir=tmp_parent) as tmp_name:
        tmp = Path(tmp_name)
        for r in range(args.rounds):
            shift = r % len(plan) if plan else 0
            for logger, dest, loop in plan[shift:] + plan[:shift]:
                key = f"{loop}/{logger}/{dest}"
                _progress(f"round {r + 1}/{args.rounds}: {key}")
                rows[key]["rounds"].append(run_one(logger, dest, loop, args, tmp))
    for entry in rows.values():
        _summarise(entry)
    out["targets"] = targets(rows, loops)
    out["elapsed_s"] = round(time.monotonic() - started, 1)
    path = run.save_results(out, args.json, prefix="service-")
    print(report(out))
    print(f"\nresults: {path}")
    return 0


def _version(pkg: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _summarise(entry: dict[str, Any]) -> None:
    if entry.get("status") == "unavailable":
        return
    rounds = entry["rounds"]
    if not rounds:
        entry["status"] = "not run"
        return
    if errors := [r["error"] for r in rounds if "error" in r]:
        entry["status"] = "error"
        entry["reason"] = errors[0]
        return
    problems = sorted({p for r in rounds for p in r["check"]["problems"]})
    entry["status"] = "broken" if problems else "ok"
    entry["problems"] = problems
    entry["sample"] = next((r["check"]["sample"] for r in rounds if r["check"]["sample"]), None)
    entry["median"] = {
        k: statistics.median(r[k] for r in rounds)
        for k in ("cpu_us_per_request", "requests_per_s", "latency_ms_p99", "drain_ms")
    }
    entry["median"]["peak_rss"] = max((r["peak_rss"] or 0) for r in rounds)
    entry["n_rounds"] = len(rounds)


def targets(rows: dict[str, Any], loops: list[str]) -> dict[str, Any]:
    """Each row's CPU over the no-logging server, and alog's against structlog's.

    The extra is the median over rounds of each round's difference to that round's
    no-logging server: the machine drifts from round to round by more than a logger costs,
    and a difference of two medians would carry both drifts.
    """
    t: dict[str, Any] = {}
    for loop in loops:
        base = rows.get(f"{loop}/none/stdout-file", {})
        if base.get("status") != "ok":
            continue
        none = [r["cpu_us_per_request"] for r in base["rounds"]]
        for entry in rows.values():
            if entry["loop"] == loop and entry.get("status") == "ok":
                entry["median"]["extra_us"] = statistics.median(
                    r["cpu_us_per_request"] - none[min(i, len(none) - 1)]
                    for i, r in enumerate(entry["rounds"])
                )
        mw = rows.get(f"{loop}/alog-filtered/stdout-file", {})
        if mw.get("status") == "ok":
            t[f"{loop}/middleware_us"] = mw["median"]["extra_us"]
        for dest in DESTS:
            alog = rows.get(f"{loop}/alog/{dest}", {})
            peer = rows.get(f"{loop}/structlog/{dest}", {})
            if not alog or not peer or "unavailable" in (alog.get("status"), peer.get("status")):
                continue
            goal: dict[str, Any] = {"alog": alog.get("status"), "structlog": peer.get("status")}
            if alog.get("status") == "ok" and peer.get("status") == "ok":
                if peer["median"]["extra_us"] <= 0:  # within the noise of a tiny run
                    goal["structlog"] = "no extra CPU measured"
                    t[f"{loop}/{dest}"] = goal
                    continue
                ratio = alog["median"]["extra_us"] / peer["median"]["extra_us"]
                alog["median"]["extra_vs_structlog"] = ratio
                goal["ratio"] = ratio
                # Only stdout is the target; the file rows compare each own file writer.
                if dest.startswith("stdout"):
                    goal["ok"] = ratio <= 0.5
            t[f"{loop}/{dest}"] = goal
            for name in ("stdlib", "loguru"):
                other = rows.get(f"{loop}/{name}/{dest}", {})
                if other.get("status") == "ok" and peer.get("status") == "ok" and "ratio" in goal:
                    other["median"]["extra_vs_structlog"] = (
                        other["median"]["extra_us"] / peer["median"]["extra_us"]
                    )
    return t


# --- the report -------------------------------------------------------------------------------

_DEST_NAMES = {
    "stdout-file": "stdout -> file",
    "stdout-pipe": "stdout -> pipe",
    "file": "the logger's file writer",
    "tcp": "alog.TCP -> 127.0.0.1 receiver",
}


def _f(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def report(out: dict[str, Any]) -> str:
    import run  # one report header for both harnesses

    cfg = out["config"]
    lines = [
        *run.header_lines("alog service benchmark", out),
        f"- {cfg['requests']:,} requests per run after {cfg['warmup']:,} of warm-up, "
        f"{cfg['concurrency']} keep-alive connections, {cfg['rounds']} rounds interleaved, "
        "medians; each request logs 2 events of 4 fields and an access line",
    ]
    rows = out["rows"]
    for loop in dict.fromkeys(e["loop"] for e in rows.values()):
        lines += [
            "",
            f"## Server CPU per request, {loop}",
            "",
            "| logger | destination | CPU per request | over no logging | vs structlog's "
            "| requests/s | p99 latency | peak RSS | output |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for entry in rows.values():
            if entry["loop"] != loop:
                continue
            name, dest = entry["logger"], entry["dest"]
            shown = "-" if name in ("none", "alog-filtered") else _DEST_NAMES[dest]
            status = entry.get("status")
            if status != "ok":
                why = "; ".join(entry.get("problems", [])[:3]) or entry.get("reason", "")
                lines.append(f"| {name} | {shown} | - | - | - | - | - | - | {status}: {why} |")
                continue
            med = entry["median"]
            extra = med.get("extra_us")
            vs = med.get("extra_vs_structlog")
            lines.append(
                f"| {name} | {shown} | {med['cpu_us_per_request']:,.0f} us | "
                f"{'-' if name == 'none' or extra is None else f'{extra:+,.0f} us'} | "
                f"{_f(vs, '.2f') + 'x' if vs is not None else '-'} | "
                f"{med['requests_per_s']:,.0f} | {_f(med['latency_ms_p99'], '.1f')} ms | "
                f"{_f(med['peak_rss'] / 1e6)} MB | yes |"
            )
    t = out["targets"]
    lines += ["", "## Targets (ratios within this run)", ""]
    for key, goal in t.items():
        loop, _, what = key.partition("/")
        if what == "middleware_us":
            lines.append(
                f"- {loop}: alog's middleware and calls, every call filtered by level: "
                f"**{goal:+,.0f} us** per request over no logging"
            )
            continue
        if "ratio" not in goal:
            lines.append(
                f"- {loop}, {_DEST_NAMES[what]}: not compared (alog {goal['alog']}, "
                f"structlog {goal['structlog']})"
            )
            continue
        verdict = ""
        if "ok" in goal:
            verdict = f" (target <= 0.5x): {'met' if goal['ok'] else 'MISSED'}"
        lines.append(
            f"- {loop}, {_DEST_NAMES[what]}: alog's extra CPU per request = "
            f"**{goal['ratio']:.2f}x** structlog's{verdict}"
        )
    lines += ["", f"Whole run: {out.get('elapsed_s', 0):.0f} s."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
