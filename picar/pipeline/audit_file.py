"""The audit trail's text copy (`logging.audit_file`): a log file beside the database's audit table.

On a full disk every line fails; the standard handler prints a traceback per line (28,316 of them in one
full-disk run). This one says once that the file cannot be written, counts the lines it misses, and says
once more when the file takes lines again. The database's audit table is the record; nothing is lost there.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(message)s"


class AuditFileHandler(logging.FileHandler):
    """A FileHandler whose write errors are reported once per outage, not once per record."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.setFormatter(logging.Formatter(FORMAT))
        self.missed = 0  # lines not written in the current outage
        self._failed_now = False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        super().emit(record)  # calls handleError on a failure
        if self.missed and not self._failed_now:
            self._say(f"audit file {self.baseFilename} written again; {self.missed} line(s) before this one "
                      "could not be written (the database's audit table has them)")
            self.missed = 0

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        self._failed_now = True
        self.missed += 1
        if self.missed == 1:
            exc = sys.exc_info()[1]
            self._say(f"audit file {self.baseFilename} cannot be written: {exc!r}; further failures are "
                      "counted, not printed, until it works again")

    @staticmethod
    def _say(message: str) -> None:
        # Straight to stderr (the journal): a log record here would come back to this handler.
        try:
            sys.stderr.write(f"picar: {message}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
