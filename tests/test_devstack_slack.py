"""The Slack stand-in answers a real slack_sdk client, over loopback HTTP, the way Slack does."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from chatops_bot.devstack.slack import BOT_TOKEN, BOT_USER_ID, DevSlack, SlackUser


class ManualClock:
    """Slack's clock, moved by hand to expire triggers and response URLs."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _card(request_id: str = "req-1", state: str = "PENDING") -> list[dict[str, Any]]:
    return [
        {"type": "section", "block_id": "summary",
         "text": {"type": "mrkdwn", "text": f"*alice* requests `dba` ({state})"}},
        {"type": "actions", "block_id": "decide", "elements": [
            {"type": "button", "action_id": "approve", "style": "primary", "value": request_id,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "deny", "style": "danger", "value": request_id,
             "text": {"type": "plain_text", "text": "Deny"}},
        ]},
    ]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def slack() -> AsyncIterator[DevSlack]:
    server = DevSlack(
        users=[SlackUser(id="U0ALICE", name="alice", email="alice@example.com"),
               SlackUser(id="U0BOB", name="bob", email="Bob@Example.com")],
        channels={"C0ACCESS": "access-requests", "C0GENERAL": "general"},
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def slack_at(clock: ManualClock) -> AsyncIterator[DevSlack]:
    server = DevSlack(clock=clock)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def client(slack: DevSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)


async def _error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        await call
    return raised.value


async def test_start_reports_a_loopback_port(slack: DevSlack) -> None:
    assert slack.api_url == f"http://127.0.0.1:{slack.port}/api/"
    assert slack.port > 0


async def test_auth_test_names_the_bot(client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert (answer["user_id"], answer["bot_id"], answer["team_id"]) == (BOT_USER_ID, "B0BOT", "T0DEVSTACK")
    assert answer["url"].startswith("https://")


async def test_missing_or_wrong_token_is_refused_like_slack(slack: DevSlack) -> None:
    anonymous = AsyncWebClient(base_url=slack.api_url)
    assert (await _error(anonymous.auth_test())).response["error"] == "not_authed"
    stranger = AsyncWebClient(token="xoxb-someone-else", base_url=slack.api_url)
    error = await _error(stranger.chat_postMessage(channel="C0ACCESS", text="hi"))
    assert (error.response.status_code, error.response["error"]) == (200, "invalid_auth")
    assert slack.messages == {}


async def test_post_then_update_changes_the_card_in_place(client: AsyncWebClient, slack: DevSlack) -> None:
    posted = await client.chat_postMessage(channel="C0ACCESS", text="alice requests dba", blocks=_card())
    assert posted["channel"] == "C0ACCESS"
    assert posted["message"]["blocks"][0]["block_id"] == "summary"
    updated = await client.chat_update(channel="C0ACCESS", ts=posted["ts"], text="approved",
                                       blocks=_card(state="APPROVED")[:1])
    assert updated["ts"] == posted["ts"]
    [card] = slack.messages["C0ACCESS"]
    assert card["text"] == "approved"
    assert card["blocks"][0]["text"]["text"].endswith("(APPROVED)")
    assert len(card["blocks"]) == 1


async def test_update_with_text_only_drops_the_blocks(client: AsyncWebClient, slack: DevSlack) -> None:
    posted = await client.chat_postMessage(channel="C0ACCESS", text="card", blocks=_card())
    await client.chat_update(channel="C0ACCESS", ts=posted["ts"], text="expired")
    [card] = slack.messages["C0ACCESS"]
    assert (card["text"], card["blocks"]) == ("expired", [])
    assert "edited" in card


async def test_timestamps_are_unique_and_increasing(client: AsyncWebClient) -> None:
    stamps = [(await client.chat_postMessage(channel="C0ACCESS", text=str(i)))["ts"] for i in range(5)]
    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 5
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


async def test_thread_replies_are_kept_with_the_parent(client: AsyncWebClient, slack: DevSlack) -> None:
    parent = await client.chat_postMessage(channel="C0ACCESS", text="card", blocks=_card())
    await client.chat_postMessage(channel="C0ACCESS", text="bob approved", thread_ts=parent["ts"])
    card, reply = slack.messages["C0ACCESS"]
    assert reply["thread_ts"] == parent["ts"]
    assert (card["reply_count"], card["latest_reply"]) == (1, reply["ts"])


async def test_update_refuses_unknown_and_foreign_messages(client: AsyncWebClient, slack: DevSlack) -> None:
    error = await _error(client.chat_update(channel="C0ACCESS", ts="1700000000.000001", text="x"))
    assert error.response["error"] == "message_not_found"
    human_ts = slack.add_user_message("U0ALICE", "C0ACCESS", "hello")
    error = await _error(client.chat_update(channel="C0ACCESS", ts=human_ts, text="x"))
    assert error.response["error"] == "cant_update_message"
    posted = await client.chat_postMessage(channel="C0ACCESS", text="card")
    with pytest.warns(UserWarning, match="top-level `text`"):
        error = await _error(client.chat_update(channel="C0ACCESS", ts=posted["ts"]))
    assert error.response["error"] == "no_text"


async def test_channels_resolve_by_id_or_name_and_unknown_ones_fail(client: AsyncWebClient) -> None:
    assert (await client.chat_postMessage(channel="#access-requests", text="x"))["channel"] == "C0ACCESS"
    assert (await client.chat_postMessage(channel="general", text="x"))["channel"] == "C0GENERAL"
    for channel in ("C0NOPE", "#nope"):
        error = await _error(client.chat_postMessage(channel=channel, text="x"))
        assert error.response["error"] == "channel_not_found"
    error = await _error(client.chat_update(channel="access-requests", ts="1.000001", text="x"))
    assert error.response["error"] == "channel_not_found"


async def test_conversations_list_names_the_channels(client: AsyncWebClient) -> None:
    listed = await client.conversations_list()
    assert {c["name"]: c["id"] for c in listed["channels"]} == {"access-requests": "C0ACCESS", "general": "C0GENERAL"}


async def test_a_dm_is_one_stable_channel_per_user(client: AsyncWebClient, slack: DevSlack) -> None:
    first = (await client.conversations_open(users="U0BOB"))["channel"]["id"]
    again = await client.conversations_open(users=["U0BOB"])
    assert first.startswith("D") and again["channel"]["id"] == first and again["already_open"]
    assert (await client.conversations_open(users="U0ALICE"))["channel"]["id"] != first
    await client.chat_postMessage(channel=first, text="reminder: your access expires in 15 minutes")
    assert slack.messages[first][0]["text"].startswith("reminder")
    assert (await client.chat_postMessage(channel="U0BOB", text="direct"))["channel"] == first
    error = await _error(client.conversations_open(users="U0NOBODY"))
    assert error.response["error"] == "user_not_found"
    error = await _error(client.chat_update(channel="U0BOB", ts=slack.messages[first][0]["ts"], text="x"))
    assert error.response["error"] == "channel_not_found"


async def test_users_are_found_by_id_and_email(client: AsyncWebClient) -> None:
    alice = (await client.users_info(user="U0ALICE"))["user"]
    assert (alice["name"], alice["profile"]["email"]) == ("alice", "alice@example.com")
    assert (await client.users_lookupByEmail(email="bob@example.com"))["user"]["id"] == "U0BOB"
    assert (await _error(client.users_info(user="U0NOBODY"))).response["error"] == "user_not_found"
    error = await _error(client.users_lookupByEmail(email="mallory@example.com"))
    assert error.response["error"] == "users_not_found"


async def test_ephemeral_messages_are_recorded_not_posted(client: AsyncWebClient, slack: DevSlack) -> None:
    answer = await client.chat_postEphemeral(channel="C0ACCESS", user="U0ALICE", text="only you", blocks=_card())
    [ephemeral] = slack.ephemerals
    assert ephemeral["message_ts"] == answer["message_ts"]
    assert (ephemeral["user"], ephemeral["channel"], ephemeral["text"]) == ("U0ALICE", "C0ACCESS", "only you")
    assert "C0ACCESS" not in slack.messages
    error = await _error(client.chat_postEphemeral(channel="C0ACCESS", user="U0NOBODY", text="x"))
    assert error.response["error"] == "user_not_found"
    dm = (await client.conversations_open(users="U0BOB"))["channel"]["id"]
    error = await _error(client.chat_postEphemeral(channel=dm, user="U0ALICE", text="x"))
    assert error.response["error"] == "user_not_in_channel"


def _modal(title: str = "Request access") -> dict[str, Any]:
    return {"type": "modal", "callback_id": "request", "title": {"type": "plain_text", "text": title},
            "submit": {"type": "plain_text", "text": "Request"},
            "blocks": [{"type": "input", "block_id": "roles", "label": {"type": "plain_text", "text": "Roles"},
                        "element": {"type": "plain_text_input", "action_id": "roles"}}]}


async def test_views_open_needs_a_trigger_the_stand_in_issued(client: AsyncWebClient, slack: DevSlack) -> None:
    trigger = slack.issue_trigger_id()
    opened = (await client.views_open(trigger_id=trigger, view=_modal()))["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "request"
    assert (await _error(client.views_open(trigger_id=trigger, view=_modal()))).response["error"] == (
        "exchanged_trigger_id")
    error = await _error(client.views_open(trigger_id="1.2.made-up", view=_modal()))
    assert error.response["error"] == "invalid_trigger_id"
    error = await _error(client.views_open(trigger_id=slack.issue_trigger_id(), view=_modal("x" * 25)))
    assert error.response["error"] == "invalid_arguments"
    assert "[json-pointer:/view/title/text]" in error.response["response_metadata"]["messages"][0]
    updated = (await client.views_update(view_id=opened["id"], hash=opened["hash"], view=_modal("Done")))["view"]
    assert updated["id"] == opened["id"]
    assert slack.opened_views[0]["title"]["text"] == "Done"
    error = await _error(client.views_update(view_id=opened["id"], hash=opened["hash"], view=_modal()))
    assert error.response["error"] == "hash_conflict"
    assert (await _error(client.views_update(view_id="V0NOPE", view=_modal()))).response["error"] == "not_found"


async def test_triggers_expire_after_three_seconds(slack_at: DevSlack, clock: ManualClock) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack_at.api_url)
    trigger = slack_at.issue_trigger_id()
    clock.now += 3.5
    error = await _error(client.views_open(trigger_id=trigger, view=_modal()))
    assert error.response["error"] == "expired_trigger_id"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def _button(text: str = "Approve", *, kind: str = "plain_text", value: str = "v", action_id: str = "a") -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "value": value, "text": {"type": kind, "text": text}}


INVALID_BLOCKS = {
    "more than 50 blocks": ([{"type": "divider"}] * 51, "/blocks"),
    "section text over 3000": ([_section("x" * 3001)], "/blocks/0/text/text"),
    "more than 10 fields": ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
                            "/blocks/0/fields"),
    "button text over 75": ([_actions(_button("x" * 76))], "/blocks/0/elements/0/text/text"),
    "mrkdwn button text": ([_actions(_button(kind="mrkdwn"))], "/blocks/0/elements/0/text/type"),
    "button value over 2000": ([_actions(_button(value="v" * 2001))], "/blocks/0/elements/0/value"),
    "more than 25 actions": ([_actions(*[_button(action_id=f"a{i}") for i in range(26)])], "/blocks/0/elements"),
    "block_id over 255": ([{"type": "divider", "block_id": "b" * 256}], "/blocks/0/block_id"),
    "unknown block type": ([{"type": "banner", "text": "hi"}], "/blocks/0/type"),
    "wrong text object type": ([{"type": "section", "text": {"type": "markdown", "text": "x"}}],
                               "/blocks/0/text/type"),
    "mrkdwn header": ([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}], "/blocks/0/text/type"),
    "duplicate action_id": ([_actions(_button(), _button())], "/blocks/0/elements/1/action_id"),
}


