"""Presigned uploads (/v1/images/{id}/upload): reservations, the presigned URLs,
the finalizer fed by bucket events, abort, the reaper, the inline limits and the
redirected download of large images.

One moto world for the module (tables, bucket, the bucket-events queue); every test
starts from an empty catalog, an empty bucket and an empty queue.
"""
import base64
import datetime
import hashlib
import threading
import urllib.parse

import pytest
import requests

from chalicelib.config import settings
from tests.helpers import (ADMIN, JSON, OCTET, admin_view, body_json, complete,
                           create_image, delete_image, error_text, get_header,
                           pending_upload_of, put_parts, queued_image, reservation,
                           reserve, s3_event, status_of, tenant, update_image, upload_path)

pytestmark = [pytest.mark.shared_world, pytest.mark.usefixtures('empty_world')]

A = tenant('tenant-a')
B = tenant('tenant-b')
PART = 5 << 20                      # S3's smallest part
MAX_PARTS = 10000                   # S3's most parts
MB = 1 << 20
# as long as an STS/Lambda session token (base64, so '+' and '/' are %-encoded in URLs)
SESSION_TOKEN = base64.b64encode(bytes(range(256)) * 3).decode()[:800]
TIME_FORMAT = '%Y-%m-%dT%H:%M:%S.%f'


def md5(data):
    return hashlib.md5(data).hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# -- helpers ----------------------------------------------------------------------------
def active_image(client, data, identity=A, **fields):
    response, image = create_image(client, identity, data=data, **fields)
    assert response.status_code == 201, response.body
    assert image['status'] == 'active'
    return image


def show_upload(client, image_id, identity=A):
    return client.http.get(upload_path(image_id), headers=identity)


def abort(client, image_id, identity=A):
    return client.http.delete(upload_path(image_id), headers=identity)


def image_meta_of(client, image_id):
    """Only the x-image-meta-* headers (others carry a request id and a date)."""
    return {name: value for name, value in admin_view(client, image_id).items()
            if name.startswith('x-image-meta-')}


def download(client, image_id, identity=A):
    return client.http.get('/v1/images/%s' % image_id, headers=dict(identity, Accept='*/*'))


def query_of(url):
    return {name: values[0] for name, values in
            urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).items()}


def put_single(world, image_id, data):
    world.s3.put_object(Bucket=world.bucket, Key='uploads/%s' % image_id, Body=data,
                        ContentType='application/octet-stream')


def finalize(image_id):
    from chalicelib.events import finalize_bucket_event
    return finalize_bucket_event(s3_event('uploads/%s' % image_id))


def later(timestamp, seconds):
    moment = datetime.datetime.strptime(timestamp, TIME_FORMAT)
    return (moment + datetime.timedelta(seconds=seconds)).strftime(TIME_FORMAT)


# -- reservations: single PUT -----------------------------------------------------------
def test_reserve_single_put(client, world):
    image = queued_image(client)
    upload = reservation(client, image['id'], size=1000)
    assert upload['image_id'] == image['id']
    assert upload['mode'] == 'single'
    assert upload['size'] == 1000
    assert upload['method'] == 'PUT'
    assert upload['headers'] == {'Content-Type': 'application/octet-stream',
                                 'Content-Length': '1000'}
    assert 'parts' not in upload and upload.get('upload_id') is None
    assert upload['expires_at'] > upload['urls_expire_at']  # 24 h against 15 min
    meta = admin_view(client, image['id'])
    assert meta['x-image-meta-status'] == 'queued'
    assert meta['x-image-meta-size'] == '1000'
    assert world.keys() == [] and world.multipart_uploads() == []


def test_single_put_url_is_a_sigv4_put_bound_to_key_type_and_length(client):
    image = queued_image(client)
    upload = reservation(client, image['id'], size=1234)
    url = urllib.parse.urlsplit(upload['url'])
    query = query_of(upload['url'])
    assert url.scheme == 'https'
    assert url.path == '/%s/uploads/%s' % (settings().image_bucket, image['id'])
    assert query['X-Amz-Algorithm'] == 'AWS4-HMAC-SHA256'
    assert query['X-Amz-Expires'] == str(settings().presign_expiry) == '900'
    assert query['X-Amz-Credential'].endswith('/us-east-1/s3/aws4_request')
    assert {'content-length', 'content-type', 'host'} <= set(
        query['X-Amz-SignedHeaders'].split(';'))
    assert 'X-Amz-Signature' in query and 'X-Amz-Date' in query


def test_presign_expiry_setting_is_used(client, settings_override):
    settings_override(presign_expiry=123)
    image = queued_image(client)
    upload = reservation(client, image['id'], size=10)
    assert query_of(upload['url'])['X-Amz-Expires'] == '123'


# -- reservations: multipart ---------------------------------------------------------------
def test_reserve_multipart_one_presigned_url_per_part(client, world):
    image = queued_image(client)
    size = 2 * PART + 100
    upload = reservation(client, image['id'], size=size, part_size=PART)
    assert upload['mode'] == 'multipart'
    assert upload['size'] == size and upload['part_size'] == PART
    assert world.multipart_uploads() == [('uploads/%s' % image['id'], upload['upload_id'])]
    parts = upload['parts']
    assert [p['part_number'] for p in parts] == [1, 2, 3]
    assert [p['size'] for p in parts] == [PART, PART, 100]
    assert upload['part_count'] == 3
    assert 'next_part_marker' not in upload and 'next' not in upload  # one page
    for part in parts:
        assert part['uploaded'] is False and part['method'] == 'PUT'
        url = urllib.parse.urlsplit(part['url'])
        query = query_of(part['url'])
        assert url.path == '/%s/uploads/%s' % (settings().image_bucket, image['id'])
        assert query['partNumber'] == str(part['part_number'])
        assert query['uploadId'] == upload['upload_id']
        assert query['X-Amz-Algorithm'] == 'AWS4-HMAC-SHA256'
        assert query['X-Amz-Expires'] == str(settings().presign_expiry)
        assert {'content-length', 'host'} <= set(query['X-Amz-SignedHeaders'].split(';'))


def test_small_part_size_is_raised_to_the_s3_minimum(client):
    image = queued_image(client)
    upload = reservation(client, image['id'], size=PART + 1, part_size=1024)
    assert upload['mode'] == 'multipart' and upload['part_size'] == PART
    assert [p['size'] for p in upload['parts']] == [PART, 1]


