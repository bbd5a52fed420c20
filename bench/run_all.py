"""Runs every benchmark, one after another, and writes what they printed to `docs/performance.md`.

Each benchmark runs in its own process with the same Python, exactly as its own docstring says to run it;
its output goes into the page verbatim under the command that produced it, after the machine and the date.
The targets the issues set are checked against the printed figures and listed first.
Run: `.venv/bin/python bench/run_all.py [--out docs/performance.md] [--quick]` (`--quick`: smaller runs,
for trying it out; the page then says so).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from figures import header  # bench/figures.py

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Target:
    what: str
    pattern: str  # a regex whose first group is the figure
    limit: float  # met when the figure is below this

    def check(self, output: str) -> str:
        found = re.search(self.pattern, output, re.MULTILINE)
        if found is None:
            return f"| {self.what} | not printed | – |"
        figure = float(found.group(1))
        return f"| {self.what} | {found.group(1)} | {'met' if figure < self.limit else 'NOT met'} |"


BENCHES: list[tuple[str, list[str], list[str], list[Target]]] = [
    ("Teleport RPC latency", ["teleport_rpc.py"], ["teleport_rpc.py"], []),
    ("Through the Proxy's TLS routing", ["proxy_routing.py"], ["proxy_routing.py"], []),
    ("Acking a signed /access list (Slack)", ["ack.py"], ["ack.py", "--rounds", "3"], [
        Target("ack: bot p99 (ms), target < 250", r"^bot.*?\s([\d.]+)\s*$", 250),
        Target("ack: bot/bare p50 ratio, target < 3", r"bot/bare p50 ratio: ([\d.]+)", 3),
    ]),
    ("Chat-user index with 10,000 Teleport users", ["users_index.py"], ["users_index.py", "--users", "1000"], [
        Target("users: linked in Teleport -> resolvable, p50 (ms), target < 1000",
               r"^linked in Teleport -> resolvable \(event\)\s+([\d.]+)", 1000),
    ]),
    ("Fan-out of new requests to both platforms", ["fanout.py"], ["fanout.py", "--requests", "100"], []),
    ("PagerDuty on-call auto-approval", ["pagerduty_auto.py"], ["pagerduty_auto.py", "--requests", "50"], []),
    ("Reminders for 10,000 approved requests", ["reminders.py"], ["reminders.py", "--requests", "1000",
                                                                  "--watch", "20"], [
        Target("reminders: schedule rebuild (s), target < 5", r"^rebuild: .*= ([\d.]+) s;", 5),
        Target("reminders: peak RSS (MB), target < 250", r"^peak RSS of the bot: ([\d.]+) MB", 250),
        Target("reminders: p99 lateness (ms), target < 1000", r"^lateness of .*?p99 ([\d.]+) ms", 1000),
    ]),
]


def run(args: list[str]) -> tuple[str, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE, capture_output=True,
                          text=True, check=False)
    output = done.stdout + (f"\n(exit {done.returncode})\n{done.stderr[-2000:]}" if done.returncode else "")
    return output.strip(), time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE.parent / "docs" / "performance.md"))
    parser.add_argument("--quick", action="store_true", help="smaller runs, to try it out")
    options = parser.parse_args()
    sections: list[str] = []
    checks: list[str] = []
    failed = False
    for title, full, quick, targets in BENCHES:
        args = quick if options.quick else full
        print(f"running {' '.join(args)} …", file=sys.stderr, flush=True)
        output, took = run(args)
        failed |= "(exit " in output
        checks += [target.check(output) for target in targets]
        command = " ".join([".venv/bin/python", f"bench/{args[0]}", *args[1:]])
        sections.append(f"## {title}\n\n`{command}` ({took:.0f} s)\n\n```\n{output}\n```\n")
    page = [
        "# Performance",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/run_all.py`"
        + (" with `--quick` (smaller runs than the targets are set for)" if options.quick else "") + ".",
        f"Machine: {header().removeprefix('machine: ')}. Everything on loopback; each benchmark's own",
        "docstring (in `bench/`) says what runs where and what is timed. Medians and ratios come from one run.",
        "",
        "| target | figure | |",
        "| --- | --- | --- |",
        *checks,
        "",
        *sections,
    ]
    Path(options.out).parent.mkdir(parents=True, exist_ok=True)
    Path(options.out).write_text("\n".join(page))
    print(f"wrote {options.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
