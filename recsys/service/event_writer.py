"""Group commit of shoppers' events: the events posted to one worker process while the disk syncs the previous
commit are written together, in one transaction with one sync (`Store.insert_events`), by one thread.

An event is acknowledged only after the commit that holds it has returned (how durable that commit is:
`Settings.event_sync`), exactly as with a commit per event; what changes is that a burst of events costs one
commit (with `full`, one disk sync) instead of one each. With
one sync per event, the events of two busy worker processes queued behind each other's syncs on the store's lock
file (about 5 ms each), and an event waited tens to hundreds of milliseconds for its turn."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Literal

from recsys.store.sqlite import Store

log = logging.getLogger("stylerec.events")


class EventWriter:
    """Commits events for the event loop: `await commit(...)` returns the event's id once it is on disk."""

    def __init__(
        self, store: Store, synchronous: Literal["full", "normal"] = "full", checkpoint_every: float = 1.0
    ) -> None:
        """`synchronous`: see `Store.set_synchronous` (it applies to every commit of `store`). Also checkpoints
        the store's write-ahead log every `checkpoint_every` seconds, on a thread of its own, instead of inside a
        commit (`Store.checkpoint_separately`)."""
        self.store = store
        store.set_synchronous(synchronous)
        self._pending: list[tuple[tuple, asyncio.Future, asyncio.AbstractEventLoop]] = []
        self._wake = threading.Condition()
        self._closed = False
        self._stop = threading.Event()
        store.checkpoint_separately()
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        self._thread.start()
        self._checkpoints = threading.Thread(
            target=self._checkpoint, args=(checkpoint_every,), name="wal-checkpoint", daemon=True
        )
        self._checkpoints.start()

    async def commit(
        self, user_id: str, item_id: str, event: str, timestamp: float | None, client_event_id: str | None
    ) -> int:
        """Write one event checked by `Store.check_event` (with whichever others are waiting); its id."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the event writer is closed")
            self._pending.append(((user_id, item_id, event, timestamp, None, client_event_id), done, loop))
            self._wake.notify()
        return await done

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return  # closed, nothing left
                batch, self._pending = self._pending, []
            try:
                ids, error = self.store.insert_events([row for row, _, _ in batch]), None
            except Exception as exc:  # every waiting request gets it (a 500: a bug or a broken disk)
                log.exception("committing %d events failed", len(batch))
                ids, error = [None] * len(batch), exc
            for (_, done, loop), event_id in zip(batch, ids, strict=True):
                loop.call_soon_threadsafe(_settle, done, event_id, error)

    def _checkpoint(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.store.checkpoint()
            except Exception:  # the next one catches up; a commit never waits for it
                log.exception("checkpoint failed")

    def close(self) -> None:
        """Commit what is waiting, then stop the threads."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._stop.set()
        self._thread.join(timeout=30)
        self._checkpoints.join(timeout=30)


def _settle(done: asyncio.Future, event_id: int | None, error: Exception | None) -> None:
    if done.cancelled():
        return  # the client went away; the event is stored all the same (a retry with its event_id finds it)
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(event_id)