def test_size_above_the_default_part_size_is_multipart(client, settings_override):
    settings_override(upload_part_size=PART)
    image = queued_image(client)
    upload = reservation(client, image['id'], size=PART + 7)
    assert upload['mode'] == 'multipart' and upload['part_size'] == PART
    assert len(upload['parts']) == 2
    other = queued_image(client)
    assert reservation(client, other['id'], size=PART)['mode'] == 'single'


# -- paging the parts of a reservation -------------------------------------------------------
def page_path(image_id, part_marker):
    return '%s?part_marker=%s' % (upload_path(image_id), part_marker)


def session_token_client():
    """An S3 client signing with a session token, as in Lambda: every presigned URL
    then carries X-Amz-Security-Token."""
    import boto3
    from botocore.config import Config
    return boto3.client('s3', region_name=settings().region, aws_access_key_id='ASIATESTING',
                        aws_secret_access_key='testing', aws_session_token=SESSION_TOKEN,
                        config=Config(signature_version='s3v4',
                                      s3={'addressing_style': 'path'}))


def walk_pages(client, first):
    """Follow the `next` links from the answer `first`; -> (answers, their byte sizes)."""
    answers, sizes, response = [], [], first
    while True:
        sizes.append(len(response.body))
        answers.append(body_json(response)['upload'])
        if 'next' not in answers[-1]:
            return answers, sizes
        response = client.http.get(answers[-1]['next'], headers=A)
        assert response.status_code == 200, response.body


@pytest.mark.slow
def test_a_10000_part_reservation_is_answered_in_pages_under_1_mb(client, monkeypatch):
    """10,000 URLs with a session token each are ~13 MB, past Lambda's 6 MB response
    limit: every answer holds one page of them."""
    from chalicelib.api.common import upload_service
    monkeypatch.setattr(upload_service().blobs, '_client', session_token_client())
    image = queued_image(client)
    response = reserve(client, image['id'], body={'size': MAX_PARTS * PART, 'part_size': PART})
    assert response.status_code == 201, response.body

    answers, sizes = walk_pages(client, response)

    page = settings().upload_parts_page
    assert page == 250 and len(answers) == MAX_PARTS // page
    first = answers[0]
    assert (first['part_count'], first['next_part_marker']) == (MAX_PARTS, page)
    assert first['next'] == '/v1/images/%s/upload?part_marker=%d' % (image['id'], page)
    assert [len(answer['parts']) for answer in answers] == [page] * len(answers)
    numbers = [p['part_number'] for answer in answers for p in answer['parts']]
    assert numbers == list(range(1, MAX_PARTS + 1))   # each part once, in order
    assert all(query_of(p['url'])['X-Amz-Security-Token'] == SESSION_TOKEN
               for answer in answers for p in answer['parts'])
    assert {answer['upload_id'] for answer in answers} == {first['upload_id']}
    assert max(sizes) < MB            # bytes of every answer, with a token in each URL
    assert sum(sizes) > 6 * MB        # what a single answer would have been


def test_pages_show_the_parts_already_uploaded(client, world, settings_override):
    settings_override(upload_parts_page=3)
    image = queued_image(client)
    data = b'\x01' * (6 * PART + 100)   # seven parts, the last one small
    upload = reservation(client, image['id'], size=len(data), part_size=PART)
    assert [p['part_number'] for p in upload['parts']] == [1, 2, 3]
    assert not any(p['uploaded'] for p in upload['parts'])
    page_2 = show_upload(client, image['id'])   # parts 4-6, from the first page's marker
    assert body_json(page_2)['upload']['next_part_marker'] == 3
    etags = {}
    for number in (2, 4, 7):
        etags.update(put_parts(world, dict(upload, parts=[
            {'part_number': number, 'size': min(PART, len(data) - (number - 1) * PART)}]),
            data))
    listed = []   # the ListParts requests of this service

    def record(params, **kwargs):
        listed.append(params['UploadId'])
    world.s3.meta.events.register('provide-client-params.s3.ListParts', record)
    try:
        answers, _ = walk_pages(client, show_upload(client, image['id']))
    finally:
        world.s3.meta.events.unregister('provide-client-params.s3.ListParts', record)

    assert [[p['part_number'] for p in answer['parts']] for answer in answers] == \
        [[1, 2, 3], [4, 5, 6], [7]]
    assert [answer.get('next_part_marker') for answer in answers] == [3, 6, None]
    assert listed == [upload['upload_id']] * 3    # one ListParts a page
    parts = {p['part_number']: p for answer in answers for p in answer['parts']}
    assert {n for n, p in parts.items() if p['uploaded']} == {2, 4, 7}
    assert {n: parts[n]['etag'] for n in etags} == etags
    assert all('url' not in parts[n] for n in etags)
    assert all(query_of(parts[n]['url'])['partNumber'] == str(n) for n in (1, 3, 5, 6))
    response = client.http.get(page_path(image['id'], 5), headers=A)   # any marker
    assert [p['part_number'] for p in body_json(response)['upload']['parts']] == [6, 7]


@pytest.mark.parametrize('marker', ['abc', '-1', '1.5', '', ' 1', '+1', '1e3', '0x1',
                                    '%D9%A3', '3', '03', '10000', '9' * 50, '9' * 5000])
def test_bad_part_markers_are_400(client, world, settings_override, marker):
    settings_override(upload_parts_page=2)
    image = queued_image(client)
    upload = reservation(client, image['id'], size=2 * PART + 1, part_size=PART)
    assert upload['part_count'] == 3

    response = client.http.get(page_path(image['id'], marker), headers=A)

    assert response.status_code == 400, (marker, response.status_code, response.body)
    assert 'part_marker' in error_text(response)
    assert pending_upload_of(image['id'])['upload_id'] == upload['upload_id']  # kept
    assert world.multipart_uploads() == [('uploads/%s' % image['id'], upload['upload_id'])]


def test_part_marker_error_says_which_parts_there_are(client):
    image = queued_image(client)
    reservation(client, image['id'], size=2 * PART + 1, part_size=PART)
    response = client.http.get(page_path(image['id'], 3), headers=dict(A, Accept=JSON[
        'Content-Type']))
    assert response.status_code == 400
    assert 'Invalid part_marker 3: the upload of image %s has parts 1 to 3' % image['id'] \
        in body_json(response)['message']
    assert client.http.get(page_path(image['id'], 2), headers=A).status_code == 200
    assert client.http.get(page_path(image['id'], '00'), headers=A).status_code == 200


