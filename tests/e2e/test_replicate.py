"""glance_replicate from the real reference Glance (v1 API) into the local runtime.

The service runs in trusted-headers mode with a 1 MiB inline upload limit, so an image of
a few MiB takes the presigned path. Each test works on tenants of its own (--tenant), so
the tests share the reference and the service without seeing each other's images.
"""
import hashlib
import json
import os
import subprocess
import sys
import uuid

import pytest
import requests

from .reference_glance import reference_glance  # noqa: F401 (a fixture)
from .support import PROJECT_DIR, LocalRuntime

INLINE_LIMIT = 1 << 20
PART_SIZE = 5 << 20
ADMIN = {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': 'replicator', 'X-Roles': 'admin'}
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope='module')
def service():
    runtime = LocalRuntime('trusted-headers', {'GLANCE_INLINE_UPLOAD_LIMIT': str(INLINE_LIMIT)})
    try:
        yield runtime.start()
    finally:
        runtime.stop()
        os.unlink(runtime.log.name)


def tenants(count):
    tag = uuid.uuid4().hex[:8]
    return ['t%d-%s' % (number, tag) for number in range(1, count + 1)]


def seed(url, owner, name, data=None, public=False, properties=None, members=(),
         checksum=None):
    """An image on the reference, made by an admin for `owner`; -> its id."""
    headers = dict(ADMIN, **{'x-image-meta-name': name, 'x-image-meta-owner': owner,
                             'x-image-meta-disk_format': 'raw',
                             'x-image-meta-container_format': 'bare',
                             'x-image-meta-is_public': str(public).lower()})
    headers.update({'x-image-meta-property-%s' % k: v for k, v in (properties or {}).items()})
    if checksum:
        headers['x-image-meta-checksum'] = checksum
    if data is not None:
        headers['Content-Type'] = 'application/octet-stream'
    response = requests.post(url + '/v1/images', headers=headers, data=data, timeout=60)
    if checksum:  # a wrong checksum: the reference kills the image (and says 400)
        assert response.status_code == 400, response.text
        return None
    assert response.status_code == 201, response.text
    image_id = response.json()['image']['id']
    for member in members:
        answer = requests.put('%s/v1/images/%s/members/%s' % (url, image_id, member),
                              headers=ADMIN, timeout=30)
        assert answer.status_code == 204, answer.text
    return image_id


def replicate(command, source, *args, target=None, tenants=()):
    argv = [sys.executable, '-m', 'glance_replicate', command, source]
    if target:
        argv += [target, '--target-trusted-tenant', 'replicator']
    argv += ['--source-api-version', '1', '--source-trusted-tenant', 'replicator']
    for tenant in tenants:
        argv += ['--tenant', tenant]
    completed = subprocess.run(argv + list(args), cwd=PROJECT_DIR, capture_output=True,
                               text=True, timeout=240)
    return completed


def replicate_json(command, source, *args, expect=0, **kwargs):
    completed = replicate(command, source, '--json', *args, **kwargs)
    assert completed.returncode == expect, (completed.stdout[-3000:], completed.stderr[-3000:])
    return json.loads(completed.stdout)


def copy(source, target, names, *args, expect=0):
    return replicate_json('copy', source, '--inline-limit', str(INLINE_LIMIT), '--part-size',
                          str(PART_SIZE), '--parallel', '4', *args, expect=expect,
                          target=target, tenants=names)


def head(url, image_id):
    response = requests.head('%s/v1/images/%s' % (url, image_id), headers=ADMIN, timeout=30)
    assert response.status_code == 200
    meta = {k.lower()[len('x-image-meta-'):]: v for k, v in response.headers.items()
            if k.lower().startswith('x-image-meta-')}
    return meta


def members(url, image_id):
    response = requests.get('%s/v1/images/%s/members' % (url, image_id), headers=ADMIN,
                            timeout=30)
    assert response.status_code == 200, response.text
    return sorted(m['member_id'] for m in response.json()['members'])


