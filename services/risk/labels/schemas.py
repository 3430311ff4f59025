"""Labels: outcomes of transactions (the training data of the next model)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field


class LabelValue(StrEnum):
    fraud = "fraud"
    genuine = "genuine"


class LabelIn(BaseModel):
    transaction_id: str = Field(min_length=1, max_length=128)
    label: LabelValue
    source: str = Field(min_length=1, max_length=64)
    labelled_at: AwareDatetime | None = Field(
        default=None,
        description="When the outcome became known (default: now); baselines count a label only from then on.",
    )


class LabelsIn(BaseModel):
    labels: list[LabelIn] = Field(min_length=1, max_length=5_000)


class LabelsOut(BaseModel):
    applied: int
    unknown: list[str]
