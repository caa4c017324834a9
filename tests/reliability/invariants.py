"""What must hold between the catalog and the image bucket once requests have settled.

    from tests.reliability.invariants import violations
    assert violations() == []                           # in-process, under moto (tests)
    assert violations(endpoint_url=runtime.aws_endpoint, stage='local') == []

`violations(endpoint_url=None, stage=None, images_table=None, members_table=None,
bucket=None, check_sizes=True) -> list[str]` reads the images table, the members
table and the image bucket directly (boto3: a scan of each table, a listing of the
bucket and of its multipart uploads; nothing is written) and returns one human-readable
line per violation; an empty list means clean. Call it when no request, finalizer
delivery or copy-from job is in flight: an upload being streamed is legitimately
`saving` with an object that no record points at yet.

Where: `endpoint_url` is an AWS endpoint (the moto server of a running
`python -m chalicelib.local`, see `LocalRuntime.aws_endpoint`); None uses the
endpoint of the settings in force (None under the tests' in-process moto). Table and
bucket names come from `stage` (a stage of .chalice/config.json: a runtime started
by tests/e2e/support.py runs the `local` stage, whose names differ from the `test`
stage the unit tests load), else from `chalicelib.config.settings()`; the explicit
name arguments win over both.

The rules ("live" = not deleted: `deleted` is false):

1. Every object in the bucket belongs to a live image: it is that image's own
   location (`images/<id>`, `bucket_location()`), its `cached_location` (the bucket
   copy of an external location), or the key of its `pending_upload`
   (`uploads/<id>`, bytes sent to a presigned URL and not finalized yet). Anything
   else is an orphan: bytes no record will ever serve or delete.
2. Every in-progress multipart upload is the `pending_upload` (key and upload id)
   of a live image.
3. Every live image whose data is in the bucket (`active` or `deactivated` with a
   bucket location or a cached copy) has that object, of the image's `size` bytes.
   (`check_sizes=False` skips the size comparison: an admin may rewrite the `size`
   of an active image, v1 §11, which a fuzzer running as admin will do.)
4. No image sits in a state nothing will move it out of. `saving` is a transitional
   state: an inline upload or a copy-from holds it only for the request or job that
   set it, and a presigned upload's finalizer (retried on failure) or, past the
   reservation's expiry, the reaper moves it on. So `saving` is allowed only with a
   `pending_upload`; `saving` without one is an image stuck forever (only DELETE
   gets it out). A `pending_upload` only belongs to a `queued` or `saving` image.
   `queued` (waiting for data), `killed` (terminal, v1 §6) and the others are
   stable states.
5. `deleted` is true exactly for the `deleted` and `pending_delete` statuses (a half
   reverted delete would break this).
6. A live image's `member_count`, when set, equals its membership rows (the count
   holds the member quota; None means "count the rows on the next change").
   Rows of a deleted image are not reported: a delete removes them after the image
   is deleted and its data gone, and if that last write fails they are left over,
   never shown (shared images and listings skip deleted images, v1 §14.5).
"""
import collections
import decimal
import json
import os

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIVE_DATA_STATUSES = ('active', 'deactivated')
DELETED_STATUSES = ('deleted', 'pending_delete')
UPLOADING_STATUSES = ('queued', 'saving')
_clients_by_endpoint = {}
_deserialize = TypeDeserializer().deserialize


