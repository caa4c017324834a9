"""Domain rules on the in-memory stores: no moto, no HTTP, no chalice request."""
import dataclasses
import io

import pytest

from chalicelib import config
from chalicelib.composition import assemble
from chalicelib.domain import context as ctx
from chalicelib.domain.errors import Forbidden, NotFound, TooLarge
from chalicelib.domain.transfers import ImageData
from chalicelib.storage.memory import (InMemoryBlobStore, InMemoryImageStore,
                                       InMemoryMemberStore, InMemorySources)

A = ctx.from_identity('tenant-a', 'user-a', ['member'])
B = ctx.from_identity('tenant-b', 'user-b', ['member'])
FORMATS = {'disk_format': 'raw', 'container_format': 'bare'}


def _world(**settings):
    """The services on in-memory stores, with `settings` changed (handed to them: the
    domain never reads the environment)."""
    blobs = InMemoryBlobStore()
    built = assemble(dataclasses.replace(config.settings(), **settings), InMemoryImageStore(),
                     InMemoryMemberStore(), blobs,
                     InMemorySources({'http://example.org/a.raw': b'remote bytes'}),
                     background=lambda *job: None)
    return built.images, built.members, blobs


@pytest.fixture
def world():
    return _world()


def _upload(images, context, data, **meta):
    return images.create(context, dict(FORMATS, **meta),
                         ImageData(io.BytesIO(data), 'application/octet-stream', len(data)))


def test_upload_stores_the_bytes_with_their_checksum(world):
    images, _, blobs = world
    image = _upload(images, A, b'abc', name='first')
    assert (image['status'], image['size'], image['owner']) == ('active', 3, 'tenant-a')
    assert image['checksum'] == '900150983cd24fb0d6963f7d28e17f72'
    assert blobs.objects == {'images/%s' % image['id']: b'abc'}
    assert images.download(A, image['id'])[1] == b'abc'


def test_a_private_image_is_invisible_to_other_tenants_until_shared(world):
    images, members, _ = world
    image = _upload(images, A, b'abc', name='private')
    with pytest.raises(NotFound):
        images.show(B, image['id'])
    assert images.index(B, {}) == []
    members.add_member(A, image['id'], 'tenant-b')
    assert images.show(B, image['id'])['id'] == image['id']
    assert [i['id'] for i in images.index(B, {})] == [image['id']]
    with pytest.raises(Forbidden):
        images.delete(B, image['id'])


def test_listing_merges_public_own_and_shared_in_created_order(world):
    images, members, _ = world
    admin = ctx.from_identity('tenant-x', 'admin', ['admin'])
    public = _upload(images, admin, b'p', name='public', is_public=True)
    own = _upload(images, B, b'o', name='own')
    shared = _upload(images, A, b's', name='shared')
    members.add_member(A, shared['id'], 'tenant-b')
    _upload(images, A, b'n', name='not shared')
    listed = images.index(B, {})
    assert [i['name'] for i in listed] == ['shared', 'own', 'public']
    assert [i['name'] for i in images.index(B, {'limit': '1', 'marker': own['id']})] == [
        'public']
    assert public['is_public']


def test_delete_removes_the_bytes_and_the_memberships(world):
    images, members, blobs = world
    image = _upload(images, A, b'abc')
    members.add_member(A, image['id'], 'tenant-b')
    images.delete(A, image['id'])
    assert blobs.objects == {}
    assert members.memberships.of_image(image['id']) == []
    with pytest.raises(NotFound):
        images.show(B, image['id'])


def test_member_quota():
    images, members, _ = _world(image_member_quota=2)
    image = _upload(images, A, b'abc')
    members.add_member(A, image['id'], 'tenant-b')
    members.add_member(A, image['id'], 'tenant-c')
    with pytest.raises(TooLarge):
        members.add_member(A, image['id'], 'tenant-d')


def test_a_small_external_location_is_served_from_the_source(world):
    images, _, blobs = world
    image = images.create(A, dict(FORMATS, location='http://example.org/a.raw'))
    assert (image['status'], image['size']) == ('active', len(b'remote bytes'))
    assert images.download(A, image['id'])[1] == b'remote bytes'
    assert blobs.objects == {}
