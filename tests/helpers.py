"""Small helpers shared by the tests (chalice.test.Client, trusted headers); the
fixtures are in tests/conftest.py. No test module imports another: what two modules
share lives here."""
import json
import os
import urllib.parse

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JSON = {'Content-Type': 'application/json'}

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


# -- memberships and actions (tests/api/test_members.py, test_deactivation.py) -----
def private_image(client, owner=None, data=None):
    """A non-public image of `owner` (tenant-a): queued, or active when `data` is given."""
    response, image = create_image(client, owner or tenant('tenant-a'), data=data)
    assert response.status_code == 201, response.body
    assert image['is_public'] is False
    return image


def queued_image(client, identity=None, **fields):
    response, image = create_image(client, identity or tenant('tenant-a'), **fields)
    assert response.status_code == 201, response.body
    assert image['status'] == 'queued'
    return image


def members_path(image_id, member=None):
    path = '/v1/images/%s/members' % image_id
    return path if member is None else '%s/%s' % (path, member)


def put_member(client, identity, image_id, member, body=None, raw=None):
    """PUT /v1/images/{id}/members/{member}; `body` is JSON-encoded, `raw` sent as is."""
    headers = dict(identity)
    data = b''
    if body is not None:
        data = json.dumps(body).encode()
    if raw is not None:
        data = raw
    if data:
        headers.update(JSON)
    return client.http.put(members_path(image_id, member), headers=headers, body=data)


def share(client, image_id, member, can_share=None, identity=None):
    body = None if can_share is None else {'member': {'can_share': can_share}}
    response = put_member(client, identity or tenant('tenant-a'), image_id, member, body)
    assert response.status_code == 204, (response.status_code, response.body)


def download(client, identity, image_id):
    return client.http.get('/v1/images/%s' % image_id, headers=dict(identity, Accept='*/*'))


def action(client, identity, image_id, name):
    return client.http.post('/v1/images/%s/actions/%s' % (image_id, name), headers=identity)


def status_of(client, image_id):
    return admin_view(client, image_id)['x-image-meta-status']


def record_of(image_id):
    """The image's record as the catalog holds it."""
    from chalicelib.storage.catalog import ImageCatalog
    return ImageCatalog().get(image_id)


# -- presigned uploads (tests/api/test_presigned_uploads.py, tests/reliability) ----
class World:
    """The S3 client of the service, the bucket, and the bucket-events queue."""

    def __init__(self):
        import boto3

        from chalicelib.api.common import image_service
        from chalicelib.config import settings
        from chalicelib.storage.resources import ensure_upload_events
        self.s3 = image_service().blobs.client
        self.bucket = settings().image_bucket
        self.sqs = boto3.client('sqs', region_name=settings().region)
        self.queue_url = ensure_upload_events(self.sqs)

    def keys(self):
        listing = self.s3.list_objects_v2(Bucket=self.bucket)
        return sorted(item['Key'] for item in listing.get('Contents', []))

    def object(self, key):
        from botocore.exceptions import ClientError
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)['Body'].read()
        except ClientError:
            return None

    def multipart_uploads(self):
        listing = self.s3.list_multipart_uploads(Bucket=self.bucket)
        return sorted((u['Key'], u['UploadId']) for u in listing.get('Uploads', []))

    def pump(self):
        """Deliver every queued bucket event to the finalizer; -> messages handled."""
        from chalicelib.events import pump_bucket_events
        handled = 0
        while True:
            count = pump_bucket_events(self.sqs, self.queue_url, wait_seconds=0)
            if not count:
                return handled
            handled += count

    def empty(self):
        for key, upload_id in self.multipart_uploads():
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        for key in self.keys():
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        while True:  # drain the queue (PurgeQueue is allowed once a minute)
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                WaitTimeSeconds=0).get('Messages', [])
            if not messages:
                return
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {'Id': str(n), 'ReceiptHandle': m['ReceiptHandle']}
                for n, m in enumerate(messages)])


