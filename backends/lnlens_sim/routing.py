"""Route choice as a real sender makes it: from the public graph and the fees last heard.

Senders never see balances. A route minimises, per hop, the fee plus a risk term:
``w = fee(a) + attempt_cost(a) * -ln P(a)``, where ``P(a) = 0.6 * (c + 1 - a) / (c + 1)``
is a hop's success probability: LND's a-priori hop probability (0.6) times the
probability that a channel of capacity ``c`` can carry ``a`` under a uniform prior
on its balance (Pickhardt & Richter 2021). ``attempt_cost`` follows LND's
``routerrpc.attemptcost`` (100 sat) + ``attemptcostppm`` (1,000 ppm) defaults. The
prior makes every hop cost about 51 sat, so senders prefer short routes, as LND does.

Speed comes from caching, kept exact under change:

* Amounts fall into *buckets* (below 4,194 sat, then factor 8 wide); a bucket's
  weights are computed for its geometric midpoint in one vectorised expression over
  every half-channel.
* For each (receiver, bucket) a reverse shortest-path tree (a compiled Dijkstra from the
  receiver, :mod:`.kernels`) gives every sender's best next hop. It is grown only until
  the sender asking is settled and continued for the next one, which settles the same
  nodes with the same costs and next hops as one full run. A first attempt follows it.
* A retry, with failing channels excluded, runs a compiled A* whose heuristic is that
  tree's distance capped at the sender's: exclusions only lengthen paths, so it is
  admissible and consistent, and it never depends on how far the tree has grown.
* Channels too small for a bucket's midpoint amount are unusable for that bucket.
* When gossip changes an edge, each cached tree is checked in O(1) for whether the
  change can alter it (the edge is on the tree, or now offers a shortcut or an
  equal-cost way) and is dropped if so; balance changes never affect routes because senders cannot see them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .kernels import astar, grow_tree

__all__ = ["Router", "RoutingView", "bucket_of", "ATTEMPT_COST_MSAT", "ATTEMPT_COST_PPM", "MAX_HOPS"]

ATTEMPT_COST_MSAT = 100_000  # LND routerrpc.attemptcost default: 100 sat
ATTEMPT_COST_PPM = 1_000  # LND routerrpc.attemptcostppm default
HOP_PRIOR = 0.6  # LND routerrpc.apriori.hopprob default: success odds of a hop it knows nothing about
_LN_HOP_PRIOR = math.log(HOP_PRIOR)
MAX_HOPS = 20  # BOLT 4 onions fit about 20 hops; longer routes are never built
_EPS = 1e-3  # keeps zero-fee edges strictly positive
_BUCKET_SHIFT = 19  # bucket 0 holds every amount below 2**22 msat (4,194 sat)


_BUCKET_BITS = 3  # buckets are a factor 8 wide: route choice sees amounts to within ~2.8x


def bucket_of(amount_msat: int) -> int:
    """The amount class: everything below 4,194 sat, then factor-8 wide classes."""
    return max(0, (amount_msat.bit_length() - 1 - _BUCKET_SHIFT) // _BUCKET_BITS)


def bucket_amount(bucket: int) -> int:
    """The amount a bucket's weights are computed for (its geometric midpoint, rounded)."""
    return int(2 ** (_BUCKET_BITS * bucket + _BUCKET_SHIFT + _BUCKET_BITS / 2))


def _tree_fit(bucket: int) -> tuple[int, int]:
    # Trees keep every channel that can carry some amount of the bucket: a superset of what
    # any one amount may use, so tree distances stay a consistent lower bound; an amount
    # that meets a channel too small (or too large) for it on the tree falls back to A*
    # with the exact limits.
    return bucket_range(bucket)


def bucket_range(bucket: int) -> tuple[int, int]:
    """The smallest and largest amount in a bucket (bucket 0 reaches down to 1 msat)."""
    lo = 1 << (_BUCKET_BITS * bucket + _BUCKET_SHIFT)
    return (1 if bucket == 0 else lo), (lo << _BUCKET_BITS) - 1


