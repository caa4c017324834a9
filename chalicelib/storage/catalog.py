"""The image catalog in DynamoDB: image records as plain dicts (memberships are
in storage/memberships.py).

Every write is conditional: a create only if the id was never used, every
change only if the item is still the version that was read (optimistic
locking), so racing requests never both win and no update is lost.
"""
from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Iterable, Iterator, cast

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.domain.image_meta import RECORD_FIELDS, created_key, is_listed_by_default
from chalicelib.domain.ports import (Change, ConcurrentUpdate, ImageExists, ImageMissing,
                                     ImageRecord)
from chalicelib.storage.dynamo import is_condition_failure, reporting_unavailable
from chalicelib.storage.models import (CATALOG_PARTITION, PUBLIC_PARTITION, ImageModel,
                                       audience, bind_tables, name_key)

_STORED_FIELDS = RECORD_FIELDS
PENDING_PARTITION = 'upload'

if TYPE_CHECKING:
    from chalicelib.config import Settings


def _to_dict(model):
    image = {field: getattr(model, field) for field in _STORED_FIELDS}
    for field in ('size', 'virtual_size', 'min_disk', 'min_ram'):
        if image[field] is not None:
            image[field] = int(image[field])
    properties = model.properties
    image['properties'] = _plain(properties) or {}
    image['pending_upload'] = _plain(model.pending_upload)
    image['_version'] = model.version
    return image


def _plain(value):
    """A raw MapAttribute as a dict (None stays None)."""
    if value is None:
        return None
    return dict(value.as_dict() if hasattr(value, 'as_dict') else value)


# the attributes the indexes are built from, all derived by _to_model
_INDEX_KEYS = ('public_listed', 'owner_listed', 'listed_name', 'audience', 'catalog',
               'created_key', 'updated_key', 'upload_pending', 'upload_expires_at')


def _to_model(image):
    model = ImageModel(image['id'])
    for field in _STORED_FIELDS:
        if field != 'id':
            setattr(model, field, image.get(field))
    listed = is_listed_by_default(image)
    model.public_listed = PUBLIC_PARTITION if listed and image['is_public'] else None
    model.owner_listed = image['owner'] if listed and image['owner'] else None
    model.listed_name = name_key(image.get('name')) if listed else None
    model.audience = audience(image['is_public'], image['owner'])
    model.catalog = CATALOG_PARTITION
    model.created_key = created_key(image)
    model.updated_key = '%s#%s' % (image['updated_at'], image['id'])
    pending = image.get('pending_upload')
    model.upload_pending = PENDING_PARTITION if pending else None
    model.upload_expires_at = pending['expires_at'] if pending else None
    if image.get('_version') is not None:
        model.version = image['_version']
    return model


@reporting_unavailable
class ImageCatalog:
    """The images table: the domain's ImageStore."""

    def __init__(self, current: Settings | None = None):
        from chalicelib.config import settings
        bind_tables(current or settings())

    # -- images -------------------------------------------------------------
    def get(self, image_id: str) -> ImageRecord | None:
        try:
            return _to_dict(ImageModel.get(image_id, consistent_read=True))
        except DoesNotExist:
            return None

    def reindex(self) -> int:
        """Rewrite the images whose index attributes are not what `_to_model` makes of
        them now: a one-off after the template adds an index (never on a request
        path: it scans). -> the number of images rewritten."""
        rewritten = 0
        for stored in ImageModel.scan(consistent_read=True):
            fresh = _to_model(_to_dict(stored))
            if all(getattr(fresh, name) == getattr(stored, name) for name in _INDEX_KEYS):
                continue
            try:
                fresh.save()  # conditional on the version read
            except PutError as error:
                if not is_condition_failure(error):
                    raise
                continue  # written meanwhile, through _to_model
            rewritten += 1
        return rewritten

    def create(self, image: ImageRecord) -> ImageRecord:
        model = _to_model(image)
        try:
            model.save(condition=ImageModel.id.does_not_exist())
        except PutError as error:
            if is_condition_failure(error):
                raise ImageExists(image['id']) from error
            raise
        return _to_dict(model)

    def update(self, image_id: str, change: Change, attempts: int = 60) -> ImageRecord:
        """Read the image, let `change(image)` return its new state, write it back.

        The write holds only if nobody wrote in between; otherwise wait a little
        (jittered, growing) and apply `change` to the fresh record. `change` may
        raise to refuse.
        """
        for attempt in range(attempts):
            if attempt:
                time.sleep(random.uniform(0, min(0.1, 0.002 * 2 ** min(attempt, 6))))
            current = self.get(image_id)
            if current is None:
                raise ImageMissing(image_id)
            wanted = change(cast(ImageRecord, dict(current, properties=dict(current['properties']))))
            if wanted is None or wanted == current:
                return current
            model = _to_model(wanted)
            try:
                model.save()  # conditional on the version read
            except PutError as error:
                if is_condition_failure(error):
                    continue
                raise
            return _to_dict(model)
        raise ConcurrentUpdate(image_id)

    def images_of(self, source: tuple, descending: bool = True, after: str | None = None,
                  page_size: int | None = None) -> Iterator[ImageRecord]:
        """Images of one listing source, in `created_key` order.

        `source` is ('public',), ('owner', tenant), ('all',) or ('name', name) (listed
        images of that name, of every owner; only for a name `indexes_name` accepts);
        `after` is a `created_key` to continue strictly after. (Images shared with a
        tenant are a join of the memberships and this catalog: domain/listing.py.)
        """
        kind = source[0]
        index, partition = {
            'public': (ImageModel.public_images, PUBLIC_PARTITION),
            'owner': (ImageModel.owner_images, source[-1]),
            'name': (ImageModel.name_images, source[-1]),
            'all': (ImageModel.all_images, CATALOG_PARTITION),
        }[kind]
        condition = None
        if after is not None:
            condition = (ImageModel.created_key < after if descending
                         else ImageModel.created_key > after)
        return (_to_dict(m) for m in index.query(
            partition, condition, scan_index_forward=not descending,
            page_size=page_size))

    def changed_since(self, source: tuple, since: str) -> Iterator[ImageRecord]:
        """Images of one listing source updated strictly after `since`, deleted and
        killed ones included, in no particular order.

        `source` is ('public',), ('owner', tenant) (its private images: the public
        ones are in ('public',)) or ('all',) (every tenant's). The indexes are read from
        `since` on.
        """
        index, partition = {
            'public': (ImageModel.audience_changes, audience(True, None)),
            'owner': (ImageModel.audience_changes, audience(False, source[-1])),
            'all': (ImageModel.changes, CATALOG_PARTITION),
        }[source[0]]
        images = (_to_dict(m) for m in index.query(partition, ImageModel.updated_key > since))
        # updated_key is updated_at#id: the key condition also lets updated_at == since in
        return (image for image in images if image['updated_at'] > since)

    def indexes_name(self, name: str) -> bool:
        """Whether ('name', name) holds every listed image of that name (names that
        cannot be an index key, the empty one included, are not indexed)."""
        return name_key(name) is not None

    def expired_uploads(self, now: str) -> list[ImageRecord]:
        """Images whose presigned-upload reservation expired before `now`."""
        return [_to_dict(m) for m in ImageModel.pending_uploads.query(
            PENDING_PARTITION, ImageModel.upload_expires_at < now)]

    def get_many(self, image_ids: Iterable[str]) -> dict[str, ImageRecord]:
        """{id: image} of those that exist (BatchGetItem, 100 keys a request)."""
        return {model.id: _to_dict(model) for model in ImageModel.batch_get(set(image_ids))}
