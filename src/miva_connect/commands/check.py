"""`miva-connect check`: the API's credential diagnosis, from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys

from miva_connect.app import address_policy, miva_http_client
from miva_connect.commands.serve import ConfigurationError, load_settings
from miva_connect.errors import ValidationFailed
from miva_connect.onboarding.credentials import StoreCredentials, prepare_credentials
from miva_connect.onboarding.validation import StoreValidator, warnings_for
from miva_connect.settings import Settings


def _secret(variable: str, prompt: str) -> str:
    # Never from argv: arguments are visible to every user of the machine (ps, history).
    if variable in os.environ:
        return os.environ[variable]
    if not sys.stdin.isatty():
        raise ConfigurationError(
            [f"{variable} is not set and there is no terminal to ask on (set it; empty is allowed)"]
        )
    return getpass.getpass(prompt)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    submitted = StoreCredentials(
        store_url=args.store_url,
        store_code=args.store_code,
        api_key=_secret("MIVA_API_KEY", "API Key (Access Token): "),
        signing_key=_secret("MIVA_SIGNING_KEY", "Signing Key (empty if none): "),
    )
    return asyncio.run(_check(settings, submitted))


async def _check(settings: Settings, submitted: StoreCredentials) -> int:
    try:
        credentials = prepare_credentials(submitted, None, policy=address_policy(settings))
        async with miva_http_client(settings) as http:
            validator = StoreValidator(
                http, deadline=settings.miva_timeout_seconds, egress_ips=settings.egress_ips
            )
            verification = await validator.verify(credentials)
    except ValidationFailed as failure:
        print(json.dumps(failure.body(), indent=2))
        return 1
    report = {
        "status": "ok",
        "store_url": credentials.store_url,
        "store_code": verification.store_code,
        "store_name": verification.store_name,
        "verified_groups": list(verification.granted_groups),
        "warnings": [{"code": w.code, "message": w.message} for w in warnings_for(verification)],
    }
    print(json.dumps(report, indent=2))
    return 0
