"""Wire protocol between host and FPGA (or twin): one spec, generated constants, one codec."""

from hwctl.wire._spec import *  # noqa: F403
from hwctl.wire.codec import (  # noqa: F401
    FREE_MASK_BITS,
    Frame,
    FrameDecoder,
    FrameError,
    cobs_decode,
    cobs_encode,
    crc8,
    crc16,
    decode_body,
    encode,
    free_masks,
)
