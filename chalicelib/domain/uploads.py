"""Presigned uploads (beyond v1): image bytes go from the client straight to S3.

A queued image gets a reservation (one presigned PUT, or a multipart upload with
a presigned URL per part). Completion moves it to `saving`; the finalizer, fed
by the bucket's ObjectCreated events, streams the object once for MD5 and
SHA-256, checks size, checksum, cap and quota, and activates or kills the image.
Reservations left unfinished are reaped.
"""
import datetime
import logging
import math

from chalicelib.config import settings
from chalicelib.domain import image_meta as im
from chalicelib.domain.errors import (Invalid, Conflict, Forbidden, NotFound,
                                      Unavailable)
from chalicelib.domain.images import activated
from chalicelib.domain.ports import (BlobMissing, BlobStoreError, BlobTooLarge,
                                     CatalogUnavailable)
from chalicelib.domain.steps import (HashedBlob, ResumableChecksums, StepBudget,
                                     hash_stream, part_range, part_size_for)
from chalicelib.domain.visibility import can_modify

SINGLE, MULTIPART = 'single', 'multipart'
MAX_SINGLE_PUT = 5 << 30         # S3's largest single PUT
LOG = logging.getLogger(__name__)


def _later(seconds):
    return im.format_time(im.utcnow() + datetime.timedelta(seconds=seconds))


