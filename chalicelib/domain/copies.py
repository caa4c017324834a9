"""External sources (v1 §7 step 5): registering a location or a copy-from URL, and the
background copies into the bucket, two separate paths on one copier:

- copy-from (CopyFrom): queued -> saving -> active with the source's bytes, or killed;
- the cache of a large location (LocationCache): the image stays active on its URL,
  and its downloads are redirected to the bucket's copy once it is made (or answer
  502 with the recorded fault).

A source larger than one invocation copies is copied in chained steps (the Copier):
the state (offset, hash states, the multipart upload to images/<id>) is kept in
pending_upload (mode copy), so that delete and the reaper abort it.
"""
from __future__ import annotations

import io
import logging
import datetime
from typing import Any

from chalicelib.domain import image_meta as im
from chalicelib.domain.errors import Conflict, Invalid, NotFound, Unavailable
from chalicelib.domain.ports import (Background, BlobMissing, BlobStore, BlobStoreError,
                                     BlobTooLarge, CatalogUnavailable, DomainSettings,
                                     ImageRecord, SourceNotFound, SourceReader,
                                     SourceRefused, SourceUnavailable, StoredBlob)
from chalicelib.domain.records import (ImageRecords, abort_upload, activated,
                                       bucket_location, discard, integrity_fault, replaced,
                                       require_formats)
from chalicelib.domain.steps import (CopyProgress, HashedBlob, ResumableChecksums,
                                     SourceChanged, StepBudget, copy_stream, stale_step)

LOG = logging.getLogger(__name__)
COPY = 'copy'                      # pending_upload['mode'] of a chained copy
COPY_IMAGE, CACHE_IMAGE = 'copy_image', 'cache_image'
Source = tuple[str, str]           # ('location' or 'copy_from', url)
Chain = dict[str, Any]
SOURCE_FAILURES = (SourceNotFound, SourceUnavailable, SourceRefused)


def copy_chain(image: ImageRecord | None, job: str) -> Chain | None:
    """The chained copy `job` the image holds (its pending_upload), or None."""
    pending = (image or {}).get('pending_upload') or {}
    if image is None or pending.get('mode') != COPY or pending.get('job') != job \
            or image['deleted']:
        return None
    return pending


def still_located(image: ImageRecord, url: str) -> bool:
    """Whether a location's cache may still be made (or kept): the image still names
    `url` and holds data."""
    return (image['location'] == url and not image['deleted']
            and image['status'] in (im.ACTIVE, im.DEACTIVATED))


class ExternalSources:
    """A location or copy-from URL given with a create or an update: checked before
    anything is stored, then attached (the copy or the cache asked for)."""

    def __init__(self, records: ImageRecords, sources: SourceReader,
                 background: Background, settings: DomainSettings):
        self.records, self.sources = records, sources
        self.background, self.settings = background, settings

    def size_of(self, source: Source | None, meta: dict[str, Any]) -> int | None:
        """Refuse a source the service must not read, and ask the size it reports
        (not for a copy-from that declares one)."""
        if source is None:
            return None
        kind, url = source
        try:
            if kind == 'copy_from' and meta.get('size'):
                self.sources.check(url)
                return None
            return self.sources.size_of(url)
        except SourceRefused as error:
            raise Invalid(str(error)) from None
        except SourceNotFound as error:
            raise NotFound(str(error)) from None
        except SourceUnavailable:
            raise Unavailable('The external source could not be read.') from None

    def attach(self, image: ImageRecord, meta: dict[str, Any], source: Source,
               remote_size: int | None) -> ImageRecord:
        kind, url = source
        if kind == 'copy_from':
            self.background(COPY_IMAGE, image['id'], url)
            return image
        require_formats(image)
        declared = meta.get('size')
        if declared and remote_size and declared != remote_size:
            raise Conflict('Provided image size must match the stored image size. '
                           '(provided size: %d, stored size: %d)' % (declared, remote_size))

        def activate(current_image: ImageRecord) -> ImageRecord:
            if current_image['status'] != im.QUEUED:
                raise Conflict('Cannot upload to an unqueued image')
            return replaced(current_image, status=im.ACTIVE, location=url,
                            size=declared or remote_size or 0, updated_at=im.now_string())
        image = self.records.change(image['id'], activate)
        if image['size'] > self.settings.inline_download_limit:
            self.background(CACHE_IMAGE, image['id'], url)
        return image


