"""Node service: ESP (ESP paper §V) and pair verification (pair-verification paper §II-C2) driving
a device by URL, peers over ZeroMQ.

``hwctl node --config node.toml`` runs one node. The service is an asyncio driver around two
sans-IO cores, :class:`hwctl.protocols.esp.EspNode` and (optionally)
:class:`hwctl.protocols.verification.VerificationCore`. It feeds them requests (its own workload),
peer messages, device events and timer expiries, and carries out their actions:

- ESP ``Send``            -> ZeroMQ to the peer (one DEALER per neighbour, our ROUTER for incoming)
- ESP ``StartAttempts``   -> attempt schedules on the device, at *both* ends (see below)
- ESP ``Completed``       -> a result record (latency L = NL_finish - NL_start, ESP paper eq. (3))
- HEADER events           -> ``VerificationCore.handle_headers`` (runs decoded in bulk) or
  ``handle_header`` (single frames); the memory slot stays allocated
- ``SendToPartner``       -> ZeroMQ to the verification partner (same peer sockets as ESP)
- ``FreeSlots``           -> FREE_MASK commands of up to 240 slots (each slot freed exactly once,
  checked; a NAK falls back to FREE per slot)
- ``PairsVerified``       -> result rows (seq, slot, store/verify ticks, fidelity at verification)

Every ZeroMQ message is ``[kind, payload]``; ``kind`` tells the streams apart on one link:
``esp`` (an EspMessage), ``pl`` (physical-layer coordination, JSON) and ``vrf`` (a verification
partner message, :func:`hwctl.protocols.verification.encode_records`).

Time. Every node and device of a network counts one timebase (docs/physical-layer.md section 1):
node seconds are seconds since the shared epoch (:mod:`hwctl.timebase`, the system clock, so
separately started processes agree; across hosts the clocks must be disciplined: PTP, White
Rabbit), and the device counts cycles of the same reference. At start the service reads TIME: a
device already on the reference (the lab twin, a White Rabbit node) is used as it is; otherwise it
is set with TIME_SET; a device without TIME_SET (v2 RTL) gets a linear map from that TIME read
(:class:`DeviceClock`). ESP's ``t_min`` travels between nodes in shared seconds.

Physical layer, per request (docs/physical-layer.md section 5). On ``StartAttempts`` each end
sends one SCHEDULE_PAIRS(t_join, 2^32-1, period, pairs, port) to its device, ``t_join`` the first
point of the request's attempt grid (origin: t_min, sent by the initiator) that its command can
reach in time (:mod:`hwctl.pljoin`); the heralding station of the link (its own device) heralds
only attempts both ends fired and sends each herald to both ends, whose devices record the pairs
(PAIR events) until DONE(COMPLETE). Then the service tells ESP ``attempts_finished``. A LATE is
repaired by that end alone (it joins a later grid point). The two ends exchange
their pair lists once per request and count any mismatch in ``NodeCounters.disagree`` (must stay 0).

Config (TOML)::

    name = "A"
    listen = "tcp://127.0.0.1:6001"
    backend = "serial:///tmp/twinA"          # or twin://..., zmq+tcp://...
    duration = 30.0                          # seconds (omit: run until Ctrl-C)
    out = "results/A"                        # optional: write results/A/A.parquet (+ A.pairs.parquet)
    [peers.B]
    endpoint = "tcp://127.0.0.1:6002"
    length_m = 2000                          # fibre length of the link (control delay)
    port = 0                                 # herald port of this link on our device
                                             # (default: index of the peer in sorted names)
    [workload]                               # requests this node initiates (ESP §VI-B workload)
    fidelity = 0.75
    pairs = [1, 6]
    mean_backoff = 0.1                       # s, exponential between a completion and the next
    seed = 1
    rule = "node"                            # "node": this node initiates on each edge, one
                                             # request at a time; "edge": per edge one request at
                                             # a time, random initiator (the simulator's rule;
                                             # both ends need the same seed)
    [physical]
    period_cycles = 50                       # attempt period (500 ns, ESP Table IV)
    lead_s = 0.0005                          # least margin between now and the grid point an
                                             # end joins (the margin follows measured command
                                             # round trips above it, hwctl.pljoin)
    [verification]                           # optional: pair verification with one partner
    partner = "B"                            # one of [peers]; its device sees the same source
    memory = "nv"                            # Table I memory (short or full name)
    f_th = 0.81                              # fidelity threshold -> timeout (paper Eq. 1)
    skew_s = 0.0                             # partner's store time minus ours (s)
    report_interval_s = 0.001                # batching of ID reports
    [bench]                                  # optional: the node's instruments by VISA resource
    visa_library = "@sim"                    # (docs/instruments.md); or bench = "bench.toml";
    [bench.voa]                              # opened, set and snapshotted at start, snapshot in
    driver = "keysight-n7764a"               # the run's metadata ("instruments")
    resource = "TCPIP0::n7764a-0.bench::inst0::INSTR"
    attenuation_db = 3.0


The package, by part:

- :mod:`hwctl.node.config`    the config dataclasses (:class:`NodeConfig`), read from TOML;
  :mod:`hwctl.node.validate` checks every key, type and range first
- :mod:`hwctl.node.records`   :class:`RequestRecord` (one per request initiated) and :class:`NodeCounters`
- :mod:`hwctl.node.clock`     node time and :class:`DeviceClock` (the device clock map)
- :mod:`hwctl.node.service`   :class:`NodeService`: the ESP driver (workload, peer messages, timers)
- :mod:`hwctl.node.physical`  physical-layer rounds (one generation per request, the pair check)
- :mod:`hwctl.node.verify`    the verification driver (HEADERs, HDR_BLOCKs, slot frees)
- :mod:`hwctl.node.results`   result rows in the shared schema, :func:`write_results`
- :mod:`hwctl.node.robust`    robust mode's glue (message ids, acks, leases; docs/reliability.md)
- :mod:`hwctl.node.proc`      a node service in a process of its own (``hwctl demo``)
- :mod:`hwctl.node.cli`       ``hwctl node``: arguments, run, status lines, live view
- :mod:`hwctl.node.limits`    ZeroMQ message kinds and input limits
"""

