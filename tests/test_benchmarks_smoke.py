"""The benchmark harness runs end to end on a tiny workload, so that it cannot rot.

Peers that are not installed here (they live in the ``bench`` extra) must be reported as
unavailable; everything that can run, runs. pino runs when node is on PATH; the service
benchmark runs real uvicorn servers (FastAPI and uvicorn are in the ``test`` extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"
SERVICE = ROOT / "benchmarks" / "service.py"
# Need nothing beyond alog's own dependencies and the standard library.
ALWAYS = ("alog", "floor", "floor-inline", "stdlib", "stdlib-queue")
# alog with one feature on: each a row of its own (alog-otel needs opentelemetry-sdk).
FEATURES = ("alog-processors", "alog-redact", "alog-otel", "alog-fanout", "alog-levels")
# Every Python contender (pino has tests of its own below).
PYTHON = (
    "alog,floor,floor-inline,structlog,picologging,stdlib,stdlib-queue,stdlib-queue-10k,loguru,"
    "loguru-enqueue,aiologger,baseline," + ",".join(FEATURES)
)
HOT_PATH = ROOT / "benchmarks" / "hot_path.py"
INSTRUCTIONS = ROOT / "benchmarks" / "instructions.py"
CHARTS = ROOT / "benchmarks" / "charts.py"


def _load(path: Path) -> ModuleType:
    """A benchmarks/ module, imported from its file (benchmarks/ is not a package)."""
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{path.stem}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


@pytest.fixture(name="run", scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    tmp = tmp_path_factory.mktemp("bench")
    results = tmp / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--quick",
            "--events=2000",
            "--rounds=1",
            "--disabled-calls=20000",
            "--stall-seconds=0.4",
            "--recovery-seconds=0.2",
            "--grace-seconds=0.1",
            f"--loggers={PYTHON}",
            "--no-instructions",  # valgrind's own test below
            f"--json={results}",
            f"--tmpdir={tmp}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data: dict[str, Any] = json.loads(results.read_text())
    (tmp / "report.md").write_text(proc.stdout)
    return data, proc.stdout


def test_core_loggers_write_every_event_correctly(run: tuple[dict[str, Any], str]) -> None:
    """alog, the floor and stdlib need no extra package, so they are always measured."""
    contenders = run[0]["contenders"]
    for name in ALWAYS:
        entry = contenders[name]
        assert entry["status"] == "ok", (name, entry.get("reason"), entry.get("problems"))
        assert entry["rounds"][0]["check"]["lines"] == 2000
        median = entry["median"]
        assert median["cpu_us_per_event"] > 0
        assert median["events_per_s"] > 0
        if name != "floor-inline":  # no call to disable
            assert median["disabled_ns"] > 0


def test_a_peer_is_unavailable_only_when_its_package_is_missing(
    run: tuple[dict[str, Any], str],
) -> None:
    """Marking a logger unavailable when it could run would hide it from the comparison."""
    for name, entry in run[0]["contenders"].items():
        if entry["status"] == "unavailable":
            missing = entry["reason"].removeprefix("not installed: ").split(", ")
            assert all(importlib.util.find_spec(m) is None for m in missing), name
        else:
            assert entry["status"] in {"ok", "broken", "stall only"}, (name, entry.get("reason"))


def test_ratios_against_the_floor_are_reported(run: tuple[dict[str, Any], str]) -> None:
    """The report's point is alog relative to the floor and the peers, from the same run."""
    targets = run[0]["targets"]
    assert targets["alog_cpu_vs_floor"] > 0
    assert targets["alog_disabled_ns"] > 0
    assert run[0]["contenders"]["stdlib"]["median"]["cpu_vs_alog"] > 0


def test_the_inline_floor_and_each_feature_variant_write_every_event_correctly(
    run: tuple[dict[str, Any], str],
) -> None:
    """The inline floor (no call per event) and alog with each feature on pass the same
    output check as alog: redaction's field carries the censor, fan-out's two files each
    hold every event; each is a row against alog's."""
    contenders = run[0]["contenders"]
    for name in ("floor-inline", *FEATURES):
        entry = contenders[name]
        if name == "alog-otel" and entry["status"] == "unavailable":
            assert importlib.util.find_spec("opentelemetry.sdk") is None
            continue
        assert entry["status"] == "ok", (name, entry.get("reason"), entry.get("problems"))
        assert entry["rounds"][0]["check"]["lines"] == 2000, name
        assert entry["median"]["cpu_vs_alog"] > 0
    assert set(run[0]["targets"]["features"]) <= set(FEATURES)
    assert "| alog-fanout |" in run[1]


