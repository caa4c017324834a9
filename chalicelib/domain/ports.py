"""What the domain expects of storage: the interfaces (ports) its adapters implement,
and the failures they report. storage/ holds the DynamoDB, S3 and HTTP adapters;
storage/memory.py an in-memory one of each (tests/storage checks both alike)."""
from __future__ import annotations

import dataclasses
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Protocol, TypedDict


class ImageRecord(TypedDict, total=False):
    """An image as stored: the v1 fields (image_meta.IMAGE_FIELDS) and those never shown."""
    id: str
    name: str | None
    status: str
    size: int
    virtual_size: int | None
    disk_format: str | None
    container_format: str | None
    checksum: str | None
    min_disk: int
    min_ram: int
    is_public: bool
    protected: bool
    owner: str | None
    created_at: str
    updated_at: str
    deleted_at: str | None
    deleted: bool
    properties: dict[str, str | None]
    location: str | None          # a key in the bucket, or an external URL
    cached_location: str | None   # the bucket's copy of an external location
    source_fault: str | None      # why that copy was refused
    sha256: str | None
    pending_upload: dict[str, Any] | None
    purge_at: int | None
    member_count: int | None
    _version: int | None


class Membership(TypedDict):
    image_id: str
    member_id: str
    can_share: bool
    created_at: str


Change = Callable[[ImageRecord], 'ImageRecord | None']


