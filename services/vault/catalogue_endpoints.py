"""The field catalogue as an API: what the vault stores and how each class is shown."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from kit.auth import CurrentPrincipal
from services.vault.catalogue import CLASS_POLICIES, FIELD_TYPES
from services.vault.state import VaultDep

router = APIRouter(prefix="/me/catalogue", tags=["catalogue"])


class FieldTypeInfo(BaseModel):
    name: str
    data_class: str
    description: str
    indexable: bool
    example_masked: str
    approval_for_unmasked: bool


class ClassInfo(BaseModel):
    data_class: str
    description: str
    staff_unmasked: bool
    approval_required: bool


class Catalogue(BaseModel):
    classes: list[ClassInfo]
    fields: list[FieldTypeInfo]


@router.get("", response_model=Catalogue)
async def catalogue(principal: CurrentPrincipal, vault: VaultDep) -> Catalogue:
    """Every field type with its data class, masking example and whether it can be looked up; every
    class with who may read it unmasked (any signed-in person may read this)."""
    return Catalogue(
        classes=[
            ClassInfo(
                data_class=p.data_class.value,
                description=p.description,
                staff_unmasked=p.staff_unmasked,
                approval_required=p.approval_required,
            )
            for p in CLASS_POLICIES.values()
        ],
        fields=[
            FieldTypeInfo(
                name=t.name,
                data_class=t.data_class.value,
                description=t.description,
                indexable=t.indexable,
                example_masked=t.example_masked,
                approval_for_unmasked=CLASS_POLICIES[t.data_class].approval_required
                or t.name in vault.settings.approval_field_types,
            )
            for t in FIELD_TYPES.values()
        ],
    )
