"""Two helpers that overlap the stages of the frame loop: decoding ahead and encoding behind.

Decoding (PyAV), optical flow (OpenCV) and encoding (PyAV) release the GIL while they work, so
running them in their own threads fills the moments where the network leaves a core idle (between
its operators, and the Python around them). Each helper keeps at most ``depth`` items waiting, so
memory stays bounded, and hands an exception of its thread to the caller at the next call.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

#: Poll interval of a blocked hand-over, so that a stop request is seen within this many seconds.
POLL = 0.1


class _Done:
    """Marks the end of the producer's items (or its failure, carried in ``error``)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class Ahead(Generic[T]):
    """Iterates ``items`` in a thread, at most ``depth`` items ahead of the consumer.

    Use as a context manager: leaving it (normally, on an error or on Ctrl-C) stops the thread.
    """

    def __init__(self, items: Iterator[T], depth: int = 2, name: str = "painterly-decode") -> None:
        self._items = items
        self._queue: queue.Queue[T | _Done] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: T | _Done) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._put(_Done(exc))
            return
        self._put(_Done())

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item = self._queue.get()
        if isinstance(item, _Done):
            self._queue.put(item)  # later calls see the end too
            if item.error is not None:
                raise item.error
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        close = getattr(self._items, "close", None)
        if close is not None:
            close()  # a generator's finally blocks (the decoder's container) run now

    def __enter__(self) -> Ahead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Behind(Generic[T]):
    """Calls ``consume(item)`` in a thread for each item given to :meth:`put`, in order.

    :meth:`finish` waits until every item given has been consumed; an error of ``consume`` is
    raised by the next :meth:`put` or by :meth:`finish`, and no later item is consumed.
    """

    def __init__(self, consume: Callable[[T], None], depth: int = 2, name: str = "painterly-encode") -> None:
        self._consume = consume
        self._queue: queue.Queue[T | _Done] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, _Done):
                return
            if self._error is None:
                try:
                    self._consume(item)
                except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                    self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        self._check()
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=POLL)
                return
            except queue.Full:
                self._check()
        self._check()

    def finish(self) -> None:
        """Consume what is waiting, stop the thread, and raise its error if it had one."""
        if self._thread.is_alive():
            self._queue.put(_Done())
            self._thread.join()
        self._check()
