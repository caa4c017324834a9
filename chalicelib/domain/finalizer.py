"""The finalizer and the reaper of presigned uploads. The finalizer, fed by the
bucket's ObjectCreated events, streams the object once for MD5 and SHA-256, checks
size, checksum, cap and quota, and activates or kills the image; an object larger
than one invocation hashes is finalized in chained steps (steps.py). Reservations
left unfinished are reaped."""
from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain import image_meta as im
from chalicelib.domain.copies import CACHE_IMAGE
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.ports import (Background, BlobMissing, BlobStore, BlobTooLarge,
                                     CatalogUnavailable, DomainSettings, ImageRecord,
                                     StoredBlob)
from chalicelib.domain.records import ImageRecords, activated, replaced
from chalicelib.domain.steps import (HashedBlob, ResumableChecksums, StepBudget,
                                     hash_stream, part_range, stale_step)
from chalicelib.domain.uploads import Upload, discard_upload

LOG = logging.getLogger(__name__)
Chain = dict[str, Any]       # pending_upload['finalizing'] of a chained finalization


class UploadFinalizer:
    def __init__(self, records: ImageRecords, blobs: BlobStore, background: Background,
                 settings: DomainSettings):
        self.records, self.blobs = records, blobs
        self.background, self.settings = background, settings

    def finalize(self, key: str, budget: StepBudget | None = None) -> ImageRecord | None:
        """Handle an ObjectCreated event for `key`: activate or kill, or start a chained
        finalization when the object is larger than one step takes. Idempotent."""
        image = self._saving(key)
        if image is None or image['pending_upload'].get('finalizing'):   # type: ignore[union-attr]
            return image   # nothing to keep, or a chain holds it already
        upload: Upload = image['pending_upload'] or {}
        remaining = self.records.remaining_quota(image)
        cap = self.settings.image_size_cap
        limit = cap if remaining is None else min(cap, remaining)
        budget = budget or StepBudget(self.settings.step_bytes)
        if not budget.covers(upload['size']):
            return self._start_chain(image, limit, budget)
        return self._verify(image['id'], key, upload, limit)

    def _saving(self, key: str) -> ImageRecord | None:
        """The image whose reservation `key` is, moved to `saving` (single PUTs complete
        by arriving); None when nothing may keep the object."""
        image_id = key[len(self.blobs.upload_key_for('')):]
        image = self.records.get(image_id)
        if image is None or image['status'] not in (im.QUEUED, im.SAVING) or \
                not image['pending_upload'] or image['pending_upload']['key'] != key:
            # a duplicate event, an upload reaped or aborted, or bytes sent to a URL
            # that outlived its reservation: nothing may keep them
            discard_upload(self.blobs, {'key': key})
            return None

        def start_saving(current_image: ImageRecord) -> ImageRecord | None:
            if current_image['status'] == im.QUEUED and current_image['pending_upload']:
                return replaced(current_image, status=im.SAVING, updated_at=im.now_string())
            return None
        image = self.records.change(image_id, start_saving)
        return image if image['status'] == im.SAVING else None

    def _verify(self, image_id: str, key: str, upload: Upload,
                limit: int) -> ImageRecord | None:
        """Hash the object in one go, check it, move it to the image's key, activate."""
        location, checked = self.blobs.key_for(image_id), key
        try:
            try:
                blob, etag = self.blobs.checksums(key, limit)
            except BlobMissing:
                # Another delivery moved it already, and may have failed to record
                # it: check the moved object and activate (the image is `saving`).
                checked = location
                blob, etag = self.blobs.checksums(location, limit)
        except BlobMissing:
            return self.records.kill(image_id, also={'pending_upload': None})
        except BlobTooLarge:
            return self._refuse(image_id, upload, checked)
        if blob.size != upload['size'] or (upload['checksum'] and
                                           upload['checksum'] != blob.md5):
            return self._refuse(image_id, upload, checked)
        if checked == key:
            try:
                location = self.blobs.promote(key, image_id, etag)
            except BlobMissing:   # overwritten or removed since it was verified
                return self._refuse(image_id, upload, key)
        # a BlobStoreError or CatalogUnavailable propagates: the event is kept and
        # delivered again
        return self._activate(image_id, blob, location)

    def _activate(self, image_id: str, blob: StoredBlob, location: str) -> ImageRecord:
        def activate(current_image: ImageRecord) -> ImageRecord | None:
            if current_image['status'] != im.SAVING:
                return None
            return replaced(activated(current_image, blob, location), pending_upload=None)
        image = self.records.change(image_id, activate)
        if image['status'] != im.ACTIVE:   # deleted meanwhile
            discard_upload(self.blobs, {'key': location})
        return image

    # -- chained finalization: one step per invocation ----------------------------------
    def _start_chain(self, image: ImageRecord, limit: int,
                     budget: StepBudget) -> ImageRecord | None:
        """Record the chain's start (the object's ETag, an empty hash state, the
        multipart copy to the image's key) and take its first step."""
        image_id, upload = image['id'], image['pending_upload'] or {}
        try:
            size, etag = self.blobs.head(upload['key'])
        except BlobMissing:
            return self.records.kill(image_id, also={'pending_upload': None})
        if size > limit or size != upload['size']:
            return self._refuse(image_id, upload, upload['key'])
        location = self.blobs.key_for(image_id)
        chain: Chain = {'offset': 0, 'etag': etag, 'copy_key': location,
                 'copy_id': self.blobs.create_multipart(location),
                 'part_size': self.blobs.limits.part_size_for(
                     size, self.settings.upload_part_size),
                 'checksums': ResumableChecksums().state()}

        def start(current_image: ImageRecord) -> ImageRecord:
            pending = current_image['pending_upload']
            if current_image['status'] != im.SAVING or not pending or \
                    pending['key'] != upload['key'] or pending.get('finalizing'):
                raise Conflict('another delivery started it')
            return replaced(current_image, pending_upload=dict(pending, finalizing=chain))
        try:
            self.records.change(image_id, start)
        except (Conflict, NotFound, CatalogUnavailable) as error:
            self.blobs.abort_multipart(location, chain['copy_id'])
            if isinstance(error, CatalogUnavailable):
                raise
            return None
        LOG.info('finalizing image %s in steps of %s bytes', image_id, budget.remaining)
        return self.finalize_step(image_id, 0, budget)

    def finalize_step(self, image_id: str, offset: int,
                      budget: StepBudget | None = None) -> ImageRecord | None:
        """One step of a chained finalization: hash the upload from `offset` as far as
        the budget allows, copy the parts that lie before the offset reached, then
        record the state and hand on, or assemble, check and activate at the end. A
        step whose offset is not the recorded one (delivered twice, stale) does nothing."""
        image = self.records.get(image_id)
        upload = (image or {}).get('pending_upload') or {}
        chain = upload.get('finalizing')
        if image is None or image['status'] != im.SAVING or not chain:
            return None   # deleted, refused or activated: the chain is over
        if stale_step('finalizing', image_id, chain, offset):
            return image
        checksums = ResumableChecksums(chain['checksums'])
        try:
            end, assembled = self._hash_and_copy(image_id, upload, chain, offset, checksums,
                                                 budget or StepBudget(self.settings.step_bytes))
        except (BlobMissing, EOFError):   # changed or removed since it was checked
            return self._refuse(image_id, upload, upload['key'])
        LOG.info('finalizing image %s: hashed %d to %d of %d', image_id, offset, end,
                 upload['size'])
        if end < upload['size']:
            return self._hand_on(image_id, chain, end, checksums)
        return self._complete_chain(image_id, upload, chain, checksums, assembled)

    def _hash_and_copy(self, image_id: str, upload: Upload, chain: Chain, offset: int,
                       checksums: ResumableChecksums, budget: StepBudget) -> tuple[int, bool]:
        """-> (the offset reached, whether the copy turned out assembled already)."""
        size, location = upload['size'], chain['copy_key']
        try:
            end = hash_stream(self.blobs.read_from(upload['key'], offset, chain['etag']),
                              offset, size, checksums, budget)
        except BlobMissing:
            # a delivery of the last step assembled the copy and removed the upload,
            # then failed to record it: the rest is hashed from the copy
            if self.blobs.size_of(location) != size:
                raise
            return hash_stream(self.blobs.read_from(location, offset, None),
                               offset, size, checksums, budget), True
        return end, self._copy_parts(image_id, upload, chain, offset, end)

    def _copy_parts(self, image_id: str, upload: Upload, chain: Chain, offset: int,
                    end: int) -> bool:
        """Copy the parts that end within [offset, end) (again, if a failed delivery
        copied them already: a part copied twice is the same part). -> True when the
        copy turns out assembled already (by a delivery of the last step that failed
        afterwards)."""
        part_size, size = chain['part_size'], upload['size']
        try:
            for number in range(offset // part_size + 1, end // part_size + 2):
                start, stop = part_range(number, part_size, size)
                if offset < stop <= end:
                    self.blobs.copy_part(upload['key'], chain['etag'], image_id,
                                         chain['copy_id'], number, start, stop)
        except BlobMissing:
            if end < size or self.blobs.size_of(chain['copy_key']) != size:
                raise
            return True
        return False

    def _hand_on(self, image_id: str, chain: Chain, end: int,
                 checksums: ResumableChecksums) -> ImageRecord | None:
        """Record the state at `end` (only over the state this step started from) and
        ask for the next step; if that request fails the state is set back, so that
        this step, delivered again, is the one that continues."""
        advanced = dict(chain, offset=end, checksums=checksums.state())
        try:
            image = self.records.change(image_id, _move_chain(chain, advanced))
        except (Conflict, NotFound):
            return None   # another delivery took this step, or the image went
        except CatalogUnavailable:
            landed = self.records.get(image_id)   # the write may have landed
            if landed is None or (landed['pending_upload'] or {}).get(
                    'finalizing') != advanced:
                raise
            image = landed
        try:
            self.background('finalize', image_id, None, end)
        except Exception:
            self.records.change(image_id, _move_chain(advanced, chain))
            raise
        return image

    def _complete_chain(self, image_id: str, upload: Upload, chain: Chain,
                        checksums: ResumableChecksums, assembled: bool) -> ImageRecord | None:
        location = chain['copy_key']
        md5, sha256 = checksums.hexdigests()
        if upload['checksum'] and upload['checksum'] != md5:
            return self._refuse(image_id, upload, location if assembled else upload['key'])
        if not assembled:
            try:
                self.blobs.complete_parts(location, chain['copy_id'])
            except BlobMissing:   # assembled by a delivery that failed afterwards
                if self.blobs.size_of(location) != upload['size']:
                    return self._refuse(image_id, upload, upload['key'])
        self.blobs.delete(upload['key'])   # a failure here: delivered again
        return self._activate(image_id, HashedBlob(location, upload['size'], md5, sha256),
                              location)

    # -- the reaper ----------------------------------------------------------------------
    def reap(self, now: str | None = None) -> list[str]:
        """Kill images whose reservation expired; abort what S3 still holds. -> ids."""
        reaped = []
        for image in self.records.catalog.expired_uploads(now or im.now_string()):
            discard_upload(self.blobs, image['pending_upload'] or {})
            killed = self.records.kill(image['id'])
            if killed is not None and killed['status'] == im.KILLED:
                # bytes a finalizer moved and then failed to record, every delivery
                discard_upload(self.blobs, {'key': self.blobs.key_for(image['id'])})
            self.release(image['id'], _unfinished(image))
            reaped.append(image['id'])
        return reaped

    def release(self, image_id: str, fault: str | None = None) -> None:
        """Forget a reservation whatever the image's status (killed, deleted...); a
        location whose cache never finished gets `fault`, so its downloads answer 502
        instead of 'still being copied' for ever."""
        also = {'source_fault': fault} if fault else {}
        try:
            self.records.change(image_id, lambda current_image: replaced(
                current_image, pending_upload=None, **also)
                if current_image['pending_upload'] else None)
        except Exception:  # noqa: BLE001 - the record is gone or busy: nothing to release
            pass

    def _refuse(self, image_id: str, upload: Upload, checked: str) -> ImageRecord | None:
        """Kill the image; drop the upload and the object that was checked."""
        discard_upload(self.blobs, upload)
        if checked != upload['key']:
            discard_upload(self.blobs, {'key': checked})
        return self.records.kill(image_id, also={'pending_upload': None})


def _unfinished(image: ImageRecord) -> str | None:
    """The fault of a location cache the reaper ends (None for anything else)."""
    if (image['pending_upload'] or {}).get('job') != CACHE_IMAGE:
        return None
    return 'The copy of the external location did not finish in time; register it again.'


def _move_chain(expected: Chain, new: Chain) -> Any:
    def change(current_image: ImageRecord) -> ImageRecord:
        pending = current_image['pending_upload'] or {}
        if current_image['status'] != im.SAVING or pending.get('finalizing') != expected:
            raise Conflict('the chain moved on')
        return replaced(current_image, pending_upload=dict(pending, finalizing=new))
    return change