class Copier:
    """Streams an external source into the image's object: at once when one invocation
    can, else in chained steps, each continuing where the previous one stopped."""

    def __init__(self, records: ImageRecords, blobs: BlobStore, sources: SourceReader,
                 background: Background, settings: DomainSettings):
        self.records, self.blobs, self.sources = records, blobs, sources
        self.background, self.settings = background, settings

    def budget(self, budget: StepBudget | None) -> StepBudget:
        return budget or StepBudget(self.settings.step_bytes)

    # -- at once ---------------------------------------------------------------------
    def copy_once(self, image: ImageRecord, url: str) -> tuple[StoredBlob | None, str | None]:
        """Stream `url` into the image's object, stopping past its recorded size (if it
        has one), the size cap or the owner's remaining quota: (blob, None) when the
        bytes can be the image's, else (None, why) with nothing left in the bucket."""
        limit = self.records.storage_limit(image)
        try:
            stream = self.sources.open(url)
            try:
                blob = self.blobs.put(image['id'], stream, limit)
            finally:
                stream.close()
        except BlobTooLarge:
            return None, 'The external source sent more than %d bytes.' % limit
        except SOURCE_FAILURES as error:
            return None, str(error)
        except BlobStoreError:
            discard(self.blobs, self.blobs.key_for(image['id']))
            return None, 'The image store is unavailable.'
        fault = integrity_fault(image, blob.size, blob.md5)
        if fault:
            discard(self.blobs, blob.location)
            return None, fault
        return blob, None

    def keep(self, image_id: str, blob: StoredBlob | None, finish: Any) -> ImageRecord | None:
        """Record a copy; its object goes if the image changed meanwhile (deleted, or
        another location): no bytes without a record pointing at them."""
        try:
            return self.records.change(image_id, finish)
        except (Conflict, NotFound, CatalogUnavailable):
            if blob is not None:
                discard(self.blobs, blob.location)
            return None

    # -- in chained steps: one per invocation ------------------------------------------
    def start_chain(self, image: ImageRecord, url: str, budget: StepBudget,
                    path: CopyPath) -> ImageRecord | None:
        """Record a chained copy in the image (a multipart upload to its key, an empty
        hash state) where the path allows it, and take the first step."""
        chain = self._new_chain(image, path.job)

        def start(current_image: ImageRecord) -> ImageRecord:
            begun = path.begins(current_image, url)
            if begun is None:
                raise Conflict('another delivery started it, or the image changed')
            return replaced(begun, pending_upload=chain)
        try:
            self.records.change(image['id'], start)
        except (Conflict, NotFound, CatalogUnavailable) as error:
            abort_upload(self.blobs, chain)
            if isinstance(error, CatalogUnavailable):
                raise
            return None
        LOG.info('copying %s into image %s in steps of %s bytes', path.job, image['id'],
                 budget.remaining)
        return self.step(image['id'], url, 0, budget, path)

    def _new_chain(self, image: ImageRecord, job: str) -> Chain:
        location, limit = self.blobs.key_for(image['id']), self.records.storage_limit(image)
        expires = im.utcnow() + datetime.timedelta(seconds=self.settings.upload_timeout)
        return {'mode': COPY, 'job': job, 'key': location,
                'upload_id': self.blobs.create_multipart(location),
                'part_size': self.blobs.limits.part_size_for(
                    image['size'] or limit, self.settings.upload_part_size),
                'limit': limit, 'offset': 0, 'part_start': 0, 'partial_sha256': None,
                'checksums': ResumableChecksums().state(),
                'started_at': im.now_string(), 'expires_at': im.format_time(expires)}

    def step(self, image_id: str, url: str, offset: int, budget: StepBudget | None,
             path: CopyPath) -> ImageRecord | None:
        """One step of a chained copy: read the source from the start of the unfinished
        part (a Range request after the first step), upload each full part, record the
        state and hand on; at the end, check, assemble and record. A step whose offset
        is not the recorded one (delivered twice, stale) does nothing; a failure of the
        store propagates, so that the step is delivered again."""
        image = self.records.get(image_id)
        chain = copy_chain(image, path.job) if image else None
        if image is None or chain is None:
            return None   # deleted, failed or finished: the chain is over
        if stale_step('copying', image_id, chain, offset):
            return image
        checksums = ResumableChecksums(chain['checksums'])
        # a delivery of the last step that assembled the copy and then failed to record
        # it: the source is hashed again, its parts are not uploaded again
        assembled = [True] if self.blobs.size_of(chain['key']) is not None else []
        try:
            progress = self._copy_parts(image, url, chain, checksums, self.budget(budget),
                                        assembled)
        except BlobTooLarge:
            return self._end_chain(image_id, chain, 'The external source sent more '
                                   'than %d bytes.' % chain['limit'], path)
        except SOURCE_FAILURES + (SourceChanged,) as error:
            return self._end_chain(image_id, chain, str(error), path)
        except BlobMissing:
            return self._end_chain(image_id, chain, 'The image store lost the parts '
                                   'of the copy.', path)
        LOG.info('copying image %s: %d to %d%s', image_id, offset, progress.offset,
                 ' (the end)' if progress.done else '')
        if not progress.done:
            return self._hand_on(image_id, url, chain, progress, checksums)
        return self._finish_chain(image, chain, progress, checksums, bool(assembled), path)

    def _copy_parts(self, image: ImageRecord, url: str, chain: Chain,
                    checksums: ResumableChecksums, budget: StepBudget,
                    assembled: list) -> CopyProgress:
        def put_part(number: int, data: bytes) -> None:
            if assembled:
                return
            try:
                self.blobs.upload_part(chain['key'], chain['upload_id'], number, data)
            except BlobMissing:
                if self.blobs.size_of(chain['key']) is None:
                    raise   # aborted: the image was deleted, or the store lost the parts
                assembled.append(number)
        stream = self.sources.open(url, chain['part_start'] if chain['offset'] else None)
        return copy_stream(stream, chain, checksums, budget, put_part, image['size'] or None)

    def _finish_chain(self, image: ImageRecord, chain: Chain, progress: CopyProgress,
                      checksums: ResumableChecksums, assembled: bool,
                      path: CopyPath) -> ImageRecord | None:
        md5, sha256 = checksums.hexdigests()
        fault = integrity_fault(image, progress.offset, md5) or \
            self._assemble(image['id'], chain, progress.offset, assembled)
        if fault:
            return self._end_chain(image['id'], chain, fault, path)
        blob = HashedBlob(chain['key'], progress.offset, md5, sha256)

        def finish(current_image: ImageRecord) -> ImageRecord:
            if copy_chain(current_image, path.job) != chain:
                raise Conflict('the image changed')
            return replaced(path.recorded(current_image, blob), pending_upload=None)
        try:
            return self.records.change(image['id'], finish)
        except (Conflict, NotFound):
            current = self.records.get(image['id'])
            if current is not None and not current['deleted'] and blob.location in (
                    bucket_location(current), current.get('cached_location')):
                return current   # another delivery recorded it
            discard(self.blobs, blob.location)
            return None

    def _assemble(self, image_id: str, chain: Chain, size: int, assembled: bool) -> str | None:
        """Make the copy's object of its parts; -> why it cannot be, or None."""
        if not size:   # an empty source: no part to assemble
            abort_upload(self.blobs, chain)
            self.blobs.put(image_id, io.BytesIO(b''), 0)
        elif not assembled:
            try:
                self.blobs.complete_parts(chain['key'], chain['upload_id'])
            except BlobMissing:   # assembled by a delivery that failed afterwards
                if self.blobs.size_of(chain['key']) != size:
                    return 'The image store lost the parts of the copy.'
        return None

    def _hand_on(self, image_id: str, url: str, chain: Chain, progress: CopyProgress,
                 checksums: ResumableChecksums) -> ImageRecord | None:
        """Record the state a step reached (only over the one it started from) and ask
        for the next step; if that request fails the state is set back, so that this
        step, delivered again, is the one that continues."""
        advanced = dict(chain, offset=progress.offset, part_start=progress.part_start,
                        partial_sha256=progress.partial_sha256, checksums=checksums.state())
        try:
            image = self.records.change(image_id, _move_chain(chain, advanced))
        except (Conflict, NotFound):
            current = self.records.get(image_id)
            if (copy_chain(current, chain['job']) or {}).get('upload_id') != \
                    chain['upload_id']:
                abort_upload(self.blobs, chain)   # the image went: its parts go too
            return None   # else another delivery took this step
        except CatalogUnavailable:
            landed = self.records.get(image_id)   # the write may have landed
            if landed is None or copy_chain(landed, chain['job']) != advanced:
                raise
            image = landed
        try:
            self.background(chain['job'], image_id, url, progress.offset)
        except Exception:
            self.records.change(image_id, _move_chain(advanced, chain))
            raise
        return image

    def _end_chain(self, image_id: str, chain: Chain, fault: str,
                   path: CopyPath) -> ImageRecord | None:
        """A chained copy that cannot be the image's: its parts and object go, and the
        path records the failure."""
        LOG.warning('copying image %s failed: %s', image_id, fault)
        current = self.records.get(image_id)
        if copy_chain(current, chain['job']) != chain:
            return current   # moved on, recorded or gone: its parts are not ours to drop
        abort_upload(self.blobs, chain)   # first: a record never outlives what it points at
        discard(self.blobs, chain['key'])

        def fail(current_image: ImageRecord) -> ImageRecord | None:
            if copy_chain(current_image, chain['job']) != chain:
                return None
            return replaced(path.failed(current_image, fault), pending_upload=None)
        try:
            return self.records.change(image_id, fail)
        except (Conflict, NotFound):
            return None


