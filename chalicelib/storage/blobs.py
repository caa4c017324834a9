"""Image bytes in S3: one object per image, checksums computed while streaming."""
from __future__ import annotations

import dataclasses
import hashlib
import threading
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config import settings
from chalicelib.domain.ports import (BlobMissing, BlobStoreError, BlobTooLarge, Part,
                                     PartLimits)

_CHUNK = 1 << 20
UPLOAD_PREFIX = 'uploads/'
# S3's: the smallest part (all but the last), the largest part, the most parts, the
# largest single PUT
S3_LIMITS = PartLimits(min_part_size=5 << 20, max_part_size=5 << 30, max_parts=10000,
                       max_single_put=5 << 30)


@dataclasses.dataclass(frozen=True)
class StoredBlob:
    location: str
    size: int
    md5: str
    sha256: str


class _HashingReader:
    """A non-seekable read() that counts, hashes and stops at `limit` bytes."""

    def __init__(self, stream, limit):
        self._stream, self._limit = stream, limit
        self.size = 0
        self.md5, self.sha256 = hashlib.md5(), hashlib.sha256()
        self.too_large = False

    def read(self, amount=-1):
        chunk = self._stream.read(_CHUNK if amount is None or amount < 0 else amount)
        self.size += len(chunk)
        if self.size > self._limit:
            self.too_large = True
            raise BlobTooLarge(self.size)
        self.md5.update(chunk)
        self.sha256.update(chunk)
        return chunk


_session_lock = threading.Lock()
_sessions: list = []


def s3_client() -> Any:
    """A new S3 client from one shared boto3 session (its service models load once)."""
    current = settings()
    with _session_lock:
        if not _sessions:
            _sessions.append(boto3.session.Session())
        return _sessions[0].client(
            's3', region_name=current.region, endpoint_url=current.aws_endpoint_url,
            config=Config(signature_version='s3v4', s3={'addressing_style': 'path'}))


