"""Presigned uploads (beyond v1): image bytes go from the client straight to the blob
store. This is the client's side: a queued image gets a reservation (one presigned
PUT, or a multipart upload with a presigned URL per part), shown, completed (the
image goes to `saving`) or aborted. The finalizer (finalizer.py) checks and
activates what arrived, and reaps reservations left unfinished.
"""
from __future__ import annotations

import datetime
import math
from typing import Any, Callable, TypeVar

from chalicelib.domain import image_meta as im
from chalicelib.domain.context import RequestContext
from chalicelib.domain.errors import Conflict, Forbidden, Invalid, Unavailable
from chalicelib.domain.policy import Policy
from chalicelib.domain.ports import (BlobMissing, BlobStore, BlobStoreError,
                                     CatalogUnavailable, DomainSettings, ImageRecord,
                                     PartLimits)
from chalicelib.domain.records import ImageRecords, replaced
from chalicelib.domain.visibility import can_modify

SINGLE, MULTIPART = 'single', 'multipart'
Upload = dict[str, Any]      # an image's pending_upload
T = TypeVar('T')


def later(seconds: int) -> str:
    return im.format_time(im.utcnow() + datetime.timedelta(seconds=seconds))


class UploadService:
    def __init__(self, records: ImageRecords, blobs: BlobStore, policy: Policy,
                 settings: DomainSettings):
        self.records, self.blobs, self.policy, self.settings = records, blobs, policy, settings

    @property
    def limits(self) -> PartLimits:
        return self.blobs.limits

    def reserve(self, context: RequestContext, image_id: str, size: Any,
                checksum: Any = None, part_size: Any = None) -> dict[str, Any]:
        """Reserve a presigned upload for a queued image; returns its description."""
        image = self._image_to_upload(context, image_id)
        size = _positive_int(size, 'size')
        checksum = self._check_reservation(image, size, checksum)
        self.records.check_quota_for(image, size)
        mode, part_size = self._plan(size, part_size)
        key = self.blobs.upload_key_for(image_id)
        upload = {'mode': mode, 'key': key, 'size': size, 'checksum': checksum,
                  'part_size': part_size, 'started_at': im.now_string(),
                  'expires_at': later(self.settings.upload_timeout), 'upload_id': None}
        if mode == MULTIPART:
            upload['upload_id'] = _store(self.blobs.create_multipart, key)
        return self.describe(self._take(image_id, upload), fresh=True)

    def _check_reservation(self, image: ImageRecord, size: int, checksum: Any) -> str | None:
        """The size and checksum of a reservation against the image's; -> the checksum."""
        cap = self.settings.image_size_cap
        if size > cap:
            raise Invalid('Denying attempt to upload image larger than %d bytes.' % cap)
        if checksum is not None and (not isinstance(checksum, str) or len(checksum) > 32):
            raise Invalid("Invalid checksum '%s': can't exceed 32 characters" % checksum)
        if image['disk_format'] is None or image['container_format'] is None:
            raise Invalid('Disk format and container format must be set before an '
                          'upload is reserved.')
        if image['size'] and image['size'] != size:
            raise Invalid('Supplied size (%d) does not match the size declared for the '
                          'image (%d).' % (size, image['size']))
        if checksum and image['checksum'] and checksum != image['checksum']:
            raise Invalid('Supplied checksum (%s) does not match the checksum declared '
                          'for the image (%s).' % (checksum, image['checksum']))
        return checksum or image['checksum']

    def _take(self, image_id: str, upload: Upload) -> ImageRecord:
        """Record the reservation in the queued image (one reservation at a time)."""
        stamp = im.now_string()

        def take(current_image: ImageRecord) -> ImageRecord:
            if current_image['status'] != im.QUEUED or current_image['pending_upload']:
                raise Conflict('Cannot upload to an unqueued image, or one with an upload '
                               'in progress')
            return replaced(current_image, pending_upload=upload, size=upload['size'],
                            checksum=upload['checksum'], updated_at=stamp)
        try:
            return self.records.change(image_id, take)
        except Conflict:
            if upload['upload_id']:
                self.blobs.abort_multipart(upload['key'], upload['upload_id'])
            raise
        except CatalogUnavailable:
            image = self.records.landed(image_id, stamp)
            if image is None:   # not recorded: no one would ever complete or abort it
                _abort(self.blobs, upload)
                raise
            return image

    def show(self, context: RequestContext, image_id: str,
             part_marker: int = 0) -> dict[str, Any]:
        """The reservation: a page of parts after `part_marker`, those already uploaded
        and fresh URLs for the rest."""
        return self.describe(self._image_with_upload(context, image_id),
                             part_marker=part_marker)

    def complete(self, context: RequestContext, image_id: str,
                 parts: list[dict[str, Any]] | None = None) -> ImageRecord:
        """Finish the upload: the image goes to `saving`; exactly one caller wins."""
        upload = self._image_with_upload(context, image_id)['pending_upload'] or {}
        self._check_uploaded(image_id, upload)
        stamp = im.now_string()

        def start_saving(current_image: ImageRecord) -> ImageRecord:
            pending = current_image['pending_upload']
            if current_image['status'] != im.QUEUED or not pending or \
                    pending.get('upload_id') != upload['upload_id']:
                raise Conflict('The upload of image %s is already completed' % image_id)
            return replaced(current_image, status=im.SAVING, updated_at=stamp)
        try:
            image = self.records.change(image_id, start_saving)
        except CatalogUnavailable:   # queued again, so that completing may be retried
            self.records.take_back(image_id, stamp, status=im.QUEUED)
            raise
        if upload['mode'] == MULTIPART:
            self._assemble(image_id, upload, parts)
        return image

    def _check_uploaded(self, image_id: str, upload: Upload) -> None:
        """Every byte of the reservation is in the store (a Conflict names what is not)."""
        if upload['mode'] == SINGLE:
            if _store(self.blobs.size_of, upload['key']) is None:
                raise Conflict('Nothing was uploaded for image %s yet' % image_id)
            return
        try:
            uploaded = {p['part_number'] for p in _store(
                self.blobs.list_parts, upload['key'], upload['upload_id'])}
        except BlobMissing:   # a racing completion assembled it already
            raise Conflict('The upload of image %s is already completed'
                           % image_id) from None
        missing = [n for n, _ in parts_of(upload['size'], upload['part_size'])
                   if n not in uploaded]
        if missing:
            raise Conflict('Parts %s of image %s are not uploaded yet; GET the upload '
                           'for their URLs' % (', '.join(map(str, missing)), image_id))

    def _assemble(self, image_id: str, upload: Upload,
                  parts: list[dict[str, Any]] | None) -> None:
        try:
            done = parts or self.blobs.list_parts(upload['key'], upload['upload_id'])
            self.blobs.complete_multipart(upload['key'], upload['upload_id'], done)
        except BlobMissing:
            discard_upload(self.blobs, upload)
            self.records.kill(image_id, also={'pending_upload': None})
            raise Invalid('The parts of image %s could not be assembled; the image '
                          "is now 'killed'." % image_id) from None
        except BlobStoreError:
            # The parts are still in the store: queued again with the reservation, so
            # that completing may be retried (if S3 did assemble them, its event
            # finalizes the image all the same).
            self.records.change(image_id, lambda current_image: replaced(
                current_image, status=im.QUEUED, updated_at=im.now_string())
                if current_image['status'] == im.SAVING and (current_image[
                    'pending_upload'] or {}).get('upload_id') == upload['upload_id']
                else None)
            raise Unavailable('The image store is unavailable; the upload of '
                              'image %s was not completed, try again.' % image_id) from None

    def abort(self, context: RequestContext, image_id: str) -> None:
        """Give up the reservation: the image is `queued` again, with no upload."""
        upload = self._image_with_upload(context, image_id)['pending_upload'] or {}

        def release(current_image: ImageRecord) -> ImageRecord:
            if current_image['status'] != im.QUEUED or not current_image['pending_upload']:
                raise Conflict('The upload of image %s is already completed' % image_id)
            return replaced(current_image, pending_upload=None, updated_at=im.now_string())
        self.records.change(image_id, release)
        discard_upload(self.blobs, upload)

    def describe(self, image: ImageRecord, fresh: bool = False,
                 part_marker: int = 0) -> dict[str, Any]:
        """The reservation for the client; `fresh`: just made, no part uploaded yet.

        A multipart reservation answers one page of parts, those numbered after
        `part_marker`: every URL carries the session token, and 10,000 of them would
        pass Lambda's 6 MB response limit. `next_part_marker` asks for the next page.
        """
        upload, expiry = image['pending_upload'] or {}, self.settings.presign_expiry
        every_part = [(1, upload['size'])] if upload['mode'] == SINGLE else \
            parts_of(upload['size'], upload['part_size'])
        if not 0 <= part_marker < len(every_part):
            raise Invalid('Invalid part_marker %d: the upload of image %s has parts 1 to '
                          '%d; part_marker is the last part number of the previous page '
                          '(0 for the first page).'
                          % (part_marker, image['id'], len(every_part)))
        described = {'image_id': image['id'], 'mode': upload['mode'], 'size': upload['size'],
                     'expires_at': upload['expires_at'], 'urls_expire_at': later(expiry)}
        if upload['mode'] == SINGLE:
            described.update(method='PUT', headers={
                'Content-Type': 'application/octet-stream',
                'Content-Length': str(upload['size'])},
                url=self.blobs.presign_put(upload['key'], upload['size'], expiry))
            return described
        page = every_part[part_marker:part_marker + max(1, self.settings.upload_parts_page)]
        described.update(upload_id=upload['upload_id'], part_size=upload['part_size'],
                         part_count=len(every_part),
                         parts=self._page_of_parts(upload, page, fresh))
        if page[-1][0] < len(every_part):   # as Glance's `next`: absent on the last page
            described['next_part_marker'] = page[-1][0]
        return described

    def _page_of_parts(self, upload: Upload, page: list[tuple[int, int]],
                       fresh: bool) -> list[dict[str, Any]]:
        """The parts of a page: those uploaded as the store lists them, a presigned
        PUT for each of the others."""
        done = {} if fresh else {p['part_number']: p for p in _store(
            self.blobs.list_parts, upload['key'], upload['upload_id'], page[-1][0])}
        parts = []
        for number, part_size in page:
            if number in done:
                parts.append(dict(done[number], uploaded=True))
            else:
                parts.append({'part_number': number, 'size': part_size, 'uploaded': False,
                              'method': 'PUT', 'url': self.blobs.presign_part(
                                  upload['key'], upload['upload_id'], number, part_size,
                                  self.settings.presign_expiry)})
        return parts

    def _image_to_upload(self, context: RequestContext, image_id: str) -> ImageRecord:
        self.policy.enforce(context, 'modify_image')
        self.policy.enforce(context, 'upload_image')
        image = self.records.get_visible(context, image_id)
        if image['status'] == im.DELETED:
            raise Forbidden('Forbidden to update deleted image.')
        if image['status'] != im.QUEUED or image['pending_upload']:
            raise Conflict('Cannot upload to an unqueued image, or one with an upload '
                           'in progress')
        if not can_modify(context, image):
            raise Forbidden('Forbidden to upload to image: %s' % image_id)
        return image

    def _image_with_upload(self, context: RequestContext, image_id: str) -> ImageRecord:
        image = self.records.get_visible(context, image_id)
        if not can_modify(context, image):
            raise Forbidden('Forbidden to upload to image: %s' % image_id)
        if image['status'] != im.QUEUED or not image['pending_upload']:
            raise Conflict('Image %s has no upload in progress' % image_id)
        return image

    def _plan(self, size: int, part_size: Any) -> tuple[str, int | None]:
        wanted = self.settings.upload_part_size
        if part_size is not None:
            wanted = _positive_int(part_size, 'part_size')
        elif size <= min(wanted, self.limits.max_single_put):
            return SINGLE, None
        # within the store's bounds (larger parts would be refused, and a number over
        # 38 digits could not even be stored with the reservation)
        return MULTIPART, self.limits.part_size_for(size, wanted)


