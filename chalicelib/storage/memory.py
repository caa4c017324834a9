"""In-memory adapters of the domain's ports: the image store, the member store, the
blob store and the source reader, for domain tests that need neither moto nor HTTP.

They keep the DynamoDB adapters' rules (which images each listing source holds, in
which order, conditional writes), from the same functions (models.name_key,
models.audience, image_meta.is_listed_by_default): tests/storage runs one contract
suite against both.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import threading
from typing import BinaryIO, Iterable, Iterator

from chalicelib.domain.image_meta import RECORD_FIELDS, created_key, is_listed_by_default
from chalicelib.domain.ports import (BlobMissing, BlobTooLarge, Change, ImageExists,
                                     ImageMissing, ImageRecord, Membership, SourceNotFound,
                                     SourceRefused)
from chalicelib.storage.blobs import S3_LIMITS
from chalicelib.storage.models import PUBLIC_PARTITION, audience, name_key

_CHUNK = 1 << 20


def _in_source(image, source):
    """Whether a listing source (an index of the images table) holds the image."""
    kind = source[0]
    if kind == 'all':
        return True
    if not is_listed_by_default(image):
        return False
    if kind == 'public':
        return bool(image['is_public'])
    if kind == 'owner':
        return image['owner'] == source[1] and bool(image['owner'])
    return name_key(image.get('name')) == source[1]      # 'name'


def _changed_in(image, source):
    kind = source[0]
    if kind == 'all':
        return True
    wanted = PUBLIC_PARTITION if kind == 'public' else audience(False, source[1])
    return audience(image['is_public'], image['owner']) == wanted


def _record(image, version):
    """The record as the DynamoDB store returns it: every field, absent ones None."""
    record = {field: copy.deepcopy(image.get(field)) for field in RECORD_FIELDS}
    record['properties'] = record['properties'] or {}
    return dict(record, _version=version)


class InMemoryImageStore:
    def __init__(self):
        self._images, self._lock = {}, threading.Lock()

    def get(self, image_id: str) -> ImageRecord | None:
        with self._lock:
            found = self._images.get(image_id)
            return copy.deepcopy(found) if found is not None else None

    def get_many(self, image_ids: Iterable[str]) -> dict[str, ImageRecord]:
        return {image_id: image for image_id in set(image_ids)
                if (image := self.get(image_id)) is not None}

    def create(self, image: ImageRecord) -> ImageRecord:
        with self._lock:
            if image['id'] in self._images:
                raise ImageExists(image['id'])
            stored = _record(image, version=1)
            self._images[image['id']] = stored
            return copy.deepcopy(stored)

    def update(self, image_id: str, change: Change) -> ImageRecord:
        with self._lock:    # one writer at a time: every write holds
            current = self._images.get(image_id)
            if current is None:
                raise ImageMissing(image_id)
            wanted = change(copy.deepcopy(current))
            if wanted is None or wanted == current:
                return copy.deepcopy(current)
            stored = _record(wanted, version=(current.get('_version') or 0) + 1)
            self._images[image_id] = stored
            return copy.deepcopy(stored)

    def _all(self):
        with self._lock:
            return [copy.deepcopy(image) for image in self._images.values()]

    def images_of(self, source: tuple, descending: bool = True, after: str | None = None,
                  page_size: int | None = None) -> Iterator[ImageRecord]:
        found = sorted((image for image in self._all() if _in_source(image, source)),
                       key=created_key, reverse=descending)
        if after is not None:
            found = [image for image in found
                     if (created_key(image) < after if descending else created_key(image) > after)]
        return iter(found)

    def changed_since(self, source: tuple, since: str) -> Iterator[ImageRecord]:
        return iter([image for image in self._all()
                     if _changed_in(image, source) and image['updated_at'] > since])

    def indexes_name(self, name: str) -> bool:
        return name_key(name) is not None

    def expired_uploads(self, now: str) -> list[ImageRecord]:
        return [image for image in self._all()
                if image.get('pending_upload') and image['pending_upload']['expires_at'] < now]


class InMemoryMemberStore:
    def __init__(self):
        self._rows, self._lock = {}, threading.Lock()   # (image_id, member) -> row

    @staticmethod
    def _shown(row):
        return {key: row[key] for key in ('image_id', 'member_id', 'can_share', 'created_at')}

    def get(self, image_id: str, member: str | None) -> Membership | None:
        with self._lock:
            row = self._rows.get((image_id, member))
            return self._shown(row) if row else None

    def of_image(self, image_id: str) -> list[Membership]:
        with self._lock:
            rows = [self._shown(r) for (i, _), r in self._rows.items() if i == image_id]
        return sorted(rows, key=lambda row: row['created_at'])

    def of_member(self, member: str, descending: bool = True, after: str | None = None,
                  page_size: int | None = None) -> Iterator[Membership]:
        with self._lock:
            rows = [r for (_, m), r in self._rows.items() if m == member]
        rows.sort(key=lambda row: row['image_created_key'], reverse=descending)
        if after is not None:
            rows = [r for r in rows if (r['image_created_key'] < after if descending
                                        else r['image_created_key'] > after)]
        return iter([self._shown(row) for row in rows])

    def among(self, image_ids: Iterable[str], member: str | None) -> set[str]:
        with self._lock:
            return {image_id for image_id in set(image_ids) if (image_id, member) in self._rows}

    def put(self, image: ImageRecord, member: str, can_share: bool | None = None) -> bool:
        from chalicelib.domain.image_meta import now_string
        with self._lock:
            row = self._rows.get((image['id'], member))
            if row is None:
                self._rows[(image['id'], member)] = {
                    'image_id': image['id'], 'member_id': member, 'can_share': bool(can_share),
                    'created_at': now_string(), 'image_created_key': created_key(image)}
                return True
            if can_share is not None:
                row['can_share'] = bool(can_share)
            return False

    def delete(self, image_id: str, member: str) -> bool:
        with self._lock:
            return self._rows.pop((image_id, member), None) is not None

    def delete_all(self, image_id: str) -> None:
        with self._lock:
            for key in [key for key in self._rows if key[0] == image_id]:
                del self._rows[key]


@dataclasses.dataclass(frozen=True)
class MemoryBlob:
    location: str
    size: int
    md5: str
    sha256: str


class InMemoryBlobStore:
    """Objects by key, checksums computed as they are written."""
    limits = S3_LIMITS   # what the S3 adapter takes, so that the domain plans alike

    def __init__(self, bucket='images'):
        self.bucket, self.objects = bucket, {}

    @staticmethod
    def key_for(image_id: str) -> str:
        return 'images/%s' % image_id

    @staticmethod
    def upload_key_for(image_id: str) -> str:
        return 'uploads/%s' % image_id

    def put(self, image_id: str, stream: BinaryIO, limit: int) -> MemoryBlob:
        data, md5, sha256 = bytearray(), hashlib.md5(), hashlib.sha256()
        while chunk := stream.read(_CHUNK):
            data += chunk
            if len(data) > limit:
                raise BlobTooLarge(len(data))
            md5.update(chunk)
            sha256.update(chunk)
        key = self.key_for(image_id)
        self.objects[key] = bytes(data)
        return MemoryBlob(key, len(data), md5.hexdigest(), sha256.hexdigest())

    def read(self, location: str) -> bytes:
        if location not in self.objects:
            raise BlobMissing(location)
        return self.objects[location]

    def delete(self, location: str) -> None:
        self.objects.pop(location, None)

    def size_of(self, key: str) -> int | None:
        return len(self.objects[key]) if key in self.objects else None

    def presign_get(self, location: str, expiry: int) -> str:
        return 'memory://%s/%s?expires=%d' % (self.bucket, location, expiry)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        pass   # no multipart uploads are kept in memory


class InMemorySources:
    """External sources by URL; `refused` URLs are the ones the service must not read."""

    def __init__(self, sources=None, refused=()):
        self.sources, self.refused = dict(sources or {}), set(refused)

    def check(self, url: str) -> None:
        if url in self.refused:
            raise SourceRefused('External source is not allowed: refused in memory.')

    def size_of(self, url: str) -> int | None:
        self.check(url)
        if url not in self.sources:
            raise SourceNotFound('No source at %s' % url)
        return len(self.sources[url])

    def open(self, url: str, start: int | None = None) -> BinaryIO:
        self.size_of(url)
        return io.BytesIO(self.sources[url][start or 0:])
