"""The v1 image record and the validation of client-supplied metadata (v1 §4, §5)."""
from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING, Any, cast

from chalicelib.domain.errors import Invalid

if TYPE_CHECKING:
    from chalicelib.domain.ports import DomainSettings, ImageRecord

# Fields shown by v1, in the order of v1 §4.
IMAGE_FIELDS = ('id', 'name', 'status', 'size', 'virtual_size', 'disk_format',
                'container_format', 'checksum', 'min_disk', 'min_ram', 'is_public',
                'protected', 'owner', 'created_at', 'updated_at', 'deleted_at',
                'deleted', 'properties')
# What a record holds besides: never shown (v1 §4).
HIDDEN_FIELDS = ('location', 'cached_location', 'source_fault', 'sha256', 'pending_upload',
                 'purge_at', 'member_count')
RECORD_FIELDS = IMAGE_FIELDS + HIDDEN_FIELDS
BRIEF_FIELDS = ('id', 'name', 'size', 'disk_format', 'container_format', 'checksum')

# What `x-image-meta-<field>` may name (glance.common.utils.IMAGE_META_HEADERS).
ACCEPTED_META_FIELDS = frozenset((
    'location', 'size', 'is_public', 'disk_format', 'container_format', 'name',
    'status', 'copy_from', 'uri', 'checksum', 'created_at', 'updated_at',
    'deleted_at', 'min_ram', 'min_disk', 'owner', 'store', 'id', 'protected',
    'deleted', 'virtual_size'))
INTEGER_FIELDS = ('size', 'min_disk', 'min_ram', 'virtual_size')
BOOLEAN_FIELDS = ('is_public', 'protected', 'deleted')
TIME_FIELDS = ('created_at', 'updated_at', 'deleted_at')
INT32_FIELDS = ('min_disk', 'min_ram')
INT32_MAX = 2147483647
# size and virtual_size are BigInteger columns in the reference; a DynamoDB number
# holds 38 digits, so larger values would fail the write instead of being refused.
INT64_MAX = 2 ** 63 - 1
OWNER_MAX = 255
NAME_MAX = 255
# Metadata every HEAD and GET must be able to send back, in an item DynamoDB can hold.
PROPERTY_NAME_MAX = 255            # characters: the reference's String(255) column
META_VALUE_MAX = 65535             # UTF-8 bytes of any x-image-meta-* value: its Text column
# The user metadata of one record, so that an item (400 KB at most) always has room for
# a location (META_VALUE_MAX), the system attributes and the index keys.
USER_METADATA_MAX = 256 * 1024     # UTF-8 bytes
PROPERTY_OVERHEAD = 2              # DynamoDB's own bytes per map entry (and a null value)
RECORD_STRING_FIELDS = ('name', 'disk_format', 'container_format', 'checksum', 'owner',
                        'location')
# C0 controls but TAB, and DEL: a line break in a stored value would split every
# response header that carries it.
CONTROL_CHARACTERS = re.compile(r'[\x00-\x08\x0a-\x1f\x7f]')
AMAZON_FORMATS = ('aki', 'ari', 'ami')
STORES = ('s3',)
# Schemes an x-image-meta-location or x-glance-api-copy-from URL may use.
EXTERNAL_SCHEMES = ('http', 'https', 's3')
TIME_FORMAT = '%Y-%m-%dT%H:%M:%S.%f'

# Statuses (v1 §6).
QUEUED, SAVING, ACTIVE, KILLED = 'queued', 'saving', 'active', 'killed'
DELETED, PENDING_DELETE, DEACTIVATED = 'deleted', 'pending_delete', 'deactivated'

_UUID_LIKE = re.compile(r'^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?'
                        r'[0-9a-f]{12}\}?$', re.IGNORECASE)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def format_time(moment: datetime.datetime) -> str:
    return moment.strftime(TIME_FORMAT)


def now_string() -> str:
    return format_time(utcnow())


def is_uuid_like(value: str | None) -> bool:
    return bool(value) and bool(_UUID_LIKE.match(value or ''))


def parse_isotime(value: str | None) -> datetime.datetime | None:
    """ISO-8601 (also date-only `20130101` and `2013-0101`) -> naive UTC datetime."""
    text = (value or '').strip()
    compact = re.fullmatch(r'(\d{4})-?(\d{2})-?(\d{2})', text)
    if compact:
        text = '%s-%s-%s' % compact.groups()
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment if moment.year >= 1900 else None


def validate_image_meta(meta: dict[str, Any], settings: DomainSettings) -> dict[str, Any]:
    """The deserializer's checks (glance.api.v1.images.validate_image_meta).

    Runs before anything is stored. Applies the aki/ari/ami pairing to `meta`.
    """
    name = meta.get('name')
    if name is not None and len(name) > NAME_MAX:
        raise Invalid('Image name too long: %d' % len(name))
    if 'disk_format' in meta and meta['disk_format'] not in settings.disk_formats:
        raise Invalid("Invalid disk format '%s' for image." % meta['disk_format'])
    if ('container_format' in meta
            and meta['container_format'] not in settings.container_formats):
        raise Invalid("Invalid container format '%s' for image."
                         % meta['container_format'])
    _pair_amazon_formats(meta)
    checksum = meta.get('checksum')
    if checksum is not None and len(checksum) > 32:
        raise Invalid("Invalid checksum '%s': can't exceed 32 characters" % checksum)
    for field in TIME_FIELDS:
        if meta.get(field) and parse_isotime(meta[field]) is None:
            raise Invalid('Invalid time format for %s.' % field)
    for field, limit in [(f, INT32_MAX) for f in INT32_FIELDS] + [('virtual_size', INT64_MAX)]:
        if (meta.get(field) or 0) > limit:
            raise Invalid("Invalid value for image: '%s' value out of range, "
                             "must not exceed %d." % (field, limit))
    if (meta.get('size') or 0) > INT64_MAX:  # what the size cap says (v1 §8)
        raise Invalid('Denying attempt to upload image larger than %d bytes.'
                         % settings.image_size_cap)
    if 'store' in meta and meta['store'] not in STORES:
        raise Invalid('Required store %s is invalid' % meta['store'])
    return meta


