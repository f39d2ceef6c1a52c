"""Package layout that pyproject.toml cannot say, with folders mapped into the hwctl namespace:

- the FPGA RTL, board files and formal harnesses (fpga/rtl, fpga/boards, fpga/formal, kept where
  the HDL tools and tests expect them) ship inside the wheel as the data packages ``hwctl.rtl``,
  ``hwctl.boards`` and ``hwctl.formal``, so ``hwctl synth``, ``hwctl fpga build`` and ``hwctl fpga
  prove`` work from an installed wheel (found through ``hwctl.synth.hdl_dir``);
- the network simulator and twin (sim/) and the board-side bridge (firmware/) are the packages
  ``hwctl.sim`` and ``hwctl.firmware``: a wheel installs no generic top-level ``sim`` or
  ``firmware`` (issue 19). In a source checkout ``hwctl/__init__.py`` maps the same two names to
  the folders, so a checkout on PYTHONPATH imports its own ones.

Everything else (metadata, dependencies, package data) is in pyproject.toml."""

from setuptools import find_packages, setup

HDL = ["hwctl.rtl", "hwctl.boards", "hwctl.formal"]
#: top-level folders of the repository -> their package inside hwctl
MAPPED = {"sim": "hwctl.sim", "firmware": "hwctl.firmware"}

setup(
    packages=[*find_packages(include=["hwctl", "hwctl.*"]), *HDL,
              *(f"hwctl.{p}" for p in find_packages(include=[f"{d}*" for d in MAPPED]))],
    package_dir={**{f"hwctl.{kind}": f"fpga/{kind}" for kind in ("rtl", "boards", "formal")},
                 **{pkg: folder for folder, pkg in MAPPED.items()}},
)
