"""The service benchmark's load generator: HTTP/1.1 keep-alive GETs over raw sockets.

    python benchmarks/service_load.py --port 8000 --requests 20000 --concurrency 32 \
        --first-id 0 --result load.json

Each of ``--concurrency`` connections sends one request at a time and reads the whole
response before the next (``Content-Length`` framing, as uvicorn answers a JSON endpoint).
Request ``n`` is ``GET /items/<n % 1000>`` with ``X-Request-ID: bench-<first-id + n>``, so
that the harness can find every line a request logged. The result is a JSON object: wall
time, requests/s, latency percentiles, status counts and errors. It runs in its own process
(on uvloop when installed) so that its CPU is not the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

_HEADER_END = b"\r\n\r\n"


def request_bytes(n: int, request_id: int) -> bytes:
    return (
        f"GET /items/{n % 1000} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-Request-ID: bench-{request_id}\r\n\r\n"
    ).encode("ascii")


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    raise ValueError("response without Content-Length: " + head[:200].decode("latin-1"))


async def _connection(
    port: int, todo: list[int], first_id: int, latencies: list[float], statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    try:
        while todo:
            n = todo.pop()
            started = clock()
            writer.write(request_bytes(n, first_id + n))
            head = await reader.readuntil(_HEADER_END)
            await reader.readexactly(_content_length(head))
            latencies.append(clock() - started)
            status = int(head[9:12])
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()
        await writer.wait_closed()


async def load(port: int, requests: int, concurrency: int, first_id: int) -> dict[str, Any]:
    todo = list(range(requests - 1, -1, -1))  # popped from the end: request 0 goes first
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            _connection(port, todo, first_id, latencies, statuses)
            for _ in range(min(concurrency, requests))
        ),
        return_exceptions=True,
    )
    wall = time.perf_counter() - started
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    latencies.sort()

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1e3

    return {
        "requests": requests,
        "completed": len(latencies),
        "concurrency": concurrency,
        "wall_s": wall,
        "requests_per_s": len(latencies) / wall if wall else 0.0,
        "latency_ms_p50": pct(0.50),
        "latency_ms_p99": pct(0.99),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--first-id", type=int, default=0)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        runner: Any = asyncio.run
    else:
        runner = uvloop.run
    result = runner(load(args.port, args.requests, args.concurrency, args.first_id))
    with open(args.result, "w") as f:
        json.dump(result, f)
    sys.exit(0 if result["completed"] == args.requests and not result["errors"] else 1)


if __name__ == "__main__":
    main()