def test_a_single_put_reservation_has_one_page(client):
    image = queued_image(client)
    upload = reservation(client, image['id'], size=1000)
    assert 'next' not in upload and 'next_part_marker' not in upload
    response = client.http.get(page_path(image['id'], 0), headers=A)
    assert response.status_code == 200 and body_json(response)['upload']['mode'] == 'single'
    response = client.http.get(page_path(image['id'], 1), headers=A)
    assert response.status_code == 400, response.body
    assert 'has parts 1 to 1' in error_text(response)


# -- reservation rules ----------------------------------------------------------------------
def test_reservation_only_for_queued_images(client):
    active = active_image(client, b'some bytes')
    response = reserve(client, active['id'], body={'size': 10})
    assert response.status_code == 409, response.body

    killed = queued_image(client)
    response, _ = update_image(client, A, killed['id'], data=b'x' * 10,
                               headers={'Content-Type': 'text/plain'})
    assert response.status_code == 400
    assert status_of(client, killed['id']) == 'killed'
    response = reserve(client, killed['id'], body={'size': 10})
    assert response.status_code == 409, response.body

    saving = queued_image(client)
    reservation(client, saving['id'], size=PART + 1, part_size=PART)
    from chalicelib.storage.catalog import ImageCatalog
    ImageCatalog().update(saving['id'], lambda image: dict(image, status='saving'))
    assert reserve(client, saving['id'], body={'size': 10}).status_code == 409


def test_reservation_of_a_deleted_image(client):
    image = queued_image(client)
    assert delete_image(client, A, image['id']).status_code == 200
    assert reserve(client, image['id'], body={'size': 10}).status_code == 404
    assert reserve(client, image['id'], ADMIN, {'size': 10}).status_code == 403


def test_second_reservation_is_conflict_and_the_first_is_kept(client, world):
    image = queued_image(client)
    first = reservation(client, image['id'], size=PART + 1, part_size=PART)
    response = reserve(client, image['id'], body={'size': PART + 1, 'part_size': PART})
    assert response.status_code == 409, response.body
    response = reserve(client, image['id'], body={'size': 10})
    assert response.status_code == 409, response.body
    # the loser's multipart upload is aborted; the first one stays usable
    assert world.multipart_uploads() == [('uploads/%s' % image['id'], first['upload_id'])]
    shown = show_upload(client, image['id'])
    assert shown.status_code == 200
    assert body_json(shown)['upload']['upload_id'] == first['upload_id']


def test_inline_upload_while_a_reservation_is_pending_is_conflict(client, world):
    image = queued_image(client)
    upload = reservation(client, image['id'], size=PART + 1, part_size=PART)
    response, _ = update_image(client, A, image['id'], data=b'inline bytes')
    assert response.status_code == 409, response.body
    # nothing changed: still queued, the reservation intact, no inline object
    assert status_of(client, image['id']) == 'queued'
    assert world.object('images/%s' % image['id']) is None
    shown = show_upload(client, image['id'])
    assert shown.status_code == 200
    assert body_json(shown)['upload']['upload_id'] == upload['upload_id']


@pytest.mark.parametrize('case', ['wrong content type', 'above the inline limit',
                                  'declared size differs'])
def test_any_inline_upload_while_a_reservation_is_pending_is_conflict(
        client, world, settings_override, case):
    """Whatever is wrong with the inline body, an upload is in progress: 409, and the
    reservation is not destroyed (seen: the image is killed with its reservation and
    multipart upload left behind)."""
    settings_override(inline_upload_limit=1000)
    image = queued_image(client)
    upload = reservation(client, image['id'], size=PART + 1, part_size=PART)
    headers, data, fields = None, b'x' * 10, {}
    if case == 'wrong content type':
        headers = {'Content-Type': 'text/plain'}
    elif case == 'above the inline limit':
        data = b'x' * 2000
        headers = {'Content-Type': 'application/octet-stream', 'Content-Length': '2000'}
    else:
        fields = {'size': 11}
    response, _ = update_image(client, A, image['id'], data=data, headers=headers, **fields)
    assert response.status_code == 409, (response.status_code, response.body)
    assert status_of(client, image['id']) == 'queued'
    assert pending_upload_of(image['id'])['upload_id'] == upload['upload_id']
    assert world.multipart_uploads() == [('uploads/%s' % image['id'], upload['upload_id'])]


def test_non_owner_of_a_private_image_gets_404(client):
    image = queued_image(client)
    assert reserve(client, image['id'], B, {'size': 10}).status_code == 404
    reservation(client, image['id'], size=PART + 1, part_size=PART)
    assert show_upload(client, image['id'], B).status_code == 404
    assert complete(client, image['id'], B).status_code == 404
    assert abort(client, image['id'], B).status_code == 404
    assert show_upload(client, image['id']).status_code == 200  # the owner still can


def test_non_owner_who_sees_the_image_gets_403(client):
    public = queued_image(client, ADMIN, is_public='True', owner='tenant-a')
    assert reserve(client, public['id'], B, {'size': 10}).status_code == 403
    assert reserve(client, public['id'], ADMIN, {'size': 10}).status_code == 201  # admin may

    shared = queued_image(client)
    response = client.http.put('/v1/images/%s/members/tenant-b' % shared['id'], headers=A)
    assert response.status_code == 204, response.body
    assert reserve(client, shared['id'], B, {'size': 10}).status_code == 403
    reservation(client, shared['id'], size=10)
    assert show_upload(client, shared['id'], B).status_code == 403
    assert complete(client, shared['id'], B).status_code == 403
    assert abort(client, shared['id'], B).status_code == 403
    assert show_upload(client, shared['id']).status_code == 200


@pytest.mark.parametrize('body', [{}, {'size': None}, {'size': 0}, {'size': -5},
                                  {'size': '10'}, {'size': 1.5}, {'size': True},
                                  {'size': [10]}])
def test_size_must_be_a_positive_integer(client, body):
    image = queued_image(client)
    response = reserve(client, image['id'], body=body)
    assert response.status_code == 400, (body, response.body)
    assert 'size' in error_text(response)
    assert pending_upload_of(image['id']) is None


@pytest.mark.parametrize('part_size', [0, -1, '5242880', 1.5, False])
def test_part_size_must_be_a_positive_integer(client, world, part_size):
    image = queued_image(client)
    response = reserve(client, image['id'], body={'size': PART + 1, 'part_size': part_size})
    assert response.status_code == 400, (part_size, response.status_code, response.body)
    assert world.multipart_uploads() == []


