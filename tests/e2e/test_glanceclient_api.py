"""python-glanceclient's v1 Python API (`glanceclient.Client('1', ...)`) against the runtime."""
import io
import json
import os
import urllib.request
import uuid

import glanceclient
import pytest
from glanceclient import exc

from .support import identity_headers, md5_of

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')

MIB = 1024 * 1024
ALL = {'is_public': None}  # what `--all-tenants` sends


def _names(images):
    return [image.name for image in images]


def test_create_from_file_get_and_data(gc, tag, tmp_path):
    data = os.urandom(3 * MIB + 11)
    source = tmp_path / 'source.img'
    source.write_bytes(data)

    with open(source, 'rb') as stream:
        image = gc.images.create(data=stream, name=tag, disk_format='raw',
                                 container_format='bare', min_disk=1,
                                 properties={'os_distro': 'cirros', 'arch': 'x86_64'})
    assert image.status == 'active'
    assert image.size == len(data)
    assert image.checksum == md5_of(data)
    assert image.is_public is False
    assert image.owner is None
    assert image.properties == {'os_distro': 'cirros', 'arch': 'x86_64'}

    got = gc.images.get(image.id)  # HEAD: the x-image-meta-* headers
    assert got.id == image.id
    assert got.name == tag
    assert got.status == 'active'
    assert got.size == len(data)
    assert got.checksum == md5_of(data)
    assert got.min_disk == 1 and got.min_ram == 0
    assert got.is_public is False and got.protected is False and got.deleted is False
    assert got.disk_format == 'raw' and got.container_format == 'bare'
    assert got.properties == {'os_distro': 'cirros', 'arch': 'x86_64'}

    body = gc.images.data(image.id)  # verifies the MD5 against x-image-meta-checksum
    assert b''.join(body) == data


def test_update_merge_and_purge(gc, tag):
    image = gc.images.create(name=tag, disk_format='raw', container_format='bare',
                             properties={'a': '1', 'b': '2'})

    merged = gc.images.update(image.id, properties={'b': '20', 'c': '3'}, purge_props=False)
    assert merged.properties == {'a': '1', 'b': '20', 'c': '3'}
    assert gc.images.get(image.id).properties == {'a': '1', 'b': '20', 'c': '3'}

    renamed = gc.images.update(image.id, name=tag + '-new', min_ram=512)  # client default: merge
    assert renamed.name == tag + '-new'
    assert renamed.min_ram == 512
    assert renamed.properties == {'a': '1', 'b': '20', 'c': '3'}

    purged = gc.images.update(image.id, properties={'d': '4'}, purge_props=True)
    assert purged.properties == {'d': '4'}
    got = gc.images.get(image.id)
    assert got.properties == {'d': '4'}
    assert got.name == tag + '-new' and got.min_ram == 512


def test_update_without_purge_header_purges(glance_url, gc, tag):
    """The *server* default is purge (v1 §19): a PUT without the header drops properties."""
    image = gc.images.create(name=tag, disk_format='raw', container_format='bare',
                             properties={'a': '1', 'b': '2'})
    request = urllib.request.Request(
        '%s/v1/images/%s' % (glance_url, image.id), method='PUT',
        headers={'x-image-meta-property-c': '3', 'X-Auth-Token': 'e2e-token'})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        body = json.loads(response.read())
    assert body['image']['properties'] == {'c': '3'}
    assert gc.images.get(image.id).properties == {'c': '3'}


def test_upload_to_queued_image_with_update(gc, tag):
    image = gc.images.create(name=tag, disk_format='qcow2', container_format='bare')
    assert image.status == 'queued'
    data = os.urandom(200 * 1024)
    updated = gc.images.update(image.id, data=io.BytesIO(data))
    assert updated.status == 'active'
    assert updated.size == len(data)
    assert updated.checksum == md5_of(data)
    assert b''.join(gc.images.data(image.id)) == data

    with pytest.raises(exc.HTTPConflict):  # only a queued image takes data
        gc.images.update(image.id, data=io.BytesIO(b'more'))


