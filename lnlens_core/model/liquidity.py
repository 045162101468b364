"""The liquidity model over a node's store: features now, predictions, suggestions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..domain import Channel, HtlcEvent, Recommendation
from .features import LONG_WINDOW_S, compute_features, windows_from_events
from .inference import OnnxModel
from .learning.policy_history import PolicyHistory
from .suggestions import fee_suggestions, rebalance_suggestions
from .target import DEFAULT_ROUTE_COST_PPM

__all__ = [
    "LiquidityView",
    "liquidity_view",
    "recommend",
    "store_predictions",
    "fee_predictions",
    "route_quote",
    "route_cost_ppm",
]


@dataclass(frozen=True, slots=True)
class LiquidityView:
    now: float
    channels: list[Channel]
    features: np.ndarray
    predicted: np.ndarray
    recent: list[HtlcEvent]
    suggestions: list[Recommendation]


def liquidity_view(
    store, model: OnnxModel, *, now: float, backend=None, min_gap: float = 0.1, limit: int = 10, save: bool = False,
    history: PolicyHistory | None = None, keep_forwards: bool = True,
) -> LiquidityView:
    """Predict every channel's optimal ratio from the store (and the backend's peer policies, if any).

    :param save: keep the predictions in the store (``model_predictions``), tagged with the model version.
    :param history: our policy history as this process has read it so far (a daemon keeps one, so each
        run reads only the snapshots since the last); the store's last day is read either way, never all of it.
    :param keep_forwards: return the last day's forwards in the view (``recent``). A daemon passes False: the
        day is then streamed from the store twice (the features, then the suggestions' backtest) and never held
        at once (issue 16: a day of a busy node's forwards as objects, ~33,000 at a million stored forwards,
        was ~30 MB of a daemon's peak); the view's ``recent`` is empty.
    """
    if backend is not None:
        channels = list(backend.list_channels())
        peers = {ch.channel_id: backend.get_peer_policy(ch.channel_id) for ch in channels}
    else:
        _, channels = store.latest_channels(at=now)
        peers = None
    since = now - LONG_WINDOW_S
    recent = list(store.iter_forwards(since=since, until=now)) if keep_forwards else []

    def day() -> Iterable[HtlcEvent]:
        return recent if keep_forwards else store.iter_forwards(since=since, until=now)

    seen = {ch.channel_id for ch in channels} | store.forward_channels(since, now)
    history = history or PolicyHistory()
    history.cover(store, now - LONG_WINDOW_S, now, channels=seen)
    # The live policies are an observation at `now` that no snapshot may ever repeat: a copy takes them.
    book = history.book_copy()
    if backend is not None:
        book.observe_channels(channels, now)
    x = compute_features(channels, windows_from_events(day(), book, now, pairs=False), peer_policies=peers,
                         book=book)  # fmt: skip
    predicted = model.predict(x) if len(channels) else np.zeros(0)
    suggestions = rebalance_suggestions(
        channels,
        predicted,
        day(),
        now=now,
        confidence_table=model.json_meta("confidence") or (),
        model_version=f"{model.name}-{model.version}",
        min_gap=min_gap,
        limit=limit,
        quote=route_quote(backend),
        cost_ppm=route_cost_ppm(model),
    )
    if save and channels:
        rows = [
            (str(ch.channel_id), ch.balance_ratio, float(p) if p == p else None)
            for ch, p in zip(channels, predicted.tolist(), strict=True)
        ]
        store.save_predictions(rows, time=now, model=f"{model.name}-{model.version}")
    return LiquidityView(now, channels, x, predicted, recent, suggestions)


def route_quote(backend):
    """The backend's circular-route quote (the simulator has one), or None: suggestions then estimate."""
    quote = getattr(backend, "quote_rebalance", None)
    return quote if callable(quote) else None


def route_cost_ppm(model: OnnxModel) -> float:
    """The route cost rate to estimate with where nothing quotes: the model's training median, else the default."""
    value = model.json_meta("route_cost_ppm")
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_ROUTE_COST_PPM


def recommend(lens, registry, *, since_s: int = 86_400, min_gap: float = 0.1, limit: int = 10) -> dict:
    """Rule-based recommendations and the model's rebalances, as JSON: what ``lnlens recommend`` prints and
    what an adapter's recommend command returns. The rules run even when the model cannot (ModelError)."""
    from ..errors import ModelError
    from ..opportunities.report import recommendation_json
    from ..opportunities.run import run_analysis

    analysis = run_analysis(lens, since_s=since_s, save=False)
    rules = [rec for opp in analysis.opportunities for rec in opp.recommendations]
    model_recs: list[Recommendation] = []
    why = None
    version = None
    try:
        model = registry.load_active()
        view = liquidity_view(
            lens.store, model, now=lens.clock.now(), backend=lens.backend, min_gap=min_gap, limit=limit, save=True
        )
        model_recs, version = view.suggestions, f"{model.name}-{model.version}"
    except ModelError as exc:
        why = str(exc)
    return {
        "rules": [recommendation_json(r) for r in rules],
        "model": [recommendation_json(r) for r in model_recs],
        "model_version": version,
        "model_unavailable": why,
    }


def store_predictions(lens, registry) -> dict:
    """The model's part of a daemon's periodic run: predict every channel's optimal ratio and store it.

    The stored history feeds the dashboard's time series and ``lnlens report``. A model that cannot
    be used (no onnxruntime, a schema mismatch) is reported, never raised: lnlens runs rule-based.
    """
    from ..errors import ModelError

    try:
        model = registry.load_active()
        view = liquidity_view(lens.store, model, now=lens.clock.now(), backend=lens.backend, save=True)
    except ModelError as exc:
        return {"model": None, "error": str(exc), "predictions": 0, "suggestions": 0}
    return {"model": f"{model.name}-{model.version}", "error": None, "predictions": len(view.channels),
            "suggestions": len(view.suggestions)}  # fmt: skip


def fee_predictions(lens, backend) -> tuple[dict, str | None]:
    """The fee opinions ``model_driven`` follows, and None; or no opinions and why, when no model can be used
    (the strategy then keeps every channel).

    The fee-response model (:mod:`lnlens_core.model.fee_model`, shipped in ``lnlens_models``) gives them when it
    is installed: it predicts revenue at other fees, which is where the money is. Without it, the
    liquidity model's balance-based opinions (:func:`lnlens_core.model.suggestions.fee_suggestions`) do.
    """
    from ..errors import ModelError
    from .fee_model import FeeResponseModel, default_fee_model_path
    from .registry import ModelRegistry

    registry = ModelRegistry(lens.store, lens.config.data_dir / "models", configured=lens.config.model_path)
    try:
        model = registry.load_active()
        view = liquidity_view(lens.store, model, now=lens.clock.now(), backend=backend)
        fee_path = default_fee_model_path()
        if fee_path is not None:
            return FeeResponseModel.load(fee_path).opinions(view.channels, view.features), None
    except ModelError as exc:
        return {}, f"model_driven: no model can be used ({exc}); its channels keep their fees"
    version = f"{model.name}-{model.version}"
    table = model.json_meta("confidence") or ()
    return fee_suggestions(view.channels, view.predicted, confidence_table=table, model_version=version), None
