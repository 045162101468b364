"""Typed policies, and compiling parsed sections into them.

Unlike charge-lnd 0.3.1, which checks nothing before it runs (quirk 9), every key
is checked once, at load (:mod:`.loader` drives it): unknown namespaces, unknown keys, bad numbers and
booleans, unknown strategies, parameters a strategy does not take, required
parameters no chain of sections can supply, missing list and ``use_config``
files, activity keys without ``chan.activity_period``. All problems are
collected and raised as one :class:`~lnlens_core.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...domain import ChannelId
from ..strategy import FeeStrategy, strategy_parameters
from .keys import (
    ACTIVITY_KEYS,
    CIRCUITBREAKER_PROPERTIES,
    COMMON_PROPERTIES,
    CRITERIA,
    NAMESPACES,
    PROPERTIES,
    Criterion,
    split_list,
    to_bool,
    to_float,
    to_int,
)
from .parser import ECHO_CHARS, NODE_ID_PATTERN, Entry, ParsedFile, RawSection, echo, read_list_file, where

__all__ = ["CriterionSpec", "Policy", "PolicySet", "CheckReport", "DEFAULT_POLICY"]


DEFAULT_POLICY = "default"
"""charge-lnd's fallback policy (lower case; ``[DEFAULT]`` is configparser's defaults section)."""


@dataclass(frozen=True, slots=True)
class CriterionSpec:
    """One matcher key of a policy, with its converted threshold."""

    key: str
    namespace: str
    criterion: Criterion
    value: Any
    line: int


@dataclass(frozen=True, slots=True)
class Policy:
    """One section of a policy file, typed.

    :ivar criteria: matcher keys in evaluation order: grouped by namespace in order of
        first appearance, then in the section's order (``[DEFAULT]`` ones included).
    :ivar namespaces: namespaces in order of first appearance (evaluation order).
    :ivar properties: every key of the section, converted (criteria included, as
        charge-lnd copies them into the property map too).
    """

    name: str
    path: str
    line: int
    criteria: tuple[CriterionSpec, ...]
    namespaces: tuple[str, ...]
    properties: Mapping[str, Any]
    key_lines: Mapping[str, int]
    key_origins: Mapping[str, str] = field(default_factory=dict)
    """The section each key is written in, when not this one (``DEFAULT``)."""
    strict: bool = False
    """Loaded with ``compat = strict``: replicate charge-lnd 0.3.1's quirks 2, 4 and 5."""

    @property
    def strategy(self) -> str | None:
        """The strategy name when the section is final (non-empty ``strategy``)."""
        value = str(self.properties.get("strategy", "")).strip()
        return value or None

    def setting(self, key: str) -> Any:
        """The converted value of a matcher setting such as ``chan.activity_period`` (None if absent)."""
        return self.properties.get(key)

    def where(self, key: str | None = None) -> str:
        if key is None:
            return where(self.path, self.line, self.name)
        return where(self.path, self.key_lines.get(key, self.line), self.key_origins.get(key, self.name), key)


@dataclass(frozen=True, slots=True)
class PolicySet:
    """A validated policy file: policies in file order, the ``[default]`` fallback, nested files."""

    path: str
    policies: tuple[Policy, ...]
    default: Policy | None
    nested: Mapping[str, PolicySet] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    strict: bool = False

    def activity_windows_s(self) -> set[int]:
        """Every ``chan.activity_period`` (seconds) the inputs must carry activity for, nested files included."""
        found = {p.setting("chan.activity_period") for p in self._all()}
        return {w for w in found if w is not None}

    def conf_targets(self) -> set[int]:
        """Every confirmation target whose fee estimate the inputs must carry."""
        targets = set()
        for p in self._all():
            if any(c.key == "onchain.min_fee_rate" or c.key == "onchain.max_fee_rate" for c in p.criteria):
                targets.add(max(2, p.setting("onchain.conf_target") or 6))
            if "onchain_fee_numblocks" in p.properties or p.strategy == "onchain_fee":
                targets.add(max(2, p.properties.get("onchain_fee_numblocks", 6)))
        return targets

    def required_inputs(self) -> frozenset[str]:
        """The optional :class:`PolicyInputs` / :class:`PolicyEnvironment` fields this file reads.

        Lets the engine skip lookups nobody needs (a peer's node info, forwarding
        history, fee estimates). Strategies other than charge-lnd's may read anything
        a :class:`~lnlens_core.fees.strategy.FeeContext` carries, so they count as
        reading all of it.
        """
        needs: set[str] = set()
        for p in self._all():
            keys = {c.key for c in p.criteria}
            if keys & _PEER_POLICY_KEYS:
                needs.add("peer_policy")
            if keys & {"node.min_channels", "node.max_channels"}:
                needs.add("peer_node_channels")
            if keys & {"node.min_capacity", "node.max_capacity"}:
                needs.add("peer_node_capacity_msat")
            if any(k.startswith("node.") and "shared" in k for k in keys) or p.properties.get("sum_peer_chans"):
                needs.add("peer_channels")
            if "onchain.synced_to_chain" in keys:
                needs.add("synced_to_chain")
            needs.update(_STRATEGY_INPUTS.get(p.strategy or "ignore", _CONTEXT_INPUTS))
        if self.activity_windows_s():
            needs.add("activity")
        if self.conf_targets():
            needs.add("onchain_fee_rates")
        return frozenset(needs)

    def _all(self) -> list[Policy]:
        out = list(self.policies) + ([self.default] if self.default else [])
        for nested in self.nested.values():
            out.extend(nested._all())
        return out


