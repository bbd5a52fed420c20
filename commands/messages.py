"""Every sentence the bot says to people, and how requests are summarised on cards and in lists.

User-supplied text (reasons, names) passes through `commands.text.safe_text` here, once, before any
renderer sees it. Renderers only lay out and escape for their platform.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from commands.approvals import Approval, Tally
from commands.grammar import format_duration
from commands.model import AccessRequest, ChatUser, RequestState
from commands.reply import Action, Field, RequestCard
from commands.text import LIST_REASON_LIMIT, NAME_LIMIT, REASON_LIMIT, as_typed, quoted, safe_text, truncate

# The last characters: Teleport's IDs are UUIDv7, whose first characters are the creation time (requests
# made within a minute share them) and whose last ones are random.
SHORT_ID = 8
# The same words wherever a request without a reason is shown: card, list and DM.
NO_REASON = "no reason given"
STATE_LABEL = {
    RequestState.PENDING: "Pending",
    RequestState.APPROVED: "Approved",
    RequestState.DENIED: "Denied",
    RequestState.PROMOTED: "Promoted",
    RequestState.NONE: "Unknown",
}


def name(text: str) -> str:
    return safe_text(text, limit=NAME_LIMIT)


def names(items: Sequence[str]) -> str:
    return ", ".join(name(i) for i in items) or "none"


def short_id(request_id: str) -> str:
    return request_id[-SHORT_ID:]


def relative(when: datetime, now: datetime) -> str:
    delta = when - now
    minutes = round(abs(delta.total_seconds()) / 60)
    if minutes == 0:
        return "just now"
    text = format_duration(timedelta(minutes=minutes))
    return f"in {text}" if delta > timedelta(0) else f"{text} ago"


def stamp(moment: datetime, tz: str = "", *, seconds: bool = False) -> str:
    """A moment as the person reads it: in their own time zone with UTC beside it
    (`2026-12-05 15:05 CET (14:05 UTC)`; the UTC date too when it differs), or in UTC alone when their zone
    is unknown or not one this machine knows."""
    clock = "%H:%M:%S" if seconds else "%H:%M"
    utc = moment.astimezone(UTC)
    zone = _zone(tz)
    if zone is None:
        return f"{utc:%Y-%m-%d {clock}} UTC"
    local = utc.astimezone(zone)
    same_day = local.date() == utc.date()
    beside = f"{utc:{clock}} UTC" if same_day else f"{utc:%Y-%m-%d {clock}} UTC"
    return f"{local:%Y-%m-%d {clock}} {local.tzname() or tz} ({beside})"


def _zone(tz: str) -> ZoneInfo | None:
    if not tz or tz.upper() in ("UTC", "ETC/UTC", "Z"):
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def when(moment: datetime | None, now: datetime, tz: str = "") -> str:
    if moment is None:
        return "unknown"
    return f"{stamp(moment, tz)} ({relative(moment, now)})"


def progress(request: AccessRequest, tally: Tally | None = None) -> str:
    """`1 of 2 approvals`: from Teleport's reviews and thresholds, or from the bot's count (`review.rules`)."""
    if tally is not None:
        return f"{tally.count} of {tally.needed} approvals"
    return f"{request.approvals} of {request.approvals_needed} approvals"


def web_link(web_proxy_addr: str, request_id: str) -> str:
    if not web_proxy_addr:
        return ""
    host = web_proxy_addr.removeprefix("https://").rstrip("/")
    return f"https://{host}/web/requests/{request_id}"


def state_line(request: AccessRequest, tally: Tally | None = None) -> str:
    """`Approved by bob (reason)` and the like, from the reviews that decided it."""
    label = STATE_LABEL[request.state]
    if request.state is RequestState.PENDING:
        return f"{label} ({progress(request, tally)})"
    deciders = [r for r in request.reviews if r.proposed_state is request.state]
    text = label
    if deciders:
        text += f" by {names([r.author for r in deciders])}"
    if request.resolve_reason:
        text += f": {as_typed(request.resolve_reason, limit=REASON_LIMIT)}"
    return text


def card(
    request: AccessRequest,
    *,
    now: datetime,
    actions: Sequence[Action] = (),
    web_url: str = "",
    title: str = "",
    tally: Tally | None = None,
    tz: str = "",
    details: Sequence[Field] = (),
) -> RequestCard:
    """`tally`: the approvals the bot counted (`review.rules`), shown while the request is pending; `tz`: the
    time zone of the one person who sees this card (a channel's cards stay in UTC); `details`: what outside
    systems add (a Jira ticket), as raw text, shown after the reason."""
    fields = [
        Field("Request", request.id),
        Field("User", name(request.user)),
        Field("Roles", names(request.roles)),
        Field("Reason", as_typed(request.reason, limit=REASON_LIMIT, multiline=True) or NO_REASON),
        *(Field(safe_text(d.label, limit=NAME_LIMIT), safe_text(d.value, limit=REASON_LIMIT), d.url)
          for d in details),
        Field("State", state_line(request, tally)),
    ]
    if request.state in (RequestState.PENDING, RequestState.APPROVED):  # a denied request grants nothing
        fields.append(Field("Access until", when(request.access_expires, now, tz)))
    if request.resources:
        fields.insert(3, Field("Resources", names(request.resources)))
    if request.suggested_reviewers:
        fields.append(Field("Reviewers asked", names(request.suggested_reviewers)))
    for review in request.reviews:
        verdict = "approved" if review.proposed_state is RequestState.APPROVED else "denied"
        reason = f": {as_typed(review.reason, limit=REASON_LIMIT)}" if review.reason else ""
        fields.append(Field("Review", f"{name(review.author)} {verdict}{reason}"))
    if tally is not None and request.state is RequestState.PENDING:
        for approval in tally.approvals:
            reason = f": {as_typed(approval.reason, limit=REASON_LIMIT)}" if approval.reason else ""
            fields.append(Field("Review", f"{name(approval.user)} approved{reason}"))
    created = f"Requested {relative(request.created, now)}" if request.created else ""
    return RequestCard(
        request=request,
        title=title or f"Access request from {name(request.user)} for {names(request.roles)}",
        fields=tuple(fields),
        footer=created,
        actions=tuple(actions) if request.state is RequestState.PENDING else (),
        web_url=web_url,
    )


def list_line(request: AccessRequest, now: datetime) -> str:
    age = f"requested {relative(request.created, now)}" if request.created else "requested ?"
    reason = as_typed(request.reason, limit=LIST_REASON_LIMIT) or NO_REASON
    state = STATE_LABEL[request.state]
    if request.state is RequestState.PENDING:
        state += f" ({progress(request)})"  # the words the card uses
    elif request.state is RequestState.APPROVED and request.access_expires:
        state += f", {format_duration_left(request.access_expires, now)}"
    who = f"{short_id(request.id)}  {name(request.user)}  {names(request.roles)}"
    return f"{who}  \u00b7 {reason} \u00b7 {age} \u00b7 {state}"


def format_duration_left(until: datetime, now: datetime) -> str:
    left = until - now
    if left <= timedelta(0):
        return "expired"
    # Rounded to the minute like `relative`, so a card's "in 2h" and a list's "2h left" agree.
    return f"{format_duration(timedelta(minutes=max(1, round(left.total_seconds() / 60))))} left"


# --- what the commands say --------------------------------------------------------------------------

def created(request: AccessRequest) -> str:
    reviewers = f" Asked to review: {names(request.suggested_reviewers)}." if request.suggested_reviewers else ""
    return f"Requested {names(request.roles)} for {name(request.user)} (request {short_id(request.id)}).{reviewers}"


def no_ticket_checks(ticket: str) -> str:
    return f"This bot checks no tickets, so `--ticket` has no effect here: put {name(ticket)} in the reason instead."


def reviewed(request_id: str, approve: bool, state: RequestState) -> str:
    verb = "approved" if approve else "denied"
    after = f" The request is now {STATE_LABEL[state].lower()}."
    if state is RequestState.PENDING:
        more = "approvals before it takes effect" if approve else "denials before it is denied"
        after = f" It needs more {more}."
    return f"You {verb} request {short_id(request_id)}.{after}"


def already_resolved(request: AccessRequest, now: datetime, tz: str = "", viewer: str = "") -> str:
    deciders = [r for r in request.reviews if r.proposed_state is request.state]
    who = f" by {names(['you' if r.author == viewer else r.author for r in deciders])}" if deciders else ""
    at = deciders[-1].created if deciders and deciders[-1].created else None
    moment = f" at {stamp(at, tz)}" if at else ""
    return f"Request {short_id(request.id)} was already {STATE_LABEL[request.state].lower()}{who}{moment}."


def unknown_user(user: ChatUser, trait: str) -> str:
    who = name(user.name or user.id)
    chat_id = name(user.id)  # from the platform, but shown back to the person: made safe like any name
    how = f"add the trait `{trait}: {chat_id}` to your Teleport user" if trait else "ask an admin to map you"
    return (
        f"I don't know which Teleport user you are, {who}. To get linked, {how} "
        f"(or ask an admin to add `{name(user.platform)}:{chat_id}` to `users.map` in the bot's config)."
    )


def not_found(request_id: str) -> str:
    return f"There is no access request with ID {name(request_id)} that you can see."


def ambiguous(prefix: str, visible: Sequence[AccessRequest], total: int) -> str:
    listed = ", ".join(f"{m.id} ({name(m.user)}: {names(m.roles)})" for m in visible[:5])
    hidden = total - min(len(visible), 5)
    more = f"{', and ' if listed else ''}{hidden} more" if hidden else ""
    return f"ID {name(prefix)} matches {total} requests: {listed}{more}. Give the full ID."


def own_request() -> str:
    return "You cannot review your own access request."


def refused(reason: str) -> str:
    return f"You may not review this request: {reason}."


def already_approved(request_id: str, tally: Tally) -> str:
    return (
        f"You already approved request {short_id(request_id)} ({tally.count} of {tally.needed} approvals); "
        "each person counts once."
    )


def approval_counted(request_id: str, tally: Tally) -> str:
    left = tally.needed - tally.count
    more = f"{left} more approval{'s' if left != 1 else ''}"
    return (
        f"You approved request {short_id(request_id)}: {tally.count} of {tally.needed} approvals. "
        f"It takes effect after {more}."
    )


def approvals_unreadable() -> str:
    return "I cannot read the approvals recorded on this request, so I cannot count yours. Nothing was changed."


def approvals_contended() -> str:
    return "Others are approving this request at the same moment and I could not record yours. Try again."


def rules_approved_reason(approvals: Sequence[Approval]) -> str:
    """Teleport's resolve reason when `review.rules` approvals reach the count: every approver (a person via
    a chat platform, or a decider via `automatic`), and why."""
    parts = [
        f"{a.user} via {a.platform}" + (f": {truncate(a.reason, REASON_LIMIT)}" if a.reason else "")
        for a in approvals
    ]
    return "approved by " + "; ".join(parts)


def rules_denied_reason(reviewer: str, platform: str, reason: str) -> str:
    said = f": {truncate(reason, REASON_LIMIT)}" if reason else ""
    return f"denied in chat by {reviewer} via {platform}{said}"


def already_reviewed(request_id: str) -> str:
    return f"You have already reviewed request {short_id(request_id)}; Teleport counts one review per person."


def as_bot_needs_one(request: AccessRequest, needed: int, approve: bool) -> str:
    what = "approvals" if approve else "denials"
    return (
        f"Request {short_id(request.id)} needs {needed} {what}, but this bot reviews as one "
        "identity (review.mode: as_bot) and can only count once. Review it in Teleport (`tsh request review`) "
        "or the Web UI."
    )


def web_only(roles: Sequence[str], url: str) -> str:
    where = f": {url}" if url else " (`tsh request review`)"
    return f"Requests for {names(roles)} must be reviewed in Teleport, where MFA applies{where}."


def duration_capped(asked: timedelta, allowed: timedelta, roles: Sequence[str]) -> str:
    return (
        f"You asked for {format_duration(asked)}, but {names(roles)} allows at most "
        f"{format_duration(allowed)} of access. Nothing was requested; try again with --for "
        f"{format_duration(allowed)} or less."
    )


def not_requestable(refused: Sequence[str], allowed: Sequence[str]) -> str:
    """`/access request dab`: what was refused, the nearest role this person may request, and the rest."""
    text = f"You may not request {names(refused)}."
    close = difflib.get_close_matches(refused[0], list(allowed), n=1) if allowed else []
    if close:
        text += f" Did you mean {names(close)}?"
    if allowed:
        text += f" Roles you may request: {names(sorted(allowed))}."
    else:
        text += " Teleport lets you request no role; ask an admin for a role with `allow.request`."
    return text


def reason_required(roles: Sequence[str]) -> str:
    return (
        f"Teleport requires a reason to request {names(roles)}. Add one after the roles, "
        "e.g. `/access request dba INC-4411 replica lag`."
    )


def already_asked(pending: AccessRequest) -> str:
    return (
        f"You already asked for {names(pending.roles)}: {short_id(pending.id)}, still pending. Nothing new "
        f"was requested. `/access show {short_id(pending.id)}` shows it; `/access cancel "
        f"{short_id(pending.id)}` withdraws it."
    )


def reviewer_is_requester(reviewer: str) -> str:
    return f"{name(reviewer)} is you, and nobody may review their own request"


def reviewer_unknown(reviewer: str) -> str:
    return f"{name(reviewer)} is not a Teleport user"


def reviewer_unchecked(reviewer: str) -> str:
    return f"{name(reviewer)}'s Teleport roles could not all be loaded, so I cannot tell whether they may review it"


def reviewer_may_not(reviewer: str, roles: Sequence[str]) -> str:
    return f"{name(reviewer)} may not review requests for {names(roles)}"


def reviewers_refused(problems: Sequence[str]) -> str:
    return "Nothing was requested: " + "; ".join(problems) + ". Name other reviewers, or leave out --reviewers."


def reviews_nothing(by_rules: bool = False) -> str:
    """Someone who may review no request at all: the same words as the policy's refusal, for any ID."""
    why = ("no entry in review.rules names you or one of your roles as a reviewer" if by_rules
           else "you have no role that allows reviewing access requests")
    return refused(why)


