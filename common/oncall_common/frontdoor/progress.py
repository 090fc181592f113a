"""A progress bar on a terminal's stderr; silence everywhere else."""
import sys
import time

from ..context import Progress
from ..convert import human_bytes as _human


class TtyProgress(Progress):
    """``[#####     ] 512/1000 blobs  1.2 GB  85.3 MB/s  ETA 0:07`` redrawn at most 10 times a second."""

    def __init__(self, total=None, unit="", description="", stream=None):
        super().__init__(total, unit, description)
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.bytes = 0
        self._drawn = 0.0

    def update(self, advance=1, **fields):
        self.done += advance
        self.bytes += fields.get("bytes", 0)
        now = time.monotonic()
        if now - self._drawn >= 0.1:
            self._drawn = now
            self._draw(now)

    def _draw(self, now):
        elapsed = max(now - self.start, 1e-6)
        parts = [self.description] if self.description else []
        if self.total:
            frac = min(self.done / self.total, 1.0)
            parts.append("[" + "#" * int(frac * 24) + " " * (24 - int(frac * 24)) + "]")
            parts.append(f"{self.done}/{self.total} {self.unit}".strip())
            rate = self.done / elapsed
            if rate > 0 and self.done < self.total:
                eta = int((self.total - self.done) / rate)
                parts.append(f"ETA {eta // 60}:{eta % 60:02d}")
        else:
            parts.append(f"{self.done} {self.unit}".strip())
        if self.bytes:
            parts.append(f"{_human(self.bytes)}  {_human(self.bytes / elapsed)}/s")
        self.stream.write("\r" + "  ".join(parts)[:200] + "\x1b[K")
        self.stream.flush()

    def close(self):
        if self._drawn:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


def progress_class(stream):
    return TtyProgress if getattr(stream, "isatty", lambda: False)() else Progress
