"""Fast engine of the model checker for robust mode (issue 15): reordering channels, losses,
duplications, retransmission timeouts and the in-flight bound, on the real robust cores.

The same search as :class:`hwctl.sim.modelcheck.Checker` with ``robust=True`` (the same events,
checks and counts; docs/reliability.md, "Robust mode in the model checker"), built on the fast
engine of :mod:`hwctl.sim.mcfast` (interned canonical cores, memoised core transitions, packed
states). What robust mode adds to the encoding:

- *a core* carries its :class:`~hwctl.protocols.reliable.Arq` state: per peer (sorted) the
  outgoing ``out_seq`` and the unacknowledged messages (interned, in id order), the incoming
  ``in_next`` and the reorder buffer (interned messages, in id order). Incarnations are all 0
  (no restarts in the checker) and timer deadlines are not state (a timeout resends every
  unacknowledged message, time is abstract);
- *the messages in flight* are one interned multiset (a sorted tuple of message ids);
- *floor renaming* (step 1 of the docs): every stream's ids are stored relative to its floor, the
  highest id its receiver acknowledged, so in a canonical state every floor is 0. Only a core
  that accepts a LINK_ACK raises a floor; its transition (memoised) returns the shift of each of
  its outgoing streams, and the global step applies it to the peer's incoming side (``in_next``,
  reorder buffer) and to the messages in flight on that stream: a data copy whose id falls to
  <= 0 and a LINK_ACK whose id falls below 0 become the stream's *stale token* (one interned
  message per stream and kind, so the multiset keeps their number; delivering a data token is a
  duplicate for the link layer, an ack token acknowledges nothing);
- *arrival numbers* are renamed as in paper mode, the wake ids carried by unacknowledged and
  buffered messages counting as live references like those in flight.

So the packed state is the old checker's key (:func:`hwctl.sim.modelcheck._state_key`): two states
merge exactly when their keys are equal. Deliveries are explored in the order of the interned
multiset (the old checker iterates a frozenset, in hash order); nothing else depends on it.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

from hwctl.protocols.base import (
    ProtocolViolation,
)
from hwctl.protocols.esp import EspMessage, EspNode, MsgType
from hwctl.protocols.reliable import Arq, ArqStats, _Link, _Out
from hwctl.sim.mcfast import FastEngine, _Intern

_ACK = MsgType.LINK_ACK


class RobustEngine(FastEngine):
    """Runs the robust-mode search of ``chk`` (a :class:`~hwctl.sim.modelcheck.Checker` built
    with ``robust=True``, static workload: every request submitted at t = 0)."""

    def __init__(self, chk: Any) -> None:
        super().__init__(chk)
        n = self.n
        self.pack = struct.Struct(f"<{n + 2}I").pack
        self.unpack = struct.Struct(f"<{n + 2}I").unpack
        self.flights = _Intern()  # multisets of messages in flight (sorted tuples of ids)
        self.flen: list[int] = []
        self.msg_tok: list[bool] = []  # a stale token (no content)
        self.tokens: dict[tuple[str, str, bool], int] = {}
        #: per node index: its peers' indices in the order of its Arq links (sorted names)
        self.peer_idx = [tuple(self.k_of[p] for p in sorted(chk.g.neighbors(name)))
                         for name in chk.names]
        #: per node index: peer index -> position in its Arq tuple
        self.pos = [{p: j for j, p in enumerate(ps)} for ps in self.peer_idx]
        self.shmemo: dict[tuple[int, int], int] = {}
        self.shcore: dict[tuple[int, int, int], int] = {}
        self.arq_base: list[dict] = []
        self.cfg = self.mc.MC_ROBUST
        self.loss_budget = chk.loss_budget
        self.dup_budget = chk.dup_budget
        self.inflight = chk.inflight

    @staticmethod
    def _supports(chk: Any) -> None:
        if not chk.robust or chk.por or chk.streams or chk.arrivals or chk.timed \
                or chk.joint_finish or chk.premature_timeouts:
            raise ValueError("the robust fast engine covers robust mode with every request "
                             "submitted at t = 0 (no --por/--streams/--arrivals/--timed)")

    # -- messages ----------------------------------------------------------------------------

    def _msg_id(self, m: EspMessage) -> int:
        i = self.msgs.ids.get((int(m.kind), m.src, m.dst, m.rid, -1 if m.request is None
                               else self.reqs(m.request), m.t_min, m.wake, m.seq, m.inc,
                               m.dinc))
        if i is not None:
            return i
        i = super()._msg_id(m)
        self.msg_tok.append(False)
        return i

    def _token(self, src: str, dst: str, ack: bool) -> int:
        """The stale token of stream src -> dst (data) or of its acknowledgements (``ack``:
        a LINK_ACK from ``src`` to ``dst``): a data copy with an id <= the floor (kind HELLO,
        id 0: a duplicate for the link layer, nothing for ESP) or an ack below the floor."""
        key = (src, dst, ack)
        t = self.tokens.get(key)
        if t is None:
            m = (EspMessage(_ACK, src, dst, -1) if ack
                 else EspMessage(MsgType.HELLO, src, dst, 0))
            t = self._msg_id(m)
            self.msg_tok[t] = True
            self.tokens[key] = t
        return t

    def _shift_msg(self, m: int, d: int) -> int:
        """Message ``m`` of a stream whose floor rose by ``d``."""
        key = (m, d)
        r = self.shmemo.get(key)
        if r is None:
            o = self.msg_obj[m]
            if o.kind == _ACK:
                r = (self._token(o.src, o.dst, True) if o.rid - d < 0
                     else self._msg_id(dataclasses.replace(o, rid=o.rid - d)))
            else:
                r = (self._token(o.src, o.dst, False) if o.seq - d <= 0
                     else self._msg_id(dataclasses.replace(o, seq=o.seq - d)))
            self.shmemo[key] = r
        return r

    # -- cores -------------------------------------------------------------------------------

    def encode(self, k: int, c: EspNode) -> int:
        if c._dead:
            raise ProtocolViolation("robust fast engine: an expired request in a core")
        assert c.arq is not None and c.arq.inc == 0
        links = []
        for _, ln in sorted(c.arq.links.items()):
            if ln.peer_inc != 0 or ln.in_key != (0, 0):
                raise ProtocolViolation("robust fast engine: a restarted peer")
            links.append((ln.out_seq, tuple(self._msg_id(ln.unacked[s].msg)
                                            for s in sorted(ln.unacked)),
                          ln.in_next, tuple(self._msg_id(ln.inbuf[s]) for s in sorted(ln.inbuf))))
        enc = (k, c._arrival,
               tuple(sorted(self._item(i) for i in c.q_main)),  # type: ignore[type-var]
               tuple((lk is c.lock, self._lock(lk)) for lk in c.q_ready),
               self._item(c.s_sent), self._item(c.s_wake),
               tuple(self._item(i) for i in c.s_sleep),
               None if c.lock is None else self._lock(c.lock),
               tuple(sorted(c.owed.items())), tuple(links))
        return self._core_id(enc)

    def _info(self, enc: tuple) -> tuple:
        info = super()._info(enc)
        extra = tuple(self.msg_ref[m] for ln in enc[9] for part in (ln[1], ln[3]) for m in part
                      if self.msg_ref[m] is not None)
        if extra:  # wake ids in the link buffers are live references, like those in flight
            info = (info[0], info[1], info[2] + extra, *info[3:])
        return info

    def _canon_enc(self, cid: int, own: tuple | None, owed_ren: tuple,
                   actx: tuple | None, tk: tuple | None) -> tuple:
        enc = super()._canon_enc(cid, own, owed_ren, actx, tk)
        links = self.cores.vals[cid][9]
        ren: list = [None] * self.n
        for wk, live in owed_ren:
            ren[wk] = live
        if own is not None:
            ren[enc[0]] = own
        if any(x is not None for x in ren):
            rm = self._ren_msg
            links = tuple((o, tuple(rm(m, ren, None) for m in un), i,
                           tuple(rm(m, ren, None) for m in ib)) for o, un, i, ib in links)
        return (*enc, links)

    def decode(self, cid: int) -> EspNode:
        c = super().decode(cid)
        enc = self.cores.vals[cid]
        k = enc[0]
        arq = object.__new__(Arq)
        arq.__dict__.update(self.arq_base[k])
        arq.stats = ArqStats()
        rto = self.cfg.rto
        mo = self.msg_obj
        arq.links = {
            self.chk.names[p]: _Link(0, o, {mo[m].seq: _Out(mo[m], rto, rto) for m in un},
                                     (0, 0), i, {mo[m].seq: mo[m] for m in ib})
            for p, (o, un, i, ib) in zip(self.peer_idx[k], enc[9], strict=True)}
        c.arq = arq
        return c

    def _shift_in(self, cid: int, src: int, d: int) -> int:
        """Core ``cid`` with its incoming stream from node ``src`` shifted by ``d`` (the
        sender's floor rose by ``d``)."""
        key = (cid, src, d)
        r = self.shcore.get(key)
        if r is None:
            enc = self.cores.vals[cid]
            j = self.pos[enc[0]][src]
            links = list(enc[9])
            o, un, i, ib = links[j]
            links[j] = (o, un, i - d, tuple(self._shift_msg(m, d) for m in ib))
            r = self._core_id((*enc[:9], tuple(links)))
            self.shcore[key] = r
        return r

    # -- transitions -------------------------------------------------------------------------

    def step(self, cid: int, kind: int, arg: int) -> tuple:
        """(new core id, actions, node name, floor shifts) of event (kind, arg) at core
        ``cid``: kind 0 receive message ``arg``, 1 attempts_finished(rid ``arg``), 2 submit
        request ``arg``; the core comes back with its own outgoing floors at 0 and the shifts
        ((peer index, d), ...) to apply elsewhere; memoised."""
        key = (cid, kind, arg)
        r = self.tmemo.get(key)
        if r is not None:
            return r
        core = self.decode(cid)
        k = self.cores.vals[cid][0]
        name = self.chk.names[k]
        acts = self._event(core, kind, arg)
        if isinstance(acts, str):
            r = (-1, acts)
            self.tmemo[key] = r
            return r
        shifts: dict[str, int] = {}
        assert core.arq is not None
        for p, ln in core.arq.links.items():
            d = (min(ln.unacked) - 1) if ln.unacked else ln.out_seq
            if d:
                shifts[p] = d
                ln.out_seq -= d
                ln.unacked = {s - d: _Out(dataclasses.replace(o.msg, seq=o.msg.seq - d),
                                          o.deadline, o.rto) for s, o in ln.unacked.items()}

        def send(m):  # the message's id on a stream whose floor moved
            if m.kind != _ACK and m.dst in shifts:
                return dataclasses.replace(m, seq=m.seq - shifts[m.dst])
            return m

        out = self._actions(acts, send)
        sh = tuple((self.k_of[p], d) for p, d in sorted(shifts.items()))
        r = (self.encode(k, core), tuple(out), name, sh)
        self.tmemo[key] = r
        return r

    def _apply_r(self, w: list, k: int, kind: int, arg: int) -> None:
        """Fold one core event into the work state ``w`` = [core ids, messages in flight (a
        list), started, running, done, submitted, loss, dup], as ``Checker._apply`` does."""
        _Violation = self.mc._Violation  # noqa: N806

        r = self.step(w[0][k], kind, arg)
        if r[0] < 0:
            raise _Violation(r[1])
        cid, acts, node, sh = r
        w[0][k] = cid
        fl = w[1]
        if sh:
            mo, tok = self.msg_obj, self.msg_tok
            for p, d in sh:
                w[0][p] = self._shift_in(w[0][p], k, d)
                src, dst = self.chk.names[k], self.chk.names[p]
                for i, m in enumerate(fl):
                    if tok[m]:
                        continue
                    o = mo[m]
                    if (o.src == src and o.dst == dst and o.kind != _ACK) or (
                            o.src == dst and o.dst == src and o.kind == _ACK):
                        fl[i] = self._shift_msg(m, d)
        for a in acts:
            t = a[0]
            if t == 0:
                if a[1] not in fl:  # a set of messages: an equal copy in flight is the same
                    fl.append(a[1])
            elif t == 1:
                self._start_half(w, a[1], node, a[2])
            else:
                self._finish(w, a)

    def _fid(self, fl: tuple) -> int:
        i = self.flights.ids.get(fl)
        if i is None:
            i = self.flights(fl)
            self.flen.append(len(fl))
        return i

    def _finish_r(self, w: list) -> tuple:
        """Canonicalise (arrival numbers, R_wake ages) and intern the work state."""
        cores = w[0]
        fl = w[1]
        cinfo, mref = self.cinfo, self.msg_ref
        ok = self._cores_ok(tuple(cores), cores)
        if ok:
            for m in fl:
                r = mref[m]
                if r is not None and r[1] not in cinfo[cores[r[0]]][0]:
                    ok = False
                    break
        if not ok:
            qrefs = tuple(mref[m] for m in fl if mref[m] is not None)
            cores, ren, _ = self._canon(list(cores), qrefs, None)
            if ren is not None:
                fl = [self._ren_msg(m, list(ren), None) for m in fl]
        return (*cores, self._fid(tuple(sorted(fl))),
                self.misc((w[2], w[3], w[4], w[5], w[6], w[7])))

    # -- the search --------------------------------------------------------------------------

    def initial(self) -> tuple:
        chk = self.chk
        for name in chk.names:
            c = EspNode(name, {m: self.mc.D for m in chk.g.neighbors(name)}, robust=self.cfg,
                        fair=chk.fair)
            self.base.append(dict(c.__dict__))
            assert c.arq is not None
            self.arq_base.append(dict(c.arq.__dict__))
        cores = [self.encode(k, EspNode(name, {m: self.mc.D for m in chk.g.neighbors(name)},
                                        robust=self.cfg, fair=chk.fair))
                 for k, name in enumerate(chk.names)]
        w: list = [cores, [], frozenset(), frozenset(), frozenset(), tuple(0 for _ in chk.edges),
                   0, 0]
        for row in chk.reqs:
            for r in row:
                self._apply_r(w, self.k_of[r.initiator], 2, self.reqs(r))
        w[5] = tuple(len(row) for row in chk.reqs)
        return self._finish_r(w)

    def successors(self, st: tuple) -> list[tuple]:
        """The successors of ``st`` in the old checker's order of kinds: per message in flight
        its delivery, duplication (delivery leaving a copy) and loss, then each node's
        retransmission timeout, then the ends of generations; those that would put more than
        ``inflight`` messages on the network are dropped (``pruned``)."""
        n = self.n
        fl = self.flights.vals[st[n]]
        misc = self.misc.vals[st[n + 1]]
        started, running, done, submitted, loss, dup = misc
        cores = st[:n]
        out: list[tuple] = []
        mdst = self.msg_dst
        for i, m in enumerate(fl):
            rest = fl[:i] + fl[i + 1:]
            k = mdst[m]
            w = [list(cores), list(rest), started, running, done, submitted, loss, dup]
            self._apply_r(w, k, 0, m)
            out.append(self._finish_r(w))
            if dup < self.dup_budget:
                w = [list(cores), list(fl), started, running, done, submitted, loss, dup + 1]
                self._apply_r(w, k, 0, m)
                out.append(self._finish_r(w))
            if loss < self.loss_budget:
                out.append(self._finish_r([list(cores), list(rest), started, running, done,
                                           submitted, loss + 1, dup]))
        if fl or any(self._has_unacked(c) for c in cores):
            flset = set(fl)
            for k in range(n):
                resend = self._timeout(st, k, fl, flset)
                if resend:
                    fl2 = tuple(sorted(fl + tuple(m for m in resend if m not in flset)))
                    out.append((*cores, self._fid(fl2), st[n + 1]))
        for rid, node in sorted(running):
            w = [list(cores), list(fl), started, running - {(rid, node)}, done, submitted, loss,
                 dup]
            self._apply_r(w, self.k_of[node], 1, rid)
            out.append(self._finish_r(w))
        self.pruned = False
        if self.inflight is not None:
            flen, lim = self.flen, self.inflight
            kept = [s for s in out if flen[s[n]] <= lim]
            self.pruned = len(kept) != len(out)
            out = kept
        return out

    def _has_unacked(self, cid: int) -> bool:
        return any(ln[1] for ln in self.cores.vals[cid][9])

    def _timeout(self, st: tuple, k: int, fl: tuple, flset: set) -> tuple:
        """Node ``k``'s unacknowledged messages if its retransmission timeout is an event (one
        of them is not in flight and is either undelivered or its ack is not in flight: a lost
        message or a lost ack), else ()."""
        cv, mo = self.cores.vals, self.msg_obj
        links = cv[st[k]][9]
        resend: list[int] = []
        missing = False
        name = self.chk.names[k]
        for j, p in enumerate(self.peer_idx[k]):
            un = links[j][1]
            if not un:
                continue
            resend.extend(un)
            if missing:
                continue
            _, _, in_next, ib = cv[st[p]][9][self.pos[p][k]]
            pname = self.chk.names[p]
            ack = max((mo[a].rid for a in fl if mo[a].kind == _ACK and mo[a].src == pname
                       and mo[a].dst == name), default=-1)
            ibs = {mo[x].seq for x in ib}
            for m in un:
                if m in flset:
                    continue
                seq = mo[m].seq
                if (seq >= in_next and seq not in ibs) or ack < seq:
                    missing = True
                    break
        return tuple(resend) if missing else ()

    def terminal_problem(self, st: tuple) -> str:
        return self.chk.terminal_problem(self.to_state(st))

    def to_state(self, st: tuple) -> Any:
        """The old checker's state for ``st`` (for ``describe`` and the terminal checks)."""
        _State = self.mc._State  # noqa: N806
        n = self.n
        cores = tuple(self.decode(c) for c in st[:n])
        started, running, done, submitted, loss, dup = self.misc.vals[st[n + 1]]
        chans = frozenset(self.msg_obj[m] for m in self.flights.vals[st[n]])
        return _State(cores, tuple(() for _ in cores), chans, started, running, done, submitted,
                      loss, dup)
