"""The `chatops-bot` command. Only this module turns errors into exit codes and messages on stderr."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# gRPC's C core prints its own log lines straight to stderr; an operator sees them only when asking for
# them (GRPC_VERBOSITY=INFO). Read once, when grpc is first imported: so before anything imports it.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from chatops_bot import logs  # noqa: E402
from chatops_bot.config import ConfigError, Settings, load_config  # noqa: E402
from chatops_bot.preflight import ClusterReport, Finding  # noqa: E402
from chatops_bot.teleport.client import CLIENT_VERSION, TeleportClient  # noqa: E402
from chatops_bot.teleport.identity import Identity, IdentityError  # noqa: E402
from chatops_bot.teleport_role import REVIEW_MODES  # noqa: E402
from commands.errors import AccessDenied, BackendError, Unavailable  # noqa: E402

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure("WARNING")
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        # A console prompt may still be blocked reading stdin in its daemon thread, and the interpreter's
        # own shutdown would abort on the stdin lock: leave at once, with everything written flushed.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    except BrokenPipeError:
        # `chatops-bot demo | head`: the reader has gone; end quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatops-bot", description="Teleport Access Requests from chat.")
    parser.add_argument("--version", action="version", version=f"chatops-bot {_version()} (speaks Teleport "
                        f"{CLIENT_VERSION}; supports Teleport 16 to 18)")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    check = sub.add_parser("check-config", help="validate a config file (and optionally reach Teleport)")
    _config_option(check, "the config file to check; its secrets (${ENV}, *_file) are read only with --connect")
    check.add_argument("--connect", action="store_true", help="ping Teleport with the configured identity")
    check.add_argument("-v", "--verbose", action="store_true",
                       help="also print the effective config, defaults included, as YAML (secrets hidden)")
    check.set_defaults(run=_check_config)

    serve = sub.add_parser("serve", help="run the bot: every platform configured, /healthz")
    _config_option(serve, "the config file: every setting, and the secrets it names (${ENV}, *_file)")
    serve.set_defaults(run=_serve)

    slack = sub.add_parser("slack-manifest", help="print the Slack app manifest (YAML) for this bot")
    slack.add_argument("--url", help="the bot's public base URL, e.g. https://bot.example.com")
    slack.add_argument("--socket-mode", action="store_true", help="no request URL; the bot connects out")
    _config_option(slack, "read users.match_email and the Slack routes (a #name route adds channels:read) "
                   "from this config; its secrets are not read", required=False)
    slack.set_defaults(run=_slack_manifest)

    role = sub.add_parser("teleport-role", help="print the Teleport role and user the bot needs, and how to "
                          "issue its identity")
    role.add_argument("--review-mode", choices=REVIEW_MODES,
                      help="default: review.mode from the config given with -c, else on_behalf")
    _config_option(role, "read review.mode, review.web_only_roles and the identity path from this config; "
                   "its secrets are not read", required=False)
    role.add_argument("--connect", action="store_true",
                      help="with -c: ask the cluster (version, edition) and refuse a mode it cannot accept")
    role.set_defaults(run=_teleport_role)

    register = sub.add_parser("mattermost-register", help="create or update /access on a Mattermost team")
    _config_option(register, "read mattermost.url and mattermost.bot_token (and the secrets it names) "
                   "from this config")
    register.add_argument("--team", required=True, help="the team's name (as in its URL)")
    register.add_argument("--url", required=True, help="where Mattermost posts the command, e.g. "
                          "https://bot.example.com/mattermost/command")
    register.add_argument("--admin-token-env", metavar="VARIABLE",
                          help="register with the admin's token in this environment variable instead of "
                          "mattermost.bot_token (a bot account may not manage slash commands on a default "
                          "server); a variable, because any local user can read a command line")
    register.set_defaults(run=_mattermost_register)

    hook = sub.add_parser("webhook-test", help="send a signed sample event to a webhook endpoint (or the "
                          "decision hook) and print what it answered")
    hook.add_argument("endpoint", metavar="ENDPOINT", help="the name of a webhooks.endpoints entry, or of "
                      "webhooks.decide")
    _config_option(hook, "read webhooks (and the secret the endpoint names) from this config")
    hook.set_defaults(run=_webhook_test)

    console = sub.add_parser("console", help="type /access commands in a terminal against a real cluster")
    _config_option(console, "the config file: Teleport, users and review settings, and the secrets it names")
    console.add_argument("--as", dest="user", required=True, metavar="CHATUSER",
                         help="who is typing (a console user, mapped like any chat user)")
    console.set_defaults(run=_console)

    demo = sub.add_parser("demo", help="a walk-through on the built-in Teleport stand-in")
    demo.add_argument("--interactive", action="store_true", help="type commands yourself (`as bob` switches)")
    demo.add_argument("--jira", action="store_true",
                      help="with a devstack Jira: dba requests must cite an In-Progress OPS ticket")
    demo.set_defaults(run=_demo)

    devstack = sub.add_parser("devstack", help="local stand-ins for the outside systems")
    stands = devstack.add_subparsers(required=True, metavar="SYSTEM")
    teleport = stands.add_parser("teleport", help="a Teleport Auth gRPC stand-in over mutual TLS")
    teleport.add_argument("--seed", type=Path, help="users and roles in Teleport's YAML (default: the demo seed, "
                          "without review rules for --edition community)")
    teleport.add_argument("--listen", default="127.0.0.1:3025", metavar="HOST:PORT",
                          help="where the Auth gRPC service listens (default: %(default)s)")
    teleport.add_argument("--identity-out", type=Path, required=True, metavar="DIR",
                          help="write DIR/<user>.pem for every seed user")
    teleport.add_argument("--cluster-name", default="devstack.example.com",
                          help="the cluster name in its certificates (default: %(default)s)")
    teleport.add_argument("--edition", choices=("enterprise", "community"), default="enterprise",
                          help="community: roles with review rules or thresholds are refused, as Teleport does")
    teleport.add_argument("--version", dest="server_version", default=None, metavar="X.Y.Z",
                          help="the Teleport version to play (default: the newest the bot speaks)")
    teleport.add_argument("--proxy-listen", default="", metavar="ADDR",
                          help="also serve a TLS-routing Proxy in front of Auth there (as Teleport Cloud does)")
    teleport.set_defaults(run=_devstack_teleport)
    pagerduty = stands.add_parser("pagerduty", help="a PagerDuty REST API v2 stand-in with the demo's on-call")
    pagerduty.add_argument("--listen", default="127.0.0.1:8090")
    pagerduty.add_argument("--webhook-url", default="", metavar="URL",
                           help="send signed v3 webhooks there (the bot's /pagerduty/webhook)")
    pagerduty.set_defaults(run=_devstack_pagerduty)
    jira = stands.add_parser("jira", help="a Jira REST API (v2/v3) stand-in with demo tickets")
    jira.add_argument("--listen", default="127.0.0.1:8081")
    jira.add_argument("--deployment", choices=("cloud", "data_center"), default="cloud",
                      help="cloud: Basic e-mail + API token; data_center: a Bearer personal access token")
    jira.set_defaults(run=_devstack_jira)
    for group in (sub, stands):
        for choice in group._choices_actions:  # each command's --help opens with the line the list shows
            command = group.choices[choice.dest]
            if choice.help and not command.description:
                command.description = f"{choice.help[:1].upper()}{choice.help[1:]}."
    return parser


def _config_option(parser: argparse.ArgumentParser, what: str, *, required: bool = True) -> None:
    parser.add_argument("-c", "--config", required=required, type=Path, metavar="CONFIG",
                        help=what)


def _version() -> str:
    try:
        return version("chatops-bot")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _load(path: Path, *, registering: bool = False, secrets: bool = True) -> Settings | None:
    """The settings, or None after printing each problem; `secrets=False` for commands that only read
    settings, which leave secrets not at hand yet to what uses them."""
    try:
        return load_config(path, registering=registering, secrets=secrets)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return None


def _check_config(args: argparse.Namespace) -> int:
    """A one-line verdict first; then what is left for later, and the effective config with --verbose."""
    try:
        settings = load_config(args.config, secrets=args.connect)
    except ConfigError as err:
        count = len(err.problems)
        print(f"{args.config}: {count} problem{'' if count == 1 else 's'}", file=sys.stderr)
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    print(f"{args.config}: valid; {settings.outline()}")
    pending = settings.pending_secrets()
    if pending:
        print("secrets for serve, console and check-config --connect to read:")
        print("\n".join(f"  {key}: {source}" for key, source in pending))
    names = settings.slack_channel_names()
    if names:
        print(f"routing.role_to_recipients.slack: {', '.join(names)} named, not by ID: looking names up needs "
              "the channels:read scope (`chatops-bot slack-manifest -c` asks for it)")
    for warning in settings.warnings(files=not args.connect):
        print(f"warning: {warning}")
    if args.verbose:
        print(settings.summary(), end="")
    if not args.connect:
        return EXIT_OK
    return asyncio.run(_connect(settings))


def _print_findings(findings: Sequence[Finding]) -> int:
    """One `error:` (stderr) or `warning:` (stdout) line per finding; EXIT_CONFIG when any is an error."""
    for finding in findings:
        print(("error: " if finding.fatal else "warning: ") + finding.text,
              file=sys.stderr if finding.fatal else sys.stdout)
    return EXIT_CONFIG if any(f.fatal for f in findings) else EXIT_OK


def _print_report(report: ClusterReport, mode: str) -> None:
    """What the cluster is and every finding about it; several missing grants share one way out, said once
    after them rather than on every line."""
    from chatops_bot import preflight

    print(report.summary())
    hint = "; " + preflight.ROLE_HINT.format(mode=mode)
    shared = sum(finding.text.endswith(hint) for finding in report.findings) > 1
    for finding in report.findings:
        text = finding.text.removesuffix(hint) if shared else finding.text
        print(("error: " if finding.fatal else "warning: ") + text, file=sys.stderr if finding.fatal else sys.stdout)
    if shared:
        print(f"To fix the role: {hint[2:]}.", file=sys.stderr)


async def _connect(settings: Settings) -> int:
    from chatops_bot.wiring import teleport_client

    client = teleport_client(settings)
    identity = _usable_identity(settings, client)
    if identity is None:
        return EXIT_CONFIG  # the line said which file, and what is wrong with it
    try:
        report = await _inspect(settings, client)
    finally:
        await client.close()
    if report is None:
        return EXIT_FAILED
    _print_report(report, settings.review.mode)
    mattermost = await _connect_mattermost(settings) if settings.mattermost is not None else EXIT_OK
    pagerduty = await _connect_pagerduty(settings) if settings.pagerduty is not None else EXIT_OK  # issue 16
    jira = await connect_jira(settings) if settings.jira is not None else EXIT_OK
    return EXIT_CONFIG if report.fatal else max(mattermost, pagerduty, jira)


async def _connect_pagerduty(settings: Settings) -> int:
    """The token, and every schedule, escalation policy and service the rules name (issue 16)."""
    from chatops_bot.integrations.pagerduty import preflight, wiring

    assert settings.pagerduty is not None
    client = wiring.client(settings.pagerduty)
    try:
        findings = await preflight.check(settings.pagerduty, client)
    finally:
        await client.close()
    if not findings:
        print(f"Connected to PagerDuty at {settings.pagerduty.api_url}; every schedule, escalation policy and "
              "service the rules name exists.")
    return _print_findings(findings)


async def connect_jira(settings: Settings) -> int:
    """Sign in to Jira and check every project, issue type and status `jira.require_ticket` names."""
    from chatops_bot.integrations.jira import preflight as jira_preflight
    from chatops_bot.integrations.jira.client import JiraClient

    assert settings.jira is not None
    client = JiraClient(settings.jira)
    try:
        who, findings = await jira_preflight.check(settings.jira, client)
    finally:
        client.close()
    if who:
        print(f"Connected to Jira ({settings.jira.deployment}) at {settings.jira.url} as {who}.")
    return _print_findings(findings)


async def _connect_mattermost(settings: Settings) -> int:
    """Log in to Mattermost and check every routed recipient (joining public channels, as `serve` would)."""
    from chatops_bot.adapters.mattermost import StartError
    from chatops_bot.adapters.mattermost import preflight as mattermost_preflight
    from chatops_bot.adapters.mattermost.outbound import MattermostOutbound, RetryPolicy
    from chatops_bot.adapters.mattermost.trigger import Triggers

    assert settings.mattermost is not None
    try:
        outbound = MattermostOutbound.from_settings(settings.mattermost, retry=RetryPolicy(driver_retries=0))
    except StartError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    try:
        await outbound.login()
        recipients = [r for names in settings.routing.role_to_recipients.mattermost.values() for r in names]
        findings = await mattermost_preflight.check(outbound, recipients,
                                                    match_email=settings.users.match_email)
        triggers = Triggers(outbound)
        await triggers.load()
        if triggers.problem:
            findings.append(mattermost_preflight.Finding(True, f"mattermost.url: {triggers.problem}"))
    except StartError as err:
        print(str(err), file=sys.stderr)
        return EXIT_FAILED
    finally:
        await outbound.close()
    print(f"Connected to Mattermost at {settings.mattermost.url} as {outbound.driver.client.username}.")
    return _print_findings(findings)


async def _inspect(settings: Settings, client: TeleportClient) -> ClusterReport | None:
    """What the cluster is and whether the configured review mode works there; None after saying (on
    stderr, naming the key) why Teleport could not be asked."""
    from chatops_bot import preflight, teleport_role

    try:
        return await preflight.inspect(client, mode=settings.review.mode,
                                       automatic=teleport_role.automatic_roles(settings),
                                       has_rules=bool(settings.review.rules))
    except Unavailable as err:
        print(f"teleport.addr: {describe_unreachable(settings.teleport.addr, err.detail)}", file=sys.stderr)
    except AccessDenied as err:
        if "client version is unsupported" in err.detail:
            print(f"teleport.addr: the Teleport server refused the bot's client version {CLIENT_VERSION}: it is "
                  f"more than one major version newer than the bot supports (Teleport {preflight.OLDEST_MAJOR}"
                  f" to {preflight.NEWEST_MAJOR})", file=sys.stderr)
        else:
            print(f"teleport: Teleport refused to tell the bot who it is: {err.detail}", file=sys.stderr)
    except BackendError as err:
        print(f"teleport: {err.message} ({err.detail})", file=sys.stderr)
    return None


def _usable_identity(settings: Settings, client: TeleportClient) -> Identity | None:
    """The bot's identity, or None after saying (naming the key) why it cannot be used."""
    key = "teleport.identity_file" if settings.teleport.identity_file else "teleport.client_cert_file"
    try:
        identity = client.identity_source.load()
    except IdentityError as err:
        print(f"{key}: {err}", file=sys.stderr)
        return None
    if identity.not_after <= datetime.now(UTC):
        print(f"{key}: the certificate expired at {identity.not_after:%Y-%m-%d %H:%M} UTC; "
              "issue a new one (tctl auth sign, or let tbot renew it)", file=sys.stderr)
        return None
    return identity


