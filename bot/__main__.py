"""The `aistatus` command line (`python -m bot` is the same). IO: parses arguments, loads settings,
hands over to the composition root (`run`) or a one-shot verb (`bot.cli`), and turns known errors
into one line and an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from bot import __version__
from bot.errors import ConfigError
from bot.ops import redact
from bot.settings import Settings, load_settings

log = logging.getLogger("aistatus")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aistatus",
        description="Is Claude down, or is it just me? Watches every Claude surface and tells "
        "your Slack and Discord channels.",
    )
    p.add_argument("--version", action="version", version=f"aistatus {__version__}")
    p.add_argument(
        "--env-file", default=None, help="settings file (default: ./.env when it exists)"
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the bot (watcher, alerts, chat apps) until interrupted")
    status = sub.add_parser("status", help="poll everything once and print a table (exit 0/1/2)")
    status.add_argument("--json", action="store_true", help="print the board document instead")
    demo = sub.add_parser("demo", help="replay a recorded Claude incident on loopback")
    demo.add_argument("--pause", type=float, default=3.0, help="seconds between steps (default 3)")
    check = sub.add_parser(
        "check-config", help="validate settings and the catalog: every problem at once"
    )
    check.add_argument(
        "--connect", action="store_true", help="also reach Redis and each status page once"
    )
    man = sub.add_parser("manifests", help="write manifests/discord-commands.json from the code")
    man.add_argument("--out", default="manifests/discord-commands.json")
    dl = sub.add_parser("deliveries", help="list pending, retrying and dead alert deliveries")
    act = dl.add_mutually_exclusive_group()
    act.add_argument(
        "--retry", metavar="ID|all", help="queue dead letters again (the running bot sends them)"
    )
    act.add_argument("--drop", metavar="ID|all", help="delete dead letters for good")
    hooks = sub.add_parser("webhooks", help="outgoing webhooks: add, list, remove")
    verbs = hooks.add_subparsers(dest="webhooks", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="POST alerts about some surfaces to a URL")
    add.add_argument("url", metavar="URL", help="an http(s) URL")
    add.add_argument(
        "--surfaces", nargs="+", required=True, metavar="SURFACE", help="surface ids, or all"
    )
    add.add_argument("--min", choices=("degraded", "partial", "major"), default=None)
    add.add_argument("--format", choices=("json", "slack", "teams"), default="json")
    add.add_argument(
        "--allow-private",
        action="store_true",
        help="allow loopback and private-network URLs (refused by default: SSRF)",
    )
    verbs.add_parser("list", help="every webhook, its surfaces and state")
    remove = verbs.add_parser("remove", help="stop and forget a webhook")
    remove.add_argument("id", metavar="ID")
    return p


def _logging(settings: Settings) -> None:
    from bot.ops.logs import configure

    configure(settings.log_level, settings.log_format)
    redact.install(settings.secret_values())  # every handler: third-party DEBUG output too


async def _run(settings: Settings) -> int:
    from bot.app import run

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await run(settings, stop=stop, out=sys.stdout)


async def _webhooks(settings: Settings, args: argparse.Namespace) -> int:
    from bot import cli

    if args.webhooks == "add":
        return await cli.webhooks_add(
            settings,
            args.url,
            args.surfaces,
            sys.stdout,
            min_flag=args.min,
            fmt=args.format,
            allow_private=args.allow_private,
        )
    if args.webhooks == "list":
        return await cli.webhooks_list(settings, sys.stdout)
    return await cli.webhooks_remove(settings, args.id, sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "run"
    env_file = args.env_file or ".env"
    try:
        if command == "check-config":
            from bot.cli import check_config

            return asyncio.run(
                check_config(
                    env_file,
                    sys.stdout,
                    require_file=args.env_file is not None,
                    connect=args.connect,
                )
            )
        settings = load_settings(env_file, require_file=args.env_file is not None)
        _logging(settings)
        if command == "run":
            return asyncio.run(_run(settings))
        if command == "status":
            from bot.cli import status

            return asyncio.run(status(settings, sys.stdout, as_json=args.json))
        if command == "demo":
            from bot.ops.demo import run_demo

            if settings.log_level != "DEBUG":  # the demo's output is the console sink itself
                logging.getLogger("bot").setLevel(logging.WARNING)

            return asyncio.run(run_demo(settings, sys.stdout, pause=args.pause))
        if command == "manifests":
            from bot.cli import manifests

            return manifests(settings, args.out, sys.stdout)
        if command == "deliveries":
            from bot.cli import deliveries

            return asyncio.run(deliveries(settings, sys.stdout, retry=args.retry, drop=args.drop))
        if command == "webhooks":
            return asyncio.run(_webhooks(settings, args))
    except ConfigError as e:
        for line in str(e).splitlines():
            print(f"aistatus: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    raise AssertionError(command)


if __name__ == "__main__":
    sys.exit(main())
