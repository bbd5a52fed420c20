"""Reminders before elevated access ends, a word when it has ended, and nudges for requests left waiting.

The schedule is derived from Teleport, never stored: at start-up from the watcher's first listing, then
kept in step by its events (`Reminders` is a watcher `Observer`). Each request has at most one APScheduler
date job, for the next thing due about it; when the job runs, everything due for the request is handled
and the job is set for the next. What was sent is kept in the request's plugin data, beside the notifier's:

    remind:<seconds>   a before-expiry reminder at that lead
    nudge:<n>          the n-th nudge about a request still pending
    ended              the "your access has ended" DM and the card update

Each key is claimed with compare-and-swap *before* its message goes out, so two bot processes send it
once between them, and a restarted bot never repeats one (a process that dies between claiming and
sending sends nothing: at most once). A send that fails everywhere gives its claim back and is tried
again. A reminder that fell due while the bot was down is sent late, but only while the access lasts.
Several due at once (a long downtime) are sent as one message: the latest.

Teleport may drop an approved request the moment its access ends, plugin data and all, so the `ended`
key is claimed `ENDED_CLAIM_AHEAD` before the end, with what the message needs kept in memory until then.
That claim is a lease, `<process>@<unix time>`, renewed every `ENDED_HEARTBEAT` while it is held: a stop
gives it back, and the claim of a process that was killed lapses `ENDED_LEASE` after its last renewal, when
another process takes it over. So "your access has ended" is lost only when no process is running from
`ENDED_LEASE` before the end until Teleport drops the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, runtime_checkable

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.date import DateTrigger

from chatops_bot import metrics
from chatops_bot.config import RemindersSettings
from chatops_bot.notify import Notifier, Outbound
from commands import messages
from commands.errors import BackendError, CompareFailed, NotFound
from commands.model import AccessRequest, RequestState
from commands.ports import Clock
from commands.reply import RequestCard

logger = logging.getLogger(__name__)

REMIND, NUDGE, ENDED, SENT = "remind:", "nudge:", "ended", "sent"
ENDED_CLAIM_AHEAD = timedelta(seconds=30)
ENDED_HEARTBEAT = timedelta(seconds=5)  # how often a held "ended" claim is renewed
ENDED_LEASE = timedelta(seconds=12)  # a claim not renewed for this long belongs to a process that died
ENDED_GRACE = timedelta(minutes=10)  # how late "your access has ended" may still be sent
RETRY = timedelta(seconds=30)  # a send that failed everywhere is tried again this much later
SUPERSEDED = timedelta(minutes=1)  # a reminder this close to the next of its kind is left to that one
LATE = timedelta(seconds=10)  # a job this far past its time is a backlog (after a restart), not on time
STOP_GRACE = 5.0  # seconds sends under way get to finish at shutdown
ON_TIME_SLOTS, LATE_SLOTS = 64, 8  # reminders being sent at once


@dataclass(frozen=True, order=True)
class Due:
    at: datetime
    key: str

    @property
    def kind(self) -> str:
        return self.key.partition(":")[0] if ":" in self.key else self.key


def plan(request: AccessRequest, settings: RemindersSettings) -> list[Due]:
    """Everything the request will ever be due for, in time order, whether or not it is past."""
    due: list[Due] = []
    ends = request.access_expires
    if request.state is RequestState.APPROVED and ends is not None:
        # Teleport fixes the expiry at creation: a lead that had passed when the request was approved
        # (its last review) is skipped, the approval DM said it all.
        approved = max((r.created for r in request.reviews if r.created), default=request.created)
        for lead in settings.before_expiry:
            if approved is None or ends - lead > approved:
                due.append(Due(ends - lead, f"{REMIND}{int(lead.total_seconds())}"))
        if settings.on_expiry:
            due.append(Due(ends - ENDED_CLAIM_AHEAD, ENDED))
    elif request.state is RequestState.PENDING and request.created is not None:
        after = settings.nudge_pending_after
        due += [Due(request.created + after * n, f"{NUDGE}{n}") for n in range(1, settings.max_nudges + 1)]
    return sorted(due)


@runtime_checkable
class ReminderListener(Protocol):
    """Something else told of each reminder as it goes out (the webhooks' access.expiring and access.ended):
    `key` is the reminder's plugin data key (`remind:<seconds>`, `ended`). Must return at once."""

    def reminded(self, request: AccessRequest, key: str) -> None: ...


@dataclass
class _Tracked:
    request: AccessRequest
    handled: set[str] = field(default_factory=set)  # keys this process claimed or saw claimed
    retry_at: datetime | None = None


@dataclass(frozen=True)
class _Ending:
    request: AccessRequest
    cards: dict[str, str]
    claim: str  # the `ended` value this process holds: `<process>@<unix time>` of its last renewal
    renewed: datetime


class Reminders:
    """An `Observer` of the watcher that keeps one APScheduler job per request with something to come."""

    def __init__(self, notifier: Notifier, settings: RemindersSettings, clock: Clock,
                 scheduler: AsyncIOScheduler | None = None) -> None:
        self.notifier, self.client, self.settings, self.clock = notifier, notifier.client, settings, clock
        self.scheduler = scheduler or AsyncIOScheduler(timezone=UTC)
        self._tracked: dict[str, _Tracked] = {}
        self._ending: dict[str, _Ending] = {}
        self._firing: set[asyncio.Task[Any]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._synced: asyncio.Event | None = None
        self._on_time, self._late = asyncio.Semaphore(ON_TIME_SLOTS), asyncio.Semaphore(LATE_SLOTS)
        self.listeners: list[ReminderListener] = []

    # --- the watcher's observer -------------------------------------------------------------------

    def put(self, request: AccessRequest) -> None:
        tracked = self._tracked.get(request.id)
        if tracked is None:
            tracked = self._tracked[request.id] = _Tracked(request)
        tracked.request = request
        self._arm(request.id)

    def delete(self, request_id: str) -> None:
        """Nothing more is sent about it, except "your access has ended" once claimed: Teleport drops an
        approved request when its access ends, and deleting one early does not end the access it gave."""
        self._tracked.pop(request_id, None)
        self._unschedule(request_id)
        lock = self._locks.get(request_id)
        if lock is not None and not lock.locked():
            del self._locks[request_id]  # a run under way removes it when it ends

    def resynced(self, requests: list[AccessRequest]) -> None:
        started = time.perf_counter()
        listed = {request.id for request in requests}
        running = self.scheduler.state == STATE_RUNNING
        if running:
            self.scheduler.pause()  # no wake-up per job while thousands are set; one when resumed
        try:
            for gone in set(self._tracked) - listed:
                self.delete(gone)
            for request in requests:
                self.put(request)
        finally:
            if running:
                self.scheduler.resume()
        logger.info("reminders: %d jobs for %d requests, scheduled in %.3f s", self.jobs, len(requests),
                    time.perf_counter() - started)

    # --- running ----------------------------------------------------------------------------------

    def follow(self, synced: asyncio.Event) -> None:
        """The watcher's `synced`: while it is set, the requests seen through events are current."""
        self._synced = synced

    def start(self) -> None:
        self.scheduler.start()

    async def stop(self) -> None:
        """Stop firing, let sends under way finish for a moment, then cancel the rest; a cancelled send
        gives its claim back, and so does every "ended" claimed but not yet sent, so the next process
        sends it."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._firing:
            await asyncio.wait(list(self._firing), timeout=STOP_GRACE)
        for task in list(self._firing):
            task.cancel()
        await asyncio.gather(*self._firing, return_exceptions=True)
        held, self._ending = self._ending, {}
        for request_id, ending in held.items():
            with contextlib.suppress(BackendError):
                await self.client.update_plugin_data(request_id, set={ENDED: ""}, expect={ENDED: ending.claim})
                logger.info("stopping: left the ended reminder to the next bot process",
                            extra={"request_id": request_id, "teleport_user": ending.request.user})

    @property
    def jobs(self) -> int:
        return len(self.scheduler.get_jobs())

    def clock_moved(self) -> None:
        """Set every job again from the clock: for a clock that jumps (tests), not for the system clock."""
        for request_id in list(self._tracked):
            self._arm(request_id)
        for request_id, ending in self._ending.items():
            self._schedule(f"{request_id}#ended", ending.request.access_expires or self.clock.now(),
                           self._end, request_id)
            self._schedule(f"{request_id}#beat", ending.renewed + ENDED_HEARTBEAT, self._beat, request_id)

    async def idle(self, poll: float = 0.01) -> None:
        """Returns once nothing is due now and nothing is being sent, twice in a row `poll` apart: a job
        APScheduler has taken is neither in the store nor yet being sent (for tests and benchmarks)."""
        quiet = 0
        while quiet < 2:
            await asyncio.sleep(poll)
            now = datetime.now(UTC)
            due = [job for job in self.scheduler.get_jobs() if job.next_run_time and job.next_run_time <= now]
            quiet = 0 if due or self._firing else quiet + 1

    # --- scheduling -------------------------------------------------------------------------------

    def _arm(self, request_id: str) -> None:
        """The request's job at its next unhandled due time, or no job when nothing is left."""
        tracked = self._tracked.get(request_id)
        left = [d for d in plan(tracked.request, self.settings) if d.key not in tracked.handled] if tracked else []
        if tracked is None or not left:
            self._unschedule(request_id)
            return
        at = min(left).at
        if tracked.retry_at and tracked.retry_at > at:
            at = tracked.retry_at  # what is due failed a moment ago: not again at once
        self._schedule(request_id, at, self._fire, request_id)

    def _schedule(self, job_id: str, at: datetime, func: Any, *args: Any) -> None:
        # The job runs on the system clock; `at` is on ours (the same, except in tests).
        run_at = datetime.now(UTC) + (at - self.clock.now())
        self.scheduler.add_job(self._spawn, DateTrigger(run_date=run_at, timezone=UTC), args=(at, func, *args),
                               id=job_id, replace_existing=True, misfire_grace_time=None, coalesce=True)

    def _unschedule(self, job_id: str) -> None:
        with contextlib.suppress(JobLookupError):  # nothing was scheduled
            self.scheduler.remove_job(job_id)

    async def _spawn(self, at: datetime, func: Any, *args: Any) -> None:
        """The APScheduler job: hands the work to a task of its own and returns, so that the job may be set
        again (`replace_existing`) while the work runs. Work that is late (due before a restart) waits for
        its own few slots, so that a backlog never holds up what falls due on time."""
        late = self.clock.now() - at > LATE
        task = asyncio.create_task(self._run(self._late if late else self._on_time, func, *args))
        self._firing.add(task)
        task.add_done_callback(self._firing.discard)

    async def _run(self, slots: asyncio.Semaphore, func: Any, *args: Any) -> None:
        async with slots:
            try:
                await func(*args)
            except Exception:
                # Every job is for one request, named first (`_fire`, `_end`).
                context = {"request_id": args[0]} if args and isinstance(args[0], str) else {}
                logger.exception("a reminder job failed", extra=context)

    # --- firing -----------------------------------------------------------------------------------

    async def _fire(self, request_id: str) -> None:
        """Everything due for the request, sent; then its job set for what comes next. One at a time per
        request, so that what one run handled is known to the next."""
        lock = self._locks.setdefault(request_id, asyncio.Lock())
        try:
            async with lock:
                await self._fire_locked(request_id)
        finally:
            if not lock.locked() and request_id not in self._tracked:
                self._locks.pop(request_id, None)

    async def _fire_locked(self, request_id: str) -> None:
        tracked = self._tracked.get(request_id)
        if tracked is None:
            return
        try:
            # While the watcher is synced its events keep the snapshot current (a denial or deletion
            # reaches `put`/`delete`); otherwise ask Teleport, so nothing goes out for a dropped request.
            live = self._synced is not None and self._synced.is_set()
            seen = tracked.request
            request = seen if live else await self.client.get_request(request_id)
            if tracked.request is not seen:
                request = tracked.request  # an event came while Teleport answered: it is newer
        except NotFound:
            self.delete(request_id)
            return
        except BackendError as err:
            logger.warning("cannot read request %s for its reminders (%s); trying again", request_id,
                           err.detail or err.message, extra={"request_id": request_id})
            tracked.retry_at = self.clock.now() + RETRY
            self._arm(request_id)
            return
        tracked.request, tracked.retry_at = request, None
        now = self.clock.now()
        left = [d for d in plan(request, self.settings) if d.key not in tracked.handled]
        groups: dict[str, list[Due]] = {}
        for item in left:
            if item.at <= now:
                groups.setdefault(item.kind, []).append(item)
        for kind, items in groups.items():
            if kind == "remind" and now >= (request.access_expires or now):
                tracked.handled.update(d.key for d in items)  # never after the access has ended
                continue
            if kind == "ended" and now >= (request.access_expires or now) + ENDED_GRACE:
                tracked.handled.update(d.key for d in items)
                continue
            # A late reminder (due before a restart) just before the next one is noise: that one says it, on
            # time. One that is on time is sent, however close the next.
            late = all(now - d.at > LATE for d in items)
            superseded = late and any(d.kind == kind and now < d.at < now + SUPERSEDED for d in left)
            await self._claim_and_send(tracked, kind, items, send=not superseded)
        if request_id in self._tracked:
            self._arm(request_id)

    async def _claim_and_send(self, tracked: _Tracked, kind: str, items: list[Due], *, send: bool = True) -> None:
        request = tracked.request
        won: list[str] = []
        claim = self._lease() if kind == "ended" else self.notifier.process
        try:
            for item in items:
                try:
                    await self.client.update_plugin_data(request.id, set={item.key: claim}, expect={item.key: ""})
                    won.append(item.key)
                except CompareFailed:
                    # Sent (or being sent) by this bot before a restart, or by another bot process; an "ended"
                    # claim whose lease lapsed is taken over, one still held is looked at again when it would.
                    taken = await self._take_over(tracked, item.key, claim) if kind == "ended" else "done"
                    if taken == "held":
                        return
                    won += [item.key] if taken == "won" else []
                tracked.handled.add(item.key)
            if not won or not send:
                return
            if kind == "remind":
                self._tell_listeners(request, won)
            data = await self.client.get_plugin_data(request.id) if kind in ("nudge", "ended") else {}
        except NotFound:
            self.delete(request.id)
            return
        except BackendError as err:
            logger.warning("cannot claim %s of request %s (%s); trying again", kind, request.id,
                           err.detail or err.message, extra={"request_id": request.id})
            await self._release(tracked, won)
            return
        if kind == "ended":
            self._ending[request.id] = _Ending(request, self.notifier.cards_of(data), claim, self.clock.now())
            self._schedule(f"{request.id}#ended", request.access_expires or self.clock.now(), self._end, request.id)
            self._schedule(f"{request.id}#beat", self.clock.now() + ENDED_HEARTBEAT, self._beat, request.id)
            return
        try:
            sent = await (self._remind(request) if kind == "remind" else self._nudge(request, data))
        except BackendError as err:  # looking up who to tell
            logger.warning("cannot send %s of request %s (%s); trying again", kind, request.id,
                           err.detail or err.message, extra={"request_id": request.id})
            sent = False
        except asyncio.CancelledError:  # stopping: the next process sends it
            await asyncio.shield(self._release(tracked, won))
            raise
        if sent:
            metrics.REMINDERS_SENT.labels(kind=kind).inc()
            logger.info("sent %s reminder", kind, extra={"request_id": request.id, "teleport_user": request.user})
        else:
            await self._release(tracked, won)

    def _tell_listeners(self, request: AccessRequest, keys: Iterable[str]) -> None:
        for listener in self.listeners:
            for key in keys:
                try:
                    listener.reminded(request, key)
                except Exception:
                    logger.exception("a reminder listener failed", extra={"request_id": request.id})

    async def _release(self, tracked: _Tracked, keys: Iterable[str]) -> None:
        """Give back claims whose message reached no one, and try again in `RETRY`."""
        for key in keys:
            with contextlib.suppress(BackendError):
                await self.client.update_plugin_data(tracked.request.id, set={key: ""},
                                                     expect={key: self.notifier.process})
            tracked.handled.discard(key)
        tracked.retry_at = self.clock.now() + RETRY

    async def _remind(self, request: AccessRequest) -> bool:
        now = self.clock.now()
        return await self._dm_requester(request, partial(messages.expiry_reminder, request, now),
                                        partial(messages.expiry_reminder_card, request, now))

    async def _nudge(self, request: AccessRequest, data: dict[str, str]) -> bool:
        text = messages.nudge(request, self.clock.now())
        reviewed = {review.author for review in request.reviews}
        sends = [self.notifier.outbound_for(key).reply_in_thread(ref, text)
                 for key, ref in self.notifier.cards_of(data).items() if "@" not in key]
        for reviewer in dict.fromkeys(request.suggested_reviewers):
            if reviewer in reviewed or reviewer == request.user:
                continue
            for platform, chat_id in (await self.notifier.chat_ids.chat_ids(reviewer)).items():
                if platform in self.notifier.outbounds:
                    # Text only: a card here would keep live buttons that nothing ever redraws.
                    sends.append(self.notifier.outbounds[platform].dm(chat_id, text))
        return await _any_sent(request.id, "nudge", sends)

    def _lease(self) -> str:
        return f"{self.notifier.process}@{int(self.clock.now().timestamp())}"

    async def _take_over(self, tracked: _Tracked, key: str, claim: str) -> str:
        """What became of `key`, whose claim this process just found taken: "won" when the holder's lease had
        lapsed and this process took it over, "held" while it has not (looked at again once it would),
        "done" when it was sent (or is held in a form without a lease)."""
        held = (await self.client.get_plugin_data(tracked.request.id)).get(key, "")
        owner, _, since = held.partition("@")
        if not held:
            tracked.retry_at = self.clock.now()  # given back a moment ago: claim it again
            return "held"
        if not since.isdigit() or owner == self.notifier.process:
            return "done"
        lapses = datetime.fromtimestamp(int(since), UTC) + ENDED_LEASE
        if self.clock.now() < lapses:
            tracked.retry_at = lapses + timedelta(seconds=1)
            return "held"
        try:
            await self.client.update_plugin_data(tracked.request.id, set={key: claim}, expect={key: held})
        except CompareFailed:
            return "done"
        logger.warning("took over the ended reminder from bot process %s, whose claim lapsed", owner,
                       extra={"request_id": tracked.request.id, "teleport_user": tracked.request.user})
        return "won"

    async def _beat(self, request_id: str) -> None:
        """Renew a held "ended" claim, so that other processes know this one is alive; until it is sent."""
        ending = self._ending.get(request_id)
        if ending is None:
            return
        renewed = self._lease()
        try:
            await self.client.update_plugin_data(request_id, set={ENDED: renewed}, expect={ENDED: ending.claim})
            self._ending[request_id] = replace(ending, claim=renewed, renewed=self.clock.now())
        except CompareFailed:
            # Another process judged this one dead and took the claim over: it sends the message now.
            logger.warning("another bot process took over the ended reminder", extra={"request_id": request_id})
            self._ending.pop(request_id, None)
            self._unschedule(f"{request_id}#ended")
            return
        except BackendError:
            pass  # gone with its access (NotFound), or Teleport is away: the message still goes out at the end
        if request_id in self._ending:
            at = self._ending[request_id].renewed + ENDED_HEARTBEAT
            self._schedule(f"{request_id}#beat", max(at, self.clock.now() + ENDED_HEARTBEAT), self._beat,
                           request_id)

    async def _end(self, request_id: str) -> None:
        ending = self._ending.pop(request_id, None)
        self._unschedule(f"{request_id}#beat")
        if ending is None:
            return
        request = ending.request
        self._tell_listeners(request, [ENDED])
        card = await self.notifier.detailed(request, state=messages.access_ended_state(request))
        await _any_sent(request_id, "ended card", [self.notifier.outbound_for(key).update_card(ref, card)
                                                   for key, ref in ending.cards.items()])
        if await self._dm_requester(request, partial(messages.access_ended, request)):
            metrics.REMINDERS_SENT.labels(kind="ended").inc()
            logger.info("sent ended reminder", extra={"request_id": request_id, "teleport_user": request.user})
        # Settled: no process takes it over once the lease would have lapsed (if Teleport still has it).
        with contextlib.suppress(BackendError):
            await self.client.update_plugin_data(request_id, set={ENDED: SENT}, expect={ENDED: ending.claim})

    async def _dm_requester(self, request: AccessRequest, text: Callable[[str], str],
                            card: Callable[[str], RequestCard] | None = None) -> bool:
        """DM the requester on every platform they are linked on, `text` (and `card`) made for their time
        zone there; True when at least one got it."""
        linked = await self.notifier.chat_ids.chat_ids(request.user)

        async def send(outbound: Outbound, chat_id: str) -> str:
            tz = await outbound.time_zone(chat_id)
            return await outbound.dm(chat_id, text(tz), card(tz) if card is not None else None)

        sends = [send(self.notifier.outbounds[platform], chat_id)
                 for platform, chat_id in linked.items() if platform in self.notifier.outbounds]
        if not sends:
            logger.warning("%s is linked to no chat platform: reminder not sent", request.user,
                           extra={"request_id": request.id})
        return await _any_sent(request.id, "reminder DM", sends)


async def _any_sent(request_id: str, what: str, sends: list[Any]) -> bool:
    """True when at least one send went out, or there was nowhere to send (retrying would not help)."""
    if not sends:
        return True
    results = await asyncio.gather(*sends, return_exceptions=True)
    for result in results:
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            logger.warning("%s failed: %r", what, result, extra={"request_id": request_id})
    return any(not isinstance(result, BaseException) for result in results)
