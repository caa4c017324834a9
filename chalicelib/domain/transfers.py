"""Image bytes through the API: the inline upload of a request body (v1 §8) and the
download (v1 §10), inline, redirected to a presigned GET, or read from a small
external location."""
from __future__ import annotations

import dataclasses
import hashlib
from typing import BinaryIO

from chalicelib.domain import image_meta as im
from chalicelib.domain.context import RequestContext
from chalicelib.domain.errors import (Changed, Conflict, Forbidden, Invalid, NotFound,
                                      SourceFailed, TooLarge, Unavailable)
from chalicelib.domain.policy import Policy
from chalicelib.domain.ports import (BlobMissing, BlobStore, BlobStoreError, BlobTooLarge,
                                     CatalogUnavailable, DomainSettings, ImageRecord,
                                     SourceNotFound, SourceReader, SourceRefused,
                                     SourceUnavailable, StoredBlob)
from chalicelib.domain.records import (ImageRecords, activated, bucket_location, discard,
                                       integrity_fault, quota_exceeded, replaced,
                                       require_formats)

OCTET_STREAM = 'application/octet-stream'
# (image, bytes, None), or (image, None, a presigned URL) for a large image
Download = tuple[ImageRecord, 'bytes | None', 'str | None']


@dataclasses.dataclass
class ImageData:
    """A request body carrying image bytes."""
    stream: BinaryIO          # has read(n)
    media_type: str | None    # Content-Type without parameters
    length: int | None        # Content-Length, when the client sent one


