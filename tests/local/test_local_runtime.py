"""The local runtime's HTTP front, as a real process over real HTTP.

It routes the encoded path and hands the decoded segment values as path parameters,
as API Gateway does: an encoded `?`, `#` or `;` stays inside its segment (werkzeug's
decoded PATH_INFO, split by chalice's urlparse, cut the path there) and an encoded
TAB, CR or LF is a character of the value (urlparse dropped it). `%2F` is left out:
whether API Gateway keeps it inside a {param} is not established.
"""
import urllib.parse

import pytest
import requests

pytestmark = pytest.mark.slow

IDENTITY = {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': 't', 'X-Roles': 'member'}
ADMIN = dict(IDENTITY, **{'X-Tenant-Id': 'admin-tenant', 'X-Roles': 'admin'})

# encoded as sent -> decoded as the service should see it
ROUTING_CHARACTERS = [('a%3Fb', 'a?b'), ('a%23b', 'a#b'), ('a%3Bb', 'a;b'),
                      ('a%09b', 'a\tb'), ('a%0Ab', 'a\nb'), ('a%0Db', 'a\rb'),
                      ('%3F', '?'), ('%09', '\t')]
OTHER_ENCODED = [('a%25b', 'a%b'), ('a%2520b', 'a%20b'), ('a%20b', 'a b'),
                 ('caf%C3%A9', 'caf\u00e9'), ('a+b', 'a+b')]


def _send(base_url, method, raw_path, headers, data=None):
    """The path goes on the wire exactly as written (requests would not re-quote it,
    but a prepared request makes that explicit)."""
    request = requests.Request(method, base_url + '/', headers=headers, data=data).prepare()
    request.url = base_url + raw_path
    with requests.Session() as session:
        return session.send(request, timeout=30)


def _create(base_url, name, headers=IDENTITY, **meta):
    meta_headers = {'x-image-meta-' + key: str(value) for key, value in meta.items()}
    response = requests.post(base_url + '/v1/images', timeout=30,
                             headers=dict(headers, **{'x-image-meta-name': name},
                                          **meta_headers))
    assert response.status_code == 201, response.text
    return response.json()['image']['id']


@pytest.mark.parametrize('encoded,decoded', ROUTING_CHARACTERS + OTHER_ENCODED)
def test_a_member_id_reaches_its_route_decoded(runtime, encoded, decoded):
    image_id = _create(runtime.base_url, 'shared ' + encoded)
    added = _send(runtime.base_url, 'PUT',
                  '/v1/images/%s/members/%s' % (image_id, encoded), IDENTITY)
    assert added.status_code == 204, added.text
    members = _send(runtime.base_url, 'GET', '/v1/images/%s/members' % image_id, IDENTITY)
    assert members.status_code == 200, members.text
    assert [m['member_id'] for m in members.json()['members']] == [decoded]
    removed = _send(runtime.base_url, 'DELETE',
                    '/v1/images/%s/members/%s' % (image_id, encoded), IDENTITY)
    assert removed.status_code == 204, removed.text
    members = _send(runtime.base_url, 'GET', '/v1/images/%s/members' % image_id, IDENTITY)
    assert members.json()['members'] == []


@pytest.mark.parametrize('encoded,decoded', ROUTING_CHARACTERS)
def test_shared_images_of_any_tenant_answer_200(runtime, encoded, decoded):
    response = _send(runtime.base_url, 'GET', '/v1/shared-images/' + encoded, IDENTITY)
    assert response.status_code == 200, response.text
    assert response.json() == {'shared_images': []}


def test_shared_images_of_a_tenant_named_with_a_question_mark(runtime):
    image_id = _create(runtime.base_url, 'shared with a?b')
    added = _send(runtime.base_url, 'PUT',
                  '/v1/images/%s/members/a%%3Fb' % image_id, IDENTITY)
    assert added.status_code == 204, added.text
    shared = _send(runtime.base_url, 'GET', '/v1/shared-images/a%3Fb', ADMIN)
    assert shared.status_code == 200, shared.text
    assert shared.json()['shared_images'] == [{'image_id': image_id, 'can_share': False}]


@pytest.mark.parametrize('encoded,decoded', ROUTING_CHARACTERS)
def test_an_image_id_reaches_its_route_decoded(runtime, encoded, decoded):
    # an unknown image, whatever its id: the route's own 404, not the router's 405/404
    uploaded = _send(runtime.base_url, 'PUT', '/v1/images/%s' % encoded,
                     dict(IDENTITY, **{'Content-Type': 'application/octet-stream'}),
                     data=b'bytes')
    assert uploaded.status_code == 404, uploaded.text
    assert 'image' in uploaded.text.lower()
    shown = _send(runtime.base_url, 'HEAD', '/v1/images/%s' % encoded, IDENTITY)
    assert shown.status_code == 404
    members = _send(runtime.base_url, 'GET', '/v1/images/%s/members' % encoded, IDENTITY)
    assert members.status_code == 404, members.text


def test_upload_to_an_image_id_with_a_question_mark_is_routed(runtime):
    response = _send(runtime.base_url, 'POST', '/v1/images/a%3Fb/upload', IDENTITY)
    assert response.status_code != 405, response.text


def test_ordinary_paths_and_query_strings_still_work(runtime):
    base = runtime.base_url
    names = {_create(base, 'listed', is_public='false') for _ in range(3)}
    _create(base, 'not listed')
    response = _send(base, 'GET', '/v1/images?name=listed&limit=2', IDENTITY)
    assert response.status_code == 200, response.text
    first = response.json()['images']
    assert len(first) == 2 and all(image['name'] == 'listed' for image in first)
    response = _send(base, 'GET', '/v1/images/detail?name=listed&limit=2&marker=%s'
                     % first[-1]['id'], IDENTITY)
    rest = response.json()['images']
    assert {image['id'] for image in first + rest} == names
    # an encoded query value, a trailing slash (404, as the reference), an encoded
    # letter in a fixed segment
    quoted = urllib.parse.quote('not listed')
    response = _send(base, 'GET', '/v1/images/detail?name=%s' % quoted, IDENTITY)
    assert [image['name'] for image in response.json()['images']] == ['not listed']
    trailing = _send(base, 'GET', '/v1/images/detail/?name=%s' % quoted, IDENTITY)
    assert trailing.status_code == 404 and 'could not be found' in trailing.text
    assert _send(base, 'GET', '/v1/%69mages/detail', IDENTITY).status_code == 200


def test_chunked_upload_underscore_headers_and_the_access_log_line(runtime):
    # x-image-meta-disk_format: werkzeug alone would drop the header
    image_id = _create(runtime.base_url, 'streamed', disk_format='raw', container_format='bare')

    def chunks():
        yield b'x' * 1000
        yield b'y' * 24

    response = requests.put(runtime.base_url + '/v1/images/' + image_id, data=chunks(),
                            headers=dict(IDENTITY, **{
                                'Content-Type': 'application/octet-stream'}), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()['image']['size'] == 1024
    assert ('PUT /v1/images/%s -> 200 (request body 1024 bytes' % image_id
            in runtime.output())
