"""One contract, two adapters: the DynamoDB stores (on moto) and the in-memory ones
answer every case alike, so domain tests on the in-memory stores hold for DynamoDB."""
import io

import pytest

from chalicelib.domain import image_meta as im
from chalicelib.domain.ports import BlobMissing, BlobTooLarge, ImageExists, ImageMissing
from chalicelib.storage.memory import (InMemoryBlobStore, InMemoryImageStore,
                                       InMemoryMemberStore)


@pytest.fixture(params=['dynamodb', 'memory'])
def stores(request):
    if request.param == 'memory':
        yield InMemoryImageStore(), InMemoryMemberStore(), InMemoryBlobStore()
        return
    request.getfixturevalue('aws')
    from chalicelib.storage.blobs import ImageBlobStore
    from chalicelib.storage.catalog import ImageCatalog
    from chalicelib.storage.memberships import ImageMemberships
    yield ImageCatalog(), ImageMemberships(), ImageBlobStore()


def image(number, **fields):
    stamp = '2026-01-01T00:00:%02d.000000' % number
    record = im.new_image('00000000-0000-0000-0000-%012d' % number, {
        'name': fields.pop('name', 'image-%d' % number)}, fields.pop('owner', 'tenant-a'),
        fields.pop('status', im.ACTIVE), stamp)
    record.update(fields)
    return record


def ids(images):
    return [found['id'][-2:] for found in images]


def test_create_get_and_ids_never_reused(stores):
    images, _, _ = stores
    created = images.create(image(1))
    assert images.get(created['id'])['name'] == 'image-1'
    with pytest.raises(ImageExists):
        images.create(image(1))
    assert images.get('00000000-0000-0000-0000-000000000099') is None
    assert set(images.get_many([created['id'], 'nope'])) == {created['id']}


def test_update_applies_a_change_to_the_fresh_record(stores):
    images, _, _ = stores
    images.create(image(1))
    updated = images.update(image(1)['id'], lambda record: dict(record, name='renamed'))
    assert updated['name'] == 'renamed' == images.get(image(1)['id'])['name']
    unchanged = images.update(image(1)['id'], lambda record: None)
    assert unchanged['name'] == 'renamed'
    with pytest.raises(ImageMissing):
        images.update('00000000-0000-0000-0000-000000000099', lambda record: record)


def test_listing_sources_hold_what_default_listings_show(stores):
    images, _, _ = stores
    for record in (image(1, is_public=True), image(2, owner='tenant-b'),
                   image(3, is_public=True, deleted=True, status=im.DELETED),
                   image(4, status=im.KILLED), image(5, name='shared-name', owner='tenant-c'),
                   image(6, name='shared-name', is_public=True)):
        images.create(record)
    assert ids(images.images_of(('public',))) == ['06', '01']
    assert ids(images.images_of(('owner', 'tenant-a'))) == ['06', '01']
    assert ids(images.images_of(('owner', 'tenant-b'))) == ['02']
    assert ids(images.images_of(('name', 'shared-name'), descending=False)) == ['05', '06']
    assert ids(images.images_of(('all',))) == ['06', '05', '04', '03', '02', '01']
    after = im.created_key(image(5))
    assert ids(images.images_of(('all',), after=after)) == ['04', '03', '02', '01']
    assert ids(images.images_of(('all',), descending=False, after=after)) == ['06']
    assert images.indexes_name('shared-name') and not images.indexes_name('')


def test_changes_since_reads_each_audience(stores):
    images, _, _ = stores
    for record in (image(1, is_public=True), image(2, owner='tenant-b'),
                   image(3, deleted=True, status=im.DELETED), image(4, owner=None)):
        images.create(record)
    since = image(1)['updated_at']
    assert ids(images.changed_since(('public',), '2000-01-01')) == ['01']
    assert sorted(ids(images.changed_since(('owner', 'tenant-a'), '2000-01-01'))) == ['03']
    assert sorted(ids(images.changed_since(('all',), since))) == ['02', '03', '04']


def test_expired_uploads(stores):
    images, _, _ = stores
    images.create(image(1, pending_upload={'expires_at': '2026-01-01T00:00:00.000000'}))
    images.create(image(2, pending_upload={'expires_at': '2027-01-01T00:00:00.000000'}))
    assert ids(images.expired_uploads('2026-06-01T00:00:00.000000')) == ['01']


def test_memberships(stores):
    images, members, _ = stores
    first, second = images.create(image(1)), images.create(image(2))
    assert members.put(first, 'tenant-b') is True
    assert members.put(first, 'tenant-b', can_share=True) is False
    assert members.put(second, 'tenant-b') is True
    assert members.put(first, 'tenant-c') is True
    assert members.get(first['id'], 'tenant-b')['can_share'] is True
    assert members.get(first['id'], None) is None
    assert [m['member_id'] for m in members.of_image(first['id'])] == ['tenant-b', 'tenant-c']
    assert [m['image_id'][-2:] for m in members.of_member('tenant-b')] == ['02', '01']
    after = im.created_key(second)
    assert [m['image_id'][-2:] for m in members.of_member('tenant-b', after=after)] == ['01']
    assert members.among([first['id'], second['id'], 'x'], 'tenant-c') == {first['id']}
    assert members.delete(first['id'], 'tenant-c') is True
    assert members.delete(first['id'], 'tenant-c') is False
    members.delete_all(first['id'])
    assert members.of_image(first['id']) == []
    assert [m['image_id'][-2:] for m in members.of_member('tenant-b')] == ['02']


def test_blobs(stores):
    _, _, blobs = stores
    stored = blobs.put('abc', io.BytesIO(b'x' * 1000), limit=1000)
    assert (stored.location, stored.size) == (blobs.key_for('abc'), 1000)
    assert stored.md5 == '%s' % __import__('hashlib').md5(b'x' * 1000).hexdigest()
    assert blobs.read(stored.location) == b'x' * 1000 and blobs.size_of(stored.location) == 1000
    with pytest.raises(BlobTooLarge):
        blobs.put('big', io.BytesIO(b'y' * 1001), limit=1000)
    assert blobs.size_of(blobs.key_for('big')) is None
    blobs.delete(stored.location)
    assert blobs.size_of(stored.location) is None
    with pytest.raises(BlobMissing):
        blobs.read(stored.location)
