"""Presigned uploads and redirected downloads against the local runtime, over real HTTP.

The image bytes go from the client straight to the embedded moto server (the
presigned URLs name it, never the API), the runtime's event pump finalizes the
upload, and python-glanceclient and the glance CLI download a large image by
following the API's 302 to a presigned S3 GET.
"""
import os
import re
import time
import urllib.parse
import uuid

import glanceclient
import pytest
import requests

from .support import LocalRuntime, md5_of, run_glance_cli

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')

MIB = 1 << 20
PART = 5 * MIB
JSON = {'Content-Type': 'application/json'}
ACTIVE_TIMEOUT = 30


@pytest.fixture(scope='module')
def runtime():
    """A runtime of its own: downloads above 1 MiB are redirected to S3."""
    started = LocalRuntime('noauth', extra_env={'GLANCE_INLINE_DOWNLOAD_LIMIT': str(MIB)})
    try:
        started.start()
        yield started
    finally:
        started.stop()
        os.unlink(started.log.name)


@pytest.fixture(scope='module')
def api(runtime):
    return runtime.base_url


@pytest.fixture(scope='module')
def aws_netloc(runtime):
    """host:port of the embedded moto server, as the runtime announces it."""
    match = None
    deadline = time.monotonic() + 10
    while match is None and time.monotonic() < deadline:
        match = re.search(r'AWS at (http://[^\s,)]+)', runtime.output())
        if match is None:
            time.sleep(0.1)
    assert match, runtime.output()
    return urllib.parse.urlsplit(match.group(1)).netloc


# -- helpers ---------------------------------------------------------------------------------
def create_queued(api, name):
    response = requests.post(api + '/v1/images', headers={
        'x-image-meta-name': name, 'x-image-meta-disk_format': 'raw',
        'x-image-meta-container_format': 'bare'}, timeout=30)
    assert response.status_code == 201, response.text
    image = response.json()['image']
    assert image['status'] == 'queued'
    return image['id']


def reserve(api, image_id, **body):
    response = requests.post(api + '/v1/images/%s/upload' % image_id, json=body,
                             timeout=30)
    assert response.status_code == 201, response.text
    return response.json()['upload']


def wait_for_status(api, image_id, wanted=('active', 'killed')):
    """HEAD until the status is one of `wanted` (bounded); -> the x-image-meta-* headers."""
    deadline = time.monotonic() + ACTIVE_TIMEOUT
    while True:
        response = requests.head(api + '/v1/images/%s' % image_id, timeout=30)
        assert response.status_code == 200, response.status_code
        meta = {k.lower(): v for k, v in response.headers.items()}
        if meta['x-image-meta-status'] in wanted or time.monotonic() > deadline:
            return meta
        time.sleep(0.2)


def assert_points_at_the_store(url, api, aws_netloc):
    netloc = urllib.parse.urlsplit(url).netloc
    assert netloc == aws_netloc, (url, aws_netloc)
    assert netloc != urllib.parse.urlsplit(api).netloc


@pytest.fixture(scope='module')
def multipart_image(api, aws_netloc):
    """A 12 MB image uploaded in three presigned parts: (id, bytes)."""
    data = os.urandom(12 * 1000 * 1000 + 7)
    image_id = create_queued(api, 'e2e-multipart-%s' % uuid.uuid4().hex[:8])
    upload = reserve(api, image_id, size=len(data), part_size=PART)
    assert upload['mode'] == 'multipart' and upload['part_size'] == PART
    parts = upload['parts']
    assert [p['part_number'] for p in parts] == [1, 2, 3]
    assert [p['size'] for p in parts] == [PART, PART, len(data) - 2 * PART]
    for part in parts:   # the bytes never pass through the API
        assert_points_at_the_store(part['url'], api, aws_netloc)
    for part in parts[:2]:
        start = (part['part_number'] - 1) * PART
        response = requests.put(part['url'], data=data[start:start + part['size']],
                                timeout=60)
        assert response.status_code == 200, response.text
    # resuming: two parts uploaded, a fresh URL for the third
    shown = requests.get(api + '/v1/images/%s/upload' % image_id, timeout=30)
    assert shown.status_code == 200, shown.text
    shown_parts = shown.json()['upload']['parts']
    assert [p['uploaded'] for p in shown_parts] == [True, True, False]
    assert_points_at_the_store(shown_parts[2]['url'], api, aws_netloc)
    response = requests.put(shown_parts[2]['url'], data=data[2 * PART:], timeout=60)
    assert response.status_code == 200, response.text

    response = requests.post(api + '/v1/images/%s/upload/complete' % image_id, timeout=60)
    assert response.status_code == 202, response.text
    assert response.json()['image']['status'] in ('saving', 'active')
    again = requests.post(api + '/v1/images/%s/upload/complete' % image_id, timeout=60)
    assert again.status_code == 409, again.text
    return image_id, data


# -- uploads ------------------------------------------------------------------------------------
def test_multipart_upload_straight_to_the_store(api, multipart_image):
    image_id, data = multipart_image
    meta = wait_for_status(api, image_id)
    assert meta['x-image-meta-status'] == 'active', meta
    assert meta['x-image-meta-size'] == str(len(data))
    assert meta['x-image-meta-checksum'] == md5_of(data)


