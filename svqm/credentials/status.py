"""W3C Bitstring Status List: one bit per credential, gzipped and multibase-encoded.

An award's id is its index in each list (`revocation`, `suspension`). Lists have at least 131,072
bits (16 KiB) as the specification asks, so that fetching the list does not tell the issuer which
credential is being checked; they grow in whole bytes beyond that.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Iterable

PURPOSES = ("revocation", "suspension")
MIN_BITS = 131_072
# A list someone hands us is decompressed to at most this (a gzip bomb is refused, not inflated).
MAX_LIST_BYTES = 16 * 1024 * 1024


class StatusListError(ValueError):
    """An encoded list that cannot be read."""


def encode(flagged: Iterable[int]) -> str:
    """The `encodedList` with these indices set: multibase base64url ('u') of the gzipped bits."""
    indices = sorted(set(flagged))
    if indices and indices[0] < 0:
        raise ValueError("a status list index cannot be negative")
    size = max(MIN_BITS, ((indices[-1] // 8) + 1) * 8 if indices else 0)
    bits = bytearray(size // 8)
    for i in indices:
        # The first index is the left-most bit of the first byte.
        bits[i // 8] |= 0x80 >> (i % 8)
    packed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()


def decode(encoded: str) -> bytes:
    """The bitstring of an `encodedList` (multibase 'u' prefix optional, as in older drafts)."""
    text = encoded[1:] if encoded.startswith("u") else encoded
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        bits = inflater.decompress(packed, MAX_LIST_BYTES)
    except (ValueError, zlib.error) as exc:
        raise StatusListError(f"the status list is not gzipped base64url: {exc}") from None
    if inflater.unconsumed_tail:
        raise StatusListError("the status list is larger than this service reads")
    return bits


def is_set(bits: bytes, index: int) -> bool:
    """Whether the bit at `index` is 1; an index beyond the list is an error, not 'unset'."""
    if not 0 <= index < len(bits) * 8:
        raise StatusListError(f"index {index} is outside the list of {len(bits) * 8} bits")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))
