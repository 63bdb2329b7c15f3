"""Peak anonymous memory (RssAnon, Linux) of this process over a block of code: what the
streaming tests bound. A memmap's pages are file-backed (RssFile) and do not count."""

from __future__ import annotations

import threading
import time


def anon_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/self/status")


class PeakAnon:
    """``with PeakAnon() as m: ...``; then ``m.base_kb`` (on entry) and ``m.peak_kb`` (the
    highest reading, every 5 ms from a thread, and on exit)."""

    def __enter__(self) -> PeakAnon:
        self.base_kb = self.peak_kb = anon_kb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._done.is_set():
            self.peak_kb = max(self.peak_kb, anon_kb())
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, anon_kb())

    @property
    def growth_mb(self) -> float:
        return (self.peak_kb - self.base_kb) / 1024