_PEER_POLICY_KEYS = frozenset(
    {"chan.min_base_fee_msat", "chan.max_base_fee_msat", "chan.min_fee_ppm", "chan.max_fee_ppm", "chan.disabled"}
)
_CONTEXT_INPUTS = frozenset({"peer_policy", "peer_channels", "funding_fee_msat", "onchain_fee_rates"})
_STRATEGY_INPUTS: dict[str, frozenset[str]] = {
    "ignore": frozenset(),
    "ignore_fees": frozenset(),
    "static": frozenset(),
    "disable": frozenset(),
    "use_config": frozenset(),  # the other file's needs are counted through `nested`
    "proportional": frozenset(),  # `peer_channels` only with sum_peer_chans, counted above
    "match_peer": frozenset({"peer_policy"}),
    "cost": frozenset({"funding_fee_msat"}),
    "onchain_fee": frozenset({"onchain_fee_rates"}),
}


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Problems make a file unusable; warnings (skipped list-file lines, ignored keys) do not."""

    problems: tuple[str, ...]
    warnings: tuple[str, ...]


NestedLoader = Callable[[Path, tuple[str, ...]], tuple[CheckReport, "PolicySet | None"]]
"""Checks a ``use_config`` file given the chain of files that led to it (for cycle detection)."""


class _Compiler:
    """Turns parsed sections into typed policies, collecting every problem (see :mod:`.loader`)."""

    def __init__(
        self,
        strategies: Mapping[str, type[FeeStrategy]],
        base_dir: Path,
        stack: tuple[str, ...],
        strict: bool,
        load_nested: NestedLoader,
        show_values: bool = True,
    ) -> None:
        self.strategies = strategies
        self.show_values = show_values
        self.load_nested = load_nested
        self.strict = strict
        self.base_dir = base_dir
        self.stack = stack
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.nested: dict[str, PolicySet] = {}
        self.param_names = {name for cls in strategies.values() for name in strategy_parameters(cls)}
        self.variables: frozenset[str] = frozenset()

    def compile(self, parsed: ParsedFile) -> PolicySet:
        self.variables = parsed.referenced
        policies = [self._policy(parsed.path, raw) for raw in parsed.sections]
        self._check_chains(policies)
        if not policies:
            self.warnings.append(f"{parsed.path}: no policies in this file: it never changes a channel")
        for policy in policies:
            self.warnings.extend(clamp_warnings(policy))
        default = next((p for p in policies if p.name == DEFAULT_POLICY), None)
        if default is not None and default.criteria:
            self.warnings.append(f"{default.where()}: [default] applies to every channel; its criteria are ignored")
        ordered = tuple(p for p in policies if p.name != DEFAULT_POLICY)
        return PolicySet(parsed.path, ordered, default, dict(self.nested), tuple(self.warnings), self.strict)

    def _policy(self, path: str, raw: RawSection) -> Policy:
        criteria: list[CriterionSpec] = []
        namespaces: list[str] = []
        properties: dict[str, Any] = {}
        lines = {e.key: e.line for e in raw.entries}
        origins = {e.key: e.origin for e in raw.entries if e.origin != raw.name}
        for entry in raw.entries:
            here = where(path, entry.line, entry.origin, entry.key)
            value = self._convert(entry, here, criteria, namespaces)
            if value is not _BAD:
                properties[entry.key] = value
        ordered = sorted(criteria, key=lambda c: namespaces.index(c.namespace))  # stable: keeps key order
        policy = Policy(
            raw.name, path, raw.line, tuple(ordered), tuple(namespaces), properties, lines, origins, self.strict
        )
        self._check_policy(policy, raw)
        return policy

    def _convert(self, entry: Entry, here: str, criteria: list[CriterionSpec], namespaces: list[str]) -> Any:
        """The entry's typed value (a criterion is also appended to ``criteria``), or ``_BAD``."""
        if "." not in entry.key:
            return self._property(entry, here)
        namespace, name = entry.key.split(".", 1)
        if namespace not in NAMESPACES:
            self.problems.append(f"{here}: unknown namespace '{namespace}' (known: {', '.join(NAMESPACES)})")
            return _BAD
        criterion = CRITERIA[namespace].get(name)
        if criterion is None:
            self.problems.append(f"{here}: unknown key{_suggest(name, CRITERIA[namespace], namespace + '.')}")
            return _BAD
        try:
            value = self._list(entry, namespace) if criterion.kind == "list" else criterion.convert(entry.value)
        except ValueError as exc:
            self.problems.append(f"{here}: {self._value_message(exc, entry.value)}")
            return _BAD
        if namespace not in namespaces:
            namespaces.append(namespace)
        criteria.append(CriterionSpec(entry.key, namespace, criterion, value, entry.line))
        return value

    def _property(self, entry: Entry, here: str) -> Any:
        convert = PROPERTIES.get(entry.key)
        if self.strict and entry.key in _TRUTHY_IN_STRICT:
            convert = _truthy
        if convert is None and entry.key in self.param_names:
            convert = _param_converter(self.strategies, entry.key)
        if convert is None and entry.key in self.variables:
            return _BAD  # only a ${variable}'s source: charge-lnd never reads it as a property
        if convert is None:
            known = set(PROPERTIES) | self.param_names
            self.problems.append(f"{here}: unknown key{_suggest(entry.key, known, '')}")
            return _BAD
        try:
            value = convert(entry.value)
        except ValueError as exc:
            self.problems.append(f"{here}: {self._value_message(exc, entry.value)}")
            return _BAD
        if entry.key == "config_file":
            self._load_nested(value, here)
        return value

    def _value_message(self, exc: ValueError, raw: str) -> str:
        """A bad value's message: the value cut to 80 characters, or not shown at all for a ``use_config`` file."""
        text = str(exc)
        if not self.show_values:
            return text.split(": ", 1)[0] + " (value not shown: another file than the one checked)"
        return text.replace(repr(raw), echo(raw)) if len(raw) > ECHO_CHARS else text

    def _list(self, entry: Entry, namespace: str) -> frozenset[str]:
        items: set[str] = set()
        for item in split_list(entry.value):
            if item.startswith("file://"):
                file = self.base_dir / item[len("file://") :]
                try:
                    found, warnings = read_list_file(file, namespace)
                except OSError as exc:
                    raise ValueError(f"cannot read list file {file}: {exc.strerror}") from exc
                items.update(found)
                self.warnings.extend(warnings)
            elif namespace == "chan":
                items.add(str(ChannelId.parse(item)))
            elif NODE_ID_PATTERN.match(item):
                items.add(item)
            else:
                raise ValueError(f"not a node id (66 lower-case hex characters): {echo(item)}")
        return frozenset(items)

    def _load_nested(self, config_file: str, here: str) -> None:
        name = config_file.removeprefix("file://").strip()
        if name in self.nested:
            return
        file = self.base_dir / name
        key = str(file.resolve())
        if key in self.stack:
            self.problems.append(f"{here}: use_config cycle: {' -> '.join((*self.stack, key))}")
            return
        try:
            report, nested = self.load_nested(file, (*self.stack, key))
        except OSError as exc:
            self.problems.append(f"{here}: cannot read {file}: {exc.strerror}")
            return
        self.problems.extend(report.problems)
        self.warnings.extend(report.warnings)
        if nested is not None:
            self.nested[name] = nested

    def _check_policy(self, policy: Policy, raw: RawSection) -> None:
        present = {c.key for c in policy.criteria}
        for key in sorted(present & ACTIVITY_KEYS):
            if "chan.activity_period" not in present:
                self.problems.append(f"{policy.where(key)}: needs chan.activity_period in the same section")
        name = policy.strategy
        if name is None:
            return
        cls = self.strategies.get(name)
        if cls is None:
            known = ", ".join(sorted(self.strategies))
            shown = echo(name) if self.show_values else "(name not shown: another file than the one checked)"
            self.problems.append(f"{policy.where('strategy')}: unknown strategy {shown} (known: {known})")
            return
        accepted = strategy_parameters(cls)
        for key in raw.own_keys():
            if "." in key or key in COMMON_PROPERTIES or key in CIRCUITBREAKER_PROPERTIES or key == "strategy":
                continue
            if key not in accepted and key in policy.properties and key not in self.variables:
                self.problems.append(
                    f"{policy.where(key)}: strategy '{name}' does not take {key} "
                    f"(it accepts: {', '.join(accepted) or 'no parameters'}; every strategy also reads "
                    f"{', '.join(COMMON_PROPERTIES)})"
                )

    def _check_chains(self, policies: list[Policy]) -> None:
        """Required strategy parameters must be reachable: own keys or an earlier non-final section's."""
        earlier: set[str] = set()
        for policy in [p for p in policies if p.name != DEFAULT_POLICY] + [
            p for p in policies if p.name == DEFAULT_POLICY
        ]:
            cls = self.strategies.get(policy.strategy or "")
            if cls is not None:
                missing = [n for n in _required(cls) if n not in policy.properties and n not in earlier]
                if missing:
                    self.problems.append(
                        f"{policy.where('strategy')}: strategy '{cls.name}' needs {', '.join(missing)}, "
                        "set neither here nor in an earlier non-final section"
                    )
            elif policy.strategy is None:
                earlier.update(policy.properties)
            if policy.strategy == "static" and "fee_ppm" not in policy.properties and "fee_ppm" not in earlier:
                self.warnings.append(
                    f"{policy.where('strategy')}: static without fee_ppm keeps every channel's current fee rate"
                )


