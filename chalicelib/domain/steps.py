"""Work that takes more than one invocation: the finalizer and the copier hash and move
an image in steps, each continuing where the previous one stopped.

A step's state (offset, hash states, the destination's multipart upload) is kept in
the image record; a step whose offset is not the recorded one is a duplicate or a
stale delivery and does nothing. The hashes resume from their saved state, and the
destination is a multipart upload whose parts survive between invocations, so that
the result is that of one pass.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import math
import time

from typing import Any, BinaryIO, Callable

from chalicelib.domain.ports import BlobTooLarge

CHUNK = 1 << 20
LOG = logging.getLogger(__name__)


def stale_step(work: str, image_id: str, chain: dict[str, Any], offset: int) -> bool:
    """Whether a step was delivered twice or late: its offset is not the chain's."""
    if chain['offset'] == offset:
        return False
    LOG.info('%s image %s: step at %d skipped, the chain is at %d',
             work, image_id, offset, chain['offset'])
    return True


def part_range(number: int, part_size: int, size: int) -> tuple[int, int]:
    """[start, end) of part `number` (from 1) of an object of `size` bytes."""
    return (number - 1) * part_size, min(number * part_size, size)


class ResumableChecksums:
    """MD5 and SHA-256 whose state survives between invocations: `state()` is a small
    JSON-able dict that `ResumableChecksums(state)` continues from (rehashes'
    serializable RustCrypto hashers; hashlib's OpenSSL state cannot be saved)."""

    def __init__(self, state: dict[str, str] | None = None):
        from rehashes import PyMd5, PySha256
        if state is None:
            self._md5, self._sha256 = PyMd5(), PySha256()
        else:
            self._md5 = PyMd5.deserialize(base64.b64decode(state['md5']))
            self._sha256 = PySha256.deserialize(base64.b64decode(state['sha256']))

    def update(self, chunk: bytes) -> None:
        self._md5.update(chunk)
        self._sha256.update(chunk)

    def state(self) -> dict[str, str]:
        return {'md5': base64.b64encode(self._md5.serialize()).decode(),
                'sha256': base64.b64encode(self._sha256.serialize()).decode()}

    def hexdigests(self) -> tuple[str, str]:
        """(md5, sha256) of every byte so far (the state itself stays resumable)."""
        copy = ResumableChecksums(self.state())
        return copy._md5.finalize(), copy._sha256.finalize()


class StepBudget:
    """How much one step may still read: at most GLANCE_STEP_BYTES, and only while
    more than GLANCE_STEP_RESERVE_SECONDS of the invocation remain (for the copy and
    the record; `deadline` is time.monotonic()'s, None outside Lambda)."""

    def __init__(self, step_bytes: int = 0, deadline: float | None = None):
        self.remaining: float = step_bytes or math.inf
        self._deadline = deadline

    @classmethod
    def of_invocation(cls, context: Any, step_bytes: int,
                      reserve_seconds: float) -> 'StepBudget':
        """The budget of a Lambda invocation (its context), or None's."""
        if context is None or not hasattr(context, 'get_remaining_time_in_millis'):
            return cls(step_bytes)
        return cls(step_bytes, time.monotonic()
                   + context.get_remaining_time_in_millis() / 1000.0 - reserve_seconds)

    def chunk(self, wanted: float) -> int:
        """Bytes to read next (0: the step is over)."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return 0
        return int(min(wanted, self.remaining))

    def spend(self, count: int) -> None:
        self.remaining -= count

    def covers(self, size: int) -> bool:
        """Whether one step can take `size` bytes (by bytes; time is checked as it goes)."""
        return size <= self.remaining


@dataclasses.dataclass(frozen=True)
class HashedBlob:
    """An object whose checksums were computed in steps (as storage's StoredBlob)."""
    location: str
    size: int
    md5: str
    sha256: str


def hash_stream(body: BinaryIO, start: int, size: int, checksums: ResumableChecksums,
                budget: StepBudget) -> int:
    """Read `body` (the object's bytes from `start`) into `checksums` as far as the
    budget allows, at least one chunk; -> the offset reached. A body that ends before
    `size` raises EOFError (the object is not the one that was checked)."""
    position = start
    try:
        while position < size:
            wanted = budget.chunk(min(CHUNK, size - position))
            if not wanted:
                if position > start:
                    break
                wanted = min(CHUNK, size - position)   # every step moves on
            chunk = body.read(wanted)
            if not chunk:
                raise EOFError(position)
            checksums.update(chunk)
            budget.spend(len(chunk))
            position += len(chunk)
    finally:
        body.close()
    return position


def _reread_part(body: BinaryIO, chain: dict[str, Any]) -> bytearray:
    """The bytes an earlier step read of the unfinished part, read again and checked."""
    part_start, offset = chain['part_start'], chain['offset']
    part = bytearray(body.read(offset - part_start)) if offset > part_start else bytearray()
    if len(part) != offset - part_start or (
            part and hashlib.sha256(part).hexdigest() != chain['partial_sha256']):
        raise SourceChanged('The external source changed during the copy: it no '
                            'longer sends the bytes it sent before.')
    return part


class SourceChanged(Exception):
    """A chained copy's source no longer sends the bytes an earlier step read."""


@dataclasses.dataclass(frozen=True)
class CopyProgress:
    """Where one step of a chained copy stopped: `offset` bytes hashed, the parts
    before `part_start` uploaded, the bytes [part_start, offset) to be read again by
    the next step (and checked against `partial_sha256`); `done` at the source's end."""
    offset: int
    part_start: int
    partial_sha256: str | None
    done: bool


def copy_stream(body: BinaryIO, chain: dict[str, Any], checksums: ResumableChecksums,
                budget: StepBudget, put_part: Callable[[int, bytes], None],
                size: int | None = None) -> CopyProgress:
    """One step of a chained copy: `body` is the source from chain['part_start'] on.
    The bytes an earlier step read of the unfinished part are read again and checked
    (SourceChanged); then the source is hashed on as far as the budget allows, each
    full part handed to put_part(number, data), and the last one at the end.

    A step never ends at the expected `size`, nor, when the size is unknown, on a part
    boundary: the next one always has a byte range to ask for. More than chain['limit'] bytes raise
    BlobTooLarge (the recorded size, the cap or the quota)."""
    part_size, limit = chain['part_size'], chain['limit']
    part_start, offset = chain['part_start'], chain['offset']
    try:
        part = _reread_part(body, chain)
        position, done = offset, False
        while True:
            wanted = max(budget.chunk(CHUNK), 0)   # overspent by the chunk past a boundary
            if not wanted:
                if position > offset and position != size and (part or size):
                    break
                wanted = CHUNK   # every step moves on (past a boundary if need be)
            chunk = body.read(min(wanted, part_size - len(part)))
            if not chunk:
                done = True
                break
            position += len(chunk)
            if position > limit:
                raise BlobTooLarge(position)
            checksums.update(chunk)
            budget.spend(len(chunk))
            part += chunk
            if len(part) == part_size:
                put_part(part_start // part_size + 1, bytes(part))
                part_start, part = part_start + part_size, bytearray()
        if done and part:
            put_part(part_start // part_size + 1, bytes(part))
    finally:
        body.close()
    return CopyProgress(position, part_start,
                        None if done or not part else hashlib.sha256(part).hexdigest(), done)
