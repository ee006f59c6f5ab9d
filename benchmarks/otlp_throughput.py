"""Events per second through ``alog.otel.OTLP`` to a loopback OTLP/HTTP receiver.

The receiver runs in a child process (so it does not share the GIL with the logger) and
decodes every request with opentelemetry-proto, as a Collector would. The figure is events
divided by the wall time from ``alog.run`` until the pipeline closed with every record
accepted; the log loop yields every 100 calls. Run: ``python benchmarks/otlp_throughput.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import multiprocessing
import time
from multiprocessing.connection import Connection

import alog
from alog.otel import OTLP

log = alog.get_logger("bench")


def serve(ready: Connection) -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ExportLogsServiceRequest.FromString(body)  # decoded, as a Collector would
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    ready.send(server.server_address[1])
    server.serve_forever()


async def run(port: int, events: int) -> tuple[float, float, alog.Statistics]:
    destination = OTLP(f"http://127.0.0.1:{port}/v1/logs")
    started = time.perf_counter()
    cpu = time.process_time()
    async with alog.run(
        destination, fields={"service.name": "bench"}, max_events=events + 10, max_bytes=1 << 30
    ) as pipeline:
        for i in range(events):
            log.info("request handled", method="GET", path="/items", status=200, duration_ms=1.5)
            if i % 100 == 99:
                await asyncio.sleep(0)
    return time.perf_counter() - started, time.process_time() - cpu, pipeline.statistics()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ready_r, ready_w = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=serve, args=(ready_w,), daemon=True)
    child.start()
    port = ready_r.recv()
    try:
        for _ in range(args.rounds):
            wall, cpu, stats = asyncio.run(run(port, args.events))
            print(
                f"{args.events} events: {args.events / wall:,.0f} events/s, "
                f"{cpu * 1e9 / args.events:,.0f} ns CPU per event in the app's process; "
                f"written {stats.written}, undelivered {stats.undelivered}, "
                f"dropped {stats.dropped}, in {stats.batches} batches"
            )
    finally:
        child.kill()


if __name__ == "__main__":
    main()
