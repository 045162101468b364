"""The liquidity report's plots: matplotlib (Agg, headless), PNG, deterministic for the same input."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..domain import Recommendation
from ..extras import require
from ..untrusted import plot_label

__all__ = ["balance_distribution", "optimal_vs_current", "top_rebalances", "feature_importance", "sweep_differences"]


def _plt():
    mpl = require("matplotlib", extra="ml", what="lnlens report's plots")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "lnlens"
    return plt


def _save(fig, path: Path) -> Path:
    # No timestamps in the file: the same input gives the same bytes.
    fig.savefig(path, dpi=100, metadata={"Software": None})
    _plt().close(fig)
    return path


def _label(text: str) -> str:
    """Aliases often carry emoji the bundled font lacks; keep what it can draw, and nothing Matplotlib parses."""
    return plot_label("".join(c for c in text if ord(c) < 0x2000).strip())


def balance_distribution(ratios: Sequence[float], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    values = [r for r in ratios if r == r]
    ax.hist(values, bins=np.linspace(0, 1, 21), color="#4c72b0", edgecolor="white")
    ax.set_xlabel("local balance ratio (local / (local + remote))")
    ax.set_ylabel("channels")
    ax.set_title(f"Balance distribution ({len(values)} channels)")
    ax.set_xlim(0, 1)
    fig.tight_layout()
    return _save(fig, path)


def optimal_vs_current(labels: Sequence[str], current: Sequence[float], predicted: Sequence[float], path: Path) -> Path:
    plt = _plt()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(8, max(3, 0.25 * n + 1.5)))
    y = np.arange(n)
    for i, (c, p) in enumerate(zip(current, predicted, strict=True)):
        if p == p:
            ax.plot([c, p], [i, i], color="#999999", lw=1)
    ax.scatter(current, y, label="current", color="#4c72b0", zorder=3)
    ax.scatter(predicted, y, label="predicted optimal", color="#dd8452", marker="D", zorder=3)
    ax.set_yticks(y, [_label(t) for t in labels], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("local balance ratio")
    ax.set_title("Optimal (model) vs current ratio per channel")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def top_rebalances(recs: Sequence[Recommendation], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, max(3, 0.4 * len(recs) + 1.5)))
    if not recs:
        ax.text(0.5, 0.5, "no rebalance suggested", ha="center", va="center")
        ax.set_axis_off()
    else:
        labels = [f"{r.source_channel} → {r.target_channel}" for r in recs]
        amounts = [(r.amount_msat or 0) / 1000 for r in recs]
        y = np.arange(len(recs))
        bars = ax.barh(y, amounts, color="#55a868")
        for bar, r in zip(bars, recs, strict=True):
            conf = r.evidence.get("confidence")
            text = f" gain {int(r.evidence.get('expected_gain_msat', 0)) // 1000:,} sat"
            text += f", conf {float(conf):.0%}" if conf is not None else ", conf n/a"
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=7)
        ax.set_yticks(y, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, max(amounts) * 1.45 or 1)
        ax.set_xlabel("amount (sats)")
    ax.set_title("Top rebalance suggestions (liquidity model)")
    fig.tight_layout()
    return _save(fig, path)


def feature_importance(rows: Sequence[dict], path: Path, *, top: int = 15) -> Path:
    plt = _plt()
    rows = list(rows)[:top]
    fig, ax = plt.subplots(figsize=(8, max(3, 0.3 * len(rows) + 1.5)))
    if not rows:
        ax.text(0.5, 0.5, "the model carries no importance data", ha="center", va="center")
        ax.set_axis_off()
    else:
        y = np.arange(len(rows))
        ax.barh(y, [r["mae_increase"] for r in rows], color="#c44e52")
        ax.set_yticks(y, [r["feature"] for r in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("increase in held-out MAE when the feature is shuffled")
    ax.set_title("Permutation importance (trained model, held-out data)")
    fig.tight_layout()
    return _save(fig, path)


def prediction_history(rows: Sequence[dict], path: Path, *, top: int = 8) -> Path:
    """Predicted and current ratio over time (from the store's ``model_predictions``) for the channels whose
    latest predicted move is largest; one line per channel, model versions marked where they change."""
    plt = _plt()
    by_channel: dict[str, list[dict]] = {}
    for r in rows:
        by_channel.setdefault(r["channel_id"], []).append(r)

    def last_gap(cid: str) -> float:
        r = by_channel[cid][-1]
        if r["predicted_ratio"] is None or r["current_ratio"] is None:
            return -1.0
        return abs(r["predicted_ratio"] - r["current_ratio"])

    chosen = sorted(by_channel, key=lambda c: (-last_gap(c), c))[:top]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    t0 = min((r["time"] for r in rows), default=0.0)
    for i, cid in enumerate(chosen):
        pts = by_channel[cid]
        hours = [(p["time"] - t0) / 3600 for p in pts]
        color = f"C{i % 10}"
        ax.plot(hours, [p["predicted_ratio"] for p in pts], color=color, marker="o", ms=3, label=cid)
        ax.plot(hours, [p["current_ratio"] for p in pts], color=color, ls="--", lw=1)
    versions: list[tuple[float, str]] = []
    for r in sorted(rows, key=lambda r: r["time"]):
        if not versions or versions[-1][1] != r["model"]:
            versions.append(((r["time"] - t0) / 3600, r["model"]))
    for hour, name in versions[1:]:
        ax.axvline(hour, color="#888888", lw=0.8)
        ax.text(hour, 1.0, f" {_label(name)}", fontsize=6, va="top")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("hours since the first stored prediction")
    ax.set_ylabel("local ratio (solid: predicted, dashed: current)")
    ax.set_title("Liquidity model predictions over time")
    if chosen:
        ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return _save(fig, path)


def sweep_differences(groups: Sequence[dict], path: Path) -> Path:
    """A sweep's paired differences: each policy's mean net gain over no action with its 95 % interval, per node."""
    plt = _plt()
    n = len(groups)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False)
    for ax, group in zip(axes[0], groups, strict=True):
        rows = [p for p in group["policies"] if p["vs_none"] and p["vs_none"]["low_msat"] is not None]
        y = np.arange(len(rows))
        for i, p in enumerate(rows):
            v = p["vs_none"]
            colour = "#55a868" if v["low_msat"] > 0 else "#c44e52" if v["high_msat"] < 0 else "#777777"
            ax.plot([v["low_msat"] / 1000, v["high_msat"] / 1000], [i, i], color=colour, lw=2)
            ax.scatter([v["mean_msat"] / 1000], [i], color=colour, zorder=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [p["policy"] for p in rows], fontsize=8)
        ax.set_xlabel("net sat vs no action, per seed (95 % CI)")
        ax.set_title(f"{_label(group['alias'])[:28]} ({group['seeds']} seeds)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
