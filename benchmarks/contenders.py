"""The loggers under test, each in its fastest realistic production JSON configuration.

Every contender logs the same event: the message "request handled" with the fields
``method``, ``path``, ``status`` and ``duration_ms``, plus the time and the level (and the logger
name where the framework adds it by itself), as one JSON line.

A contender's ``burst(k)`` makes ``k`` calls written as an application writes them
(``log.info(...)`` with the attribute looked up at each call), so the loop around the calls costs
every contender the same. ``burst_seq(k, seq)`` is the stall scenario's variant: the same event
with a ``seq`` field so that the reader can count what was lost.

Imports happen in ``load()``, before any clock starts: the harness measures logging, not
interpreter start-up. Anything a contender does lazily on first use is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import logging.handlers
import os
import queue
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MSG = "request handled"
FIELDS: dict[str, Any] = {"method": "GET", "path": "/api/items", "status": 200, "duration_ms": 12.5}
LOGGER_NAME = "bench"

Burst = Callable[[int], None]
BurstSeq = Callable[[int, int], None]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False


class Contender:
    """One logger configuration. Subclasses fill in ``burst`` and ``burst_seq`` in ``start``."""

    name: str = ""
    description: str = ""
    requires: tuple[str, ...] = ()
    # Can it be run with a destination that stops accepting writes (the stall scenario)?
    stall: bool = False
    # Does it have a level threshold that makes a call cheap when disabled?
    has_disabled: bool = True
    # Does it write anything? (Only the stall scenario's baseline does not.)
    writes: bool = True
    burst: Burst
    burst_seq: BurstSeq
    # The disabled-call scenario's second variant, for kwargs-style APIs: one field only.
    burst_one_field: Burst | None = None
    # A contender that is not Python runs this command instead of worker.py (throughput only).
    external: bool = False
    # Fields the output carries as the censor ("[redacted]") instead of their value.
    censored: frozenset[str] = frozenset()

    @classmethod
    def outputs(cls, path: str) -> list[str]:
        """Every file a throughput run writes, each of which must hold every event."""
        return [path]

    @classmethod
    def missing(cls) -> list[str]:
        """The required modules that are not importable in this environment."""
        return [m for m in cls.requires if not _importable(m)]

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this contender cannot run here (installing what it can first), or None."""
        if missing := cls.missing():
            return f"not installed: {', '.join(missing)}"
        return None

    @classmethod
    def command(cls, events: int, path: str, result: str) -> list[str]:
        """The throughput command of an ``external`` contender."""
        raise NotImplementedError

    def load(self) -> None:
        """Import what the contender needs (outside the measured region)."""

    async def start(self, path: str | None, *, level: str) -> None:
        """Configure the logger; ``path`` is a file, or ``None`` for stdout."""
        raise NotImplementedError

    async def stop(self) -> dict[str, Any]:
        """Flush and close everything; return the logger's own statistics, if any."""
        return {}


def _keyword_bursts(log: Any) -> tuple[Burst, BurstSeq, Burst]:
    """The workload for loggers called as ``log.info(msg, **fields)`` (floor, alog, structlog,
    loguru): each closure calls ``log.info`` directly, as an application writes it."""

    def burst(k: int) -> None:
        for _ in range(k):
            log.info(
                "request handled", method="GET", path="/api/items", status=200, duration_ms=12.5
            )

    def burst_seq(k: int, seq: int) -> None:
        for s in range(seq, seq + k):
            log.info(
                "request handled",
                method="GET",
                path="/api/items",
                status=200,
                duration_ms=12.5,
                seq=s,
            )

    def burst_one_field(k: int) -> None:
        for _ in range(k):
            log.info("request handled", status=200)

    return burst, burst_seq, burst_one_field


def _level_no(level: str) -> int:
    return logging.INFO if level == "info" else logging.WARNING


# --- the floor ----------------------------------------------------------------------------------


