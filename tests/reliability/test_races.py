"""Races through the service layer (many threads, one image), counted not timed."""
import io
import threading

import boto3
import pytest

from chalicelib.api.common import image_service
from chalicelib.config import settings
from chalicelib.domain.context import from_identity
from chalicelib.api.errors import http_error
from chalicelib.domain.errors import Conflict, DomainError
from chalicelib.domain.images import ImageData
from tests.helpers import create_image, tenant

A = tenant('tenant-a')
OWNER = from_identity('tenant-a', 'user-a', ['member'])


def race(count, call):
    """Run call(n) in `count` threads at once; -> outcomes (result or exception)."""
    barrier, outcomes, lock = threading.Barrier(count), [], threading.Lock()

    def run(n):
        barrier.wait()
        try:
            outcome = call(n)
        except Exception as error:  # noqa: BLE001 - the assertions classify them
            outcome = error
        with lock:
            outcomes.append(outcome)
    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def test_fifty_inline_uploads_to_one_queued_image(client, atomic_aws):
    _, image = create_image(client, A)

    def upload(n):
        data = ImageData(io.BytesIO(b'%04d' % n * 256), 'application/octet-stream', 1024)
        return image_service().update(OWNER, image['id'], {}, data)
    outcomes = race(50, upload)
    winners = [o for o in outcomes if isinstance(o, dict)]
    assert len(winners) == 1 and winners[0]['status'] == 'active'
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, dict))
    listed = boto3.client('s3', region_name='us-east-1').list_objects_v2(
        Bucket=settings().image_bucket)
    assert [o['Key'] for o in listed['Contents']] == ['images/%s' % image['id']]
    assert listed['Contents'][0]['Size'] == 1024


@pytest.mark.slow
def test_hundred_property_updates_lose_nothing(client, atomic_aws):
    _, image = create_image(client, A)
    clients = [from_identity('tenant-a', 'user-%d' % n, ['member']) for n in range(5)]

    def set_property(n):
        # Under this much contention a request may run out of retries: it gets a
        # clean 409 and changes nothing, and a client retries it, as this one does.
        for _ in range(20):
            try:
                return image_service().update(clients[n % len(clients)], image['id'],
                                              {'properties': {'p%03d' % n: str(n)}},
                                              purge_props=False)
            except Conflict:
                continue
        raise AssertionError('p%03d never got through' % n)
    outcomes = race(100, set_property)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    final = image_service().show(OWNER, image['id'])
    assert final['properties'] == {'p%03d' % n: str(n) for n in range(100)}


def test_delete_racing_downloads_never_500(client, atomic_aws):
    _, image = create_image(client, A, data=b'z' * 2048)

    def delete_or_download(n):
        if n == 0:
            return image_service().delete(OWNER, image['id'])
        return image_service().download(OWNER, image['id'])
    outcomes = race(20, delete_or_download)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    def refused(e):   # a 4xx of the domain's
        return isinstance(e, DomainError) and 400 <= http_error(e).code < 500
    assert all(refused(e) for e in errors), [
        (type(e), str(e)[:200]) for e in errors if not refused(e)]