class ImageBlobStore:
    limits = S3_LIMITS

    def __init__(self, client_factory=s3_client):
        self._client_factory = client_factory
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    @property
    def bucket(self) -> str:
        return settings().image_bucket

    @staticmethod
    def key_for(image_id: str) -> str:
        return 'images/%s' % image_id

    @staticmethod
    def upload_key_for(image_id: str) -> str:
        """Where presigned uploads land; bucket events under it reach the finalizer."""
        return UPLOAD_PREFIX + image_id

    def put(self, image_id: str, stream: BinaryIO, limit: int) -> StoredBlob:
        """Stream `stream` into the image's object; at most `limit` bytes."""
        key = self.key_for(image_id)
        reader = _HashingReader(stream, limit)
        try:
            self.client.upload_fileobj(reader, self.bucket, key)
        except Exception as error:
            if reader.too_large:
                self.delete(key)
                raise BlobTooLarge(reader.size) from error
            if isinstance(error, (BotoCoreError, ClientError)):
                raise BlobStoreError(str(error)) from error
            raise
        return StoredBlob(key, reader.size, reader.md5.hexdigest(),
                          reader.sha256.hexdigest())

    def read(self, location: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=location)['Body'].read()
        except ClientError as error:
            if error.response['Error']['Code'] in ('NoSuchKey', '404'):
                raise BlobMissing(location) from error
            raise BlobStoreError(str(error)) from error
        except BotoCoreError as error:
            raise BlobStoreError(str(error)) from error

    def delete(self, location: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=location)
        except (BotoCoreError, ClientError) as error:
            raise BlobStoreError(str(error)) from error

    # -- presigned uploads and downloads ---------------------------------------------
    def _call(self, operation, missing=('NoSuchKey', '404', 'NoSuchUpload'), **params):
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except ClientError as error:
            if error.response['Error']['Code'] in missing:
                raise BlobMissing(params.get('Key')) from error
            raise BlobStoreError(str(error)) from error
        except BotoCoreError as error:
            raise BlobStoreError(str(error)) from error

    def _presign(self, operation, expiry, **params):
        return self.client.generate_presigned_url(
            operation, Params=dict(Bucket=self.bucket, **params), ExpiresIn=expiry)

    def presign_put(self, key: str, size: int, expiry: int) -> str:
        """A SigV4 PUT bound to the key, the content type and the length."""
        return self._presign('put_object', expiry, Key=key, ContentLength=size,
                             ContentType='application/octet-stream')

    def presign_part(self, key: str, upload_id: str, part_number: int, size: int,
                     expiry: int) -> str:
        return self._presign('upload_part', expiry, Key=key, UploadId=upload_id,
                             PartNumber=part_number, ContentLength=size)

    def presign_get(self, location: str, expiry: int) -> str:
        return self._presign('get_object', expiry, Key=location)

    def create_multipart(self, key: str) -> str:
        return self._call('create_multipart_upload', Key=key,
                          ContentType='application/octet-stream')['UploadId']

    def list_parts(self, key: str, upload_id: str, through: int | None = None) -> list[Part]:
        """[{part_number, etag, size}] uploaded so far, or only up to part `through` (a
        page of a reservation). Listed from the first part: moto reads PartNumberMarker
        as an index into the uploaded parts, S3 as a part number."""
        parts, marker = [], 0
        while True:
            page = self._call('list_parts', Key=key, UploadId=upload_id,
                              PartNumberMarker=marker)
            parts += [{'part_number': p['PartNumber'], 'etag': p['ETag'], 'size': p['Size']}
                      for p in page.get('Parts', [])
                      if through is None or p['PartNumber'] <= through]
            if not page.get('IsTruncated'):
                return parts
            marker = page['NextPartNumberMarker']
            if through is not None and marker >= through:
                return parts

    def complete_multipart(self, key: str, upload_id: str, parts: list[Part]) -> None:
        """BlobMissing when the upload is gone or the parts are not those uploaded
        (wrong ETags, too small): the client's parts, not the store, are at fault."""
        self._call('complete_multipart_upload', Key=key, UploadId=upload_id,
                   missing=('NoSuchKey', '404', 'NoSuchUpload', 'InvalidPart',
                            'InvalidPartOrder', 'EntityTooSmall'),
                   MultipartUpload={'Parts': [
                       {'PartNumber': p['part_number'], 'ETag': p['etag']}
                       for p in sorted(parts, key=lambda p: p['part_number'])]})

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self._call('abort_multipart_upload', Key=key, UploadId=upload_id)
        except BlobMissing:
            pass

    def size_of(self, key: str) -> int | None:
        """The object's size, or None when there is no object."""
        try:
            return self._call('head_object', Key=key)['ContentLength']
        except BlobMissing:
            return None

    def checksums(self, key: str, limit: int) -> tuple[StoredBlob, str]:
        """Stream the object once: (StoredBlob with MD5 and SHA-256, its ETag)."""
        found = self._call('get_object', Key=key)
        reader = _HashingReader(found['Body'], limit)
        while reader.read(_CHUNK):
            pass
        blob = StoredBlob(key, reader.size, reader.md5.hexdigest(), reader.sha256.hexdigest())
        return blob, found['ETag']

    def promote(self, key: str, image_id: str, etag: str) -> str:
        """Move a verified upload to the image's own key, which no presigned URL can
        write, provided it is still the object that was verified (its ETag)."""
        target = self.key_for(image_id)
        try:
            self.client.copy({'Bucket': self.bucket, 'Key': key}, self.bucket, target,
                             ExtraArgs={'CopySourceIfMatch': etag})
        except ClientError as error:
            if error.response['Error']['Code'] in ('PreconditionFailed', '412'):
                raise BlobMissing(key) from error
            raise BlobStoreError(str(error)) from error
        except BotoCoreError as error:
            raise BlobStoreError(str(error)) from error
        self.delete(key)
        return target

    # -- chained steps: ranged reads and multipart copies that survive invocations -------
    def head(self, key: str) -> tuple[int, str]:
        """(size, ETag) of the object."""
        found = self._call('head_object', Key=key)
        return found['ContentLength'], found['ETag']

    def read_from(self, key: str, start: int, etag: str | None) -> BinaryIO:
        """The object's bytes from `start` on, provided it is still the object with
        `etag` if one is given (else BlobMissing): a body with read(n) and close()."""
        condition = {'IfMatch': etag} if etag else {}
        return self._call('get_object', Key=key, Range='bytes=%d-' % start,
                          missing=('NoSuchKey', '404', 'PreconditionFailed', '412',
                                   'InvalidRange'), **condition)['Body']

    def copy_part(self, key: str, etag: str, image_id: str, upload_id: str, number: int,
                  start: int, end: int) -> None:
        """Copy bytes [start, end) of the verified object (still `etag`, else
        BlobMissing) as part `number` of the image's multipart upload."""
        self._call('upload_part_copy', Key=self.key_for(image_id), UploadId=upload_id,
                   PartNumber=number, CopySource={'Bucket': self.bucket, 'Key': key},
                   CopySourceIfMatch=etag, CopySourceRange='bytes=%d-%d' % (start, end - 1),
                   missing=('NoSuchKey', '404', 'NoSuchUpload', 'PreconditionFailed', '412'))

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> None:
        self._call('upload_part', Key=key, UploadId=upload_id, PartNumber=number, Body=data)

    def complete_parts(self, key: str, upload_id: str) -> None:
        """Assemble every part uploaded to `upload_id` (BlobMissing: already assembled
        or aborted)."""
        self.complete_multipart(key, upload_id, self.list_parts(key, upload_id))
