"""History import: documented columns, a column mapping for other exports."""

from __future__ import annotations

from pydantic import BaseModel, Field

#: The columns of a history CSV (docs/risk.md). Required: transaction_id, occurred_at, account_id,
#: payee, and amount_minor (or `amount` in major units with an amount scale).
COLUMNS = (
    "transaction_id",
    "occurred_at",
    "account_id",
    "customer_id",
    "payee",
    "amount_minor",
    "amount",
    "currency",
    "kind",
    "channel",
    "ip",
    "device_id",
    "region",
    "label",
    "labelled_at",
)

#: The Fraud Detection Handbook's simulated transactions (shared/datasets/fdh).
PRESETS: dict[str, dict[str, str]] = {
    "fdh": {
        "occurred_at": "tx_datetime",
        "account_id": "customer_id",
        "customer_id": "",
        "payee": "terminal_id",
        "amount": "tx_amount",
        "label": "tx_fraud",
    },
}


class ImportOptions(BaseModel):
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description='Our column -> the file\'s column (e.g. {"payee": "terminal_id"}); "" drops it.',
    )
    amount_scale: int = Field(default=100, ge=1, le=10_000, description="Minor units per major unit for `amount`.")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    kind: str = Field(default="card_payment", pattern=r"^[a-z][a-z_]{1,31}$")
    channel: str = Field(default="import", max_length=32)
    label_delay_days: float = Field(
        default=7.0, ge=0, le=365, description="labelled_at = occurred_at + this, for labels without their own time."
    )


class ImportOut(BaseModel):
    read: int
    inserted: int
    already_stored: int
    labelled: int