class _FloorLogger:
    """No framework: one reused msgspec encoder into one reused buffer, 1 MiB writes."""

    __slots__ = ("_buf", "_encode_into", "_fd", "_threshold")

    def __init__(self, fd: int, threshold: int, encoder: Any) -> None:
        self._fd = fd
        self._threshold = threshold
        self._buf = bytearray()
        self._encode_into = encoder.encode_into

    def info(self, msg: str, /, **fields: Any) -> None:
        if self._threshold > logging.INFO:
            return
        buf = self._buf
        self._encode_into(
            {
                "time": datetime.now(UTC),
                "level": "info",
                "logger": LOGGER_NAME,
                "msg": msg,
                **fields,
            },
            buf,
            -1,
        )
        buf += b"\n"
        if len(buf) >= 1 << 20:
            self.flush()

    def flush(self) -> None:
        view = memoryview(self._buf)
        while view:
            view = view[os.write(self._fd, view) :]
        view.release()
        self._buf.clear()


class Floor(Contender):
    name = "floor"
    description = "no framework: msgspec encode_into a reused bytearray, 1 MiB batched os.write"
    requires = ("msgspec",)

    def load(self) -> None:
        import msgspec

        self._encoder = msgspec.json.Encoder()

    async def start(self, path: str | None, *, level: str) -> None:
        assert path is not None
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        log = self._log = _FloorLogger(self._fd, _level_no(level), self._encoder)

        self.burst, _, _ = _keyword_bursts(log)

    async def stop(self) -> dict[str, Any]:
        self._log.flush()
        os.close(self._fd)
        return {}


class FloorInline(Contender):
    name = "floor-inline"
    description = (
        "the floor's work inline in the loop, no function call per event: dict display, "
        "encode_into a reused bytearray, 1 MiB batched os.write"
    )
    requires = ("msgspec",)
    has_disabled = False  # there is no call to disable

    def load(self) -> None:
        import msgspec

        self._encoder = msgspec.json.Encoder()

    async def start(self, path: str | None, *, level: str) -> None:
        assert path is not None
        fd = self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        buf = self._buf = bytearray()
        encode_into = self._encoder.encode_into
        now = datetime.now
        write = os.write

        def burst(k: int) -> None:
            for _ in range(k):
                encode_into(
                    {
                        "time": now(UTC),
                        "level": "info",
                        "logger": LOGGER_NAME,
                        "msg": "request handled",
                        "method": "GET",
                        "path": "/api/items",
                        "status": 200,
                        "duration_ms": 12.5,
                    },
                    buf,
                    -1,
                )
                buf.append(10)
                if len(buf) >= 1 << 20:
                    view = memoryview(buf)
                    while view:
                        view = view[write(fd, view) :]
                    view.release()
                    buf.clear()

        self.burst = burst

    async def stop(self) -> dict[str, Any]:
        view = memoryview(self._buf)
        while view:
            view = view[os.write(self._fd, view) :]
        view.release()
        os.close(self._fd)
        return {}


# --- alog ---------------------------------------------------------------------------------------


class Alog(Contender):
    name = "alog"
    description = "alog.run(alog.File(path), max_events=1_000_000, max_bytes=256 MiB)"
    requires = ("alog",)
    stall = True

    def load(self) -> None:
        import alog

        self._alog = alog

    def options(self, path: str, level: str) -> tuple[list[Any], dict[str, Any]]:
        """The destinations and the keyword arguments of ``alog.run`` (a feature variant's)."""
        return [self._alog.File(path)], {}

    async def start(self, path: str | None, *, level: str) -> None:
        alog = self._alog
        self._stack = contextlib.AsyncExitStack()
        if path is None:
            manager = alog.run(
                alog.Stdout(), level=level, write_timeout=30.0, max_bytes=8 * 1024 * 1024
            )
        else:
            destinations, options = self.options(path, level)
            manager = alog.run(
                *destinations,
                level=level,
                max_events=1_000_000,
                max_bytes=256 * 1024 * 1024,
                **options,
            )
        self._pipeline = await self._stack.enter_async_context(manager)
        log = alog.get_logger(LOGGER_NAME)

        self.burst, self.burst_seq, self.burst_one_field = _keyword_bursts(log)

    async def stop(self) -> dict[str, Any]:
        await self._stack.aclose()
        stats = self._pipeline.statistics()
        names = getattr(type(stats), "__struct_fields__", None) or getattr(
            stats, "__dataclass_fields__", {}
        )
        return {name: getattr(stats, name) for name in names}