def upload_path(image_id, suffix=''):
    return '/v1/images/%s/upload%s' % (image_id, suffix)


def reserve(client, image_id, identity=None, body=None, raw=None):
    """POST /v1/images/{id}/upload with `body` JSON-encoded, or `raw` bytes as is."""
    data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
    return client.http.post(upload_path(image_id),
                            headers=dict(identity or tenant('tenant-a'), **JSON), body=data)


def reservation(client, image_id, identity=None, **body):
    response = reserve(client, image_id, identity, body)
    assert response.status_code == 201, (response.status_code, response.body)
    return body_json(response)['upload']


def complete(client, image_id, identity=None, body=None):
    identity = identity or tenant('tenant-a')
    data = b'' if body is None else json.dumps(body).encode()
    headers = dict(identity, **JSON) if data else identity
    return client.http.post(upload_path(image_id, '/complete'), headers=headers, body=data)


def put_parts(world, upload, data, numbers=None):
    """Upload the reservation's parts with the S3 client (same key and upload id)."""
    etags = {}
    for part in upload['parts']:
        number = part['part_number']
        if numbers is not None and number not in numbers:
            continue
        start = (number - 1) * upload['part_size']
        chunk = data[start:start + upload['part_size']]
        assert len(chunk) == part['size']
        etags[number] = world.s3.upload_part(
            Bucket=world.bucket, Key='uploads/%s' % upload['image_id'],
            UploadId=upload['upload_id'], PartNumber=number, Body=chunk)['ETag']
    return etags


def s3_event(key, name='ObjectCreated:Put', bucket=None):
    """The event S3 sends for `key` (keys arrive URL-encoded, as quote_plus)."""
    from chalicelib.config import settings
    return {'Records': [{
        'eventVersion': '2.1', 'eventSource': 'aws:s3', 'awsRegion': 'us-east-1',
        'eventName': name,
        's3': {'bucket': {'name': bucket or settings().image_bucket},
               'object': {'key': urllib.parse.quote_plus(key), 'size': 0}}}]}


def pending_upload_of(image_id):
    return record_of(image_id)['pending_upload']


# -- API Gateway (tests/api/test_gateway_events.py, test_safety_meta.py) -------------
GATEWAY_STAGE = 'api'


def proxy_event(method, resource, path_parameters=None, headers=None, body=None,
                base64_body=False, query=None):
    """A REST API Lambda proxy event, as API Gateway sends it."""
    import base64
    import uuid
    path = '/' + '/'.join(
        (path_parameters or {}).get(part[1:-1], part) if part.startswith('{') else part
        for part in resource.strip('/').split('/'))
    headers = dict(headers or {})
    if body is not None and base64_body:
        body = base64.b64encode(body).decode('ascii')
    elif isinstance(body, bytes):
        body = body.decode('utf-8')
    return {
        'resource': resource, 'path': path, 'httpMethod': method,
        'headers': headers, 'multiValueHeaders': {k: [v] for k, v in headers.items()},
        'queryStringParameters': query,
        'multiValueQueryStringParameters': {k: [v] for k, v in query.items()} if query
        else None,
        'pathParameters': path_parameters, 'stageVariables': None,
        'requestContext': {
            'resourcePath': resource, 'httpMethod': method,
            'path': '/%s%s' % (GATEWAY_STAGE, path),
            'stage': GATEWAY_STAGE, 'domainName': 'abc123.execute-api.us-east-1.amazonaws.com',
            'requestId': str(uuid.uuid4()), 'identity': {'sourceIp': '192.0.2.10'}},
        'body': body, 'isBase64Encoded': base64_body,
    }


class LambdaContext:
    function_name = 'glance-v1-prod'
    aws_request_id = 'req'

    @staticmethod
    def get_remaining_time_in_millis():
        return 30000
