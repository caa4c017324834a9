"""Error bodies negotiated from Accept, on real routes (v1 §18)."""
import json
import uuid

import pytest

from tests.helpers import ADMIN, create_image, get_header, tenant

pytestmark = pytest.mark.shared_world

A = tenant('tenant-a')
UNKNOWN = '6f1c1a9e-0000-4000-8000-00000000abcd'
PLAIN = 'text/plain; charset=UTF-8'
HTML = 'text/html; charset=UTF-8'


# (name, method, path, headers, status code, title, message in the body)
ERROR_CASES = [
    ('bad-disk-format', 'POST', '/v1/images',
     dict(A, **{'x-image-meta-disk_format': 'foo'}),
     400, 'Bad Request', "Invalid disk format 'foo' for image."),
    ('bad-header', 'POST', '/v1/images', dict(A, **{'x-image-meta-foo': 'bar'}),
     400, 'Bad Request', 'Bad header: x-image-meta-foo'),
    ('bad-sort-key', 'GET', '/v1/images?sort_key=foo', A,
     400, 'Bad Request', 'Unsupported sort_key. Acceptable values:'),
    ('bad-limit', 'GET', '/v1/images/detail?limit=x', A,
     400, 'Bad Request', 'limit param must be an integer'),
    ('unauthenticated', 'GET', '/v1/images', {},
     401, 'Unauthorized', 'This server could not verify that you are authorized'),
    ('publicize', 'POST', '/v1/images', dict(A, **{'x-image-meta-is_public': 'true'}),
     403, 'Forbidden', 'Access was denied to this resource.'),
    ('unknown-image', 'GET', '/v1/images/%s' % UNKNOWN, A,
     404, 'Not Found', 'Image with identifier %s not found' % UNKNOWN),
    ('unknown-image-put', 'PUT', '/v1/images/%s' % UNKNOWN, A,
     404, 'Not Found', 'Image with identifier %s not found' % UNKNOWN),
    ('unknown-image-delete', 'DELETE', '/v1/images/%s' % UNKNOWN, A,
     404, 'Not Found', ''),
    ('not-allowed', 'DELETE', '/v1/images', A,
     405, 'Method Not Allowed', 'The method DELETE is not allowed for this resource.'),
    ('request-id-too-long', 'GET', '/v1/images',
     dict(A, **{'X-Openstack-Request-Id': 'x' * 65}),
     431, 'Request Header Fields Too Large', ''),
]
CASE_IDS = [case[0] for case in ERROR_CASES]


def _request(client, method, path, headers, accept=None):
    headers = dict(headers)
    if accept is not None:
        headers['Accept'] = accept
    return client.http.request(method, path, headers=headers)


@pytest.mark.parametrize('name,method,path,headers,code,title,message', ERROR_CASES,
                         ids=CASE_IDS)
def test_no_accept_gives_plain_text(client, name, method, path, headers, code, title,
                                    message):
    response = _request(client, method, path, headers)
    assert response.status_code == code
    assert get_header(response, 'Content-Type') == PLAIN
    body = response.body.decode()
    assert body.startswith('%d %s\n\n' % (code, title))
    assert message in body


@pytest.mark.parametrize('name,method,path,headers,code,title,message', ERROR_CASES,
                         ids=CASE_IDS)
def test_accept_json_gives_json_document(client, name, method, path, headers, code, title,
                                         message):
    response = _request(client, method, path, headers, 'application/json')
    assert response.status_code == code
    assert get_header(response, 'Content-Type') == 'application/json'
    document = json.loads(response.body)
    assert set(document) == {'message', 'code', 'title'}
    assert document['code'] == '%d %s' % (code, title)
    assert document['title'] == title
    assert message in document['message']


@pytest.mark.parametrize('accept', ['*/*', 'text/html', 'text/html,application/xhtml+xml'])
@pytest.mark.parametrize('name,method,path,headers,code,title,message', ERROR_CASES,
                         ids=CASE_IDS)
def test_accept_html_or_anything_gives_html_page(client, accept, name, method, path,
                                                 headers, code, title, message):
    response = _request(client, method, path, headers, accept)
    assert response.status_code == code
    assert get_header(response, 'Content-Type') == HTML
    body = response.body.decode()
    status = '%d %s' % (code, title)
    assert body.startswith('<html>')
    assert '<title>%s</title>' % status in body
    assert '<h1>%s</h1>' % status in body
    assert message.replace("'", '&#x27;') in body


@pytest.mark.parametrize('accept', ['text/plain', 'image/png', 'application/xml',
                                    'application/octet-stream'])
def test_accept_matching_neither_gives_plain_text(client, accept):
    response = _request(client, 'GET', '/v1/images/%s' % UNKNOWN, A, accept)
    assert response.status_code == 404
    assert get_header(response, 'Content-Type') == PLAIN
    assert ('Image with identifier %s not found' % UNKNOWN).encode() in response.body