def test_copy_compare_and_delta(reference_glance, service):  # noqa: F811
    source = reference_glance.url
    names = tenants(3)
    shared, public, small = [], [], []
    for number in range(48):
        owner = names[number % 3]
        sharing = [names[(number + 1) % 3]] if number % 4 == 0 else []
        if number % 8 == 0:
            sharing.append('outsider')
        image_id = seed(source, owner, 'img-%02d' % number, os.urandom(100 + 37 * number),
                        public=number % 5 == 0, members=sharing,
                        properties={'os_distro': 'cirros', 'index': str(number)})
        small.append(image_id)
        (shared if sharing else []).append(image_id)
        (public if number % 5 == 0 else []).append(image_id)
    big_data = os.urandom(3 << 20)
    big = seed(source, names[0], 'big', big_data, members=[names[2]],
               properties={'hw_disk_bus': 'virtio'})
    queued = seed(source, names[1], 'queued')
    # killed: a v1 source does not list it (the registry hides killed images), so
    # it is neither counted nor copied
    seed(source, names[2], 'killed', b'bytes', checksum='0' * 32)

    size = replicate_json('size', source, tenants=names)
    assert size['total'] == {'images': 50, 'active': 49, 'queued': 1,
                             'public': len(public), 'bytes': size['total']['bytes'],
                             'members': 12 + 6 + 1}
    assert size['total']['bytes'] == sum(100 + 37 * n for n in range(48)) + len(big_data)
    assert sorted(size['tenants']) == sorted(names)

    first = copy(source, service, names)
    assert sorted(first['created']) == sorted(small + [big, queued])
    assert first['presigned'] == [big]
    assert sorted(first['inline']) == sorted(small)
    assert sorted(first['members_updated']) == sorted(shared + [big])
    assert first['skipped'] == []
    assert first['failed'] == [] and first['stopped'] is False

    copied = head(service, big)
    assert (copied['status'], copied['checksum'], copied['owner'], copied['size']) == (
        'active', hashlib.md5(big_data).hexdigest(), names[0], str(len(big_data)))
    assert copied['property-hw_disk_bus'] == 'virtio'
    assert members(service, big) == [names[2]]
    assert head(service, public[1])['is_public'] == 'True'
    assert head(service, queued)['status'] == 'queued'
    for image_id in shared:
        assert members(service, image_id) == members(source, image_id)
    assert requests.get(service + '/v1/images/detail', headers=ADMIN, timeout=30, params={
        'is_public': 'none', 'name': 'killed'}).json()['images'] == []

    compare = replicate_json('compare', source, target=service, tenants=names)
    assert compare['in_sync'] is True and compare['differences'] == []

    again = replicate('copy', source, '--inline-limit', str(INLINE_LIMIT), target=service,
                      tenants=names)
    assert again.returncode == 0, again.stderr
    assert 'in sync: the target already matched the source, nothing copied' in again.stdout
    assert '  unchanged          50\n' in again.stdout

    # the source changes: a new image, a changed property, a removed member
    new = seed(source, names[0], 'new', b'new image bytes', properties={'a': 'b'})
    changed = small[1]
    assert requests.put('%s/v1/images/%s' % (source, changed), timeout=30, headers=dict(
        ADMIN, **{'x-image-meta-property-os_distro': 'ubuntu',
                  'x-glance-registry-purge-props': 'false'})).status_code == 200
    unshared = shared[0]
    removed = members(source, unshared)[0]
    assert requests.delete('%s/v1/images/%s/members/%s' % (source, unshared, removed),
                           headers=ADMIN, timeout=30).status_code == 204

    assert [d['id'] for d in replicate_json('compare', source, expect=1, target=service,
                                            tenants=names)['differences']] \
        == sorted([new, changed, unshared])
    delta = copy(source, service, names)
    assert (delta['created'], delta['metadata_updated'], delta['members_updated'],
            delta['bytes_copied']) == ([new], [changed], [unshared], [new])
    assert delta['unchanged'] == 48 and delta['failed'] == []
    assert head(service, changed)['property-os_distro'] == 'ubuntu'
    assert removed not in members(service, unshared)
    assert replicate_json('compare', source, target=service, tenants=names)['in_sync']


def test_an_interrupted_copy_resumes(reference_glance, service):  # noqa: F811
    source = reference_glance.url
    names = tenants(1)
    data = os.urandom(12 << 20)  # three parts of 5 MiB
    big = seed(source, names[0], 'three-parts', data)
    small = [seed(source, names[0], 'small-%d' % n, os.urandom(1000)) for n in range(3)]

    stopped = copy(source, service, names, '--stop-after-parts', '1', expect=3)
    assert stopped['stopped'] is True and stopped['parts_uploaded'] == 1
    assert head(service, big)['status'] == 'queued'
    upload = requests.get('%s/v1/images/%s/upload' % (service, big), headers=ADMIN,
                          timeout=30).json()['upload']
    assert [part['uploaded'] for part in upload['parts']] == [True, False, False]

    resumed = copy(source, service, names)
    assert resumed['resumed'] == [big]
    assert (resumed['parts_skipped'], resumed['parts_uploaded']) == (1, 2)
    assert sorted(stopped['created'] + resumed['created']) == sorted(small + [big])
    copied = head(service, big)
    assert (copied['status'], copied['checksum']) == ('active', hashlib.md5(data).hexdigest())
    assert replicate_json('compare', source, target=service, tenants=names)['in_sync']


def test_bytes_that_do_not_match_the_source_checksum_are_not_imported(
        reference_glance, service):  # noqa: F811
    source = reference_glance.url
    names = tenants(1)
    good = seed(source, names[0], 'good', b'good bytes')
    corrupt = {seed(source, names[0], 'corrupt-inline', os.urandom(4096)): 4096,
               seed(source, names[0], 'corrupt-presigned', os.urandom(3 << 20)): 3 << 20}
    for image_id, length in corrupt.items():  # same size, other bytes
        with open(reference_glance.image_file(image_id), 'wb') as image_file:
            image_file.write(b'x' * length)

    result = copy(source, service, names, expect=1)
    assert sorted(item['id'] for item in result['failed']) == sorted(corrupt)
    for item in result['failed']:
        assert 'the source records' in item['error'] and 'killed' in item['error']
    for image_id in corrupt:
        assert head(service, image_id)['status'] == 'killed'
    assert head(service, good)['status'] == 'active'

    compare = replicate_json('compare', source, expect=1, target=service, tenants=names)
    assert {(d['id'], d['field'], d['target']) for d in compare['differences']
            if d['field'] == 'status'} == {(image_id, 'status', 'killed') for image_id in corrupt}
