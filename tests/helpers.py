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
