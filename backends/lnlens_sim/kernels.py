"""Compiled route searches (numba): the reverse shortest-path tree and the A* retry search.

Both are deterministic on any machine: plain float64 additions in a fixed order (no fast-math), a binary
heap ordered by cost and, among equal costs, the larger node number first (the order scipy's Dijkstra
settled ties in, which the trees used before), an entry whose cost is no longer its node's being skipped,
and a fixed tie rule, so a run depends on its seed only.

* :func:`grow_tree`: Dijkstra from the receiver over the half-channels *into* each settled node, in
  edge-number order, grown only as far as the senders asked so far. A node's next hop is the first
  half-channel that reaches it at its least cost: among equal costs, the one from the node settled first
  (lower cost, then larger node number), and among parallel channels of one pair, the lower edge number.
* :func:`astar`: forward search from the sender toward the receiver over the half-channels that fit the
  exact amount and are not excluded, with the tree's distance as heuristic (exclusions and exact limits
  only remove channels, so it is admissible and consistent). Nodes leave the heap by cost + heuristic,
  then larger node number; a node's parent is the first half-channel (out of the node settled first, in edge-number
  order) that reaches it at its least cost. Nodes ``max_hops`` hops from the sender are not expanded.
  A node's cost is known once it is settled, so the heap holds ``cost + heuristic`` per node and a
  settled node is marked by a cost of -inf in the working memory.

Compiled once per machine and cached beside the module (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["grow_tree", "astar"]


@njit(cache=True, inline="always")
def _lt(ka, va, kb, vb):
    """The heap's order: by cost, then the larger node number first (routing.Router.route mirrors it)."""
    return ka < kb or (ka == kb and va > vb)


@njit(cache=True, inline="always")
def _settled(dist, v, last):
    """Whether the search whose last settled node is ``last`` has settled ``v`` (it went in heap order)."""
    return last >= 0 and (v == last or _lt(dist[v], v, dist[last], last))


@njit(cache=True, inline="always")
def _hpush(hk, hv, size, k, v):
    """Push (k, v) onto the heap of ``size`` entries (keys ``hk``, nodes ``hv``); returns the new size."""
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if not _lt(k, v, hk[p], hv[p]):
            break
        hk[i] = hk[p]
        hv[i] = hv[p]
        i = p
    hk[i] = k
    hv[i] = v
    return size + 1


