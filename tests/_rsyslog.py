"""A real rsyslog for the tests, in the foreground with a config and files of its own.

``rsyslogd -n -f CONF -i PIDFILE`` runs unprivileged; every path is under the test's tmp
folder, every listener on 127.0.0.1 or a socket in that folder, so tests run in parallel:

- ``imtcp`` on a port the kernel picks (``listenPortFileName``), kept across a restart;
- ``imudp`` on a port picked here (8.2302 has no ``listenPortFileName`` for it);
- ``imuxsock`` on ``log.sock`` (``SysSock.Use="off"``: never the machine's ``/dev/log``), with
  ``UseSpecialParser="off"`` so that it parses RFC 5424 as well as the RFC 3164 form (its
  default parser reads only the latter).

Each input has a ruleset writing two files: ``NAME.raw`` (``%rawmsg%``, the bytes as received)
and ``NAME.fields`` (``PRI|APP-NAME|PROCID|MSGID|TIMESTAMP|HOSTNAME|MSG``, as rsyslog parsed
them). Use the ``rsyslog`` fixture (in ``conftest.py``) or :func:`start`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
INPUTS = ("tcp", "udp", "unix")
READY_TIMEOUT = 10.0

_CONFIG = """\
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
module(load="imudp")
module(load="imuxsock" SysSock.Use="off")
template(name="raw" type="string" string="%rawmsg%\\n")
template(name="fields" type="string"
         string="%pri%|%app-name%|%procid%|%msgid%|%timereported:::date-rfc3339%|%hostname%|%msg%\\n")
{rulesets}
input(type="imtcp" address="127.0.0.1" port="{tcp_port}" listenPortFileName="{work}/tcp.port"
      ruleset="tcp")
input(type="imudp" address="127.0.0.1" port="{udp_port}" ruleset="udp")
input(type="imuxsock" Socket="{work}/log.sock" ruleset="unix" RateLimit.Interval="0"
      IgnoreTimestamp="off" UseSpecialParser="off")
"""
_RULESET = """\
ruleset(name="{name}") {{
    action(type="omfile" file="{work}/{name}.raw" template="raw" flushOnTXEnd="on")
    action(type="omfile" file="{work}/{name}.fields" template="fields" flushOnTXEnd="on")
}}"""


def skip_unless_installed() -> None:
    """Skip when rsyslogd is missing here; in CI (``CI`` set) a missing binary is a failure."""
    if os.path.exists(RSYSLOGD):
        return
    if os.environ.get("CI"):
        pytest.fail(f"rsyslogd is not installed ({RSYSLOGD}); .ci/run installs it")
    pytest.skip(f"rsyslogd is not installed ({RSYSLOGD}); apt-get install rsyslog")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Rsyslog:
    """One rsyslogd: ``start()``, ``stop()``, ``restart()``, and what it wrote."""

    def __init__(self, work: Path) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.socket_path = work / "log.sock"
        self.tcp_port = 0
        self.udp_port = _free_udp_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def tcp_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.tcp_port)

    @property
    def udp_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.udp_port)

    def _write_config(self) -> Path:
        rulesets = "\n".join(_RULESET.format(name=name, work=self.work) for name in INPUTS)
        config = self.work / "rsyslog.conf"
        config.write_text(
            _CONFIG.format(
                work=self.work,
                rulesets=rulesets,
                tcp_port=self.tcp_port,
                udp_port=self.udp_port,
            )
        )
        return config

    def start(self) -> None:
        """Start in the foreground; return once every listener is up."""
        assert self.process is None
        config = self._write_config()
        port_file = self.work / "tcp.port"
        port_file.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)
        with open(self.work / "rsyslogd.stderr", "ab") as stderr:  # the child keeps its copy
            self.process = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", str(config), "-i", str(self.work / "rsyslogd.pid")],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.starts += 1
        deadline = time.monotonic() + READY_TIMEOUT
        fixed_port = self.tcp_port != 0  # a restart: rsyslog writes the file only for port 0
        while not (fixed_port or (port_file.exists() and port_file.read_text().strip())) or not (
            self.socket_path.exists() and self._udp_bound()
        ):
            if self.process.poll() is not None or time.monotonic() > deadline:
                error = (self.work / "rsyslogd.stderr").read_text()
                self.stop()
                raise RuntimeError(f"rsyslogd did not start: {error}")
            time.sleep(0.02)
        if not fixed_port:
            self.tcp_port = int(port_file.read_text())
        self._wait_tcp()

    def _udp_bound(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", self.udp_port))
            except OSError:
                return True  # taken: by rsyslog
            return False

    def _wait_tcp(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                socket.create_connection(self.tcp_address, timeout=1).close()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
            else:
                return

    def stop(self) -> None:
        """SIGTERM and wait: rsyslog writes out what it has in its queue, then exits."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self) -> None:
        """Stop and start again on the same TCP port, UDP port and socket path."""
        self.stop()
        self.start()

    def lines(self, name: str, kind: str = "fields") -> list[str]:
        """What rsyslog wrote for input ``name`` (``tcp``, ``udp``, ``unix``), one per message."""
        path = self.work / f"{name}.{kind}"
        if not path.exists():
            return []
        return path.read_text(encoding="utf-8", errors="replace").splitlines()

    def wait_for(
        self, name: str, count: int, *, kind: str = "fields", timeout: float = 10.0
    ) -> list[str]:
        """Wait until rsyslog has written ``count`` messages for ``name`` (or the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines(name, kind)
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)


def start(work: Path) -> Rsyslog:
    """A running rsyslog with its files in ``work``; skips (or fails in CI) if not installed.

    The UDP port is picked here and could be taken by another test before rsyslog binds it:
    then it starts again on another.
    """
    skip_unless_installed()
    for attempt in range(3):
        engine = Rsyslog(work)
        try:
            engine.start()
        except RuntimeError:
            if attempt == 2:
                raise
        else:
            return engine
    raise AssertionError("unreachable")