def not_yours_to_withdraw(request: AccessRequest) -> str:
    return f"Only {name(request.user)}, who made request {short_id(request.id)}, may withdraw it."


def not_withdrawable(request: AccessRequest, now: datetime) -> str:
    return f"{already_resolved(request, now)} Only a pending request can be withdrawn."


def withdrawn(request: AccessRequest) -> str:
    return (
        f"You withdrew your request for {names(request.roles)} ({short_id(request.id)}). Nothing was granted; "
        "its cards and the reviewers' messages say it was withdrawn."
    )


def roles_header(count: int) -> str:
    return f"Roles you may request ({count})"


def role_line(role: str, longest: timedelta | None, reason_required: bool | None,
              reviewers: Sequence[str]) -> str:
    """One role of `/access roles`: its longest access, whether a reason is required, who is asked."""
    if longest is None:
        duration = "longest access unknown"
    else:
        duration = f"up to {format_duration(timedelta(minutes=max(1, round(longest.total_seconds() / 60))))}"
    reason = {True: "reason required", False: "reason optional", None: "reason rule unknown"}[reason_required]
    asked = f"reviewers asked: {names(reviewers)}" if reviewers else "no reviewers suggested"
    return f"{name(role)} \u00b7 {duration} \u00b7 {reason} \u00b7 {asked}"