def test_size_above_the_cap_is_400(client, settings_override):
    settings_override(image_size_cap=100)
    image = queued_image(client)
    response = reserve(client, image['id'], body={'size': 101})
    assert response.status_code == 400, response.body
    assert 'larger than 100 bytes' in error_text(response)
    assert reservation(client, image['id'], size=100)['size'] == 100


def test_storage_quota_is_413(client, settings_override):
    settings_override(user_storage_quota=100)
    image = queued_image(client)
    response = reserve(client, image['id'], body={'size': 101})
    assert response.status_code == 413, response.body
    assert 'quota' in error_text(response)
    active_image(client, b'x' * 60)
    response = reserve(client, image['id'], body={'size': 41})
    assert response.status_code == 413, response.body
    assert '40 bytes remaining' in error_text(response)
    assert reservation(client, image['id'], size=40)['size'] == 40


def test_formats_are_needed_before_a_reservation(client):
    for missing in ('x-image-meta-disk_format', 'x-image-meta-container_format'):
        headers = dict(A, **{'x-image-meta-name': 'no formats',
                             'x-image-meta-disk_format': 'raw',
                             'x-image-meta-container_format': 'bare'})
        del headers[missing]
        response = client.http.post('/v1/images', headers=headers, body=b'')
        assert response.status_code == 201, response.body
        image_id = body_json(response)['image']['id']
        response = reserve(client, image_id, body={'size': 10})
        assert response.status_code == 400, response.body
        assert 'format' in error_text(response)
        assert status_of(client, image_id) == 'queued'


@pytest.mark.parametrize('raw', [b'{not json', b'[1, 2]', b'"size"', b'', b'\xff\xfe'])
def test_malformed_bodies_are_400(client, raw):
    image = queued_image(client)
    response = reserve(client, image['id'], raw=raw)
    assert response.status_code == 400, (raw, response.status_code, response.body)


def test_checksum_longer_than_32_characters_is_400(client):
    image = queued_image(client)
    response = reserve(client, image['id'], body={'size': 10, 'checksum': 'a' * 33})
    assert response.status_code == 400, response.body


def test_unknown_image_is_404(client):
    missing = '00000000-0000-0000-0000-000000000000'
    assert reserve(client, missing, body={'size': 10}).status_code == 404
    assert show_upload(client, missing).status_code == 404
    assert complete(client, missing).status_code == 404
    assert abort(client, missing).status_code == 404


def test_no_reservation_yet(client):
    image = queued_image(client)
    assert show_upload(client, image['id']).status_code == 409
    assert complete(client, image['id']).status_code == 409
    assert abort(client, image['id']).status_code == 409


def test_other_methods_are_405(client):
    image = queued_image(client)
    response = client.http.put(upload_path(image['id']), headers=A, body=b'')
    assert response.status_code == 405
    response = client.http.get(upload_path(image['id'], '/complete'), headers=A)
    assert response.status_code == 405


# -- multipart, end to end in-process ---------------------------------------------------------
def test_multipart_flow_through_the_bucket_events(client, world):
    data = bytes(range(256)) * (PART // 256) + b'tail bytes' * 100   # 2 parts
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data), part_size=PART)
    assert [p['size'] for p in upload['parts']] == [PART, 1000]

    etags = put_parts(world, upload, data, numbers={1})
    shown = body_json(show_upload(client, image['id']))['upload']
    assert shown['upload_id'] == upload['upload_id']
    first, second = shown['parts']
    assert first['uploaded'] is True and first['part_number'] == 1
    assert first['etag'] == etags[1] and first['size'] == PART
    assert 'url' not in first
    assert second['uploaded'] is False and second['part_number'] == 2
    assert query_of(second['url'])['partNumber'] == '2'

    put_parts(world, upload, data, numbers={2})
    shown = body_json(show_upload(client, image['id']))['upload']
    assert [p['uploaded'] for p in shown['parts']] == [True, True]

    response = complete(client, image['id'])
    assert response.status_code == 202, response.body
    assert body_json(response)['image']['status'] == 'saving'
    assert status_of(client, image['id']) == 'saving'
    assert complete(client, image['id']).status_code == 409

    assert world.pump() >= 1
    meta = admin_view(client, image['id'])
    assert meta['x-image-meta-status'] == 'active'
    assert meta['x-image-meta-size'] == str(len(data))
    assert meta['x-image-meta-checksum'] == md5(data)
    # verified, then moved where no presigned URL can write
    assert world.keys() == ['images/%s' % image['id']]
    assert world.object('images/%s' % image['id']) == data
    assert world.multipart_uploads() == []
    from chalicelib.storage.catalog import ImageCatalog
    stored = ImageCatalog().get(image['id'])
    assert stored['location'] == 'images/%s' % image['id']
    assert stored['sha256'] == sha256(data)
    assert stored['pending_upload'] is None
    # the reservation is over
    assert show_upload(client, image['id']).status_code == 409
    assert complete(client, image['id']).status_code == 409
    assert abort(client, image['id']).status_code == 409
    # larger than the inline download limit (4 MiB): a redirect to the image's object
    response = download(client, image['id'])
    assert response.status_code == 302
    location = get_header(response, 'Location')
    assert urllib.parse.urlsplit(location).path == '/%s/images/%s' % (
        settings().image_bucket, image['id'])
    assert requests.get(location).content == data   # moto intercepts `requests` in-process


def test_multipart_complete_with_the_parts_listed(client, world):
    data = b'a' * PART + b'b' * 10
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data), part_size=PART)
    etags = put_parts(world, upload, data)
    response = complete(client, image['id'], body={'parts': [
        {'part_number': n, 'etag': etag} for n, etag in sorted(etags.items())]})
    assert response.status_code == 202, response.body
    assert finalize(image['id']) == [('uploads/%s' % image['id'], 'active')]
    meta = admin_view(client, image['id'])
    assert meta['x-image-meta-checksum'] == md5(data)


@pytest.mark.parametrize('body', [{'parts': 'all'}, {'parts': [{'part_number': '1',
                                                               'etag': 'x'}]},
                                  {'parts': [{'part_number': 1}]}, {'parts': [1]}])
def test_complete_with_malformed_parts_is_400(client, body):
    image = queued_image(client)
    reservation(client, image['id'], size=PART + 1, part_size=PART)
    response = complete(client, image['id'], body=body)
    assert response.status_code == 400, response.body
    assert status_of(client, image['id']) == 'queued'


