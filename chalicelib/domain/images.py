"""The v1 image controller: create, update, upload, delete, show (v1 §6 to §12).

Works on image dicts; storage comes in as a catalog and a blob store.
"""
import dataclasses
import datetime
import hashlib
import io
import logging
import time
import urllib.parse
import uuid

from chalicelib.config import settings
from chalicelib.domain import image_meta as im
from chalicelib.domain.errors import (SourceFailed, Invalid, Conflict, Forbidden,
                                      NotFound, Changed, TooLarge,
                                      Unavailable)
from chalicelib.domain.listing import parse_list_params, select_page
from chalicelib.domain.steps import (HashedBlob, ResumableChecksums, SourceChanged,
                                     StepBudget, copy_stream, part_size_for)
from chalicelib.domain.visibility import can_modify, can_see
from chalicelib.domain.ports import (BlobMissing, BlobStoreError, BlobTooLarge,
                                     CatalogUnavailable, ConcurrentUpdate, ImageExists,
                                     ImageMissing, SourceNotFound, SourceRefused,
                                     SourceUnavailable)

LOG = logging.getLogger(__name__)
OCTET_STREAM = 'application/octet-stream'


@dataclasses.dataclass
class ImageData:
    """A request body carrying image bytes."""
    stream: object            # has read(n)
    media_type: str | None    # Content-Type without parameters
    length: int | None        # Content-Length, when the client sent one


def activated(image, blob, location=None):
    """The image once its bytes are stored and checked: active, with size and checksums."""
    return dict(image, status=im.ACTIVE, size=blob.size, checksum=blob.md5, sha256=blob.sha256,
                location=location or blob.location, updated_at=im.now_string())


def integrity_fault(image, size, md5):
    """Why bytes that came from an external source cannot be the image's (they differ
    from its recorded size or from a checksum the client gave), or None."""
    if image['size'] and size != image['size']:
        return ('The external source sent %s bytes where the image records %d.'
                % ('more' if size > image['size'] else size, image['size']))
    if image['checksum'] and md5 != image['checksum']:
        return ('The data at the external source does not match the image checksum %s.'
                % image['checksum'])
    return None


COPY = 'copy'                      # pending_upload['mode'] of a chained copy
COPY_IMAGE, CACHE_IMAGE = 'copy_image', 'cache_image'


def _copy_chain(image, job):
    """The chained copy `job` the image holds (its pending_upload), or None."""
    pending = (image or {}).get('pending_upload') or {}
    if pending.get('mode') != COPY or pending.get('job') != job or image['deleted']:
        return None
    return pending


def _still_located(image, url):
    """Whether a location's cache may still be made (or kept): the image still names
    `url` and holds data."""
    return (image['location'] == url and not image['deleted']
            and image['status'] in (im.ACTIVE, im.DEACTIVATED))


def bucket_location(image):
    """The image's object in the bucket: its own, or the copy of an external URL."""
    location = image['location']
    if location and '://' not in location:
        return location
    return image.get('cached_location')