def roles_footer() -> str:
    return "Ask with `/access request ROLE --for DURATION REASON…`; without --for you get the longest."


def nothing_listed(scope: str) -> str:
    return {
        "pending": "Nothing is waiting for your review.",
        "mine": "You have no access requests.",
        "active": "There is no active elevated access.",
    }.get(scope, "There are no access requests to show.")


def list_header(scope: str, page: int, pages: int, total: int) -> str:
    title = {"pending": "Waiting for your review", "mine": "Your requests", "active": "Active access"}.get(
        scope, "All requests"
    )
    return f"{title} ({total}, page {page} of {pages})"


def list_footer(scope: str, page: int, pages: int) -> str:
    return f"More: `/access list {scope} --page {page + 1}`" if page < pages else ""


def no_teleport_user(name_: str) -> str:
    return (f"You are linked to the Teleport user {name(name_)}, but Teleport has no such user (renamed or "
            "deleted?). Ask an admin to fix the link (the trait on your Teleport user, or `users.map`).")


def start_not_short(given: str, request_id: str) -> str:
    return (f"{quoted(given)} is the start of request {request_id}; its short ID is the last 8 characters: "
            f"`{short_id(request_id)}`.")


def page_out_of_range(page: int, pages: int) -> str:
    return f"There is no page {page}: the list has {'only one page' if pages == 1 else f'{pages} pages'}."


