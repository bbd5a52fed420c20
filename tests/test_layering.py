"""The inner ring stays pure: `commands/` imports the standard library and itself, nothing else."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_commands_imports_only_the_standard_library_and_itself() -> None:
    leaks = []
    for path in sorted((ROOT / "commands").rglob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top != "commands" and top not in sys.stdlib_module_names and top != "__future__":
                leaks.append(f"{path.relative_to(ROOT)} imports {name}")
    assert leaks == []


def test_the_walker_sees_a_leak(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.py"
    leaky.write_text("import json\nfrom slack_sdk import WebClient\nimport grpc.aio\n")
    assert imported_modules(leaky) == {"json", "slack_sdk", "grpc.aio"}


def test_only_the_teleport_package_touches_generated_protobuf() -> None:
    outside = []
    for path in sorted((ROOT / "chatops_bot").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("chatops_bot/teleport/", "chatops_bot/devstack/")):
            continue
        if any("_pb2" in name for name in imported_modules(path)):
            outside.append(relative)
    assert outside == []
