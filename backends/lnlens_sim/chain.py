"""The managed node's view of the blockchain: block height, fee estimates, funding transactions.

The simulator has no blocks or mempool; this is the smallest honest model of what a
fee policy reads from the chain (charge-lnd's ``onchain.*``, ``onchain_fee`` and ``cost``):

- **Blocks** arrive every 600 s of simulated time from the start height.
- **Fee estimates**: the 2-block estimate follows a mean-reverting random walk in log
  space, one step per block (``x' = μ + φ(x − μ) + N(0, σ²)``, median 8 sat/vB); a target
  of ``n`` blocks gets ``rate₂ × (2/n)^0.5``, never below lnd's relay floor of 253 sat/kw.
  Estimates are whole sat/kw, the unit lnd and lightningd keep internally.
- **Funding transactions**: every channel our node opened was funded by our wallet,
  alone or in a batch of up to four channels (sizes drawn 50/30/15/5 %), at a fee rate
  drawn log-normally (median 6 sat/vB) on a transaction of standard size: 11 vB of
  overhead, one 68 vB P2WPKH input per two channels (at least one), a 43 vB P2WSH output
  per channel and a 31 vB change output. Channels the peer opened have a funding
  outpoint (the fake lnd's channel point) but no transaction in our wallet.

Everything is drawn from the seed given, one stream for the funding transactions and
one for the fee walk, so the same seed gives the same chain whatever is asked of it
in whatever order. Short channel ids keep the graph's numbering, so the channels of one
batch carry different transaction indices, which real ones never do; lnlens reads a
batch from the funding txid, never from the short channel id.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lnlens_core.domain import ChannelId

__all__ = ["SimChain", "FundingTx", "BLOCK_S", "FEE_FLOOR_SAT_PER_KW"]

BLOCK_S = 600.0
FEE_FLOOR_SAT_PER_KW = 253  # lnd's minimum relay fee (1.012 sat/vB): no estimate goes below it
_MEDIAN_SAT_VB = 8.0  # the walk's centre for the 2-block estimate
_PHI, _STEP_SIGMA, _START_SIGMA = 0.98, 0.1, 0.4
_TARGET_EXPONENT = 0.5
_BATCH_SIZES, _BATCH_P = (1, 2, 3, 4), (0.5, 0.3, 0.15, 0.05)
_OPEN_MEDIAN_SAT_VB, _OPEN_SIGMA = 6.0, 0.7
_VB_OVERHEAD, _VB_INPUT, _VB_CHANNEL_OUTPUT, _VB_CHANGE = 11, 68, 43, 31


@dataclass(frozen=True, slots=True)
class FundingTx:
    """A funding transaction our wallet paid for: one or more channel outputs and a change output.

    :ivar outputs: ``(vout, channel, amount_sat)`` per channel output, in output order.
    """

    txid: str
    block_height: int
    fee_sat: int
    vsize: int
    outputs: tuple[tuple[int, ChannelId, int], ...]
    change_vout: int

    @property
    def fee_rate_sat_per_vbyte(self) -> float:
        return self.fee_sat / self.vsize


class SimChain:
    """Block height, fee estimates and our funding transactions (see the module docstring).

    :param seed: a SeedSequence (spawned from the simulation's seed) or an int.
    :param channels: our channels as ``(id, capacity_sat, we_opened)``.
    :param start_time: the simulation start (block ``start_height`` is found then).
    :ivar synced: what the node reports about chain sync; True unless a test or a scenario
        sets it (the simulated node is always at the tip otherwise).
    """

    def __init__(
        self,
        seed: np.random.SeedSequence | int,
        channels: Iterable[tuple[ChannelId, int, bool]],
        *,
        start_time: float,
        start_height: int,
    ) -> None:
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        funding_seq, walk_seq = seq.spawn(2)
        self.start_time = start_time
        self.start_height = start_height
        self.synced = True
        self._tag = hashlib.sha256(repr(seq.entropy).encode() + repr(seq.spawn_key).encode()).hexdigest()
        self._walk_rng = np.random.default_rng(walk_seq)
        self._log_rates = [math.log(_MEDIAN_SAT_VB) + _START_SIGMA * float(self._walk_rng.standard_normal())]
        self._txs: list[FundingTx] = []
        self._tx_of: dict[ChannelId, FundingTx] = {}
        self._outpoints: dict[ChannelId, tuple[str, int]] = {}
        self._fund(sorted(channels), np.random.default_rng(funding_seq))

    # -- blocks and fee estimates ---------------------------------------------------------

    def block_index(self, now: float) -> int:
        """Blocks found since the start (0 before the first)."""
        return max(0, int((now - self.start_time) // BLOCK_S))

    def height(self, now: float) -> int:
        return self.start_height + self.block_index(now)

    def fee_rate_sat_per_kw(self, target_blocks: int, now: float) -> int:
        """The estimate for confirmation within ``target_blocks`` (below 2 counts as 2) at ``now``."""
        k = self.block_index(now)
        mu = math.log(_MEDIAN_SAT_VB)
        # Extend the walk block by block: the same seed gives the same rates however they are queried.
        while len(self._log_rates) <= k:
            last = self._log_rates[-1]
            self._log_rates.append(mu + _PHI * (last - mu) + _STEP_SIGMA * float(self._walk_rng.standard_normal()))
        two_block = math.exp(self._log_rates[k])
        sat_per_vbyte = two_block * (2 / max(2, target_blocks)) ** _TARGET_EXPONENT
        return max(FEE_FLOOR_SAT_PER_KW, round(sat_per_vbyte * 250))  # 1 vB = 4 weight units

    def fee_rate_sat_per_vbyte(self, target_blocks: int, now: float) -> float:
        """The same estimate in sat/vB, as lnd and charge-lnd convert it: ``sat/kw × 4 / 1000``."""
        return self.fee_rate_sat_per_kw(target_blocks, now) * 4 / 1000

    # -- funding transactions -------------------------------------------------------------

    def _fund(self, channels: list[tuple[ChannelId, int, bool]], rng: np.random.Generator) -> None:
        ours = [(cid, cap) for cid, cap, opened in channels if opened]
        order = rng.permutation(len(ours)).tolist() if ours else []
        i = 0
        while i < len(order):
            size = int(rng.choice(_BATCH_SIZES, p=_BATCH_P))
            batch = [ours[j] for j in order[i : i + size]]
            i += len(batch)
            rate = float(np.clip(rng.lognormal(math.log(_OPEN_MEDIAN_SAT_VB), _OPEN_SIGMA), 1.012, 150.0))
            inputs = max(1, len(batch) // 2)
            vsize = _VB_OVERHEAD + _VB_INPUT * inputs + _VB_CHANNEL_OUTPUT * len(batch) + _VB_CHANGE
            txid = self._txid(f"batch{len(self._txs)}")
            tx = FundingTx(
                txid=txid, block_height=min(cid.block for cid, _ in batch), fee_sat=math.ceil(rate * vsize),
                vsize=vsize, outputs=tuple((vout, cid, cap) for vout, (cid, cap) in enumerate(batch)),
                change_vout=len(batch),
            )  # fmt: skip
            self._txs.append(tx)
            for vout, cid, _ in tx.outputs:
                self._tx_of[cid] = tx
                self._outpoints[cid] = (txid, vout)
        for cid, _, opened in channels:
            if not opened:
                self._outpoints[cid] = (self._txid(f"peer{cid}"), 0)

    def _txid(self, what: str) -> str:
        return hashlib.sha256(f"{self._tag}:{what}".encode()).hexdigest()

    def outpoint(self, channel_id: ChannelId) -> tuple[str, int] | None:
        """``(funding txid, output index)`` of one of our channels; None for a channel not ours."""
        return self._outpoints.get(channel_id)

    def funding_tx(self, channel_id: ChannelId) -> FundingTx | None:
        """The funding transaction of a channel our wallet paid for; None when the peer opened it."""
        return self._tx_of.get(channel_id)

    def wallet_transactions(self) -> list[FundingTx]:
        """Every transaction our wallet made (the funding transactions), in the order they were made."""
        return list(self._txs)
