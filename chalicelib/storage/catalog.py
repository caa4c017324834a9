"""The image catalog in DynamoDB: images and memberships as plain dicts.

Every write is conditional: a create only if the id was never used, every
change only if the item is still the version that was read (optimistic
locking), so racing requests never both win and no update is lost.
"""
import functools
import itertools
import random
import time
import types

from botocore.exceptions import (BotoCoreError, ClientError, HTTPClientError,
                                 ConnectionError as EndpointUnreachable)
from pynamodb.exceptions import (DeleteError, DoesNotExist, PutError,
                                 PynamoDBConnectionError, UpdateError)

from chalicelib.domain.image_meta import (IMAGE_FIELDS, created_key, is_listed_by_default,
                                          now_string)
from chalicelib.domain.ports import (CatalogUnavailable, ConcurrentUpdate, ImageExists,
                                     ImageMissing)
from chalicelib.storage.models import (CATALOG_PARTITION, PUBLIC_PARTITION,
                                       ImageMemberModel, ImageModel, audience, name_key)

_STORED_FIELDS = IMAGE_FIELDS + ('location', 'cached_location', 'source_fault', 'sha256',
                                  'pending_upload', 'purge_at', 'member_count')
PENDING_PARTITION = 'upload'
_BATCH_GET_MAX = 100


_FAILURES = (PynamoDBConnectionError, ClientError, BotoCoreError)
# Answers that say "not now": the same request may succeed later.
_UNAVAILABLE_CODES = frozenset((
    'ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded',
    'InternalServerError', 'ServiceUnavailable'))


def _is_unavailable(error):
    """Throttled, erring or unreachable; not a request DynamoDB refuses as invalid
    (a ValidationException is a bug here, and stays a 500)."""
    cause = error.cause if isinstance(error, PynamoDBConnectionError) else error
    if isinstance(cause, (EndpointUnreachable, HTTPClientError)):
        return True
    if isinstance(cause, ClientError):
        return (cause.response.get('Error', {}).get('Code') in _UNAVAILABLE_CODES or
                cause.response.get('ResponseMetadata', {}).get('HTTPStatusCode', 0) >= 500)
    return False


def _reported(method):
    """PynamoDB's failures to reach a table as CatalogUnavailable, also those raised
    while a listing is iterated."""
    def translated(iterator):
        try:
            yield from iterator
        except _FAILURES as error:
            if _is_unavailable(error):
                raise CatalogUnavailable(str(error)) from error
            raise

    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            result = method(*args, **kwargs)
        except _FAILURES as error:
            if _is_unavailable(error):
                raise CatalogUnavailable(str(error)) from error
            raise
        return translated(result) if isinstance(result, types.GeneratorType) else result
    return call


def _reporting_unavailable(cls):
    """Every public method of the catalog through _reported: the one place where a
    throttled, erring or unreachable DynamoDB becomes the domain's CatalogUnavailable."""
    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith('_'):
            setattr(cls, name, _reported(member))
    return cls


def _is_condition_failure(error):
    return getattr(error, 'cause_response_code', None) in (
        'ConditionalCheckFailedException', 'TransactionCanceledException')


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


