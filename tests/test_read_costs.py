"""DynamoDB round trips and items read per request: counted, never timed."""
import pytest

from bench.catalog import fill_catalog
from bench.counting import counting_aws_calls
from tests.helpers import body_json, create_image, head, tenant

A = tenant('tenant-a')


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
