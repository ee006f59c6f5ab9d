"""fork() while a pipeline runs: the child never re-writes the parent's events, never hangs."""

from __future__ import annotations

from pathlib import Path

from .conftest import RunScript, read_events


def test_a_forked_child_starts_empty_and_falls_back_to_logging(
    run_script: RunScript, tmp_path: Path
) -> None:
    """The parent's queued events are written once; the child's go to stdlib logging."""
    path = tmp_path / "out.log"
    script = f"""
        import asyncio, logging, os, sys, time
        import alog

        logging.basicConfig(level=logging.INFO, format="child-logging %(message)s")
        log = alog.get_logger("app")

        async def main():
            async with alog.run(alog.File({str(path)!r})) as pipeline:
                for i in range(1000):
                    log.info("parent", i=i)  # queued, not yet written: no await in between
                pid = os.fork()
                if pid == 0:
                    log.info("from child")
                    result = alog.flush(5)
                    assert result.pending == 0 and not result.timed_out, result
                    logging.shutdown()
                    os._exit(0)  # as multiprocessing's fork children end
                _, status = os.waitpid(pid, 0)
                assert status == 0, status
        asyncio.run(main())
    """
    result = run_script(script, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    events = read_events(path)
    assert [e["i"] for e in events] == list(range(1000))
    assert "child-logging from child" in result.stderr.decode()
