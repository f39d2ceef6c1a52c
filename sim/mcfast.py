"""Fast engine of the explicit-state model checker (issue 15): paper and fair modes, FIFO links.

Same search as :class:`hwctl.sim.modelcheck.Checker` (breadth first, the same events, the same
checks, the same counts), with three changes that make it some ten times faster and several
times smaller (docs/reliability.md, "Model checker"):

1. *States are canonical and immutable.* A core is encoded as a tuple of plain values (its
   queues, Lock, S_sent, S_wake, S_sleep, owed WAKEs and arrival counter) and interned: the
   global state is a flat tuple of small integers (one id per core, one per link queue, one per
   shared set), packed into ``bytes``. The arrival numbers of every node are renamed to
   1..m after each transition (m live ones, the counter set to m) and every R_wake age is
   replaced by a canonical representative of its rank among the live request ages: exactly the
   renaming the old checker's key applied (:func:`hwctl.sim.modelcheck._state_key`), so the
   packed state *is* its key and two states are merged exactly when the old keys are equal.
2. *Core transitions are memoised* on (core id, event): a node's local state recurs in many
   global states, so each (local state, delivered message / finished generation / submission)
   runs the real :class:`~hwctl.protocols.esp.EspNode` code once; the other times the result
   (the new core id and its actions) is looked up. No core is copied on the hot path.
3. *Compact bookkeeping*: states are numbered; the transition graph for the trap check is two
   ``array('I')`` columns, searched backwards with numpy.

The cores are still the production objects: each memo entry is computed by decoding the core
into an ``EspNode``, calling ``receive``/``attempts_finished``/``submit`` and encoding the result.
Robust mode (link layer, reordering, losses, duplications) is :mod:`hwctl.sim.mcrobust`, a
subclass of this engine.
"""

from __future__ import annotations

import dataclasses
import math
import struct
import sys
import time
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from typing import Any

from hwctl.protocols.base import (
    AbortAttempts,
    Completed,
    Expired,
    ProtocolViolation,
    RemoteError,
    Request,
    Send,
    StartAttempts,
)
from hwctl.protocols.esp import EspMessage, EspNode, MsgType, State, _Item, _Lock

_STATES = {s.value: s for s in State}
_INF_AGE = (math.inf, 0)


class _Intern:
    """value <-> small int."""

    __slots__ = ("ids", "vals")

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.vals: list[Any] = []

    def __call__(self, v: Any) -> int:
        i = self.ids.get(v)
        if i is None:
            i = len(self.vals)
            self.ids[v] = i
            self.vals.append(v)
        return i


