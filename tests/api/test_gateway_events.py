"""The Lambda handler fed API Gateway proxy events (REST API, Lambda proxy
integration), its answers put through API Gateway's documented conversion rule:
every client gets image bytes, whatever its Accept, and JSON stays JSON.

API Gateway's rule for a Lambda proxy answer: a body marked `isBase64Encoded` is
decoded to binary when the request's first Accept media type matches one of the
API's binary media types (`*/*` in that list matches every media type, and so every
request); any other body goes out as the text it is."""
import base64
import hashlib
import json
import os
import uuid

import pytest

from chalicelib.api.wire import best_match
from tests.helpers import PROJECT_DIR, LambdaContext, proxy_event, tenant

A = tenant('tenant-a')
DATA = bytes(range(256)) * 40 + b'\x00\xff\r\n'
ACCEPTS = (None, 'application/json', 'text/html', '*/*', 'application/octet-stream',
           'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8')


def binary_media_types():
    """What the deployed stages declare: chalice's own list plus infra/'s merge."""
    with open(os.path.join(PROJECT_DIR, 'infra', 'api-binary-media-types.json')) as f:
        merged = json.load(f)
    return merged['Resources']['RestAPI']['Properties']['DefinitionBody'][
        'x-amazon-apigateway-binary-media-types']


def _matches(media_type, binary_types):
    kind = (media_type or '').split(';')[0].strip().lower()
    for allowed in binary_types:
        if allowed == '*/*' or allowed == kind or (
                allowed.endswith('/*') and kind.split('/')[0] == allowed[:-2]):
            return True
    return False


def as_client_receives(result, accept, binary_types):
    """API Gateway's conversion of a Lambda proxy answer, as the client sees it."""
    body = result.get('body') or ''
    first_accept = (accept or '').split(',')[0]
    if result.get('isBase64Encoded'):
        if _matches(first_accept, binary_types):
            return base64.b64decode(body)
        return body.encode('ascii')    # sent as the base64 text it is
    return body.encode('utf-8') if isinstance(body, str) else body


def call(handler, event):
    return handler(event, LambdaContext())


def _create(handler, base64_body):
    event = proxy_event('POST', '/v1/images', headers=dict(A, **{
        'Content-Type': 'application/octet-stream', 'x-image-meta-name': 'gw',
        'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare',
        'Content-Length': str(len(DATA))}), body=DATA, base64_body=True)
    if not base64_body:   # a text body, as API Gateway passes a text media type
        event = proxy_event('POST', '/v1/images', headers=dict(A, **{
            'Content-Type': 'application/octet-stream', 'x-image-meta-name': 'gw',
            'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare'}),
            body=b'plain text image', base64_body=False)
    result = call(handler, event)
    assert result['statusCode'] == 201, result
    return json.loads(result['body'])['image']


@pytest.mark.parametrize('accept', ACCEPTS)
def test_image_data_reaches_every_client(handler, accept):
    types = binary_media_types()
    image = _create(handler, base64_body=True)
    assert image['checksum'] == hashlib.md5(DATA).hexdigest()
    headers = dict(A, **({'Accept': accept} if accept else {}))
    result = call(handler, proxy_event('GET', '/v1/images/{image_id}',
                                       {'image_id': image['id']}, headers))
    assert result['statusCode'] == 200
    assert result['isBase64Encoded'] is True
    received = as_client_receives(result, accept, types)
    assert received == DATA
    assert result['headers']['x-image-meta-checksum'] == hashlib.md5(DATA).hexdigest()
    assert result['headers']['Content-Type'] == 'application/octet-stream'


@pytest.mark.parametrize('accept', ACCEPTS)
def test_json_stays_json_for_every_client(handler, accept):
    types = binary_media_types()
    _create(handler, base64_body=True)
    headers = dict(A, **({'Accept': accept} if accept else {}))
    result = call(handler, proxy_event('GET', '/v1/images', headers=headers))
    assert result['statusCode'] == 200 and not result.get('isBase64Encoded')
    listed = json.loads(as_client_receives(result, accept, types))
    assert [i['name'] for i in listed['images']] == ['gw']


@pytest.mark.parametrize('accept', ACCEPTS)
def test_errors_are_glance_errors_for_every_client(handler, accept):
    headers = dict(A, **({'Accept': accept} if accept else {}))
    result = call(handler, proxy_event('GET', '/v1/images/{image_id}',
                                       {'image_id': str(uuid.uuid4())}, headers))
    assert result['statusCode'] == 404 and not result.get('isBase64Encoded')
    text = as_client_receives(result, accept, binary_media_types()).decode()
    assert 'Code' not in text and 'not found' in text
    match = best_match(accept or '', ('text/html', 'application/json'))
    if match == 'text/html':
        assert text.startswith('<html>')
    elif match == 'application/json':
        assert json.loads(text)['code'] == '404 Not Found'
    else:
        assert text.startswith('404 Not Found')


def test_request_bodies_both_ways(handler):
    """isBase64Encoded true (a binary media type: every type here) and false."""
    encoded = _create(handler, base64_body=True)
    assert (encoded['size'], encoded['checksum']) == (len(DATA), hashlib.md5(DATA).hexdigest())
    plain = _create(handler, base64_body=False)
    assert plain['checksum'] == hashlib.md5(b'plain text image').hexdigest()


def test_member_json_bodies_both_ways(handler):
    image = _create(handler, base64_body=True)
    document = json.dumps({'memberships': [{'member_id': 'tenant-b', 'can_share': False}]})
    for base64_body in (True, False):
        result = call(handler, proxy_event(
            'PUT', '/v1/images/{image_id}/members', {'image_id': image['id']},
            dict(A, **{'Content-Type': 'application/json'}), document.encode(),
            base64_body=base64_body))
        assert result['statusCode'] == 204, result


def test_no_chalice_error_format_anywhere(handler):
    """chalice's own refusals (an unknown route in the event, a method the table
    lacks) come out in the reference's format."""
    unknown = proxy_event('GET', '/v1/images', headers=A)
    unknown['requestContext'].pop('resourcePath')
    result = call(handler, unknown)
    assert result['statusCode'] == 500
    assert result['body'].startswith('500 Internal Server Error') and 'Code' not in result['body']
    options = proxy_event('OPTIONS', '/v1/images', headers=dict(A, Accept='application/json'))
    result = call(handler, options)
    assert result['statusCode'] == 405 and 'Allow' in result['headers']
    assert json.loads(result['body'])['code'] == '405 Method Not Allowed'
    assert 'Unsupported method: OPTIONS' in json.loads(result['body'])['message']
