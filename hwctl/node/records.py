"""What a node keeps of a run: one record per request it initiated, and its counters."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RequestRecord:
    """One request seen by its initiator; times in seconds on the node clock, heralds in cycles."""

    rid: int
    initiator: str
    remote: str
    pairs: int
    fidelity: float
    t_submit: float
    t_syn: float | None = None  # last SYN sent (earlier ones were rejected: SYNREJ / NACK)
    t_ack: float | None = None  # SYN -> SYNACK -> ACK done at the initiator
    t_min: float | None = None
    t_pl_start: float | None = None  # the later of the two ends' first join of the grid
    t_finish: float | None = None
    #: attempts both ends fired up to the last pair (from the later end's join): the simulator's
    #: ``attempts`` (hwctl.nodetiming.attempts_both)
    attempts: int = 0
    #: attempts the initiator's device fired (its DONE): also those before the remote joined and
    #: after the last pair
    fired: int = 0
    late: int = 0
    restarts: int = 0  # rounds restarted at both ends (a LATE at either end)
    disagree: int = 0  # pairs not held at both ends (checked once per request; must be 0)
    herald_ts: list[int] = field(default_factory=list)  # attempt cycle of each pair

    @property
    def latency(self) -> float | None:
        return None if self.t_finish is None else self.t_finish - self.t_submit


@dataclass
class NodeCounters:
    requests: int = 0
    completed: int = 0
    heralds: int = 0  # pairs recorded by this node's device (PAIR events, both roles)
    attempts: int = 0  # attempts fired by this node's device (both roles)
    schedules: int = 0  # SCHEDULE_PAIRS commands accepted by this node's device
    early_schedules: int = 0  # of those, sent at our SYNACK (remote end, hwctl.pljoin)
    early_aborted: int = 0  # early schedules aborted: the initiator answered NACK
    #: of ``schedules``, the initiator's written in the SYNACK callback (hwctl.node.physical
    #: ``_schedule_now``), and those aborted because their generation did not run
    schedules_now: int = 0
    schedules_now_aborted: int = 0
    generations: int = 0  # requests this node took part in at the physical layer (both roles)
    late: int = 0
    late_after_first: int = 0  # LATEs after this node's first generation (goal: 0)
    exhausted: int = 0  # schedules that ran out of attempts (re-joined)
    late_heralds: int = 0  # BAD_HERALD: heralds still in flight when a schedule ended (refused)
    device_errors: int = 0
    headers: int = 0
    no_slot: int = 0  # ERROR(NO_SLOT): a header came with every slot in use (qubit lost here)
    bad_headers: int = 0
    slots_freed: int = 0  # slots freed (acknowledged FREE_MASK / FREE commands)
    double_free: int = 0  # the core asked to free a slot that is not held (must stay 0)
    slot_conflicts: int = 0  # a HEADER gave a slot we still hold (must stay 0)
    #: slots freed at start / reconnect that HEADERs never received had taken (node/verify.py)
    slots_reclaimed: int = 0
    #: mid-run sweeps of the legacy pool after a HEADER was lost on the link (node/verify.py
    #: _slot_check): each turned HEADER_EN off for a few commands and reclaimed
    slot_sweeps: int = 0
    msgs_in: int = 0
    msgs_out: int = 0
    bad_msgs: int = 0
    #: messages dropped, by cause (docs/reliability.md): never handled, never fatal
    dropped: dict[str, int] = field(default_factory=dict)
    #: messages not sent per peer: the peer is down and its send queue (1000) is full
    send_dropped: dict[str, int] = field(default_factory=dict)
    stale_msgs: int = 0  # pl messages / events for a request or round no longer running here
    pair_checks: int = 0  # requests whose pair lists were compared with the other end
    disagree: int = 0  # pairs held at one end only (must stay 0)
    #: pair lists of a generation the other end did not finish (it failed there and the request
    #: ran again: compared with nothing, never with another generation's list)
    stale_pair_lists: int = 0
    #: pairs in those stale lists: one end finished the generation and holds them, the other's
    #: generation failed (e.g. "schedule lost" across a bridge or device restart) and never
    #: recorded them. Pairs held at one end only, like ``disagree``: must stay 0
    one_sided: int = 0

