"""Baseline queries: every number is computed in event time from the stored events.

A window of length ``w`` is ``[occurred_at - w, occurred_at)``, so a late or
out-of-order event sees exactly the history that preceded it, and a replay of
history gives the numbers the live service gave. A fraud label counts only from
its ``labelled_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from kit.statements import Statement

LOCK_PROFILE = Statement(
    text(
        """
    WITH locked AS (
        INSERT INTO risk.customer_profile AS p (customer_key, customer_id, scored)
        VALUES (:k, :cid, 1)
        ON CONFLICT (customer_key) DO UPDATE
           SET scored = p.scored + 1, customer_id = coalesce(excluded.customer_id, p.customer_id)
        RETURNING p.risk_level
    )
    SELECT (SELECT risk_level FROM locked) AS risk_level,
           s.transaction_id, s.score, s.decision, s.reasons, s.model_version, s.ruleset_version
      FROM (SELECT 1) AS one
      LEFT JOIN risk.scored_transaction s ON s.transaction_id = :id AND s.decision IS NOT NULL
    """
    )
)

FEATURES = Statement(
    text(
        """
    WITH c AS (
        SELECT occurred_at, amount_minor, decision
          FROM risk.scored_transaction
         WHERE customer_key = :k AND occurred_at < :t AND occurred_at >= :t - interval '30 days'
    ), prev AS (
        SELECT occurred_at, region
          FROM risk.scored_transaction
         WHERE customer_key = :k AND occurred_at < :t
         ORDER BY occurred_at DESC LIMIT 1
    ), login AS (
        SELECT occurred_at, region
          FROM risk.login_event
         WHERE customer_key = :k AND occurred_at <= :t AND occurred_at >= :t - make_interval(mins => :login_mins)
         ORDER BY occurred_at DESC LIMIT 1
    ), pay AS (
        -- One row per payee window of the model's features (learning.features.PAYEE_WINDOWS).
        SELECT count(*) FILTER (WHERE occurred_at >= :t - interval '1 day') AS n1d,
               count(*) FILTER (WHERE occurred_at >= :t - interval '7 days') AS n7d,
               count(*) FILTER (WHERE occurred_at >= :t - interval '8 days') AS n8d,
               count(*) FILTER (WHERE occurred_at >= :t - interval '14 days') AS n14d,
               count(*) FILTER (WHERE occurred_at >= :t - interval '30 days') AS n30d,
               count(*) AS n60d,
               count(*) FILTER (WHERE occurred_at >= :t - interval '1 day'
                                  AND label = 'fraud' AND labelled_at <= :t) AS f1d,
               count(*) FILTER (WHERE occurred_at >= :t - interval '7 days'
                                  AND label = 'fraud' AND labelled_at <= :t) AS f7d,
               count(*) FILTER (WHERE occurred_at >= :t - interval '8 days'
                                  AND label = 'fraud' AND labelled_at <= :t) AS f8d,
               count(*) FILTER (WHERE occurred_at >= :t - interval '14 days'
                                  AND label = 'fraud' AND labelled_at <= :t) AS f14d,
               count(*) FILTER (WHERE occurred_at >= :t - interval '30 days'
                                  AND label = 'fraud' AND labelled_at <= :t) AS f30d,
               count(*) FILTER (WHERE label = 'fraud' AND labelled_at <= :t) AS f60d
          FROM risk.scored_transaction
         WHERE payee = :p AND occurred_at < :t AND occurred_at >= :t - interval '60 days'
    ), lists AS (
        SELECT coalesce(bool_or(list = 'ip' AND verdict = 'block'), false) AS ip_blocked,
               coalesce(bool_or(list = 'device' AND verdict = 'block'), false) AS device_blocked,
               coalesce(bool_or(list = 'payee' AND verdict = 'block'), false) AS payee_blocked,
               coalesce(bool_or(list = 'ip' AND verdict = 'allow'), false) AS ip_allowed,
               coalesce(bool_or(list = 'device' AND verdict = 'allow'), false) AS device_allowed,
               coalesce(bool_or(list = 'payee' AND verdict = 'allow'), false) AS payee_allowed,
               coalesce(bool_or(list = 'phishing_domain' AND verdict = 'block'), false) AS payee_phishing
          FROM risk.list_entry
         WHERE removed_at IS NULL AND (expires_at IS NULL OR expires_at > now())
           AND ((list = 'ip' AND value = :ip) OR (list = 'device' AND value = :d) OR (list = 'payee' AND value = :p)
                OR (list = 'phishing_domain' AND value = CAST(:pd AS varchar)))
    )
    SELECT count(*) FILTER (WHERE c.occurred_at >= :t - interval '1 hour') AS n1h,
           coalesce(sum(c.amount_minor) FILTER (WHERE c.occurred_at >= :t - interval '1 hour'), 0) AS a1h,
           count(*) FILTER (WHERE c.occurred_at >= :t - interval '1 day') AS n1d,
           coalesce(sum(c.amount_minor) FILTER (WHERE c.occurred_at >= :t - interval '1 day'), 0) AS a1d,
           count(*) FILTER (WHERE c.occurred_at >= :t - interval '7 days') AS n7d,
           coalesce(sum(c.amount_minor) FILTER (WHERE c.occurred_at >= :t - interval '7 days'), 0) AS a7d,
           count(*) AS n30d,
           coalesce(sum(c.amount_minor), 0) AS a30d,
           coalesce(avg(c.amount_minor), 0)::float8 AS avg30d,
           coalesce(max(c.amount_minor), 0) AS max30d,
           count(*) FILTER (WHERE ((extract(hour FROM c.occurred_at AT TIME ZONE 'UTC')::int
                                    - CAST(:hour AS int) + 25) % 24) <= 2) AS near_hour,
           count(*) FILTER (WHERE c.occurred_at >= :t - interval '1 hour'
                              AND c.decision IN ('block', 'freeze')) AS declined_1h,
           (SELECT occurred_at FROM prev) AS prev_at,
           (SELECT region FROM prev) AS prev_region,
           (SELECT occurred_at FROM login) AS login_at,
           (SELECT region FROM login) AS login_region,
           (SELECT count(*) FROM risk.login_event
             WHERE customer_key = :k AND occurred_at <= :t AND occurred_at >= :t - interval '1 hour'
               AND signals @> '["recent_failures"]'::jsonb) AS failed_logins_1h,
           EXISTS (SELECT 1 FROM risk.scored_transaction
                    WHERE customer_key = :k AND payee = :p AND occurred_at < :t) AS seen_payee,
           (CAST(:d AS varchar) IS NOT NULL AND EXISTS (SELECT 1 FROM risk.scored_transaction
                    WHERE customer_key = :k AND device_id = :d AND occurred_at < :t)) AS seen_device,
           (CAST(:r AS varchar) IS NOT NULL AND EXISTS (SELECT 1 FROM risk.scored_transaction
                    WHERE customer_key = :k AND region = :r AND occurred_at < :t)) AS seen_region,
           (SELECT count(*) FROM risk.scored_transaction
             WHERE customer_key = :k AND label = 'fraud' AND labelled_at <= :t AND occurred_at < :t) AS customer_fraud,
           (SELECT row_to_json(pay) FROM pay) AS payee,
           (SELECT row_to_json(lists) FROM lists) AS lists
      FROM c
    """
    )
)


def domain_of(payee: str) -> str | None:
    """The host of a payee that is a web address or a domain (merchants paid online), lower-case."""
    value = payee.strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    host = value.split("/", 1)[0].split(":", 1)[0].rstrip(".")
    return host if "." in host and not host.replace(".", "").isdigit() else None


async def lock_profile(
    session: AsyncSession, customer_key: str, customer_id: str | None, transaction_id: str
) -> tuple[str, dict[str, Any] | None]:
    """Create or lock the customer's profile row (scoring of one customer is serialised from here on)
    and, in the same round trip, find the transaction's first decision if it was scored already."""
    row = await LOCK_PROFILE.fetchrow(session, {"k": customer_key, "cid": customer_id, "id": transaction_id})
    assert row is not None
    stored = dict(row) if row["decision"] is not None else None
    return str(row["risk_level"]), stored


async def features(
    session: AsyncSession,
    *,
    customer_key: str,
    occurred_at: datetime,
    payee: str,
    device_id: str | None,
    region: str | None,
    ip: str | None,
    login_window_minutes: int,
) -> dict[str, Any]:
    """Every baseline number of one transaction in one round trip."""
    row = await FEATURES.fetchrow(
        session,
        {
            "k": customer_key,
            "t": occurred_at,
            "p": payee,
            "d": device_id,
            "r": region,
            "ip": ip,
            "hour": occurred_at.hour,
            "login_mins": login_window_minutes,
            "pd": domain_of(payee),
        },
    )
    assert row is not None
    return dict(row)
