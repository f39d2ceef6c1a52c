"""FPGA module tooling beyond ``hwctl synth``: formal proofs (``formal``), board support
(``boards``: pin maps, PLL, bitstreams, flashing) and the bring-up self-test (``selftest``).
The ``hwctl fpga`` command (``hwctl.fpga.cli``) exposes them."""
