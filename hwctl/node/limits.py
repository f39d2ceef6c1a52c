"""ZeroMQ message kinds between node services, the limits on what a peer may send, and the node's
other constants."""

#: ZeroMQ message kinds between node services (first frame)
K_ESP = b"esp"  # an EspMessage
K_PL = b"pl"  # physical-layer coordination, JSON (see NodeService._generate)
K_VRF = b"vrf"  # a verification-core partner message (bitmap records)
#: received-message limits per peer: sustained rate (messages/s) and burst
RX_RATE = 5000.0
RX_BURST = 10000.0
#: largest message a peer may send (bytes; ZeroMQ disconnects a peer sending more)
MAX_MSG_BYTES = 1 << 18
#: requests a peer may keep buffered here before we know them (early pl messages, pair lists)
MAX_PENDING_RIDS = 256
#: a time in a peer message further than this from our clock is refused (s)
MAX_CLOCK_GAP_S = 3600.0

U32 = 0xFFFF_FFFF
#: the HEADER frame is ~19 bytes on the wire: a 3 Mbaud UART carries at most ~16k HEADERs/s
UART_HEADER_LIMIT_HZ = 3_000_000 / 10 / 19
#: a device whose TIME is further than this from the shared reference is set with TIME_SET (s)
CLOCK_TOLERANCE_S = 1e-3
