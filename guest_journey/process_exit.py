"""How a process of ours ends once its work is done."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def leave(status: int) -> NoReturn:
    """Exit once the process has finished its work and said everything it had to say,
    without finalizing the interpreter: the Temporal SDK's native threads can still call
    into Python while it finalizes, which aborts (SIGABRT, status -6) a process that had
    stopped cleanly, a worker told to stop by Ctrl-C among them."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
