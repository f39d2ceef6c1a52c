"""Package layout that pyproject.toml cannot say: the FPGA RTL, board files and formal harnesses
(fpga/rtl, fpga/boards, fpga/formal, kept where the HDL tools and tests expect them) ship inside
the wheel as the data packages ``hwctl.rtl``, ``hwctl.boards`` and ``hwctl.formal``, so ``hwctl
synth``, ``hwctl fpga build`` and ``hwctl fpga prove`` work from an installed wheel (found through
``hwctl.synth.hdl_dir``). Everything else (metadata, dependencies, package data) is in
pyproject.toml."""

from setuptools import find_packages, setup

HDL = ["hwctl.rtl", "hwctl.boards", "hwctl.formal"]

setup(
    packages=[*find_packages(include=["hwctl*", "sim*", "firmware*"]), *HDL],
    package_dir={f"hwctl.{kind}": f"fpga/{kind}" for kind in ("rtl", "boards", "formal")},
)