@pytest.mark.parametrize("blocks, pointer", INVALID_BLOCKS.values(), ids=INVALID_BLOCKS.keys())
async def test_blocks_slack_rejects_are_rejected(client: AsyncWebClient, slack: DevSlack,
                                                 blocks: list[dict[str, Any]], pointer: str) -> None:
    error = await _error(client.chat_postMessage(channel="C0ACCESS", text="fallback", blocks=blocks))
    assert error.response["error"] == "invalid_blocks"
    assert any(e.endswith(f"[json-pointer:{pointer}]") for e in error.response["errors"]), error.response["errors"]
    assert error.response["response_metadata"]["messages"][0].startswith("[ERROR] ")
    assert slack.calls[-1].error == "invalid_blocks"
    assert slack.messages == {}


async def test_blocks_at_the_limits_are_accepted(client: AsyncWebClient) -> None:
    blocks = [_section("x" * 3000),
              {"type": "section", "fields": [{"type": "plain_text", "text": "f" * 2000}] * 10},
              _actions(*[_button("b" * 75, value="v" * 2000, action_id=f"a{i}") for i in range(25)]),
              {"type": "divider", "block_id": "b" * 255}]
    blocks += [{"type": "divider"}] * (50 - len(blocks))
    assert (await client.chat_postMessage(channel="C0ACCESS", text="ok", blocks=blocks))["ok"]


