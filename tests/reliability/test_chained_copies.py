"""Chained copies: copy-from and the cache of a large location copy a source larger
than one step (GLANCE_STEP_BYTES forces 1 MiB steps here) over many invocations, each
continuing with a Range request where the previous one stopped, the hash state and
the multipart upload to images/<id> kept in the image record. Failures between steps,
duplicates and deletes leave the result of one pass or nothing. Run with -s to see
the steps."""
import hashlib

import pytest

from chalicelib.domain.ports import BlobStoreError
from chalicelib.events import copy_image
from chalicelib.storage.blobs import ImageBlobStore
from chalicelib.storage.sources import RANGE_IGNORED
from tests.helpers import body_json, record_of, tenant
from tests.reliability.invariants import violations
from tests.sources import COPY_SOURCE_DATA

pytestmark = [pytest.mark.slow, pytest.mark.shared_world,
              pytest.mark.usefixtures('empty_world')]

A = tenant('tenant-a')
MIB = 1 << 20
SIZE = 20 * MIB
DATA = COPY_SOURCE_DATA
assert len(DATA) == SIZE
FORMATS = {'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare'}


@pytest.fixture(autouse=True)
def one_mib_steps(settings_override, source):
    settings_override(step_bytes=MIB, upload_part_size=5 * MIB)
    source['ranges'].clear()
    source['changing'] = DATA


@pytest.fixture
def steps(monkeypatch):
    """The copier invocations the API and each step ask for, kept to be delivered by
    hand (in AWS: asynchronous invocations of the copier)."""
    from chalicelib.composition import services
    sent = []

    def send(job, image_id, url=None, offset=0):
        sent.append({'job': job, 'image_id': image_id, 'url': url, 'offset': offset})
    monkeypatch.setattr(services().background, 'start', send)
    return sent


def created(client, source, path, header='x-glance-api-copy-from'):
    response = client.http.post('/v1/images', headers=dict(A, **FORMATS, **{
        header: source['url'] + path}))
    assert response.status_code == 201, response.body
    return body_json(response)['image']['id']


def deliver(steps, log=None, fail=None):
    """Run each step as the copier (a failing one is delivered again, as Lambda does);
    -> the statuses the steps ended with."""
    statuses = []
    while steps:
        event = steps.pop(0)
        try:
            image = copy_image(event)
        except BlobStoreError as error:
            if log is not None:
                log.append('step at %d failed (%s): delivered again' % (event['offset'], error))
            steps.insert(0, event)
            continue
        image = record_of(event['image_id'])
        chain = image['pending_upload']
        statuses.append(image['status'])
        if log is not None:
            log.append('%s step at %d -> %s' % (event['job'], event['offset'], chain['offset']
                                                 if chain else 'done'))
    return statuses


def fail_once_at_part(monkeypatch, number):
    """The store refuses part `number` once (after the step read its bytes)."""
    real_upload_part, failed = ImageBlobStore.upload_part, []

    def upload_part(store, key, upload_id, part, data):
        if part == number and not failed:
            failed.append(part)
            raise BlobStoreError('injected: S3 unavailable')
        return real_upload_part(store, key, upload_id, part, data)
    monkeypatch.setattr(ImageBlobStore, 'upload_part', upload_part)
    return failed


def test_copy_from_in_twenty_steps_with_a_failure_between_two_equals_one_pass(
        client, world, steps, source, monkeypatch):
    image_id = created(client, source, '/image.raw')
    assert steps == [{'job': 'copy_image', 'image_id': image_id,
                      'url': source['url'] + '/image.raw', 'offset': 0}]
    failed = fail_once_at_part(monkeypatch, 2)
    log = []
    statuses = deliver(steps, log)
    print('\n' + '\n'.join(log))
    assert failed == [2]
    assert len(log) == 20 + 1   # 20 steps of 1 MiB, one of them failed once
    assert statuses == ['saving'] * 19 + ['active']
    # every step after the first continued with a Range request from its part's start
    ranges = [asked for path, asked in source['ranges']]
    assert ranges[0] is None and all(r and r.startswith('bytes=') for r in ranges[1:])
    image = record_of(image_id)
    print('image checksum %s sha256 %s' % (image['checksum'], image['sha256']))
    print('hashlib       %s sha256 %s' % (hashlib.md5(DATA).hexdigest(),
                                          hashlib.sha256(DATA).hexdigest()))
    assert (image['status'], image['size'], image['checksum'], image['sha256']) == (
        'active', SIZE, hashlib.md5(DATA).hexdigest(), hashlib.sha256(DATA).hexdigest())
    assert image['pending_upload'] is None and image['location'] == 'images/' + image_id
    print('objects', world.keys(), 'multipart uploads', world.multipart_uploads())
    assert world.keys() == ['images/' + image_id]
    assert world.object('images/' + image_id) == DATA
    assert world.multipart_uploads() == []
    print('invariants', violations())
    assert violations() == []


