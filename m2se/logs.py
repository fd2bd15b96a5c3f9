"""Where messages go: the console as before (results on stdout, warnings on stderr) and the run log.

``m2se`` messages go through ``logging`` (``logging.getLogger(__name__)``). The package logger prints
them itself, INFO to stdout and WARNING and above to stderr, message only, so a library user and the
test suite see them without configuring anything. Under Hydra, ``conf/hydra/job_logging/m2se.yaml``
gives the root logger one handler, the run folder's ``<job>.log`` (train.log, evaluate.log,
predict.log), and ``route_to_run_log`` sends Lightning's messages and Python warnings there too, so
the file holds what the console showed (progress bars aside), with times.
"""

from __future__ import annotations

import logging
import sys


class Console(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` (``stderr=False``) or ``sys.stderr`` is at the time, so that a
    redirected stream (pytest's capture, a notebook) gets the messages. ``stdout`` takes records below
    WARNING, ``stderr`` the others."""

    def __init__(self, stderr: bool = False) -> None:
        super().__init__()
        self.stderr = stderr
        self.setFormatter(logging.Formatter("%(message)s"))
        self.addFilter(lambda record: (record.levelno >= logging.WARNING) == stderr)

    @property
    def stream(self):
        return sys.stderr if self.stderr else sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the property decides
        pass


def install_console(logger: logging.Logger) -> None:
    """``logger`` prints its INFO messages to stdout and warnings to stderr (once, whatever the calls)."""
    if not any(isinstance(h, Console) for h in logger.handlers):
        logger.addHandler(Console(stderr=False))
        logger.addHandler(Console(stderr=True))
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


def route_to_run_log() -> None:
    """Under Hydra's run log (a root FileHandler): Lightning's messages and Python warnings reach it too,
    still printed on the console. Outside Hydra nothing changes."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    if not files:
        return
    # Lightning's loggers print through their own handler and do not propagate (propagating would
    # print twice: the "lightning" logger above them has a console handler too); they get the file.
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers += [h for h in files if h not in logger.handlers]
    logging.captureWarnings(True)
    install_console(logging.getLogger("py.warnings"))