def describe_unreachable(addr: str, detail: str) -> str:
    """Name the likely cause of an UNAVAILABLE from grpc's detail text."""
    lowered = detail.lower()
    if "connection refused" in lowered or "connect failed" in lowered:
        return f"cannot connect to {addr}: connection refused (is Teleport's Auth service listening there?)"
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        return (f"TLS to {addr} failed: the server's certificate is not signed by the CA in the identity "
                "file (wrong cluster, or a proxy in between)")
    if "handshake" in lowered or "ssl" in lowered or "socket closed" in lowered:
        return (f"TLS handshake with {addr} failed: the server rejected the bot's certificate "
                "(expired, or issued by another cluster's CA) or the CA does not match")
    if "deadline" in lowered:
        return f"no answer from {addr} before the deadline (firewall, or the wrong port?)"
    return f"cannot reach {addr}: {detail}"


def _serve(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return EXIT_CONFIG
    logs.configure(settings.logging.level, settings.logging.format)
    return asyncio.run(_serve_until_stopped(settings))


async def _serve_until_stopped(settings: Settings) -> int:
    from chatops_bot.server import serve
    from chatops_bot.adapters.base import StartFailed
    from chatops_bot import runtime
    from chatops_bot.wiring import teleport_client

    if settings.slack is None and settings.mattermost is None:
        print("slack, mattermost: no chat platform is configured; add a slack or mattermost section",
              file=sys.stderr)
        return EXIT_CONFIG
    client = teleport_client(settings)
    if _usable_identity(settings, client) is None:
        return EXIT_FAILED
    try:
        report = await _inspect(settings, client)
        if report is None:
            return EXIT_FAILED
        for finding in report.findings:
            if finding.fatal:
                print(finding.text, file=sys.stderr)
            else:
                logging.getLogger(__name__).warning("%s", finding.text)
        if report.fatal:
            return EXIT_CONFIG
        logging.getLogger(__name__).info("%s", report.summary())
        try:
            adapters = runtime.services(settings, client)
            await serve(adapters, host=settings.server.host, port=settings.server.port)
        except StartFailed as err:
            print(str(err), file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    finally:
        await client.close()


def _slack_manifest(args: argparse.Namespace) -> int:
    import yaml

    from chatops_bot.adapters.slack import manifest

    match_email = channel_names = False
    if args.config is not None:
        settings = _load(args.config, secrets=False)
        if settings is None:
            return EXIT_CONFIG
        match_email = settings.users.match_email
        channel_names = bool(settings.slack_channel_names())
    try:
        document = manifest(args.url, socket_mode=args.socket_mode, match_email=match_email,
                            channel_names=channel_names)
    except ValueError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    print(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), end="")
    return EXIT_OK


def _teleport_role(args: argparse.Namespace) -> int:
    from chatops_bot.teleport_role import render

    settings = _load(args.config, secrets=False) if args.config is not None else None
    if args.config is not None and settings is None:
        return EXIT_CONFIG
    if args.connect:
        if settings is None:
            print("--connect: needs -c CONFIG (where the cluster is, and the identity to ask it with)",
                  file=sys.stderr)
            return EXIT_CONFIG
        verdict = asyncio.run(_cluster_accepts(settings, args.review_mode or settings.review.mode))
        if verdict != EXIT_OK:
            return verdict
    print(render(args.review_mode, settings), end="")
    return EXIT_OK


async def _cluster_accepts(settings: Settings, mode: str) -> int:
    """EXIT_OK when the cluster in front of the bot can work in `mode`; else why, on stderr."""
    from chatops_bot import preflight
    from chatops_bot.wiring import teleport_client

    client = teleport_client(settings)
    if _usable_identity(settings, client) is None:
        return EXIT_FAILED
    try:
        report = await _inspect(settings, client)
    finally:
        await client.close()
    if report is None:
        return EXIT_FAILED
    # The role about to be printed is not created yet: judge the mode, not the grants it will add.
    fatal = [f for f in preflight.judge(report.info, None, mode=mode,
                                        has_rules=bool(settings.review.rules)) if f.fatal]
    for finding in fatal:
        print(f"error: {finding.text}", file=sys.stderr)
    return EXIT_CONFIG if fatal else EXIT_OK


def _mattermost_register(args: argparse.Namespace) -> int:
    settings = _load(args.config, registering=True)
    if settings is None:
        return EXIT_CONFIG
    if settings.mattermost is None:
        print("mattermost: required to register the command (url and bot_token)", file=sys.stderr)
        return EXIT_CONFIG
    admin_token = None
    if args.admin_token_env:
        admin_token = os.environ.get(args.admin_token_env, "").strip()
        if not admin_token:
            print(f"--admin-token-env: the environment variable {args.admin_token_env} is not set",
                  file=sys.stderr)
            return EXIT_CONFIG
    return asyncio.run(_register(settings, args.team, args.url, admin_token))


async def _register(settings: Settings, team: str, url: str, admin_token: str | None) -> int:
    """One line on stderr for every failure (exit 1, or 2 for the config), never a traceback."""
    from mattermostautodriver import AsyncTypedDriver

    from chatops_bot.adapters.mattermost import StartError
    from chatops_bot.adapters.mattermost.outbound import MattermostOutbound, driver_options
    from chatops_bot.adapters.mattermost.register import RegisterError, register_command

    assert settings.mattermost is not None
    try:
        # No retries: a person waits on this, and an unreachable server is said at once, not in 6 s.
        options = driver_options(settings.mattermost, retries=0)
    except StartError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    token_key = "--admin-token-env" if admin_token else "mattermost.bot_token"
    if admin_token:
        options["token"] = admin_token
    outbound = MattermostOutbound(AsyncTypedDriver(options), base_url=settings.mattermost.url,
                                  token_key=token_key)
    try:
        await outbound.login()
        command, token = await register_command(outbound.driver, team, url, token_key=token_key)
    except (StartError, RegisterError) as err:
        print(str(err), file=sys.stderr)
        return EXIT_FAILED
    finally:
        await outbound.close()
    print(f"/access is registered on team {team!r} (command {command['id']}), posting to {url}.")
    print("Put this token in mattermost.command_tokens:")
    print(token)
    return EXIT_OK


def _webhook_test(args: argparse.Namespace) -> int:
    from chatops_bot.integrations.webhooks.probe import probe

    settings = _load(args.config)
    if settings is None:
        return EXIT_CONFIG
    if settings.webhooks is None:
        print(f"{args.config}: no webhooks section", file=sys.stderr)
        return EXIT_CONFIG
    try:
        result = asyncio.run(probe(settings.webhooks, args.endpoint))
    except LookupError as err:
        print(err.args[0], file=sys.stderr)
        return EXIT_CONFIG
    print(result.report())
    return EXIT_OK if result.ok else EXIT_FAILED


def _console(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return EXIT_CONFIG
    return asyncio.run(_console_loop(settings, args.user))


async def _console_loop(settings: Settings, user: str) -> int:
    from chatops_bot.adapters.console.prompt import ask
    from chatops_bot.adapters.console.session import ConsoleSession
    from chatops_bot.wiring import command_context, teleport_client

    client = teleport_client(settings)
    try:
        if _usable_identity(settings, client) is None:
            return EXIT_FAILED
        report = await _inspect(settings, client)  # Teleport is checked now, not at the first command
        if report is None:
            return EXIT_FAILED
        _print_report(report, settings.review.mode)
        if report.fatal:
            return EXIT_CONFIG  # every command would be refused: say so now, as serve does
        session = ConsoleSession(command_context(settings, client), user=user)
        print("Type `/access …` (e.g. `/access help`); `as NAME` switches user; Ctrl-D quits.")
        while True:
            try:
                line = await ask(input, f"{session.user}> ")
            except EOFError:
                return EXIT_OK
            await session.handle(line)
    finally:
        await client.close()


def _demo(args: argparse.Namespace) -> int:
    from chatops_bot.demo import run_demo

    return asyncio.run(run_demo(interactive=args.interactive, jira=args.jira))


def _devstack_teleport(args: argparse.Namespace) -> int:
    from chatops_bot.demo import demo_seed_text
    from chatops_bot.devstack.seed import SeedError, load_seed
    from chatops_bot.devstack.teleport import SERVER_VERSION, ListenError, ProxyListenError, serve_forever

    try:
        seed = load_seed(args.seed.read_text() if args.seed else demo_seed_text(args.edition))
    except (OSError, SeedError) as err:
        print(f"--seed: {err}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        asyncio.run(serve_forever(seed, listen=args.listen, identity_out=args.identity_out,
                                  cluster_name=args.cluster_name, edition=args.edition,
                                  version=args.server_version or SERVER_VERSION,
                                  proxy_listen=args.proxy_listen))
    except ProxyListenError as err:
        print(f"--proxy-listen {args.proxy_listen}: {err}", file=sys.stderr)
        return EXIT_FAILED
    except SeedError as err:
        print(f"--seed: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as err:
        print(f"--version: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except ListenError as err:
        print(f"--listen {args.listen}: {err}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as err:
        print(f"--identity-out {args.identity_out}: {err.strerror or err}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _devstack_pagerduty(args: argparse.Namespace) -> int:
    from chatops_bot.devstack.pagerduty import serve_forever

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"--listen {args.listen}: must be host:port", file=sys.stderr)
        return EXIT_CONFIG
    try:
        asyncio.run(serve_forever(host, int(port), webhook_url=args.webhook_url))
    except OSError as err:
        print(f"--listen {args.listen}: {err.strerror or err}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _devstack_jira(args: argparse.Namespace) -> int:
    from chatops_bot.devstack.jira import ListenError, serve_forever

    try:
        asyncio.run(serve_forever(listen=args.listen, deployment=args.deployment))
    except ListenError as err:
        print(f"--listen {args.listen}: {err}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
