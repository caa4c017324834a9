"""Small helpers shared by the API tests (chalice.test.Client, trusted headers)."""
import json

ADMIN = {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': 'tenant-admin',
         'X-Roles': 'admin'}


def tenant(name, roles='member'):
    """Trusted identity headers for a tenant."""
    return {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': name, 'X-Roles': roles}


def meta_headers(**fields):
    """x-image-meta-* headers; `properties={...}` become x-image-meta-property-*."""
    headers = {}
    for name, value in fields.pop('properties', {}).items():
        headers['x-image-meta-property-%s' % name] = value
    for name, value in fields.items():
        headers['x-image-meta-%s' % name] = str(value)
    return headers


def create_image(client, identity, data=None, **fields):
    """POST /v1/images; returns (response, image dict or None)."""
    fields.setdefault('name', 'image')
    fields.setdefault('disk_format', 'raw')
    fields.setdefault('container_format', 'bare')
    headers = dict(identity, **meta_headers(**fields))
    if data is not None:
        headers['Content-Type'] = 'application/octet-stream'
    response = client.http.post('/v1/images', headers=headers, body=data or b'')
    image = json.loads(response.body)['image'] if response.status_code == 201 else None
    return response, image


def head(client, identity, image_id):
    return client.http.request('HEAD', '/v1/images/%s' % image_id, headers=identity)


def body_json(response):
    return json.loads(response.body)


# -- generic helpers for the API tests ----------------------------------------------
OCTET = {'Content-Type': 'application/octet-stream'}


def header(response, name):
    """A response header by case-insensitive name, or None."""
    wanted = name.lower()
    for key, value in response.headers.items():
        if key.lower() == wanted:
            return value
    return None


def error_text(response):
    """The body of a (text/plain) error response as str."""
    body = response.body
    return body.decode('utf-8') if isinstance(body, bytes) else body


def update_image(client, identity, image_id, data=None, headers=None, **fields):
    """PUT /v1/images/{id} with x-image-meta-* `fields`; returns (response, image or None).

    `data` (bytes) is sent as the body with Content-Type application/octet-stream
    unless `headers` sets another Content-Type.
    """
    all_headers = dict(identity, **meta_headers(**fields))
    if data is not None:
        all_headers.update(OCTET)
    all_headers.update(headers or {})
    response = client.http.put('/v1/images/%s' % image_id, headers=all_headers,
                               body=data or b'')
    image = json.loads(response.body)['image'] if response.status_code == 200 else None
    return response, image


def delete_image(client, identity, image_id):
    return client.http.delete('/v1/images/%s' % image_id, headers=identity)


def admin_view(client, image_id):
    """The image's x-image-meta-* headers as seen by an admin (HEAD), lower-cased keys."""
    response = head(client, ADMIN, image_id)
    assert response.status_code == 200, response.status_code
    return {k.lower(): v for k, v in response.headers.items()}


def stored_image_ids():
    """Ids of every item in the images table (deleted ones included)."""
    from chalicelib.storage.models import ImageModel
    return sorted(item.id for item in ImageModel.scan())


def _s3():
    """The S3 client of the service under test (creating a client costs ~0.15 s)."""
    from chalicelib.api.common import image_service
    return image_service().blobs.client


def stored_object_keys():
    """Keys of every object in the image bucket."""
    from chalicelib.config import settings
    listing = _s3().list_objects_v2(Bucket=settings().image_bucket)
    return sorted(item['Key'] for item in listing.get('Contents', []))


def stored_object(image_id):
    """The bytes stored in S3 for an image (images/<id>), or None."""
    from botocore.exceptions import ClientError

    from chalicelib.config import settings
    try:
        return _s3().get_object(Bucket=settings().image_bucket,
                                Key='images/%s' % image_id)['Body'].read()
    except ClientError:
        return None


# -- generic helpers added for the API test modules ---------------------------------
def get_header(response, name):
    """A response header looked up case-insensitively; None when absent."""
    wanted = name.lower()
    for key, value in response.headers.items():
        if key.lower() == wanted:
            return value
    return None


def list_images(client, identity, detail=False, **params):
    """GET /v1/images[/detail]?params; returns the response."""
    from urllib.parse import urlencode
    path = '/v1/images/detail' if detail else '/v1/images'
    if params:
        path += '?' + urlencode(params)
    return client.http.get(path, headers=identity)


def listed_ids(client, identity, detail=False, **params):
    """The ids of a listing that must succeed (asserts 200)."""
    response = list_images(client, identity, detail=detail, **params)
    assert response.status_code == 200, (response.status_code, response.body)
    return [image['id'] for image in body_json(response)['images']]


def module_client():
    """A chalice.test.Client over one moto world, for a module-scoped fixture.

    Creating the tables costs ~0.3 s, so modules with many tests share one world
    and call `wipe_catalog()` before each test instead:

        @pytest.fixture(scope='module')
        def client():
            yield from module_client()
    """
    import os

    from chalice.test import Client
    from moto import mock_aws

    from chalicelib.api import common
    project_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with mock_aws():
        from chalicelib.storage.resources import ensure_resources
        common._services.clear()
        ensure_resources()
        from app import app
        with Client(app, stage_name='test', project_dir=project_dir) as test_client:
            yield test_client
        common._services.clear()


def wipe_catalog():
    """Delete every image and membership record of the current moto world."""
    from chalicelib.storage.models import ImageMemberModel, ImageModel
    for model in (ImageModel, ImageMemberModel):
        items = list(model.scan())
        with model.batch_write() as batch:
            for item in items:
                batch.delete(item)


def memberships_of(image_id):
    """Member ids stored for an image."""
    from chalicelib.storage.models import ImageMemberModel
    return sorted(m.member for m in ImageMemberModel.query(image_id))
