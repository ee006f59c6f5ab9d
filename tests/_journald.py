"""A real systemd-journald for one test, in a mount namespace of its own.

journald's paths are fixed (``/run/systemd/journal/socket``, ``/run/log/journal``,
``/etc/systemd/journald.conf``), so it runs under ``unshare --mount --propagation private``
with temporary folders bind-mounted over ``/run/systemd`` and ``/run/log`` and a temporary
config over ``journald.conf``. The script checks the binds took effect before it execs
journald: the machine's own ``/run`` is never touched. The test process reaches the socket
through the temporary folder (a socket bound inside a bind mount is the same file outside it)
and reads the journal files there with ``journalctl --directory``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Final

JOURNALD: Final = Path("/lib/systemd/systemd-journald")

CONFIG: Final = """\
[Journal]
Storage=volatile
ReadKMsg=no
Audit=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitIntervalSec=0
RuntimeMaxUse=1G
RuntimeMaxFileSize=256M
"""
"""Volatile storage in the test's folder; no rate limit, so a burst's count is exact."""

_SCRIPT: Final = """\
set -eu
mount --bind "$1/systemd" /run/systemd
mount --bind "$1/log" /run/log
mount --bind "$1/journald.conf" /etc/systemd/journald.conf
# The binds must have taken: otherwise journald would use the machine's own /run.
[ -e /run/systemd/alog-test-marker ] && [ -e /run/log/alog-test-marker ]
cmp -s /etc/systemd/journald.conf "$1/journald.conf"
exec /lib/systemd/systemd-journald
"""


def unavailable() -> str | None:
    """Why no journald can run here, or None."""
    if not JOURNALD.exists():
        return f"{JOURNALD} is not installed (Debian package systemd)"
    for tool in ("unshare", "journalctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "a private mount namespace needs root"
    if not Path("/etc/systemd/journald.conf").exists():
        return "/etc/systemd/journald.conf is missing (nothing to bind the test's config over)"
    try:
        machine_id = Path("/etc/machine-id").read_text().strip()
    except OSError:
        machine_id = ""
    if len(machine_id) != 32:
        return "/etc/machine-id is missing or empty (journald needs it: systemd-machine-id-setup)"
    return _namespaces_unavailable()


@functools.cache
def _namespaces_unavailable() -> str | None:
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return f"no private mount namespace here: {probe.stderr.decode().strip()}"
    return None


class JournaldServer:
    """One journald; ``socket`` is its native socket as this process sees it."""

    def __init__(self) -> None:
        # Short: a Unix socket path must fit in 108 bytes, and pytest's tmp_path may not.
        self.root = Path(tempfile.mkdtemp(prefix="alog-jd-", dir="/tmp"))
        for name in ("systemd", "log"):
            (self.root / name).mkdir()
            (self.root / name / "alog-test-marker").touch()
        (self.root / "journald.conf").write_text(CONFIG)
        (self.root / "run.sh").write_text(_SCRIPT)
        self.socket = self.root / "systemd" / "journal" / "socket"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 10.0) -> None:
        """Start journald and wait until its native socket accepts datagrams."""
        assert self.process is None
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self.starts += 1
        log = (self.root / f"journald-{self.starts}.log").open("wb")
        with log:
            self.process = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    str(self.root / "run.sh"),
                    str(self.root),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            code = self.process.poll()
            if code is not None:
                self.process = None
                output = (self.root / f"journald-{self.starts}.log").read_text()
                raise RuntimeError(f"journald exited with {code} at start: {output}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("journald did not open its socket in time")
            time.sleep(0.02)

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            probe.connect(str(self.socket))
        except OSError:
            return False
        finally:
            probe.close()
        return True

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop journald (SIGTERM) and wait until it has exited."""
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def entries(self, identifier: str) -> list[dict[str, Any]]:
        """Every entry with this ``SYSLOG_IDENTIFIER``, oldest first, all fields in full."""
        out = subprocess.run(
            [
                "journalctl",
                "--directory",
                str(self.root / "log" / "journal"),
                "--output=json",
                "--all",
                "--no-pager",
                f"SYSLOG_IDENTIFIER={identifier}",
            ],
            capture_output=True,
            check=False,
            timeout=60,
        )
        if out.returncode not in (0, 1) or (out.returncode == 1 and out.stdout):
            raise RuntimeError(f"journalctl failed: {out.stderr.decode()}")
        return [json.loads(line) for line in out.stdout.splitlines()]

    def wait_for(self, identifier: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The entries once there are ``count``, or once their number stops changing.

        journald stores what it reads within milliseconds; past ``count`` it waits a little
        more, so that too many entries are seen too.
        """
        deadline = time.monotonic() + timeout
        found = self.entries(identifier)
        still_since = time.monotonic()
        while len(found) < count and time.monotonic() < deadline:
            time.sleep(0.1)
            again = self.entries(identifier)
            if len(again) != len(found):
                still_since = time.monotonic()
            elif time.monotonic() - still_since > 2.0:
                return again
            found = again
        time.sleep(0.2)
        return self.entries(identifier)

    def run_inside(
        self, argv: list[str], *, cwd: Path, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a program that sees this journald at the default paths (its own namespace)."""
        script = (
            'mount --bind "$0/systemd" /run/systemd'
            ' && [ -e /run/systemd/alog-test-marker ] && exec "$@"'
        )
        return subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                str(self.root),
                *argv,
            ],
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
