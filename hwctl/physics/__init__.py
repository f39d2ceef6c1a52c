"""All physics of hwctl in one place: formulas, units and sources in each module's docstrings.

- :mod:`hwctl.physics.fibre`      light in fibre: propagation delay and attenuation
- :mod:`hwctl.physics.heralding`  single-click heralded entanglement (ESP paper II-B, Table IV)
- :mod:`hwctl.physics.memory`     memory decoherence, F(t), timeouts (pair-verification paper III)
- :mod:`hwctl.physics.loss`       loss budget -> arrival probability (pair-verification paper)
- :mod:`hwctl.physics.latency`    metro IP latency model (pair-verification paper)
- :mod:`hwctl.physics.bench`      bench settings (VOA dB, SNSPD bias) -> twin physics

Units: SI (seconds, metres, hertz) unless a name says otherwise (``_km``, ``_db``, ``_ns``).
"""
