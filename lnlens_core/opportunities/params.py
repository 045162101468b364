"""The analyzer's tunable parameters: thresholds, weights and saturation points, from the ``[analyzer]`` table.

Its own module so that :mod:`.analyzer` and :mod:`.recommendations`, which both read them, depend on it
and not on each other. docs/opportunities.md says what each one does to the score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..config import parse_duration
from ..errors import ConfigError

__all__ = ["AnalyzerParams"]


@dataclass(frozen=True, slots=True)
class AnalyzerParams:
    """Thresholds and weights. The defaults are lnflow's, so results are comparable."""

    min_failures: int = 3
    """A channel or pair is reported from this many failures at our node (lnflow: min_failure_count)."""
    min_missed_msat: int = 100_000
    """... and this much missed revenue (lnflow: min_missed_sats = 100)."""
    revenue_weight: float = 40.0
    revenue_saturation_msat: int = 10_000_000
    frequency_weight: float = 30.0
    frequency_saturation: int = 10
    rate_weight: float = 30.0
    min_projection_s: int = 86_400
    """Below this much observed time the projection range widens as if it were this long at most."""
    propagation_s: int = 3_600
    """How long after our policy change fee failures are blamed on stale gossip, not on the fee."""
    target_ratio: float = 0.5
    """The local balance share rebalances aim for."""
    demand_horizon_s: int = 7 * 86_400
    """A rebalance moves at most what the failed demand would use over this long (a week)."""
    min_refill_fee_ppm: int = 100
    """Below this fee rate a refill cannot pay for itself: liquidity earns its fee once as it leaves, and a
    circular rebalance crosses at least two other channels, whose median rate on mainnet is 100 ppm."""
    depleted_ratio: float = 0.2
    full_ratio: float = 0.8
    drain_share: float = 0.5
    """A channel "drains quickly" when its net outflow in the window is at least this share of capacity."""
    raise_step: float = 0.25
    lower_step: float = 0.3
    """Fallback cut when no offered fee is known (lnflow's -30 %)."""

    @classmethod
    def from_mapping(
        cls,
        table: Mapping[str, Any] | None,
        *,
        where: str = "analyzer",
        name: Callable[[str], str] = str,
    ) -> AnalyzerParams:
        """From the ``[analyzer]`` settings table; ``*_s`` fields accept ``"1h"``-style durations.

        :param name: how to name ``"analyzer.key"`` in an error (``LensConfig.name_of`` adds file and line).

        :raises ConfigError: listing every unknown key and bad value.
        """
        problems: list[str] = []
        values: dict[str, Any] = {}
        types = {f.name: type(getattr(cls(), f.name)) for f in fields(cls)}
        for key, raw in (table or {}).items():
            if key not in types:
                problems.append(f"{name(f'{where}.{key}')}: unknown setting (accepted: {', '.join(sorted(types))})")
                continue
            try:
                if key.endswith("_s"):
                    value: Any = parse_duration(raw)
                elif types[key] is int and isinstance(raw, int) and not isinstance(raw, bool):
                    value = raw
                elif types[key] is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
                    value = float(raw)
                else:
                    raise ValueError(f"must be a {'whole number' if types[key] is int else 'number'}, not {raw!r}")
                if value < 0:
                    raise ValueError("cannot be negative")
                if value == 0 and key in _DIVISORS:
                    raise ValueError("must be above 0: scores are divided by it")
            except ValueError as exc:
                problems.append(f"{name(f'{where}.{key}')}: {exc}")
                continue
            values[key] = value
        if problems:
            raise ConfigError(problems)
        return cls(**values)


_DIVISORS = frozenset({"revenue_saturation_msat", "frequency_saturation"})
"""Settings the urgency score divides by: 0 is refused with the rest of a bad ``[analyzer]`` table."""
