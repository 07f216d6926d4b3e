"""Wall-clock stack sampling of a service process, for `python -m bench.throughput --sample`.

Python imports this module at start-up when its folder is on PYTHONPATH. It does nothing
unless SC_BENCH_SAMPLE_DIR is set. Then a daemon thread looks at every other thread's stack
every SC_BENCH_SAMPLE_INTERVAL seconds (default 0.005) while sampling is on: SIGUSR1 starts
(and resets) it, SIGUSR2 writes `<service>-<pid>-<n>.txt` into SC_BENCH_SAMPLE_DIR and stops.

Wall clock, not CPU: a thread waiting in select(), a lock or an fsync is counted where it
waits, which is what tells a waiting pipeline from a busy one. Samples are taken when the
sampler gets the GIL, so code that holds the GIL long is under-counted: read it as approximate.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

_ROOT = str(Path(__file__).resolve().parent.parent.parent) + os.sep
_SITE = f"{os.sep}site-packages{os.sep}"


def _where(frame: FrameType) -> str:
    path = frame.f_code.co_filename
    if path.startswith(_ROOT):
        path = path[len(_ROOT) :]
    elif _SITE in path:
        path = path.split(_SITE, 1)[1]
    else:
        path = os.path.basename(path)
    return f"{path}:{frame.f_code.co_name}"


def _group(thread_name: str) -> str:
    return re.sub(r"\d+$", "*", thread_name)


class Sampler:
    def __init__(self, out_dir: Path, interval: float) -> None:
        self._out_dir = out_dir
        self._interval = interval
        self._lock = threading.Lock()
        self._active = False
        self._dumps = 0
        self._reset()

    def _reset(self) -> None:
        self._started = time.monotonic()
        self._samples: Counter[str] = Counter()
        self._leaf: Counter[tuple[str, str]] = Counter()
        self._inclusive: Counter[tuple[str, str]] = Counter()

    def start(self, *_: Any) -> None:
        with self._lock:
            self._reset()
            self._active = True

    def dump(self, *_: Any) -> None:
        with self._lock:
            self._active = False
            self._dumps += 1
            text = self._report()
        service = Path(sys.argv[0]).parent.name if sys.argv and sys.argv[0] else "python"
        target = self._out_dir / f"{service}-{os.getpid()}-{self._dumps}.txt"
        draft = target.with_suffix(".part")
        draft.write_text(text)
        draft.rename(target)

    def _report(self) -> str:
        seconds = time.monotonic() - self._started
        lines = [f"# wall-clock samples every {self._interval * 1e3:g} ms over {seconds:.1f} s", ""]
        for group, total in self._samples.most_common():
            lines.append(f"== thread {group}: {total} samples")
            lines.append("-- where it is (leaf frame, with line)")
            leaf = [(n, w) for (g, w), n in self._leaf.items() if g == group]
            for count, where in sorted(leaf, reverse=True)[:25]:
                lines.append(f"{100 * count / total:6.1f}%  {where}")
            lines.append("-- inclusive (function anywhere on the stack)")
            inclusive = [(n, w) for (g, w), n in self._inclusive.items() if g == group]
            for count, where in sorted(inclusive, reverse=True)[:45]:
                lines.append(f"{100 * count / total:6.1f}%  {where}")
            lines.append("")
        return "\n".join(lines) + "\n"

    def run(self) -> None:
        me = threading.get_ident()
        while True:
            time.sleep(self._interval)
            if not self._active:
                continue
            names = {thread.ident: thread.name for thread in threading.enumerate()}
            frames = sys._current_frames()
            with self._lock:
                for ident, frame in frames.items():
                    if ident == me:
                        continue
                    group = _group(names.get(ident, "unknown"))
                    self._samples[group] += 1
                    self._leaf[(group, f"{_where(frame)}:{frame.f_lineno}")] += 1
                    seen = set()
                    current: FrameType | None = frame
                    while current is not None:
                        seen.add(_where(current))
                        current = current.f_back
                    for where in seen:
                        self._inclusive[(group, where)] += 1


def _install() -> None:
    out_dir = os.environ.get("SC_BENCH_SAMPLE_DIR")
    if not out_dir:
        return
    sampler = Sampler(Path(out_dir), float(os.environ.get("SC_BENCH_SAMPLE_INTERVAL", "0.005")))
    signal.signal(signal.SIGUSR1, sampler.start)
    signal.signal(signal.SIGUSR2, sampler.dump)
    threading.Thread(target=sampler.run, name="bench-sampler", daemon=True).start()


_install()