def roles_not_loaded(missing: Sequence[str]) -> str:
    which = f" ({names(missing)})" if missing else ""
    return (
        f"I could not load all of your Teleport roles{which}, so I cannot check what you may review. "
        "Nothing was changed."
    )


def backend_error(message: str) -> str:
    """What Teleport said (refused, or could not be reached), made safe: it may quote what was typed."""
    return safe_text(message, limit=REASON_LIMIT, multiline=True)


def apology(correlation_id: str) -> str:
    return (
        f"Sorry, something went wrong on my side (error id {correlation_id}). "
        "Check `/access list mine` before trying again."
    )


def deny_reason_required() -> str:
    return "Say why you deny it: `/access deny ID REASON…` (review.deny_reason_required is on)."


def as_bot_reason(reason: str, reviewer: str) -> str:
    """The reason recorded in Teleport when the bot reviews as itself: it names the chat reviewer."""
    said = f": {reason}" if reason else ""
    return f"reviewed in chat by {reviewer}{said}"


# --- what chat adapters say around the commands (Slack first; any platform may use them) -------------

ACTION_LABEL = {Action.APPROVE: "Approve", Action.DENY: "Deny", Action.EXTEND: "Extend"}


def working_on_it() -> str:
    return "Working on it\u2026 Teleport is slow to answer; the result will follow here."