def test_multipart_parts_through_the_presigned_urls(client, world):
    """moto intercepts `requests` in-process, so the part URLs themselves can be used."""
    data = b'p' * PART + b'q' * 3
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data), part_size=PART)
    for part in upload['parts']:
        start = (part['part_number'] - 1) * PART
        response = requests.put(part['url'], data=data[start:start + part['size']])
        assert response.status_code == 200, response.text
    assert complete(client, image['id']).status_code == 202
    world.pump()
    assert admin_view(client, image['id'])['x-image-meta-checksum'] == md5(data)


def test_complete_before_every_part_is_uploaded_is_refused(client, world):
    """The service knows which parts are missing (GET lists them): completing now must
    be refused and the reservation kept for resuming, not accepted and then killed."""
    data = b'a' * PART + b'b' * 10
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data), part_size=PART)
    put_parts(world, upload, data, numbers={1})
    response = complete(client, image['id'])
    world.pump()
    assert response.status_code == 409, (response.status_code, response.body)
    assert status_of(client, image['id']) == 'queued'
    put_parts(world, upload, data, numbers={2})            # resume
    assert complete(client, image['id']).status_code == 202
    world.pump()
    assert admin_view(client, image['id'])['x-image-meta-checksum'] == md5(data)


def test_show_while_saving_is_conflict_multipart(client, world):
    """Once completed, there is no upload in progress to show (seen: 500, from listing
    the parts of a multipart upload S3 already assembled)."""
    data = b'a' * PART + b'b'
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data), part_size=PART)
    put_parts(world, upload, data)
    assert complete(client, image['id']).status_code == 202
    response = show_upload(client, image['id'])
    assert response.status_code == 409, (response.status_code, response.body)
    world.pump()
    assert status_of(client, image['id']) == 'active'


def test_show_while_saving_is_conflict_single(client, world):
    """No fresh PUT URL for an object being finalized."""
    image = queued_image(client)
    reservation(client, image['id'], size=10)
    put_single(world, image['id'], b'0123456789')
    assert complete(client, image['id']).status_code == 202
    response = show_upload(client, image['id'])
    assert response.status_code == 409, (response.status_code, response.body)


# -- single PUT --------------------------------------------------------------------------------
def test_single_put_is_finalized_by_its_bucket_event(client, world):
    data = b'single put bytes ' * 50
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data), checksum=md5(data))
    assert admin_view(client, image['id'])['x-image-meta-checksum'] == md5(data)
    put_single(world, image['id'], data)
    assert world.pump() >= 1   # no complete needed: the object's arrival completes it
    meta = admin_view(client, image['id'])
    assert meta['x-image-meta-status'] == 'active'
    assert meta['x-image-meta-size'] == str(len(data))
    assert meta['x-image-meta-checksum'] == md5(data)
    assert world.keys() == ['images/%s' % image['id']]
    response = download(client, image['id'])
    assert response.status_code == 200 and response.body == data
    assert complete(client, image['id']).status_code == 409
    # deleting the image removes the uploaded object
    assert delete_image(client, A, image['id']).status_code == 200
    assert world.keys() == []


def test_single_put_through_the_presigned_url(client, world):
    data = b'through the URL' * 10
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data))
    response = requests.put(upload['url'], data=data, headers=upload['headers'])
    assert response.status_code == 200, response.text
    world.pump()
    assert admin_view(client, image['id'])['x-image-meta-checksum'] == md5(data)


def test_single_complete_after_the_finalizer_is_conflict(client, world):
    """README: a single PUT completes by itself when the object arrives; exactly one
    of the finalizer and `complete` takes the upload, so a late `complete` is 409."""
    data = b'0123456789'
    image = queued_image(client)
    reservation(client, image['id'], size=len(data))
    put_single(world, image['id'], data)
    world.pump()
    assert status_of(client, image['id']) == 'active'
    response = complete(client, image['id'])
    assert response.status_code == 409, (response.status_code, response.body)
    assert status_of(client, image['id']) == 'active'


def test_single_complete_before_the_put_is_conflict(client, world):
    data = b'0123456789'
    image = queued_image(client)
    reservation(client, image['id'], size=len(data))
    response = complete(client, image['id'])
    assert response.status_code == 409, response.body
    assert status_of(client, image['id']) == 'queued'
    put_single(world, image['id'], data)
    response = complete(client, image['id'])   # before the event is delivered
    assert response.status_code == 202, response.body
    assert body_json(response)['image']['status'] == 'saving'
    assert complete(client, image['id']).status_code == 409
    assert finalize(image['id']) == [('uploads/%s' % image['id'], 'active')]
    meta = admin_view(client, image['id'])
    assert (meta['x-image-meta-status'], meta['x-image-meta-checksum']) == (
        'active', md5(data))


def test_checksum_declared_on_the_image_is_checked(client, world):
    """x-image-meta-checksum given at create binds the data, as for inline uploads."""
    data = b'declared' * 10
    image = queued_image(client, checksum=md5(b'other bytes'))
    reservation(client, image['id'], size=len(data))
    put_single(world, image['id'], data)
    world.pump()
    meta = admin_view(client, image['id'])
    assert meta['x-image-meta-status'] == 'killed', meta
    assert world.keys() == []


def test_checksum_declared_on_the_image_and_matching_data(client, world):
    data = b'declared' * 10
    image = queued_image(client, checksum=md5(data))
    reservation(client, image['id'], size=len(data))
    put_single(world, image['id'], data)
    world.pump()
    assert status_of(client, image['id']) == 'active'


def test_reservation_contradicting_the_declared_checksum_is_400(client):
    image = queued_image(client, checksum=md5(b'one'))
    response = reserve(client, image['id'], body={'size': 10, 'checksum': md5(b'two')})
    assert response.status_code == 400, (response.status_code, response.body)
    assert admin_view(client, image['id'])['x-image-meta-checksum'] == md5(b'one')


def test_reservation_contradicting_the_declared_size_is_400(client):
    image = queued_image(client, size=100)
    response = reserve(client, image['id'], body={'size': 50})
    assert response.status_code == 400, (response.status_code, response.body)
    assert admin_view(client, image['id'])['x-image-meta-size'] == '100'
    assert reservation(client, image['id'], size=100)['size'] == 100