def _move_chain(expected: Chain, new: Chain) -> Any:
    def change(current_image: ImageRecord) -> ImageRecord:
        if copy_chain(current_image, expected['job']) != expected:
            raise Conflict('the chain moved on')
        return replaced(current_image, pending_upload=new)
    return change


class CopyPath:
    """What both paths do with a copier's event: a step of their chain, or the start of
    a copy (at once when one invocation can, else a chain). They differ in what they
    record: `begins`, `recorded`, `failed`."""
    job = ''

    def __init__(self, records: ImageRecords, copier: Copier):
        self.records, self.copier = records, copier

    def run(self, image_id: str, url: str, offset: int = 0,
            budget: StepBudget | None = None) -> ImageRecord | None:
        image = self.records.get(image_id)
        if image is None or not self.wanted(image, url):
            return None
        if copy_chain(image, self.job):
            return self.copier.step(image_id, url, offset, budget, self)
        budget = self.copier.budget(budget)
        if offset or not self.may_start(image):
            return None
        if not image['size'] or not budget.covers(image['size']):
            return self.copier.start_chain(image, url, budget, self)
        return self.copy_at_once(image, url)

    def wanted(self, image: ImageRecord, url: str) -> bool:
        return True

    def may_start(self, image: ImageRecord) -> bool:
        return True

    def copy_at_once(self, image: ImageRecord, url: str) -> ImageRecord | None:
        raise NotImplementedError

    def begins(self, image: ImageRecord, url: str) -> ImageRecord | None:
        """The record as a chain starts, or None when it may not."""
        raise NotImplementedError

    def recorded(self, image: ImageRecord, blob: StoredBlob) -> ImageRecord:
        raise NotImplementedError

    def failed(self, image: ImageRecord, fault: str) -> ImageRecord:
        raise NotImplementedError


