"""Clients nobody here wrote, over real HTTP: Python's http.client (no Accept header
at all), urllib (its default headers), and Tempest's v1 ImagesClient style
(`Accept: application/json` on every request, the image data included), against the
local runtime; the same tests run against the reference Glance with E2E_GLANCE_URL."""
import hashlib
import http.client
import json
import os
import urllib.parse
import urllib.request

import pytest

DATA = os.urandom(300000)
MD5 = hashlib.md5(DATA).hexdigest()


def _connection(base_url):
    parts = urllib.parse.urlsplit(base_url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)


def _create(base_url, tag):
    connection = _connection(base_url)
    connection.putrequest('POST', '/v1/images', skip_accept_encoding=True)
    for name, value in (('Content-Type', 'application/octet-stream'),
                        ('Content-Length', str(len(DATA))), ('x-image-meta-name', tag),
                        ('x-image-meta-disk_format', 'raw'),
                        ('x-image-meta-container_format', 'bare')):
        connection.putheader(name, value)
    connection.endheaders(DATA)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 201, body
    return json.loads(body)['image']


def _download_without_accept(base_url, image_id):
    connection = _connection(base_url)
    # putrequest adds Host (and Accept-Encoding unless skipped), never Accept
    connection.putrequest('GET', '/v1/images/%s' % image_id, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    headers = {name.lower(): value for name, value in response.getheaders()}
    connection.close()
    return response.status, headers, body


def test_http_client_without_accept_downloads_the_image(glance_url, tag):
    image = _create(glance_url, tag)
    status, headers, body = _download_without_accept(glance_url, image['id'])
    assert 'accept' not in headers
    assert status == 200
    assert hashlib.md5(body).hexdigest() == MD5 == headers['x-image-meta-checksum']
    assert headers['content-type'] == 'application/octet-stream'


def test_urllib_urlopen_downloads_the_image(glance_url, tag):
    image = _create(glance_url, tag)
    with urllib.request.urlopen('%s/v1/images/%s' % (glance_url, image['id']),
                                timeout=60) as response:
        body = response.read()
        assert response.status == 200
        assert response.headers['x-image-meta-checksum'] == MD5
    assert hashlib.md5(body).hexdigest() == MD5


@pytest.mark.parametrize('accept', ['application/json', 'text/html', '*/*',
                                    'application/octet-stream'])
def test_tempest_style_accept_downloads_the_image(glance_url, tag, accept):
    """Tempest 35's v1 ImagesClient sends Accept: application/json on every call."""
    image = _create(glance_url, tag)
    request = urllib.request.Request('%s/v1/images/%s' % (glance_url, image['id']),
                                     headers={'Accept': accept})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        assert response.status == 200
    assert hashlib.md5(body).hexdigest() == MD5
    listed = urllib.request.Request('%s/v1/images/detail?name=%s' % (glance_url, tag),
                                    headers={'Accept': accept})
    with urllib.request.urlopen(listed, timeout=60) as response:
        images = json.loads(response.read())['images']
    assert [i['id'] for i in images] == []  # noauth: ownerless and private, not listed


def test_v1_media_type_without_a_version_in_the_url(glance_url, tag):
    image = _create(glance_url, tag)
    request = urllib.request.Request('%s/images/%s' % (glance_url, image['id']), headers={
        'Accept': 'application/vnd.openstack.images-v1'})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert hashlib.md5(response.read()).hexdigest() == MD5