# -- the finalizer's refusals -------------------------------------------------------------------
def test_size_mismatch_kills_and_deletes_the_object(client, world):
    image = queued_image(client)
    reservation(client, image['id'], size=100)
    put_single(world, image['id'], b'x' * 99)
    assert finalize(image['id']) == [('uploads/%s' % image['id'], 'killed')]
    assert status_of(client, image['id']) == 'killed'
    assert world.keys() == []
    assert pending_upload_of(image['id']) is None


def test_multipart_size_mismatch_kills(client, world):
    """Parts uploaded with other sizes than reserved: the assembled object is refused."""
    image = queued_image(client)
    upload = reservation(client, image['id'], size=PART + 10, part_size=PART)
    key = 'uploads/%s' % image['id']
    for number, chunk in ((1, b'a' * PART), (2, b'b' * 11)):
        world.s3.upload_part(Bucket=world.bucket, Key=key, UploadId=upload['upload_id'],
                             PartNumber=number, Body=chunk)
    assert complete(client, image['id']).status_code == 202
    world.pump()
    assert status_of(client, image['id']) == 'killed'
    assert world.keys() == [] and world.multipart_uploads() == []


def test_checksum_mismatch_kills_and_deletes_the_object(client, world):
    data = b'y' * 100
    image = queued_image(client)
    reservation(client, image['id'], size=100, checksum=md5(b'something else'))
    put_single(world, image['id'], data)
    assert finalize(image['id']) == [('uploads/%s' % image['id'], 'killed')]
    assert status_of(client, image['id']) == 'killed'
    assert world.keys() == []


def test_size_cap_at_finalizing_kills(client, world, settings_override):
    image = queued_image(client)
    reservation(client, image['id'], size=100)
    put_single(world, image['id'], b'z' * 100)
    settings_override(image_size_cap=50)
    assert finalize(image['id']) == [('uploads/%s' % image['id'], 'killed')]
    assert status_of(client, image['id']) == 'killed'
    assert world.keys() == []


def test_storage_quota_at_finalizing_kills(client, world, settings_override):
    settings_override(user_storage_quota=1000)
    first, second = queued_image(client), queued_image(client)
    reservation(client, first['id'], size=600)
    reservation(client, second['id'], size=600)   # both fit while nothing is stored
    put_single(world, first['id'], b'1' * 600)
    put_single(world, second['id'], b'2' * 600)
    assert finalize(first['id']) == [('uploads/%s' % first['id'], 'active')]
    assert finalize(second['id']) == [('uploads/%s' % second['id'], 'killed')]
    assert status_of(client, second['id']) == 'killed'
    assert world.keys() == ['images/%s' % first['id']]


def test_object_deleted_before_finalizing_kills(client, world):
    image = queued_image(client)
    reservation(client, image['id'], size=10)
    put_single(world, image['id'], b'0123456789')
    world.s3.delete_object(Bucket=world.bucket, Key='uploads/%s' % image['id'])
    assert finalize(image['id']) == [('uploads/%s' % image['id'], 'killed')]
    assert status_of(client, image['id']) == 'killed'
    assert pending_upload_of(image['id']) is None


def test_duplicate_event_after_active_changes_nothing(client, world):
    data = b'once' * 10
    image = queued_image(client)
    reservation(client, image['id'], size=len(data))
    put_single(world, image['id'], data)
    world.pump()
    before = image_meta_of(client, image['id'])
    assert before['x-image-meta-status'] == 'active'
    assert finalize(image['id']) == [('uploads/%s' % image['id'], None)]
    assert finalize(image['id']) == [('uploads/%s' % image['id'], None)]
    assert image_meta_of(client, image['id']) == before
    assert world.keys() == ['images/%s' % image['id']]
    assert world.object('images/%s' % image['id']) == data
    response = download(client, image['id'])
    assert response.status_code == 200 and response.body == data


def test_a_late_put_to_an_active_image_s_url_cannot_change_it(client, world):
    """The single PUT URL stays valid after activation; what it writes is removed."""
    data = b'first bytes'
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data))
    put_single(world, image['id'], data)
    world.pump()
    before = image_meta_of(client, image['id'])
    assert before['x-image-meta-status'] == 'active'
    response = requests.put(upload['url'], data=b'other bytes', headers=upload['headers'])
    assert response.status_code == 200
    world.pump()
    assert image_meta_of(client, image['id']) == before
    assert world.keys() == ['images/%s' % image['id']]
    assert download(client, image['id']).body == data


def test_a_store_failure_while_promoting_leaves_the_event_for_redelivery(client, world,
                                                                       monkeypatch):
    """A transient S3 error while moving the verified object must not lose the event:
    the finalizer has to fail so that SQS (or Lambda's retry) delivers it again.
    Otherwise the image stays `saving` until the reaper kills it."""
    from chalicelib.domain.ports import BlobStoreError
    from chalicelib.storage.blobs import ImageBlobStore
    data = b'retry me'
    image = queued_image(client)
    reservation(client, image['id'], size=len(data))
    put_single(world, image['id'], data)

    def unavailable(self, *args, **kwargs):
        raise BlobStoreError('the store is unavailable')
    monkeypatch.setattr(ImageBlobStore, 'promote', unavailable)
    world.pump()
    assert status_of(client, image['id']) == 'saving'
    counts = world.sqs.get_queue_attributes(QueueUrl=world.queue_url, AttributeNames=[
        'ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'])['Attributes']
    assert int(counts['ApproximateNumberOfMessages']) + int(
        counts['ApproximateNumberOfMessagesNotVisible']) == 1, counts
    monkeypatch.undo()
    assert finalize(image['id']) == [('uploads/%s' % image['id'], 'active')]  # redelivered


def test_duplicate_event_delivered_while_the_first_is_finalizing(client, world,
                                                                 monkeypatch):
    """S3 delivers events at least once and Lambda may run two deliveries at the same
    time: a duplicate handled between the first one's move to images/<id> and its
    activation must not kill the image (nor delete its verified bytes)."""
    from chalicelib.storage.blobs import ImageBlobStore
    data = b'delivered twice'
    image = queued_image(client)
    reservation(client, image['id'], size=len(data))
    put_single(world, image['id'], data)
    promote = ImageBlobStore.promote
    duplicates = []

    def promote_then_duplicate(self, *args, **kwargs):
        location = promote(self, *args, **kwargs)
        if not duplicates:
            duplicates.append(finalize(image['id']))   # the second delivery, meanwhile
        return location
    monkeypatch.setattr(ImageBlobStore, 'promote', promote_then_duplicate)
    finalize(image['id'])
    assert duplicates, 'the duplicate was not delivered'
    meta = admin_view(client, image['id'])
    assert meta['x-image-meta-status'] == 'active', (duplicates, meta['x-image-meta-status'])
    assert world.object('images/%s' % image['id']) == data


