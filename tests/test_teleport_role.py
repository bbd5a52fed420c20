"""`chatops-bot teleport-role`: the printed role lets the bot do everything it does, and not one grant more.

The printed role and user replace the demo seed's chatops-bot in the devstack Teleport, which checks every
RPC against the caller's roles as Teleport's ServerWithRoles does (teleport-wire.md §3.6). Then the bot's
own operations run over gRPC: each one is what some part of the bot calls (commands, the directory, the
watcher, notifications). With the printed role every one succeeds; with any single verb or review rule
taken out, at least one is refused, so nothing printed is superfluous.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatops_bot.cli import main
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.directory import TeleportDirectory
from chatops_bot.teleport.client import TeleportClient
from commands.context import CommandConfig, Context
from commands.dispatch import dispatch
from commands.errors import AccessDenied, UnknownUserError
from commands.messages import short_id
from commands.model import ChatUser, RequestState, Review
from commands.reply import Invocation
from conftest import ClientFactory, FixedClock

MODES = ("on_behalf", "as_bot", "resolve")
HANG_GUARD = 30.0  # seconds; only so that a broken stream fails the test instead of hanging it


def printed(*args: str) -> str:
    """What `chatops-bot teleport-role ARGS` prints (it must succeed)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["teleport-role", *args]) == 0
    return out.getvalue()