class CopyFrom(CopyPath):
    """The background half of copy-from: queued -> saving, the source streamed into
    the bucket, then active, or killed when the bytes cannot be the image's."""
    job = COPY_IMAGE

    def may_start(self, image: ImageRecord) -> bool:
        return image['status'] == im.QUEUED

    def copy_at_once(self, image: ImageRecord, url: str) -> ImageRecord | None:
        image_id = image['id']

        def start(current_image: ImageRecord) -> ImageRecord:
            if current_image['status'] != im.QUEUED:
                raise Conflict('not queued')
            return replaced(current_image, status=im.SAVING, updated_at=im.now_string())
        try:
            image = self.records.change(image_id, start)
        except (Conflict, NotFound):
            return None
        blob, fault = self.copier.copy_once(image, url)
        if blob is None:
            LOG.warning('copy-from of image %s failed: %s', image_id, fault)
            return self.records.kill(image_id)
        stored = blob

        def finish(current_image: ImageRecord) -> ImageRecord:
            if current_image['status'] != im.SAVING:
                raise Conflict('the image changed')
            return activated(current_image, stored)
        return self.copier.keep(image_id, blob, finish)

    def begins(self, image: ImageRecord, url: str) -> ImageRecord | None:
        if image['status'] != im.QUEUED or image['pending_upload']:
            return None
        return replaced(image, status=im.SAVING, updated_at=im.now_string())

    def recorded(self, image: ImageRecord, blob: StoredBlob) -> ImageRecord:
        return activated(image, blob)

    def failed(self, image: ImageRecord, fault: str) -> ImageRecord:
        return replaced(image, status=im.KILLED, updated_at=im.now_string())


class LocationCache(CopyPath):
    """The background copy of a large external location into the bucket, to which
    downloads are then redirected. Kept only if the bytes are the recorded size and
    match a checksum the client gave; otherwise the fault is recorded (502)."""
    job = CACHE_IMAGE

    def wanted(self, image: ImageRecord, url: str) -> bool:
        return still_located(image, url)

    def copy_at_once(self, image: ImageRecord, url: str) -> ImageRecord | None:
        blob, fault = self.copier.copy_once(image, url)
        if blob is None:
            LOG.warning('caching the location of image %s failed: %s', image['id'], fault)

        def finish(current_image: ImageRecord) -> ImageRecord:
            if not still_located(current_image, url):
                raise Conflict('the image changed')
            if blob is None:
                return self.failed(current_image, fault or '')
            return self.recorded(current_image, blob)
        return self.copier.keep(image['id'], blob, finish)

    def begins(self, image: ImageRecord, url: str) -> ImageRecord | None:
        if not still_located(image, url) or image['pending_upload'] or \
                image.get('cached_location'):
            return None
        return image

    def recorded(self, image: ImageRecord, blob: StoredBlob) -> ImageRecord:
        return replaced(image, cached_location=blob.location, source_fault=None)

    def failed(self, image: ImageRecord, fault: str) -> ImageRecord:
        return replaced(image, source_fault=fault)