def test_duplicate_event_after_killed_changes_nothing(client, world):
    image = queued_image(client)
    reservation(client, image['id'], size=10)
    put_single(world, image['id'], b'123')
    assert finalize(image['id'])[0][1] == 'killed'
    before = image_meta_of(client, image['id'])
    assert finalize(image['id']) == [('uploads/%s' % image['id'], None)]
    assert image_meta_of(client, image['id']) == before


def test_events_the_finalizer_ignores(client, world):
    from chalicelib.events import finalize_bucket_event
    image = queued_image(client)
    reservation(client, image['id'], size=10)
    put_single(world, image['id'], b'0123456789')
    key = 'uploads/%s' % image['id']
    assert finalize_bucket_event(s3_event(key, name='ObjectRemoved:Delete')) == []
    assert finalize_bucket_event(s3_event('images/%s' % image['id'])) == []
    assert finalize_bucket_event({'Service': 'Amazon S3', 'Event': 's3:TestEvent'}) == []
    assert finalize_bucket_event(s3_event('uploads/no-such-image')) == [
        ('uploads/no-such-image', None)]
    assert status_of(client, image['id']) == 'queued'
    assert finalize_bucket_event(s3_event(key, name='ObjectCreated:Copy')) == [
        (key, 'active')]


# -- abort ---------------------------------------------------------------------------------------
def test_abort_multipart(client, world):
    data = b'a' * PART + b'b'
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data), part_size=PART)
    put_parts(world, upload, data, numbers={1})
    response = abort(client, image['id'])
    assert response.status_code == 204, response.body
    assert status_of(client, image['id']) == 'queued'
    assert world.multipart_uploads() == []
    assert world.keys() == []
    assert pending_upload_of(image['id']) is None
    assert show_upload(client, image['id']).status_code == 409
    assert abort(client, image['id']).status_code == 409
    assert complete(client, image['id']).status_code == 409
    # a new reservation, then an inline upload once nothing is pending, both work
    again = reservation(client, image['id'], size=len(data), part_size=PART)
    assert again['upload_id'] != upload['upload_id']
    assert abort(client, image['id']).status_code == 204
    response, updated = update_image(client, A, image['id'], data=b'inline', size=6)
    assert response.status_code == 200, response.body
    assert updated['status'] == 'active'


def test_abort_single_removes_an_object_already_put(client, world):
    image = queued_image(client)
    reservation(client, image['id'], size=10)
    put_single(world, image['id'], b'0123456789')
    assert abort(client, image['id']).status_code == 204
    assert world.keys() == []
    assert status_of(client, image['id']) == 'queued'
    world.pump()   # the late event of the aborted PUT changes nothing
    assert status_of(client, image['id']) == 'queued'
    put_single(world, image['id'], b'0123456789')   # a PUT after the abort: removed
    world.pump()
    assert status_of(client, image['id']) == 'queued'
    assert world.keys() == []


def test_abort_after_complete_is_conflict(client, world):
    data = b'a' * PART + b'b'
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data), part_size=PART)
    put_parts(world, upload, data)
    assert complete(client, image['id']).status_code == 202
    assert abort(client, image['id']).status_code == 409
    world.pump()
    assert status_of(client, image['id']) == 'active'


# -- the reaper ---------------------------------------------------------------------------------
def test_reaper_kills_expired_reservations_and_aborts_their_uploads(client, world,
                                                                     settings_override):
    from chalicelib.composition import services
    settings_override(upload_timeout=3600)
    expired = queued_image(client)
    upload = reservation(client, expired['id'], size=PART + 1, part_size=PART)
    put_parts(world, upload, b'r' * (PART + 1), numbers={1})
    settings_override(upload_timeout=7200)
    fresh = queued_image(client)
    fresh_upload = reservation(client, fresh['id'], size=PART + 1, part_size=PART)

    reaped = services().finalizer.reap(later(upload['expires_at'], -60))
    assert reaped == []
    assert status_of(client, expired['id']) == 'queued'

    now = later(upload['expires_at'], 1)
    assert now < fresh_upload['expires_at']
    reaped = services().finalizer.reap(now)
    assert reaped == [expired['id']]
    assert status_of(client, expired['id']) == 'killed'
    assert pending_upload_of(expired['id']) is None
    assert ('uploads/%s' % expired['id'], upload['upload_id']) not in world.multipart_uploads()
    assert status_of(client, fresh['id']) == 'queued'
    assert services().finalizer.reap(now) == []


def test_reservation_not_yet_expired_is_untouched(client, world):
    from chalicelib.composition import services
    image = queued_image(client)
    upload = reservation(client, image['id'], size=PART + 1, part_size=PART)
    assert services().finalizer.reap() == []
    assert services().finalizer.reap(later(upload['expires_at'], -1)) == []
    assert status_of(client, image['id']) == 'queued'
    assert world.multipart_uploads() == [('uploads/%s' % image['id'], upload['upload_id'])]
    assert show_upload(client, image['id']).status_code == 200


def test_scheduled_reaper_uses_the_upload_timeout(client, world, settings_override):
    from chalicelib.events import reap_abandoned_uploads
    settings_override(upload_timeout=-10)
    image = queued_image(client)
    reservation(client, image['id'], size=10)
    assert reap_abandoned_uploads() == [image['id']]
    assert status_of(client, image['id']) == 'killed'
    assert reap_abandoned_uploads() == []


def test_a_put_after_the_reservation_was_reaped_is_ignored_and_removed(client, world,
                                                                       settings_override):
    from chalicelib.events import reap_abandoned_uploads
    settings_override(upload_timeout=-10)
    image = queued_image(client)
    reservation(client, image['id'], size=10)
    reap_abandoned_uploads()
    put_single(world, image['id'], b'0123456789')
    world.pump()
    assert status_of(client, image['id']) == 'killed'
    assert world.keys() == []


def test_deleting_an_image_aborts_its_multipart_upload(client, world):
    """The parts must not outlive the image (nothing can complete them any more)."""
    image = queued_image(client)
    upload = reservation(client, image['id'], size=PART + 1, part_size=PART)
    put_parts(world, upload, b'd' * (PART + 1), numbers={1})
    assert delete_image(client, A, image['id']).status_code == 200
    assert world.multipart_uploads() == []


