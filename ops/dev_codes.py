"""Print the one-time codes development "sent" by SMS and e-mail: ``make codes`` / ``python -m ops.dev_codes``.

In development and test, identity keeps what it would have sent in a sink
(``GET /v1/identity/internal/dev/notifications``, service tokens only). This
command fetches a service token with the development client credentials
itself, reads the sink through the gateway and prints the latest messages,
newest first, with the code pulled out of each::

    make codes                                    # the latest codes of every account
    uv run python -m ops.dev_codes --account <id> # one account's
    uv run python -m ops.dev_codes --wait --account <id> --template code.login  # wait for one

The gateway is ``SUITE_GATEWAY_URL`` (default ``http://127.0.0.1:$SUITE_PORT_BASE``,
8000). Staging and production have no sink (identity answers 404 there) and
refuse development secrets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

#: The development secret identity registers every suite client with (development and test only).
DEV_CLIENT_SECRET = "dev-insecure-service-client-secret"  # noqa: S105 (a well-known development value)
#: The suite client whose token reads the sink (any suite client may; risk is never the gateway).
DEV_CLIENT_ID = "risk"
SINK_PATH = "/v1/identity/internal/dev/notifications"
TOKEN_PATH = "/v1/identity/public/oauth/token"  # noqa: S105 (a path)
_CODE = re.compile(r"(?<![\w-])(\d{4,10})(?![\w-])")  # a word of digits, not part of a date or an id


class SinkUnavailable(RuntimeError):
    """The sink could not be read (suite not running, not a development environment, ...)."""


@dataclass(frozen=True, slots=True)
class SentCode:
    account_id: str
    channel: str
    template: str
    recipient: str | None
    code: str | None
    created_at: str
    body: str

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> SentCode:
        return cls(
            account_id=str(message.get("account_id")),
            channel=str(message.get("channel")),
            template=str(message.get("template")),
            recipient=message.get("recipient"),
            code=code_in(str(message.get("body", ""))),
            created_at=str(message.get("created_at")),
            body=str(message.get("body", "")),
        )


def code_in(body: str) -> str | None:
    """The one-time code in a message body ("Your Bank Suite code is 482913. ..."), if any."""
    found = _CODE.search(body)
    return found.group(1) if found else None


def default_gateway_url() -> str:
    explicit = os.environ.get("SUITE_GATEWAY_URL")
    if explicit:
        return explicit.rstrip("/")
    return f"http://127.0.0.1:{int(os.environ.get('SUITE_PORT_BASE', '8000'))}"


async def service_token(
    client: httpx.AsyncClient, client_id: str = DEV_CLIENT_ID, secret: str = DEV_CLIENT_SECRET
) -> str:
    response = await client.post(
        TOKEN_PATH, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    if response.status_code != 200:
        raise SinkUnavailable(f"no service token ({response.status_code}): is this a development suite?")
    return str(response.json()["access_token"])


async def sent_codes(
    client: httpx.AsyncClient, *, account_id: str | None = None, token: str | None = None
) -> list[SentCode]:
    """The sink's messages (newest first, at most 100), read with a service token fetched here when none is given."""
    token = token or await service_token(client)
    response = await client.get(
        SINK_PATH,
        params={"account_id": account_id} if account_id else None,
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code != 200:
        raise SinkUnavailable(f"the development sink answered {response.status_code}: {response.text[:200]}")
    return [SentCode.from_message(m) for m in response.json()]


async def wait_for_code(
    client: httpx.AsyncClient,
    account_id: str,
    template: str,
    *,
    attempts: int = 50,
    interval: float = 0.1,
    token: str | None = None,
) -> str:
    """The latest code sent to ``account_id`` whose template starts with ``template``, polling until it is there.

    Messages are written in the transaction that causes them but their recipient
    is resolved by a background worker, so a code can appear a moment after the
    request that sent it.
    """
    token = token or await service_token(client)
    for attempt in range(attempts):
        for sent in await sent_codes(client, account_id=account_id, token=token):
            if sent.template.startswith(template) and sent.code is not None:
                return sent.code
        if attempt + 1 < attempts:
            await asyncio.sleep(interval)
    raise LookupError(f"no {template} code for {account_id} after {attempts} reads of the sink")


def render(codes: Sequence[SentCode], limit: int) -> str:
    if not codes:
        return "no messages in the development sink yet"
    lines = [f"{'sent at (UTC)':<20} {'channel':<7} {'code':<10} {'template':<24} {'to':<26} account"]
    for sent in codes[:limit]:
        template = sent.template.split(":", 1)[0]  # the suffix is a message key, not for people
        lines.append(
            f"{sent.created_at[:19]:<20} {sent.channel:<7} {sent.code or '-':<10} {template:<24} "
            f"{sent.recipient or '(pending)':<26} {sent.account_id}"
        )
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> int:
    async with httpx.AsyncClient(base_url=args.gateway, timeout=10) as client:
        try:
            if args.wait:
                if not args.account or not args.template:
                    print("--wait needs --account and --template", file=sys.stderr)
                    return 2
                print(await wait_for_code(client, args.account, args.template, attempts=args.attempts))
                return 0
            print(render(await sent_codes(client, account_id=args.account), args.limit))
        except (SinkUnavailable, LookupError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except httpx.TransportError as exc:
            print(
                f"error: the gateway at {args.gateway} does not answer ({type(exc).__name__}): `make run`?",
                file=sys.stderr,
            )
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.dev_codes", description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default=default_gateway_url(), help="gateway base URL (default: %(default)s)")
    parser.add_argument("--account", help="only this account id's messages")
    parser.add_argument("--limit", type=int, default=10, help="messages printed (default: %(default)s)")
    parser.add_argument("--wait", action="store_true", help="wait for a code and print only it")
    parser.add_argument("--template", help="with --wait: the message kind, e.g. code.verify:sms or code.login")
    parser.add_argument("--attempts", type=int, default=50, help="with --wait: reads of the sink, 0.1 s apart")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