class Transfers:
    def __init__(self, records: ImageRecords, blobs: BlobStore, sources: SourceReader,
                 policy: Policy, settings: DomainSettings):
        self.records, self.blobs, self.sources = records, blobs, sources
        self.policy, self.settings = policy, settings

    # -- download (v1 §10) -------------------------------------------------------------
    def download(self, context: RequestContext, image_id: str) -> Download:
        """(image, bytes, None) of an active image; (image, None, url) when it is too
        large to answer inline: a short-lived presigned GET."""
        image = self._downloadable(context, image_id)
        if not image['size'] or not image['location']:
            return image, b'', None
        try:
            return self._serve(image)
        except (BlobMissing, SourceNotFound):
            raise NotFound('Image %s has no data in the store' % image_id) from None
        except BlobStoreError:
            raise Unavailable('The image store is unavailable.') from None

    def _downloadable(self, context: RequestContext, image_id: str) -> ImageRecord:
        self.policy.enforce(context, 'get_image')
        image = self.records.find_visible(context, image_id)
        if image is None:
            self.policy.enforce(context, 'download_image')
            raise NotFound('Image with identifier %s not found' % image_id)
        if image['status'] == im.DEACTIVATED:
            raise Forbidden('Image %s is deactivated' % image_id)
        if image['status'] != im.ACTIVE:
            raise NotFound('Image %s is not active' % image_id)
        self.policy.enforce(context, 'download_image')
        return image

    def _serve(self, image: ImageRecord) -> Download:
        limit, location = self.settings.inline_download_limit, bucket_location(image)
        if location is None:  # an external location, not (yet) copied in
            if image.get('source_fault'):
                raise SourceFailed(image['source_fault'])
            if image['size'] > limit:
                raise Unavailable('The image data is still being copied into the image '
                                  'store; retry shortly.', retry_after=30)
            return image, self._read_external(image), None
        if image['size'] > limit:
            return image, None, self.blobs.presign_get(location, self.settings.presign_expiry)
        return image, self.blobs.read(location), None

    def _read_external(self, image: ImageRecord) -> bytes:
        """The bytes of a small external location, served only if they are exactly
        the recorded size and match a checksum the client gave (else 502)."""
        try:
            stream = self.sources.open(image['location'] or '')
        except SourceRefused as error:
            raise SourceFailed(str(error)) from None
        except SourceUnavailable:
            raise Unavailable('The external source could not be read.') from None
        try:
            data = stream.read(image['size'] + 1)
        except SourceUnavailable as error:
            raise SourceFailed(str(error)) from None
        finally:
            stream.close()
        fault = integrity_fault(image, len(data), hashlib.md5(data).hexdigest())
        if fault:
            raise SourceFailed(fault)
        return data

    # -- inline upload (v1 §8) -----------------------------------------------------------
    def upload(self, image: ImageRecord, data: ImageData) -> ImageRecord:
        """queued -> saving -> active with the body's bytes; killed when they cannot be
        the image's (too large, not matching what was declared)."""
        remaining = self._admit(image, data)
        self._start_saving(image['id'])
        blob = self._store(image['id'], data, remaining)
        self._check_stored(image, blob)
        return self._activate(image['id'], blob)

    def _admit(self, image: ImageRecord, data: ImageData) -> int | None:
        """Refuse before anything is stored; -> the owner's remaining quota."""
        image_id = image['id']
        if image['pending_upload']:   # a presigned upload holds the image
            raise Conflict('Cannot upload to an unqueued image')
        require_formats(image)
        if data.media_type != OCTET_STREAM:
            self.records.kill(image_id)
            raise Invalid('Content-Type must be %s' % OCTET_STREAM)
        inline_limit = self.settings.inline_upload_limit
        if (data.length or 0) > inline_limit:
            self.records.kill(image_id)
            raise inline_too_large(image_id, inline_limit)
        declared = image['size'] or None
        remaining = self.records.remaining_quota(image)
        if remaining is not None and (declared or data.length or 0) > remaining:
            self.records.kill(image_id)
            raise quota_exceeded(declared or data.length, remaining)
        return remaining

    def _start_saving(self, image_id: str) -> None:
        stamp = im.now_string()

        def start_saving(current_image: ImageRecord) -> ImageRecord:
            if current_image['status'] != im.QUEUED or current_image['pending_upload']:
                raise Conflict('Cannot upload to an unqueued image')
            return replaced(current_image, status=im.SAVING, updated_at=stamp)
        try:
            self.records.change(image_id, start_saving)
        except CatalogUnavailable:
            self.records.take_back(image_id, stamp, status=im.QUEUED)
            raise

    def _store(self, image_id: str, data: ImageData, remaining: int | None) -> StoredBlob:
        cap, inline_limit = self.settings.image_size_cap, self.settings.inline_upload_limit
        limit = min(bound for bound in (cap, remaining, inline_limit + 1) if bound is not None)
        try:
            return self.blobs.put(image_id, data.stream, limit)
        except BlobTooLarge as error:
            self.records.kill(image_id)
            raise self._too_large(image_id, error.args[0], remaining) from None
        except BlobStoreError:
            self.records.kill(image_id)
            discard(self.blobs, self.blobs.key_for(image_id))  # in case it was stored all the same
            raise Unavailable('The image store is unavailable.') from None

    def _too_large(self, image_id: str, seen: int, remaining: int | None) -> TooLarge:
        cap, inline_limit = self.settings.image_size_cap, self.settings.inline_upload_limit
        if seen > inline_limit:
            return inline_too_large(image_id, inline_limit)
        if remaining is not None and remaining < cap:
            return quota_exceeded(seen, remaining)
        return TooLarge('Denying attempt to upload image larger than %d bytes.' % cap)

    def _check_stored(self, image: ImageRecord, blob: StoredBlob) -> None:
        """The bytes stored must be the size and checksum the client declared."""
        declared, mismatch = image['size'] or None, None
        if declared is not None and declared != blob.size:
            mismatch = 'Supplied size (%d) and size generated from uploaded image (%d)' % (
                declared, blob.size)
        elif image['checksum'] and image['checksum'] != blob.md5:
            mismatch = ('Supplied checksum (%s) and checksum generated from uploaded '
                        'image (%s)' % (image['checksum'], blob.md5))
        if mismatch:
            discard(self.blobs, blob.location)
            self.records.kill(image['id'])
            raise Invalid("%s did not match. Setting image status to 'killed'." % mismatch)

    def _activate(self, image_id: str, blob: StoredBlob) -> ImageRecord:
        def activate(current_image: ImageRecord) -> ImageRecord:
            if current_image['status'] != im.SAVING:
                raise Changed('Image %s was deleted during the upload.' % image_id)
            return activated(current_image, blob)
        try:
            return self.records.change(image_id, activate)
        except Changed:
            discard(self.blobs, blob.location)
            raise
        except CatalogUnavailable:
            # Not left `saving` with bytes no record points at: killed and the bytes
            # dropped, unless the write landed and only its answer was lost.
            current = self.records.kill(image_id)
            if current is not None and current['status'] == im.ACTIVE and \
                    current['location'] == blob.location:
                return current
            discard(self.blobs, blob.location)
            raise


def inline_too_large(image_id: str, limit: int) -> TooLarge:
    return TooLarge(
        'Image data larger than %d bytes cannot be sent in the request body; reserve a '
        'presigned upload instead: POST /v1/images/%s/upload' % (limit, image_id))
