"""Named points where a test can kill the running process outright (SIGKILL, as the OOM killer or a lost
node would), to prove that what a reader sees survives a crash at that point.

Off unless $SYNTHCHAIN_FAILPOINTS names the point (comma-separated); checking it costs one dict lookup.
"""
from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    wanted = os.environ.get("SYNTHCHAIN_FAILPOINTS")
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
