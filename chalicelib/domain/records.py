"""The image records every service shares: reading what a caller may see, changing a
record with the domain's errors, recovering from a lost answer, killing a failed
upload, the owner's storage quota; and the bucket objects a record points at."""
from __future__ import annotations

from typing import Any, cast

from chalicelib.domain import image_meta as im
from chalicelib.domain.context import RequestContext
from chalicelib.domain.errors import Conflict, Invalid, NotFound, TooLarge
from chalicelib.domain.ports import (BlobStore, BlobStoreError, CatalogUnavailable,
                                     Change, ConcurrentUpdate, ImageMissing, ImageRecord,
                                     DomainSettings, ImageStore, MemberStore,
                                     StoredBlob)
from chalicelib.domain.visibility import can_see


class ImageRecords:
    def __init__(self, catalog: ImageStore, memberships: MemberStore,
                 settings: DomainSettings):
        self.catalog, self.memberships, self.settings = catalog, memberships, settings

    def get(self, image_id: str) -> ImageRecord | None:
        return self.catalog.get(image_id)

    def find_visible(self, context: RequestContext, image_id: str,
                     deleted_too: bool = False) -> ImageRecord | None:
        if not im.is_uuid_like(image_id):
            # Every id is UUID-like (validate_new_id), so this names no image; and a
            # DynamoDB key longer than 2048 bytes would fail the read, not miss.
            return None
        image = self.catalog.get(image_id)
        if image is None or not can_see(
                context, image, lambda: self.memberships.get(image_id, context.tenant) is not None,
                deleted_too):
            return None
        return image

    def get_visible(self, context: RequestContext, image_id: str) -> ImageRecord:
        image = self.find_visible(context, image_id)
        if image is None:
            raise NotFound('Image with identifier %s not found' % image_id)
        return image

    def change(self, image_id: str, change: Change) -> ImageRecord:
        """catalog.update with the domain's errors."""
        try:
            return self.catalog.update(image_id, change)
        except ImageMissing:
            raise NotFound('Image with identifier %s not found' % image_id) from None
        except ConcurrentUpdate:
            raise Conflict('Image %s is being changed by another request; '
                           'try again.' % image_id) from None

    def landed(self, image_id: str, stamp: str) -> ImageRecord | None:
        """After a write failed with CatalogUnavailable: the record if the write landed
        all the same (only its answer was lost), known by the `updated_at` it set."""
        try:
            current = self.catalog.get(image_id)
        except CatalogUnavailable:
            return None
        return current if current is not None and current['updated_at'] == stamp else None

    def take_back(self, image_id: str, stamp: str, **fields: Any) -> None:
        """After a write failed with CatalogUnavailable: if it landed all the same (the
        record still has the `updated_at` it set), set `fields` back. Best effort."""
        try:
            self.catalog.update(image_id, lambda current_image: replaced(
                current_image, **fields) if current_image['updated_at'] == stamp else None)
        except (CatalogUnavailable, ImageMissing, ConcurrentUpdate):
            pass

    def kill(self, image_id: str, also: dict[str, Any] | None = None) -> ImageRecord | None:
        """queued/saving -> killed (an upload failed); other statuses stay."""
        def kill(current_image: ImageRecord) -> ImageRecord | None:
            if current_image['status'] not in (im.QUEUED, im.SAVING):
                return None
            return replaced(current_image, status=im.KILLED, updated_at=im.now_string(),
                            **(also or {}))
        try:
            return self.catalog.update(image_id, kill)
        except (ImageMissing, ConcurrentUpdate):
            return None

    def remaining_quota(self, image: ImageRecord) -> int | None:
        """Bytes the owner may still store, or None when there is no quota."""
        quota = self.settings.user_storage_quota
        if not quota or image['owner'] is None:
            return None
        stored = sum(other['size'] or 0
                     for other in self.catalog.images_of(('owner', image['owner']))
                     if other['location'] and other['id'] != image['id'])
        return max(quota - stored, 0)

    def check_quota_for(self, image: ImageRecord, size: int) -> None:
        remaining = self.remaining_quota(image)
        if remaining is not None and size > remaining:
            raise quota_exceeded(size, remaining)

    def storage_limit(self, image: ImageRecord) -> int:
        """Bytes the image's data may have: the size cap, its recorded size, the quota."""
        bounds = [self.settings.image_size_cap, image['size'] or None,
                  self.remaining_quota(image)]
        return min(bound for bound in bounds if bound is not None)


def check_count_quota(count: int, quota: int, counted: str) -> None:
    """A limit on how many of something (a negative quota: no limit)."""
    if 0 <= quota < count:
        raise TooLarge('The limit has been exceeded on the number of allowed %s. '
                       'Attempted: %d, Maximum: %d' % (counted, count, quota))


def quota_exceeded(size: int | None, remaining: int) -> TooLarge:
    return TooLarge(
        'Denying attempt to upload image because it exceeds the quota: The size of '
        'the data %s will exceed the limit. %d bytes remaining.' % (size, remaining))


def activated(image: ImageRecord, blob: StoredBlob, location: str | None = None) -> ImageRecord:
    """The image once its bytes are stored and checked: active, with size and checksums."""
    return replaced(image, status=im.ACTIVE, size=blob.size, checksum=blob.md5,
                    sha256=blob.sha256, location=location or blob.location,
                    updated_at=im.now_string())


def integrity_fault(image: ImageRecord, size: int, md5: str) -> str | None:
    """Why bytes that came from an external source cannot be the image's (they differ
    from its recorded size or from a checksum the client gave), or None."""
    if image['size'] and size != image['size']:
        return ('The external source sent %s bytes where the image records %d.'
                % ('more' if size > image['size'] else size, image['size']))
    if image['checksum'] and md5 != image['checksum']:
        return ('The data at the external source does not match the image checksum %s.'
                % image['checksum'])
    return None


def bucket_location(image: ImageRecord) -> str | None:
    """The image's object in the bucket: its own, or the copy of an external URL."""
    location = image['location']
    if location and '://' not in location:
        return location
    return image.get('cached_location')


def discard(blobs: BlobStore, location: str) -> None:
    try:
        blobs.delete(location)
    except BlobStoreError:
        pass  # an orphan object, never served: no record points at it


def abort_upload(blobs: BlobStore, pending: dict[str, Any]) -> None:
    """A reservation's multipart upload aborted, and the multipart copy of a chained
    finalization in progress."""
    chain = pending.get('finalizing') or {}
    for key, upload_id in ((pending['key'], pending.get('upload_id')),
                           (chain.get('copy_key'), chain.get('copy_id'))):
        if key and upload_id:
            try:
                blobs.abort_multipart(key, upload_id)
            except BlobStoreError:
                pass  # the bucket's lifecycle rule aborts it


def is_gone(blobs: BlobStore, location: str) -> bool:
    try:
        return blobs.size_of(location) is None
    except BlobStoreError:
        return False


def replaced(image: ImageRecord, **fields: Any) -> ImageRecord:
    """A copy of the record with `fields` changed (the record itself is left alone)."""
    return cast(ImageRecord, dict(image, **fields))


def require_formats(image: ImageRecord) -> None:
    """Data may be attached only to an image whose formats are known (v1 §8)."""
    if image['disk_format'] is None:
        raise Invalid('Disk format is not specified.')
    if image['container_format'] is None:
        raise Invalid('Container format is not specified.')