def test_a_large_location_is_cached_in_steps_with_a_failure_between_two(
        client, world, steps, source, monkeypatch):
    image_id = created(client, source, '/image.raw', 'x-image-meta-location')
    assert record_of(image_id)['status'] == 'active'   # served from the source meanwhile
    assert [e['job'] for e in steps] == ['cache_image']
    failed = fail_once_at_part(monkeypatch, 3)
    log = []
    statuses = deliver(steps, log)
    print('\n' + '\n'.join(log))
    assert failed == [3] and len(log) == 20 + 1 and statuses == ['active'] * 20
    image = record_of(image_id)
    assert (image['cached_location'], image['source_fault'], image['pending_upload']) == (
        'images/' + image_id, None, None)
    assert world.keys() == ['images/' + image_id]
    stored = world.object('images/' + image_id)
    assert (hashlib.md5(stored).hexdigest(), hashlib.sha256(stored).hexdigest()) == (
        hashlib.md5(DATA).hexdigest(), hashlib.sha256(DATA).hexdigest())
    assert world.multipart_uploads() == [] and violations() == []
    download = client.http.get('/v1/images/%s' % image_id, headers=dict(A, Accept='*/*'))
    assert download.status_code == 302   # redirected to the cached copy


def test_copy_from_a_source_ignoring_range_is_killed_with_nothing_left(
        client, world, steps, source):
    image_id = created(client, source, '/no-range.raw')
    assert deliver(steps) == ['saving', 'killed']   # the first step needs no Range
    assert record_of(image_id)['pending_upload'] is None
    assert world.keys() == [] and world.multipart_uploads() == [] and violations() == []


def test_a_location_ignoring_range_records_why_it_is_not_cached(client, world, steps,
                                                                 source):
    image_id = created(client, source, '/no-range.raw', 'x-image-meta-location')
    assert deliver(steps) == ['active', 'active']
    image = record_of(image_id)
    assert image['source_fault'] == RANGE_IGNORED % (200, 0)
    assert (image['cached_location'], image['pending_upload']) == (None, None)
    assert world.keys() == [] and world.multipart_uploads() == [] and violations() == []
    download = client.http.get('/v1/images/%s' % image_id, headers=dict(A, Accept='*/*'))
    assert download.status_code == 502 and b'does not honour Range' in download.body


@pytest.mark.parametrize('header', ['x-glance-api-copy-from', 'x-image-meta-location'])
def test_delete_between_steps_leaves_nothing(client, world, steps, source, header):
    image_id = created(client, source, '/image.raw', header)
    for _ in range(7):   # past the first part: one is uploaded, one is carried
        copy_image(steps.pop(0))
    chain = record_of(image_id)['pending_upload']
    assert chain['offset'] == 7 * MIB and chain['part_start'] == 5 * MIB
    assert len(world.multipart_uploads()) == 1
    assert client.http.delete('/v1/images/%s' % image_id, headers=A).status_code == 200
    assert world.multipart_uploads() == []   # the delete aborted the copy's upload
    assert deliver(steps) == ['deleted']     # the next step finds the chain over
    assert steps == [] and world.keys() == [] and world.multipart_uploads() == []
    assert violations() == []


def test_a_step_delivered_twice_is_skipped(client, world, steps, source):
    image_id = created(client, source, '/image.raw')
    copy_image(steps.pop(0))
    first = steps.pop(0)
    copy_image(first)
    state = record_of(image_id)['pending_upload']
    copy_image(first)   # stale: nothing done, nothing asked for
    assert record_of(image_id)['pending_upload'] == state
    assert [e['offset'] for e in steps] == [2 * MIB]
    deliver(steps)
    image = record_of(image_id)
    assert (image['status'], image['sha256']) == ('active', hashlib.sha256(DATA).hexdigest())
    assert world.keys() == ['images/' + image_id] and violations() == []


