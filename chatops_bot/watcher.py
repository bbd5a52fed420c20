"""One WatchEvents stream of access requests (and users), reopened for ever, with a full resync after every
(re)connect.

Events go to `Lanes`: one lane per request, so the jobs of one request run in order while different
requests run side by side (up to `concurrency` at once). A lane keeps only the newest state of its
request waiting, retries a job that failed with capped, jittered backoff, and drops it after `attempts`
tries (the next event or resync brings it back). After every INIT the watcher lists every request and
hands each to its lane, and closes the cards of pending requests this process knew of that Teleport no
longer lists (deleted, or expired, while the stream was down). With a `UserFollower` (the directory that
links chat users by trait), the same stream carries `user` events and every resync lists users too. Every
wait (a lane's retry, a reconnect, the periodic resync) is kept on the watcher's `Timer`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from chatops_bot import metrics
from chatops_bot.notify import Incomplete, Notifier, rank
from chatops_bot.teleport.client import WatchEvent
from chatops_bot.timer import REAL_TIME, Backoff, Later, Timer
from commands.errors import AccessDenied, BackendError, NotFound, NotImplementedByServer
from commands.model import AccessRequest, User

logger = logging.getLogger(__name__)

# Errors that waiting does not cure: a missing grant, a refused identity, an RPC the server does not serve.
# They are logged once, shown by /readyz, and tried again only at this pace (the operator may fix them).
PERMANENT = (AccessDenied, NotImplementedByServer)
PERMANENT_RETRY = 60.0


def permanent_problem(err: BackendError) -> str:
    """What /readyz says about a permanent error: what is wrong and where to look, no server internals."""
    if isinstance(err, NotImplementedByServer):
        return ("Teleport does not serve a call the bot needs (is it older than 16?); "
                "run `chatops-bot check-config --connect` and see the log")
    return ("Teleport refuses the bot (a missing grant in its role, or a refused identity); "
            "run `chatops-bot check-config --connect` and see the log")


class RequestSource(Protocol):
    """The slice of `TeleportClient` the watcher uses."""

    def watch_requests(self, *, users: bool = False) -> AsyncIterator[WatchEvent]: ...

    async def list_requests(self) -> list[AccessRequest]: ...

    async def list_users(self) -> list[User]: ...

    async def get_request(self, request_id: str) -> AccessRequest: ...


class Observer(Protocol):
    """Something else that follows every request the watcher sees (the reminder scheduler, say). Each
    call must return at once; the observer does its own work in its own tasks."""

    def put(self, request: AccessRequest) -> None: ...

    def delete(self, request_id: str) -> None: ...

    def resynced(self, requests: list[AccessRequest]) -> None:
        """Every request Teleport lists, after each (re)connect: anything not in it is gone."""
        ...


class UserFollower(Protocol):
    """What follows Teleport's users through the watcher (the directory's trait index)."""

    def users_resynced(self, users: list[User]) -> None: ...

    def user_put(self, user: User) -> None: ...

    def user_deleted(self, name: str) -> None: ...


class Handler(Protocol):
    """What a lane runs for one request: the notifier, or an integration's own follower. Either may run
    any number of times for the same request; raise `Later` to be asked again after a delay, anything
    else to be retried with backoff."""

    async def sync(self, request: AccessRequest) -> None: ...

    async def closed(self, request_id: str) -> None:
        """Teleport deleted the request (or its pending TTL ran out)."""
        ...


class _Deleted:
    """The job for a request Teleport deleted."""


DELETED = _Deleted()


class Lanes:
    def __init__(self, notifier: Handler, *, concurrency: int = 32, retry: Backoff = Backoff(1.0, 60.0),
                 attempts: int = 12, timer: Timer = REAL_TIME) -> None:
        self.notifier = notifier
        self.retry = retry
        self.timer = timer
        self.attempts = attempts
        self._slots = asyncio.Semaphore(concurrency)
        self.problem: str | None = None  # a permanent refusal of the last job that failed with one
        self._reported: set[str] = set()
        self._queued: dict[str, AccessRequest | _Deleted] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._waiting: set[str] = set()

    def put(self, request: AccessRequest) -> None:
        queued = self._queued.get(request.id)
        if queued is DELETED or (isinstance(queued, AccessRequest) and rank(queued) > rank(request)):
            return  # a snapshot older than what already waits (a listing racing an event)
        self._submit(request.id, request)

    def delete(self, request_id: str) -> None:
        self._submit(request_id, DELETED)

    def _submit(self, request_id: str, job: AccessRequest | _Deleted) -> None:
        self._queued[request_id] = job
        if request_id in self._lanes:
            self._wake[request_id].set()
            return
        self._wake[request_id] = asyncio.Event()
        self._lanes[request_id] = asyncio.create_task(self._run(request_id), name=f"notify {request_id}")

    async def _run(self, request_id: str) -> None:
        failures = 0
        wake = self._wake[request_id]
        try:
            while request_id in self._queued:
                job = self._queued.pop(request_id)
                wake.clear()
                try:
                    async with self._slots:
                        if isinstance(job, _Deleted):
                            await self.notifier.closed(request_id)
                        else:
                            await self.notifier.sync(job)
                    failures = 0
                    self.problem = None
                    continue
                except Later as later:
                    delay = later.delay
                except PERMANENT as err:
                    # Retrying cannot help; the periodic resync brings the request back after a fix.
                    self.problem = permanent_problem(err)
                    if err.detail not in self._reported:
                        self._reported.add(err.detail)
                        logger.error("notifying about request %s: Teleport refused (%s); not retried until the "
                                     "next resync. Fix the bot's role: `chatops-bot check-config --connect` "
                                     "names what is missing", request_id, err.detail)
                    failures = 0
                    continue
                except Exception as err:
                    failures += 1
                    if failures >= self.attempts:
                        logger.error("giving up on request %s after %d tries (the next event or resync "
                                     "tries again): %r", request_id, failures, err)
                        failures = 0
                        continue
                    delay = self.retry.delay(failures - 1)
                    expected = isinstance(err, (BackendError, Incomplete))  # the details were logged
                    logger.log(logging.WARNING if expected else logging.ERROR,
                               "notifying about request %s failed (%r); again in %.1f s",
                               request_id, err, delay, exc_info=not expected)
                self._queued.setdefault(request_id, job)  # unless something newer came in meanwhile
                self._waiting.add(request_id)
                try:
                    # A newer job does not wait for the delay.
                    await asyncio.wait_for(wake.wait(), self.timer.real(delay))
                except TimeoutError:
                    pass
                finally:
                    self._waiting.discard(request_id)
        finally:
            self._lanes.pop(request_id, None)
            self._wake.pop(request_id, None)

    @property
    def retrying(self) -> set[str]:
        """Requests whose last try failed (or that another bot process has claimed), waiting to try again."""
        return set(self._waiting)

    async def idle(self, poll: float = 0.01) -> None:
        """Returns once every lane is done or waiting to try again (for tests and the benchmark)."""
        while set(self._lanes) - self._waiting:
            await asyncio.sleep(poll)

    async def close(self) -> None:
        lanes = list(self._lanes.values())
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        self._queued.clear()


class Follower:
    """An `Observer` that runs a `Handler` for every request the watcher sees, in lanes of its own: one lane per
    request, retried with backoff, so a slow or failing outside system never holds up the cards."""

    def __init__(self, handler: Handler, *, timer: Timer = REAL_TIME, concurrency: int = 8) -> None:
        self.lanes = Lanes(handler, timer=timer, concurrency=concurrency)

    def put(self, request: AccessRequest) -> None:
        self.lanes.put(request)

    def delete(self, request_id: str) -> None:
        self.lanes.delete(request_id)

    def resynced(self, requests: list[AccessRequest]) -> None:
        for request in requests:
            self.lanes.put(request)

    async def close(self) -> None:
        await self.lanes.close()


class Watcher:
    def __init__(self, client: RequestSource, notifier: Notifier, *, backoff: Backoff = Backoff(),
                 lanes: Lanes | None = None, observers: Sequence[Observer] = (),
                 users: UserFollower | None = None, resync_every: float = 300.0,
                 timer: Timer = REAL_TIME) -> None:
        """`resync_every`: seconds between resyncs while the stream is up, which retry what the lanes gave
        up on (a platform that refused for minutes) and catch anything an event did not bring. `timer`
        keeps those, the reconnect backoff's waits, and the lanes' (if it makes them)."""
        self.client = client
        self.timer = timer
        self.resync_every = resync_every
        self.observers = list(observers)
        self.users = users
        self.notifier = notifier
        self.backoff = backoff
        self.lanes = lanes or Lanes(notifier, timer=timer)
        self.resyncs = 0  # completed (re)connects, each with its resync
        self.synced = asyncio.Event()  # set after a resync, cleared when the stream drops
        self.problem: str | None = None  # why the stream or its resync is permanently refused, if it is
        self._held: list[WatchEvent] | None = None  # events that came during a resync's listing
        self._resyncing = asyncio.Lock()

    async def run(self) -> None:
        """Watch until cancelled; every failure is logged and followed by another try, never an exit."""
        attempt = 0
        periodic: asyncio.Task[None] | None = None
        reported: str | None = None
        try:
            while True:
                permanent = False
                try:
                    async for event in self.client.watch_requests(users=self.users is not None):
                        if event.kind == "init":
                            await self.resync(users=True)
                            attempt = 0
                            self.problem = reported = None
                            periodic = periodic or asyncio.create_task(self._resync_periodically(),
                                                                       name="periodic resync")
                        elif self._held is not None:
                            self._held.append(event)  # newer than the listing under way: after it
                        else:
                            self._apply(event)
                    reason = "Teleport ended the stream"
                except PERMANENT as err:
                    reason = err.detail or err.message
                    permanent = True
                    self.problem = permanent_problem(err)
                except BackendError as err:
                    reason = err.detail or err.message
                except Exception as err:
                    logger.exception("the access request watcher failed")
                    reason = repr(err)
                self.synced.clear()
                metrics.WATCHER_RECONNECTS.inc()
                await _cancel(periodic)
                periodic = None
                if permanent:
                    delay = PERMANENT_RETRY
                    if reason != reported:  # once, with what to do; the same refusal again is quiet
                        reported = reason
                        logger.error("Teleport refuses the access request watch (%s): the bot posts no cards until "
                                     "this is fixed. `chatops-bot check-config --connect` names what is missing; "
                                     "trying again every %.0f s", reason, delay)
                else:
                    delay = self.backoff.delay(attempt)
                    attempt += 1
                    logger.warning("access request stream lost (%s); watching again in %.1f s", reason, delay)
                await self.timer.sleep(delay)
        finally:
            self.synced.clear()  # stopped: nothing keeps what the watcher knows up to date any more
            await _cancel(periodic)
            await self.lanes.close()
            for observer in self.observers:
                if isinstance(observer, Follower):
                    await observer.close()

    def _apply(self, event: WatchEvent) -> None:
        if event.user_name:
            if self.users is not None and event.user is not None:
                self.users.user_put(event.user)
            elif self.users is not None:
                self.users.user_deleted(event.user_name)
            return
        if event.kind == "put" and event.request is not None:
            self.lanes.put(event.request)
            for observer in self.observers:
                observer.put(event.request)
        elif event.kind == "delete":
            self.lanes.delete(event.request_id)
            for observer in self.observers:
                observer.delete(event.request_id)

    async def _resync_periodically(self) -> None:
        while True:
            await self.timer.sleep(self.resync_every)
            try:
                await self.resync()
            except BackendError as err:
                logger.warning("periodic resync failed (%s); the next one tries again", err.detail or err.message)
            except Exception:
                logger.exception("periodic resync failed; the next one tries again")

    async def resync(self, *, users: bool = False) -> None:
        """Hand every request Teleport lists to its lane; close the cards of known ones it no longer lists.
        With `users` (after a (re)connect; user events keep them current in between), list users too.

        Events that arrive while the listing is under way are held and applied after it: they are newer
        than the listing, and a request created meanwhile must not look deleted for missing from it. One
        resync at a time (the periodic one may fall due while a reconnect's runs): they share what is held."""
        async with self._resyncing:
            await self._resync(users=users)

    async def _resync(self, *, users: bool) -> None:
        self._held = []
        started = time.perf_counter()
        try:
            if users and self.users is not None:
                self.users.users_resynced(await self.client.list_users())
            listed = await self.client.list_requests()
            listing = time.perf_counter() - started
            ids = {request.id for request in listed}
            await self.notifier.prefetch(listed)
            for request in listed:
                self.lanes.put(request)
            for gone in self.notifier.pending_ids() - ids:
                if await self._really_gone(gone):
                    self.lanes.delete(gone)
            self.notifier.retain(ids)
            for observer in self.observers:
                observer.resynced(listed)
        finally:
            held, self._held = self._held, None
            for event in held:
                self._apply(event)
        self.resyncs += 1
        self.synced.set()
        logger.info("watching access requests; resynced %d (listed in %.3f s)", len(listed), listing)

    async def _really_gone(self, request_id: str) -> bool:
        """Whether Teleport no longer has a request a listing lacked (a listing served from a cache that
        lags may lack one just created): its cards are closed only when it is really gone."""
        try:
            await self.client.get_request(request_id)
        except NotFound:
            return True
        except BackendError:
            return False  # cannot tell now: the next resync looks again
        return False


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
