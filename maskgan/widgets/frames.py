"""Frames for the browser: PNG encoding, display scaling, and a render queue that keeps only the latest state.

Interactive editing (paper Sec. 3.3) must feel immediate: a frame is the edited mask rendered by the
DMN backbone with a **cached** style (:meth:`maskgan.editing.Editor.render`) and encoded as PNG
bytes for an ``ipywidgets.Image``. Two things keep the UI responsive:

* :func:`frame_png` encodes with fast zlib settings and upsamples small frames by pixel
  repetition, so a 64 x 64 face shows at 256 px without the browser blurring it;
* :class:`LatestOnly` coalesces requests: a slider dragged across twenty values while one frame
  renders produces one more frame (for the last value), never a queue of stale frames.
"""
from __future__ import annotations

import io
import threading
import weakref
from typing import Callable

import numpy as np

from ..viz import as_rgb

__all__ = ["frame_png", "display_scale", "PNG_SIGNATURE", "LatestOnly", "ebst_marks", "editor_lock"]

#: The eight bytes every PNG file starts with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def display_scale(size: int, display_px: int = 256) -> int:
    """Integer upsampling factor that shows a ``size`` px frame at about ``display_px`` (at least 1)."""
    if size < 1:
        raise ValueError(f"frame size must be >= 1 pixel, got {size}")
    return max(1, int(display_px) // int(size))


def frame_png(x, scale: int = 1, compress_level: int = 1) -> bytes:
    """Image (3 x H x W in [-1, 1], tensor or array) or label map (H x W ids, colourised) -> PNG bytes.

    ``scale`` repeats every pixel ``scale`` times in both directions (nearest-neighbour: label
    boundaries stay crisp). ``compress_level=1`` is zlib's fastest setting: it costs a fraction
    of the default's time and the files are nearly as small.
    """
    from PIL import Image
    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    rgb = as_rgb(x)
    if scale > 1:
        rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def ebst_marks(lambda_inter: float = 2.5) -> dict[str, float]:
    """Where EBST's simulated edits lie on the interpolation line ``z = z^t + t (z^ref - z^t)``.

    Algorithm 1: ``z^inter = z^t + (z^ref - z^t) / lambda_inter`` is ``t = +1/lambda_inter`` and
    ``z^outer = z^t - (z^ref - z^t) / lambda_inter`` is ``t = -1/lambda_inter`` (+-0.4 for the
    paper's ``lambda_inter = 2.5``).
    """
    if not lambda_inter > 0:
        raise ValueError(f"lambda_inter must be > 0 (the paper uses 2.5), got {lambda_inter!r}")
    return {"z^outer": -1.0 / lambda_inter, "z^inter": 1.0 / lambda_inter}


_LOCKS: "weakref.WeakKeyDictionary[object, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def editor_lock(editor) -> threading.RLock:
    """One lock per editor: the panels of an app render in their own threads but share the
    editor's style cache and networks."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(editor)
        if lock is None:
            lock = _LOCKS[editor] = threading.RLock()
        return lock


_NOTHING = object()


class LatestOnly:
    """Run ``work(state)`` for the most recent requested state only; drop the ones in between.

    ``request(state)`` returns at once. With ``threaded=True`` a background thread does the work,
    so widget callbacks in the kernel stay instant and the kernel keeps reading new events while a
    frame renders; whatever arrived meanwhile is collapsed to its latest state. With
    ``threaded=False`` the work runs inside ``request`` (deterministic: for tests and scripts).
    ``thread_setup()`` runs once at the start of the background thread (e.g. to set its torch threads).

    Counters: ``requested``, ``completed`` (work calls that ran) and ``dropped`` (states replaced
    before they were rendered). ``last_error`` holds the last exception ``work`` raised (it is also
    passed to ``on_error``); the queue keeps running after an error.
    """

    def __init__(self, work: Callable[[object], None], threaded: bool = True,
                 on_error: Callable[[BaseException], None] | None = None, name: str = "maskgan-frames",
                 thread_setup: Callable[[], None] | None = None):
        self._work, self.threaded, self._on_error, self._name = work, bool(threaded), on_error, name
        self._thread_setup = thread_setup
        self._cond = threading.Condition()
        self._pending = _NOTHING
        self._busy = False
        self._thread: threading.Thread | None = None
        self.requested = self.completed = self.dropped = 0
        self.last_error: BaseException | None = None

    def request(self, state) -> None:
        """Ask for ``state`` to be rendered; replaces any state still waiting."""
        with self._cond:
            if self._pending is not _NOTHING:
                self.dropped += 1
            self._pending = state
            self.requested += 1
            if self.threaded:
                self._cond.notify_all()
            elif self._busy:  # a request from inside work(): the running drain loop picks it up
                return
        if self.threaded:
            self._ensure_thread()
        else:
            self._drain()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        while True:
            with self._cond:
                if self._pending is _NOTHING:
                    self._busy = False
                    self._cond.notify_all()
                    return
                state, self._pending, self._busy = self._pending, _NOTHING, True
            try:
                self._work(state)
            except Exception as e:  # keep serving later frames; report this one
                self.last_error = e
                if self._on_error is not None:
                    self._on_error(e)
            finally:
                with self._cond:
                    self.completed += 1

    def _loop(self) -> None:
        if self._thread_setup is not None:
            self._thread_setup()
        while True:
            with self._cond:
                while self._pending is _NOTHING:
                    self._cond.wait()
            self._drain()

    @property
    def idle(self) -> bool:
        """No state waiting and none rendering."""
        with self._cond:
            return self._pending is _NOTHING and not self._busy

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until idle (every requested state handled or dropped); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is _NOTHING and not self._busy, timeout)
