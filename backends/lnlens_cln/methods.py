"""The ``lens-*`` RPC methods: one table of names, parameters, handlers and schemas.

Each :class:`RpcMethod` declares its parameters with a parser, so positional and
keyword calls (lightning-cli's two modes) are checked the same way and a bad value
is a JSON-RPC error naming the parameter. Handlers are thin: they read results the
worker stored (:class:`~lnlens_cln.requests.ServiceRequests`) or hand the work to it and
answer when it is done, so lightningd's I/O loop never waits on an analysis.
Later methods (lens-policy, lens-history, lens-rollback, lens-recommend) are rows
added to :data:`METHODS`, with a schema file of the same name in ``schemas/``.
Errors are :class:`~lnlens_cln.replies.LensRpcError` with the codes of :mod:`lnlens_cln.replies`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from lnlens_core.config import parse_duration
from lnlens_core.domain import ChannelId

from .replies import LensRpcError, Reply

if TYPE_CHECKING:
    from .requests import ServiceRequests

__all__ = ["Param", "RpcMethod", "METHODS", "schema", "bind"]

MAX_WINDOW_S = 366 * 86_400


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    parse: Callable[[Any], Any]
    description: str
    default: Any = None


@dataclass(frozen=True, slots=True)
class RpcMethod:
    """One ``lens-*`` method. ``summary`` is lightning-cli's help line."""

    name: str
    summary: str
    params: tuple[Param, ...]
    handler: Callable[[ServiceRequests, dict[str, Any], Reply], None]

    def signature(self) -> inspect.Signature:
        """The signature pyln binds calls against (and derives ``usage`` from)."""
        P = inspect.Parameter
        return inspect.Signature(
            [P("request", P.POSITIONAL_OR_KEYWORD)]
            + [P(p.name, P.POSITIONAL_OR_KEYWORD, default=None) for p in self.params]
            + [P("extra", P.VAR_POSITIONAL), P("unknown", P.VAR_KEYWORD)]
        )


def bind(method: RpcMethod, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Parse a call's arguments (positional or keyword) into ``{name: value}``.

    :raises LensRpcError: too many arguments, an unknown name, or a value its parser refuses.
    """
    names = [p.name for p in method.params]
    if len(args) > len(names):
        raise LensRpcError(
            f"{method.name}: takes at most {len(names)} parameters ({', '.join(names)}), got {len(args)}"
        )
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise LensRpcError(f"{method.name}: unknown parameter {', '.join(unknown)} (accepted: {', '.join(names)})")
    raw = dict(zip(names, args, strict=False)) | dict(kwargs)
    out = {}
    for p in method.params:
        value = raw.get(p.name)
        if value is None:
            out[p.name] = p.default
            continue
        try:
            out[p.name] = p.parse(value)
        except (TypeError, ValueError) as exc:
            raise LensRpcError(f"{method.name}: {p.name}: {exc}") from None
    return out


def _duration(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"want seconds or a duration like 24h, 7d; got {value!r}")
    seconds = parse_duration(value)
    if not 0 < seconds <= MAX_WINDOW_S:
        raise ValueError(f"must be between 1 second and 366 days, got {value!r}")
    return seconds


def _int_between(low: int, high: int | None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"want an integer, got {value!r}")
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be {low}..{high}, got {value}" if high is not None else f"must be >= {low}")
        return value

    return parse


def _channel(value: Any) -> ChannelId:
    if not isinstance(value, str):
        raise TypeError(f"want a short_channel_id like 800000x1x0, got {value!r}")
    return ChannelId.parse(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TypeError(f"want true or false, got {value!r}")


def schema(name: str) -> dict[str, Any]:
    """The JSON schema of a method's response (``schemas/<name>.json``)."""
    text = resources.files(__package__).joinpath("schemas", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def _opportunities(service: ServiceRequests, args: dict[str, Any], reply: Reply) -> None:
    service.opportunities(args["since"], min_urgency=args["min_urgency"], limit=args["limit"], reply=reply)


def _channels(service: ServiceRequests, args: dict[str, Any], reply: Reply) -> None:
    service.channels(args["short_channel_id"], reply=reply)


def _status(service: ServiceRequests, args: dict[str, Any], reply: Reply) -> None:
    service.status(reply=reply)


def _policy(service: ServiceRequests, args: dict[str, Any], reply: Reply) -> None:
    service.policy(apply=args["apply"], reply=reply)


def _history(service: ServiceRequests, args: dict[str, Any], reply: Reply) -> None:
    service.history(args["short_channel_id"], reply=reply)


def _recommend(service: ServiceRequests, args: dict[str, Any], reply: Reply) -> None:
    service.recommend(args["since"], min_gap=args["min_gap"], limit=args["limit"], reply=reply)


def _ratio(value: Any) -> float:
    if isinstance(value, str):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"want a number from 0 to 1, got {value!r}")
    return float(value)


def _rollback(service: ServiceRequests, args: dict[str, Any], reply: Reply) -> None:
    if (args["change_id"] is None) == (args["short_channel_id"] is None):
        raise LensRpcError("lens-rollback: give exactly one of change_id and short_channel_id")
    service.rollback(args["change_id"], args["short_channel_id"], reply=reply)


METHODS: tuple[RpcMethod, ...] = (
    RpcMethod(
        "lens-opportunities",
        "Missed routing revenue per channel, most urgent first, with recommendations",
        (
            Param("since", _duration, "analysis window back from now: seconds or 1h, 24h, 7d (default 24h)", None),
            Param("min_urgency", _int_between(0, 100), "only opportunities with urgency >= this (0-100)", 0),
            Param("limit", _int_between(1, None), "at most this many opportunities", None),
        ),
        _opportunities,
    ),
    RpcMethod(
        "lens-channels",
        "Per-channel balances, policy and forwarding statistics over 1h, 24h, 7d and 30d",
        (Param("short_channel_id", _channel, "only this channel", None),),
        _channels,
    ),
    RpcMethod("lens-status", "lnlens version, database, backfill progress, events seen, last analysis", (), _status),
    RpcMethod(
        "lens-policy",
        "Plan fee changes from the lens-policy file (apply=true applies them)",
        (Param("apply", _bool, "apply the plan instead of only showing it (default false)", False),),
        _policy,
    ),
    RpcMethod(
        "lens-recommend",
        "What to do now: rule-based actions and the liquidity model's rebalances",
        (
            Param("since", _duration, "window for the rules: seconds or 1h, 24h, 7d (default 24h)", None),
            Param("min_gap", _ratio, "suggest a rebalance from this ratio gap, 0-1 (default 0.1)", 0.1),
            Param("limit", _int_between(1, None), "at most this many model suggestions (default 10)", 10),
        ),
        _recommend,
    ),
    RpcMethod(
        "lens-history",
        "Fee changes lnlens made, with their measured revenue and flow outcome",
        (Param("short_channel_id", _channel, "only this channel", None),),
        _history,
    ),
    RpcMethod(
        "lens-rollback",
        "Restore the exact policy from before a change (by journal id or a channel's last change)",
        (
            Param("change_id", _int_between(1, None), "the journal id (see lens-history)", None),
            Param("short_channel_id", _channel, "roll back this channel's last applied change", None),
        ),
        _rollback,
    ),
)