def test_a_fanout_row_is_broken_when_its_second_file_misses_a_line(tmp_path: Path) -> None:
    """The fan-out row checks each file it wrote: the first complete, the second a line
    short, and the row is broken, the problem named by the file. A censored field passes
    only where the contender says it is censored."""
    run_module = _load(RUN)
    contenders = _load(ROOT / "benchmarks" / "contenders.py")
    event = {"time": "t", "level": "info", "msg": "request handled", **run_module.FIELDS}
    first = tmp_path / "fanout.log"
    paths = [Path(p) for p in contenders.AlogFanout.outputs(str(first))]
    assert len(paths) == 2
    paths[0].write_text((json.dumps(event) + "\n") * 3)
    paths[1].write_text((json.dumps(event) + "\n") * 2)
    check = run_module.verify_outputs(paths, 3)
    assert not check["correct"]
    assert check["problems"] == [f"{paths[1].name}: 2 lines for 3 events"]
    assert run_module.verify_outputs(paths[:1], 3)["correct"]
    redacted = tmp_path / "r.log"
    redacted.write_text(json.dumps({**event, "path": "[redacted]"}) + "\n")
    assert not run_module.verify_outputs([redacted], 1)["correct"]
    assert run_module.verify_outputs([redacted], 1, contenders.AlogRedact.censored)["correct"]


def test_every_issue_target_is_reported_met_missed_or_not_measured(
    run: tuple[dict[str, Any], str],
) -> None:
    """Each of issue 14's targets has its value, its limit and a verdict in the JSON and a
    line in the report; one whose inputs are missing (pino without node) says so."""
    data, report = run
    checks = {c["name"]: c for c in data["targets"]["checks"]}
    assert {
        "alog_cpu_vs_floor_inline",
        "fastest_peer_cpu_vs_alog",
        "pino_cpu_vs_alog",
        "alog_events_per_s_vs_floor",
        "alog_rss_vs_floor",
        "alog_disabled_ns_vs_noop",
        "alog-levels_disabled_ns_vs_noop",
        "hot_burst_lost",
        "hot_threads_ratio",
        "hot_disabled_four_fields",
    } <= set(checks)
    for check in checks.values():
        assert check["status"] in {"met", "MISSED", "not measured"}, check
        assert check["text"] in report
        if check["status"] != "not measured":
            assert check["value"] is not None
    assert checks["pino_cpu_vs_alog"]["status"] == "not measured"  # not in this run
    assert checks["alog_cpu_vs_floor_inline"]["value"] > 0
    assert checks["hot_burst_lost"]["value"] == 0


def test_the_hot_path_modes_run_from_run_py(run: tuple[dict[str, Any], str]) -> None:
    """run.py runs hot_path.py's burst, threads and disabled modes and reports them."""
    data, report = run
    hot = data["hot_path"]
    assert "errors" not in hot, hot.get("errors")
    assert hot["burst"]["lines"] == hot["burst"]["events"] > 0
    assert hot["threads"]["one_per_s"] > 0
    assert hot["threads"]["eight_per_s"] > 0
    assert hot["disabled"]["four_fields"]["noop_ns"] > 0
    assert "## Hot path" in report


