"""Chained finalization: an upload larger than one step is hashed and copied over
many invocations (GLANCE_STEP_BYTES forces 1 MiB steps here), each step handing on
the hash state and the multipart copy; duplicates, failures between steps and a
lost hand-on leave the result of one pass. Run with -s to see the steps."""
import hashlib
import os
import subprocess

import pytest

from chalicelib.domain.ports import BlobStoreError
from chalicelib.events import finalize_bucket_event
from chalicelib.storage.blobs import ImageBlobStore
from tests.helpers import (complete, pending_upload_of, put_parts, queued_image, record_of,
                           reservation, s3_event, status_of, tenant)
from tests.reliability.invariants import violations

pytestmark = [pytest.mark.slow, pytest.mark.shared_world,
              pytest.mark.usefixtures('empty_world')]

A = tenant('tenant-a')
MIB = 1 << 20
SIZE = 20 * MIB
DATA = os.urandom(SIZE)


@pytest.fixture(autouse=True)
def one_mib_steps(settings_override):
    settings_override(step_bytes=MIB, upload_part_size=5 * MIB)


@pytest.fixture
def steps(monkeypatch):
    """The next-step events the finalizer sends itself, kept to be delivered by hand
    (in AWS: asynchronous invocations of the finalizer)."""
    from chalicelib.composition import services
    sent = []

    def send(job, image_id, url=None, offset=0):
        sent.append({'job': job, 'image_id': image_id, 'url': url, 'offset': offset})
    monkeypatch.setattr(services().background, 'start', send)
    return sent


def uploaded(client, world, data=DATA):
    image = queued_image(client, disk_format='raw', container_format='bare')
    upload = reservation(client, image['id'], size=len(data), part_size=5 * MIB)
    put_parts(world, upload, data)
    assert complete(client, image['id']).status_code == 202
    return image['id']


def test_twenty_steps_with_a_failure_between_two_equal_one_pass(client, world, steps,
                                                                monkeypatch, tmp_path):
    image_id = uploaded(client, world)
    log = []
    assert finalize_bucket_event(s3_event('uploads/' + image_id)) == [
        ('uploads/' + image_id, 'saving')]
    log.append('bucket event: step 0 -> %d' % pending_upload_of(image_id)['finalizing']
               ['offset'])
    activations = 0
    real_read = ImageBlobStore.read_from
    failed = []

    def read_failing_once(store, key, start, etag):
        if start == 7 * MIB and not failed:
            failed.append(start)
            raise BlobStoreError('injected: S3 unavailable')
        return real_read(store, key, start, etag)
    monkeypatch.setattr(ImageBlobStore, 'read_from', read_failing_once)
    while steps:
        event = steps.pop(0)
        try:
            [(_, status)] = finalize_bucket_event(event)
        except BlobStoreError as error:   # Lambda delivers the event again
            log.append('step at %d failed (%s): delivered again' % (event['offset'], error))
            steps.insert(0, event)
            continue
        activations += status == 'active'
        upload = pending_upload_of(image_id)
        log.append('step at %d -> %s' % (event['offset'], upload['finalizing']['offset']
                                         if upload else status))
    print('\n' + '\n'.join(log))
    assert failed == [7 * MIB]
    assert len(log) == 20 + 1   # 20 steps (the first from the bucket event), one failed once
    image = record_of(image_id)
    path = tmp_path / 'image.raw'
    path.write_bytes(DATA)
    print('image checksum %s sha256 %s' % (image['checksum'], image['sha256']))
    for tool in ('md5sum', 'sha256sum'):
        print(subprocess.run([tool, str(path)], capture_output=True, text=True).stdout.strip())
    assert (image['status'], image['size'], image['checksum'], image['sha256']) == (
        'active', SIZE, hashlib.md5(DATA).hexdigest(), hashlib.sha256(DATA).hexdigest())
    assert activations == 1 and image['pending_upload'] is None
    print('objects', world.keys(), 'multipart uploads', world.multipart_uploads())
    assert world.keys() == ['images/' + image_id]
    assert world.object('images/' + image_id) == DATA
    assert world.multipart_uploads() == []
    print('invariants', violations())
    assert violations() == []


def test_a_step_delivered_twice_is_skipped(client, world, steps):
    image_id = uploaded(client, world)
    finalize_bucket_event(s3_event('uploads/' + image_id))
    finalize_bucket_event(s3_event('uploads/' + image_id))   # S3's duplicate: no 2nd chain
    assert [e['offset'] for e in steps] == [MIB]
    first = steps.pop(0)
    finalize_bucket_event(first)
    state = pending_upload_of(image_id)['finalizing']
    assert finalize_bucket_event(first) == [(image_id, 'saving')]   # stale: nothing done
    assert pending_upload_of(image_id)['finalizing'] == state
    assert [e['offset'] for e in steps] == [2 * MIB]
    while steps:
        finalize_bucket_event(steps.pop(0))
    image = record_of(image_id)
    assert (image['status'], image['checksum']) == ('active', hashlib.md5(DATA).hexdigest())
    assert world.keys() == ['images/' + image_id] and violations() == []


