"""How a v2 image becomes the v1 record glance_replicate copies (the reference's v2 API
fails with 500 on Python 3, so this mapping is pinned here without a server)."""
from glance_replicate.endpoints import v2_record
from glance_replicate.sync import not_copyable

V2_IMAGE = {
    'id': '6f3ff6a1-5d1c-4a0c-9d8e-0d3c1e3b7f11', 'name': 'cirros', 'status': 'active',
    'visibility': 'shared', 'protected': True, 'checksum': 'ab' * 16, 'owner': 'tenant-a',
    'size': 13, 'virtual_size': None, 'min_ram': 64, 'min_disk': 1,
    'container_format': 'bare', 'disk_format': 'qcow2', 'tags': ['t1'],
    'created_at': '2024-01-01T00:00:00Z', 'updated_at': '2024-01-01T00:00:00Z',
    'self': '/v2/images/6f3f', 'file': '/v2/images/6f3f/file', 'schema': '/v2/schemas/image',
    'os_hash_algo': 'sha512', 'os_hash_value': 'cd' * 64, 'os_hidden': False,
    'hw_disk_bus': 'virtio', 'os_distro': 'cirros', 'kernel_id': None}


def test_visibility_maps_to_is_public():
    for visibility, public in (('public', True), ('private', False), ('shared', False),
                               ('community', False)):
        assert v2_record(dict(V2_IMAGE, visibility=visibility))['is_public'] is public


def test_core_fields_properties_and_hash():
    record = v2_record(V2_IMAGE)
    assert {k: record[k] for k in ('id', 'name', 'status', 'protected', 'checksum', 'owner',
                                   'size', 'min_ram', 'min_disk', 'disk_format',
                                   'container_format')} == {
        k: V2_IMAGE[k] for k in ('id', 'name', 'status', 'protected', 'checksum', 'owner',
                                 'size', 'min_ram', 'min_disk', 'disk_format',
                                 'container_format')}
    # custom properties only: no tags, links, timestamps, hashes, nor unset (null) keys
    assert record['properties'] == {'hw_disk_bus': 'virtio', 'os_distro': 'cirros'}
    assert record['hash'] == ('sha512', 'cd' * 64)


def test_statuses_v1_cannot_create_are_skipped():
    assert not_copyable(v2_record(V2_IMAGE), only_active=False) is None
    queued = v2_record(dict(V2_IMAGE, status='queued'))
    assert not_copyable(queued, only_active=False) is None
    assert 'only-active' in not_copyable(queued, only_active=True)
    for status in ('saving', 'killed', 'deactivated', 'uploading', 'importing',
                   'pending_delete'):
        assert status in not_copyable(v2_record(dict(V2_IMAGE, status=status)), False)


class FakeResponse:
    def __init__(self, data):
        self.data = data

    def iter_content(self, size):
        return iter([self.data[i:i + 4] for i in range(0, len(self.data), 4)])

    def close(self):
        pass


def _stream(data, **image):
    import threading
    from glance_replicate.transfer import SourceStream, Window
    record = dict(v2_record(V2_IMAGE), size=len(data), **image)
    stream = SourceStream(FakeResponse(data), record, lambda count: None)
    return b''.join(Window(stream, len(data), threading.Event())), stream


def test_a_wrong_os_hash_value_changes_the_last_byte_so_the_target_kills_the_image():
    import hashlib
    data = b'thirteen byte'
    sent, stream = _stream(data, checksum=hashlib.md5(data).hexdigest())
    assert sent[:-1] == data[:-1] and sent[-1] != data[-1]
    assert stream.problems == ['the source bytes do not match its sha512 os_hash_value']

    sent, stream = _stream(data, checksum=hashlib.md5(data).hexdigest(),
                           hash=('sha512', hashlib.sha512(data).hexdigest()))
    assert (sent, stream.problems) == (data, [])

    sent, stream = _stream(data, checksum='0' * 32, hash=None)  # the target's MD5 check
    assert sent == data and 'the source records %s' % ('0' * 32) in stream.problems[0]