def test_reaper_handles_a_deleted_image_s_reservation_once(client, world):
    """A reservation left on a deleted image is aborted once, then forgotten: the
    reaper must not find it again on every run."""
    from chalicelib.composition import services
    image = queued_image(client)
    upload = reservation(client, image['id'], size=PART + 1, part_size=PART)
    assert delete_image(client, A, image['id']).status_code == 200
    now = later(upload['expires_at'], 1)
    services().finalizer.reap(now)
    assert world.multipart_uploads() == []
    assert status_of(client, image['id']) == 'deleted'
    assert services().finalizer.reap(now) == []


# -- the inline limits -------------------------------------------------------------------------
def test_inline_post_above_the_limit_is_413_naming_the_presigned_route(client, world,
                                                                      settings_override):
    settings_override(inline_upload_limit=1000)
    headers = dict(A, **OCTET, **{'x-image-meta-name': 'big',
                                  'x-image-meta-disk_format': 'raw',
                                  'x-image-meta-container_format': 'bare'})
    response = client.http.post('/v1/images', headers=dict(headers, **{
        'Content-Length': '2000'}), body=b'x' * 2000)
    assert response.status_code == 413, response.body
    message = error_text(response)
    assert '/upload' in message
    image_id = message.split('/v1/images/')[1].split('/upload')[0]
    assert status_of(client, image_id) == 'killed'
    assert world.keys() == []
    # at the limit, inline still works
    response, image = create_image(client, A, data=b'y' * 1000)
    assert response.status_code == 201 and image['status'] == 'active'


def test_inline_put_above_the_limit_is_413(client, world, settings_override):
    settings_override(inline_upload_limit=1000)
    image = queued_image(client)
    response, _ = update_image(client, A, image['id'], data=b'x' * 2000,
                               headers={'Content-Length': '2000'})
    assert response.status_code == 413, response.body
    assert 'POST /v1/images/%s/upload' % image['id'] in error_text(response)
    assert status_of(client, image['id']) == 'killed'
    assert world.keys() == []


def test_inline_body_without_content_length_above_the_limit_is_413(client, world,
                                                                     settings_override):
    """A chunked body (no Content-Length) is cut at the limit while streaming."""
    settings_override(inline_upload_limit=1000)
    image = queued_image(client)
    response = client.http.put('/v1/images/%s' % image['id'], headers=dict(A, **OCTET),
                               body=b'x' * 2000)
    assert response.status_code == 413, response.body
    assert 'POST /v1/images/%s/upload' % image['id'] in error_text(response)
    assert status_of(client, image['id']) == 'killed'
    assert world.keys() == []


# -- the redirected download ---------------------------------------------------------------------
def test_large_image_download_is_a_redirect_to_a_presigned_get(client, settings_override):
    data = bytes(range(100))
    image = active_image(client, data)
    small = active_image(client, b'0123456789')
    settings_override(inline_download_limit=10)
    response = download(client, image['id'])
    assert response.status_code == 302, response.body
    location = get_header(response, 'Location')
    url, query = urllib.parse.urlsplit(location), query_of(location)
    assert url.path == '/%s/images/%s' % (settings().image_bucket, image['id'])
    assert query['X-Amz-Algorithm'] == 'AWS4-HMAC-SHA256'
    assert query['X-Amz-Expires'] == str(settings().presign_expiry)
    assert get_header(response, 'x-image-meta-checksum') == md5(data)
    assert get_header(response, 'x-image-meta-size') == '100'
    assert get_header(response, 'x-image-meta-id') == image['id']
    assert get_header(response, 'x-image-meta-status') == 'active'
    assert not response.body
    assert requests.get(location).content == data
    # HEAD is never redirected; an image at the limit is still answered inline
    meta = client.http.request('HEAD', '/v1/images/%s' % image['id'], headers=A)
    assert meta.status_code == 200
    response = download(client, small['id'])
    assert response.status_code == 200 and response.body == b'0123456789'


def test_redirect_is_not_offered_to_who_may_not_see_the_image(client, settings_override):
    image = active_image(client, bytes(100))
    settings_override(inline_download_limit=10)
    assert download(client, image['id'], B).status_code == 404


# -- races -------------------------------------------------------------------------------------
def _race(count, call):
    from chalicelib.domain.errors import Conflict
    barrier = threading.Barrier(count)
    outcomes = []
    lock = threading.Lock()

    def run():
        barrier.wait()
        try:
            result = ('ok', call())
        except Conflict as error:
            result = ('conflict', str(error))
        except Exception as error:  # noqa: BLE001 - reported by the assertion
            result = ('error', repr(error))
        with lock:
            outcomes.append(result)
    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def owner_context():
    from chalicelib.domain.context import from_identity
    return from_identity('tenant-a', 'user-a', ['member'])


def test_fifty_concurrent_completes_have_exactly_one_winner(client, world, atomic_aws):
    from chalicelib.api.common import upload_service
    data = b'c' * PART + b'd' * 100
    image = queued_image(client)
    upload = reservation(client, image['id'], size=len(data), part_size=PART)
    put_parts(world, upload, data)
    outcomes = _race(50, lambda: upload_service().complete(owner_context(), image['id']))
    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds == ['conflict'] * 49 + ['ok'], [o for o in outcomes if o[0] != 'conflict']
    assert status_of(client, image['id']) == 'saving'
    world.pump()
    meta = admin_view(client, image['id'])
    assert (meta['x-image-meta-status'], meta['x-image-meta-checksum']) == (
        'active', md5(data))
    assert world.keys() == ['images/%s' % image['id']] and not world.multipart_uploads()
    assert world.object('images/%s' % image['id']) == data


def test_fifty_concurrent_reservations_have_exactly_one_winner(client, world, atomic_aws):
    from chalicelib.api.common import upload_service
    image = queued_image(client)
    outcomes = _race(50, lambda: upload_service().reserve(
        owner_context(), image['id'], PART + 1, None, PART))
    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds == ['conflict'] * 49 + ['ok'], [o for o in outcomes if o[0] != 'conflict']
    winner = next(result for kind, result in outcomes if kind == 'ok')
    assert world.multipart_uploads() == [('uploads/%s' % image['id'], winner['upload_id'])]
    assert pending_upload_of(image['id'])['upload_id'] == winner['upload_id']

