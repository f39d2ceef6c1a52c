"""hwctl: hardware-in-the-loop controller for quantum-network labs."""

__version__ = "0.1.0"