def test_list_filters_and_pages(gc, tag):
    created = []
    for number in range(11):
        created.append(gc.images.create(
            name='%s-%02d' % (tag, 10 - number), container_format='bare',
            disk_format='raw' if number < 6 else 'vhd', data=io.BytesIO(b'z' * (number + 1)),
            properties={'batch': tag, 'tier': 'gold' if number % 3 == 0 else 'silver'}))
    batch = {'is_public': None, 'properties': {'batch': tag}}

    # Default order (created_at desc) over four pages of three.
    listed = list(gc.images.list(filters=dict(batch), page_size=3))
    assert [image.id for image in listed] == [image.id for image in reversed(created)]
    assert {image.status for image in listed} == {'active'}
    assert listed[0].size == 11 and listed[-1].size == 1
    assert listed[0].properties == {'batch': tag, 'tier': 'silver'}

    # Name order, both directions, pages of two.
    names = sorted(image.name for image in created)
    assert _names(gc.images.list(filters=dict(batch), page_size=2, sort_key='name',
                                 sort_dir='asc')) == names
    assert _names(gc.images.list(filters=dict(batch), page_size=4, sort_key='name',
                                 sort_dir='desc')) == names[::-1]
    assert _names(gc.images.list(filters=dict(batch), page_size=4, sort_key='size',
                                 sort_dir='asc')) == [image.name for image in created]

    # An absolute limit stops early.
    assert len(list(gc.images.list(filters=dict(batch), page_size=2, limit=5))) == 5

    # Filters.
    assert _names(gc.images.list(filters={'is_public': None, 'name': tag + '-03'})) == [
        tag + '-03']
    vhd = list(gc.images.list(filters=dict(batch, disk_format='vhd'), page_size=2))
    assert [image.id for image in vhd] == [image.id for image in reversed(created[6:])]
    sized = list(gc.images.list(filters=dict(batch, size_min=3, size_max=5), page_size=2))
    assert sorted(image.size for image in sized) == [3, 4, 5]
    gold = list(gc.images.list(filters={'is_public': None,
                                        'properties': {'batch': tag, 'tier': 'gold'}}))
    assert [image.id for image in gold] == [created[9].id, created[6].id, created[3].id,
                                            created[0].id]

    # The marker is the image after which the listing continues.
    after = list(gc.images.list(filters=dict(batch), marker=created[5].id, page_size=2))
    assert [image.id for image in after] == [image.id for image in reversed(created[:5])]

    # Without is_public=None a noauth caller lists only public images: none of these.
    assert list(gc.images.list(filters={'properties': {'batch': tag}})) == []


def test_delete(gc, tag):
    image = gc.images.create(name=tag, disk_format='raw', container_format='bare',
                             data=io.BytesIO(b'abc' * 100))
    gc.images.delete(image.id)

    got = gc.images.get(image.id)  # admins still see a deleted image
    assert got.status == 'deleted'
    assert got.deleted is True
    assert list(gc.images.list(filters={'is_public': None, 'name': tag})) == []
    with pytest.raises(exc.HTTPNotFound):
        b''.join(gc.images.data(image.id))
    with pytest.raises(exc.HTTPNotFound):
        gc.images.delete(image.id)


def test_errors(gc, tag):
    unknown = str(uuid.uuid4())
    with pytest.raises(exc.HTTPNotFound):
        gc.images.get(unknown)
    with pytest.raises(exc.HTTPNotFound):
        gc.images.data(unknown)
    with pytest.raises(exc.HTTPNotFound):
        gc.images.update(unknown, name='x')
    with pytest.raises(exc.HTTPNotFound):
        gc.images.delete(unknown)
    with pytest.raises(exc.HTTPBadRequest):
        gc.images.create(name=tag, disk_format='floppy', container_format='bare')
    with pytest.raises(exc.HTTPBadRequest):  # a marker that is not an image
        list(gc.images.list(filters=dict(ALL), marker=unknown))
    # Publicizing needs the admin role; the noauth context has no roles.
    with pytest.raises(exc.HTTPForbidden):
        gc.images.create(name=tag, disk_format='raw', container_format='bare',
                         is_public=True)
    assert list(gc.images.list(filters={'is_public': None, 'name': tag})) == []


