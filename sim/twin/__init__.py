"""Software twin of the hwctl FPGA module.

- :mod:`hwctl.sim.twin.model`   sans-IO, cycle-level model (bytes in, bytes out, advance_to(cycle))
- :mod:`hwctl.sim.twin.header`  midpoint header bytes / line waveform for test benches
- :mod:`hwctl.sim.twin.station` sans-IO heralding station (docs/physical-layer.md section 2)
- :mod:`hwctl.sim.twin.lab`     node devices + stations of a topology on one clock, served on ptys
- :mod:`hwctl.sim.twin.serve`   drivers: virtual or real time, in-process, pseudo-terminal, ZeroMQ;
                          also the ``hwctl twin`` subcommand
"""

from hwctl.sim.twin.model import BLOCK, UART_CYCLES_PER_BYTE, TwinConfig, TwinModel, TxRecord

__all__ = ["BLOCK", "UART_CYCLES_PER_BYTE", "TwinConfig", "TwinModel", "TxRecord"]
