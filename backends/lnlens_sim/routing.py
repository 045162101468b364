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
* For each (receiver, bucket) a reverse shortest-path tree (scipy Dijkstra from the
  receiver) gives every sender's best next hop. A first attempt just follows it.
* A retry, with failing channels excluded, runs A* whose heuristic is that tree's
  distance: exclusions only lengthen paths, so the heuristic is admissible and
  consistent, and the search touches little more than the detour.
* When gossip changes an edge, each cached tree is checked in O(1) for whether the
  change can alter it (the edge is on the tree, or now offers a shortcut) and is
  dropped if so; balance changes never affect routes because senders cannot see them.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

__all__ = ["Router", "RoutingView", "bucket_of", "ATTEMPT_COST_MSAT", "ATTEMPT_COST_PPM", "MAX_HOPS"]

ATTEMPT_COST_MSAT = 100_000  # LND routerrpc.attemptcost default: 100 sat
ATTEMPT_COST_PPM = 1_000  # LND routerrpc.attemptcostppm default
HOP_PRIOR = 0.6  # LND routerrpc.apriori.hopprob default: success odds of a hop it knows nothing about
_LN_HOP_PRIOR = math.log(HOP_PRIOR)
_ASTAR_BUDGET = 16  # nodes A* may settle before a retry is handed to scipy's Dijkstra
_GAVE_UP = object()  # sentinel: A* ran out of budget (distinct from None, "no route")
_PARTIAL = 12  # successors ranked up front when a node has more than this many channels
MAX_HOPS = 20  # BOLT 4 onions fit about 20 hops; longer routes are never built
_EPS = 1e-3  # keeps zero-fee edges strictly positive (scipy drops explicit zeros)
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
        return np.where(usable, cost, np.inf)

    def fits(self, edge: int, amount: int) -> bool:
        """Whether the sender believes ``edge`` can carry exactly ``amount``."""
        return bool(
            self.enabled[edge]
            and self.htlc_min[edge] <= amount <= self.htlc_max[edge]
            and amount < self.capacity_msat[edge]
        )


def stable_rank(f: list[float]) -> list[int]:
    """The positions of ``f`` in the order of numpy's ``argsort(kind="stable")``: by value, ties by
    position, NaN last (a few values: cheaper than a round trip through numpy)."""
    if all(x == x for x in f):
        return sorted(range(len(f)), key=f.__getitem__)
    keep = [i for i in range(len(f)) if f[i] == f[i]]
    return sorted(keep, key=f.__getitem__) + [i for i in range(len(f)) if f[i] != f[i]]


@dataclass(slots=True)
class _Tree:
    dist: np.ndarray  # cost from each (compact) node to the receiver
    next_edge: np.ndarray  # half-channel to take from each node, -1 if none


@dataclass(slots=True)
class _Bucket:
    weights: np.ndarray  # over all half-channels
    rev: csr_matrix | None = None  # reverse graph, parallel channels reduced to the cheapest
    pair_keys: np.ndarray | None = None
    pair_edge: np.ndarray | None = None
    sorted_edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (pair key, edge, weight) sorted