async def test_text_limits_and_empty_messages(client: AsyncWebClient) -> None:
    assert (await client.chat_postMessage(channel="C0ACCESS", text="x" * 40_000))["ok"]
    error = await _error(client.chat_postMessage(channel="C0ACCESS", text="x" * 40_001))
    assert error.response["error"] == "msg_too_long"
    with pytest.warns(UserWarning, match="top-level `text`"):
        error = await _error(client.chat_postMessage(channel="C0ACCESS"))
    assert error.response["error"] == "no_text"
    error = await _error(client.api_call("chat.postMessage", data={"channel": "C0ACCESS", "blocks": "[{"}))
    assert error.response["error"] == "invalid_blocks_format"


async def test_form_query_and_json_bodies_are_all_understood(client: AsyncWebClient, slack: DevSlack) -> None:
    await client.api_call("chat.postMessage", data={"channel": "C0ACCESS", "text": "form",
                                                   "blocks": json.dumps(_card())})
    await client.api_call("chat.postMessage", params={"channel": "C0ACCESS", "text": "query"})
    await client.chat_postMessage(channel="C0ACCESS", text="json")
    await client.api_call("users.info", http_verb="GET", params={"user": "U0ALICE"})
    form, query, body = slack.messages["C0ACCESS"]
    assert (form["text"], query["text"], body["text"]) == ("form", "query", "json")
    assert form["blocks"][1]["elements"][0]["action_id"] == "approve"
    assert [c.method for c in slack.calls[-1:]] == ["users.info"]
    assert "token" not in slack.calls[0].params
    tokenless = AsyncWebClient(base_url=slack.api_url)
    assert (await tokenless.api_call("auth.test", data={"token": BOT_TOKEN}))["user_id"] == BOT_USER_ID