def control_character(value: str) -> str | None:
    """The first control character that may not be stored in metadata, or None."""
    found = CONTROL_CHARACTERS.search(value)
    return found.group() if found else None


def check_header_value(header: str, value: str | None) -> None:
    """One `x-image-meta-*` value as sent: no control characters, at most
    META_VALUE_MAX bytes."""
    if value is None:
        return
    character = control_character(value)
    if character is not None:
        raise Invalid('Invalid value for header %s: control character %r is not '
                         'allowed.' % (header, character))
    size = _utf8_size(value)
    if size > META_VALUE_MAX:
        raise Invalid('Invalid value for header %s: %d bytes, the limit is %d.'
                         % (header, size, META_VALUE_MAX))


def check_property_name(name: str) -> None:
    if len(name) > PROPERTY_NAME_MAX:
        raise Invalid('Image property name too long: %d characters, the limit is %d.'
                         % (len(name), PROPERTY_NAME_MAX))


def user_metadata_size(image: ImageRecord) -> int:
    """UTF-8 bytes of what clients stored in a record: its string fields, and the
    names and values of its properties (PROPERTY_OVERHEAD more each)."""
    size = sum(_utf8_size(image.get(field)) for field in RECORD_STRING_FIELDS)
    return size + sum(_utf8_size(name) + _utf8_size(value) + PROPERTY_OVERHEAD
                      for name, value in (image.get('properties') or {}).items())


def check_record_size(image: ImageRecord) -> None:
    """The record as it will be stored (create, or an update's merged properties)."""
    size = user_metadata_size(image)
    if size > USER_METADATA_MAX:
        raise Invalid('Image metadata too large: %d bytes of names and values, the '
                         'limit is %d.' % (size, USER_METADATA_MAX))


def _utf8_size(value):
    return len(value.encode('utf-8', 'surrogatepass')) if isinstance(value, str) else 0


def check_owner(owner: str | None) -> None:
    """An owner the catalog can hold: the reference's column is 255 characters, and the
    owner keys an index, where DynamoDB refuses more than 2048 bytes."""
    if owner is not None and len(owner) > OWNER_MAX:
        raise Invalid('Owner too long: %d' % len(owner))


def _pair_amazon_formats(meta):
    disk, container = meta.get('disk_format'), meta.get('container_format')
    if disk in AMAZON_FORMATS and 'container_format' not in meta:
        meta['container_format'] = disk
    elif container in AMAZON_FORMATS and 'disk_format' not in meta:
        meta['disk_format'] = container
    elif (disk in AMAZON_FORMATS or container in AMAZON_FORMATS) and disk != container:
        raise Invalid("Invalid mix of disk and container formats. When setting a "
                         "disk or container format to one of 'aki', 'ari', or 'ami', "
                         "the container and disk formats must match.")


def validate_new_id(image_id: str) -> None:
    if not is_uuid_like(image_id):
        raise Invalid('Failed to reserve image. Got error: 400 Bad Request: '
                         'Invalid image id format')


def new_image(image_id: str, meta: dict[str, Any], owner: str | None, status: str,
              now: str) -> ImageRecord:
    """A fresh record from validated create metadata."""
    return {
        'id': image_id,
        'name': meta.get('name'),
        'status': status,
        'size': meta.get('size') or 0,
        'virtual_size': meta.get('virtual_size'),
        'disk_format': meta.get('disk_format'),
        'container_format': meta.get('container_format'),
        'checksum': meta.get('checksum'),
        'min_disk': meta.get('min_disk') or 0,
        'min_ram': meta.get('min_ram') or 0,
        'is_public': bool(meta.get('is_public')),
        'protected': bool(meta.get('protected')),
        'owner': owner,
        'created_at': now,
        'updated_at': now,
        'deleted_at': None,
        'deleted': False,
        'properties': dict(meta.get('properties') or {}),
        'location': None,
    }


# Fields a PUT may change directly; the rest are computed or guarded (v1 §11).
UPDATABLE_FIELDS = ('name', 'size', 'virtual_size', 'disk_format', 'container_format',
                    'checksum', 'min_disk', 'min_ram', 'is_public', 'protected', 'owner')


def created_key(image: ImageRecord) -> str:
    """The default sort order, created_at then id, as one sortable string."""
    return '%s#%s' % (image['created_at'], image['id'])


def is_listed_by_default(image: ImageRecord) -> bool:
    """Default listings hide deleted and killed images (v1 §13.1)."""
    return not image['deleted'] and image['status'] != KILLED


def field_of(image: ImageRecord, name: str) -> Any:
    """A field named at run time (a filter, a sort key): every record has them all."""
    return cast(dict, image)[name]
