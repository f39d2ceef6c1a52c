"""CurveZMQ for every hwctl ZeroMQ socket: per-node key pairs, allowlists, identity = key.

- Keys: ``hwctl keys new NAME --dir keys/`` writes ``NAME.key`` (public, share it) and
  ``NAME.key_secret`` (secret, keep it on that machine) in ZeroMQ's certificate format.
- Servers (node listener, board bridge, served twin) run CURVE with their secret key and a ZAP
  handler (:class:`CurveServer`, pyzmq's ``ThreadAuthenticator`` on the server's own context)
  that admits exactly the public keys of an allowlist. A refused handshake delivers nothing to the
  application; refusals are counted.
- Every message a server receives carries the ZAP ``User-Id`` of its connection: the z85 public
  key. :meth:`CurveServer.peer_name` maps it to the name the allowlist gives that key, so a peer's
  identity is its key, never a name it claims in a message.
- Clients (node to node, host to bridge/twin) set their own key pair and the server's public key
  (:func:`secure_client`); a server whose key does not match never completes the handshake.

Without keys, servers stay plain but refuse to listen anywhere but loopback
(:func:`require_curve_off_loopback`): a LAN deployment needs keys (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass
from pathlib import Path

from hwctl.argtypes import is_loopback_endpoint
from hwctl.errors import UserError

#: ZAP domain of every hwctl server socket
ZAP_DOMAIN = b"hwctl"


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair (z85, 40 characters each)."""

    public: bytes
    secret: bytes


def generate(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` and ``NAME.key_secret`` in ``directory``; refuses to overwrite."""
    import zmq.auth

    d = Path(directory)
    pub, sec = d / f"{name}.key", d / f"{name}.key_secret"
    if pub.exists() or sec.exists():
        raise UserError(f"keys for {name!r} already exist in {str(d)!r} (not overwritten)")
    up = d.absolute()
    while not up.exists() and up != up.parent:
        up = up.parent
    if not up.is_dir():  # (mkdir says only "File exists" / "Not a directory")
        raise UserError(f"cannot write keys in {str(d)!r}: {str(up)!r} is a file, not a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
        p, s = zmq.auth.create_certificates(str(d), name)
        Path(s).chmod(0o600)
    except OSError as exc:
        raise UserError(f"cannot write keys in {str(d)!r}: {exc.strerror or exc}") from None
    return Path(p), Path(s)


def load_keypair(path: str | Path) -> KeyPair:
    """The key pair in a ``.key_secret`` file."""
    import zmq.auth

    _exists(path, "key file")
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read key file {str(path)!r}: {exc}") from None
    if not secret:
        raise UserError(f"{str(path)!r} holds no secret key (use the .key_secret file)")
    return KeyPair(_z85(public, path), _z85(secret, path))


def load_public(spec: str | Path) -> bytes:
    """A public key: its 40-character z85 text, or a ``.key`` / ``.key_secret`` file."""
    import zmq.auth

    text = str(spec)
    if len(text) == 40 and not Path(text).exists():
        return _z85(text.encode(), "public key")
    _exists(text, "public key")
    try:
        public, _ = zmq.auth.load_certificate(text)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read public key {text!r}: {exc}") from None
    return _z85(public, text)


def _exists(path: str | Path, what: str) -> None:
    """pyzmq says 'Invalid certificate file' of a file that is not there: say what it is."""
    if not Path(path).exists():
        raise UserError(f"cannot read {what} {str(path)!r}: no such file (`hwctl keys new NAME "
                        "--dir DIR` makes NAME.key and NAME.key_secret)")


def load_allowlist(spec: str | Path | dict[str, str]) -> dict[bytes, str]:
    """Allowed public keys -> peer name: a mapping ``{name: key or key file}`` or a directory of
    ``NAME.key`` files (the name is the file's stem). Two names for one key are refused."""
    if isinstance(spec, dict):
        items = [(name, load_public(k)) for name, k in spec.items()]
    else:
        d = Path(spec)
        if not d.is_dir():
            raise UserError(f"allowlist {str(d)!r} is not a directory of NAME.key files")
        items = [(p.stem, load_public(p)) for p in sorted(d.glob("*.key"))]
    allow: dict[bytes, str] = {}
    for name, key in items:
        if key in allow and allow[key] != name:
            raise UserError(f"one public key is listed for both {allow[key]!r} and {name!r}")
        allow[key] = name
    if not allow:
        raise UserError(f"allowlist {spec!r} lists no key")
    return allow


def _z85(key: bytes | str, where: object) -> bytes:
    import zmq

    k = key.encode() if isinstance(key, str) else key
    try:
        if len(k) != 40 or len(zmq.utils.z85.decode(k)) != 32:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{where}: not a CURVE key (40 z85 characters)") from None
    return k


class CurveServer:
    """CURVE + ZAP allowlist for the server sockets of one context (module docstring)."""

    def __init__(self, ctx, keys: KeyPair, allow: dict[bytes, str]) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        self.keys = keys
        self.allow = dict(allow)
        self.refused = 0
        self.admitted = 0
        self._lock = threading.Lock()
        self._auth = ThreadAuthenticator(ctx)
        self._auth.start()
        self._auth.configure_curve_callback(ZAP_DOMAIN.decode(), self)

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP: admit exactly the allowlisted keys (called in the authenticator's thread)."""
        ok = domain == ZAP_DOMAIN.decode() and key in self.allow
        with self._lock:
            if ok:
                self.admitted += 1
            else:
                self.refused += 1
        return ok

    def secure(self, sock) -> None:
        """Make ``sock`` (before bind) a CURVE server in the hwctl ZAP domain."""
        sock.zap_domain = ZAP_DOMAIN
        sock.curve_secretkey = self.keys.secret
        sock.curve_publickey = self.keys.public
        sock.curve_server = True

    def peer_name(self, user_id: str | bytes | None) -> str | None:
        """The allowlist's name for the key a message came with (None: not an admitted key)."""
        if user_id is None:
            return None
        k = user_id.encode() if isinstance(user_id, str) else user_id
        return self.allow.get(k)

    def stop(self) -> None:
        self._auth.stop()


def secure_client(sock, keys: KeyPair, server_public: bytes) -> None:
    """Make ``sock`` (before connect) a CURVE client of the server with key ``server_public``."""
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_serverkey = server_public


def require_curve_off_loopback(endpoint: str, secured: bool, what: str) -> None:
    """Plain (unauthenticated) sockets only on loopback: anything else needs keys."""
    if not secured and not is_loopback_endpoint(endpoint):
        raise UserError(f"{what} {endpoint!r} is not a loopback address: a LAN endpoint needs "
                        "CurveZMQ keys (--key and --allow; see docs/reliability.md)")


def user_id(frame) -> str | None:
    """The ZAP User-Id (z85 public key) of a received ``zmq.Frame``, None on a plain socket."""
    try:
        return frame.get("User-Id")
    except Exception:  # no ZAP metadata on this connection
        return None


def add_curve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", metavar="FILE",
                        help="this server's secret key (NAME.key_secret from `hwctl keys new`): "
                             "CurveZMQ on; needs --allow")
    parser.add_argument("--allow", metavar="DIR",
                        help="directory of the clients' public keys (NAME.key) allowed to connect")


def curve_from_args(args: argparse.Namespace) -> tuple[KeyPair | None, dict[bytes, str] | None]:
    if (args.key is None) != (args.allow is None):
        raise UserError("--key and --allow go together (CurveZMQ needs both)")
    if args.key is None:
        return None, None
    return load_keypair(args.key), load_allowlist(args.allow)