async def test_429_is_retried_after_retry_after(slack: DevSlack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url,
                            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
    slack.fail_next("chat.postMessage", status=429, retry_after=1, times=2)
    started = time.monotonic()
    answer = await client.chat_postMessage(channel="C0ACCESS", text="eventually")
    assert time.monotonic() - started >= 2.0
    assert answer["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 429, 200]
    assert [c.error for c in slack.calls_to("chat.postMessage")][:2] == ["ratelimited", "ratelimited"]
    assert len(slack.messages["C0ACCESS"]) == 1


async def test_429_without_a_retry_handler_surfaces_retry_after(client: AsyncWebClient, slack: DevSlack) -> None:
    slack.fail_next("chat.update", status=429, retry_after=7)
    error = await _error(client.chat_update(channel="C0ACCESS", ts="1.000001", text="x"))
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert error.response["error"] == "ratelimited"


async def test_server_errors_are_retried_by_the_server_error_handler(slack: DevSlack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url,
                            retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)])
    slack.fail_next("chat.postMessage", status=500)
    assert (await client.chat_postMessage(channel="C0ACCESS", text="after a 500"))["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 200]
    slack.fail_next("users.info", status=503, times=2)
    error = await _error(client.users_info(user="U0ALICE"))
    assert (error.response.status_code, error.response["error"]) == (503, "service_unavailable")


async def test_response_url_answers_a_slash_command_ephemerally(slack: DevSlack) -> None:
    body = parse_qs(slack.slash_command_body("U0ALICE", "list", "C0ACCESS").decode())
    webhook = AsyncWebhookClient(body["response_url"][0])
    answer = await webhook.send(text="You have no requests", response_type="ephemeral")
    assert (answer.status_code, answer.body) == (200, "ok")
    [ephemeral] = slack.ephemerals
    assert (ephemeral["user"], ephemeral["text"]) == ("U0ALICE", "You have no requests")
    await webhook.send(text="Updated list", replace_original=True)
    assert [e["text"] for e in slack.ephemerals] == ["Updated list"]
    answer = await webhook.send(text="x" * 40_001)
    assert (answer.status_code, answer.body) == (400, "msg_too_long")


async def test_response_url_replaces_or_deletes_the_clicked_message(client: AsyncWebClient, slack: DevSlack) -> None:
    first = await client.chat_postMessage(channel="C0ACCESS", text="card", blocks=_card("req-1"))
    second = await client.chat_postMessage(channel="C0ACCESS", text="card", blocks=_card("req-2"))
    replace = AsyncWebhookClient(slack.new_response_url(channel_id="C0ACCESS", user_id="U0BOB",
                                                        message_ts=first["ts"]))
    await replace.send(text="approved by bob", blocks=_card("req-1", "APPROVED")[:1], replace_original=True)
    delete = AsyncWebhookClient(slack.new_response_url(channel_id="C0ACCESS", user_id="U0BOB",
                                                       message_ts=second["ts"]))
    await delete.send(delete_original=True)
    [card] = slack.messages["C0ACCESS"]
    assert (card["ts"], card["text"]) == (first["ts"], "approved by bob")
    assert card["blocks"][0]["text"]["text"].endswith("(APPROVED)")
    assert [p.body.get("replace_original") for p in slack.response_url_posts] == [True, None]


async def test_response_url_allows_five_uses(slack: DevSlack) -> None:
    webhook = AsyncWebhookClient(slack.new_response_url(channel_id="C0ACCESS", user_id="U0ALICE"))
    statuses = [(await webhook.send(text=f"update {i}")).status_code for i in range(5)]
    sixth = await webhook.send(text="one too many")
    assert statuses == [200] * 5
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    unknown = await AsyncWebhookClient(f"{slack.root_url}/response/nope").send(text="x")
    assert (unknown.status_code, unknown.body) == (404, "no_service")


async def test_a_rate_limited_response_url_is_retried_and_not_counted(slack: DevSlack) -> None:
    url = slack.new_response_url(channel_id="C0ACCESS", user_id="U0ALICE")
    webhook = AsyncWebhookClient(url, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    slack.fail_next("response_url", 429, retry_after=1)
    assert (await webhook.send(text="after the wait")).status_code == 200
    assert [p.status for p in slack.response_url_posts] == [429, 200]
    statuses = [(await webhook.send(text=f"update {i}")).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 200, 404]


async def test_response_url_expires_after_thirty_minutes(slack_at: DevSlack, clock: ManualClock) -> None:
    webhook = AsyncWebhookClient(slack_at.new_response_url())
    clock.now += 30 * 60 + 1
    answer = await webhook.send(text="too late")
    assert (answer.status_code, answer.body) == (404, "expired_url")


async def test_signed_headers_verify_with_slacks_verifier(slack_at: DevSlack, clock: ManualClock) -> None:
    body = slack_at.slash_command_body("U0ALICE", "request dba --for 2h", "C0ACCESS")
    headers = slack_at.signed_headers(body)

    class AtClock(Clock):
        def now(self) -> float:
            return clock.now

    verifier = SignatureVerifier(slack_at.signing_secret, clock=AtClock())
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + b"&text=approve", headers)
    assert headers["X-Slack-Request-Timestamp"] == str(int(clock.now))
    live = DevSlack().signed_headers(b"payload=%7B%7D")
    assert SignatureVerifier(slack_at.signing_secret).is_valid_request(b"payload=%7B%7D", live)


async def test_slash_command_body_carries_slacks_fields(slack: DevSlack) -> None:
    trigger = slack.issue_trigger_id()
    body = parse_qs(slack.slash_command_body("U0ALICE", "request dba", "C0ACCESS", trigger_id=trigger).decode())
    fields = {key: values[0] for key, values in body.items()}
    assert fields["command"] == "/access" and fields["text"] == "request dba"
    assert (fields["user_id"], fields["user_name"]) == ("U0ALICE", "alice")
    assert (fields["channel_id"], fields["channel_name"]) == ("C0ACCESS", "access-requests")
    assert fields["trigger_id"] == trigger
    assert fields["response_url"].startswith(f"{slack.root_url}/response/")
    assert {"token", "team_id", "team_domain", "api_app_id"} <= fields.keys()


async def test_block_actions_body_clicks_a_button_on_a_held_message(client: AsyncWebClient, slack: DevSlack) -> None:
    posted = await client.chat_postMessage(channel="C0ACCESS", text="card", blocks=_card("req-9"))
    body = parse_qs(slack.block_actions_body("U0BOB", "approve", None, "C0ACCESS", posted["ts"]).decode())
    payload = json.loads(body["payload"][0])
    [action] = payload["actions"]
    assert payload["type"] == "block_actions" and payload["user"]["id"] == "U0BOB"
    assert (action["action_id"], action["block_id"], action["value"]) == ("approve", "decide", "req-9")
    assert payload["container"] == {"type": "message", "message_ts": posted["ts"], "channel_id": "C0ACCESS",
                                    "is_ephemeral": False}
    assert payload["message"]["ts"] == posted["ts"]
    trigger = payload["trigger_id"]
    assert (await client.views_open(trigger_id=trigger, view=_modal()))["ok"]
    with pytest.raises(LookupError):
        slack.block_actions_body("U0BOB", "escalate", None, "C0ACCESS", posted["ts"])


async def test_unknown_methods_are_refused(client: AsyncWebClient) -> None:
    error = await _error(client.api_call("chat.teleport"))
    assert (error.response.status_code, error.response["error"]) == (404, "unknown_method")


async def test_bolt_accepts_the_stand_ins_commands_and_clicks(slack: DevSlack) -> None:
    app = AsyncApp(signing_secret=slack.signing_secret, process_before_response=True,
                   client=AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url))
    seen: list[str] = []

    @app.command("/access")
    async def command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        seen.append(command["text"])
        await respond(text="request created", blocks=_card("req-5"), response_type="in_channel")

    @app.action("approve")
    async def approve(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body["actions"][0]["value"])
        await client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"], text="approved",
                                 blocks=_card("req-5", "APPROVED")[:1])

    def signed(body: bytes, signed_body: bytes | None = None) -> AsyncBoltRequest:
        headers: dict[str, str | Sequence[str]] = {**slack.signed_headers(signed_body or body)}
        return AsyncBoltRequest(body=body.decode(), headers=headers)

    body = slack.slash_command_body("U0ALICE", "request dba", "C0ACCESS")
    assert (await app.async_dispatch(signed(body))).status == 200
    [card] = slack.messages["C0ACCESS"]
    click = slack.block_actions_body("U0BOB", "approve", None, "C0ACCESS", card["ts"])
    assert (await app.async_dispatch(signed(click))).status == 200
    assert (await app.async_dispatch(signed(click, signed_body=b"x"))).status == 401
    assert seen == ["request dba", "req-5"]
    assert slack.messages["C0ACCESS"][0]["text"] == "approved"
    assert [c.method for c in slack.calls] == ["auth.test", "chat.update"]