class Router:
    """Cached sender-side route finding over a :class:`RoutingView`.

    :param max_trees: how many (receiver, bucket) trees to keep (LRU); each costs
        8 bytes per routable node (56 kB on the mainnet graph's 6,978; 4,096 trees ~230 MB).
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
        order = self._edges[np.argsort(csrc[self._edges], kind="stable")]
        self._fwd_edge = order
        self._fwd_head = cdst[order]
        self._fwd_ptr = np.searchsorted(csrc[order], np.arange(self.n + 1))
        self._csrc, self._cdst = csrc, cdst
        self._buckets: dict[int, _Bucket] = {}
        self._trees: OrderedDict[tuple[int, int], _Tree] = OrderedDict()
        self.stats = {"tree_builds": 0, "tree_hits": 0, "astar": 0, "dijkstra": 0, "invalidated": 0}
        # Python mirrors for the per-payment loop, which reads single values (lists serve those fastest).
        self._compact_l: list[int] = self.compact.tolist()
        self._csrc_l: list[int] = csrc.tolist()
        self._cdst_l: list[int] = cdst.tolist()
        ptr = self._fwd_ptr.tolist()
        fwd_edge, fwd_head = order.tolist(), self._fwd_head.tolist()
        self._out_l = [fwd_edge[ptr[u] : ptr[u + 1]] for u in range(self.n)]
        # a hub's successors as numpy views (its successors are ranked by numpy): (edges, heads)
        self._out_a = {u: (order[ptr[u] : ptr[u + 1]], self._fwd_head[ptr[u] : ptr[u + 1]])
                       for u in range(self.n) if ptr[u + 1] - ptr[u] > _PARTIAL}  # fmt: skip
        self._out_head_l = [fwd_head[ptr[u] : ptr[u + 1]] for u in range(self.n)]
        into = self._edges[np.argsort(cdst[self._edges], kind="stable")]
        iptr = np.searchsorted(cdst[into], np.arange(self.n + 1)).tolist()
        into_l = into.tolist()
        self._in_l = [into_l[iptr[u] : iptr[u + 1]] for u in range(self.n)]
        # fits(e, a) == fit_lo[e] <= a <= fit_hi[e]: enabled, within htlc_min..htlc_max, below the capacity.
        self._fit_lo: list[int] = []
        self._fit_hi: list[int] = []
        self._refit(None)

    def _refit(self, edges: np.ndarray | None) -> None:
        """Recompute the exact-amount limits of ``edges`` (all when None) from the view."""
        v = self.view
        sel = slice(None) if edges is None else edges
        enabled = v.enabled[sel]
        lo = np.where(enabled, v.htlc_min[sel], 1)
        hi = np.where(enabled, np.minimum(v.htlc_max[sel], v.capacity_msat[sel] - 1), 0)
        if edges is None:
            self._fit_lo, self._fit_hi = lo.tolist(), hi.tolist()
            return
        for e, a, z in zip(edges.tolist(), lo.tolist(), hi.tolist(), strict=True):
            self._fit_lo[e], self._fit_hi[e] = a, z

    # -- weights and trees ------------------------------------------------------

    def _bucket(self, b: int) -> _Bucket:
        bucket = self._buckets.get(b)
        if bucket is None:
            bucket = self._buckets[b] = _Bucket(self.view.weights(bucket_amount(b), fit=_tree_fit(b)))
        return bucket

    def _reverse_graph(self, bucket: _Bucket) -> csr_matrix:
        if bucket.rev is None:
            e = self._edges[np.isfinite(bucket.weights[self._edges])]
            u, v, w = self._csrc[e], self._cdst[e], bucket.weights[e]
            key = u * self.n + v
            order = np.lexsort((w, key))
            key, e, w = key[order], e[order], w[order]
            bucket.sorted_edges = (key, e, w)
            first = np.ones(len(key), dtype=bool)
            first[1:] = key[1:] != key[:-1]
            bucket.pair_keys, bucket.pair_edge = key[first], e[first]
            u, v = bucket.pair_keys // self.n, bucket.pair_keys % self.n
            bucket.rev = csr_matrix((w[first], (v, u)), shape=(self.n, self.n))
        return bucket.rev

    def _tree(self, target: int, b: int) -> _Tree:
        key = (target, b)
        tree = self._trees.get(key)
        if tree is not None:
            self._trees.move_to_end(key)
            self.stats["tree_hits"] += 1
            return tree
        bucket = self._bucket(b)
        rev = self._reverse_graph(bucket)
        dist, pred = dijkstra(rev, indices=target, return_predecessors=True)
        next_edge = np.full(self.n, -1, dtype=np.int32)
        has = pred >= 0
        nodes = np.flatnonzero(has)
        keys = nodes * self.n + pred[has]
        next_edge[nodes] = bucket.pair_edge[np.searchsorted(bucket.pair_keys, keys)]
        # float32 halves the cache; the rounding (relative 1e-7) only blurs exact ties.
        tree = self._trees[key] = _Tree(dist.astype(np.float32), next_edge)
        self.stats["tree_builds"] += 1
        if len(self._trees) > self.max_trees:
            self._trees.popitem(last=False)
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
            changed = old != new  # inf == inf: an edge unusable before and after changes nothing
            if not changed.any():
                continue
            # rebuilt on the next tree miss
            bucket.rev = bucket.pair_keys = bucket.pair_edge = bucket.sorted_edges = None
            e, w = arr[changed], new[changed]
            u, v = self._csrc[e], self._cdst[e]
            keep = (u >= 0) & (v >= 0)
            e, w, u, v = e[keep], w[keep], u[keep], v[keep]
            for key, tree in list(self._trees.items()):
                # A tree changes only if a changed edge is on it or now offers a shortcut.
                if key[1] == b and ((tree.next_edge[u] == e).any() or (tree.dist[v] + w < tree.dist[u]).any()):
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
        tree = self._tree(t, b)
        if not math.isfinite(tree.dist.item(s)):
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
        path = self._astar(s, t, amount, excluded, tree, self._bucket(b).weights)
        if path is _GAVE_UP:
            return self._dijkstra(s, t, amount, excluded, b)
        return path

    def _dijkstra(self, s: int, t: int, amount: int, excluded, b: int):
        """The same search as A*, done by scipy over a graph rebuilt for this amount and these exclusions."""
        self.stats["dijkstra"] += 1
        bucket = self._bucket(b)
        self._reverse_graph(bucket)
        keys, edges, weights = bucket.sorted_edges
        view = self.view
        valid = (view.capacity_msat[edges] > amount) & (view.htlc_max[edges] >= amount)
        valid &= view.htlc_min[edges] <= amount
        if excluded:
            valid &= ~np.isin(edges, np.fromiter(excluded, dtype=np.int64))
        idx = np.flatnonzero(valid)
        k = keys[idx]
        first = np.ones(len(idx), dtype=bool)
        first[1:] = k[1:] != k[:-1]
        idx, k = idx[first], k[first]  # the cheapest usable channel of each node pair
        rev = csr_matrix((weights[idx], (k % self.n, k // self.n)), shape=(self.n, self.n))
        dist, pred = dijkstra(rev, indices=t, return_predecessors=True)
        if not math.isfinite(dist[s]):
            return None
        path, node = [], s
        while node != t:
            nxt = int(pred[node])
            path.append(int(edges[idx[np.searchsorted(k, node * self.n + nxt)]]))
            node = nxt
            if len(path) > MAX_HOPS:
                return None
        return path

    def _has_way_out(self, s: int, excluded, amount: int) -> bool:
        lo, hi = self._fit_lo, self._fit_hi
        return any(e not in excluded and lo[e] <= amount <= hi[e] for e in self._out_l[s])

    def _has_way_in(self, t: int, excluded, amount: int) -> bool:
        lo, hi = self._fit_lo, self._fit_hi
        return any(e not in excluded and lo[e] <= amount <= hi[e] for e in self._in_l[t])

    def _astar(self, s: int, t: int, amount: int, excluded, tree: _Tree, weights: np.ndarray):
        self.stats["astar"] += 1
        h = tree.dist
        out_a, out_l, head_l, lo_l, hi_l = self._out_a, self._out_l, self._out_head_l, self._fit_lo, self._fit_hi
        w_item, h_item = weights.item, h.item
        parent: dict[int, int] = {s: -1}
        depth: dict[int, int] = {s: 0}
        succ: dict[int, list] = {}
        heap: list[tuple[float, int, int]] = []
        push, pop = heapq.heappush, heapq.heappop

        def expand(u: int, g: float) -> None:
            es = out_l[u]
            if not es:
                return
            if len(es) > _PARTIAL:
                # A hub's successors are ranked lazily: the best few first, the rest only if needed.
                es_a, heads = out_a[u]
                f = weights[es_a] + h[heads] + g
                first = f.argpartition(_PARTIAL)[:_PARTIAL]  # the array methods np.arg* call, minus the wrapper
                order, complete = first[f[first].argsort(kind="stable")].tolist(), False
                succ[u] = [es, heads, f, order, complete]
            else:
                # The same sums as numpy's (float64 weight + float32 distance, then + g), in the same
                # order, so the ranking is numpy's stable argsort: by cost, ties by position, NaN last.
                heads = head_l[u]
                f = [w_item(e) + h_item(x) + g for e, x in zip(es, heads, strict=True)]
                order = stable_rank(f)
                succ[u] = [es, heads, f, order, True]
            push(heap, (float(f[order[0]]), u, 0))

        # Successors are pushed one at a time in cost order, so a hub with a thousand
        # channels costs one partial sort, not a thousand heap pushes.
        expand(s, 0.0)
        budget = _ASTAR_BUDGET
        while heap:
            f, u, k = pop(heap)
            if f == math.inf:
                return None  # everything left is unreachable
            rec = succ[u]
            es, heads, fs, order = rec[0], rec[1], rec[2], rec[3]
            if k + 1 == len(order) and not rec[4]:
                rest = np.ones(len(fs), dtype=bool)
                rest[order] = False
                idx = np.flatnonzero(rest)
                order += idx[fs[idx].argsort(kind="stable")].tolist()
                rec[4] = True
            if k + 1 < len(order):
                push(heap, (float(fs[order[k + 1]]), u, k + 1))
            i = order[k]
            v, e = int(heads[i]), es[i]
            if v in parent or e in excluded or depth[u] >= MAX_HOPS or not lo_l[e] <= amount <= hi_l[e]:
                continue
            parent[v], depth[v] = e, depth[u] + 1
            budget -= 1
            if budget < 0:
                return _GAVE_UP  # a wide detour: scipy does a full search faster than Python
            if v == t:
                path = []
                csrc = self._csrc_l
                while v != s:
                    e = parent[v]
                    path.append(e)
                    v = csrc[e]
                return path[::-1]
            expand(v, f - h_item(v))
        return None