@pytest.mark.parametrize("mode", ["burst", "threads", "disabled"])
def test_hot_path_writes_its_numbers_as_json(mode: str, tmp_path: Path) -> None:
    out = tmp_path / "hot.json"
    args = ["--quick"] + (["--events", "1600"] if mode != "disabled" else [])
    proc = subprocess.run(
        [sys.executable, str(HOT_PATH), mode, *args, "--json", str(out)],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    if mode == "burst":
        assert data["lines"] == data["events"] == 1600
        assert data["lost"] == 0
    elif mode == "threads":
        assert data["ratio"] == data["eight_per_s"] / data["one_per_s"]
    else:
        assert data["one_field"]["ratio"] > 0
    assert mode in proc.stdout


@pytest.mark.timeout(300)  # two runs under valgrind, about 20 s each on this machine
def test_run_py_counts_instructions_per_event_under_valgrind(tmp_path: Path) -> None:
    """run.py runs benchmarks/instructions.py: a count per contender, ratios, a report section
    and the instruction targets among the checks."""
    if shutil.which("valgrind") is None:
        if os.environ.get("CI"):
            pytest.fail("valgrind is not on PATH: .ci/run installs it")
        pytest.skip("valgrind is not on PATH (apt-get install -y valgrind)")
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable, str(RUN), "--quick", "--loggers=floor,alog", "--events=2000",
            "--rounds=1", "--no-stall", "--no-hot-path", f"--json={results}",
            f"--tmpdir={tmp_path}",
        ],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(results.read_text())
    counted = data["instructions"]
    assert counted["events"] == [2000, 4000]
    floor = counted["contenders"]["floor"]["per_event"]
    alog = counted["contenders"]["alog"]["per_event"]
    # Python builds a dict and encodes it: thousands of instructions, never zero or millions.
    assert 3_000 < floor < alog < 100_000, counted
    assert counted["ratios"]["alog_vs_floor"] == round(alog / floor, 3)
    assert "## Instructions per event" in proc.stdout
    assert f"| alog | {alog:,} |" in proc.stdout
    checks = {c["name"]: c for c in data["targets"]["checks"]}
    # No inline floor or picologging in this run: reported, but not measured.
    assert checks["instructions_alog_vs_floor_inline"]["status"] == "not measured"
    assert checks["instructions_picologging_vs_alog"]["status"] == "not measured"


def test_instruction_ratios_and_report_from_counts() -> None:
    """The ratios are the issue's targets in instructions; a contender that failed is shown
    with its error and left out of them."""
    module = _load(INSTRUCTIONS)
    data = {
        "events": [10, 20],
        "contenders": {
            "floor-inline": {"per_event": 1000},
            "floor": {"per_event": 1300},
            "alog": {"per_event": 2000},
            "picologging": {"per_event": 5000},
            "structlog": {"error": "exit 1: boom"},
        },
    }
    data["ratios"] = module.ratios(data["contenders"])
    assert data["ratios"] == {
        "alog_vs_floor_inline": 2.0,
        "alog_vs_floor": 1.538,
        "picologging_vs_alog": 2.5,
        "floor_vs_floor_inline": 1.3,
    }
    lines = module.report(data)
    assert "| alog | 2,000 |" in lines
    assert "| structlog | exit 1: boom |" in lines
    assert "- picologging_vs_alog: 2.50x" in lines


