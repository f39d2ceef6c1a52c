"""The node config (TOML, ``hwctl node --config``): its dataclasses, read and checked
(the strict key and type check is :mod:`hwctl.node.validate`; examples/node.toml shows every key)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hwctl.errors import UserError
from hwctl.node import robust as noderobust
from hwctl.node.devwait import DEVICE_WAIT_S
from hwctl.node.limits import U32
from hwctl.physics import memory as _memory
from hwctl.protocols.reliable import RobustConfig
from hwctl.protocols.verification import VerificationConfig
from hwctl.wire import CLOCK_HZ

if TYPE_CHECKING:
    from hwctl.instruments.bench import BenchConfig


@dataclass
class PeerConfig:
    name: str
    endpoint: str
    length_m: float = 2000.0
    port: int | None = None  # herald port on our device (None: index in sorted peer names)


@dataclass
class VerifyConfig:
    """``[verification]``: the partner node, the memory (paper Table I) and the threshold F_th."""

    partner: str
    memory: str = "nv"
    f_th: float = _memory.F_QKD
    skew_s: float = 0.0
    report_interval_s: float = 1e-3
    window_bits: int = 20
    #: block mode (wire v4, docs/header-path.md): HDR_BLOCK events, slot ring (hwctl.hdrpath)
    header_blocks: bool = False
    #: block mode: the application holds verified pairs this long (pinned), 0 = consumed at once
    hold_s: float = 0.0
    #: block mode: the source's pulse rate (first estimate of its period; refined from blocks)
    source_hz: float = 1.3e6
    #: legacy HEADER mode: the device's slot pool (RTL N_SLOTS, twin n_slots; not readable over
    #: the wire). At start the node frees the slots of HEADERs it never received; 0 = do not
    pool_slots: int = 8

    def memory_model(self) -> _memory.Memory:
        for m in _memory.TABLE_I:
            if self.memory in (m.short, m.name):
                return m
        raise UserError(f"[verification] memory {self.memory!r} is not in Table I; known: "
                        f"{', '.join(m.short for m in _memory.TABLE_I)}")

    def core_config(self, clock_hz: float = CLOCK_HZ) -> VerificationConfig:
        """Timeout from T1/T2 and F_th (paper Eq. 1, exact), report interval in device ticks."""
        return VerificationConfig.from_memory(
            self.memory_model(), self.f_th, clock_hz=clock_hz, skew_s=self.skew_s,
            report_interval_ticks=max(1, round(self.report_interval_s * clock_hz)),
            window_bits=self.window_bits, consume_on_verify=self.hold_s == 0)


@dataclass
class NodeConfig:
    name: str
    listen: str
    backend: str
    peers: list[PeerConfig]
    duration: float | None = None
    out: str | None = None
    #: how long the node waits at start for its device to answer (hwctl.node.devwait), s
    device_wait_s: float = DEVICE_WAIT_S
    fidelity: float = 0.75
    pairs: tuple[int, int] = (1, 6)
    mean_backoff: float = 0.1
    seed: int = 0
    workload: bool = True
    rule: str = "node"
    period_cycles: int = 50
    lead_s: float = 0.0005
    #: ``[physical] early_schedule``: the remote schedules its device at its SYNACK
    #: (docs/physical-layer.md section 5; HWCTL_EARLY_SCHEDULE=0/1 overrides it)
    early_schedule: bool = True
    #: ``peer_transport``: "stream" (plain TCP/Unix streams, hwctl.transport.peerstream) or
    #: "zmq" (ZeroMQ, as before the eleventh session); with [security] keys always ZeroMQ
    #: (CurveZMQ). Every node of a network must use the same (HWCTL_PEER_TRANSPORT overrides it)
    peer_transport: str = "stream"
    verification: VerifyConfig | None = None
    #: ``[security]``: our ``.key_secret`` and the peers' public keys (name -> key or key file,
    #: or a directory of NAME.key): CurveZMQ on the listener and to every peer
    key: str | None = None
    allow: dict[str, str] | str | None = None
    bench: BenchConfig | None = None  # [bench] / bench = "file": instruments (docs/instruments.md)
    robust: RobustConfig | None = None  # [robust]: ESP robust mode (hwctl.node.robust), off by default

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> NodeConfig:
        from hwctl.node.validate import check_node_dict

        check_node_dict(d, source)  # every key known, every value typed and in range
        try:
            wl = d.get("workload", {})
            ph = d.get("physical", {})
            vf = d.get("verification")
            peers = [PeerConfig(n, p["endpoint"], float(p.get("length_m", 2000.0)),
                                None if p.get("port") is None else int(p["port"]))
                     for n, p in d.get("peers", {}).items()]
            vcfg = None
            if vf is not None:
                vcfg = VerifyConfig(
                    partner=str(vf["partner"]), memory=str(vf.get("memory", "nv")),
                    f_th=float(vf.get("f_th", _memory.F_QKD)), skew_s=float(vf.get("skew_s", 0.0)),
                    report_interval_s=float(vf.get("report_interval_s", 1e-3)),
                    window_bits=int(vf.get("window_bits", 20)),
                    header_blocks=bool(vf.get("header_blocks", False)),
                    hold_s=float(vf.get("hold_s", 0.0)),
                    source_hz=float(vf.get("source_hz", 1.3e6)),
                    pool_slots=int(vf.get("pool_slots", 8)))
                if vcfg.hold_s and not vcfg.header_blocks:
                    raise ValueError("[verification] hold_s needs header_blocks = true")
            cfg = cls(
                name=str(d["name"]), listen=str(d["listen"]), backend=str(d["backend"]), peers=peers,
                duration=None if d.get("duration") is None else float(d["duration"]),
                out=d.get("out"),
                device_wait_s=float(d.get("device_wait_s", DEVICE_WAIT_S)),
                fidelity=float(wl.get("fidelity", 0.75)),
                pairs=tuple(int(x) for x in wl.get("pairs", (1, 6))),  # type: ignore[arg-type]
                mean_backoff=float(wl.get("mean_backoff", 0.1)), seed=int(wl.get("seed", 0)),
                workload=bool(wl.get("enabled", True)), rule=str(wl.get("rule", "node")),
                period_cycles=int(ph.get("period_cycles", 50)),
                lead_s=float(ph.get("lead_s", 0.0005)),
                early_schedule=bool(ph.get("early_schedule", True)),
                peer_transport=str(d.get("peer_transport", "stream")),
                verification=vcfg,
                key=d.get("security", {}).get("key"),
                allow=d.get("security", {}).get("allow"),
                robust=noderobust.from_table(d.get("robust")),
            )
        except KeyError as exc:
            raise UserError(f"{source}: missing key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise UserError(f"{source}: {exc}") from None
        if not cfg.peers:
            raise UserError(f"{source}: node {cfg.name!r} has no [peers]")
        if cfg.rule not in ("node", "edge"):
            raise UserError(f"{source}: workload.rule must be \"node\" or \"edge\"")
        if len(cfg.pairs) != 2 or not 1 <= cfg.pairs[0] <= cfg.pairs[1]:
            raise UserError(f"{source}: workload.pairs must be [min, max] with 1 <= min <= max")
        if not 2 <= cfg.period_cycles <= U32 or not 0 < cfg.lead_s <= 10:
            raise UserError(f"{source}: physical: need period_cycles in 2..2^32-1 and lead_s in (0, 10]")
        gone = sorted({"window_cycles", "margin_s"} & set(ph))
        if gone:
            raise UserError(f"{source}: physical: {', '.join(gone)} no longer exist (the window is "
                            "the station's; lead_s replaces the per-round margin)")
        if (cfg.key is None) != (cfg.allow is None):
            raise UserError(f"{source}: [security] needs both key and allow (or neither)")
        from hwctl.transport.security import (
            load_allowlist,
            load_keypair,
            require_curve_off_loopback,
        )

        if cfg.key is None:
            require_curve_off_loopback(cfg.listen, False, f"{source}: listen")
        else:  # read now: a missing or wrong key file is found before anything opens
            load_keypair(cfg.key)
            names = set(load_allowlist(cfg.allow).values())
            missing = sorted({p.name for p in cfg.peers} - names)
            if missing:
                raise UserError(f"{source}: [security] allow has no key for peer(s) "
                                f"{', '.join(missing)}")
        if any(p.port is not None and not 0 <= p.port <= 255 for p in cfg.peers):
            raise UserError(f"{source}: peers: port must be in 0..255")
        if vcfg is not None:
            if vcfg.partner not in {p.name for p in cfg.peers}:
                raise UserError(f"{source}: verification.partner {vcfg.partner!r} is not one of [peers]")
            if not 0.5 < vcfg.f_th < 1.0:
                raise UserError(f"{source}: verification.f_th must be in (0.5, 1)")
            if vcfg.report_interval_s <= 0:
                raise UserError(f"{source}: verification.report_interval_s must be > 0")
            try:
                vcfg.core_config()
            except ValueError as exc:
                raise UserError(f"{source}: verification: {exc}") from None
        if "bench" in d:  # bench_index fills {n} in a template bench's resource strings
            from hwctl.instruments.bench import BenchConfig

            idx = d.get("bench_index")
            if idx is not None and (isinstance(idx, bool) or not isinstance(idx, int) or idx < 0):
                raise UserError(f"{source}: bench_index must be an integer >= 0")
            cfg.bench = BenchConfig.from_node_config(source, d, index=idx)
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        try:
            with open(path, "rb") as f:
                d = tomllib.load(f)
        except FileNotFoundError:
            raise UserError(f"config file {str(path)!r} not found") from None
        except IsADirectoryError:
            raise UserError(f"config file {str(path)!r} is a directory, expected a TOML file "
                            "(e.g. examples/node.toml)") from None
        except OSError as exc:  # unreadable
            raise UserError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") \
                from None
        except UnicodeDecodeError:  # a binary file (tomllib reads UTF-8 text)
            raise UserError(f"{path}: not a TOML file (not UTF-8 text)") from None
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{path}: not valid TOML ({exc})") from None
        return cls.from_dict(d, str(path))