def test_tenants_see_only_their_private_images(glance_headers_url, tag):
    """Trusted-headers mode: an image belongs to its creator's tenant."""
    owner_tenant, other_tenant = uuid.uuid4().hex, uuid.uuid4().hex
    owner = glanceclient.Client('1', endpoint=glance_headers_url, token='t',
                                identity_headers=identity_headers(owner_tenant))
    other = glanceclient.Client('1', endpoint=glance_headers_url, token='t',
                                identity_headers=identity_headers(other_tenant))
    image = owner.images.create(name=tag, disk_format='raw', container_format='bare',
                                data=io.BytesIO(b'private bytes'))
    assert image.owner == owner_tenant
    assert image.is_public is False

    assert [i.id for i in owner.images.list(filters={'name': tag})] == [image.id]
    assert b''.join(owner.images.data(image.id)) == b'private bytes'
    assert list(other.images.list(filters={'name': tag})) == []
    with pytest.raises(exc.HTTPNotFound):
        other.images.get(image.id)
    with pytest.raises(exc.HTTPNotFound):
        other.images.data(image.id)
    with pytest.raises(exc.HTTPNotFound):
        other.images.delete(image.id)
    with pytest.raises(exc.HTTPForbidden):  # publicize_image needs the admin role
        owner.images.update(image.id, is_public=True)

    owner.images.delete(image.id)
    with pytest.raises(exc.HTTPNotFound):  # non-admins do not see deleted images
        owner.images.get(image.id)


def test_sharing_with_members(glance_headers_url, tag):
    """Trusted-headers mode: a member tenant sees, lists and downloads a shared image."""
    def client(tenant):
        return glanceclient.Client('1', endpoint=glance_headers_url, token='t',
                                   identity_headers=identity_headers(tenant))
    owner_tenant, member_tenant, third_tenant = (uuid.uuid4().hex for _ in range(3))
    owner, member, third = client(owner_tenant), client(member_tenant), client(third_tenant)
    image = owner.images.create(name=tag, disk_format='raw', container_format='bare',
                                data=io.BytesIO(b'shared bytes'))
    with pytest.raises(exc.HTTPNotFound):
        member.images.get(image.id)

    owner.image_members.create(image, member_tenant, can_share=False)
    assert member.images.get(image.id).status == 'active'
    assert [i.id for i in member.images.list(filters={'name': tag})] == [image.id]
    assert b''.join(member.images.data(image.id)) == b'shared bytes'
    assert [(m.member_id, m.can_share) for m in owner.image_members.list(image=image)] == [
        (member_tenant, False)]
    assert [(m.image_id, m.can_share)
            for m in member.image_members.list(member=member_tenant)] == [(image.id, False)]
    with pytest.raises(exc.HTTPNotFound):  # can_share is false
        member.image_members.create(image, third_tenant)

    # Replacing the member list drops the first member.
    owner.image_members.replace(image, [{'member_id': third_tenant, 'can_share': True}])
    assert [(m.member_id, m.can_share) for m in owner.image_members.list(image=image)] == [
        (third_tenant, True)]
    with pytest.raises(exc.HTTPNotFound):
        member.images.get(image.id)
    assert list(member.images.list(filters={'name': tag})) == []
    third.image_members.create(image, member_tenant)  # can_share lets a member share
    assert member.images.get(image.id).status == 'active'

    owner.image_members.delete(image.id, member_tenant)
    with pytest.raises(exc.HTTPNotFound):
        owner.image_members.delete(image.id, member_tenant)
    with pytest.raises(exc.HTTPNotFound):
        member.images.get(image.id)
    owner.images.delete(image.id)
    with pytest.raises(exc.HTTPNotFound):
        third.images.get(image.id)
