"""The `miva-connect` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from miva_connect import __version__
from miva_connect.commands import check, demo, serve
from miva_connect.crypto import generate_key
from miva_connect.errors import AppError
from miva_connect.logs import configure_logging


def _keys_generate(_args: argparse.Namespace) -> int:
    print(generate_key())
    return 0


def _keys_rotate(_args: argparse.Namespace) -> int:
    report = asyncio.run(serve.rotate_keys(serve.load_settings()))
    print(json.dumps({"rotated": report.rotated, "failed_merchant_ids": report.failed}))
    return 1 if report.failed else 0


def _db_upgrade(_args: argparse.Namespace) -> int:
    from miva_connect.db.migrations import upgrade

    upgrade(serve.load_settings().database_url)
    print("database is at the latest revision")
    return 0


def _channels_add(args: argparse.Namespace) -> int:
    registered = asyncio.run(
        serve.register_channel(serve.load_settings(), args.name, args.redirect_url, args.slug)
    )
    print(
        json.dumps(
            {
                "id": registered.id,
                "slug": registered.slug,
                "name": registered.name,
                "redirect_url": registered.redirect_url,
                "secret": registered.secret,
            },
            indent=2,
        )
    )
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from miva_connect.sandbox import demo_sandbox, run_sandbox

    sandbox = demo_sandbox()
    sandbox.latency = args.latency_ms / 1000
    print(demo.sandbox_banner(f"http://{args.host}:{args.port}"), flush=True)
    run_sandbox(sandbox, args.host, args.port)
    return 0


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="miva-connect", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("serve", help="run the API")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    run.add_argument("--port", type=int, default=8000, help="port to listen on (%(default)s)")
    run.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes (%(default)s); more than 1 needs MIVA_CONNECT_REDIS_URL",
    )
    run.set_defaults(handler=serve.serve)

    db = commands.add_parser("db", help="database commands")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_commands.add_parser("upgrade", help="apply migrations").set_defaults(handler=_db_upgrade)

    keys = commands.add_parser("keys", help="encryption keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    keys_commands.add_parser("generate", help="print a new Fernet key").set_defaults(
        handler=_keys_generate
    )
    keys_commands.add_parser(
        "rotate", help="re-encrypt stored credentials under the first key of the ring"
    ).set_defaults(handler=_keys_rotate)

    channels = commands.add_parser("channels", help="channels")
    channel_commands = channels.add_subparsers(dest="channels_command", required=True)
    add = channel_commands.add_parser("add", help="register a channel; prints its secret once")
    add.add_argument("--name", required=True, help="shown to merchants")
    add.add_argument(
        "--redirect-url", required=True, help="where merchants return, with state and merchant_id"
    )
    add.add_argument("--slug", help="for the /connect/SLUG link (default: from the name)")
    add.set_defaults(handler=_channels_add)

    sandbox = commands.add_parser("sandbox", help="run a local Miva JSON API store")
    sandbox.add_argument("--host", default="127.0.0.1", help="address (%(default)s)")
    sandbox.add_argument("--port", type=int, default=8100, help="port (%(default)s)")
    sandbox.add_argument(
        "--latency-ms", type=float, default=0.0, help="added to every API reply (%(default)s)"
    )
    sandbox.set_defaults(handler=_sandbox)

    checker = commands.add_parser(
        "check",
        help="validate credentials against a store",
        description="Keys are read from MIVA_API_KEY / MIVA_SIGNING_KEY, or asked for.",
    )
    checker.add_argument("--store-url", required=True, help="the token's Endpoint URL")
    checker.add_argument("--store-code", required=True, help="the store's Store Code")
    checker.set_defaults(handler=check.run)

    walkthrough = commands.add_parser("demo", help="sandbox + service + a walk-through")
    walkthrough.add_argument("--port", type=int, default=8000, help="API port (%(default)s)")
    walkthrough.add_argument(
        "--sandbox-port", type=int, default=8100, help="sandbox port (%(default)s)"
    )
    walkthrough.set_defaults(handler=demo.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except serve.ConfigurationError as error:
        for line in error.problems:
            print(f"miva-connect: {line}", file=sys.stderr)
        return 2
    except AppError as error:
        print(f"miva-connect: {error.message}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as error:
        print(
            f"miva-connect: database error ({type(error).__name__}); "
            "check MIVA_CONNECT_DATABASE_URL and that the database exists",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
