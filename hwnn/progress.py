"""Progress bars for long work: rate and ETA on stderr (``tqdm``).

A bar appears only after :data:`BAR_DELAY` seconds and only when stderr is a terminal, so short
runs, pipes and logs stay quiet. :mod:`hwnn.flow` shows one for every long step.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Iterator

from tqdm import tqdm

__all__ = ["BAR_DELAY", "progress_bar"]

#: Seconds of work before a progress bar appears ("more than a few seconds").
BAR_DELAY = 3.0


class _QuietBar(tqdm):
    """A tqdm bar that stays hidden during its ``delay`` even when a note is written.

    ``tqdm.write`` redraws every bar after the line it prints, including a bar still in its
    delay, so a short step that prints a note would flash an empty bar.
    """

    def refresh(self, *args, **kwargs):
        if self.delay and time.time() - self.start_t < self.delay:
            return None
        return super().refresh(*args, **kwargs)


@contextlib.contextmanager
def progress_bar(total, what: str, unit: str, *, delay: float = BAR_DELAY) -> Iterator[tqdm]:
    """A tqdm bar on stderr: rate and ETA, shown only on a terminal and after ``delay`` s.

    A thread redraws it every second, so the elapsed time moves during one long step (a
    yosys run) that updates the count only when it ends.
    """
    bar = _QuietBar(total=total, desc=what, unit=unit, file=sys.stderr, delay=delay,
                    mininterval=0.5, disable=None, leave=False, dynamic_ncols=True)
    stop = threading.Event()

    def tick():
        while not stop.wait(1.0):
            bar.refresh()
    ticker = threading.Thread(target=tick, daemon=True)
    if not bar.disable:
        ticker.start()
    try:
        yield bar
    finally:
        stop.set()
        if ticker.is_alive():
            ticker.join()
        bar.close()