def test_single_put_straight_to_the_store(api, aws_netloc):
    data = os.urandom(2 * MIB + 3)
    image_id = create_queued(api, 'e2e-single-%s' % uuid.uuid4().hex[:8])
    upload = reserve(api, image_id, size=len(data))
    assert upload['mode'] == 'single' and upload['method'] == 'PUT'
    assert_points_at_the_store(upload['url'], api, aws_netloc)
    response = requests.put(upload['url'], data=data, headers=upload['headers'], timeout=60)
    assert response.status_code == 200, response.text
    meta = wait_for_status(api, image_id)   # the object's arrival completes the upload
    assert meta['x-image-meta-status'] == 'active', meta
    assert meta['x-image-meta-size'] == str(len(data))
    assert meta['x-image-meta-checksum'] == md5_of(data)
    download = requests.get(api + '/v1/images/%s' % image_id, headers={'Accept': '*/*'},
                            timeout=60)
    assert download.status_code == 200 and md5_of(download.content) == md5_of(data)

    # the URL is still valid, but what it writes now cannot replace the active image
    other = os.urandom(len(data))
    response = requests.put(upload['url'], data=other, headers=upload['headers'], timeout=60)
    assert response.status_code == 200, response.text
    time.sleep(2.5)   # the runtime's pump long-polls for 1 s
    meta = wait_for_status(api, image_id)
    assert meta['x-image-meta-status'] == 'active'
    assert meta['x-image-meta-checksum'] == md5_of(data)
    download = requests.get(api + '/v1/images/%s' % image_id, headers={'Accept': '*/*'},
                            timeout=60)
    assert download.status_code == 200 and md5_of(download.content) == md5_of(data)


def test_single_put_of_other_bytes_is_killed(api):
    data = b'declared bytes' * 100
    image_id = create_queued(api, 'e2e-mismatch-%s' % uuid.uuid4().hex[:8])
    upload = reserve(api, image_id, size=len(data), checksum=md5_of(data))
    other = data[::-1]
    response = requests.put(upload['url'], data=other, headers=upload['headers'], timeout=60)
    assert response.status_code == 200, response.text
    meta = wait_for_status(api, image_id)
    assert meta['x-image-meta-status'] == 'killed', meta


def test_abort_releases_the_reservation(api):
    image_id = create_queued(api, 'e2e-abort-%s' % uuid.uuid4().hex[:8])
    reserve(api, image_id, size=PART + 1, part_size=PART)
    response = requests.delete(api + '/v1/images/%s/upload' % image_id, timeout=30)
    assert response.status_code == 204, response.text
    response = requests.get(api + '/v1/images/%s/upload' % image_id, timeout=30)
    assert response.status_code == 409
    assert wait_for_status(api, image_id, ('queued',))['x-image-meta-status'] == 'queued'


def test_a_10000_part_reservation_comes_in_pages(api, aws_netloc):
    """Over real HTTP: each answer holds a page of part URLs and links the next one."""
    image_id = create_queued(api, 'e2e-pages-%s' % uuid.uuid4().hex[:8])
    response = requests.post(api + '/v1/images/%s/upload' % image_id, timeout=30,
                             json={'size': 10000 * PART, 'part_size': PART})
    assert response.status_code == 201, response.text
    sizes, numbers = [], []
    while True:
        sizes.append(len(response.content))
        upload = response.json()['upload']
        numbers += [part['part_number'] for part in upload['parts']]
        assert_points_at_the_store(upload['parts'][-1]['url'], api, aws_netloc)
        if 'next' not in upload:
            break
        response = requests.get(api + upload['next'], timeout=30)
        assert response.status_code == 200, response.text
    assert numbers == list(range(1, 10001))   # each part once
    assert len(sizes) == 40 and max(sizes) < MIB
    response = requests.get(api + '/v1/images/%s/upload?part_marker=10000' % image_id,
                            headers={'Accept': 'application/json'}, timeout=30)
    assert response.status_code == 400, response.text
    assert 'has parts 1 to 10000' in response.json()['message']
    response = requests.delete(api + '/v1/images/%s/upload' % image_id, timeout=30)
    assert response.status_code == 204, response.text


# -- downloads -------------------------------------------------------------------------------------
def test_large_download_is_a_redirect_to_the_store(api, aws_netloc, multipart_image):
    image_id, data = multipart_image
    assert wait_for_status(api, image_id)['x-image-meta-status'] == 'active'
    response = requests.get(api + '/v1/images/%s' % image_id, headers={'Accept': '*/*'},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.text
    location = response.headers['Location']
    assert_points_at_the_store(location, api, aws_netloc)
    assert urllib.parse.urlsplit(location).path.endswith('/images/%s' % image_id)
    assert 'X-Amz-Expires' in urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert response.headers['x-image-meta-checksum'] == md5_of(data)
    assert response.headers['x-image-meta-size'] == str(len(data))
    fetched = requests.get(location, timeout=60)
    assert fetched.status_code == 200 and md5_of(fetched.content) == md5_of(data)


def test_glanceclient_data_follows_the_redirect(api, multipart_image):
    image_id, data = multipart_image
    assert wait_for_status(api, image_id)['x-image-meta-status'] == 'active'
    client = glanceclient.Client('1', endpoint=api, token='x')
    image = client.images.get(image_id)
    assert image.status == 'active' and image.checksum == md5_of(data)
    body = b''.join(client.images.data(image_id))
    assert len(body) == len(data)
    assert md5_of(body) == md5_of(data)


def test_glance_cli_image_download_follows_the_redirect(api, multipart_image, tmp_path):
    image_id, data = multipart_image
    assert wait_for_status(api, image_id)['x-image-meta-status'] == 'active'
    target = tmp_path / 'copy.raw'
    run_glance_cli(api, 'image-download', '--file', target, image_id)
    got = target.read_bytes()
    assert len(got) == len(data)
    assert md5_of(got) == md5_of(data)
