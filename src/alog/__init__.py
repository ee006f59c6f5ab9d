"""alog: asyncio-native structured logging with a bounded queue and a supervised writer."""

from __future__ import annotations

from ._context import bound as bound
from ._context import current_context as current_context
from ._destinations import TCP as TCP
from ._destinations import Console as Console
from ._destinations import File as File
from ._destinations import Journald as Journald
from ._destinations import JournaldStatistics as JournaldStatistics
from ._destinations import Stderr as Stderr
from ._destinations import Stdout as Stdout
from ._destinations import Syslog as Syslog
from ._destinations import Unix as Unix
from ._exceptions import AlogError as AlogError
from ._exceptions import WriterFailed as WriterFailed
from ._logger import Logger as Logger
from ._logger import get_logger as get_logger
from ._pipeline import Pipeline as Pipeline
from ._pipeline import flush as flush
from ._pipeline import run as run
from ._process import process_fields as process_fields
from ._records import FlushResult as FlushResult
from ._records import Statistics as Statistics
from ._redact import set_redaction as set_redaction
from ._writer import DestinationStatistics as DestinationStatistics

__all__ = [  # noqa: RUF022 - plain sorted(), as tests/test_api.py checks
    "AlogError",
    "Console",
    "DestinationStatistics",
    "File",
    "FlushResult",
    "Journald",
    "JournaldStatistics",
    "Logger",
    "Pipeline",
    "Statistics",
    "Stderr",
    "Stdout",
    "Syslog",
    "TCP",
    "Unix",
    "WriterFailed",
    "bound",
    "current_context",
    "flush",
    "get_logger",
    "process_fields",
    "run",
    "set_redaction",
]