# alog with one feature on: what the feature costs is its row against alog's, same run.


def _add_region(event: dict[str, object]) -> dict[str, object]:
    event["region"] = "eu-west-1"
    return event


class AlogProcessors(Alog):
    name = "alog-processors"
    description = "alog + one processor that adds a field (processors=[...])"
    stall = False
    has_disabled = False

    def options(self, path: str, level: str) -> tuple[list[Any], dict[str, Any]]:
        return [self._alog.File(path)], {"processors": [_add_region]}


class AlogRedact(Alog):
    name = "alog-redact"
    description = 'alog + redact=["path", "headers.authorization"] (one field the event carries)'
    stall = False
    has_disabled = False
    censored = frozenset({"path"})

    def options(self, path: str, level: str) -> tuple[list[Any], dict[str, Any]]:
        return [self._alog.File(path)], {"redact": ["path", "headers.authorization"]}


class AlogOtel(Alog):
    name = "alog-otel"
    description = "alog + otel=True, every call inside a recording OpenTelemetry SDK span"
    stall = False
    has_disabled = False
    requires = ("alog", "opentelemetry.sdk")

    def load(self) -> None:
        super().load()
        from opentelemetry.sdk.trace import TracerProvider

        self._tracer = TracerProvider().get_tracer("bench")

    def options(self, path: str, level: str) -> tuple[list[Any], dict[str, Any]]:
        return [self._alog.File(path)], {"otel": True}

    async def start(self, path: str | None, *, level: str) -> None:
        await super().start(path, level=level)
        # Entered in the caller's task (start is awaited, not spawned): the bursts run in it.
        self._stack.enter_context(self._tracer.start_as_current_span("request"))


class AlogFanout(Alog):
    name = "alog-fanout"
    description = "alog + a second File destination (fan-out: every event to both files)"
    stall = False
    has_disabled = False

    @classmethod
    def outputs(cls, path: str) -> list[str]:
        return [path, path + ".2"]

    def options(self, path: str, level: str) -> tuple[list[Any], dict[str, Any]]:
        return [self._alog.File(p) for p in self.outputs(path)], {}


class AlogLevels(Alog):
    name = "alog-levels"
    description = "alog + levels per logger (loggers={...}, three loggers named)"
    stall = False  # its disabled call is the one with levels per logger configured

    def options(self, path: str, level: str) -> tuple[list[Any], dict[str, Any]]:
        # The bench logger at the run's level (the disabled scenario's is "warning"), its
        # children and another logger at levels of their own.
        loggers = {LOGGER_NAME: level, f"{LOGGER_NAME}.db": "debug", "other": "error"}
        return [self._alog.File(path)], {"loggers": loggers}


FEATURES = ("alog-processors", "alog-redact", "alog-otel", "alog-fanout", "alog-levels")

