"""The one-time code a flow "sent" by SMS or e-mail, read back from identity's development sink.

Flow tests talk to the suite through the gateway; identity's development sink
stands in for the SMS and e-mail providers. One helper for every flow test, the
same code path as ``make codes`` (:mod:`ops.dev_codes`).
"""

from __future__ import annotations

import httpx

from ops.dev_codes import wait_for_code


async def sent_code(client: httpx.AsyncClient, account_id: str, template: str, *, token: str | None = None) -> str:
    """The latest code sent to ``account_id`` whose template starts with ``template`` (e.g. ``code.login``).

    ``client`` is based at the gateway; ``token`` is a service token (one is fetched
    with the development client credentials when none is given). Polls the sink
    until the code is there (its recipient is resolved by a background worker).
    """
    return await wait_for_code(client, account_id, template, token=token)