@dataclass(slots=True)
class RoutingView:
    """What senders know: public policies as last gossiped, per half-channel.

    Arrays are over half-channels; ``in_base``/``in_ppm`` hold inbound fees the
    receiving node of a half-channel charges on HTLCs arriving over it.
    """

    src: np.ndarray
    dst: np.ndarray
    capacity_msat: np.ndarray
    enabled: np.ndarray
    base: np.ndarray
    ppm: np.ndarray
    htlc_min: np.ndarray
    htlc_max: np.ndarray
    cltv: np.ndarray
    in_base: np.ndarray
    in_ppm: np.ndarray

    def weights(self, amount: int, edges: np.ndarray | slice = slice(None), *, fit: tuple[int, int] | None = None):
        """Sender's cost of each half-channel for ``amount`` msat (inf: unusable).

        :param fit: ``(lo, hi)``: keep the channels that can carry some amount in that
            range (default: ``amount`` itself), a superset of what any amount in it may use.
        """
        lo, hi = fit or (amount, amount)
        cap = self.capacity_msat[edges].astype(np.float64)
        fee = self.base[edges] + self.ppm[edges] * (amount / 1e6)
        inbound = self.in_base[edges] + self.in_ppm[edges] * ((amount + fee) / 1e6)
        fee = np.maximum(fee + inbound, 0.0)  # LND: an inbound discount never makes a hop pay the sender
        with np.errstate(divide="ignore", invalid="ignore"):
            risk = -np.log1p(-amount / (cap + 1.0)) - _LN_HOP_PRIOR
        cost = fee + (ATTEMPT_COST_MSAT + amount * ATTEMPT_COST_PPM / 1e6) * risk + _EPS
        usable = self.enabled[edges] & (cap > lo) & (self.htlc_max[edges] >= lo)
        usable &= self.htlc_min[edges] <= hi
        # A channel too small for the amount weighed (a bucket's midpoint above its capacity) has no success
        # probability at that amount (the log of a negative number): unusable for the bucket's route choice.
        usable &= cap + 1.0 > amount
        return np.where(usable, cost, np.inf)

    def fits(self, edge: int, amount: int) -> bool:
        """Whether the sender believes ``edge`` can carry exactly ``amount``."""
        return bool(
            self.enabled[edge]
            and self.htlc_min[edge] <= amount <= self.htlc_max[edge]
            and amount < self.capacity_msat[edge]
        )


@dataclass(slots=True)
class _Tree:
    """A reverse Dijkstra from one receiver, grown as far as senders needed (see kernels.grow_tree)."""

    dist: np.ndarray  # cost from each (compact) node to the receiver: final once settled, inf if not reached
    next_edge: np.ndarray  # half-channel to take from each node, -1 if none
    mark: np.ndarray  # [last node settled, 1 once complete]
    # the same as Python values for the per-payment check: the last node settled (-1: none) and its cost
    last: int = -1
    radius: float = -1.0
    complete: bool = False

    def settled(self, node: int, cost: float) -> bool:
        """Whether ``node`` (of cost ``dist[node]``) is settled: it comes before ``last`` in the heap's order
        (kernels._lt: by cost, then the larger node number first) or is it."""
        r = self.radius
        return self.complete or cost < r or (cost == r and node >= self.last >= 0)


@dataclass(slots=True)
class _Bucket:
    weights: np.ndarray  # over all half-channels (inf: unusable for the bucket)
    rev_w: np.ndarray  # the same in the order of the reverse adjacency (Router._rev_edge)


