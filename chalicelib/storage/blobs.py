"""Image bytes in S3: one object per image, checksums computed while streaming."""
import dataclasses
import hashlib
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config import settings
from chalicelib.domain.ports import BlobMissing, BlobStoreError, BlobTooLarge

_CHUNK = 1 << 20


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
_sessions = []


def s3_client():
    """A new S3 client from one shared boto3 session (its service models load once)."""
    current = settings()
    with _session_lock:
        if not _sessions:
            _sessions.append(boto3.session.Session())
        return _sessions[0].client(
            's3', region_name=current.region, endpoint_url=current.aws_endpoint_url,
            config=Config(signature_version='s3v4', s3={'addressing_style': 'path'}))


class ImageBlobStore:
    def __init__(self, client_factory=s3_client):
        self._client_factory = client_factory
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    @property
    def bucket(self):
        return settings().image_bucket

    @staticmethod
    def key_for(image_id):
        return 'images/%s' % image_id

    def put(self, image_id, stream, limit):
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

    def read(self, location):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=location)['Body'].read()
        except ClientError as error:
            if error.response['Error']['Code'] in ('NoSuchKey', '404'):
                raise BlobMissing(location) from error
            raise BlobStoreError(str(error)) from error
        except BotoCoreError as error:
            raise BlobStoreError(str(error)) from error

    def delete(self, location):
        try:
            self.client.delete_object(Bucket=self.bucket, Key=location)
        except (BotoCoreError, ClientError) as error:
            raise BlobStoreError(str(error)) from error