def test_a_source_that_changes_between_steps_is_killed(client, world, steps, source):
    image_id = created(client, source, '/changing.raw')
    for _ in range(3):
        copy_image(steps.pop(0))
    source['changing'] = DATA[:MIB] + b'x' + DATA[MIB + 1:]   # in the carried part
    assert deliver(steps) == ['killed']
    assert world.keys() == [] and world.multipart_uploads() == [] and violations() == []


def test_a_source_longer_than_its_recorded_size_is_killed_in_the_step_that_passes_it(
        client, world, steps, source):
    response = client.http.post('/v1/images', headers=dict(A, **FORMATS, **{
        'x-glance-api-copy-from': source['url'] + '/image.raw',
        'x-image-meta-size': str(SIZE - MIB)}))
    image_id = body_json(response)['image']['id']
    assert deliver(steps) == ['saving'] * 18 + ['killed']   # the 19th reads past 19 MiB
    assert world.keys() == [] and world.multipart_uploads() == [] and violations() == []
    assert record_of(image_id)['pending_upload'] is None


def test_a_lost_hand_on_is_set_back_and_the_step_continues(client, world, steps, source,
                                                           monkeypatch):
    from chalicelib.composition import services
    image_id = created(client, source, '/image.raw')
    copy_image(steps.pop(0))
    event = steps.pop(0)

    def unreachable(*args):
        raise RuntimeError('lambda:InvokeFunction failed')
    with monkeypatch.context() as patched:
        patched.setattr(services().background, 'start', unreachable)
        with pytest.raises(RuntimeError):
            copy_image(event)
    assert record_of(image_id)['pending_upload']['offset'] == MIB   # set back
    steps.append(event)
    deliver(steps)
    image = record_of(image_id)
    assert (image['status'], image['checksum']) == ('active', hashlib.md5(DATA).hexdigest())
    assert violations() == []


def test_the_last_step_delivered_again_after_assembling_activates_once(
        client, world, steps, source, monkeypatch):
    from chalicelib.domain.ports import CatalogUnavailable
    from chalicelib.storage.catalog import ImageCatalog
    image_id = created(client, source, '/image.raw')
    while steps[0]['offset'] < SIZE - MIB:
        copy_image(steps.pop(0))
    last = steps.pop(0)
    real_update = ImageCatalog.update

    def update_lost(catalog, key, change):   # assembled, then the record fails
        raise CatalogUnavailable('injected')
    with monkeypatch.context() as patched:
        patched.setattr(ImageCatalog, 'update', update_lost)
        with pytest.raises(CatalogUnavailable):
            copy_image(last)
    assert real_update and world.multipart_uploads() == []   # it was assembled
    assert record_of(image_id)['status'] == 'saving'
    copy_image(last)
    image = record_of(image_id)
    assert (image['status'], image['sha256']) == ('active', hashlib.sha256(DATA).hexdigest())
    copy_image(last)   # once more: the chain is over
    assert record_of(image_id)['updated_at'] == image['updated_at']
    assert world.keys() == ['images/' + image_id] and violations() == []


def test_small_sources_are_still_copied_in_one_step(client, world, steps, source,
                                                    settings_override):
    settings_override(step_bytes=SIZE)
    image_id = created(client, source, '/image.raw')
    assert deliver(steps) == ['active']
    assert source['ranges'] == [('/image.raw', None)]
    assert world.keys() == ['images/' + image_id] and world.multipart_uploads() == []


def test_the_reaper_ends_a_stalled_location_cache_with_its_reason(client, world, steps,
                                                                   source):
    """A cache whose chain stalled (its next step never came) is reaped: the copy's
    upload aborted, and downloads answer 502 instead of 'still being copied' for ever."""
    from chalicelib.composition import services
    image_id = created(client, source, '/image.raw', 'x-image-meta-location')
    for _ in range(7):
        copy_image(steps.pop(0))
    assert len(world.multipart_uploads()) == 1
    steps.clear()   # the next step is lost
    assert services().finalizer.reap(now='9999-01-01T00:00:00.000000') == [image_id]
    image = record_of(image_id)
    assert image['status'] == 'active' and image['pending_upload'] is None
    assert 'did not finish in time' in image['source_fault']
    download = client.http.get('/v1/images/%s' % image_id, headers=dict(A, Accept='*/*'))
    assert download.status_code == 502
    assert world.multipart_uploads() == [] and world.keys() == [] and violations() == []
