"""The peak memory of the Python peers (torch_train.py, xla_train.py), measured as
train_bench measures Scribe's: the highest resident set size while the work runs,
sampled every millisecond by a thread, less the resident size when sampling began.

    with PeakRss() as peak:
        ...  # the steps
    peak.bytes
"""
import threading
import time


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class PeakRss:
    def __enter__(self):
        self.base = rss_bytes()
        self._peak = self.base
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._done.is_set():
            self._peak = max(self._peak, rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.bytes = self._peak - self.base
        return False