@_reporting_unavailable
class ImageCatalog:
    # -- images -------------------------------------------------------------
    def get(self, image_id):
        try:
            return _to_dict(ImageModel.get(image_id, consistent_read=True))
        except DoesNotExist:
            return None

    def reindex(self):
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
                if not _is_condition_failure(error):
                    raise
                continue  # written meanwhile, through _to_model
            rewritten += 1
        return rewritten

    def create(self, image):
        model = _to_model(image)
        try:
            model.save(condition=ImageModel.id.does_not_exist())
        except PutError as error:
            if _is_condition_failure(error):
                raise ImageExists(image['id']) from error
            raise
        return _to_dict(model)

    def update(self, image_id, change, attempts=60):
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
            wanted = change(dict(current, properties=dict(current['properties'])))
            if wanted is None or wanted == current:
                return current
            model = _to_model(wanted)
            try:
                model.save()  # conditional on the version read
            except PutError as error:
                if _is_condition_failure(error):
                    continue
                raise
            return _to_dict(model)
        raise ConcurrentUpdate(image_id)

    def images_of(self, source, descending=True, after=None, page_size=None):
        """Images of one listing source, in `created_key` order.

        `source` is ('public',), ('owner', tenant), ('shared', tenant), ('all',) or
        ('name', name) (listed images of that name, of every owner; only for a name
        `indexes_name` accepts); `after` is a `created_key` to continue strictly after.
        """
        kind = source[0]
        if kind == 'shared':
            return self._images_shared_with(source[1], descending, after, page_size)
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

    def changed_since(self, source, since):
        """Images of one listing source updated strictly after `since`, deleted and
        killed ones included, in no particular order.

        `source` is ('public',), ('owner', tenant) (its private images: the public
        ones are in ('public',)), ('shared', tenant) (its memberships' images, read
        whole) or ('all',) (every tenant's). The indexes are read from `since` on.
        """
        kind = source[0]
        if kind == 'shared':
            images = self._images_shared_with(source[1], True, None, None)
        else:
            index, partition = {
                'public': (ImageModel.audience_changes, audience(True, None)),
                'owner': (ImageModel.audience_changes, audience(False, source[-1])),
                'all': (ImageModel.changes, CATALOG_PARTITION),
            }[kind]
            images = (_to_dict(m) for m in index.query(
                partition, ImageModel.updated_key > since))
        # updated_key is updated_at#id: the key condition also lets updated_at == since in
        return (image for image in images if image['updated_at'] > since)

    def indexes_name(self, name):
        """Whether ('name', name) holds every listed image of that name (names that
        cannot be an index key, the empty one included, are not indexed)."""
        return name_key(name) is not None

    def shared_among(self, image_ids, member):
        """The ids among `image_ids` that have `member` as a member (BatchGetItem)."""
        keys = [(image_id, member) for image_id in set(image_ids)]
        if member is None or not keys:
            return set()
        return {m.image_id for m in ImageMemberModel.batch_get(keys)}

    def _images_shared_with(self, member, descending, after, page_size):
        condition = None
        if after is not None:
            condition = (ImageMemberModel.image_created_key < after if descending
                         else ImageMemberModel.image_created_key > after)
        memberships = ImageMemberModel.member_images.query(
            member, condition, scan_index_forward=not descending, page_size=page_size)
        batch = page_size or _BATCH_GET_MAX
        while True:
            chunk = [m.image_id for m in itertools.islice(memberships, min(batch, _BATCH_GET_MAX))]
            if not chunk:
                return
            found = {m.id: _to_dict(m) for m in ImageModel.batch_get(chunk)}
            for image_id in chunk:
                if image_id in found:
                    yield found[image_id]

    def expired_uploads(self, now):
        """Images whose presigned-upload reservation expired before `now`."""
        return [_to_dict(m) for m in ImageModel.pending_uploads.query(
            PENDING_PARTITION, ImageModel.upload_expires_at < now)]

    def stored_bytes_of(self, owner, excluding):
        """Bytes stored for `owner`'s listed images (the storage quota's usage)."""
        return sum(image['size'] or 0 for image in self.images_of(('owner', owner))
                   if image['location'] and image['id'] != excluding)

    def get_many(self, image_ids):
        """{id: image} of those that exist (BatchGetItem, 100 keys a request)."""
        return {model.id: _to_dict(model) for model in ImageModel.batch_get(set(image_ids))}

    # -- memberships ----------------------------------------------------------
    def is_member(self, image_id, member):
        return self.get_member(image_id, member) is not None

    def get_member(self, image_id, member):
        if member is None:
            return None
        try:
            return _member_dict(ImageMemberModel.get(image_id, member, consistent_read=True))
        except DoesNotExist:
            return None

    def members_of(self, image_id):
        """An image's memberships in the order they were made."""
        found = [_member_dict(m) for m in ImageMemberModel.query(image_id, consistent_read=True)]
        return sorted(found, key=lambda m: m['created_at'])

    def memberships_of(self, member):
        """A member's memberships, newest image first."""
        return [_member_dict(m) for m in ImageMemberModel.member_images.query(
            member, scan_index_forward=False)]

    def put_member(self, image, member, can_share=None):
        """Create the membership (-> True), or change `can_share` of an existing one if
        given (-> False)."""
        now = now_string()
        while True:
            try:
                ImageMemberModel(image['id'], member, can_share=bool(can_share),
                                 created_at=now, updated_at=now,
                                 image_created_key=created_key(image)).save(
                    condition=ImageMemberModel.member.does_not_exist())
                return True
            except PutError as error:
                if not _is_condition_failure(error):
                    raise
            if can_share is None:
                return False
            try:
                ImageMemberModel(image['id'], member).update(
                    actions=[ImageMemberModel.can_share.set(bool(can_share)),
                             ImageMemberModel.updated_at.set(now)],
                    condition=ImageMemberModel.member.exists())
                return False
            except UpdateError as error:  # removed in between: create it again
                if not _is_condition_failure(error):
                    raise

    def delete_member(self, image_id, member):
        """False when there was no such membership."""
        try:
            ImageMemberModel(image_id, member).delete(
                condition=ImageMemberModel.member.exists())
            return True
        except DeleteError as error:
            if _is_condition_failure(error):
                return False
            raise

    def remove_members(self, image_id):
        with ImageMemberModel.batch_write() as batch:
            for membership in ImageMemberModel.query(image_id):
                batch.delete(membership)


def _member_dict(model):
    return {'image_id': model.image_id, 'member_id': model.member,
            'can_share': bool(model.can_share), 'created_at': model.created_at}