class DomainSettings(Protocol):
    """The settings the domain reads (config.Settings has them): handed to each service
    when it is built, never read from the environment by the domain."""
    @property
    def image_size_cap(self) -> int: ...
    @property
    def user_storage_quota(self) -> int: ...
    @property
    def image_property_quota(self) -> int: ...
    @property
    def image_member_quota(self) -> int: ...
    @property
    def limit_param_default(self) -> int: ...
    @property
    def api_limit_max(self) -> int: ...
    @property
    def delayed_delete(self) -> bool: ...
    @property
    def deleted_retention_days(self) -> int: ...
    @property
    def disk_formats(self) -> tuple: ...
    @property
    def container_formats(self) -> tuple: ...
    @property
    def inline_upload_limit(self) -> int: ...
    @property
    def inline_download_limit(self) -> int: ...
    @property
    def presign_expiry(self) -> int: ...
    @property
    def upload_timeout(self) -> int: ...
    @property
    def upload_part_size(self) -> int: ...
    @property
    def upload_parts_page(self) -> int: ...
    @property
    def step_bytes(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class PartLimits:
    """What the blob store takes of a multipart upload and of a single PUT."""
    min_part_size: int       # every part but the last
    max_part_size: int
    max_parts: int
    max_single_put: int

    def part_size_for(self, size: int, wanted: int) -> int:
        """A part size the store takes for `size` bytes, as near `wanted` as it may."""
        return min(max(wanted, self.min_part_size, -(-size // self.max_parts)),
                   self.max_part_size)


Background = Callable[..., None]   # background(job, image_id, url=None, offset=0)


class ImageStore(Protocol):
    """Image records: every write conditional on the version read."""

    def get(self, image_id: str) -> ImageRecord | None: ...

    def get_many(self, image_ids: Iterable[str]) -> dict[str, ImageRecord]: ...

    def create(self, image: ImageRecord) -> ImageRecord:
        """ImageExists if the id was ever used."""

    def update(self, image_id: str, change: Change) -> ImageRecord:
        """Apply `change` to the fresh record until the write holds (ConcurrentUpdate
        when it never does, ImageMissing); `change` returning None writes nothing."""

    def images_of(self, source: tuple, descending: bool = True, after: str | None = None,
                  page_size: int | None = None) -> Iterator[ImageRecord]:
        """('public',), ('owner', tenant), ('name', name), ('all',): listed images in
        created_key order, strictly after `after`."""

    def changed_since(self, source: tuple, since: str) -> Iterator[ImageRecord]: ...

    def indexes_name(self, name: str) -> bool: ...

    def expired_uploads(self, now: str) -> list[ImageRecord]: ...


class MemberStore(Protocol):
    def get(self, image_id: str, member: str | None) -> Membership | None: ...

    def of_image(self, image_id: str) -> list[Membership]: ...

    def of_member(self, member: str, descending: bool = True, after: str | None = None,
                  page_size: int | None = None) -> Iterator[Membership]: ...

    def among(self, image_ids: Iterable[str], member: str | None) -> set[str]: ...

    def put(self, image: ImageRecord, member: str, can_share: bool | None = None) -> bool:
        """True when created; an existing one gets `can_share` if given."""

    def delete(self, image_id: str, member: str) -> bool: ...

    def delete_all(self, image_id: str) -> None: ...


class StoredBlob(Protocol):
    @property
    def location(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def md5(self) -> str: ...
    @property
    def sha256(self) -> str: ...


Part = dict[str, Any]   # {'part_number', 'etag', 'size'?}


class BlobStore(Protocol):
    """Image bytes: one object per image, checksums computed while streaming."""
    limits: PartLimits

    def key_for(self, image_id: str) -> str: ...

    def upload_key_for(self, image_id: str) -> str: ...

    def put(self, image_id: str, stream: BinaryIO, limit: int) -> StoredBlob:
        """BlobTooLarge past `limit` bytes (nothing kept), BlobStoreError."""

    def read(self, location: str) -> bytes: ...

    def delete(self, location: str) -> None: ...

    def size_of(self, key: str) -> int | None: ...

    def presign_get(self, location: str, expiry: int) -> str: ...

    # -- presigned uploads: the client sends the bytes, the finalizer checks them ----
    def presign_put(self, key: str, size: int, expiry: int) -> str: ...

    def presign_part(self, key: str, upload_id: str, part_number: int, size: int,
                     expiry: int) -> str: ...

    def list_parts(self, key: str, upload_id: str, through: int | None = None) -> list[Part]:
        """BlobMissing when the multipart upload is gone (completed or aborted)."""

    def complete_multipart(self, key: str, upload_id: str, parts: list[Part]) -> None: ...

    def checksums(self, key: str, limit: int) -> tuple[StoredBlob, str]:
        """(the object's size and checksums, its ETag); BlobTooLarge past `limit`."""

    def promote(self, key: str, image_id: str, etag: str) -> str:
        """Move a checked upload to the image's key (only the version of `etag`)."""

    def head(self, key: str) -> tuple[int, str]: ...

    # -- work in steps: multipart uploads that survive between invocations ---------
    def create_multipart(self, key: str) -> str: ...

    def abort_multipart(self, key: str, upload_id: str) -> None: ...

    def read_from(self, key: str, start: int, etag: str | None) -> BinaryIO: ...

    def copy_part(self, key: str, etag: str, image_id: str, upload_id: str, number: int,
                  start: int, end: int) -> None: ...

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> None: ...

    def complete_parts(self, key: str, upload_id: str) -> None: ...


class SourceReader(Protocol):
    """External sources (locations, copy-from URLs): checked before anything is read."""

    def check(self, url: str) -> None:
        """SourceRefused for a URL the service must not read."""

    def size_of(self, url: str) -> int | None: ...

    def open(self, url: str, start: int | None = None) -> BinaryIO: ...


class ImageExists(Exception):
    """An image with that id exists (or existed: ids are never reused)."""


class ImageMissing(Exception):
    pass


class CatalogUnavailable(Exception):
    """The catalog (DynamoDB) refused or could not be reached: throttled, erring,
    unreachable. A write that failed so may still have been applied (a lost answer)."""


class ConcurrentUpdate(Exception):
    """The item kept changing under us; gave up rather than overwrite."""


class BlobTooLarge(Exception):
    """The stream went past the number of bytes it was allowed (args[0]: bytes seen)."""


class BlobMissing(Exception):
    pass


class BlobStoreError(Exception):
    """The object store refused or could not be reached."""


class SourceNotFound(Exception):
    """An external source (location or copy-from URL) is missing or unreachable."""


class SourceUnavailable(Exception):
    """An external source answered with an error, or too late, or too slowly."""


class SourceRefused(Exception):
    """An external source the service must not read (its own bucket, an address on
    its network, a port or bucket not allowed): args[0] says why."""
