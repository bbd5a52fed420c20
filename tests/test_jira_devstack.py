"""The devstack Jira answers as Jira's REST API v2/v3 does: auth per deployment, error bodies, transitions,
comments, search, rate limits and signed webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatops_bot.devstack.jira import DATA_CENTER, DevJira
from chatops_bot.devstack.loopback import LoopbackServer

BOT = ("chatops-bot@example.com", "devstack-jira-api-token")


@pytest.fixture
async def jira() -> AsyncIterator[DevJira]:
    server = DevJira()
    await server.start()
    yield server
    await server.stop()


async def test_cloud_takes_email_and_api_token_and_refuses_anything_else(jira: DevJira) -> None:
    async with httpx.AsyncClient(base_url=jira.url) as http:
        me = await http.get("/rest/api/3/myself", auth=BOT)
        wrong = await http.get("/rest/api/3/myself", auth=(BOT[0], "nope"))
        bearer = await http.get("/rest/api/2/myself", headers={"Authorization": "Bearer devstack-jira-pat"})
    assert me.status_code == 200 and me.json()["accountId"] and me.json()["emailAddress"] == BOT[0]
    assert wrong.status_code == bearer.status_code == 401
    assert wrong.json()["errorMessages"] and wrong.json()["errors"] == {}


async def test_data_center_takes_a_personal_access_token() -> None:
    jira = DevJira(deployment=DATA_CENTER)
    await jira.start()
    try:
        async with httpx.AsyncClient(base_url=jira.url) as http:
            me = await http.get("/rest/api/2/myself", headers={"Authorization": "Bearer devstack-jira-pat"})
            basic = await http.get("/rest/api/2/myself", auth=BOT)
            info = await http.get("/rest/api/2/serverInfo", headers={"Authorization": "Bearer devstack-jira-pat"})
    finally:
        await jira.stop()
    assert me.status_code == 200 and me.json()["name"] == "jira-bot" and "accountId" not in me.json()
    assert basic.status_code == 401
    assert info.json()["deploymentType"] == "Server"


async def test_issue_shape_and_a_missing_issue(jira: DevJira) -> None:
    jira.add_issue("OPS", "Replica lag", issue_type="Incident", status="In Progress", assignee="alice")
    async with httpx.AsyncClient(base_url=jira.url, auth=BOT) as http:
        issue = (await http.get("/rest/api/2/issue/OPS-1")).json()
        missing = await http.get("/rest/api/2/issue/OPS-2")
    fields = issue["fields"]
    assert issue["key"] == "OPS-1" and fields["summary"] == "Replica lag"
    assert fields["status"]["name"] == "In Progress" and fields["status"]["statusCategory"]["key"] == "indeterminate"
    assert fields["issuetype"]["name"] == "Incident" and fields["project"]["key"] == "OPS"
    assert fields["assignee"]["emailAddress"] == "alice@example.com"
    assert missing.status_code == 404
    assert missing.json() == {"errorMessages": ["Issue does not exist or you do not have permission to see it."],
                              "errors": {}}


async def test_transitions_comments_search_and_creation(jira: DevJira) -> None:
    async with httpx.AsyncClient(base_url=jira.url, auth=BOT) as http:
        created = await http.post("/rest/api/3/issue", json={"fields": {
            "project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "Access for alice",
            "labels": ["teleport"]}})
        refused = await http.post("/rest/api/2/issue", json={"fields": {"project": {"key": "NOPE"}}})
        key = created.json()["key"]
        transitions = (await http.get(f"/rest/api/2/issue/{key}/transitions")).json()["transitions"]
        done = next(t["id"] for t in transitions if t["to"]["name"] == "Done")
        moved = await http.post(f"/rest/api/2/issue/{key}/transitions", json={"transition": {"id": done}})
        again = await http.post(f"/rest/api/2/issue/{key}/transitions", json={"transition": {"id": done}})
        await http.post(f"/rest/api/3/issue/{key}/comment", json={"body": {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "bob approved"}]}]}})
        v2_comments = (await http.get(f"/rest/api/2/issue/{key}/comment")).json()["comments"]
        found = (await http.get("/rest/api/3/search/jql", params={"jql": 'project = OPS AND status = "Done"'})).json()
        none = (await http.post("/rest/api/3/search/jql", json={"jql": "labels in (other) AND project = OPS"})).json()
        retired = await http.get("/rest/api/2/search", params={"jql": "project = OPS"})
    assert created.status_code == 201 and key == "OPS-1"
    assert refused.status_code == 400 and "project" in refused.json()["errors"]
    assert moved.status_code == 204 and jira.issues[key].status == "Done"
    assert again.status_code == 400
    assert [c["body"] for c in v2_comments] == ["bob approved"]
    assert [i["key"] for i in found["issues"]] == [key] and none["issues"] == [] and none["isLast"]
    assert retired.status_code == 410


async def test_rate_limit_answers_429_with_retry_after(jira: DevJira) -> None:
    jira.rate_limit(7)
    async with httpx.AsyncClient(base_url=jira.url, auth=BOT) as http:
        limited = await http.get("/rest/api/2/myself")
        after = await http.get("/rest/api/2/myself")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert after.status_code == 200


async def test_webhooks_are_signed_with_the_secret(jira: DevJira) -> None:
    received: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()

    async def hook(request: Request) -> Response:
        await received.put((await request.body(), request.headers.get("x-hub-signature", "")))
        return Response(status_code=204)

    receiver = LoopbackServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
    port = await receiver.start()
    try:
        jira.add_webhook(f"http://127.0.0.1:{port}/hook", "s3cret")
        jira.add_issue("OPS", "Replica lag")
        jira.set_status("OPS-1", "Done")
        body, signature = await asyncio.wait_for(received.get(), 5)
    finally:
        await receiver.stop()
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    event = json.loads(body)
    assert signature == expected
    assert event["webhookEvent"] == "jira:issue_updated" and event["issue"]["key"] == "OPS-1"
    assert event["changelog"]["items"][0]["toString"] == "Done"
