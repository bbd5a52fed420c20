"""The docs cannot rot: every command, flag and config key they show exists, and the packaging runs the CLI.

Commands are looked for in code (inline spans and fenced blocks) of README.md and docs/*.md: each
`chatops-bot <subcommand> …` must name a subcommand of the real parser and only flags it has. Config
keys are dotted paths under a config section in inline code (`review.mode`) and the keys of YAML blocks
made of config sections; each must be a key config.yaml.example shows (set, or commented out).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from chatops_bot.cli import _parser
from chatops_bot.server import build_app
from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLE_TEXT = (ROOT / "config.yaml.example").read_text()
EXAMPLE = yaml.safe_load(EXAMPLE_TEXT)
SECTIONS = set(EXAMPLE)

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
_FENCE_LANG = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
_INLINE = re.compile(r"`([^`]+)`")
# `chatops-bot` as the command word (perhaps with a path, e.g. .venv/bin/), then a subcommand word.
_COMMAND = re.compile(r"(?:^|[\s(])(?:[\w.-]*/)*chatops-bot[ \t]+([a-z][a-z-]*)\b([^\n]*)")
_FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
_KEY = re.compile(rf"(?<![\w./@-])((?:{'|'.join(sorted(SECTIONS))})(?:\.[a-z_]+)+)(?![\w/-]|\.\w|:\d)")


def inline_code(text: str) -> list[str]:
    """The inline code spans of a Markdown text (outside fenced blocks), each on one line."""
    return [span.replace("\n", " ") for span in _INLINE.findall(_FENCE.sub("", text))]


def code_of(text: str) -> Iterator[str]:
    """The code in a Markdown text: fenced blocks (comments dropped), then inline spans."""
    for block in _FENCE.findall(text):
        yield re.sub(r"(^|\s)#.*", "", block)
    yield from inline_code(text)


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_problems(text: str) -> list[str]:
    """What is wrong with each `chatops-bot …` command shown in `text`'s code."""
    problems = []
    for code in code_of(text):
        for match in _COMMAND.finditer(code):
            words = [match.group(1), *match.group(2).split()]
            shown = f"chatops-bot {match.group(1)}{match.group(2)}".strip()
            parser = _parser()
            while subparsers(parser):
                word = words.pop(0) if words else ""
                if word not in subparsers(parser):
                    known = sorted(subparsers(parser))
                    problems.append(f"{shown!r}: no subcommand {word!r} (known: {known})")
                    break
                parser = subparsers(parser)[word]
            else:
                rest = re.split(r"&&|\|\||;|\s\|\s", " ".join(words))[0]
                for flag in _FLAG.findall(rest):
                    if flag not in parser._option_string_actions:
                        problems.append(f"{shown!r}: {parser.prog} has no {flag}")
    return problems


def shown_in_example(path: list[str]) -> bool:
    """Whether config.yaml.example has this key path, set or (for optional keys) commented out."""
    node: Any = EXAMPLE
    for depth, key in enumerate(path):
        if isinstance(node, dict) and key in node:
            node = node[key]
            continue
        if isinstance(node, dict) and depth == len(path) - 1:
            return re.search(rf"^\s*#\s*{re.escape(key)}:", EXAMPLE_TEXT, re.M) is not None
        return False
    return True


def yaml_paths(node: Any, prefix: list[str]) -> Iterator[list[str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield [*prefix, str(key)]
            # Entries of maps keyed by the user (roles, chat users) are data, not config keys.
            if [*prefix, str(key)] not in (["users", "map"], ["routing", "role_to_recipients", "slack"],
                                            ["routing", "role_to_recipients", "mattermost"]):
                yield from yaml_paths(value, [*prefix, str(key)])


def key_problems(text: str) -> list[str]:
    """Config keys in `text`'s code that config.yaml.example does not show."""
    paths = [match.split(".") for span in inline_code(text) for match in _KEY.findall(span)]
    for lang, block in _FENCE_LANG.findall(text):
        loaded = yaml.safe_load(block) if lang == "yaml" else None
        if isinstance(loaded, dict) and set(loaded) <= SECTIONS:
            paths.extend(yaml_paths(loaded, []))
    return [".".join(path) for path in paths if not shown_in_example(path)]


@pytest.mark.parametrize("doc", DOCS, ids=[doc.name for doc in DOCS])
def test_every_command_and_flag_in_the_docs_exists(doc: Path) -> None:
    assert command_problems(doc.read_text()) == []


@pytest.mark.parametrize("doc", DOCS, ids=[doc.name for doc in DOCS])
def test_every_config_key_in_the_docs_is_in_the_example(doc: Path) -> None:
    assert key_problems(doc.read_text()) == []


def test_the_docs_show_every_subcommand_a_user_runs() -> None:
    shown = {
        match.group(1)
        for doc in DOCS
        for code in code_of(doc.read_text())
        for match in _COMMAND.finditer(code)
    }
    assert set(subparsers(_parser())) <= shown


def test_the_checks_catch_a_wrong_command_flag_or_key() -> None:
    text = (
        "Run `chatops-bot serve -c c.yaml --port 80` or `chatops-bot teleport-roles`, with"
        " `review.review_mode: as_bot`; `chatops-bot devstack teleport --listen x` is fine.\n"
        "```yaml\nslack:\n  bot_token: x\n  signing_secrets: y\n```\n"
        "```sh\n.venv/bin/chatops-bot check-config --conect -c x   # chatops-bot nothing here\n```\n"
    )
    assert command_problems(text) == [
        "'chatops-bot check-config --conect -c x': chatops-bot check-config has no --conect",
        "'chatops-bot serve -c c.yaml --port 80': chatops-bot serve has no --port",
        "'chatops-bot teleport-roles': no subcommand 'teleport-roles' (known: "
        + str(sorted(subparsers(_parser()))) + ")",
    ]
    assert key_problems(text) == ["review.review_mode", "slack.signing_secrets"]


# --- the packaging runs the real CLI ---------------------------------------------------------------------


def dockerfile_instruction(name: str) -> str:
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    (found,) = [line.split(None, 1)[1] for line in lines if line.startswith(name + " ")]
    return found


def test_the_image_and_the_unit_start_a_command_the_cli_accepts() -> None:
    assert json.loads(dockerfile_instruction("ENTRYPOINT")) == ["chatops-bot"]
    _parser().parse_args(json.loads(dockerfile_instruction("CMD")))
    unit = (ROOT / "deploy" / "chatops-bot.service").read_text()
    (exec_start,) = re.findall(r"^ExecStart=\S*/chatops-bot (.*)$", unit, re.M)
    _parser().parse_args(exec_start.split())
    assert re.search(r"^KillSignal=SIGTERM$", unit, re.M)


def test_the_image_health_check_passes_on_healthz_and_fails_without_it() -> None:
    check = json.loads(dockerfile_instruction("HEALTHCHECK").split(" CMD ", 1)[1])
    assert check[0] == "python"
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app([]), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            time.sleep(0.01)
        env = {**os.environ, "CHATOPS_BOT_HEALTHZ_URL": f"http://127.0.0.1:{port}/healthz"}
        assert subprocess.run([sys.executable, *check[1:]], env=env).returncode == 0
        env["CHATOPS_BOT_HEALTHZ_URL"] = f"http://127.0.0.1:{port}/nothing-here"
        assert subprocess.run([sys.executable, *check[1:]], env=env, capture_output=True).returncode != 0
    finally:
        server.should_exit = True
        thread.join()


def test_the_license_file_is_the_one_pyproject_names() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
