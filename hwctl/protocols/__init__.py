"""Sans-IO protocol cores (h11 / aioquic style).

Every core is a pure state machine: the caller passes events in (with the current time ``now`` in
seconds) and gets a list of actions back. Cores never read a clock, open a socket or start a thread;
a core that needs to act at a later time exposes ``get_timer()`` and expects ``handle_timer(now)``.
The network simulator (sim/), the node service (hwctl/node/) and the tests drive the same objects.

- :mod:`hwctl.protocols.base`          requests and the actions every scheduling core emits
- :mod:`hwctl.protocols.esp`           Eventual Synchronization Protocol (ESP paper §V)
- :mod:`hwctl.protocols.dqp`           centralized distributed-queue baseline (ESP paper §IV, §VI-D)
- :mod:`hwctl.protocols.verification`  pair verification (pair-verification paper §II-C)
"""
