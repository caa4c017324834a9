"""Image bytes from the source to the target, streamed: read once, in order, hashed as
they pass, never on disk; memory is a chunk or two per image being copied.

Small images go inline (PUT /v1/images/{id} with the body); larger ones through the
presigned upload (glance_upload's API client and its paging of part URLs), one part
after the other from the same source stream. A rerun resumes a half-uploaded multipart
image from the target's reservation: the parts stored already are read from the source
again (to hash them) but not sent.
"""
import hashlib
import threading

import requests

from glance_upload.api import ApiError
from glance_upload.cli import PUT_TIMEOUT, Stopped, Uploader, complete, wait_for_outcome

CHUNK = 1 << 20
OCTET_STREAM = 'application/octet-stream'


class TransferError(Exception):
    """The bytes could not be moved (the image is left queued or killed on the target)."""


class SourceStream:
    """The source's bytes of one image, in order, hashed (MD5, and the v2 os_hash_algo).

    When the bytes do not match the source's os_hash_value while the MD5 matches (the
    target checks only the MD5), the last byte sent is changed, so the target's own MD5
    check kills the image instead of activating unverified bytes.
    """

    def __init__(self, response, image, on_bytes):
        self.response = response
        self.chunks = response.iter_content(CHUNK)
        self.pending = b''
        self.image = image
        self.left = image['size']
        self.on_bytes = on_bytes
        self.md5 = hashlib.md5()
        algorithm = (image.get('hash') or (None, None))[0]
        self.extra = hashlib.new(algorithm) \
            if algorithm in hashlib.algorithms_available else None
        self.problems = []

    def take(self, amount):
        """Up to `amount` bytes (fewer at a chunk boundary); b'' at the recorded size."""
        amount = min(amount, self.left)
        if not amount:
            return b''
        if not self.pending:
            self.pending = next(self.chunks, b'')
            if not self.pending:
                raise TransferError('the source sent %d bytes of %d'
                                    % (self.image['size'] - self.left, self.image['size']))
        data, self.pending = self.pending[:amount], self.pending[amount:]
        self.md5.update(data)
        if self.extra is not None:
            self.extra.update(data)
        self.left -= len(data)
        if not self.left:
            data = self._last(data)
        self.on_bytes(len(data))
        return data

    def _last(self, data):
        if self.pending or next(self.chunks, b''):
            self.problems.append('the source sent more than its recorded size %d'
                                 % self.image['size'])
        checksum = self.image.get('checksum')
        if checksum and self.md5.hexdigest() != checksum:
            self.problems.append('the source bytes have MD5 %s, the source records %s'
                                 % (self.md5.hexdigest(), checksum))
        if self.extra is not None and self.extra.hexdigest() != self.image['hash'][1]:
            self.problems.append('the source bytes do not match its %s os_hash_value'
                                 % self.image['hash'][0])
        if self.problems and not (checksum and self.md5.hexdigest() != checksum):
            data = data[:-1] + bytes([data[-1] ^ 1])  # the target's MD5 check refuses it
        return data

    def close(self):
        self.response.close()


class Window:
    """`size` bytes of a SourceStream, as a request body: requests sends the
    Content-Length (which a presigned URL signs) and iterates the chunks."""

    def __init__(self, stream, size, stop):
        self.stream, self.size, self.left, self.stop = stream, size, size, stop

    def __len__(self):
        return self.size

    def __iter__(self):
        while self.left:
            if self.stop.is_set():
                raise Stopped('interrupted')
            data = self.stream.take(min(CHUNK, self.left))
            self.left -= len(data)
            yield data

    def drain(self):
        for _ in self:
            pass


class PartBudget:
    """For tests: how many multipart parts this run may still send (None: no limit)."""

    def __init__(self, limit):
        self.limit, self.lock = limit, threading.Lock()

    def spend(self):
        with self.lock:
            if self.limit is None:
                return
            if self.limit <= 0:
                raise Stopped('stopped before a part (--stop-after-parts)')
            self.limit -= 1


_local = threading.local()


def _s3_session():
    """A session without the API's headers: tokens are never sent to S3."""
    if not hasattr(_local, 'session'):
        _local.session = requests.Session()
    return _local.session


def put_presigned(url, body, headers):
    headers = headers or {'Content-Length': str(len(body))}
    try:
        response = _s3_session().put(url, data=body, headers=headers, timeout=PUT_TIMEOUT)
    except requests.RequestException as error:
        raise TransferError('a presigned PUT failed: %s' % error) from None
    if not response.ok:
        raise TransferError('a presigned PUT answered HTTP %d' % response.status_code)
    return response.headers.get('ETag')


def copy_inline(target, image, stream, stop):
    """PUT /v1/images/{id} with the body; the target checks size and MD5 (else killed)."""
    body = Window(stream, image['size'], stop)
    try:
        target.call('PUT', '/images/%s' % image['id'], (200,), data=body,
                    headers={'Content-Type': OCTET_STREAM})
    except ApiError as error:
        if error.status == 400:  # size or checksum mismatch: killed by the target
            return
        raise


def reservation(target, image, part_size):
    """The target's reservation to continue, a new one, or None when the upload was
    completed already (the image is saving, active or killed)."""
    if target.image(image['id'])['status'] != 'queued':
        return None
    try:
        return target.reservation(image['id'])
    except ApiError as error:
        if error.status != 409:  # 409: the image has no upload (yet, or aborted)
            raise
    return target.reserve(image['id'], image['size'], image.get('checksum'), part_size)


def copy_presigned(target, image, stream, stop, part_size, budget, counts):
    upload = reservation(target, image, part_size)
    if upload is None:
        return
    if upload['mode'] == 'single':
        put_presigned(upload['url'], Window(stream, image['size'], stop), upload['headers'])
        complete(target, image['id'], None)
        return
    etags = []
    for part in Uploader(target, None, 1).parts(image['id'], upload):
        window = Window(stream, part['size'], stop)
        if part['uploaded']:
            window.drain()  # hashed, not sent again
            counts['parts_skipped'] += 1
            etags.append({'part_number': part['part_number'], 'etag': part['etag']})
            continue
        budget.spend()
        etag = put_presigned(part['url'], window, part.get('headers'))
        counts['parts_uploaded'] += 1
        etags.append({'part_number': part['part_number'], 'etag': etag})
    if counts['parts_skipped']:
        counts['resumed'] = True
    complete(target, image['id'], etags)


def new_counts(image, options):
    return {'parts_uploaded': 0, 'parts_skipped': 0, 'resumed': False,
            'path': 'inline' if image['size'] <= options.inline_limit else 'presigned'}


def copy_bytes(source, target, image, options, on_bytes, stop, budget, counts):
    """Moves the bytes of one active source image into its queued target image, noting
    the parts in `counts` (new_counts) as it goes.

    -> (target record, problems with the source's bytes)."""
    stream = SourceStream(source.open(image['id']), image, on_bytes)
    try:
        if counts['path'] == 'inline':
            copy_inline(target, image, stream, stop)
        else:
            copy_presigned(target, image, stream, stop, options.part_size, budget, counts)
    finally:
        stream.close()
    if counts['path'] == 'inline':
        return target.image(image['id']), stream.problems  # decided by the PUT
    return wait_for_outcome(target, image['id'], options.wait), stream.problems