@pytest.mark.parametrize(
    "part", ["call", "dict", "now", "encode", "level-method", "build", "queue"]
)
def test_each_piece_of_the_call_that_instructions_counts_runs(part: str) -> None:
    """``--parts`` runs each piece under valgrind; here each runs on its own (no valgrind,
    which would take minutes for all seven), so that none rots."""
    proc = subprocess.run(
        [sys.executable, str(INSTRUCTIONS), "--part", part, "--small", "2000"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_pieces_report_what_each_adds() -> None:
    """Each piece adds to the row above; alog's level method starts over from the bare call."""
    module = _load(INSTRUCTIONS)
    counts = [100, 300, 500, 900, 150, 700, 1200]
    parts = module.pieces(dict(zip(module.PARTS, counts, strict=True)))
    assert [p["added"] for p in parts.values()] == [None, 200, 200, 400, 50, 550, 500]
    data = {"events": [10, 20], "parts": parts}
    lines = module.report_parts(data)
    assert lines[2].startswith("| call: ") and lines[2].endswith("| 100 | - |")
    assert lines[6].endswith("| 150 | +50 |")  # level-method over the call
    assert lines[8].endswith("| 1,200 | +500 |")  # the queue over the builder


def test_a_process_that_fails_under_valgrind_is_an_error_with_its_last_lines() -> None:
    """A contender or a piece that exits non-zero is reported with its exit status and the
    tail of its stderr, never counted."""
    if shutil.which("valgrind") is None:
        if os.environ.get("CI"):
            pytest.fail("valgrind is not on PATH: .ci/run installs it")
        pytest.skip("valgrind is not on PATH (apt-get install -y valgrind)")
    module = _load(INSTRUCTIONS)
    with pytest.raises(RuntimeError, match=r"^broken: exit 3: .*gone wrong"):
        module._callgrind(
            ["-c", "import sys; print('gone wrong', file=sys.stderr); sys.exit(3)"], "broken"
        )


@pytest.mark.timeout(300)  # fourteen short runs under valgrind
def test_parts_says_which_piece_failed_in_one_line(tmp_path: Path) -> None:
    """A piece that cannot run (here: an alog that does not import) ends ``--parts`` with
    one line naming it and exit status 1, not a traceback."""
    if shutil.which("valgrind") is None:
        if os.environ.get("CI"):
            pytest.fail("valgrind is not on PATH: .ci/run installs it")
        pytest.skip("valgrind is not on PATH (apt-get install -y valgrind)")
    broken = tmp_path / "alog"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('this alog is broken')\n")
    proc = subprocess.run(
        [sys.executable, str(INSTRUCTIONS), "--parts", "--small", "100", "--large", "200"],
        capture_output=True, text=True, timeout=280, check=False, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.startswith("instructions: part ")
    assert "this alog is broken" in proc.stderr
    assert "Traceback" not in proc.stderr.split("\n")[0]
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_instructions_says_so_without_valgrind(tmp_path: Path) -> None:
    """Without valgrind on PATH: a one-line reason and exit status 2; run.py reports the
    section as unavailable and goes on."""
    bare = tmp_path / "bin"
    bare.mkdir()
    env = {**os.environ, "PATH": str(bare)}
    proc = subprocess.run(
        [sys.executable, str(INSTRUCTIONS), "--quick"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "valgrind is not on PATH" in proc.stderr
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable, str(RUN), "--quick", "--loggers=alog", "--events=1000",
            "--rounds=1", "--no-stall", "--no-hot-path", f"--json={results}",
            f"--tmpdir={tmp_path}",
        ],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(results.read_text())["instructions"] == {
        "unavailable": "valgrind is not on PATH"
    }
    assert "- unavailable: valgrind is not on PATH" in proc.stdout


def test_charts_are_drawn_from_a_results_file_and_a_service_results_file(
    run: tuple[dict[str, Any], str], tmp_path: Path
) -> None:
    """charts.py draws the throughput, disabled and stall charts from run.py's results and
    the service chart from service.py's, as PNG files."""
    results = tmp_path / "latest.json"
    results.write_text(json.dumps(run[0]))
    service = tmp_path / "service.json"
    rows = {}
    for loop in ("asyncio", "uvloop"):
        for logger, dest, cpu in (
            ("none", "stdout-file", 100.0),
            ("alog", "stdout-file", 130.0),
            ("alog", "stdout-pipe", 125.0),
            ("alog-filtered", "stdout-file", 110.0),
            ("structlog", "stdout-file", 150.0),
            ("structlog", "stdout-pipe", 140.0),
        ):
            rows[f"{loop}/{logger}/{dest}"] = {
                "loop": loop, "logger": logger, "dest": dest, "status": "ok",
                "median": {"cpu_us_per_request": cpu, "extra_us": cpu - 100.0},
            }  # fmt: skip
    service.write_text(json.dumps({"config": {"requests": 100, "rounds": 1}, "rows": rows}))
    out = tmp_path / "images"
    proc = subprocess.run(
        [sys.executable, str(CHARTS), str(results), "--out", str(out), "--service", str(service)],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("bench-throughput", "bench-disabled", "bench-stall", "bench-service"):
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name


def test_stall_scenario_accounts_for_every_event(run: tuple[dict[str, Any], str]) -> None:
    """Every event alog accepted during the stall is either received by the reader or lost."""
    stall = run[0]["stall"]
    assert {"baseline", "alog", "stdlib-queue", "stdlib-queue-10k"} <= set(stall)
    for name, result in stall.items():
        assert "error" not in result, (name, result)
        assert result["logged"] > 0
        assert result["max_lag_ms_stall"] >= 0
        if result["writes"]:
            assert result["received"] + result["lost"] == result["logged"], name
    assert stall["alog"]["lost"] == stall["alog"]["stats"]["dropped"]


def test_markdown_report_names_the_machine_and_the_command(
    run: tuple[dict[str, Any], str],
) -> None:
    """A figure without its machine and command cannot be reproduced or compared."""
    data, report = run
    assert data["command"] in report
    assert data["machine"]["python"] in report
    assert "| alog |" in report
    assert "## Stall" in report


def test_every_python_contender_is_in_the_smoke_run() -> None:
    """A contender added to contenders.py but not to this run would go untested."""
    contenders = _load(ROOT / "benchmarks" / "contenders.py")
    python = {n for n, c in contenders.CONTENDERS.items() if not c.external}
    assert python == set(PYTHON.split(","))


# --- pino -------------------------------------------------------------------------------------


def test_pino_writes_every_event_correctly(tmp_path: Path) -> None:
    """pino runs in both modes when node is here, and its file passes the same check."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH: pino is an optional contender (.ci/run installs no node)")
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable, str(RUN), "--loggers=pino,pino-destination", "--events=2000",
            "--rounds=1", "--no-stall", f"--json={results}", f"--tmpdir={tmp_path}",
        ],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    contenders = json.loads(results.read_text())["contenders"]
    reason = contenders["pino"].get("reason", "")
    if (
        contenders["pino"]["status"] == "unavailable"
        and "npm ci" in reason
        and not os.environ.get("CI")
    ):
        pytest.skip(f"pino could not be installed here: {reason}")
    for name in ("pino", "pino-destination"):
        entry = contenders[name]
        assert entry["status"] == "ok", (name, entry.get("reason"), entry.get("problems"))
        assert entry["rounds"][0]["check"]["lines"] == 2000
        assert entry["rounds"][0]["stats"]["mode"] == (
            "transport" if name == "pino" else "destination"
        )
        assert entry["median"]["cpu_us_per_event"] > 0
    assert "| pino |" in proc.stdout


def test_pino_is_unavailable_without_node(tmp_path: Path) -> None:
    """Without node on PATH, pino is reported unavailable with the reason, and the run goes on."""
    results = tmp_path / "results.json"
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    proc = subprocess.run(
        [
            sys.executable, str(RUN), "--loggers=pino,floor", "--events=500", "--rounds=1",
            "--no-stall", "--disabled-calls=5000", f"--json={results}", f"--tmpdir={tmp_path}",
        ],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        env={**os.environ, "PATH": str(bare)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    contenders = json.loads(results.read_text())["contenders"]
    assert contenders["pino"] == {
        "description": contenders["pino"]["description"],
        "rounds": [],
        "disabled": [],
        "status": "unavailable",
        "reason": "node is not on PATH",
    }
    assert contenders["floor"]["status"] == "ok"
    assert "| pino | - | - | - | - | - | - | unavailable: node is not on PATH | - |" in proc.stdout


# --- the service benchmark --------------------------------------------------------------------


def _service(tmp: Path, *args: str) -> tuple[dict[str, Any], str]:
    results = tmp / "service.json"
    proc = subprocess.run(
        [
            sys.executable, str(RUN), "--scenario=service", "--requests=100", "--warmup=10",
            "--rounds=1", "--concurrency=8", f"--json={results}", f"--tmpdir={tmp}", *args,
        ],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    data: dict[str, Any] = json.loads(results.read_text())
    return data, proc.stdout


# Each run is one test (a module fixture would run once per xdist worker that needs it).


def test_service_alog_delivers_every_line_to_stdout_and_reports_the_middleware_cost(
    tmp_path: Path,
) -> None:
    """Each of 110 requests' three lines reached stdout as a file and as a pipe on asyncio;
    the report gives the filtered middleware's cost over no logging."""
    data, report = _service(
        tmp_path,
        "--loops=asyncio",
        "--loggers=none,alog,alog-filtered",
        "--dests=stdout-file,stdout-pipe",
    )
    rows = data["rows"]
    assert set(rows) == {
        "asyncio/none/stdout-file",
        "asyncio/alog-filtered/stdout-file",
        "asyncio/alog/stdout-file",
        "asyncio/alog/stdout-pipe",
    }
    none = rows["asyncio/none/stdout-file"]
    for key, row in rows.items():
        assert row["status"] == "ok", (key, row.get("reason"), row.get("problems"))
        (one,) = row["rounds"]
        writes = row["logger"] == "alog"
        assert one["check"] == {
            "lines": 330 if writes else 0, "correct": True, "problems": [], "sample": None
        }, key  # fmt: skip
        assert one["statuses"] == {"200": 100}
        assert one["cpu_us_per_request"] > 0
        assert row["median"]["extra_us"] == pytest.approx(
            one["cpu_us_per_request"] - none["median"]["cpu_us_per_request"]
        )
    assert (
        data["targets"]["asyncio/middleware_us"]
        == (rows["asyncio/alog-filtered/stdout-file"]["median"]["extra_us"])
    )
    assert "alog's middleware and calls, every call filtered by level" in report
    assert data["command"] in report


def test_service_alog_delivers_every_line_to_a_file_and_over_tcp(tmp_path: Path) -> None:
    """alog.File and alog.TCP (to the harness's 127.0.0.1 receiver) get every line too."""
    data, report = _service(tmp_path, "--loops=asyncio", "--loggers=alog", "--dests=file,tcp")
    assert set(data["rows"]) == {"asyncio/alog/file", "asyncio/alog/tcp"}
    for key, row in data["rows"].items():
        assert row["status"] == "ok", (key, row.get("reason"), row.get("problems"))
        assert row["rounds"][0]["check"]["lines"] == 330, key
    assert "| alog | alog.TCP -> 127.0.0.1 receiver |" in report


def _peers_delivered(data: dict[str, Any], expected_rows: set[str]) -> None:
    """Every row ran and checked out, except peers whose package is not installed here."""
    assert set(data["rows"]) == expected_rows
    for key, row in data["rows"].items():
        if row["status"] == "unavailable":
            missing = row["reason"].removeprefix("not installed: ").split(", ")
            assert all(importlib.util.find_spec(m) is None for m in missing), key
            continue
        assert row["status"] == "ok", (key, row.get("reason"), row.get("problems"))
        lines = 0 if row["logger"] == "none" else 330
        assert row["rounds"][0]["check"]["lines"] == lines, key


def test_service_peers_deliver_every_line_to_a_pipe_and_alog_is_compared_with_structlog(
    tmp_path: Path,
) -> None:
    """On uvloop, every installed peer wrote each request's three lines to a stdout pipe, and
    the report gives alog's extra CPU as a ratio of structlog's."""
    loggers = ("none", "alog", "structlog", "stdlib", "loguru")
    data, report = _service(
        tmp_path, "--loops=uvloop", f"--loggers={','.join(loggers)}", "--dests=stdout-pipe"
    )
    _peers_delivered(
        data,
        {"uvloop/none/stdout-file"} | {f"uvloop/{n}/stdout-pipe" for n in loggers[1:]},
    )
    assert data["rows"]["uvloop/stdlib/stdout-pipe"]["status"] == "ok"
    if importlib.util.find_spec("structlog") is None:  # the bench extra is not installed
        assert data["rows"]["uvloop/structlog/stdout-pipe"]["status"] == "unavailable"
        return
    goal = data["targets"]["uvloop/stdout-pipe"]
    if "ratio" not in goal:  # 100 requests: structlog's extra can be within the noise
        assert goal["structlog"] == "no extra CPU measured", goal
        return
    assert goal["ratio"] >= 0, goal
    assert isinstance(goal["ok"], bool), goal
    assert "alog's extra CPU per request" in report


def test_service_peers_deliver_every_line_to_their_own_file_writers(tmp_path: Path) -> None:
    """structlog's BytesLogger on a file, logging's FileHandler and loguru's file sink."""
    loggers = ("structlog", "stdlib", "loguru")
    data, _ = _service(
        tmp_path, "--loops=asyncio", f"--loggers={','.join(loggers)}", "--dests=file"
    )
    _peers_delivered(data, {f"asyncio/{n}/file" for n in loggers})


def test_service_check_finds_missing_duplicate_and_invalid_lines(tmp_path: Path) -> None:
    """The line check must fail a run that lost, repeated or mangled a line."""
    service = _load(SERVICE)
    good = [
        json.dumps({"msg": m, "request_id": f"bench-{n}", "level": "info"})
        for n in range(3)
        for m in ("item requested", "item loaded", "request")
    ]
    path = tmp_path / "out.log"
    path.write_text("\n".join(good) + "\n")
    assert service.verify(path, 3)["correct"]
    # loguru nests its fields: {"record": {"extra": {...}, "message": ...}}.
    nested = [
        json.dumps({"text": m, "record": {"message": m, "extra": {"request_id": "bench-0"}}})
        for m in ("item requested", "item loaded", "request")
    ]
    path.write_text("\n".join(nested) + "\n")
    assert service.verify(path, 1)["correct"]
    for lines, problem in (
        (good[:-1], "1 requests without their three lines"),
        ([*good, good[0]], "1 duplicate lines"),
        ([*good[:-1], good[-1][:-5]], "1 lines: invalid JSON"),
        ([*good, json.dumps({"msg": "other"})], "1 lines: not a request's event"),
    ):
        path.write_text("\n".join(lines) + "\n")
        result = service.verify(path, 3)
        assert not result["correct"]
        assert problem in result["problems"], result