def more_not_shown(count: int) -> str:
    return f"\u2026and {count} more not shown. `/access list` shows them page by page."


def open_in_teleport() -> str:
    return "Open in Teleport"


def approve_confirm_title() -> str:
    return "Approve this request?"


def approve_confirm_text(request: AccessRequest) -> str:
    return f"{name(request.user)} gets {names(request.roles)} as soon as the request is approved."


def cancel() -> str:
    return "Cancel"


def request_form_title() -> str:
    return "Request access"


def request_form_submit() -> str:
    return "Request"


def request_form_roles() -> str:
    return "Roles"


def request_form_duration() -> str:
    return "For how long"


def request_form_duration_hint() -> str:
    return "A number and a unit, largest first: 30m, 2h, 1h30m, 1d. Empty: as long as the roles allow."


def request_form_reason() -> str:
    return "Reason"


def request_form_reviewers() -> str:
    return "Reviewers"


def request_form_ticket() -> str:
    return "Ticket"


def request_form_ticket_hint() -> str:
    return "The Jira issue this access is for, e.g. OPS-123."


def request_form_reviewers_hint(suggested: Sequence[str]) -> str:
    usual = f" Teleport already asks {names(suggested)}." if suggested else ""
    return f"Teleport user names, separated by commas.{usual}"


def request_form_no_roles() -> str:
    return "Choose at least one role."


def nothing_requestable() -> str:
    return "Teleport lets you request no roles, so there is nothing to ask for. Ask an admin if that is wrong."


def click_not_for_this_card() -> str:
    return (
        "That button does not belong to the card it is on, so nothing was done. "
        "Use `/access show ID` to see the request."
    )


