"""Memberships through chalice.test.Client: the main flow."""
import json

from tests.helpers import ADMIN, body_json, create_image, head, tenant

A, B = tenant('tenant-a'), tenant('tenant-b')


def test_share_list_download_unshare(client):
    _, image = create_image(client, A, data=b'shared bytes')
    path = '/v1/images/%s' % image['id']
    assert head(client, B, image['id']).status_code == 404
    added = client.http.put(path + '/members/tenant-b', headers=dict(
        A, **{'Content-Type': 'application/json'}),
        body=json.dumps({'member': {'can_share': False}}).encode())
    assert added.status_code == 204 and added.body == b''
    assert head(client, B, image['id']).status_code == 200
    assert body_json(client.http.get(path + '/members', headers=A)) == {
        'members': [{'member_id': 'tenant-b', 'can_share': False}]}
    listed = body_json(client.http.get('/v1/images', headers=B))['images']
    assert [i['id'] for i in listed] == [image['id']]
    shared = body_json(client.http.get('/v1/shared-images/tenant-b', headers=B))
    assert shared == {'shared_images': [{'image_id': image['id'], 'can_share': False}]}
    download = client.http.get(path, headers=dict(B, Accept='*/*'))
    assert download.status_code == 200 and download.body == b'shared bytes'
    assert client.http.delete(path + '/members/tenant-b', headers=A).status_code == 204
    assert head(client, B, image['id']).status_code == 404
    assert client.http.delete(path + '/members/tenant-b', headers=A).status_code == 404


def test_deactivate_blocks_download(client):
    _, image = create_image(client, A, data=b'bytes')
    path = '/v1/images/%s' % image['id']
    assert client.http.post(path + '/actions/deactivate', headers=A).status_code == 403
    assert client.http.post(path + '/actions/deactivate', headers=ADMIN).status_code == 204
    blocked = client.http.get(path, headers=dict(A, Accept='*/*'))
    assert blocked.status_code == 403 and b'is deactivated' in blocked.body
    assert client.http.post(path + '/actions/reactivate', headers=ADMIN).status_code == 204
    assert client.http.get(path, headers=dict(A, Accept='*/*')).status_code == 200
