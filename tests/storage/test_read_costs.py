"""DynamoDB round trips and items read per request: counted, never timed."""
import pytest

from bench.catalog import fill_catalog
from bench.counting import counting_aws_calls
from tests.helpers import ADMIN, body_json, create_image, head, list_images, tenant

A = tenant('tenant-a')
B = tenant('tenant-b')


def _default_page_cost(client, identity):
    with counting_aws_calls() as log:
        response = client.http.get('/v1/images/detail', headers=identity)
    assert response.status_code == 200
    return log, body_json(response)['images']


@pytest.mark.parametrize('size', [50, 600])
def test_default_page_reads_do_not_grow_with_the_catalog(client, size):
    fill_catalog(size)
    log, images = _default_page_cost(client, A)
    assert len(images) == 25
    assert 'Scan' not in log.operations()
    # public, own and shared-with-me sources: one query each, about `limit` items each
    assert log.count('dynamodb') <= 3
    assert log.items_read('dynamodb') <= 3 * 26


def _named_page_cost(client, identity, name, **params):
    with counting_aws_calls() as log:
        response = list_images(client, identity, detail=True, name=name, **params)
    assert response.status_code == 200
    return log, [image['id'] for image in body_json(response)['images']]


def test_name_filtered_page_reads_do_not_grow_with_the_catalog(client):
    """`name=` reads the images bearing that name (the name-images index), not the
    caller's visible set: the same requests and items at 50 and at 650 images."""
    _, own = create_image(client, A, name='wanted')
    _, shared = create_image(client, B, name='wanted')
    client.http.put('/v1/images/%s/members/tenant-a' % shared['id'], headers=B)
    create_image(client, B, name='wanted')   # private to tenant-b: read, not listed
    costs = []
    for size in (50, 600):
        fill_catalog(size)
        log, listed = _named_page_cost(client, A, 'wanted')
        assert set(listed) == {own['id'], shared['id']}
        assert 'Scan' not in log.operations()
        costs.append((dict(log.operations('dynamodb')), log.items_read('dynamodb')))
    # one Query (3 namesakes), one BatchGetItem of the 2 memberships to decide (1 found)
    assert costs[0] == costs[1] == ({'Query': 1, 'BatchGetItem': 1}, 4)
    log, listed = _named_page_cost(client, ADMIN, 'image-00001', is_public='none')
    assert len(listed) == 2 and log.operations('dynamodb') == {'Query': 1}
    assert log.items_read('dynamodb') == 2


def test_name_filtered_page_reads_about_limit_namesakes(client):
    made = [create_image(client, A, name='twin')[1]['id'] for _ in range(40)]
    log, listed = _named_page_cost(client, A, 'twin', limit=10)
    assert listed == made[::-1][:10]
    assert log.operations('dynamodb') == {'Query': 1} and log.items_read('dynamodb') <= 11
    log, listed = _named_page_cost(client, A, 'twin', limit=10, marker=listed[-1])
    assert listed == made[::-1][10:20]
    assert log.operations('dynamodb') == {'Query': 1, 'GetItem': 1}  # + the marker
    assert log.items_read('dynamodb') <= 12


def test_changes_since_page_reads_do_not_grow_with_other_tenants_images(client):
    """changes-since reads the caller's sets by update time (public, own, then its
    memberships' images), not every tenant's changes: the same requests and items
    with 10 and with 300 foreign private images."""
    C = tenant('tenant-c')
    _, own = create_image(client, A)
    _, gone = create_image(client, A)
    client.http.delete('/v1/images/%s' % gone['id'], headers=A)
    _, public = create_image(client, ADMIN, is_public='true')
    _, shared = create_image(client, B)
    client.http.put('/v1/images/%s/members/tenant-a' % shared['id'], headers=B)
    expected = {own['id'], gone['id'], public['id'], shared['id']}
    costs, foreign = [], 0
    for size in (10, 300):
        fill_catalog(size - foreign, owners=('tenant-b', 'tenant-c'), public_every=0)
        foreign = size
        with counting_aws_calls() as log:
            response = client.http.get('/v1/images/detail?changes-since=2000-01-01',
                                       headers=A)
        assert response.status_code == 200
        assert {image['id'] for image in body_json(response)['images']} == expected
        costs.append((dict(log.operations('dynamodb')), log.items_read('dynamodb')))
    # public and own partitions of audience-changes, the membership, its image
    assert costs[0] == costs[1] == ({'Query': 3, 'BatchGetItem': 1}, 5)
    # tenant-c's own changes are its 150 images: read, as its set
    with counting_aws_calls() as log:
        listed = list_images(client, C, detail=True, limit=1000,
                             **{'changes-since': '2000-01-01'})
    assert listed.status_code == 200 and len(body_json(listed)['images']) == 151
    assert log.items_read('dynamodb') == 151 and 'Scan' not in log.operations()


def test_head_is_one_read(client):
    _, image = create_image(client, A)
    with counting_aws_calls() as log:
        assert head(client, A, image['id']).status_code == 200
    assert log.operations('dynamodb') == {'GetItem': 1}


def test_no_request_path_scans(client):
    data = b'x' * 1000
    with counting_aws_calls() as log:
        _, image = create_image(client, A, data=data, properties={'k': 'v'})
        _, queued = create_image(client, A)
        client.http.put('/v1/images/%s' % queued['id'],
                        headers=dict(A, **{'Content-Type': 'application/octet-stream'}),
                        body=data)
        client.http.put('/v1/images/%s' % image['id'], headers=dict(A, **{
            'x-image-meta-name': 'renamed'}))
        head(client, A, image['id'])
        client.http.get('/v1/images/%s' % image['id'], headers=dict(A, Accept='*/*'))
        client.http.get('/v1/images?sort_key=name&sort_dir=asc', headers=A)
        client.http.get('/v1/images/detail?changes-since=2000-01-01', headers=A)
        client.http.get('/v1/images/detail?marker=%s' % image['id'], headers=A)
        client.http.delete('/v1/images/%s' % image['id'], headers=A)
    operations = log.operations('dynamodb')
    assert operations['Query'] > 0 and operations['GetItem'] > 0
    assert 'Scan' not in operations