def violations(endpoint_url=None, stage=None, images_table=None, members_table=None,
               bucket=None, check_sizes=True):
    """The broken rules of the module docstring, one line each; [] when clean."""
    names = _names(stage)
    images_table = images_table or names['images_table']
    members_table = members_table or names['members_table']
    bucket = bucket or names['bucket']
    dynamodb, s3 = _clients(endpoint_url)
    images = {item['id']: item for item in _scan(dynamodb, images_table)}
    memberships = list(_scan(dynamodb, members_table))
    objects = _objects(s3, bucket)
    uploads = _multipart_uploads(s3, bucket)
    found = []
    live = {i: image for i, image in images.items() if not image.get('deleted')}

    # 1. objects
    owners = {}
    for image_id, image in live.items():
        for key in _keys_of(image):
            owners[key] = image_id
    for key in sorted(objects):
        if key not in owners:
            found.append('orphan object %s (%d bytes): %s' % (
                key, objects[key], _whose(key, images)))

    # 2. multipart uploads
    reserved = {(image['pending_upload']['key'], image['pending_upload'].get('upload_id'))
                for image in live.values() if image.get('pending_upload')}
    for key, upload_id in uploads:
        if (key, upload_id) not in reserved:
            found.append('orphan multipart upload %s of %s: %s' % (
                upload_id, key, _whose(key, images)))

    for image_id, image in sorted(images.items()):
        status, deleted = image.get('status'), bool(image.get('deleted'))
        # 5. the deleted flag
        if deleted != (status in DELETED_STATUSES):
            found.append('image %s is %s with deleted=%s' % (image_id, status, deleted))
        if deleted:
            continue
        # 3. the data of active images
        if status in LIVE_DATA_STATUSES:
            for key in filter(None, (_bucket_location(image), image.get('cached_location'))):
                size = _int(image.get('size'))
                if key not in objects:
                    found.append('%s image %s has no object %s' % (status, image_id, key))
                elif check_sizes and size is not None and objects[key] != size:
                    found.append('%s image %s has size %d but its object %s has %d bytes'
                                 % (status, image_id, size, key, objects[key]))
        # 4. transitional states
        if status == 'saving' and not image.get('pending_upload'):
            found.append('image %s is saving with no upload in progress: nothing will '
                         'ever activate or kill it' % image_id)
        if image.get('pending_upload') and status not in UPLOADING_STATUSES:
            found.append('%s image %s still holds an upload reservation' % (status, image_id))

    # 6. memberships
    rows = collections.Counter(membership['image_id'] for membership in memberships)
    for image_id, image in sorted(live.items()):
        count = _int(image.get('member_count'))
        if count is not None and count != rows.get(image_id, 0):
            found.append('image %s counts %d members but has %d' % (
                image_id, count, rows.get(image_id, 0)))
    return found


# -- reading ----------------------------------------------------------------------------
def _names(stage):
    if stage is None:
        from chalicelib.config import settings
        current = settings()
        return {'images_table': current.images_table,
                'members_table': current.members_table, 'bucket': current.image_bucket}
    with open(os.path.join(PROJECT_DIR, '.chalice', 'config.json'), encoding='utf-8') as f:
        config = json.load(f)
    variables = dict(config.get('environment_variables') or {})
    variables.update(config['stages'][stage].get('environment_variables') or {})
    return {'images_table': variables.get('GLANCE_IMAGES_TABLE', 'glance-images'),
            'members_table': variables.get('GLANCE_MEMBERS_TABLE', 'glance-image-members'),
            'bucket': variables.get('GLANCE_IMAGE_BUCKET', 'glance-images')}


def _clients(endpoint_url):
    """(dynamodb, s3) clients, made once per endpoint (a client costs ~0.1 s)."""
    from chalicelib.config import settings
    current = settings()
    endpoint_url = endpoint_url or current.aws_endpoint_url
    key = (endpoint_url, current.region)
    if key not in _clients_by_endpoint:
        session = boto3.session.Session()
        credentials = {}
        if endpoint_url and session.get_credentials() is None:  # an emulator takes any
            credentials = {'aws_access_key_id': 'testing',
                           'aws_secret_access_key': 'testing'}
        common = dict(region_name=current.region, endpoint_url=endpoint_url, **credentials)
        _clients_by_endpoint[key] = (
            session.client('dynamodb', **common),
            session.client('s3', config=Config(s3={'addressing_style': 'path'}), **common))
    return _clients_by_endpoint[key]


def _scan(dynamodb, table):
    for page in dynamodb.get_paginator('scan').paginate(TableName=table,
                                                        ConsistentRead=True):
        for item in page['Items']:
            yield {name: _deserialize(value) for name, value in item.items()}


def _objects(s3, bucket):
    """{key: size} of every object."""
    found = {}
    for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket):
        for item in page.get('Contents', []):
            found[item['Key']] = item['Size']
    return found


def _multipart_uploads(s3, bucket):
    found = []
    for page in s3.get_paginator('list_multipart_uploads').paginate(Bucket=bucket):
        found += [(u['Key'], u['UploadId']) for u in page.get('Uploads', [])]
    return found


# -- the records ------------------------------------------------------------------------
def _bucket_location(image):
    """As chalicelib.domain.images.bucket_location: a location without a scheme is a
    key in the bucket; an external URL may have a cached copy."""
    location = image.get('location')
    if location and '://' not in location:
        return location
    return image.get('cached_location')


def _keys_of(image):
    keys = [_bucket_location(image), image.get('cached_location')]
    if image.get('pending_upload'):
        keys.append(image['pending_upload'].get('key'))
    return filter(None, keys)


def _whose(key, images):
    """What the key's name says about its image, for the message."""
    image_id = key.split('/', 1)[-1]
    image = images.get(image_id)
    if image is None:
        return 'no such image'
    return 'image %s is %s%s' % (image_id, image.get('status'),
                                 ', deleted' if image.get('deleted') else '')


def _int(value):
    if isinstance(value, decimal.Decimal):
        return int(value)
    return value
