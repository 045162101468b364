"""A change to our policy on one channel."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .channels import ChannelPolicy

__all__ = ["FeeUpdate"]

_POLICY_FIELDS = (
    "base_fee_msat",
    "fee_ppm",
    "inbound_base_fee_msat",
    "inbound_fee_ppm",
    "min_htlc_msat",
    "max_htlc_msat",
    "cltv_delta",
    "disabled",
)


@dataclass(frozen=True, slots=True)
class FeeUpdate:
    """A change to our policy on one channel. ``None`` in a field means keep it."""

    base_fee_msat: int | None = None
    fee_ppm: int | None = None
    inbound_base_fee_msat: int | None = None
    inbound_fee_ppm: int | None = None
    min_htlc_msat: int | None = None
    max_htlc_msat: int | None = None
    cltv_delta: int | None = None
    disabled: bool | None = None

    @classmethod
    def between(cls, old: ChannelPolicy, new: ChannelPolicy) -> FeeUpdate:
        """The update that turns ``old`` into ``new`` (only differing fields set)."""
        changed = {name: getattr(new, name) for name in _POLICY_FIELDS if getattr(old, name) != getattr(new, name)}
        return cls(**changed)

    def fields_set(self) -> dict[str, Any]:
        """The fields this update sets, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def apply_to(self, policy: ChannelPolicy) -> ChannelPolicy:
        """The policy after this update."""
        return replace(policy, **self.fields_set())

    def changes(self, policy: ChannelPolicy) -> dict[str, tuple[Any, Any]]:
        """``{field: (old, new)}`` for the fields that would actually change."""
        return {
            name: (getattr(policy, name), value)
            for name, value in self.fields_set().items()
            if getattr(policy, name) != value
        }

    def is_empty(self) -> bool:
        return not self.fields_set()