# --- stdlib logging -----------------------------------------------------------------------------

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class StdlibJsonFormatter(logging.Formatter):
    """A JSON formatter as python-json-logger writes one: every `extra` key becomes a field."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        event.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        return json.dumps(event, separators=(",", ":"))


def _stdlib_handler(path: str | None) -> logging.Handler:
    handler: logging.Handler
    if path is None:
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(StdlibJsonFormatter())
    return handler


def _stdlib_bursts(log: logging.Logger) -> tuple[Burst, BurstSeq]:
    def burst(k: int) -> None:
        for _ in range(k):
            log.info(
                "request handled",
                extra={"method": "GET", "path": "/api/items", "status": 200, "duration_ms": 12.5},
            )

    def burst_seq(k: int, seq: int) -> None:
        for s in range(seq, seq + k):
            log.info(
                "request handled",
                extra={
                    "method": "GET",
                    "path": "/api/items",
                    "status": 200,
                    "duration_ms": 12.5,
                    "seq": s,
                },
            )

    return burst, burst_seq


class Stdlib(Contender):
    name = "stdlib"
    description = "logging + JSON formatter (json.dumps, extra= fields) + FileHandler"

    async def start(self, path: str | None, *, level: str) -> None:
        log = logging.getLogger(LOGGER_NAME)
        log.propagate = False
        log.setLevel(_level_no(level))
        self._handler = _stdlib_handler(path)
        log.addHandler(self._handler)
        self.burst, self.burst_seq = _stdlib_bursts(log)

    async def stop(self) -> dict[str, Any]:
        self._handler.close()
        return {}


class StdlibQueue(Contender):
    name = "stdlib-queue"
    description = "logging QueueHandler(SimpleQueue) + QueueListener thread -> JSON FileHandler"
    stall = True
    maxsize = 0

    async def start(self, path: str | None, *, level: str) -> None:
        log = logging.getLogger(LOGGER_NAME)
        log.propagate = False
        log.setLevel(_level_no(level))
        q: queue.SimpleQueue[Any] | queue.Queue[Any]
        q = queue.Queue(self.maxsize) if self.maxsize else queue.SimpleQueue()
        self._handler = _stdlib_handler(path)
        log.addHandler(logging.handlers.QueueHandler(q))
        self._listener = logging.handlers.QueueListener(q, self._handler)
        self._listener.start()
        self.burst, self.burst_seq = _stdlib_bursts(log)

    async def stop(self) -> dict[str, Any]:
        self._listener.stop()
        self._handler.close()
        return {}


class StdlibQueueBounded(StdlibQueue):
    name = "stdlib-queue-10k"
    description = "as stdlib-queue with queue.Queue(maxsize=10_000): drops when full"
    maxsize = 10_000


# --- structlog ----------------------------------------------------------------------------------


class Structlog(Contender):
    name = "structlog"
    description = (
        "make_filtering_bound_logger + add_log_level + TimeStamper(iso, utc) + "
        "JSONRenderer(orjson.dumps) + BytesLoggerFactory, cache_logger_on_first_use, "
        "a bound logger from get_logger().bind()"
    )
    requires = ("structlog", "orjson")
    stall = True  # a synchronous write: run it to show what a blocked stdout does to the loop

    def load(self) -> None:
        import orjson
        import structlog

        self._structlog = structlog
        self._orjson = orjson

    async def start(self, path: str | None, *, level: str) -> None:
        structlog = self._structlog
        # Opening the file is set-up, before the measured calls: blocking here is harmless.
        self._file = open(path, "wb") if path is not None else sys.stdout.buffer  # noqa: SIM115, ASYNC230
        structlog.configure(
            cache_logger_on_first_use=True,
            wrapper_class=structlog.make_filtering_bound_logger(_level_no(level)),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(serializer=self._orjson.dumps),
            ],
            logger_factory=structlog.BytesLoggerFactory(file=self._file),
        )
        # A concrete bound logger, as a request handler holds one after bind(): calls through the
        # module-level lazy proxy cost about 2 us more each, even below the level threshold.
        log = structlog.get_logger().bind()

        self.burst, self.burst_seq, self.burst_one_field = _keyword_bursts(log)

    async def stop(self) -> dict[str, Any]:
        self._file.flush()
        if self._file is not sys.stdout.buffer:
            self._file.close()
        return {}


# --- loguru -------------------------------------------------------------------------------------


class Loguru(Contender):
    name = "loguru"
    description = "logger.add(path, serialize=True)"
    requires = ("loguru",)
    enqueue = False

    def load(self) -> None:
        from loguru import logger

        self._logger = logger

    async def start(self, path: str | None, *, level: str) -> None:
        log = self._logger
        log.remove()
        log.add(
            path if path is not None else sys.stdout,
            serialize=True,
            enqueue=self.enqueue,
            level=level.upper(),
        )

        self.burst, self.burst_seq, _ = _keyword_bursts(log)

    async def stop(self) -> dict[str, Any]:
        await self._logger.complete()
        self._logger.remove()
        return {}


class LoguruEnqueue(Loguru):
    name = "loguru-enqueue"
    description = "logger.add(path, serialize=True, enqueue=True)"
    enqueue = True
    stall = True


# --- aiologger ----------------------------------------------------------------------------------


class Aiologger(Contender):
    name = "aiologger"
    description = "JsonLogger(flatten=True) + AsyncFileHandler + ExtendedJsonFormatter"
    requires = ("aiologger", "aiofiles")
    stall = True

    def load(self) -> None:
        from aiologger.formatters.json import ExtendedJsonFormatter
        from aiologger.handlers.files import AsyncFileHandler
        from aiologger.levels import LogLevel
        from aiologger.loggers.json import JsonLogger

        self._classes = (JsonLogger, AsyncFileHandler, ExtendedJsonFormatter, LogLevel)

    async def start(self, path: str | None, *, level: str) -> None:
        json_logger, file_handler, formatter, log_level = self._classes
        lvl = log_level.INFO if level == "info" else log_level.WARNING
        if path is None:
            log = json_logger.with_default_handlers(name=LOGGER_NAME, level=lvl, flatten=True)
        else:
            log = json_logger(name=LOGGER_NAME, level=lvl, flatten=True)
            handler = file_handler(filename=path, mode="w")
            handler.formatter = formatter()
            log.add_handler(handler)
        self._log = log

        def burst(k: int) -> None:
            for _ in range(k):
                log.info(
                    "request handled",
                    extra={
                        "method": "GET",
                        "path": "/api/items",
                        "status": 200,
                        "duration_ms": 12.5,
                    },
                )

        def burst_seq(k: int, seq: int) -> None:
            for s in range(seq, seq + k):
                log.info(
                    "request handled",
                    extra={
                        "method": "GET",
                        "path": "/api/items",
                        "status": 200,
                        "duration_ms": 12.5,
                        "seq": s,
                    },
                )

        self.burst = burst
        self.burst_seq = burst_seq

    async def stop(self) -> dict[str, Any]:
        # Each call is a task; shutdown() does not wait for the pending ones (their lines are
        # lost, or written to a closed file). Generously, wait for them first, as an application
        # could by keeping every task that log.info() returns.
        me = asyncio.current_task()
        while pending := [t for t in asyncio.all_tasks() if t is not me]:
            await asyncio.wait(pending)
        await self._log.shutdown()
        return {}


# --- picologging --------------------------------------------------------------------------------


class Picologging(Contender):
    name = "picologging"
    description = (
        "picologging Logger + FileHandler + orjson formatter; fields passed as a mapping argument "
        "because picologging 0.9 drops extra="
    )
    requires = ("picologging", "orjson")

    def load(self) -> None:
        import orjson
        import picologging

        self._pico = picologging
        dumps = orjson.dumps

        class Formatter(picologging.Formatter):  # type: ignore[misc]
            def format(self, record: Any) -> str:
                event = {
                    "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                    "level": record.levelname,
                    "logger": record.name,
                    "msg": record.msg,
                }
                args = record.args
                if isinstance(args, dict):
                    event.update(args)
                return dumps(event).decode()

        self._formatter = Formatter

    async def start(self, path: str | None, *, level: str) -> None:
        pico = self._pico
        assert path is not None
        log = pico.getLogger(LOGGER_NAME)
        log.propagate = False
        log.setLevel(pico.INFO if level == "info" else pico.WARNING)
        self._handler = pico.FileHandler(path, mode="w")
        self._handler.setFormatter(self._formatter())
        log.addHandler(self._handler)

        def burst(k: int) -> None:
            for _ in range(k):
                log.info(
                    "request handled",
                    {"method": "GET", "path": "/api/items", "status": 200, "duration_ms": 12.5},
                )

        self.burst = burst

    async def stop(self) -> dict[str, Any]:
        self._handler.flush()
        self._handler.close()
        return {}


# --- pino (Node.js) ---------------------------------------------------------------------------

NODE_DIR = Path(__file__).resolve().parent / "node"
NPM_INSTALL = ("npm", "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund")


def node_ready() -> str | None:
    """Why pino cannot run here, or None; runs ``npm ci`` once if node_modules is missing.

    Locked, so that parallel runs (the smoke tests under xdist) install it only once.
    """
    if shutil.which("node") is None:
        return "node is not on PATH"
    if (NODE_DIR / "node_modules" / "pino" / "package.json").exists():
        return None
    if shutil.which("npm") is None:
        return "npm is not on PATH (needed once: npm ci --prefix benchmarks/node)"
    import fcntl

    with (NODE_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (NODE_DIR / "node_modules" / "pino" / "package.json").exists():
            return None
        print("installing pino: " + " ".join(NPM_INSTALL), file=sys.stderr, flush=True)
        try:
            proc = subprocess.run(NPM_INSTALL, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return "npm ci --prefix benchmarks/node timed out"
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            return f"npm ci --prefix benchmarks/node failed: {tail}"
    return None


class Pino(Contender):
    name = "pino"
    description = (
        "pino 10 (Node.js) pino.transport({target: 'pino/file'}): the file written by a worker "
        "thread; benchmarks/node/bench.js"
    )
    external = True
    has_disabled = False
    mode = "transport"

    @classmethod
    def unavailable(cls) -> str | None:
        return node_ready()

    @classmethod
    def command(cls, events: int, path: str, result: str) -> list[str]:
        node = shutil.which("node") or "node"
        return [
            node, str(NODE_DIR / "bench.js"), "--mode", cls.mode, "--events", str(events),
            "--path", path, "--result", result,
        ]  # fmt: skip


class PinoDestination(Pino):
    name = "pino-destination"
    description = "pino 10 (Node.js) pino.destination({sync: false}): sonic-boom on the main thread"
    mode = "destination"


# --- the baseline of the stall scenario -------------------------------------------------------


class Baseline(Contender):
    name = "baseline"
    description = "no logging: the same bursts call a do-nothing method (the machine's own lag)"
    stall = True
    has_disabled = False
    writes = False

    async def start(self, path: str | None, *, level: str) -> None:
        class Nothing:
            def info(self, msg: str, /, **fields: object) -> None:
                pass

        log = Nothing()

        def burst_seq(k: int, seq: int) -> None:
            for s in range(seq, seq + k):
                log.info(
                    "request handled",
                    method="GET",
                    path="/api/items",
                    status=200,
                    duration_ms=12.5,
                    seq=s,
                )

        self.burst_seq = burst_seq


CONTENDERS: dict[str, type[Contender]] = {
    c.name: c
    for c in (
        Alog,
        AlogProcessors,
        AlogRedact,
        AlogOtel,
        AlogFanout,
        AlogLevels,
        Floor,
        FloorInline,
        Structlog,
        Picologging,
        Stdlib,
        StdlibQueue,
        StdlibQueueBounded,
        Loguru,
        LoguruEnqueue,
        Aiologger,
        Pino,
        PinoDestination,
        Baseline,
    )
}
# The throughput table: every contender except the bounded stdlib queue, which only differs from
# stdlib-queue when the queue fills up (the stall scenario).
THROUGHPUT = [n for n in CONTENDERS if n not in ("stdlib-queue-10k", "baseline")]
STALL = [n for n, c in CONTENDERS.items() if c.stall]