class UploadService:
    def __init__(self, catalog, blobs, images, policy):
        self.catalog, self.blobs, self.images, self.policy = catalog, blobs, images, policy

    # -- the client's side ------------------------------------------------------------
    def reserve(self, context, image_id, size, checksum=None, part_size=None):
        """Reserve a presigned upload for a queued image; returns its description."""
        image = self._image_to_upload(context, image_id)
        size = _positive_int(size, 'size')
        if size > settings().image_size_cap:
            raise Invalid('Denying attempt to upload image larger than %d bytes.'
                             % settings().image_size_cap)
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
        checksum = checksum or image['checksum']
        self.images.check_quota_for(image, size)
        mode, part_size = self._plan(size, part_size)
        key = self.blobs.upload_key_for(image_id)
        upload = {'mode': mode, 'key': key, 'size': size, 'checksum': checksum,
                  'part_size': part_size, 'started_at': im.now_string(),
                  'expires_at': _later(settings().upload_timeout), 'upload_id': None}
        if mode == MULTIPART:
            upload['upload_id'] = self._store(self.blobs.create_multipart, key)
        stamp = im.now_string()

        def take(current_image):
            if current_image['status'] != im.QUEUED or current_image['pending_upload']:
                raise Conflict('Cannot upload to an unqueued image, or one with an upload '
                               'in progress')
            return dict(current_image, pending_upload=upload, size=size, checksum=checksum,
                        updated_at=stamp)
        try:
            image = self.images.change(image_id, take)
        except Conflict:
            if upload['upload_id']:
                self.blobs.abort_multipart(key, upload['upload_id'])
            raise
        except CatalogUnavailable:
            image = self.images.landed(image_id, stamp)
            if image is None:   # not recorded: no one would ever complete or abort it
                self._abort(upload)
                raise
        return self.describe(image, fresh=True)

    def show(self, context, image_id, part_marker=0):
        """The reservation: a page of parts after `part_marker`, those already uploaded
        and fresh URLs for the rest."""
        return self.describe(self._image_with_upload(context, image_id),
                             part_marker=part_marker)

    def complete(self, context, image_id, parts=None):
        """Finish the upload: the image goes to `saving`; exactly one caller wins."""
        image = self._image_with_upload(context, image_id)
        upload = image['pending_upload']
        if upload['mode'] == SINGLE and self._store(self.blobs.size_of, upload['key']) is None:
            raise Conflict('Nothing was uploaded for image %s yet' % image_id)
        if upload['mode'] == MULTIPART:
            try:
                uploaded = {p['part_number'] for p in self._store(
                    self.blobs.list_parts, upload['key'], upload['upload_id'])}
            except BlobMissing:   # a racing completion assembled it already
                raise Conflict('The upload of image %s is already completed'
                               % image_id) from None
            missing = [n for n, _ in _parts(upload['size'], upload['part_size'])
                       if n not in uploaded]
            if missing:
                raise Conflict('Parts %s of image %s are not uploaded yet; GET the upload '
                               'for their URLs' % (', '.join(map(str, missing)), image_id))

        stamp = im.now_string()

        def start_saving(current_image):
            pending = current_image['pending_upload']
            if current_image['status'] != im.QUEUED or not pending or \
                    pending.get('upload_id') != upload['upload_id']:
                raise Conflict('The upload of image %s is already completed' % image_id)
            return dict(current_image, status=im.SAVING, updated_at=stamp)
        try:
            image = self.images.change(image_id, start_saving)
        except CatalogUnavailable:   # queued again, so that completing may be retried
            self.images.take_back(image_id, stamp, status=im.QUEUED)
            raise
        if upload['mode'] == MULTIPART:
            try:
                done = parts or self.blobs.list_parts(upload['key'], upload['upload_id'])
                self.blobs.complete_multipart(upload['key'], upload['upload_id'], done)
            except BlobMissing:
                self._discard(upload)
                self.images.kill(image_id, also={'pending_upload': None})
                raise Invalid('The parts of image %s could not be assembled; the image '
                                 "is now 'killed'." % image_id) from None
            except BlobStoreError:
                # The parts are still in S3: queued again with the reservation, so
                # that completing may be retried (if S3 did assemble them, its
                # event finalizes the image all the same).
                self.images.change(image_id, lambda current_image: dict(
                    current_image, status=im.QUEUED, updated_at=im.now_string())
                    if current_image['status'] == im.SAVING and (current_image[
                        'pending_upload'] or {}).get('upload_id') == upload['upload_id']
                    else None)
                raise Unavailable('The image store is unavailable; the upload of '
                                         'image %s was not completed, try again.'
                                         % image_id) from None
        return image

    def abort(self, context, image_id):
        """Give up the reservation: the image is `queued` again, with no upload."""
        image = self._image_with_upload(context, image_id)
        upload = image['pending_upload']

        def release(current_image):
            if current_image['status'] != im.QUEUED or not current_image['pending_upload']:
                raise Conflict('The upload of image %s is already completed' % image_id)
            return dict(current_image, pending_upload=None, updated_at=im.now_string())
        self.images.change(image_id, release)
        self._discard(upload)

    def describe(self, image, fresh=False, part_marker=0):
        """The reservation for the client; `fresh`: just made, no part uploaded yet.

        A multipart reservation answers one page of parts, those numbered after
        `part_marker`: every URL carries the session token, and 10,000 of them would
        pass Lambda's 6 MB response limit. `next_part_marker` asks for the next page.
        """
        upload, expiry = image['pending_upload'], settings().presign_expiry
        every_part = [(1, upload['size'])] if upload['mode'] == SINGLE else \
            _parts(upload['size'], upload['part_size'])
        if not 0 <= part_marker < len(every_part):
            raise Invalid('Invalid part_marker %d: the upload of image %s has parts 1 to '
                             '%d; part_marker is the last part number of the previous page '
                             '(0 for the first page).'
                             % (part_marker, image['id'], len(every_part)))
        described = {'image_id': image['id'], 'mode': upload['mode'], 'size': upload['size'],
                     'expires_at': upload['expires_at'],
                     'urls_expire_at': _later(expiry)}
        if upload['mode'] == SINGLE:
            described.update(method='PUT', headers={
                'Content-Type': 'application/octet-stream',
                'Content-Length': str(upload['size'])},
                url=self.blobs.presign_put(upload['key'], upload['size'], expiry))
            return described
        page = every_part[part_marker:part_marker + max(1, settings().upload_parts_page)]
        last = page[-1][0]
        done = {} if fresh else {p['part_number']: p for p in self._store(
            self.blobs.list_parts, upload['key'], upload['upload_id'], last)}
        parts = []
        for number, part_size in page:
            if number in done:
                parts.append(dict(done[number], uploaded=True))
            else:
                parts.append({'part_number': number, 'size': part_size, 'uploaded': False,
                              'method': 'PUT', 'url': self.blobs.presign_part(
                                  upload['key'], upload['upload_id'], number, part_size,
                                  expiry)})
        described.update(upload_id=upload['upload_id'], part_size=upload['part_size'],
                         part_count=len(every_part), parts=parts)
        if last < len(every_part):   # as Glance's `next`: absent on the last page
            described['next_part_marker'] = last
        return described

    # -- the finalizer and the reaper ---------------------------------------------------
    def finalize(self, key, budget=None):
        """Handle an ObjectCreated event for `key`: activate or kill, or start a chained
        finalization when the object is larger than one step takes. Idempotent."""
        image_id = key[len(self.blobs.upload_key_for('')):]
        image = self.catalog.get(image_id)
        if image is None or image['status'] not in (im.QUEUED, im.SAVING) or \
                not image['pending_upload'] or image['pending_upload']['key'] != key:
            # a duplicate event, an upload reaped or aborted, or bytes sent to a URL
            # that outlived its reservation: nothing may keep them
            self._discard({'key': key})
            return None
        upload = image['pending_upload']

        def start_saving(current_image):  # single PUTs complete by arriving
            if current_image['status'] == im.QUEUED and current_image['pending_upload']:
                return dict(current_image, status=im.SAVING, updated_at=im.now_string())
            return None
        image = self.images.change(image_id, start_saving)
        if image['status'] != im.SAVING:
            return None
        if image['pending_upload'].get('finalizing'):   # a chain holds it already
            return image
        remaining = self.images.remaining_quota(image)
        cap = settings().image_size_cap
        limit = cap if remaining is None else min(cap, remaining)
        budget = budget or StepBudget()
        if not budget.covers(upload['size']):
            return self._start_chain(image, limit, budget)
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
            return self.images.kill(image_id, also={'pending_upload': None})
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

    def _activate(self, image_id, blob, location):
        def activate(current_image):
            if current_image['status'] != im.SAVING:
                return None
            return dict(activated(current_image, blob, location), pending_upload=None)
        image = self.images.change(image_id, activate)
        if image['status'] != im.ACTIVE:   # deleted meanwhile
            self._discard({'key': location})
        return image

    # -- chained finalization: one step per invocation ----------------------------------
    def _start_chain(self, image, limit, budget):
        """Record the chain's start (the object's ETag, an empty hash state, the
        multipart copy to the image's key) and take its first step."""
        image_id, upload = image['id'], image['pending_upload']
        try:
            size, etag = self.blobs.head(upload['key'])
        except BlobMissing:
            return self.images.kill(image_id, also={'pending_upload': None})
        if size > limit or size != upload['size']:
            return self._refuse(image_id, upload, upload['key'])
        location = self.blobs.key_for(image_id)
        chain = {'offset': 0, 'etag': etag, 'copy_key': location,
                 'copy_id': self.blobs.create_multipart(location),
                 'part_size': part_size_for(size, settings().upload_part_size),
                 'checksums': ResumableChecksums().state()}

        def start(current_image):
            pending = current_image['pending_upload']
            if current_image['status'] != im.SAVING or not pending or \
                    pending['key'] != upload['key'] or pending.get('finalizing'):
                raise Conflict('another delivery started it')
            return dict(current_image, pending_upload=dict(pending, finalizing=chain))
        try:
            self.images.change(image_id, start)
        except (Conflict, NotFound, CatalogUnavailable) as error:
            self.blobs.abort_multipart(location, chain['copy_id'])
            if isinstance(error, CatalogUnavailable):
                raise
            return None
        LOG.info('finalizing image %s in steps of %s bytes', image_id, budget.remaining)
        return self.finalize_step(image_id, 0, budget)

    def finalize_step(self, image_id, offset, budget=None):
        """One step of a chained finalization: hash the upload from `offset` as far as
        the budget allows, copy the parts that lie before the offset reached, then
        record the state and hand on, or assemble, check and activate at the end. A
        step whose offset is not the recorded one (delivered twice, stale) does nothing."""
        image = self.catalog.get(image_id)
        upload = (image or {}).get('pending_upload') or {}
        chain = upload.get('finalizing')
        if image is None or image['status'] != im.SAVING or not chain:
            return None   # deleted, refused or activated: the chain is over
        if chain['offset'] != offset:
            LOG.info('finalizing image %s: step at %d skipped, the chain is at %d',
                     image_id, offset, chain['offset'])
            return image
        budget = budget or StepBudget()
        size, location = upload['size'], chain['copy_key']
        checksums = ResumableChecksums(chain['checksums'])
        assembled = False
        try:
            try:
                end = hash_stream(self.blobs.read_from(upload['key'], offset, chain['etag']),
                                  offset, size, checksums, budget)
            except BlobMissing:
                # a delivery of the last step assembled the copy and removed the upload,
                # then failed to record it: the rest is hashed from the copy
                if self.blobs.size_of(location) != size:
                    raise
                assembled = True
                end = hash_stream(self.blobs.read_from(location, offset, None),
                                  offset, size, checksums, budget)
            if not assembled:
                assembled = self._copy_parts(image_id, upload, chain, offset, end)
        except (BlobMissing, EOFError):   # changed or removed since it was checked
            return self._refuse(image_id, upload, upload['key'])
        LOG.info('finalizing image %s: hashed %d to %d of %d', image_id, offset, end, size)
        if end < size:
            return self._hand_on(image_id, chain, end, checksums)
        return self._complete_chain(image_id, upload, chain, checksums, assembled)

    def _copy_parts(self, image_id, upload, chain, offset, end):
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

    def _hand_on(self, image_id, chain, end, checksums):
        """Record the state at `end` (only over the state this step started from) and
        ask for the next step; if that request fails the state is set back, so that
        this step, delivered again, is the one that continues."""
        advanced = dict(chain, offset=end, checksums=checksums.state())

        def move(expected, new):
            def change(current_image):
                pending = current_image['pending_upload'] or {}
                if current_image['status'] != im.SAVING or \
                        pending.get('finalizing') != expected:
                    raise Conflict('the chain moved on')
                return dict(current_image, pending_upload=dict(pending, finalizing=new))
            return change
        try:
            image = self.images.change(image_id, move(chain, advanced))
        except (Conflict, NotFound):
            return None   # another delivery took this step, or the image went
        except CatalogUnavailable:
            current = self.catalog.get(image_id)   # the write may have landed
            if current is None or (current['pending_upload'] or {}).get(
                    'finalizing') != advanced:
                raise
            image = current
        try:
            self.images.background('finalize', image_id, None, end)
        except Exception:
            self.images.change(image_id, move(advanced, chain))
            raise
        return image

    def _complete_chain(self, image_id, upload, chain, checksums, assembled):
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

    def reap(self, now=None):
        """Kill images whose reservation expired; abort what S3 still holds. -> ids."""
        reaped = []
        for image in self.catalog.expired_uploads(now or im.now_string()):
            self._discard(image['pending_upload'])
            killed = self.images.kill(image['id'])
            if killed is not None and killed['status'] == im.KILLED:
                # bytes a finalizer moved and then failed to record, every delivery
                self._discard({'key': self.blobs.key_for(image['id'])})
            self.release(image['id'])
            reaped.append(image['id'])
        return reaped

    def release(self, image_id):
        """Forget a reservation whatever the image's status (killed, deleted...)."""
        try:
            self.images.change(image_id, lambda current_image: dict(
                current_image, pending_upload=None) if current_image['pending_upload'] else None)
        except Exception:  # noqa: BLE001 - the record is gone or busy: nothing to release
            pass

    # -- helpers -------------------------------------------------------------------------
    def _image_to_upload(self, context, image_id):
        self.policy.enforce(context, 'modify_image')
        self.policy.enforce(context, 'upload_image')
        image = self.images.get_visible(context, image_id)
        if image['status'] == im.DELETED:
            raise Forbidden('Forbidden to update deleted image.')
        if image['status'] != im.QUEUED or image['pending_upload']:
            raise Conflict('Cannot upload to an unqueued image, or one with an upload '
                           'in progress')
        if not can_modify(context, image):
            raise Forbidden('Forbidden to upload to image: %s' % image_id)
        return image

    def _image_with_upload(self, context, image_id):
        image = self.images.get_visible(context, image_id)
        if not can_modify(context, image):
            raise Forbidden('Forbidden to upload to image: %s' % image_id)
        if image['status'] != im.QUEUED or not image['pending_upload']:
            raise Conflict('Image %s has no upload in progress' % image_id)
        return image

    def _refuse(self, image_id, upload, checked):
        """Kill the image; drop the upload and the object that was checked."""
        self._discard(upload)
        if checked != upload['key']:
            self._discard({'key': checked})
        return self.images.kill(image_id, also={'pending_upload': None})

    def _abort(self, upload):
        """Abort the multipart upload only (the key may hold another reservation's
        object)."""
        try:
            if upload.get('upload_id'):
                self.blobs.abort_multipart(upload['key'], upload['upload_id'])
        except BlobStoreError:
            pass  # left for the bucket's lifecycle rule

    def _discard(self, upload):
        try:
            if upload.get('upload_id'):
                self.blobs.abort_multipart(upload['key'], upload['upload_id'])
            chain = upload.get('finalizing')
            if chain:   # the multipart copy of a chained finalization
                self.blobs.abort_multipart(chain['copy_key'], chain['copy_id'])
            self.blobs.delete(upload['key'])
        except BlobStoreError:
            pass  # left for the bucket's lifecycle rule; no record points at it

    @staticmethod
    def _store(operation, *args):
        try:
            return operation(*args)
        except BlobStoreError:
            raise Unavailable('The image store is unavailable.') from None

    @staticmethod
    def _plan(size, part_size):
        if part_size is not None:
            part_size = _positive_int(part_size, 'part_size')
        elif size <= min(settings().upload_part_size, MAX_SINGLE_PUT):
            return SINGLE, None
        else:
            part_size = settings().upload_part_size
        # within S3's bounds (larger parts would be refused, and a number over 38 digits
        # could not even be stored with the reservation)
        return MULTIPART, part_size_for(size, part_size)


def _parts(size, part_size):
    """(part_number, size) of each part."""
    count = max(1, math.ceil(size / part_size))
    return [(n + 1, min(part_size, size - n * part_size)) for n in range(count)]


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid('%s must be a positive integer' % name)
    return value

