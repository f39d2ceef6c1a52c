"""``hwctl keys``: CurveZMQ key pairs for nodes, bridges and served twins.

    hwctl keys new A --dir keys/        # keys/A.key (public, share) + keys/A.key_secret (secret)
    hwctl keys show keys/A.key          # print the public key (z85), e.g. for a config allowlist

A node's identity on the network is its key (hwctl.transport.security): give each node, bridge
and served twin its own pair, put the peers' ``.key`` files (or their z85 text) in the allowlist
of whoever must accept them, and keep every ``.key_secret`` on its own machine (mode 0600).
"""

from __future__ import annotations

import argparse

from hwctl import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_cmd", metavar="ACTION", required=True)
    p = sub.add_parser("new", help="generate a key pair NAME.key / NAME.key_secret")
    p.add_argument("name", type=argtypes.check_name_arg, help="node (or bridge/twin) name")
    p.add_argument("--dir", default="keys", type=argtypes.out_path("--dir", directory=True),
                   help="directory for the key files (default ./keys)")
    p = sub.add_parser("show", help="print the public key of a .key or .key_secret file")
    p.add_argument("path", help="a NAME.key or NAME.key_secret file (from `hwctl keys new`)")


def run(args: argparse.Namespace) -> int:
    from hwctl.transport.security import generate, load_public

    if args.keys_cmd == "new":
        pub, sec = generate(args.dir, args.name)
        print(load_public(pub).decode())
        print(f"public key: {pub}\nsecret key: {sec} (keep it on this machine)")
    else:
        print(load_public(args.path).decode())
    return 0