@njit(cache=True, inline="always")
def _hpop(hk, hv, size):
    """Remove the least entry of the heap of ``size`` entries (read it from hk[0], hv[0] first)."""
    size -= 1
    k, v = hk[size], hv[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and _lt(hk[c + 1], hv[c + 1], hk[c], hv[c]):
            c += 1
        if not _lt(hk[c], hv[c], k, v):
            break
        hk[i] = hk[c]
        hv[i] = hv[c]
        i = c
    hk[i] = k
    hv[i] = v
    return size


@njit(cache=True)
def grow_tree(dist, nxt, mark, stop, bound, rev_ptr, rev_tail, rev_edge, rev_w):
    """Continue the reverse Dijkstra of a tree until node ``stop`` is settled (-1: no such node) and every node
    cheaper than ``bound`` too (``-inf``: no bound; ``inf``: to the end).

    ``dist`` (float64, inf: not reached) and ``nxt`` (next half-channel, -1: none) hold the search so far:
    final for settled nodes, tentative for the others. ``mark[0]`` is the last node settled (-1: none yet;
    the target has ``dist`` 0), ``mark[1]`` 1 once the search has ended. Nodes settle in the heap's
    order, so ``v`` is settled exactly when it comes before ``mark[0]`` in that order or is it, and a
    search paused and continued settles the same nodes with the same costs and next hops as one run
    through. ``rev_ptr``/``rev_tail``/``rev_edge``/``rev_w``: per node, the usable half-channels into it
    in edge-number order, their tails and weights (inf: unusable).
    """
    if mark[1] == 1:
        return
    n = len(dist)
    last = mark[0]
    r = dist[last] if last >= 0 else -1.0
    if last >= 0 and r >= bound and (stop < 0 or _settled(dist, stop, last)):
        return
    done = np.zeros(n, dtype=np.bool_)
    # a heap of (cost, node) entries; an entry whose cost is no longer the node's is skipped when popped
    hk = np.empty(len(rev_w) + n, dtype=np.float64)
    hv = np.empty(len(rev_w) + n, dtype=np.int64)
    size = 0
    for v in range(n):
        d = dist[v]
        if d < np.inf:
            if _settled(dist, v, last):
                done[v] = True
            else:
                size = _hpush(hk, hv, size, d, v)
    reached = stop < 0 or done[stop]
    while size > 0:
        v = hv[0]
        dv = hk[0]
        if reached and dv >= bound:
            return  # every node cheaper than the bound is settled (stale entries are cheaper than their node)
        size = _hpop(hk, hv, size)
        if done[v] or dv != dist[v]:
            continue
        done[v] = True
        mark[0] = v
        for j in range(rev_ptr[v], rev_ptr[v + 1]):
            w = rev_w[j]
            if not w < np.inf:
                continue
            u = rev_tail[j]
            if done[u]:
                continue
            d = dv + w
            if d < dist[u]:
                dist[u] = d
                nxt[u] = rev_edge[j]
                size = _hpush(hk, hv, size, d, u)
        if v == stop:
            reached = True
            if bound == -np.inf:
                return
    mark[1] = 1


@njit(cache=True, inline="always")
def _excluded(e, excluded):
    for x in excluded:
        if x == e:
            return True
    return False


@njit(cache=True)
def _onward(v, hops, t, amount, excluded, nxt, head, fit_lo, fit_hi, max_hops):
    """How many hops the tree's route from ``v`` to ``t`` takes, if every one of them fits the amount, is
    not excluded and the route stays within ``max_hops`` counting the ``hops`` already made (else -1)."""
    n = 0
    while v != t:
        e = nxt[v]
        if e < 0 or hops + n >= max_hops or not fit_lo[e] <= amount <= fit_hi[e] or _excluded(e, excluded):
            return -1
        v = head[e]
        n += 1
    return n


@njit(cache=True)
def astar(s, t, amount, cap, excluded, fwd_ptr, fwd_edge, fwd_head, weights, dist, nxt, head, fit_lo, fit_hi,
          max_hops, scratch_f, scratch_i, hk, hv):  # fmt: skip
    """The cheapest route from ``s`` to ``t`` as half-channels (empty: none).

    ``excluded``: half-channels the sender avoids; ``fit_lo[e] <= amount <= fit_hi[e]``: ``e`` can carry
    the exact amount. ``dist``/``nxt``: the tree of ``t``, grown at least until every node cheaper than
    ``cap`` is settled (``cap``: the sender's distance); ``head``: each half-channel's compact head. The
    heuristic is ``min(dist[v], cap)``, exact for those nodes and the same whatever else the tree has
    settled, so a route never depends on how far the cached tree has grown.

    A node cheaper than ``cap`` whose tree route onward is usable (fits, not excluded, within the hops)
    completes a route of cost ``g + dist``, which equals its heap key: when such a node leaves the heap,
    that route is optimal and the search ends there (the route: the search's way to the node, then the
    tree's); while one is known, nodes whose key is above its cost are never pushed (they could not
    leave the heap before it).

    ``scratch_f`` (n, inf) and ``scratch_i`` (4 x n, -1) are working memory, left as found; ``hk``/``hv``
    hold the heap (as many entries as half-channels plus nodes).
    """
    g = scratch_f
    parent, via, depth, touched = scratch_i[0], scratch_i[1], scratch_i[2], scratch_i[3]
    nt = 0
    g[s] = 0.0
    depth[s] = 0
    touched[nt] = s
    nt += 1
    size = _hpush(hk, hv, 0, min(dist[s], cap), s)
    best = np.inf  # the cost of a complete route known so far
    end, onward = -1, -1
    while size > 0:
        u = hv[0]
        fu = hk[0]
        size = _hpop(hk, hv, size)
        gu = g[u]
        if gu == -np.inf or fu != gu + min(dist[u], cap):
            continue  # settled already, or a stale entry
        if dist[u] < cap or u == t:
            onward = _onward(u, depth[u], t, amount, excluded, nxt, head, fit_lo, fit_hi, max_hops)
            if onward >= 0:
                end = u
                break
        g[u] = -np.inf  # settled
        if depth[u] >= max_hops:
            continue
        for j in range(fwd_ptr[u], fwd_ptr[u + 1]):
            v = fwd_head[j]
            gv = g[v]
            if gv == -np.inf:
                continue
            e = fwd_edge[j]
            if not fit_lo[e] <= amount <= fit_hi[e]:
                continue
            w = weights[e]
            if not w < np.inf or _excluded(e, excluded):
                continue
            d = gu + w
            if d < gv:
                f = d + min(dist[v], cap)
                if f > best:
                    continue
                if gv == np.inf:
                    touched[nt] = v
                    nt += 1
                g[v] = d
                parent[v] = e
                via[v] = u
                depth[v] = depth[u] + 1
                if dist[v] < cap and _onward(v, depth[v], t, amount, excluded, nxt, head, fit_lo, fit_hi,
                                             max_hops) >= 0:  # fmt: skip
                    best = min(best, f)
                size = _hpush(hk, hv, size, f, v)
    path = np.empty(depth[end] + onward if end >= 0 else 0, dtype=np.int64)
    if end >= 0:
        v = end
        for i in range(depth[end] - 1, -1, -1):
            path[i] = parent[v]
            v = via[v]
        v = end
        for i in range(depth[end], len(path)):
            path[i] = nxt[v]
            v = head[nxt[v]]
    for i in range(nt):
        v = touched[i]
        g[v] = np.inf
        parent[v] = -1
        via[v] = -1
        depth[v] = -1
    return path
