"""Package layout that pyproject.toml cannot say: the FPGA RTL (fpga/rtl, kept where the HDL tools
and tests expect it) ships inside the wheel as the data package ``hwctl.rtl``, so ``hwctl synth``
works from an installed wheel. Everything else (metadata, dependencies, package data) is in
pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["hwctl*", "sim*", "firmware*"]), "hwctl.rtl"],
    package_dir={"hwctl.rtl": "fpga/rtl"},
)