def form_not_opened() -> str:
    return (
        "Slack could not open the form in time. Run `/access request` again, "
        "or type it: `/access request ROLE --for 2h REASON…`."
    )


def deny_form_title() -> str:
    return "Deny request"


def deny_form_prompt(request_id: str) -> str:
    return (
        f"Why do you deny request {short_id(request_id)}? "
        "Teleport records the reason, and the requester sees it."
    )


def deny_form_submit() -> str:
    return "Deny"


# --- Mattermost: the request dialog and the registered command ----------------------------------------


def request_form_prompt(prompt: str) -> str:
    """What Teleport's roles ask requesters to say (`request_prompt`), shown atop the request form."""
    return safe_text(prompt, limit=REASON_LIMIT, multiline=True)


def request_form_not_opened() -> str:
    return (
        "Mattermost could not open the request form. Run `/access request` again, "
        "or type it: `/access request ROLE --for 2h REASON…`."
    )


def request_form_expired() -> str:
    return "This form was opened more than an hour ago. Run `/access request` again for a fresh one."


def request_form_used() -> str:
    return "This form was already submitted. Run `/access request` again to ask for something else."


def command_display_name() -> str:
    return "Teleport access"


def command_description() -> str:
    return "Request, list and review Teleport Access Requests"


def extension_reason(request_id: str, reason: str) -> str:
    """The reason an Extend form starts with. It pre-fills an input, which notifies nobody and goes back
    to Teleport as the new request's reason, so the original reason is kept as typed, not `safe_text`."""
    return f"extension of {short_id(request_id)}: {reason}"


# --- notifications: the cards, thread replies and DMs the watcher sends about requests made anywhere -----


def notice_card(
    request: AccessRequest,
    *,
    now: datetime,
    web_url: str = "",
    web_only_roles: Sequence[str] = (),
    state: str = "",
    tally: Tally | None = None,
    note: str = "",
    details: Sequence[Field] = (),
) -> RequestCard:
    """A request as the watcher shows it to channels and reviewers: the card, how long was asked for, and
    Approve / Deny while pending, except for `web_only_roles`, which get a note and the Web UI link instead
    (approving in chat would bypass Teleport's MFA). `state`, if given, replaces the state line; `note`
    (an automatic decision) leads the footer."""
    actions = () if web_only_roles else (Action.APPROVE, Action.DENY)
    base = card(request, now=now, actions=actions, web_url=web_url, tally=tally, details=details)
    fields: list[Field] = []
    for field in base.fields:
        if field.label == "State":
            fields += [Field("State", state or field.value), Field("Requested for", requested_for(request))]
        else:
            fields.append(field)
    footer = " \u00b7 ".join(filter(None, [note, base.footer]))
    if web_only_roles and request.state is RequestState.PENDING:
        footer = " \u00b7 ".join(filter(None, [footer, web_only(web_only_roles, web_url)]))
    return RequestCard(request=request, title=base.title, fields=tuple(fields), footer=footer,
                       actions=base.actions, web_url=base.web_url)


def mattermost_unverified() -> str:
    return ("Mattermost did not vouch for this action as yours (it was replayed, altered or too old), so "
            "nothing was done. Try again; if it keeps happening, tell the bot's operator.")


def mattermost_unverifiable() -> str:
    return ("The bot cannot check actions with Mattermost right now, so nothing was done. Try again in a "
            "minute; the bot's operator sees why in its log and in /readyz.")


def automatic_note(card: str, needed: int) -> str:
    """A card's line about an automatic decision; `needed` > 1 when the approval is one of several."""
    if needed > 1:
        return f"{card} (one of {needed} approvals; a person must approve too)"
    return card


def requested_for(request: AccessRequest) -> str:
    """The access asked for, rounded to the minute: the span from creation to Teleport's access expiry."""
    asked = request.requested_duration
    if asked is None or asked <= timedelta(0):
        return "as long as the roles allow"
    return format_duration(timedelta(minutes=max(1, round(asked.total_seconds() / 60))))


def withdrawn_state() -> str:
    """A card's state once its request was deleted while it could still have waited (withdrawn)."""
    return "Withdrawn: deleted before anyone decided"


