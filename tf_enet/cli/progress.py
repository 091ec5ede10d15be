"""A progress count for the commands that may run without TensorFlow."""

import sys


class Progress:
    """A live count on a terminal; nothing when output goes to a file (the
    commands print a summary line when done).

    Args:
        total: int or None. Items expected (None or 0: unknown).
        unit: str. What is counted, singular ("image", "frame").
    """

    def __init__(self, total, unit):
        self.total = total
        self.unit = unit
        self.live = sys.stdout.isatty()

    def update(self, done, finalize=False):
        """Shows `done` items; `finalize` (or reaching `total`) ends the line."""
        if not self.live:
            return
        of = f"/{self.total}" if self.total else ""
        end = "\n" if finalize or done == self.total else ""
        print(f"\r{done}{of} {self.unit}s", end=end, flush=True)