from __future__ import annotations

from hwctl.node.cli import _report, _start_web, add_arguments, run
from hwctl.node.clock import DeviceClock
from hwctl.node.config import NodeConfig, PeerConfig, VerifyConfig
from hwctl.node.limits import (
    CLOCK_TOLERANCE_S,
    K_ESP,
    K_PL,
    K_VRF,
    MAX_CLOCK_GAP_S,
    MAX_MSG_BYTES,
    MAX_PENDING_RIDS,
    RX_BURST,
    RX_RATE,
    U32,
    UART_HEADER_LIMIT_HZ,
)
from hwctl.node.physical import PlAbort, PlMsg
from hwctl.node.records import NodeCounters, RequestRecord
from hwctl.node.results import (
    PAIR_COLUMNS,
    REQUEST_COLUMNS,
    code_version,
    requests_schema,
    schema_row,
    write_results,
)
from hwctl.node.service import NodeService

__all__ = [
    "CLOCK_TOLERANCE_S", "K_ESP", "K_PL", "K_VRF", "MAX_CLOCK_GAP_S", "MAX_MSG_BYTES",
    "MAX_PENDING_RIDS", "PAIR_COLUMNS", "REQUEST_COLUMNS", "RX_BURST", "RX_RATE", "U32",
    "UART_HEADER_LIMIT_HZ", "DeviceClock", "NodeConfig", "NodeCounters", "NodeService",
    "PeerConfig", "PlAbort", "PlMsg", "RequestRecord", "VerifyConfig", "_report", "_start_web",
    "add_arguments", "code_version", "requests_schema", "run", "schema_row", "write_results",
]