SANE_MAX_PPM = 50_000
"""Above this (5 % of every forward) a fee rate in a policy file is almost certainly a typo."""


def clamp_warnings(policy: Policy) -> list[str]:
    """Values that load but will not do what they say: clamped, refused by the node, or never matching."""
    props, out = policy.properties, []
    for key in ("base_fee_msat", "fee_ppm"):
        if _number(props.get(key)) and props[key] < 0:
            out.append(f"{policy.where(key)}: {props[key]} is negative; an outbound fee cannot be, so it is not sent")
    for key in ("min_fee_ppm", "max_fee_ppm"):
        if _number(props.get(key)) and props[key] < 0:
            out.append(f"{policy.where(key)}: {props[key]} is negative; proportional raises a result below 0 to 0")
    for key in ("fee_ppm", "min_fee_ppm", "max_fee_ppm", "inbound_fee_ppm", "inbound_level_ppm"):
        value = props.get(key)
        if _number(value) and abs(value) > SANE_MAX_PPM:
            out.append(
                f"{policy.where(key)}: {value} ppm is {abs(value) / 10_000:g} % of every forward "
                f"(above {SANE_MAX_PPM:,} ppm: a typo?)"
            )
    low, high = props.get("min_fee_ppm"), props.get("max_fee_ppm")
    if _number(low) and _number(high) and low > high:
        out.append(
            f"{policy.where('min_fee_ppm')}: min_fee_ppm {low} is above max_fee_ppm {high}; "
            "proportional then charges more the more local balance a channel has"
        )
    ratio = props.get("max_htlc_msat_ratio")
    if _number(ratio) and not 0 <= ratio <= 1:
        out.append(f"{policy.where('max_htlc_msat_ratio')}: {ratio} is clamped to 0..1 (and 0 is ignored)")
    bounds = {(c.criterion.quantity, c.namespace, c.criterion.kind): c for c in policy.criteria}
    for (quantity, namespace, kind), spec in bounds.items():
        if kind != "min":
            continue
        upper = bounds.get((quantity, namespace, "max"))
        if upper is not None and _number(spec.value) and _number(upper.value) and spec.value > upper.value:
            out.append(f"{policy.where(spec.key)}: {spec.value} is above {upper.key} {upper.value}; never matches")
    for spec in policy.criteria:
        if spec.criterion.unit != "ratio" or not _number(spec.value):
            continue
        if (spec.criterion.kind == "min" and spec.value > 1) or (spec.criterion.kind == "max" and spec.value < 0):
            out.append(f"{policy.where(spec.key)}: {spec.value} never matches (a ratio lies in 0..1)")
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


_BAD = object()
_TRUTHY_IN_STRICT = ("sum_peer_chans", "cb_clear_limit")


def _truthy(raw: str) -> bool:
    """charge-lnd 0.3.1's property booleans (quirk 2): any non-empty text is true, ``false`` included."""
    return bool(raw)


def _suggest(name: str, known: Any, prefix: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _required(cls: type[FeeStrategy]) -> list[str]:
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.default is p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _param_converter(strategies: Mapping[str, type[FeeStrategy]], key: str) -> Callable[[str], Any]:
    """A third-party strategy parameter is converted by its annotation: bool, int, float or text."""
    for cls in strategies.values():
        if key not in strategy_parameters(cls):
            continue
        try:
            hint = typing.get_type_hints(cls.__init__).get(key)
        except (NameError, TypeError):  # unresolvable annotations: hand the text over unchanged
            return str
        args = set(typing.get_args(hint)) or {hint}
        for kind, convert in ((bool, to_bool), (int, to_int), (float, to_float)):
            if kind in args:
                return convert
        return str
    return str