@pytest.mark.parametrize('accept,content_type', [
    ('text/html;q=0.5, application/json', 'application/json'),
    ('application/json;q=0.9, text/html;q=0.1', 'application/json'),
    ('*/*;q=0.1, application/json', 'application/json'),
    ('application/*', 'application/json'),
    ('text/*', HTML),
    ('text/plain, application/json', 'application/json'),
])
def test_accept_quality_and_wildcards(client, accept, content_type):
    response = _request(client, 'GET', '/v1/images/%s' % UNKNOWN, A, accept)
    assert response.status_code == 404
    assert get_header(response, 'Content-Type') == content_type


def test_html_body_escapes_the_message(client):
    headers = dict(A, **{'x-image-meta-disk_format': '<b>&"'})
    response = _request(client, 'POST', '/v1/images', headers, 'text/html')
    assert response.status_code == 400
    body = response.body.decode()
    assert '<b>' not in body
    assert '&lt;b&gt;&amp;' in body
    as_json = json.loads(_request(client, 'POST', '/v1/images', headers,
                                  'application/json').body)
    assert 'Invalid disk format \'<b>&"\' for image.' in as_json['message']


@pytest.mark.parametrize('accept', [None, 'application/json', '*/*', 'text/html'])
def test_head_errors_have_empty_bodies(client, accept):
    responses = [
        _request(client, 'HEAD', '/v1/images/%s' % UNKNOWN, A, accept),        # 404
        _request(client, 'HEAD', '/v1/images', A, accept),                     # 405
        _request(client, 'HEAD', '/v1/images/detail', A, accept),              # 405
        _request(client, 'HEAD', '/v1/images/%s' % UNKNOWN, {}, accept),       # 401
    ]
    assert [r.status_code for r in responses] == [404, 405, 405, 401]
    for response in responses:
        assert response.body == b''
        assert get_header(response, 'Content-Type')


def test_405_keeps_allow_header_in_every_body_format(client):
    for accept in (None, 'application/json', 'text/html'):
        response = _request(client, 'PUT', '/v1/images', A, accept)
        assert response.status_code == 405
        assert get_header(response, 'Allow') == 'GET, POST'


def test_errors_on_image_states(client):
    """Errors from the image routes, each negotiated and each with a Content-Type."""
    _, queued = create_image(client, A)
    _, protected = create_image(client, A, protected='true')
    _, public = create_image(client, ADMIN, is_public='true')
    cases = [
        ('GET', '/v1/images/%s' % queued['id'], A, {}, 404,
         'Image %s is not active' % queued['id']),
        ('DELETE', '/v1/images/%s' % protected['id'], A, {}, 403, 'Image is protected'),
        ('PUT', '/v1/images/%s' % public['id'], A, {'x-image-meta-name': 'x'}, 403,
         'Forbidden to update image'),
        ('POST', '/v1/images', A, {'x-image-meta-id': queued['id']}, 409,
         'An image with identifier %s already exists' % queued['id']),
        ('PUT', '/v1/images/%s' % queued['id'], A,
         {'x-image-meta-status': 'active'}, 403, "Forbidden to modify 'status' of image."),
    ]
    for method, path, identity, extra, code, message in cases:
        headers = dict(identity, **extra)
        plain = _request(client, method, path, headers)
        assert plain.status_code == code, (method, path, plain.body)
        assert get_header(plain, 'Content-Type') == PLAIN
        assert message in plain.body.decode()
        as_json = _request(client, method, path, headers, 'application/json')
        assert as_json.status_code == code
        assert message in json.loads(as_json.body)['message']
        html = _request(client, method, path, headers, '*/*')
        assert html.status_code == code
        assert get_header(html, 'Content-Type') == HTML
        assert message.replace("'", '&#x27;') in html.body.decode()


def test_413_property_quota_is_negotiated(client, settings_override):
    settings_override(image_property_quota=1)
    headers = dict(A, **{'x-image-meta-property-a': '1', 'x-image-meta-property-b': '2'})
    response = _request(client, 'POST', '/v1/images', headers, 'application/json')
    assert response.status_code == 413
    document = json.loads(response.body)
    assert document['code'] == '413 Request Entity Too Large'
    assert 'The limit has been exceeded on the number of allowed image properties' in \
        document['message']


@pytest.mark.parametrize('path', ['/v1/foo', '/v1/images.xxx', '/v1/versions'])
def test_unknown_v1_path_error_is_negotiated(client, path):
    as_json = _request(client, 'GET', path, A, 'application/json')
    assert as_json.status_code == 404
    assert get_header(as_json, 'Content-Type') == 'application/json'
    assert json.loads(as_json.body)['code'] == '404 Not Found'
    html = _request(client, 'GET', path, A, '*/*')
    assert html.status_code == 404
    assert get_header(html, 'Content-Type') == HTML
    plain = _request(client, 'GET', path, A)
    assert plain.status_code == 404
    assert get_header(plain, 'Content-Type') == PLAIN
    assert plain.body.startswith(b'404 Not Found\n\n')
    assert b'The resource could not be found.' in plain.body


def test_success_responses_are_not_error_documents(client):
    # a sanity check: JSON Accept does not change a success body
    response, image = create_image(client, dict(A, Accept='application/json'))
    assert response.status_code == 201
    assert set(json.loads(response.body)) == {'image'}
    assert uuid.UUID(image['id'])