class ImageService:
    def __init__(self, catalog, memberships, blobs, policy, sources=None, background=None):
        self.catalog, self.memberships = catalog, memberships   # the image and member stores
        self.blobs, self.policy = blobs, policy
        self.sources = sources            # external locations and copy-from URLs
        self.background = background      # background(job_name, image_id, url)

    # -- reading ----------------------------------------------------------------
    def find_visible(self, context, image_id, deleted_too=False):
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

    def get_visible(self, context, image_id):
        image = self.find_visible(context, image_id)
        if image is None:
            raise NotFound('Image with identifier %s not found' % image_id)
        return image

    def show(self, context, image_id):
        self.policy.enforce(context, 'get_image')
        return self.get_visible(context, image_id)

    def download(self, context, image_id):
        """(image, bytes, None) of an active image (v1 §10); (image, None, url) when
        it is too large to answer inline: a short-lived presigned GET."""
        self.policy.enforce(context, 'get_image')
        image = self.find_visible(context, image_id)
        if image is None:
            self.policy.enforce(context, 'download_image')
            raise NotFound('Image with identifier %s not found' % image_id)
        if image['status'] == im.DEACTIVATED:
            raise Forbidden('Image %s is deactivated' % image_id)
        if image['status'] != im.ACTIVE:
            raise NotFound('Image %s is not active' % image_id)
        self.policy.enforce(context, 'download_image')
        if not image['size'] or not image['location']:
            return image, b'', None
        limit, location = settings().inline_download_limit, bucket_location(image)
        try:
            if location is None:  # an external location, not (yet) copied in
                if image.get('source_fault'):
                    raise SourceFailed(image['source_fault'])
                if image['size'] > limit:
                    raise Unavailable(
                        'The image data is still being copied into the image store; '
                        'retry shortly.', retry_after=30)
                return image, self._read_external(image), None
            if image['size'] > limit:
                return image, None, self.blobs.presign_get(location, settings().presign_expiry)
            return image, self.blobs.read(location), None
        except (BlobMissing, SourceNotFound):
            raise NotFound('Image %s has no data in the store' % image_id) from None
        except BlobStoreError:
            raise Unavailable('The image store is unavailable.') from None

    def _read_external(self, image):
        """The bytes of a small external location, served only if they are exactly
        the recorded size and match a checksum the client gave (else 502)."""
        try:
            stream = self.sources.open(image['location'])
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

    def index(self, context, params):
        """The page of images a listing shows (v1 §13)."""
        self.policy.enforce(context, 'get_images')
        query = parse_list_params(context, params, settings())
        marker_image = None
        if query.marker is not None:
            # changes-since lists deleted images: they are markers then (v1 §13.3)
            marker_image = self.find_visible(context, query.marker,
                                             deleted_too=query.changes_since is not None)
            if marker_image is None or (marker_image['deleted']
                                        and query.changes_since is None):
                raise Invalid('Invalid marker. Image could not be found.')
        return select_page(self.catalog, self.memberships, context, query, marker_image)

    # -- create -----------------------------------------------------------------
    def create(self, context, meta, data=None, copy_from=None):
        current = settings()
        im.validate_image_meta(meta, current)
        self._check_size_cap(meta, data)
        self._enforce_write_policies(context, 'add_image', meta, data, copy_from)
        self._check_property_quota(len(meta.get('properties') or {}))
        source = self._external_source(context, meta, copy_from, data)
        if 'id' in meta:
            im.validate_new_id(meta['id'])
        image_id = meta.get('id') or str(uuid.uuid4())
        owner = meta.get('owner') if context.is_admin and 'owner' in meta else context.owner
        im.check_owner(owner)
        remote_size = self._source_size(source, meta)
        status = im.ACTIVE if data is None and source is None and meta.get('size') == 0 \
            else im.QUEUED
        image = im.new_image(image_id, meta, owner, status, im.now_string())
        im.check_record_size(image)
        if not image['size'] and remote_size:
            image['size'] = remote_size
        try:
            image = self.catalog.create(image)
        except ImageExists:
            raise Conflict('An image with identifier %s already exists' % image_id) from None
        return self._handle_source(image, meta, data, source, remote_size)

    # -- update -----------------------------------------------------------------
    def update(self, context, image_id, meta, data=None, copy_from=None, purge_props=True):
        im.validate_image_meta(meta, settings())
        self._check_size_cap(meta, data)
        self._enforce_write_policies(context, 'modify_image', meta, data, copy_from)
        image = self.get_visible(context, image_id)
        self._check_updatable(context, image, meta)
        if data is not None:
            purge_props = False
            if image['status'] != im.QUEUED or image['pending_upload']:
                raise Conflict('Cannot upload to an unqueued image')
        source = self._external_source(context, meta, copy_from, data)
        if source is not None and image['status'] != im.QUEUED:
            raise Invalid('Attempted to update Location field for an image not in '
                             'queued status.')
        new_properties = meta.get('properties') or {}
        kept = 0 if purge_props else len(set(image['properties']) - set(new_properties))
        self._check_property_quota(len(new_properties) + kept)
        if not can_modify(context, image):
            raise Forbidden('Forbidden to update image: %s' % image_id)
        remote_size = self._source_size(source, meta)  # no source read for others
        if not context.is_admin:
            meta.pop('owner', None)
        im.check_owner(meta.get('owner'))

        def apply(current_image):
            self._check_updatable(context, current_image, meta)
            if data is not None and (current_image['status'] != im.QUEUED
                                     or current_image['pending_upload']):
                raise Conflict('Cannot upload to an unqueued image')
            for field in im.UPDATABLE_FIELDS:
                if field in meta:
                    current_image[field] = meta[field]
            for field in ('min_disk', 'min_ram'):
                current_image[field] = current_image[field] or 0
            current_image['is_public'] = bool(current_image['is_public'])
            current_image['protected'] = bool(current_image['protected'])
            properties = {} if purge_props else current_image['properties']
            properties.update(new_properties)
            current_image['properties'] = properties
            current_image['updated_at'] = im.now_string()
            im.check_record_size(current_image)
            return current_image

        image = self.change(image_id, apply)
        return self._handle_source(image, meta, data, source, remote_size)

    @staticmethod
    def _check_updatable(context, image, meta):
        if image['status'] == im.DELETED:
            raise Forbidden('Forbidden to update deleted image.')
        if not context.is_admin and image['status'] in (im.ACTIVE, im.DEACTIVATED):
            for field in ('size', 'checksum'):
                if field in meta and meta[field] != image[field]:
                    raise Forbidden("Forbidden to modify '%s' of %s image."
                                    % (field, image['status']))
        for field in ('status', 'id'):
            if field in meta and meta[field] != image[field]:
                raise Forbidden("Forbidden to modify '%s' of image." % field)

    # -- delete -----------------------------------------------------------------
    def delete(self, context, image_id):
        self.policy.enforce(context, 'delete_image')
        image = self.get_visible(context, image_id)
        deleting_status = (im.PENDING_DELETE if settings().delayed_delete and image['location']
                           else im.DELETED)
        stamp = im.now_string()
        doomed = {}   # the record as the delete found it: its bytes are what goes

        def mark_deleted(current_image):
            doomed.update(current_image)
            if current_image['protected']:
                raise Forbidden('Image is protected')
            if current_image['status'] == im.PENDING_DELETE:
                raise Forbidden('Forbidden to delete a pending_delete image.')
            if current_image['status'] == im.DELETED:
                raise NotFound('Image %s not found.' % image_id)
            if not can_modify(context, current_image):
                raise Forbidden('Forbidden to delete image: %s' % image_id)
            current_image.update(status=deleting_status, deleted=True, deleted_at=stamp,
                                 updated_at=stamp, pending_upload=None)
            retention = settings().deleted_retention_days
            if retention > 0:  # the table's TTL removes the record then; its id may return
                current_image['purge_at'] = int(time.time()) + retention * 86400
            return current_image

        try:
            deleted = self.change(image_id, mark_deleted)
        except CatalogUnavailable:
            deleted = self.landed(image_id, stamp)
            if deleted is None:
                raise
        # What the delete replaced, not what was read before it: a copy that landed
        # in between is deleted too.
        image = doomed or image
        pending = image.get('pending_upload')
        if pending and pending.get('upload_id'):
            self._abort_upload(pending)
        for location in filter(None, (bucket_location(image), image.get('cached_location'),
                                      pending and pending['key'])):
            try:
                self.blobs.delete(location)
            except BlobStoreError:
                if self._gone(location):   # deleted, only the answer was lost
                    continue
                self.change(image_id, lambda current_image: dict(  # and no TTL expiry
                    current_image, status=image['status'], deleted=False, deleted_at=None,
                    purge_at=None))
                raise Unavailable('The image store is unavailable; '
                                         'the image was not deleted.') from None
        try:
            self.memberships.delete_all(image_id)
        except CatalogUnavailable:
            # The image is deleted and its data gone; rows left over are never shown
            # (shared images and listings skip deleted images).
            LOG.warning('memberships of deleted image %s left over', image_id)
        return deleted

    # -- deactivation (the v2 image actions, offered under v1) ---------------------
    def set_deactivated(self, context, image_id, deactivated):
        """active -> deactivated or back; the same state again is a no-op (as v2)."""
        action = 'deactivate' if deactivated else 'reactivate'
        source, target = ((im.ACTIVE, im.DEACTIVATED) if deactivated
                          else (im.DEACTIVATED, im.ACTIVE))
        self.get_visible(context, image_id)
        self.policy.enforce(context, action)

        def change(current_image):
            if current_image['status'] == target:
                return None
            if current_image['status'] != source:
                raise Forbidden("Not allowed to %s image in status '%s'"
                                % (action, current_image['status']))
            return dict(current_image, status=target, updated_at=im.now_string())
        return self.change(image_id, change)

    # -- upload (v1 §8) ----------------------------------------------------------
    @staticmethod
    def _require_formats(image):
        if image['disk_format'] is None:
            raise Invalid('Disk format is not specified.')
        if image['container_format'] is None:
            raise Invalid('Container format is not specified.')

    def _upload(self, image, data):
        image_id = image['id']
        if image['pending_upload']:   # a presigned upload holds the image
            raise Conflict('Cannot upload to an unqueued image')
        self._require_formats(image)
        if data.media_type != OCTET_STREAM:
            self.kill(image_id)
            raise Invalid('Content-Type must be %s' % OCTET_STREAM)
        declared = image['size'] or None
        inline_limit = settings().inline_upload_limit
        if (data.length or 0) > inline_limit:
            self.kill(image_id)
            raise self._inline_too_large(image_id, inline_limit)
        remaining = self.remaining_quota(image)
        if remaining is not None and (declared or data.length or 0) > remaining:
            self.kill(image_id)
            raise self._quota_exceeded(declared or data.length, remaining)

        stamp = im.now_string()

        def start_saving(current_image):
            if current_image['status'] != im.QUEUED or current_image['pending_upload']:
                raise Conflict('Cannot upload to an unqueued image')
            return dict(current_image, status=im.SAVING, updated_at=stamp)

        try:
            self.change(image_id, start_saving)
        except CatalogUnavailable:
            self.take_back(image_id, stamp, status=im.QUEUED)
            raise
        cap = settings().image_size_cap
        limit = min(cap, inline_limit + 1) if remaining is None else \
            min(cap, remaining, inline_limit + 1)
        try:
            blob = self.blobs.put(image_id, data.stream, limit)
        except BlobTooLarge as error:
            self.kill(image_id)
            if error.args[0] > inline_limit:
                raise self._inline_too_large(image_id, inline_limit) from None
            if remaining is not None and remaining < cap:
                raise self._quota_exceeded(error.args[0], remaining) from None
            raise TooLarge(
                'Denying attempt to upload image larger than %d bytes.' % cap) from None
        except BlobStoreError:
            self.kill(image_id)
            self._discard(self.blobs.key_for(image_id))  # in case it was stored all the same
            raise Unavailable('The image store is unavailable.') from None
        mismatch = None
        if declared is not None and declared != blob.size:
            mismatch = 'Supplied size (%d) and size generated from uploaded image (%d)' % (
                declared, blob.size)
        elif image['checksum'] and image['checksum'] != blob.md5:
            mismatch = ('Supplied checksum (%s) and checksum generated from uploaded '
                        'image (%s)' % (image['checksum'], blob.md5))
        if mismatch:
            self._discard(blob.location)
            self.kill(image_id)
            raise Invalid("%s did not match. Setting image status to 'killed'." % mismatch)

        def activate(current_image):
            if current_image['status'] != im.SAVING:
                raise Changed('Image %s was deleted during the upload.' % image_id)
            return activated(current_image, blob)

        try:
            return self.change(image_id, activate)
        except Changed:
            self._discard(blob.location)
            raise
        except CatalogUnavailable:
            # Not left `saving` with bytes no record points at: killed and the bytes
            # dropped, unless the write landed and only its answer was lost.
            current = self.kill(image_id)
            if current is not None and current['status'] == im.ACTIVE and \
                    current['location'] == blob.location:
                return current
            self._discard(blob.location)
            raise

    def _abort_upload(self, pending):
        try:
            self.blobs.abort_multipart(pending['key'], pending['upload_id'])
        except BlobStoreError:
            pass  # the bucket's lifecycle rule aborts it

    def _discard(self, location):
        try:
            self.blobs.delete(location)
        except BlobStoreError:
            pass  # an orphan object, never served: no record points at it

    def kill(self, image_id, also=None):
        """queued/saving -> killed (an upload failed); other statuses stay."""
        def kill(current_image):
            if current_image['status'] not in (im.QUEUED, im.SAVING):
                return None
            return dict(current_image, status=im.KILLED, updated_at=im.now_string(),
                        **(also or {}))
        try:
            return self.catalog.update(image_id, kill)
        except (ImageMissing, ConcurrentUpdate):
            return None

    def _gone(self, location):
        try:
            return self.blobs.size_of(location) is None
        except BlobStoreError:
            return False

    # -- shared checks ----------------------------------------------------------------
    def landed(self, image_id, stamp):
        """After a write failed with CatalogUnavailable: the record if the write landed
        all the same (only its answer was lost), known by the `updated_at` it set."""
        try:
            current = self.catalog.get(image_id)
        except CatalogUnavailable:
            return None
        return current if current is not None and current['updated_at'] == stamp else None

    def take_back(self, image_id, stamp, **fields):
        """After a write failed with CatalogUnavailable: if it landed all the same (the
        record still has the `updated_at` it set), set `fields` back. Best effort."""
        try:
            self.catalog.update(image_id, lambda current_image: dict(
                current_image, **fields) if current_image['updated_at'] == stamp else None)
        except (CatalogUnavailable, ImageMissing, ConcurrentUpdate):
            pass

    def change(self, image_id, change):
        """catalog.update with the domain's errors."""
        try:
            return self.catalog.update(image_id, change)
        except ImageMissing:
            raise NotFound('Image with identifier %s not found' % image_id) from None
        except ConcurrentUpdate:
            raise Conflict('Image %s is being changed by another request; '
                           'try again.' % image_id) from None

    def _enforce_write_policies(self, context, rule, meta, data, copy_from):
        self.policy.enforce(context, rule)
        if meta.get('is_public'):
            self.policy.enforce(context, 'publicize_image')
        if copy_from is not None:
            self.policy.enforce(context, 'copy_from')
        if data is not None or copy_from is not None:
            self.policy.enforce(context, 'upload_image')

    @staticmethod
    def _check_size_cap(meta, data):
        cap = settings().image_size_cap
        size = data.length if data is not None and data.length is not None else meta.get('size')
        if size is not None and size > cap:
            raise Invalid('Denying attempt to upload image larger than %d bytes.' % cap)

    @staticmethod
    def _check_property_quota(count):
        quota = settings().image_property_quota
        if 0 <= quota < count:
            raise TooLarge(
                'The limit has been exceeded on the number of allowed image properties. '
                'Attempted: %d, Maximum: %d' % (count, quota))

    def _external_source(self, context, meta, copy_from, data):
        """(kind, url) of an x-image-meta-location or copy-from source (v1 §7 step 5);
        at most one source with the body, refused before anything is stored."""
        if 'location' not in meta and copy_from is None:
            return None
        if data is not None or ('location' in meta and copy_from is not None):
            raise Invalid("It's invalid to provide multiple image sources.")
        if 'location' in meta:
            self.policy.enforce(context, 'set_image_location')
        kind = 'location' if 'location' in meta else 'copy_from'
        url = meta.get('location') if kind == 'location' else copy_from
        if not url:
            raise Invalid('External source should not be empty')
        if urllib.parse.urlsplit(url).scheme.lower() not in im.EXTERNAL_SCHEMES:
            raise Invalid("External sources are not supported: '%s'" % url)
        return kind, url

    def _source_size(self, source, meta):
        """Refuse a source the service must not read, and ask the size it reports
        (not for a copy-from that declares one): before anything is stored."""
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

    def _handle_source(self, image, meta, data, source, remote_size):
        """Step 10 of v1 §7: upload, location or copy (one at most: _external_source)."""
        if data is not None:
            return self._upload(image, data)
        if source is None:
            return image
        kind, url = source
        if kind == 'copy_from':
            self.background('copy_image', image['id'], url)
            return image
        self._require_formats(image)
        declared = meta.get('size')
        if declared and remote_size and declared != remote_size:
            raise Conflict('Provided image size must match the stored image size. '
                           '(provided size: %d, stored size: %d)' % (declared, remote_size))

        def activate(current_image):
            if current_image['status'] != im.QUEUED:
                raise Conflict('Cannot upload to an unqueued image')
            return dict(current_image, status=im.ACTIVE, location=url,
                        size=declared or remote_size or 0, updated_at=im.now_string())
        image = self.change(image['id'], activate)
        if image['size'] > settings().inline_download_limit:
            self.background('cache_image', image['id'], url)
        return image

    def copy_from_source(self, image_id, url, offset=0, budget=None):
        """The background half of copy-from: queued -> saving, the source streamed into
        the bucket, then active, or killed when the bytes cannot be the image's. A
        source larger than one invocation copies is copied in chained steps."""
        image = self.catalog.get(image_id)
        if image is None:
            return None
        if _copy_chain(image, COPY_IMAGE):
            return self._copy_step(image_id, url, offset, budget, COPY_IMAGE)
        budget = budget or StepBudget()
        if offset or image['status'] != im.QUEUED:
            return None
        if not image['size'] or not budget.covers(image['size']):
            return self._start_copy_chain(image, url, budget, COPY_IMAGE, lambda current: dict(
                current, status=im.SAVING, updated_at=im.now_string())
                if current['status'] == im.QUEUED and not current['pending_upload'] else None)

        def start(current_image):
            if current_image['status'] != im.QUEUED:
                raise Conflict('not queued')
            return dict(current_image, status=im.SAVING, updated_at=im.now_string())
        try:
            image = self.change(image_id, start)
        except (Conflict, NotFound):
            return None
        blob, fault = self._copy_source(image, url)
        if blob is None:
            LOG.warning('copy-from of image %s failed: %s', image_id, fault)
            return self.kill(image_id)

        def finish(current_image):
            if current_image['status'] != im.SAVING:
                raise Conflict('the image changed')
            return activated(current_image, blob)
        return self._keep_copy(image_id, blob, finish)

    def cache_location(self, image_id, url, offset=0, budget=None):
        """The background copy of a large external location into the bucket, to which
        downloads are then redirected. Kept only if the bytes are the recorded size and
        match a checksum the client gave; otherwise the fault is recorded (502). A
        source larger than one invocation copies is copied in chained steps."""
        image = self.catalog.get(image_id)
        if image is None or not _still_located(image, url):
            return None
        if _copy_chain(image, CACHE_IMAGE):
            return self._copy_step(image_id, url, offset, budget, CACHE_IMAGE)
        budget = budget or StepBudget()
        if offset:
            return None
        if not image['size'] or not budget.covers(image['size']):
            return self._start_copy_chain(image, url, budget, CACHE_IMAGE, lambda current: (
                current if _still_located(current, url) and not current['pending_upload']
                and not current.get('cached_location') else None))
        blob, fault = self._copy_source(image, url)
        if blob is None:
            LOG.warning('caching the location of image %s failed: %s', image_id, fault)

        def finish(current_image):
            if not _still_located(current_image, url):
                raise Conflict('the image changed')
            if blob is None:
                return dict(current_image, source_fault=fault)
            return dict(current_image, cached_location=blob.location, source_fault=None)
        return self._keep_copy(image_id, blob, finish)

    # -- chained copies: one step per invocation -----------------------------------------
    def _start_copy_chain(self, image, url, budget, job, begins):
        """Record a chained copy in the image (a multipart upload to its key, an empty
        hash state) where `begins(record)` allows it, and take the first step."""
        image_id, location = image['id'], self.blobs.key_for(image['id'])
        limits = [settings().image_size_cap, image['size'] or None,
                  self.remaining_quota(image)]
        limit = min(bound for bound in limits if bound is not None)
        chain = {'mode': COPY, 'job': job, 'key': location,
                 'upload_id': self.blobs.create_multipart(location),
                 'part_size': part_size_for(image['size'] or limit,
                                            settings().upload_part_size),
                 'limit': limit, 'offset': 0, 'part_start': 0, 'partial_sha256': None,
                 'checksums': ResumableChecksums().state(),
                 'started_at': im.now_string(), 'expires_at': im.format_time(
                     im.utcnow() + datetime.timedelta(seconds=settings().upload_timeout))}

        def start(current_image):
            begun = begins(current_image)
            if begun is None:
                raise Conflict('another delivery started it, or the image changed')
            return dict(begun, pending_upload=chain)
        try:
            self.change(image_id, start)
        except (Conflict, NotFound, CatalogUnavailable) as error:
            self._abort_upload(chain)
            if isinstance(error, CatalogUnavailable):
                raise
            return None
        LOG.info('copying %s into image %s in steps of %s bytes', job, image_id,
                 budget.remaining)
        return self._copy_step(image_id, url, 0, budget, job)

    def _copy_step(self, image_id, url, offset, budget, job):
        """One step of a chained copy: read the source from the start of the unfinished
        part (a Range request after the first step), upload each full part, record the
        state and hand on; at the end, check, assemble and record. A step whose offset
        is not the recorded one (delivered twice, stale) does nothing; a failure of the
        store propagates, so that the step is delivered again."""
        image = self.catalog.get(image_id)
        chain = _copy_chain(image, job) if image else None
        if chain is None:
            return None   # deleted, failed or finished: the chain is over
        if chain['offset'] != offset:
            LOG.info('copying image %s: step at %d skipped, the chain is at %d',
                     image_id, offset, chain['offset'])
            return image
        budget = budget or StepBudget()
        checksums = ResumableChecksums(chain['checksums'])
        # a delivery of the last step that assembled the copy and then failed to record
        # it: the source is hashed again, its parts are not uploaded again
        assembled = [True] if self.blobs.size_of(chain['key']) is not None else []

        def put_part(number, data):
            if assembled:
                return
            try:
                self.blobs.upload_part(chain['key'], chain['upload_id'], number, data)
            except BlobMissing:
                if self.blobs.size_of(chain['key']) is None:
                    raise   # aborted: the image was deleted, or the store lost the parts
                assembled.append(number)
        try:
            stream = self.sources.open(url, chain['part_start'] if offset else None)
            progress = copy_stream(stream, chain, checksums, budget, put_part,
                                   image['size'] or None)
        except BlobTooLarge:
            return self._end_copy_chain(image_id, chain, 'The external source sent more '
                                        'than %d bytes.' % chain['limit'])
        except (SourceNotFound, SourceUnavailable, SourceRefused, SourceChanged) as error:
            return self._end_copy_chain(image_id, chain, str(error))
        except BlobMissing:
            return self._end_copy_chain(image_id, chain, 'The image store lost the parts '
                                        'of the copy.')
        LOG.info('copying image %s: %d to %d%s', image_id, offset, progress.offset,
                 ' (the end)' if progress.done else '')
        if not progress.done:
            return self._hand_on_copy(image_id, url, chain, progress, checksums)
        md5, sha256 = checksums.hexdigests()
        fault = integrity_fault(image, progress.offset, md5)
        if fault:
            return self._end_copy_chain(image_id, chain, fault)
        if not progress.offset:   # an empty source: no part to assemble
            self._abort_upload(chain)
            self.blobs.put(image_id, io.BytesIO(b''), 0)
        elif not assembled:
            try:
                self.blobs.complete_parts(chain['key'], chain['upload_id'])
            except BlobMissing:   # assembled by a delivery that failed afterwards
                if self.blobs.size_of(chain['key']) != progress.offset:
                    return self._end_copy_chain(image_id, chain, 'The image store lost '
                                                'the parts of the copy.')
        blob = HashedBlob(chain['key'], progress.offset, md5, sha256)

        def finish(current_image):
            if _copy_chain(current_image, job) != chain:
                raise Conflict('the image changed')
            if job == CACHE_IMAGE:
                return dict(current_image, cached_location=blob.location, source_fault=None,
                            pending_upload=None)
            return dict(activated(current_image, blob), pending_upload=None)
        try:
            return self.change(image_id, finish)
        except (Conflict, NotFound):
            current = self.catalog.get(image_id)
            if current is not None and not current['deleted'] and blob.location in (
                    bucket_location(current), current.get('cached_location')):
                return current   # another delivery recorded it
            self._discard(blob.location)
            return None

    def _hand_on_copy(self, image_id, url, chain, progress, checksums):
        """Record the state a step reached (only over the one it started from) and ask
        for the next step; if that request fails the state is set back, so that this
        step, delivered again, is the one that continues."""
        advanced = dict(chain, offset=progress.offset, part_start=progress.part_start,
                        partial_sha256=progress.partial_sha256, checksums=checksums.state())

        def move(expected, new):
            def change(current_image):
                if _copy_chain(current_image, chain['job']) != expected:
                    raise Conflict('the chain moved on')
                return dict(current_image, pending_upload=new)
            return change
        try:
            image = self.change(image_id, move(chain, advanced))
        except (Conflict, NotFound):
            current = self.catalog.get(image_id)
            if (_copy_chain(current, chain['job']) or {}).get('upload_id') != \
                    chain['upload_id']:
                self._abort_upload(chain)   # the image went: its parts go too
            return None   # else another delivery took this step
        except CatalogUnavailable:
            current = self.catalog.get(image_id)   # the write may have landed
            if current is None or _copy_chain(current, chain['job']) != advanced:
                raise
            image = current
        try:
            self.background(chain['job'], image_id, url, progress.offset)
        except Exception:
            self.change(image_id, move(advanced, chain))
            raise
        return image

    def _end_copy_chain(self, image_id, chain, fault):
        """A chained copy that cannot be the image's: its parts and object go, and the
        image is killed (copy-from) or records the fault (a location's cache)."""
        LOG.warning('copying image %s failed: %s', image_id, fault)
        current = self.catalog.get(image_id)
        if _copy_chain(current, chain['job']) != chain:
            return current   # moved on, recorded or gone: its parts are not ours to drop
        self._abort_upload(chain)   # first: a record never outlives what it points at
        self._discard(chain['key'])

        def fail(current_image):
            if _copy_chain(current_image, chain['job']) != chain:
                return None
            if chain['job'] == CACHE_IMAGE:
                return dict(current_image, source_fault=fault, pending_upload=None)
            return dict(current_image, status=im.KILLED, updated_at=im.now_string(),
                        pending_upload=None)
        try:
            return self.change(image_id, fail)
        except (Conflict, NotFound):
            return None

    def _copy_source(self, image, url):
        """Stream `url` into the image's object, stopping past its recorded size (if it
        has one), the size cap or the owner's remaining quota: (blob, None) when the
        bytes can be the image's, else (None, why) with nothing left in the bucket."""
        limits = [settings().image_size_cap, image['size'] or None,
                  self.remaining_quota(image)]
        limit = min(bound for bound in limits if bound is not None)
        try:
            stream = self.sources.open(url)
            try:
                blob = self.blobs.put(image['id'], stream, limit)
            finally:
                stream.close()
        except BlobTooLarge:
            return None, 'The external source sent more than %d bytes.' % limit
        except (SourceNotFound, SourceUnavailable, SourceRefused) as error:
            return None, str(error)
        except BlobStoreError:
            self._discard(self.blobs.key_for(image['id']))
            return None, 'The image store is unavailable.'
        fault = integrity_fault(image, blob.size, blob.md5)
        if fault:
            self._discard(blob.location)
            return None, fault
        return blob, None

    def _keep_copy(self, image_id, blob, finish):
        """Record a background copy; its object goes if the image changed meanwhile
        (deleted, or another location): no bytes without a record pointing at them."""
        try:
            return self.change(image_id, finish)
        except (Conflict, NotFound, CatalogUnavailable):
            if blob is not None:
                self._discard(blob.location)
            return None

    def remaining_quota(self, image):
        """Bytes the owner may still store, or None when there is no quota."""
        quota = settings().user_storage_quota
        if not quota or image['owner'] is None:
            return None
        stored = sum(other['size'] or 0 for other in self.catalog.images_of(('owner', image['owner']))
                     if other['location'] and other['id'] != image['id'])
        return max(quota - stored, 0)

    def check_quota_for(self, image, size):
        remaining = self.remaining_quota(image)
        if remaining is not None and size > remaining:
            raise self._quota_exceeded(size, remaining)

    @staticmethod
    def _inline_too_large(image_id, limit):
        return TooLarge(
            'Image data larger than %d bytes cannot be sent in the request body; reserve a '
            'presigned upload instead: POST /v1/images/%s/upload' % (limit, image_id))

    @staticmethod
    def _quota_exceeded(size, remaining):
        return TooLarge(
            'Denying attempt to upload image because it exceeds the quota: The size of '
            'the data %s will exceed the limit. %d bytes remaining.' % (size, remaining))