def parts_of(size: int, part_size: int) -> list[tuple[int, int]]:
    """(part_number, size) of each part."""
    count = max(1, math.ceil(size / part_size))
    return [(n + 1, min(part_size, size - n * part_size)) for n in range(count)]


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid('%s must be a positive integer' % name)
    return value


def _store(operation: Callable[..., T], *args: Any) -> T:
    try:
        return operation(*args)
    except BlobStoreError:
        raise Unavailable('The image store is unavailable.') from None


def _abort(blobs: BlobStore, upload: Upload) -> None:
    """Abort the multipart upload only (the key may hold another reservation's object)."""
    try:
        if upload.get('upload_id'):
            blobs.abort_multipart(upload['key'], upload['upload_id'])
    except BlobStoreError:
        pass  # left for the bucket's lifecycle rule


def discard_upload(blobs: BlobStore, upload: Upload) -> None:
    """The reservation's multipart upload (and a chained finalization's copy) aborted,
    its object deleted."""
    try:
        if upload.get('upload_id'):
            blobs.abort_multipart(upload['key'], upload['upload_id'])
        chain = upload.get('finalizing')
        if chain:   # the multipart copy of a chained finalization
            blobs.abort_multipart(chain['copy_key'], chain['copy_id'])
        blobs.delete(upload['key'])
    except BlobStoreError:
        pass  # left for the bucket's lifecycle rule; no record points at it
