"""Draw the benchmark charts for docs/performance.md from a results file of run.py.

    .venv-bench/bin/python benchmarks/charts.py [benchmarks/results/latest.json] [--out docs/images]
        [--service benchmarks/results/service-latest.json]

The service chart (bench-service.png) is drawn when the service results file exists.

matplotlib comes with the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt  # after mpl.use: the backend is chosen before pyplot loads

HERE = Path(__file__).resolve().parent
ALOG = "#d1495b"
FLOOR = "#8d99ae"
PEER = "#2e86ab"
PALETTE = ["#2e86ab", "#f18f01", "#3b8b5a", "#6a4c93", "#8d6e63", "#e0a800"]


def _colour(name: str) -> str:
    if name.startswith("alog"):
        return ALOG
    return FLOOR if name.startswith("floor") else PEER


def throughput(data: dict[str, Any], out: Path) -> Path:
    entries = {n: e for n, e in data["contenders"].items() if e.get("status") in ("ok", "broken")}
    ok = {n: e["median"] for n, e in entries.items() if e["status"] == "ok"}
    order = sorted(ok, key=lambda n: ok[n]["cpu_us_per_event"], reverse=True)
    broken = [n for n, e in entries.items() if e["status"] == "broken"]
    panels = [
        ("cpu_us_per_event", "CPU per event, end to end (us, log scale)", 1.0, True),
        ("loop_ns_per_call", "time per call on the event loop (us, log scale)", 1e-3, True),
        ("events_per_s", "events per second until the file is complete (thousands)", 1e-3, False),
        ("peak_rss", "peak RSS (MB)", 1e-6, False),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5))
    cfg = data["config"]
    fig.suptitle(
        f"{cfg['events']:,} JSON events to a file from a running asyncio loop; medians of "
        f"{cfg['rounds']} rounds (lower is better, except events/s)",
        fontsize=11,
    )
    for ax, (key, title, scale, log) in zip(axes.flat, panels, strict=True):
        values = [ok[n][key] * scale for n in order]
        bars = ax.barh(order, values, color=[_colour(n) for n in order])
        ax.bar_label(bars, labels=[f"{v:,.1f}" if v < 100 else f"{v:,.0f}" for v in values],
                     padding=3, fontsize=8)  # fmt: skip
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_xscale("log")
        ax.margins(x=0.18)
        ax.tick_params(labelsize=9)
    if broken:
        fig.text(
            0.01,
            0.01,
            "not shown, output broken: "
            + "; ".join(f"{n} ({', '.join(entries[n]['problems'][:2])})" for n in broken),
            fontsize=8,
            color="#555555",
        )
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    path = out / "bench-throughput.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def disabled(data: dict[str, Any], out: Path) -> Path:
    rows = {
        n: e["median"]["disabled_ns"]
        for n, e in data["contenders"].items()
        if e.get("median") and e["median"].get("disabled_ns") is not None
    }
    noop = data.get("targets", {}).get("noop_method_ns")
    if noop is not None:
        rows["(a do-nothing method)"] = noop
    order = sorted(rows, key=rows.__getitem__, reverse=True)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    colours = [FLOOR if n.startswith("(") else _colour(n) for n in order]
    bars = ax.barh(order, [rows[n] for n in order], color=colours)
    ax.bar_label(bars, labels=[f"{rows[n]:,.0f}" for n in order], padding=3, fontsize=8)
    if noop is not None:
        limit = 1.1 * noop
        ax.axvline(limit, color=ALOG, linestyle="--", linewidth=1)
        ax.text(limit * 1.02, 1.0, "target: 1.1x a do-nothing method", color=ALOG, fontsize=8,
                va="top", transform=ax.get_xaxis_transform())  # fmt: skip
    ax.set_title("a call below the level threshold (ns, the calling loop included)", fontsize=10)
    ax.margins(x=0.15)
    fig.tight_layout()
    path = out / "bench-disabled.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def stall(data: dict[str, Any], out: Path) -> Path | None:
    runs = {n: s for n, s in data["stall"].items() if "error" not in s}
    if not runs:
        return None
    cfg = data["config"]
    fig, (lag_ax, rss_ax) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    styles = ["--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1))]
    peers = [n for n in runs if n not in ("alog", "baseline")]
    for name, s in runs.items():
        t = [p[0] for p in s["timeline"]]
        if name == "alog":
            kw: dict[str, Any] = {"color": ALOG, "linewidth": 2.4, "zorder": 5}
        elif name == "baseline":
            kw = {"color": "#999999", "linewidth": 1.0, "linestyle": ":", "zorder": 4}
        else:
            i = peers.index(name)
            kw = {"color": PALETTE[i % len(PALETTE)], "linewidth": 1.3,
                  "linestyle": styles[i % len(styles)]}  # fmt: skip
        lag_ax.plot(t, [max(p[1], 0.01) for p in s["timeline"]], label=name,
                    drawstyle="steps-post", **kw)  # fmt: skip
        rss_ax.plot(t, [p[2] for p in s["timeline"]], label=name, **kw)
    for ax in (lag_ax, rss_ax):
        ax.axvspan(0, cfg["stall_seconds"], color="#eeeeee", zorder=0)
        ax.tick_params(labelsize=9)
    lag_ax.axhline(5, color=ALOG, linestyle="--", linewidth=0.8)
    lag_ax.set_yscale("log")
    lag_ax.set_ylabel("worst event-loop lag per 100 ms (ms, log)", fontsize=9)
    lag_ax.set_title(
        f"stdout is a pipe nobody reads for {cfg['stall_seconds']:g} s (shaded) while the app "
        "logs 20,000 events/s",
        fontsize=10,
    )
    rss_ax.set_ylabel("RSS (MB)", fontsize=9)
    rss_ax.set_xlabel("seconds since logging started", fontsize=9)
    lag_ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    path = out / "bench-stall.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


_DESTS = {
    "stdout-file": "stdout -> file",
    "stdout-pipe": "stdout -> pipe",
    "file": "own file writer",
    "tcp": "alog.TCP",
}


def service(data: dict[str, Any], out: Path) -> Path | None:
    """Extra server CPU per request over no logging, per logger and destination, one panel
    per loop, with half of structlog's extra (the target) marked on alog's stdout rows."""
    rows = [e for e in data["rows"].values() if e.get("status") == "ok"]
    rows = [e for e in rows if e["logger"] != "none" and "extra_us" in e["median"]]
    loops = list(dict.fromkeys(e["loop"] for e in rows))
    if not loops:
        return None
    fig, axes = plt.subplots(1, len(loops), figsize=(6.2 * len(loops), 5.2), squeeze=False)
    for ax, loop in zip(axes[0], loops, strict=True):
        mine = [e for e in rows if e["loop"] == loop]
        mine.sort(key=lambda e: e["median"]["extra_us"], reverse=True)
        labels = [
            e["logger"] if e["logger"] == "alog-filtered" else f"{e['logger']}, {_DESTS[e['dest']]}"
            for e in mine
        ]
        values = [e["median"]["extra_us"] for e in mine]
        colours = [ALOG if e["logger"].startswith("alog") else PEER for e in mine]
        bars = ax.barh(labels, values, color=colours)
        ax.bar_label(bars, labels=[f"{v:+,.0f}" for v in values], padding=3, fontsize=8)
        structlog = {e["dest"]: e["median"]["extra_us"] for e in mine if e["logger"] == "structlog"}
        for i, e in enumerate(mine):
            goal = structlog.get(e["dest"])
            if e["logger"] == "alog" and e["dest"].startswith("stdout") and goal:
                ax.plot([goal * 0.5] * 2, [i - 0.4, i + 0.4], color="black", linewidth=1.5)
        ax.set_title(f"{loop}: extra server CPU per request over no logging (us)", fontsize=10)
        ax.margins(x=0.15)
        ax.tick_params(labelsize=8)
    cfg = data["config"]
    fig.suptitle(
        f"FastAPI under uvicorn, {cfg['requests']:,} requests x {cfg['rounds']} rounds, "
        "3 lines per request; black mark: the target, half of structlog's extra",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    path = out / "bench-service.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("results", nargs="?", type=Path, default=HERE / "results" / "latest.json")
    p.add_argument("--out", type=Path, default=HERE.parent / "docs" / "images")
    p.add_argument(
        "--service", type=Path, default=HERE / "results" / "service-latest.json",
        help="the service benchmark's results (drawn if the file exists)",
    )  # fmt: skip
    args = p.parse_args()
    data = json.loads(args.results.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    paths = [throughput(data, args.out), disabled(data, args.out), stall(data, args.out)]
    if args.service.exists():
        paths.append(service(json.loads(args.service.read_text()), args.out))
    for path in paths:
        if path is not None:
            print(path)


if __name__ == "__main__":
    main()