def test_a_lost_hand_on_is_set_back_and_the_step_continues(client, world, steps,
                                                           monkeypatch):
    from chalicelib.composition import services
    image_id = uploaded(client, world)
    finalize_bucket_event(s3_event('uploads/' + image_id))
    event = steps.pop(0)

    def unreachable(*args):
        raise RuntimeError('lambda:InvokeFunction failed')
    with monkeypatch.context() as patched:
        patched.setattr(services().background, 'start', unreachable)
        with pytest.raises(RuntimeError):
            finalize_bucket_event(event)
    assert pending_upload_of(image_id)['finalizing']['offset'] == MIB   # set back
    steps.append(event)
    while steps:
        finalize_bucket_event(steps.pop(0))
    image = record_of(image_id)
    assert (image['status'], image['sha256']) == ('active', hashlib.sha256(DATA).hexdigest())
    assert violations() == []


def test_the_last_step_delivered_again_after_assembling_activates_once(client, world, steps,
                                                                     monkeypatch):
    image_id = uploaded(client, world)
    finalize_bucket_event(s3_event('uploads/' + image_id))
    while steps[0]['offset'] < SIZE - MIB:
        finalize_bucket_event(steps.pop(0))
    last = steps.pop(0)
    real_delete = ImageBlobStore.delete

    def delete_then_fail(store, key):
        real_delete(store, key)
        raise BlobStoreError('answer lost')
    with monkeypatch.context() as patched:
        patched.setattr(ImageBlobStore, 'delete', delete_then_fail)
        with pytest.raises(BlobStoreError):
            finalize_bucket_event(last)
    assert status_of(client, image_id) == 'saving'
    assert finalize_bucket_event(last) == [(image_id, 'active')]   # hashed from the copy
    assert finalize_bucket_event(last) == [(image_id, None)]
    image = record_of(image_id)
    assert (image['checksum'], image['sha256']) == (hashlib.md5(DATA).hexdigest(),
                                                    hashlib.sha256(DATA).hexdigest())
    assert world.keys() == ['images/' + image_id] and violations() == []


def test_an_upload_overwritten_between_steps_is_killed_and_cleaned(client, world, steps):
    image_id = uploaded(client, world)
    finalize_bucket_event(s3_event('uploads/' + image_id))
    finalize_bucket_event(steps.pop(0))
    world.s3.put_object(Bucket=world.bucket, Key='uploads/' + image_id, Body=b'x' * SIZE)
    assert finalize_bucket_event(steps.pop(0)) == [(image_id, 'killed')]
    assert steps == [] and world.keys() == [] and world.multipart_uploads() == []
    assert violations() == []


def test_a_checksum_mismatch_found_at_the_end_kills(client, world, steps):
    image = queued_image(client, disk_format='raw', container_format='bare',
                         checksum='0' * 32)
    upload = reservation(client, image['id'], size=SIZE, part_size=5 * MIB)
    put_parts(world, upload, DATA)
    complete(client, image['id'])
    finalize_bucket_event(s3_event('uploads/' + image['id']))
    while steps:
        finalize_bucket_event(steps.pop(0))
    assert status_of(client, image['id']) == 'killed'
    assert world.keys() == [] and world.multipart_uploads() == [] and violations() == []


def test_small_uploads_still_finalize_in_one_step(client, world, steps):
    image_id = uploaded(client, world, data=DATA[:MIB])
    assert finalize_bucket_event(s3_event('uploads/' + image_id)) == [
        ('uploads/' + image_id, 'active')]
    assert steps == [] and world.keys() == ['images/' + image_id]


def test_a_delete_between_steps_aborts_the_copy_too(client, world, steps):
    """Deleting a saving image mid-chain aborts the client's upload and the chain's
    multipart copy to images/<id>: nothing is left for the lifecycle rule."""
    image_id = uploaded(client, world)
    finalize_bucket_event(s3_event('uploads/' + image_id))
    for _ in range(6):   # past the first part: a part of the copy is stored
        finalize_bucket_event(steps.pop(0))
    assert world.multipart_uploads() != []
    assert client.http.delete('/v1/images/%s' % image_id, headers=A).status_code == 200
    assert world.multipart_uploads() == []
    finalize_bucket_event(steps.pop(0))    # the next step finds the chain over
    assert world.keys() == [] and world.multipart_uploads() == [] and violations() == []