def resources(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def printed_role(mode: str) -> dict[str, Any]:
    role, _ = resources(printed("--review-mode", mode))
    return role


# --- the devstack with the printed resources in place of the demo seed's bot ------------------------------


@pytest.fixture
def bot_resources() -> str:
    """The bot's role and user as YAML, given per test by `@pytest.mark.parametrize("bot_resources", …)`."""
    raise AssertionError("parametrize bot_resources")


@pytest.fixture
def seed(bot_resources: str) -> Seed:
    demo = load_seed(demo_seed_text())
    bot = load_seed(bot_resources)
    assert set(bot.roles) == {"chatops-bot"} and set(bot.users) == {"chatops-bot"}
    return Seed(users={**demo.users, **bot.users}, roles={**demo.roles, **bot.roles})


class Insufficient(Exception):
    """An operation went through but could not see what the bot needs (a listing missing a request)."""


@dataclass
class World:
    teleport: DevTeleport
    alice: TeleportClient
    request_id: str  # alice's pending dba request, made with her own identity
    mode: str


@pytest.fixture
async def world(teleport: DevTeleport, client_for: ClientFactory, mode: str) -> World:
    """`mode` comes from each test's parametrize, with `bot_resources`."""
    alice = client_for("alice")
    pending = await alice.create_request(user="alice", roles=["dba"], reason="INC-1 replica lag")
    return World(teleport, alice, pending.id, mode)


# --- what the bot does, one RPC-level operation each -------------------------------------------------------


async def create_for_a_chat_user(bot: TeleportClient, world: World) -> None:
    await bot.create_request(user="alice", roles=["dba"], reason="from chat", dry_run=True)
    await bot.create_request(user="alice", roles=["dba"], reason="from chat")


async def list_every_request(bot: TeleportClient, world: World) -> None:
    if world.request_id not in {r.id for r in await bot.list_requests()}:
        raise Insufficient("ListAccessRequests does not show alice's request")


async def link_a_chat_user_by_trait(bot: TeleportClient, world: World) -> None:
    directory = TeleportDirectory(bot, traits={"slack": "slack_user_id"}, user_map={})
    try:
        await directory.teleport_user(ChatUser("slack", "U0BOB", "bob"))
    except UnknownUserError as err:  # the directory logs a refused ListUsers and finds nobody
        raise Insufficient(f"cannot link U0BOB to bob: {err}") from None


async def load_a_reviewer_and_roles(bot: TeleportClient, world: World) -> None:
    ctx = Context(backend=bot, directory=TeleportDirectory(bot, traits={}, user_map={}), clock=FixedClock())
    await ctx.user_and_roles("bob")


async def requestable_roles_for_the_form(bot: TeleportClient, world: World) -> None:
    if "dba" not in (await bot.get_capabilities("alice")).requestable_roles:
        raise Insufficient("GetAccessCapabilities does not list dba for alice")


async def read_plugin_data(bot: TeleportClient, world: World) -> None:
    await bot.get_plugin_data(world.request_id)


async def write_plugin_data(bot: TeleportClient, world: World) -> None:
    await bot.update_plugin_data(world.request_id, set={"cards": "probe"})


async def watch_requests(bot: TeleportClient, world: World) -> None:
    async with asyncio.timeout(HANG_GUARD), contextlib.aclosing(bot.watch_requests(users=True)) as events:
        first = await anext(events)
        assert first.kind == "init"
        made = await world.alice.create_request(user="alice", roles=["dba"], reason="watched")
        async for event in events:
            if event.request_id == made.id:
                return


async def review_in_the_mode(bot: TeleportClient, world: World) -> None:
    if world.mode == "resolve":
        await bot.set_state(world.request_id, state=RequestState.APPROVED, reason="ok",
                            delegator="console:bob")
    else:
        on_behalf = world.mode == "on_behalf"
        review = Review("bob" if on_behalf else "", RequestState.APPROVED, reason="ok", on_behalf=on_behalf)
        await bot.submit_review(world.request_id, review)
    assert world.teleport.store.requests[world.request_id].state is RequestState.APPROVED


async def withdraw_for_the_requester(bot: TeleportClient, world: World) -> None:
    made = await world.alice.create_request(user="alice", roles=["dba"], reason="to withdraw")
    await bot.delete_request(made.id)


OPERATIONS: list[Callable[[TeleportClient, World], Awaitable[None]]] = [
    create_for_a_chat_user,
    withdraw_for_the_requester,
    list_every_request,
    link_a_chat_user_by_trait,
    load_a_reviewer_and_roles,
    requestable_roles_for_the_form,
    read_plugin_data,
    write_plugin_data,
    watch_requests,
    review_in_the_mode,  # last: it decides alice's request
]


async def refused_operations(bot: TeleportClient, world: World) -> dict[str, str]:
    """Each operation Teleport refused (or left short), with why; any other error fails the test."""
    refused = {}
    for operation in OPERATIONS:
        try:
            await operation(bot, world)
        except AccessDenied as err:
            refused[operation.__name__] = err.detail
        except Insufficient as err:
            refused[operation.__name__] = str(err)
    return refused


# --- sufficiency -------------------------------------------------------------------------------------------


def each_mode() -> Iterator[Any]:
    for mode in MODES:
        yield pytest.param(mode, printed("--review-mode", mode), id=mode)


@pytest.mark.parametrize(("mode", "bot_resources"), list(each_mode()))
async def test_the_printed_role_is_enough_for_everything_the_bot_does(
    mode: str, bot: TeleportClient, world: World
) -> None:
    assert await refused_operations(bot, world) == {}


@pytest.mark.parametrize(("mode", "bot_resources"), list(each_mode()))
async def test_a_chat_user_requests_and_a_reviewer_approves_from_chat(
    mode: str, bot: TeleportClient, world: World, teleport: DevTeleport
) -> None:
    ctx = Context(
        backend=bot, directory=TeleportDirectory(bot, traits={}, user_map={}), clock=FixedClock(),
        config=CommandConfig(review_mode=mode),
    )

    async def say(who: str, text: str) -> str:
        reply = await dispatch(Invocation("console", ChatUser("console", who, who), text), ctx)
        assert reply.ok, reply.text
        return reply.text

    # alice's pending dba request (`world`) would make this one a duplicate: she withdraws it first.
    withdrawn = short_id(world.request_id)
    assert (await say("alice", f"cancel {withdrawn}")).startswith(f"You withdrew your request for dba ({withdrawn})")
    assert world.request_id not in teleport.store.requests
    await say("alice", "request dba --for 1h INC-2 disk full")
    (made,) = [r for r in teleport.store.requests.values() if r.reason == "INC-2 disk full"]
    assert short_id(made.id) in await say("bob", "list")
    assert await say("bob", f"approve {short_id(made.id)} go") == (
        f"You approved request {short_id(made.id)}. The request is now approved."
    )
    assert teleport.store.requests[made.id].state is RequestState.APPROVED


# --- least privilege ---------------------------------------------------------------------------------------


def without_one_grant(role: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every copy of `role` with exactly one allow verb or review_requests entry taken out."""
    allow = role["spec"]["allow"]
    unknown = set(allow) - {"rules", "review_requests"}
    assert not unknown, f"the role grants {unknown}: teach without_one_grant to take those out"
    for index, rule in enumerate(allow["rules"]):
        for verb in rule["verbs"]:
            reduced = copy.deepcopy(role)
            rules = reduced["spec"]["allow"]["rules"]
            rules[index]["verbs"].remove(verb)
            if not rules[index]["verbs"]:
                del rules[index]
            yield f"{'+'.join(rule['resources'])}:{verb}", reduced
    for key, entries in allow.get("review_requests", {}).items():
        for entry in entries:
            reduced = copy.deepcopy(role)
            block = reduced["spec"]["allow"]["review_requests"]
            block[key].remove(entry)
            if not block[key]:
                del block[key]
            yield f"review_requests.{key}:{entry}", reduced


def each_reduced_role() -> Iterator[Any]:
    for mode in MODES:
        role, user = resources(printed("--review-mode", mode))
        for name, reduced in without_one_grant(role):
            yield pytest.param(mode, yaml.safe_dump_all([reduced, user]), id=f"{mode}-without-{name}")


@pytest.mark.parametrize(("mode", "bot_resources"), list(each_reduced_role()))
async def test_taking_out_any_single_grant_breaks_something_the_bot_does(
    mode: str, bot: TeleportClient, world: World
) -> None:
    assert await refused_operations(bot, world) != {}


def test_every_mode_has_grants_to_take_out() -> None:
    # Guards the test above: a role printed without rules would make it vacuous.
    for mode in MODES:
        assert len(list(without_one_grant(printed_role(mode)))) >= 8


# --- what the modes differ in, and what the command prints -------------------------------------------------


def test_each_mode_grants_only_its_own_way_of_reviewing() -> None:
    def review_grants(mode: str) -> tuple[list[str], Any]:
        allow = printed_role(mode)["spec"]["allow"]
        (request_rule,) = [r for r in allow["rules"] if r["resources"] == ["access_request"]]
        return request_rule["verbs"], allow.get("review_requests")

    assert review_grants("on_behalf") == (["list", "read", "create", "delete"], {"submit_for_users": ["*"]})
    assert review_grants("as_bot") == (["list", "read", "create", "delete"], {"roles": ["*"]})
    assert review_grants("resolve") == (["list", "read", "create", "delete", "update"], None)


def test_delete_only_on_access_requests_and_no_impersonation_or_logins_in_any_mode() -> None:
    for mode in MODES:
        text = printed("--review-mode", mode)
        role, user = resources(text)
        deleting = [r["resources"] for r in role["spec"]["allow"]["rules"] if "delete" in r["verbs"]]
        assert deleting == [["access_request"]]  # /access cancel; no other resource is ever deleted
        assert "DeleteAccessRequest: /access cancel" in text
        assert set(role["spec"]["allow"]) <= {"rules", "review_requests"}
        assert user == {"kind": "user", "version": "v2", "metadata": {"name": "chatops-bot"},
                        "spec": {"roles": ["chatops-bot"]}}


def test_the_output_also_says_how_to_issue_and_renew_the_identity() -> None:
    text = printed()
    assert "kind: role\nversion: v7\n" in text  # on_behalf by default
    assert "submit_for_users" in text
    assert "tctl create chatops-bot-teleport.yaml" in text
    assert ("tctl auth sign --format=file --user=chatops-bot --ttl=2190h "
            "--out=/var/lib/chatops-bot/identity") in text
    assert "tctl bots add chatops-bot --roles=chatops-bot" in text
    assert "tbot start -c /etc/tbot.yaml" in text
    assert "chatops-bot check-config --connect -c config.yaml" in text
    indent = "#         "  # the tbot config's lines, as printed
    tbot = "\n".join(line.removeprefix(indent) for line in text.splitlines() if line.startswith(indent))
    config = yaml.safe_load(tbot[tbot.index("version: v2"):])
    assert config["outputs"] == [
        {"type": "identity", "destination": {"type": "directory", "path": "/var/lib/chatops-bot"}}
    ]


def write_config(tmp_path: Path, review: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "teleport:\n  addr: auth.example.com:3025\n  identity_file: /srv/bot/tbot/identity\n"
        "  web_proxy_addr: teleport.corp.example:443\n" + review
    )
    return path


def test_the_mode_and_paths_come_from_the_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, "review:\n  mode: resolve\n")
    text = printed("-c", str(config))
    role, _ = resources(text)
    assert role["metadata"]["description"] == "chatops-bot for review.mode resolve"
    assert "--out=/srv/bot/tbot/identity" in text
    assert "path: /srv/bot/tbot\n" in text
    assert "proxy_server: teleport.corp.example:443" in text
    # --review-mode wins over the config.
    role, _ = resources(printed("-c", str(config), "--review-mode", "as_bot"))
    assert role["spec"]["allow"]["review_requests"] == {"roles": ["*"]}


def test_as_bot_may_never_review_the_web_only_roles(tmp_path: Path) -> None:
    config = write_config(tmp_path, "review:\n  mode: as_bot\n  web_only_roles: [dba, admin]\n")
    role, _ = resources(printed("-c", str(config)))
    assert role["spec"]["deny"] == {"review_requests": {"roles": ["admin", "dba"]}}


@pytest.mark.parametrize(
    ("mode", "bot_resources"),
    [pytest.param("as_bot", printed("--review-mode", "as_bot"), id="as_bot")],
)
async def test_the_web_only_deny_stops_the_bots_own_review_in_teleport(
    mode: str, bot: TeleportClient, world: World, teleport: DevTeleport, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "review:\n  mode: as_bot\n  web_only_roles: [dba]\n")
    # As `tctl create -f` would: the role printed for this config replaces the one in Teleport.
    teleport.store.seed.roles.update(load_seed(printed("-c", str(config))).roles)
    with pytest.raises(AccessDenied):
        await bot.submit_review(world.request_id, Review("", RequestState.APPROVED, reason="ok"))
    assert teleport.store.requests[world.request_id].state is RequestState.PENDING


def test_a_bad_config_is_named_and_nothing_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("teleport:\n  addr: nowhere\n")
    assert main(["teleport-role", "-c", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "teleport.addr" in captured.err
