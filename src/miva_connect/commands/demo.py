"""`miva-connect demo`: the sandbox store and the service, with a walk-through to paste."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import socket

import uvicorn
from pydantic import AnyHttpUrl

from miva_connect.app import create_app
from miva_connect.channels.service import ChannelService, RegisteredChannel
from miva_connect.commands.serve import (
    ConfigurationError,
    check_startup,
    graceful_shutdown_seconds,
    load_settings,
    uvicorn_config,
)
from miva_connect.db.engine import Database, create_engine
from miva_connect.db.migrations import upgrade
from miva_connect.errors import NotFound
from miva_connect.sandbox import (
    DEMO_SIGNING_KEY,
    DEMO_STORE_CODE,
    DEMO_TOKEN_GOOD,
    DEMO_TOKENS,
    demo_sandbox,
    serve_in_thread,
)
from miva_connect.settings import Settings

DEMO_CHANNEL_SLUG = "demo"
WALKTHROUGH_START = "# ---- walk-through: paste these lines into another terminal ----"
WALKTHROUGH_END = "# ---- end of walk-through ----"


def sandbox_banner(base_url: str) -> str:
    lines = [
        f"Sandbox Miva store: {base_url}/mm5/json.mvc  (store code {DEMO_STORE_CODE})",
        f"  signing key of every demo token: {DEMO_SIGNING_KEY}",
    ]
    lines += [f"  access token {token}: {what}" for token, what in DEMO_TOKENS.items()]
    return "\n".join(lines)


def walkthrough(api: str, sandbox: str, channel: RegisteredChannel) -> str:
    def post(path: str, body: dict[str, str], auth: str = "") -> str:
        user = f"-u {shlex.quote(auth)} " if auth else ""
        return (
            f"curl -s {user}-H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(body))} {api}{path}"
        )

    credentials = {"store_code": DEMO_STORE_CODE, "api_key": DEMO_TOKEN_GOOD}
    wrong = {**credentials, "signing_key": "d3JvbmcKa2V5"}
    right = {**credentials, "signing_key": DEMO_SIGNING_KEY}
    session = "/v1/sessions/$SESSION"
    open_session = post(
        "/v1/sessions", {"state": "demo-state-42"}, f"{channel.id}:{channel.secret}"
    )
    extract_id = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])'"
    return "\n".join(
        [
            WALKTHROUGH_START,
            "# 1. The channel opens an onboarding session (HTTP Basic: channel id and secret).",
            f'SESSION=$({open_session} | {extract_id}); echo "session: $SESSION"',
            "# 2. The merchant pastes the Store URL; the service finds the JSON API endpoint.",
            f"{post(session + '/store-url', {'store_url': sandbox + '/mm5/'})}; echo",
            "# 3. A wrong Signing Key: the answer says what to fix, and where.",
            f"{post(session + '/credentials', wrong)}; echo",
            "# 4. The right credentials: validated against the store, stored encrypted.",
            f"{post(session + '/credentials', right)}; echo",
            "# 5. Back to the channel, with its state and the new merchant_id.",
            f"curl -s -i {api}{session}/redirect | grep -i '^location'",
            WALKTHROUGH_END,
        ]
    )


async def _demo_channel(settings: Settings, redirect_url: str) -> RegisteredChannel:
    db = Database(create_engine(settings.database_url))
    channels = ChannelService(db)
    try:
        return await channels.reset_secret(DEMO_CHANNEL_SLUG, redirect_url)
    except NotFound:
        return await channels.register("Demo Channel", redirect_url, DEMO_CHANNEL_SLUG)
    finally:
        await db.dispose()


def _check_ports_free(*ports: int) -> None:
    busy = []
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    if busy:
        raise ConfigurationError(
            [f"port {p} is in use; pass --port / --sandbox-port to choose others" for p in busy]
        )


def run(args: argparse.Namespace) -> int:
    _check_ports_free(args.port, args.sandbox_port)
    api = f"http://127.0.0.1:{args.port}"
    settings: Settings = load_settings().model_copy(
        update={"allow_private_networks": True, "public_url": AnyHttpUrl(api)}
    )
    check_startup(settings)
    upgrade(settings.database_url)
    with serve_in_thread(demo_sandbox(), port=args.sandbox_port) as sandbox:
        channel = asyncio.run(_demo_channel(settings, f"{sandbox}/channel/return"))
        print(sandbox_banner(sandbox))
        print(f"Demo channel: id {channel.id}, link {api}/connect/{channel.slug}?state=demo")
        print(f"API: {api}  (OpenAPI docs at {api}/docs)\n")
        print(walkthrough(api, sandbox, channel), flush=True)
        config = uvicorn_config(
            create_app(settings),
            "127.0.0.1",
            args.port,
            shutdown_seconds=graceful_shutdown_seconds(settings),
        )
        uvicorn.Server(config).run()
    return 0