class FastEngine:
    """Runs the search of ``chk`` (a :class:`~hwctl.sim.modelcheck.Checker` built without
    ``robust``/``por``), reusing its workload, bounds and streams bookkeeping."""

    def __init__(self, chk: Any) -> None:
        self._supports(chk)
        self.chk = chk
        #: the module of the checker (``__main__`` under ``python -m``): its _Violation is the
        #: one the checker's streams bookkeeping raises
        self.mc = sys.modules[type(chk).__module__]
        self.n = len(chk.names)
        self.nl = len(chk.links)
        self.k_of = chk.idx
        self.cores = _Intern()  # core encodings
        self.msgs = _Intern()  # message encodings
        self.queues = _Intern()  # link queues (tuples of message ids)
        self.misc = _Intern()  # started/running/done/submitted/waiting/gens values
        self.reqs = _Intern()  # Request objects
        self.msg_obj: list[EspMessage] = []
        self.msg_ref: list[tuple[int, int] | None] = []  # (node whose arrival it carries, id)
        self.msg_link: list[int] = []
        self.msg_rt: list[tuple[int, float] | None] = []  # (rid, t) of the request a SYN carries
        self.msg_dst: list[int] = []  # index of the receiving node
        self.cinfo: list[tuple] = []  # per core id: (own arrivals, counter, owed refs, ages, has_age)
        self.tmemo: dict[tuple[int, int, int], tuple] = {}
        self.cmemo: dict[tuple, int] = {}
        self.qinfo: list[tuple] = []  # per queue id: the (node, arrival) refs of its messages
        self.qtail: list[int] = []  # per queue id: the id of the queue without its head
        self.qapp: dict[tuple[int, int], int] = {}  # (queue id, message id) -> id with it appended
        self.okmemo: dict[tuple, bool] = {}  # core ids -> canonical (static workload)
        self.rmemo: dict[tuple, int] = {}
        self.base: list[dict] = []
        self.pack = struct.Struct(f"<{self.n + self.nl + 1}I").pack
        self.unpack = struct.Struct(f"<{self.n + self.nl + 1}I").unpack
        self.static_ages = not (chk.streams or chk.arrivals)
        self.memo_hits = 0
        #: the last expansion dropped a transition beyond the in-flight bound (robust mode)
        self.pruned = False

    @staticmethod
    def _supports(chk: Any) -> None:
        if chk.robust or chk.por or chk.inflight is not None:
            raise ValueError("the fast engine covers paper/fair mode on FIFO links only")

    # -- encoding of cores and messages ------------------------------------------------------

    def _item(self, it: _Item | None) -> tuple | None:
        if it is None:
            return None
        return (it.arrival, -1 if it.request is None else self.reqs(it.request), it.wake_target,
                it.woken, it.age)

    def _lock(self, lk: _Lock) -> tuple:
        return (lk.peer, self.reqs(lk.request), lk.arrival, lk.state.value, lk.t_min)

    def encode(self, k: int, c: EspNode) -> int:
        if c._dead or c.arq is not None or c.lock_deadline() != math.inf:
            raise ProtocolViolation("fast engine: robust state in a paper/fair core")
        enc = (k, c._arrival,
               tuple(sorted(self._item(i) for i in c.q_main)),  # type: ignore[type-var]
               tuple((lk is c.lock, self._lock(lk)) for lk in c.q_ready),
               self._item(c.s_sent), self._item(c.s_wake),
               tuple(self._item(i) for i in c.s_sleep),
               None if c.lock is None else self._lock(c.lock),
               tuple(sorted(c.owed.items())))
        return self._core_id(enc)

    def _core_id(self, enc: tuple) -> int:
        cid = self.cores.ids.get(enc)
        if cid is not None:
            return cid
        cid = self.cores(enc)
        self.cinfo.append(self._info(enc))
        return cid

    def _info(self, enc: tuple) -> tuple:
        """What the canonicalisation needs of a core encoding (memoised per core id): own live
        arrival numbers, counter, the (node, id) references to other nodes' numbers, ages."""
        k, counter, qm, qr, sent, wake, sleep, lock, owed = enc[:9]
        own = {it[0] for it in qm}
        own.update(it[0] for it in sleep)
        for it in (sent, wake):
            if it is not None:
                own.add(it[0])
        for lk in [lock, *(x[1] for x in qr)]:
            if lk is not None and lk[2] is not None:
                own.add(lk[2])
        rq = self.reqs.vals
        ages = [(rq[it[1]].t, rq[it[1]].rid) for it in [*qm, *sleep, sent]
                if it is not None and it[1] >= 0]
        has_age = any(it[4] is not None for it in qm) or (wake is not None and wake[4] is not None)
        refs = tuple((self.k_of[w], wid) for w, wid in owed)
        rts = {(rq[it[1]].rid, rq[it[1]].t) for it in [*qm, *sleep, sent, wake]
               if it is not None and it[1] >= 0}
        rts.update((rq[lk[1]].rid, rq[lk[1]].t) for lk in [lock, *(x[1] for x in qr)]
                   if lk is not None)
        wake_ages = [it[4] for it in qm if it[4] is not None]
        if wake is not None and wake[4] is not None:
            wake_ages.append(wake[4])
        # static workload: a canonical R_wake age is a live age (exact), (t, rid - 0.5) below the
        # live (t, rid) (between two live ages) or _INF_AGE (above all): its *anchor* must be
        # live for the state to be canonical (see finish)
        anchors = tuple(a if isinstance(a[1], int) else (a[0], int(a[1] + 0.5))
                        for a in wake_ages if a != _INF_AGE)
        return (frozenset(own), counter, refs, tuple(ages), has_age, tuple(rts),
                len(own) == counter, frozenset(ages), anchors)

    def decode(self, cid: int) -> EspNode:
        k, counter, qm, qr, sent, wake, sleep, lock, owed = self.cores.vals[cid][:9]
        c = object.__new__(EspNode)
        c.__dict__.update(self.base[k])
        c._dead = set()
        c._arrival = counter
        c.q_main = [self._mkitem(i) for i in qm]  # sorted: a valid heap
        c.s_sent = None if sent is None else self._mkitem(sent)
        c.s_wake = None if wake is None else self._mkitem(wake)
        c.s_sleep = [self._mkitem(i) for i in sleep]
        c.lock = None if lock is None else self._mklock(lock)
        c.q_ready = [c.lock if same else self._mklock(lk) for same, lk in qr]
        c.owed = dict(owed)
        return c

    def _mkitem(self, e: tuple) -> _Item:
        return _Item(e[0], None if e[1] < 0 else self.reqs.vals[e[1]], e[2], e[3], e[4])

    def _mklock(self, e: tuple) -> _Lock:
        return _Lock(e[0], self.reqs.vals[e[1]], e[2], _STATES[e[3]], e[4])

    def _msg_id(self, m: EspMessage) -> int:
        enc = (int(m.kind), m.src, m.dst, m.rid, -1 if m.request is None else self.reqs(m.request),
               m.t_min, m.wake, m.seq, m.inc, m.dinc)
        i = self.msgs.ids.get(enc)
        if i is None:
            i = self.msgs(enc)
            self.msg_obj.append(m)
            ref = None
            if m.kind == MsgType.WAKE:
                ref = (self.k_of[m.src], m.rid)
            elif m.kind == MsgType.NACK and m.wake:
                ref = (self.k_of[m.dst], m.rid)
            self.msg_ref.append(ref)
            self.msg_link.append(self.chk.link_idx[(m.src, m.dst)])
            self.msg_rt.append(None if m.request is None else (m.request.rid, m.request.t))
            self.msg_dst.append(self.k_of[m.dst])
        return i

    # -- transitions -------------------------------------------------------------------------

    def step(self, cid: int, kind: int, arg: int) -> tuple:
        """(new core id, actions) of event (kind, arg) at core ``cid``: kind 0 receive message
        ``arg``, 1 attempts_finished(rid ``arg``), 2 submit request ``arg``; memoised."""
        key = (cid, kind, arg)
        r = self.tmemo.get(key)
        if r is not None:
            self.memo_hits += 1
            return r
        core = self.decode(cid)
        k = self.cores.vals[cid][0]
        name = self.chk.names[k]
        acts = self._event(core, kind, arg)
        if isinstance(acts, str):
            r = (-1, acts)
            self.tmemo[key] = r
            return r
        out = self._actions(acts)
        # sends only (the common case): the (link, message) appends, for the fast path
        app = tuple((self.msg_link[a[1]], a[1]) for a in out) \
            if all(a[0] == 0 for a in out) else None
        r = (self.encode(k, core), tuple(out), name, app)
        self.tmemo[key] = r
        return r

    def _event(self, core: EspNode, kind: int, arg: int) -> list | str:
        """Run event (kind, arg) on ``core`` (see :meth:`step`): its actions, or the text of
        the protocol violation it raised."""
        try:
            if kind == 0:
                return core.receive(self.msg_obj[arg], 0.0)
            if kind == 1:
                return core.attempts_finished(arg, 0.0)
            return core.submit(self.reqs.vals[arg], 0.0)
        except ProtocolViolation as exc:
            return f"protocol violation: {exc}"

    def _actions(self, acts: list, send: Callable | None = None) -> list[tuple]:
        """A core's actions as the engine's tuples: (0, message id) for a send (``send``
        rewrites the message first), (1, rid, peer) start, (2, rid) completed, (3, text) a
        problem."""
        out: list[tuple] = []
        for a in acts:
            if isinstance(a, Send):
                m = a.msg if send is None else send(a.msg)
                out.append((0, self._msg_id(m)))  # type: ignore[arg-type]
            elif isinstance(a, StartAttempts):
                out.append((1, a.request.rid, a.peer))
            elif isinstance(a, Completed):
                out.append((2, a.request.rid))
            elif isinstance(a, RemoteError):
                out.append((3, f"remote error: {a.reason}"))
            elif isinstance(a, (Expired, AbortAttempts)):
                out.append((3, f"unexpected {type(a).__name__} with abstract time: {a}"))
        return out

    def _start_half(self, w: list, rid: int, node: str, peer: str) -> bool:
        """``node``'s end of generation ``rid`` (with ``peer``) started in work state ``w``:
        True when both ends have, and the generation runs (invariant (1) checked)."""
        started = w[2] | {(rid, node)}
        w[2] = started
        if (rid, peer) not in started:
            return False
        run = w[3]
        for n in (node, peer):
            if any(x[1] == n for x in run):
                raise self.mc._Violation(f"invariant (1): {n} starts {rid} while in "
                                         f"another generation")
        w[2] = started - {(rid, node), (rid, peer)}
        w[3] = run | {(rid, node), (rid, peer)}
        return True

    def _finish(self, w: list, a: tuple) -> None:
        """Action (2, rid) completed: a second completion is a violation; (3, text) a problem."""
        if a[0] != 2:
            raise self.mc._Violation(a[1])
        if a[1] in w[4]:
            raise self.mc._Violation(f"request {a[1]} completed twice")
        w[4] = w[4] | {a[1]}

    def apply(self, w: list, k: int, kind: int, arg: int) -> None:
        """Fold one core event into the work state ``w`` (mutable; see :meth:`work`), as
        :meth:`hwctl.sim.modelcheck.Checker._apply` does."""
        _Violation = self.mc._Violation  # noqa: N806

        r = self.step(w[0][k], kind, arg)
        if r[0] < 0:
            raise _Violation(r[1])
        cid, acts, node, _ = r
        w[0][k] = cid
        chk = self.chk
        for a in acts:
            t = a[0]
            if t == 0:
                li = self.msg_link[a[1]]
                key = (w[1][li], a[1])
                q = self.qapp.get(key)
                if q is None:
                    q = self._qid(self.queues.vals[w[1][li]] + (a[1],))
                    self.qapp[key] = q
                w[1][li] = q
            elif t == 1:
                rid = a[1]
                if self._start_half(w, rid, node, a[2]):
                    if chk.streams:
                        w[6] = chk._started(w[6], rid)
                    if chk.timed:
                        w[7] = w[7] + (rid,)
            else:
                self._finish(w, a)

    def work(self, st: tuple) -> list:
        """A mutable copy of the decoded state: [core ids, queue ids, started, running, done,
        submitted, waiting, gens, the misc id and value it came from]."""
        b = self.n + self.nl
        mt = self.misc.vals[st[b]]  # (started, running, done, submitted, waiting, gens)
        return [list(st[:self.n]), list(st[self.n:b]), *mt, st[b], mt]

    def finish(self, w: list) -> tuple:
        """Canonicalise the work state and intern it: the flat tuple of ids. Fast path: a
        state is already canonical when every node's arrival numbers are 1..m (each core's own
        are, and every number carried by another core or a message is one of its owner's own)
        and every R_wake age is canonical for the live ages (its anchor is live)."""
        qid = self._qid
        cores = w[0]
        qids = w[1]
        cinfo = self.cinfo
        ok = False
        if not self.chk.streams:
            ok = self._cores_ok(tuple(cores), cores)
            if ok:
                qinfo = self.qinfo
                for i in qids:
                    for wk, wid in qinfo[i]:
                        if wid not in cinfo[cores[wk]][0]:
                            ok = False
                            break
        if not ok:
            qinfo = self.qinfo
            qrefs = tuple(r for i in qids for r in qinfo[i])
            sctx = None
            if self.chk.streams:
                sctx = (tuple(rid for rid, _ in w[6]), sum(w[5]))
            cores, ren, tkey = self._canon(list(cores), qrefs, sctx)
            if ren is not None or tkey is not None:
                mref, mrt, qv = self.msg_ref, self.msg_rt, self.queues.vals
                for li, i in enumerate(qids):
                    q = qv[i]
                    if any((mref[m] is not None and ren is not None
                            and ren[mref[m][0]] is not None)
                           or (tkey is not None and mrt[m] is not None) for m in q):
                        qids[li] = qid(tuple(self._ren_msg(m, ren or [None] * self.n, tkey)
                                             for m in q))
        mt = w[9]
        if (w[2] is mt[0] and w[3] is mt[1] and w[4] is mt[2] and w[5] is mt[3]
                and w[6] is mt[4] and w[7] is mt[5]):
            return (*cores, *qids, w[8])
        return (*cores, *qids, self.misc((w[2], w[3], w[4], w[5], w[6], w[7])))

    def _canonical(self, cores: list[int], qids: list[int], misc: int) -> tuple:
        """Static workload, shared sets unchanged (id ``misc``): the canonical state tuple."""
        ck = tuple(cores)
        ok = self._cores_ok(ck, cores)
        if ok:
            qinfo, cinfo = self.qinfo, self.cinfo
            for i in qids:
                for wk, wid in qinfo[i]:
                    if wid not in cinfo[cores[wk]][0]:
                        ok = False
                        break
            if ok:
                return (*ck, *qids, misc)
        mt = self.misc.vals[misc]
        return self.finish([cores, qids, *mt, misc, mt])

    def _cores_ok(self, ck: tuple, cores: list[int]) -> bool:
        """``_cores_canonical`` memoised on the core ids ``ck`` (a bounded cache)."""
        ok = self.okmemo.get(ck)
        if ok is None:
            ok = self._cores_canonical(cores)
            if len(self.okmemo) > 4_000_000:
                self.okmemo.clear()
            self.okmemo[ck] = ok
        return ok

    def _cores_canonical(self, cores: list[int]) -> bool:
        """Static workload: each core's own arrival numbers are 1..counter, every wake id a core
        owes is one of its waker's own, and every R_wake age's anchor is a live request age."""
        cinfo = self.cinfo
        ages = None
        for c in cores:
            ci = cinfo[c]
            if not ci[6]:
                return False
            for wk, wid in ci[2]:
                if wid not in cinfo[cores[wk]][0]:
                    return False
            if ci[8]:
                if ages is None:
                    ages = frozenset().union(*(cinfo[x][7] for x in cores))
                if not ages.issuperset(ci[8]):
                    return False
        return True

    def _qid(self, q: tuple) -> int:
        i = self.queues.ids.get(q)
        if i is None:
            tail = -1 if not q else self._qid(q[1:])  # interned first: ids stay aligned
            i = self.queues(q)
            self.qinfo.append(tuple(self.msg_ref[m] for m in q if self.msg_ref[m] is not None))
            self.qtail.append(tail)
        return i

    def _canon(self, cores: list[int], qrefs: tuple, sctx: tuple | None) -> tuple:
        n = self.n
        cinfo = self.cinfo
        # -- arrival numbers: rename each node's live ones to 1..m (as the old key's ranks)
        refs: list[list[int]] = [[] for _ in range(n)]
        for cid in cores:
            for wk, wid in cinfo[cid][2]:
                refs[wk].append(wid)
        for wk, wid in qrefs:
            refs[wk].append(wid)
        ren: list[tuple | None] = [None] * n
        renamed = False
        for k in range(n):
            info = cinfo[cores[k]]
            live = info[0]
            if refs[k]:
                live = live.union(refs[k])
            if len(live) != info[1]:
                ren[k] = tuple(sorted(live))
                renamed = True
        # -- R_wake ages: a canonical representative of their rank among the live request ages
        ages_ctx = None
        if any(cinfo[c][4] for c in cores):
            la: set = set()
            for c in cores:
                la.update(cinfo[c][3])
            lim = _INF_AGE
            if sctx is not None:  # younger than every live request, older than every later one
                lim = (sctx[1] - 0.5, 0)
            ages_ctx = (tuple(sorted(la)), lim)
        # -- streams: request times t renamed to their place in the submission order of the
        # requests not started (the old key's ``waiting``); started ones get t = -1 (never
        # compared again). Every later submission gets a larger t, as before.
        tkey = None if sctx is None else sctx[0]
        if renamed or ages_ctx is not None or tkey is not None:
            for k in range(n):
                cid = cores[k]
                info = cinfo[cid]
                own = ren[k]
                owed_ren = tuple((wk, ren[wk]) for wk, _ in info[2] if ren[wk] is not None) \
                    if renamed else ()
                actx = ages_ctx if info[4] else None
                tk = tkey if (info[5] or actx is not None) else None
                if own is None and not owed_ren and actx is None and tk is None:
                    continue
                key = (cid, own, owed_ren, actx, tk)
                nid = self.cmemo.get(key)
                if nid is None:
                    nid = self._canon_core(cid, own, owed_ren, actx, tk)
                    self.cmemo[key] = nid
                cores[k] = nid
        return tuple(cores), (tuple(ren) if renamed else None), tkey

    def _ren_msg(self, m: int, ren: list, tkey: tuple | None) -> int:
        r = self.msg_ref[m]
        live = None if r is None else ren[r[0]]
        tk = tkey if self.msg_rt[m] is not None else None
        if live is None and tk is None:
            return m
        key = (m, live, tk)
        nid = self.rmemo.get(key)
        if nid is None:
            old = self.msg_obj[m]
            rid = old.rid if live is None else bisect_left(live, old.rid) + 1
            req = old.request if tk is None else self._retime(old.request, tk)
            new = dataclasses.replace(old, rid=rid, request=req)  # link ids (robust) kept
            nid = self._msg_id(new)
            self.rmemo[key] = nid
        return nid

    @staticmethod
    def _retime(r: Any, tk: tuple | None) -> Any:
        if tk is None or r is None:
            return r
        t = float(tk.index(r.rid)) if r.rid in tk else -1.0
        if t == r.t:
            return r
        return Request(r.rid, r.initiator, r.remote, r.fidelity, r.pairs, t)

    def _canon_core(self, cid: int, own: tuple | None, owed_ren: tuple,
                    actx: tuple | None, tk: tuple | None) -> int:
        return self._core_id(self._canon_enc(cid, own, owed_ren, actx, tk))

    def _canon_enc(self, cid: int, own: tuple | None, owed_ren: tuple,
                   actx: tuple | None, tk: tuple | None) -> tuple:
        """The encoding of core ``cid`` with its arrival numbers renamed (``own``: its live ones
        in order; ``owed_ren``: (node, live ones) of the nodes whose numbers it holds), R_wake
        ages canonical for ``actx`` and streams times by ``tk``."""
        k, counter, qm, qr, sent, wake, sleep, lock, owed = self.cores.vals[cid][:9]
        rq = self.reqs.vals

        def rr(i: int) -> int:
            return i if i < 0 or tk is None else self.reqs(self._retime(rq[i], tk))

        def newage(age: tuple) -> tuple:  # a live request's age in the new times
            return age if tk is None else (float(tk.index(age[1])), age[1])

        def ra(a: int | None) -> int | None:
            if own is None or a is None:
                return a
            return bisect_left(own, a) + 1

        def rage(age: Any) -> Any:
            if actx is None or age is None:
                return age
            live, lim = actx
            i = bisect_left(live, age)
            if i < len(live):
                if live[i] == age:
                    return newage(age)
                t, rid = newage(live[i])
                return (t, rid - 0.5)
            return lim

        def ri(it: tuple | None) -> tuple | None:
            if it is None:
                return None
            return (ra(it[0]), rr(it[1]), it[2], it[3], rage(it[4]))

        def rl(lk: tuple | None) -> tuple | None:
            if lk is None:
                return None
            return (lk[0], rr(lk[1]), ra(lk[2]), lk[3], lk[4])

        wmap = dict(owed_ren)
        owed2 = tuple(sorted((w, bisect_left(wmap[self.k_of[w]], wid) + 1)
                             if self.k_of[w] in wmap else (w, wid) for w, wid in owed))
        enc = (k, counter if own is None else len(own),
               tuple(sorted(ri(i) for i in qm)),  # type: ignore[type-var]
               tuple((same, rl(lk)) for same, lk in qr),
               ri(sent), ri(wake), tuple(ri(i) for i in sleep), rl(lock), owed2)
        return enc

    # -- the search --------------------------------------------------------------------------

    def initial(self) -> tuple:
        chk = self.chk
        for n in chk.names:
            c = EspNode(n, {m: 1e-5 for m in chk.g.neighbors(n)}, fair=chk.fair)
            self.base.append(dict(c.__dict__))
        w: list = [[self.encode(k, self._blank(k)) for k in range(self.n)],
                   [self._qid(()) for _ in range(self.nl)], frozenset(), frozenset(),
                   frozenset(), tuple(0 for _ in chk.edges), (), (), -1, (None,) * 6]
        if chk.streams:
            for e in range(len(chk.reqs)):
                self._submit(w, e)
        elif not chk.arrivals:
            for row in chk.reqs:
                for r in row:
                    self.apply(w, self.k_of[r.initiator], 2, self.reqs(r))
            w[5] = tuple(len(row) for row in chk.reqs)
        return self.finish(w)

    def _blank(self, k: int) -> EspNode:
        c = object.__new__(EspNode)
        c.__dict__.update(self.base[k])
        c.q_main, c.q_ready, c.s_sleep, c.owed, c._dead = [], [], [], {}, set()
        c.s_sent = c.s_wake = c.lock = None
        c._arrival = 0
        return c

    def _submit(self, w: list, e: int) -> None:
        chk = self.chk
        n = w[5][e]
        r: Request = chk.reqs[e][n]
        if chk.streams:
            r = Request(r.rid, r.initiator, r.remote, r.fidelity, r.pairs, float(sum(w[5])))
        w[5] = w[5][:e] + (n + 1,) + w[5][e + 1:]
        if chk.streams:
            w[6] = w[6] + ((r.rid, 0),)
        self.apply(w, self.k_of[r.initiator], 2, self.reqs(r))

    def successors(self, st: tuple) -> list[tuple]:
        """The successors of ``st`` in the old checker's order (submissions, deliveries by
        link, then ends of generations)."""
        chk = self.chk
        n, nl = self.n, self.nl
        out: list[tuple] = []
        mv = self.misc.vals
        b = n + nl
        _, running, done, submitted, _, gens = mv[st[b]]
        for e, row in enumerate(chk.reqs):
            sn = submitted[e]
            if sn < len(row) and (not chk.streams or row[sn - 1].rid in done):
                w = self.work(st)
                self._submit(w, e)
                out.append(self.finish(w))
        qv = self.queues.vals
        any_msg = False
        tmemo, qtail, qapp, mdst = self.tmemo, self.qtail, self.qapp, self.msg_dst
        fast = not chk.streams
        for li in range(nl):
            qi = st[n + li]
            q = qv[qi]
            if q:
                any_msg = True
                m = q[0]
                k = mdst[m]
                r = tmemo.get((st[k], 0, m))
                if fast and r is not None and r[0] >= 0 and r[3] is not None:
                    # fast path: a delivery whose only actions are sends (no generation starts,
                    # completions or errors): the shared sets are unchanged
                    cores = list(st[:n])
                    cores[k] = r[0]
                    qids = list(st[n:b])
                    qids[li] = qtail[qi]
                    for lj, mm in r[3]:
                        key = (qids[lj], mm)
                        q2 = qapp.get(key)
                        if q2 is None:
                            q2 = self._qid(qv[qids[lj]] + (mm,))
                            qapp[key] = q2
                        qids[lj] = q2
                    out.append(self._canonical(cores, qids, st[b]))
                    continue
                w = self.work(st)
                w[1][li] = qtail[qi]
                self.apply(w, k, 0, m)
                out.append(self.finish(w))
        if chk.timed:
            if out or any_msg or not gens:
                return out
            rid = gens[0]
            w = self.work(st)
            w[7] = gens[1:]
            for node in sorted(nd for r, nd in running if r == rid):
                w[3] = w[3] - {(rid, node)}
                self.apply(w, self.k_of[node], 1, rid)
            out.append(self.finish(w))
            return out
        if chk.joint_finish:
            for rid in sorted({rid for rid, _ in running}):
                w = self.work(st)
                for node in sorted(nd for r, nd in running if r == rid):
                    w[3] = w[3] - {(rid, node)}
                    self.apply(w, self.k_of[node], 1, rid)
                out.append(self.finish(w))
            return out
        for rid, node in sorted(running):
            w = self.work(st)
            w[3] = w[3] - {(rid, node)}
            self.apply(w, self.k_of[node], 1, rid)
            out.append(self.finish(w))
        return out

    def terminal_problem(self, st: tuple) -> str:
        chk = self.chk
        done = self.misc.vals[st[self.n + self.nl]][2]
        if len(done) != chk.n_requests:
            return f"deadlock: {chk.n_requests - len(done)} request(s) never complete"
        for k in range(self.n):
            _, _, qm, qr, sent, wake, sleep, lock, _ = self.cores.vals[st[k]]
            if lock is not None or sent is not None or wake is not None or qm or qr or sleep:
                c = self.decode(st[k])
                return f"deadlock: {c.name} ends in {c.state.value} with queued work"
        return ""

    def to_state(self, st: tuple) -> Any:
        """The old checker's state for ``st`` (for ``describe`` and the cross-checks)."""
        _State = self.mc._State  # noqa: N806
        w = self.work(st)
        cores = tuple(self.decode(c) for c in w[0])
        chans = tuple(tuple(self.msg_obj[m] for m in self.queues.vals[q]) for q in w[1])
        return _State(cores, tuple(() for _ in cores), chans, frozenset(w[2]), frozenset(w[3]),
                      frozenset(w[4]), w[5], 0, 0, w[6], w[7])

    def run(self, max_states: int, name: str, progress: bool = False,
            deadline_s: float | None = None) -> Any:
        """Breadth-first search as :meth:`hwctl.sim.modelcheck.Checker.run`; ``deadline_s``
        stops it after that many seconds of wall time (then not exhaustive: the counts are
        those of the part explored, ``stopped`` says so)."""
        Result, _Violation = self.mc.Result, self.mc._Violation  # noqa: N806

        chk = self.chk
        res = Result(name, len(chk.reqs[0]) if chk.reqs else 0, chk.robust, chk.fair)
        t0 = time.perf_counter()
        pack, unpack = self.pack, self.unpack
        init = pack(*self.initial())
        seen: dict[bytes, int] = {init: 0}
        keys: list[bytes] = [init]
        parent = array("I", [0])
        frontier: deque[int] = deque([0])
        esrc = array("I")
        edst = array("I")
        good = array("I")
        cut = array("I")  # robust: states with a transition beyond the in-flight bound
        transitions = 0
        while frontier:
            sid = frontier.popleft()
            st = unpack(keys[sid])
            try:
                succ = self.successors(st)
            except _Violation as exc:
                res.violations += 1
                if not res.first_problem:
                    res.first_problem = str(exc)
                    res.trace = self._trace(parent, keys, sid)
                continue
            if self.pruned:
                cut.append(sid)
            if not succ:
                if self.pruned:  # only transitions beyond the in-flight bound: not terminal
                    continue
                res.terminal += 1
                p = self.terminal_problem(st)
                if p:
                    res.deadlocks += 1
                    res.first_problem = res.first_problem or p
                else:
                    good.append(sid)
                continue
            for s in succ:
                transitions += 1
                k = pack(*s)
                tid = seen.get(k)
                if tid is None:
                    tid = len(keys)
                    seen[k] = tid
                    keys.append(k)
                    parent.append(sid)
                    if deadline_s is not None and tid % 20_000 == 0 \
                            and time.perf_counter() - t0 > deadline_s:
                        res.complete = False
                        res.stopped = f"deadline {deadline_s:g} s, frontier {len(frontier):,d}"
                        frontier.clear()
                        break
                    if progress and tid % 500_000 == 0:
                        print(f"  {name}: {tid:,d} states, {transitions:,d} transitions, "
                              f"frontier {len(frontier):,d}, violations {res.violations}, "
                              f"deadlocks {res.deadlocks}, {time.perf_counter() - t0:.0f} s",
                              file=sys.stderr, flush=True)
                    if tid >= max_states:
                        res.complete = False
                        frontier.clear()
                        break
                    frontier.append(tid)
                esrc.append(sid)
                edst.append(tid)
        res.states = len(keys)
        res.transitions = transitions
        res.cut = len(cut)
        if chk.streams:
            res.worst_overtaken = chk.worst
        del seen
        if res.complete:
            # a cut state counts as able to complete (what lies beyond the bound is unexplored)
            res.traps = _traps(len(keys), esrc, edst, good + cut)
            if res.traps and not res.first_problem:
                res.first_problem = f"{res.traps} states from which no schedule completes"
        res.wall_s = time.perf_counter() - t0
        self.peak_keys = len(keys)
        return res

    def _trace(self, parent: array, keys: list[bytes], sid: int) -> list[str]:
        path = [sid]
        while sid:
            sid = parent[sid]
            path.append(sid)
        return [self.chk.describe(self.to_state(self.unpack(keys[s]))) for s in reversed(path)]


def _traps(n: int, esrc: array, edst: array, good: array) -> int:
    """States from which no path reaches a good terminal state: backward breadth-first search
    over the transition graph (numpy, level by level)."""
    import numpy as np

    if n == 0:
        return 0
    src = np.frombuffer(esrc, dtype=np.uint32)
    dst = np.frombuffer(edst, dtype=np.uint32)
    order = np.argsort(dst, kind="stable")
    srcs = src[order]
    indptr = np.searchsorted(dst[order], np.arange(n + 1, dtype=np.int64))
    del order
    ok = np.zeros(n, dtype=bool)
    front = np.unique(np.frombuffer(good, dtype=np.uint32).astype(np.int64))
    ok[front] = True
    while front.size:
        starts = indptr[front]
        lens = indptr[front + 1] - starts
        total = int(lens.sum())
        if total == 0:
            break
        # indices of every predecessor slot of the frontier, concatenated
        offs = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(total)
        p = srcs[offs].astype(np.int64)
        p = np.unique(p[~ok[p]])
        ok[p] = True
        front = p
    return int(n - ok.sum())
