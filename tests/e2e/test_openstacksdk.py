"""openstacksdk's image v1 proxy (`conn.image`) against the runtime: listing and delete.

The images are made with python-glanceclient: openstacksdk's v1 create, update and
download do not speak v1 (they fail against the reference Glance too).

openstacksdk's v1 Image knows only the query parameters name, container_format,
disk_format, status, size_min and size_max (plus limit and marker); any other Image
attribute given to `images()` (is_public, owner, ...) becomes a client-side filter.  So
it cannot send `is_public=None`, and a noauth caller lists only public images.  The
listing tests therefore use trusted-headers mode, where a tenant lists its own
private images; the identity headers go on every request of the SDK's session.
"""
import io
import uuid

import glanceclient
import openstack
import pytest
from openstack import exceptions as sdk_exceptions

from .support import identity_headers

pytestmark = [pytest.mark.filterwarnings('ignore::DeprecationWarning'),
              pytest.mark.filterwarnings('ignore::Warning:openstack')]


def _connection(base_url, identity=None):
    conn = openstack.connection.Connection(
        auth_type='admin_token', auth={'endpoint': base_url + '/v1', 'token': 'e2e-token'},
        image_api_version='1')
    if identity:
        conn.session.additional_headers.update(identity)
    return conn


@pytest.fixture
def tenant_clients(glance_headers_url):
    """(glanceclient, openstacksdk connection, tenant id) of a fresh member tenant."""
    def make():
        tenant = uuid.uuid4().hex
        identity = identity_headers(tenant)
        gc = glanceclient.Client('1', endpoint=glance_headers_url, token='e2e-token',
                                 identity_headers=dict(identity))
        return gc, _connection(glance_headers_url, identity), tenant
    return make


def test_list_filters_and_pages(tenant_clients, tag):
    gc, conn, tenant = tenant_clients()
    other_gc, _, _ = tenant_clients()
    created = [gc.images.create(
        name='%s-%d' % (tag, number), container_format='ovf' if number == 4 else 'bare',
        disk_format='qcow2' if number % 2 else 'raw', data=io.BytesIO(b'y' * (number + 1)),
        properties={'batch': tag}) for number in range(7)]
    queued = gc.images.create(name=tag + '-queued', disk_format='raw', container_format='bare')
    foreign = other_gc.images.create(name=tag + '-foreign', disk_format='raw',
                                     container_format='bare')
    newest_first = [image.id for image in reversed(created)]

    mine = [image for image in conn.image.images() if image.name.startswith(tag)]
    assert [image.id for image in mine] == [queued.id] + newest_first
    assert foreign.id not in {image.id for image in conn.image.images()}
    first = mine[1]
    assert first.name == tag + '-6'
    assert first.owner == tenant
    assert first.size == 7
    assert first.is_public is False
    assert first.status == 'active'
    assert first.disk_format == 'raw' and first.container_format == 'bare'
    assert first.properties['batch'] == tag

    # Paging: the SDK asks again with marker=<last id> until a page comes back empty.
    paged = list(conn.image.images(limit=2, status='active'))
    assert [image.id for image in paged if image.name.startswith(tag)] == newest_first
    assert len(list(conn.image.images(limit=2, status='active', paginated=False))) == 2

    # Server-side filters (public images of others would match too: keep this test's).
    def ids(**query):
        return [image.id for image in conn.image.images(**query)
                if image.name.startswith(tag)]
    assert ids(name=tag + '-3') == [created[3].id]
    assert ids(disk_format='qcow2', limit=2) == [created[5].id, created[3].id, created[1].id]
    assert ids(container_format='ovf') == [created[4].id]
    assert ids(status='queued') == [queued.id]
    assert ids(size_min=3, size_max=5) == [created[4].id, created[3].id, created[2].id]
    assert list(conn.image.images(name=tag + '-foreign')) == []


def test_delete_image_as_tenant(tenant_clients, tag):
    gc, conn, _ = tenant_clients()
    other_gc, _, _ = tenant_clients()
    image = gc.images.create(name=tag, disk_format='raw', container_format='bare',
                             data=io.BytesIO(b'delete me'))
    foreign = other_gc.images.create(name=tag + '-foreign', disk_format='raw',
                                     container_format='bare')

    assert conn.image.delete_image(image.id) is None
    assert list(conn.image.images(name=tag)) == []
    with pytest.raises(glanceclient.exc.HTTPNotFound):  # deleted: gone for non-admins
        gc.images.get(image.id)
    with pytest.raises(sdk_exceptions.NotFoundException):
        conn.image.delete_image(image.id, ignore_missing=False)
    assert conn.image.delete_image(image.id, ignore_missing=True) is None

    # Another tenant's private image is invisible, so it cannot be deleted.
    with pytest.raises(sdk_exceptions.NotFoundException):
        conn.image.delete_image(foreign.id, ignore_missing=False)
    assert other_gc.images.get(foreign.id).status == 'queued'


def test_noauth_listing_and_delete(glance_url, gc, tag):
    conn = _connection(glance_url)
    image = gc.images.create(name=tag, disk_format='raw', container_format='bare',
                             data=io.BytesIO(b'noauth'))
    other = gc.images.create(name=tag + '-other', disk_format='raw', container_format='bare')

    # Private ownerless images are listed only with is_public=None, which the SDK cannot send.
    assert list(conn.image.images(name=tag)) == []

    conn.image.delete_image(image.id)
    got = gc.images.get(image.id)  # an admin still sees the deleted image
    assert got.status == 'deleted' and got.deleted is True
    assert gc.images.get(other.id).status == 'queued'
    with pytest.raises(sdk_exceptions.NotFoundException):
        conn.image.delete_image(image.id, ignore_missing=False)
    with pytest.raises(sdk_exceptions.NotFoundException):
        conn.image.delete_image(str(uuid.uuid4()), ignore_missing=False)
    assert conn.image.delete_image(str(uuid.uuid4())) is None