def expired_state() -> str:
    """A card's state once its request left Teleport undecided (deleted, or its pending TTL ran out)."""
    return "Expired: it was closed before anyone decided"


def review_relayed(author: str, approved: bool, reason: str) -> str:
    verdict = "approved" if approved else "denied"
    said = f": {as_typed(reason, limit=REASON_LIMIT)}" if reason else ""
    return f"{name(author)} {verdict} this request{said}"


def review_requested(request: AccessRequest) -> str:
    return f"{name(request.user)} asks for {names(request.roles)} and named you as a reviewer."


def request_outcome(request: AccessRequest, web_url: str = "", tz: str = "") -> str:
    """The requester's DM once Teleport decided: who decided, why, when approved access ends, exactly, and
    how to use it: `tsh login --request-id`, or the request's page in the Web UI (`web_url`) when known."""
    label = STATE_LABEL[request.state]
    decided = state_line(request)[len(label):]
    until = ""
    if request.state is RequestState.APPROVED:
        if request.access_expires is not None:
            until = f" Your access lasts until {stamp(request.access_expires, tz, seconds=True)}."
        until += " " + how_to_use(request, web_url)
    what = f"Your request for {names(request.roles)} ({short_id(request.id)})"
    return f"{what} was {label.lower()}{decided}.{until}"


def how_to_use(request: AccessRequest, web_url: str = "") -> str:
    """How the requester assumes approved access: `tsh`, or the request's page in the Web UI when known."""
    web = f", or assume it in the Web UI: {web_url}" if web_url else ""
    return f"To use it: `tsh login --request-id={request.id}`{web}."


def request_withdrawn(request: AccessRequest) -> str:
    return (
        f"Your request for {names(request.roles)} ({short_id(request.id)}) was withdrawn or deleted before "
        "anyone decided, so nothing was granted."
    )


def request_expired(request: AccessRequest) -> str:
    return (
        f"Your request for {names(request.roles)} ({short_id(request.id)}) was closed before anyone "
        "decided, so nothing was granted. Ask again if you still need the access."
    )


# --- reminders: before access ends, when it has ended, and nudges for requests left waiting --------------


def expiry_reminder(request: AccessRequest, now: datetime, tz: str = "") -> str:
    """The requester's DM before their access ends: what ends, exactly when, and how to keep it."""
    ends = request.access_expires or now
    return (
        f"Your {names(request.roles)} access ({short_id(request.id)}) ends {relative(ends, now)}, at "
        f"{stamp(ends, tz, seconds=True)}. Need longer? Click Extend to ask again for the same roles."
    )


def expiry_reminder_card(request: AccessRequest, now: datetime, tz: str = "") -> RequestCard:
    """The reminder's card: the access that is ending, and Extend (a new request, pre-filled)."""
    ends = request.access_expires or now
    fields = (
        Field("Request", request.id),
        Field("Roles", names(request.roles)),
        Field("Access until", when(request.access_expires, now, tz)),
    )
    return RequestCard(request=request, title=f"Your {names(request.roles)} access ends {relative(ends, now)}",
                       fields=fields, actions=(Action.EXTEND,))


def access_ended(request: AccessRequest, tz: str = "") -> str:
    ends = request.access_expires
    at = f" at {stamp(ends, tz, seconds=True)}" if ends is not None else ""
    return (f"Your {names(request.roles)} access ({short_id(request.id)}) ended{at}. "
            "Use /access request to ask again.")


def access_ended_state(request: AccessRequest) -> str:
    ends = request.access_expires
    return f"Approved; access ended at {stamp(ends)}" if ends is not None else "Access ended"


def nudge(request: AccessRequest, now: datetime) -> str:
    """Posted in the card's thread and DMed to reviewers when a request has waited too long."""
    waited = relative(request.created, now).removesuffix(" ago") if request.created else "a while"
    return (
        f"Still waiting after {waited}: {name(request.user)} asked for {names(request.roles)} "
        f"({short_id(request.id)}) and has {progress(request)} so far."
    )