class Router:
    """Cached sender-side route finding over a :class:`RoutingView`.

    :param max_trees: how many (receiver, bucket) trees to keep (LRU); each costs
        12 bytes per routable node (84 kB on the mainnet graph's 6,978; 4,096 trees ~340 MB).
    """

    def __init__(self, view: RoutingView, n_nodes: int, *, keep_nodes: np.ndarray | None = None, max_trees: int = 4096):
        self.view = view
        self.max_trees = max_trees
        touched = np.zeros(n_nodes, dtype=bool)
        usable = view.enabled.reshape(-1, 2).any(axis=1).repeat(2)
        touched[view.src[usable]] = True
        if keep_nodes is not None:
            touched[keep_nodes] = True
        # Nodes with no enabled channel can never route: leaving them out shrinks every tree.
        self.nodes = np.flatnonzero(touched)
        self.compact = np.full(n_nodes, -1, dtype=np.int64)
        self.compact[self.nodes] = np.arange(len(self.nodes))
        self.n = len(self.nodes)
        csrc, cdst = self.compact[view.src], self.compact[view.dst]
        self._edges = np.flatnonzero((csrc >= 0) & (cdst >= 0))
        # Per compact node, the half-channels out of it and into it, in edge-number order (the searches' scan order).
        out = self._edges[np.argsort(csrc[self._edges], kind="stable")]
        self._fwd_edge, self._fwd_head = out, cdst[out]
        self._fwd_ptr = np.searchsorted(csrc[out], np.arange(self.n + 1))
        into = self._edges[np.argsort(cdst[self._edges], kind="stable")]
        self._rev_edge, self._rev_tail = into, csrc[into]
        self._rev_ptr = np.searchsorted(cdst[into], np.arange(self.n + 1))
        self._csrc, self._cdst = csrc, cdst
        self._buckets: dict[int, _Bucket] = {}
        self._trees: OrderedDict[tuple[int, int], _Tree] = OrderedDict()
        self.stats = {"tree_builds": 0, "tree_hits": 0, "astar": 0, "invalidated": 0}
        # Python mirrors for the per-payment loop, which reads single values (lists serve those fastest).
        self._compact_l: list[int] = self.compact.tolist()
        self._cdst_l: list[int] = cdst.tolist()
        ptr, iptr = self._fwd_ptr.tolist(), self._rev_ptr.tolist()
        out_l, into_l = out.tolist(), into.tolist()
        self._out_l = [out_l[ptr[u] : ptr[u + 1]] for u in range(self.n)]
        self._in_l = [into_l[iptr[u] : iptr[u + 1]] for u in range(self.n)]
        # fits(e, a) == fit_lo[e] <= a <= fit_hi[e]: enabled, within htlc_min..htlc_max, below the capacity.
        self._fit_lo: list[int] = []
        self._fit_hi: list[int] = []
        self._fit_lo_a = self._fit_hi_a = np.zeros(0, dtype=np.int64)  # the same as arrays, for the A* kernel
        self._refit(None)
        # the A* kernel's working memory (left as found after each search)
        self._scratch_f = np.full(self.n, np.inf)
        self._scratch_i = np.full((4, self.n), -1, dtype=np.int64)
        self._heap_k = np.empty(len(out) + self.n, dtype=np.float64)
        self._heap_v = np.empty(len(out) + self.n, dtype=np.int64)

    def _refit(self, edges: np.ndarray | None) -> None:
        """Recompute the exact-amount limits of ``edges`` (all when None) from the view."""
        v = self.view
        sel = slice(None) if edges is None else edges
        enabled = v.enabled[sel]
        lo = np.where(enabled, v.htlc_min[sel], 1)
        hi = np.where(enabled, np.minimum(v.htlc_max[sel], v.capacity_msat[sel] - 1), 0)
        if edges is None:
            self._fit_lo_a, self._fit_hi_a = lo.astype(np.int64), hi.astype(np.int64)
            self._fit_lo, self._fit_hi = lo.tolist(), hi.tolist()
            return
        self._fit_lo_a[edges], self._fit_hi_a[edges] = lo, hi
        for e, a, z in zip(edges.tolist(), lo.tolist(), hi.tolist(), strict=True):
            self._fit_lo[e], self._fit_hi[e] = a, z

    # -- weights and trees ------------------------------------------------------

    def _bucket(self, b: int) -> _Bucket:
        bucket = self._buckets.get(b)
        if bucket is None:
            weights = self.view.weights(bucket_amount(b), fit=_tree_fit(b))
            bucket = self._buckets[b] = _Bucket(weights, weights[self._rev_edge])
        return bucket

    def _tree(self, target: int, b: int, sender: int) -> _Tree:
        """The tree of (``target``, ``b``), grown until ``sender`` is settled."""
        key = (target, b)
        tree = self._trees.get(key)
        if tree is None:
            dist = np.full(self.n, np.inf)
            dist[target] = 0.0
            tree = self._trees[key] = _Tree(dist, np.full(self.n, -1, dtype=np.int32), np.array([-1, 0]))
            self.stats["tree_builds"] += 1
            if len(self._trees) > self.max_trees:
                self._trees.popitem(last=False)
        else:
            self._trees.move_to_end(key)
            self.stats["tree_hits"] += 1
            if tree.settled(sender, tree.dist.item(sender)):
                return tree
        grow_tree(tree.dist, tree.next_edge, tree.mark, sender, -math.inf, self._rev_ptr, self._rev_tail,
                  self._rev_edge, self._bucket(b).rev_w)  # fmt: skip
        tree.last, tree.complete = tree.mark.item(0), bool(tree.mark.item(1))
        tree.radius = tree.dist.item(tree.last)
        return tree

    # -- gossip ---------------------------------------------------------------------

    def view_changed(self, edges: list[int]) -> None:
        """Policies of ``edges`` changed in the view: patch weights, drop affected trees."""
        if not edges:
            return
        arr = np.asarray(edges, dtype=np.int64)
        self._refit(arr)
        for b, bucket in self._buckets.items():
            old = bucket.weights[arr].copy()
            new = self.view.weights(bucket_amount(b), arr, fit=_tree_fit(b))
            bucket.weights[arr] = new
            bucket.rev_w = bucket.weights[self._rev_edge]
            changed = old != new  # inf == inf: an edge unusable before and after changes nothing
            if not changed.any():
                continue
            e, w = arr[changed], new[changed]
            u, v = self._csrc[e], self._cdst[e]
            keep = (u >= 0) & (v >= 0)
            e, w, u, v = e[keep], w[keep], u[keep], v[keep]
            for key, tree in list(self._trees.items()):
                # A tree changes only if a changed edge is on it or now offers a shortcut or a tie (which the
                # scan order might settle otherwise); a grown tree continues exactly as a new one would.
                if key[1] != b:
                    continue
                via = tree.dist[v] + w
                if (tree.next_edge[u] == e).any() or ((via <= tree.dist[u]) & (via < math.inf)).any():
                    del self._trees[key]
                    self.stats["invalidated"] += 1

    # -- routes ---------------------------------------------------------------------

    def route(self, sender: int, receiver: int, amount: int, excluded: set[int] | frozenset[int] = frozenset()):
        """The sender's preferred route as a list of half-channels, or None.

        :param excluded: half-channels the sender has learned to avoid for this payment.
        """
        compact = self._compact_l
        s, t = compact[sender], compact[receiver]
        if s < 0 or t < 0 or s == t:
            return None
        b = (amount.bit_length() - 1 - _BUCKET_SHIFT) // _BUCKET_BITS  # bucket_of, inlined
        if b < 0:
            b = 0
        trees = self._trees
        tree = trees.get((t, b))
        if tree is not None:
            ds, r = tree.dist.item(s), tree.radius
            if tree.complete or ds < r or (ds == r and s >= tree.last >= 0):  # tree.settled(s, ds), inlined
                trees.move_to_end((t, b))
                self.stats["tree_hits"] += 1
            else:
                tree = self._tree(t, b, s)
                ds = tree.dist.item(s)
        else:
            tree = self._tree(t, b, s)
            ds = tree.dist.item(s)
        if ds == math.inf:
            return None
        path, node, hops = [], s, 0
        next_edge, lo, hi, cdst = tree.next_edge, self._fit_lo, self._fit_hi, self._cdst_l
        while node != t and hops < MAX_HOPS:
            e = next_edge.item(node)
            if e in excluded or not lo[e] <= amount <= hi[e]:
                break
            path.append(e)
            hops += 1
            node = cdst[e]
        else:
            if node == t:
                return path
        if not (self._has_way_in(t, excluded, amount) and self._has_way_out(s, excluded, amount)):
            return None  # cut off by exclusions: a search would only prove it the slow way
        self.stats["astar"] += 1
        # The heuristic: the tree's distance, capped at the sender's (every node cheaper is settled).
        excl = np.fromiter(excluded, dtype=np.int64, count=len(excluded))
        found = astar(
            s, t, amount, ds, excl, self._fwd_ptr, self._fwd_edge, self._fwd_head,
            self._bucket(b).weights, tree.dist, tree.next_edge, self._cdst, self._fit_lo_a, self._fit_hi_a, MAX_HOPS,
            self._scratch_f, self._scratch_i, self._heap_k, self._heap_v,
        )  # fmt: skip
        return found.tolist() if len(found) else None

    def _has_way_out(self, s: int, excluded, amount: int) -> bool:
        lo, hi = self._fit_lo, self._fit_hi
        return any(e not in excluded and lo[e] <= amount <= hi[e] for e in self._out_l[s])

    def _has_way_in(self, t: int, excluded, amount: int) -> bool:
        lo, hi = self._fit_lo, self._fit_hi
        return any(e not in excluded and lo[e] <= amount <= hi[e] for e in self._in_l[t])
