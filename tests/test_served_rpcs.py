"""No code path calls an RPC that Teleport 18 does not serve.

The list in `tests/data/teleport18_served_rpcs.txt` is taken from Teleport's server source (its header says
how). Every call the bot's code makes goes through `TeleportClient._call(method, ..., service=...)` or the
watch stream, so walking the source for those calls finds every RPC the bot can send; the stubs the
client builds are checked too, so an RPC cannot slip in by another road.
"""

from __future__ import annotations

import ast
from pathlib import Path

from chatops_bot.teleport import client as client_module
from chatops_bot.teleport.gen import authservice_pb2, users_service_pb2

ROOT = Path(__file__).resolve().parent.parent
SERVED = {
    line.strip()
    for line in (ROOT / "tests" / "data" / "teleport18_served_rpcs.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
SERVICES = {"AUTH": client_module.AUTH, "USERS": client_module.USERS}


def calls_in_source() -> set[str]:
    """`service/method` for every `_call("Method", ..., service=X)` and stub attribute call in the bot."""
    found: set[str] = set()
    for path in sorted((ROOT / "chatops_bot").rglob("*.py")):
        if "devstack" in path.parts or "gen" in path.parts:
            continue  # the stand-in serves RPCs; it does not call them
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if node.func.attr == "_call":
                method = node.args[0]
                assert isinstance(method, ast.Constant), f"{path}:{node.lineno}: RPC names must be literal"
                service = client_module.AUTH
                for keyword in node.keywords:
                    if keyword.arg == "service":
                        assert isinstance(keyword.value, ast.Name), f"{path}:{node.lineno}"
                        service = SERVICES[keyword.value.id]
                found.add(f"{service}/{method.value}")
            elif node.func.attr == "WatchEvents":
                found.add(f"{client_module.AUTH}/WatchEvents")
    return found


def test_the_served_list_is_teleports_not_ours() -> None:
    assert "proto.AuthService/ListAccessRequests" in SERVED
    assert "teleport.users.v1.UsersService/ListUsers" in SERVED
    for gone in ("GetUser", "GetUsers", "GetCurrentUser"):
        assert f"proto.AuthService/{gone}" not in SERVED


def test_every_rpc_the_bot_calls_is_served_by_teleport_18() -> None:
    called = calls_in_source()

    assert {"proto.AuthService/Ping", "teleport.users.v1.UsersService/GetUser",
            "proto.AuthService/WatchEvents"} <= called  # the walk sees calls at all
    assert called - SERVED == set()


def test_the_bots_stubs_declare_only_served_rpcs() -> None:
    declared = {
        f"{service.full_name}/{method.name}"
        for module in (authservice_pb2, users_service_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }

    assert declared - SERVED == set()
