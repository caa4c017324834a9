"""GET /v1/images and /v1/images/detail in depth (v1 §4.1, §13)."""
import datetime
import json
import uuid

import pytest

from tests.helpers import (ADMIN, body_json, create_image, get_header, list_images,
                           listed_ids, tenant)

pytestmark = pytest.mark.shared_world

A = tenant('tenant-a')
B = tenant('tenant-b')
C = tenant('tenant-c')
BRIEF_KEYS = {'id', 'name', 'size', 'disk_format', 'container_format', 'checksum'}
DETAIL_KEYS = {'id', 'name', 'status', 'size', 'virtual_size', 'disk_format',
               'container_format', 'checksum', 'min_disk', 'min_ram', 'is_public',
               'protected', 'owner', 'created_at', 'updated_at', 'deleted_at', 'deleted',
               'properties'}
SORT_KEY_ERROR = ('Unsupported sort_key. Acceptable values: name, status, container_format, '
                  'disk_format, size, id, created_at, updated_at')
SORT_DIR_ERROR = 'Unsupported sort_dir. Acceptable values: asc, desc'


def ids(client, identity, detail=False, **params):
    return listed_ids(client, identity, detail=detail, **params)


def id_set(client, identity, **params):
    found = ids(client, identity, **params)
    assert len(found) == len(set(found)), 'duplicates in %r' % found
    return set(found)


def assert_400(client, identity, message, detail=False, **params):
    response = list_images(client, identity, detail=detail, **params)
    assert response.status_code == 400, (params, response.status_code, response.body)
    assert message.encode() in response.body, (params, response.body)


def make(client, identity=A, **fields):
    response, image = create_image(client, identity, **fields)
    assert response.status_code == 201, response.body
    return image


def share(client, owner, image_id, member):
    response = client.http.put('/v1/images/%s/members/%s' % (image_id, member),
                               headers=dict(owner, **{'Content-Type': 'application/json'}),
                               body=json.dumps({'member': {'can_share': False}}).encode())
    assert response.status_code == 204, response.body


def killed(client, identity, **fields):
    """An image left `killed` (upload with a wrong Content-Type, v1 §8)."""
    image_id = str(uuid.uuid4())
    headers = dict(identity, **{'x-image-meta-id': image_id,
                                'x-image-meta-disk_format': 'raw',
                                'x-image-meta-container_format': 'bare',
                                'Content-Type': 'text/plain'})
    for name, value in fields.items():
        headers['x-image-meta-%s' % name] = value
    assert client.http.post('/v1/images', headers=headers, body=b'x').status_code == 400
    return image_id


def delete(client, identity, image_id):
    assert client.http.delete('/v1/images/%s' % image_id, headers=identity).status_code == 200


def detail_of(client, identity, **params):
    response = list_images(client, identity, detail=True, **params)
    assert response.status_code == 200
    return body_json(response)['images']


def spec_order(images, sort_key='created_at', descending=True):
    """v1 §13.3: the key (nulls first ascending), then created_at, then id, one direction."""
    def key(image):
        return tuple((0, '') if image[k] is None else (1, image[k])
                     for k in (sort_key, 'created_at', 'id'))
    return [i['id'] for i in sorted(images, key=key, reverse=descending)]


# -- §13.1 visibility --------------------------------------------------------------------
@pytest.fixture
def world(client):
    """Images of several tenants, public and not, shared, ownerless."""
    images = {
        'a_priv': make(client, A, name='a_priv'),
        'a_pub': make(client, ADMIN, name='a_pub', owner='tenant-a', is_public='true'),
        'b_priv': make(client, B, name='b_priv'),
        'b_shared': make(client, B, name='b_shared'),
        'adm_priv': make(client, ADMIN, name='adm_priv'),
        'adm_pub': make(client, ADMIN, name='adm_pub', is_public='true'),
        'orphan': make(client, ADMIN, name='orphan', owner=''),
    }
    share(client, B, images['b_shared']['id'], 'tenant-a')
    return {name: image['id'] for name, image in images.items()}


def names(world, *keys):
    return {world[k] for k in keys}


def test_regular_user_sees_public_own_and_shared(client, world):
    assert id_set(client, A) == names(world, 'a_priv', 'a_pub', 'b_shared', 'adm_pub')
    assert id_set(client, B) == names(world, 'b_priv', 'b_shared', 'a_pub', 'adm_pub')
    assert id_set(client, C) == names(world, 'a_pub', 'adm_pub')
    no_tenant = {'X-Identity-Status': 'Confirmed', 'X-Roles': 'member'}
    assert id_set(client, no_tenant) == names(world, 'a_pub', 'adm_pub')


def test_detail_has_the_same_visibility(client, world):
    assert set(ids(client, A, detail=True)) == names(world, 'a_priv', 'a_pub', 'b_shared',
                                                     'adm_pub')


def check_listings(client, identity, cases, expected):
    """Each params dict in `cases` must list exactly `expected` (a set of ids)."""
    failures = []
    for params in cases:
        got = id_set(client, identity, **params)
        if got != expected:
            failures.append((params, sorted(got - expected), sorted(expected - got)))
    assert not failures, failures  # (params, unexpected ids, missing ids)


def test_admin_default_or_is_public_true_lists_like_its_tenant(client, world):
    check_listings(client, ADMIN, [{}, {'is_public': 'true'}, {'is_public': 'True'},
                                   {'is_public': '1'}, {'is_public': 'TRUE'}],
                   names(world, 'adm_priv', 'adm_pub', 'a_pub'))


def test_admin_is_public_false_lists_all_non_public(client, world):
    check_listings(client, ADMIN, [{'is_public': v} for v in ('false', 'False', '0')],
                   names(world, 'a_priv', 'b_priv', 'b_shared', 'adm_priv', 'orphan'))


def test_admin_is_public_none_lists_everything(client, world):
    check_listings(client, ADMIN, [{'is_public': v} for v in ('none', 'None', 'NONE')],
                   set(world.values()))


def test_non_admin_is_public_is_ignored(client, world):
    check_listings(client, A, [{'is_public': v} for v in ('false', '0', 'none', 'true', 'NoNe')],
                   names(world, 'a_priv', 'a_pub', 'b_shared', 'adm_pub'))


@pytest.mark.parametrize('identity', [A, ADMIN])
@pytest.mark.parametrize('value', ['banana', 'yes', '2', ''])
def test_is_public_is_validated(client, identity, value):
    assert_400(client, identity, 'Bad value passed to filter is_public got %s' % value,
               is_public=value)


def test_admin_tenant_filter_sees_members_shared_with_it(client, world):
    share(client, A, world['a_priv'], 'tenant-admin')
    assert id_set(client, ADMIN) == names(world, 'adm_priv', 'adm_pub', 'a_pub', 'a_priv')


def test_unshared_image_leaves_the_listing(client, world):
    response = client.http.delete('/v1/images/%s/members/tenant-a' % world['b_shared'],
                                  headers=B)
    assert response.status_code == 204
    assert world['b_shared'] not in id_set(client, A)


# -- default exclusion of deleted and killed ---------------------------------------------
@pytest.fixture
def lifecycle(client):
    live = make(client, A, name='live')['id']
    dead = killed(client, A, name='dead')
    gone = make(client, A, name='gone', data=b'bytes')['id']
    delete(client, A, gone)
    public_gone = make(client, ADMIN, name='public_gone', is_public='true')['id']
    delete(client, ADMIN, public_gone)
    return {'live': live, 'killed': dead, 'deleted': gone, 'public_deleted': public_gone}


def test_deleted_and_killed_are_not_listed(client, lifecycle):
    assert ids(client, A) == [lifecycle['live']]
    assert ids(client, A, detail=True) == [lifecycle['live']]
    assert ids(client, ADMIN, is_public='none') == [lifecycle['live']]
    assert ids(client, ADMIN, is_public='false') == [lifecycle['live']]


def test_status_filter_does_not_reveal_killed_or_deleted(client, lifecycle):
    for status in ('killed', 'deleted', 'in:killed,deleted,queued'):
        expected = [lifecycle['live']] if 'queued' in status else []
        assert ids(client, A, status=status) == expected, status
        assert ids(client, ADMIN, is_public='none', status=status) == expected, status


def test_deleted_param_has_no_effect(client, lifecycle):
    assert ids(client, A, deleted='true') == [lifecycle['live']]
    assert ids(client, ADMIN, is_public='none', deleted='1') == [lifecycle['live']]


def test_changes_since_includes_deleted_and_killed(client, lifecycle):
    images = {i['id']: i for i in detail_of(client, A, **{'changes-since': '2013-01-01'})}
    assert set(images) == {lifecycle['live'], lifecycle['killed'], lifecycle['deleted'],
                           lifecycle['public_deleted']}
    assert images[lifecycle['killed']]['status'] == 'killed'
    assert images[lifecycle['deleted']]['status'] == 'deleted'
    assert images[lifecycle['deleted']]['deleted'] is True
    assert images[lifecycle['deleted']]['deleted_at'] is not None
    assert images[lifecycle['live']]['deleted'] is False
    # visibility rules still hold: tenant-b sees only the public (deleted) image
    assert id_set(client, B, **{'changes-since': '2013-01-01'}) == {lifecycle['public_deleted']}
    # and status filters then see killed/deleted
    assert ids(client, A, status='killed', **{'changes-since': '2013-01-01'}) \
        == [lifecycle['killed']]


def test_changes_since_is_strictly_after_updated_at(client):
    first = make(client, A, name='first')
    second = make(client, A, name='second')
    third = make(client, A, name='third')
    updated = {i['id']: i['updated_at'] for i in detail_of(client, A)}
    assert id_set(client, A, **{'changes-since': updated[second['id']]}) == {third['id']}
    assert id_set(client, A, **{'changes-since': updated[first['id']]}) \
        == {second['id'], third['id']}
    # an update moves an image into the window again
    renamed = client.http.put('/v1/images/%s' % first['id'],
                              headers=dict(A, **{'x-image-meta-name': 'first2'}))
    assert renamed.status_code == 200
    assert id_set(client, A, **{'changes-since': updated[third['id']]}) == {first['id']}


def test_changes_since_accepted_forms(client):
    image = make(client, A)['id']
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    past, future = now - datetime.timedelta(minutes=30), now + datetime.timedelta(minutes=30)
    for value in ('2013-01-01', '20130101', '2013-0101', '2013-01-01T00:00:00',
                  '2013-01-01T00:00:00Z', past.strftime('%Y-%m-%dT%H:%M:%S')):
        assert ids(client, A, **{'changes-since': value}) == [image], value
    assert ids(client, A, **{'changes-since': future.strftime('%Y-%m-%dT%H:%M:%S')}) == []
    # zone offsets: `future` local time at +01:00 is half an hour ago in UTC
    shifted = (now + datetime.timedelta(minutes=30)).strftime('%Y-%m-%dT%H:%M:%S')
    assert ids(client, A, **{'changes-since': shifted + '+01:00'}) == [image]
    # half an hour ago local time at -01:00 is half an hour ahead in UTC
    shifted = (now - datetime.timedelta(minutes=30)).strftime('%Y-%m-%dT%H:%M:%S')
    assert ids(client, A, **{'changes-since': shifted + '-01:00'}) == []


@pytest.mark.parametrize('value', ['', 'bogus', '2013-13-45', 'yesterday', '-42'])
def test_changes_since_unparsable_is_400(client, value):
    assert_400(client, A, 'Unrecognized changes-since value', **{'changes-since': value})


# -- §13.2 filters ------------------------------------------------------------------------
@pytest.fixture
def catalog(client):
    """Four images of tenant-a created in this order: f0, f1, f2, f3."""
    response = client.http.post('/v1/images', headers=A)  # no name, no formats
    assert response.status_code == 201
    f0 = body_json(response)['image']
    f1 = make(client, A, name='alpha', data=b'12345', min_ram=512, min_disk=10,
              protected='true', properties={'distro': 'ubuntu', 'arch': 'x86'})
    f2 = make(client, A, name='beta', disk_format='qcow2', container_format='ovf',
              data=b'0123456789', min_ram=1024, min_disk=20,
              properties={'distro': 'ubuntu'})
    f3 = make(client, A, name='gamma', disk_format='iso', properties={'distro': 'fedora'})
    # another tenant's image that matches many filters but is never visible to tenant-a
    make(client, B, name='alpha', data=b'12345', min_ram=512, protected='true',
         properties={'distro': 'ubuntu', 'arch': 'x86'})
    assert f0['name'] is None and f0['disk_format'] is None
    return {'f0': f0['id'], 'f1': f1['id'], 'f2': f2['id'], 'f3': f3['id']}


def pick(catalog, *keys):
    return {catalog[k] for k in keys}


FILTER_CASES = [
    ({}, ('f0', 'f1', 'f2', 'f3')),
    ({'name': 'alpha'}, ('f1',)),
    ({'name': 'eq:alpha'}, ('f1',)),
    ({'name': 'in:alpha,beta'}, ('f1', 'f2')),
    ({'name': 'in:"alpha","gamma"'}, ('f1', 'f3')),
    ({'name': 'in:alpha'}, ('f1',)),
    ({'name': 'Alpha'}, ()),
    ({'name': 'alp'}, ()),
    ({'status': 'active'}, ('f1', 'f2')),
    ({'status': 'queued'}, ('f0', 'f3')),
    ({'status': 'in:queued,active'}, ('f0', 'f1', 'f2', 'f3')),
    ({'status': 'eq:queued'}, ('f0', 'f3')),
    ({'container_format': 'bare'}, ('f1', 'f3')),
    ({'container_format': 'ovf'}, ('f2',)),
    ({'container_format': 'in:ovf,bare'}, ('f1', 'f2', 'f3')),
    ({'disk_format': 'qcow2'}, ('f2',)),
    ({'disk_format': 'in:raw,iso'}, ('f1', 'f3')),
    ({'disk_format': 'eq:raw'}, ('f1',)),
    ({'disk_format': 'vhd'}, ()),
    ({'size_min': '5'}, ('f1', 'f2')),
    ({'size_min': '6'}, ('f2',)),
    ({'size_min': '0'}, ('f0', 'f1', 'f2', 'f3')),
    ({'size_max': '5'}, ('f0', 'f1', 'f3')),
    ({'size_max': '0'}, ('f0', 'f3')),
    ({'size_min': '1', 'size_max': '9'}, ('f1',)),
    ({'size_min': '11'}, ()),
    ({'min_ram': '512'}, ('f1',)),
    ({'min_ram': '1024'}, ('f2',)),
    ({'min_ram': '0'}, ('f0', 'f3')),
    ({'min_ram': '600'}, ()),
    ({'min_disk': '20'}, ('f2',)),
    ({'min_disk': '0'}, ('f0', 'f3')),
    ({'min_disk': '15'}, ()),
    ({'min_disk': 'abc'}, ()),
    ({'protected': 'true'}, ('f1',)),
    ({'protected': 'True'}, ('f1',)),
    ({'protected': '1'}, ('f1',)),
    ({'protected': 'false'}, ('f0', 'f2', 'f3')),
    ({'protected': 'FALSE'}, ('f0', 'f2', 'f3')),
    ({'protected': '0'}, ('f0', 'f2', 'f3')),
    ({'property-distro': 'ubuntu'}, ('f1', 'f2')),
    ({'property-distro': 'fedora'}, ('f3',)),
    ({'property-distro': 'ubuntu', 'property-arch': 'x86'}, ('f1',)),
    ({'property-distro': 'fedora', 'property-arch': 'x86'}, ()),
    ({'property-distro': 'Ubuntu'}, ()),
    ({'property-nope': 'x'}, ()),
    ({'status': 'active', 'disk_format': 'raw'}, ('f1',)),
    ({'status': 'active', 'min_ram': '1024', 'property-distro': 'ubuntu'}, ('f2',)),
    ({'foo': 'bar', 'owner': 'tenant-b'}, ('f0', 'f1', 'f2', 'f3')),
]


def test_filters(client, catalog):
    names_of = {image_id: key for key, image_id in catalog.items()}
    failures = []
    for params, expected in FILTER_CASES:
        got = ids(client, A, **params)
        if len(got) != len(set(got)) or set(got) != pick(catalog, *expected):
            failures.append((params, sorted(names_of.get(i, i) for i in got), expected))
    assert not failures, failures  # (params, got, expected)


def test_filters_on_detail(client, catalog):
    for params, expected in FILTER_CASES[::4]:
        assert set(ids(client, A, detail=True, **params)) == pick(catalog, *expected), params


def test_name_that_looks_like_a_time_is_literal(client):
    timed = make(client, A, name='2013-01-01T12:00:00')['id']
    make(client, A, name='other')
    assert ids(client, A, name='2013-01-01T12:00:00') == [timed]


@pytest.mark.parametrize('field', ['name', 'status', 'disk_format', 'container_format'])
def test_unknown_filter_operator_is_400(client, field):
    make(client, A, name='x')
    response = list_images(client, A, **{field: 'foo:bar'})
    assert response.status_code == 400


@pytest.mark.parametrize('name,value', [
    ('size_min', '-1'), ('size_min', 'abc'), ('size_min', '1.5'),
    ('size_max', '-1'), ('size_max', 'big'),
    ('min_ram', '-5'), ('min_ram', 'x'),
    ('protected', 'banana'), ('protected', 'yes'), ('protected', ''),
])
def test_filter_value_validation(client, name, value):
    assert_400(client, A, 'Bad value passed to filter %s got %s' % (name, value),
               **{name: value})
    assert_400(client, A, 'Bad value passed to filter %s got %s' % (name, value),
               detail=True, **{name: value})


@pytest.mark.parametrize('value', ['none', 'None'])
def test_protected_none_is_refused(client, value):
    assert_400(client, A, 'protected must be True, or False', protected=value)


# -- §13.3 sorting -------------------------------------------------------------------------
SORT_CASES = [
    (None, None, ('f3', 'f2', 'f1', 'f0')),
    ('created_at', None, ('f3', 'f2', 'f1', 'f0')),
    (None, 'asc', ('f0', 'f1', 'f2', 'f3')),
    ('created_at', 'asc', ('f0', 'f1', 'f2', 'f3')),
    ('name', 'asc', ('f0', 'f1', 'f2', 'f3')),
    ('name', 'desc', ('f3', 'f2', 'f1', 'f0')),
    ('name', None, ('f3', 'f2', 'f1', 'f0')),
    ('size', 'asc', ('f0', 'f3', 'f1', 'f2')),
    ('size', 'desc', ('f2', 'f1', 'f3', 'f0')),
    ('disk_format', 'asc', ('f0', 'f3', 'f2', 'f1')),
    ('disk_format', 'desc', ('f1', 'f2', 'f3', 'f0')),
    ('container_format', 'asc', ('f0', 'f1', 'f3', 'f2')),
    ('container_format', 'desc', ('f2', 'f3', 'f1', 'f0')),
    ('status', 'asc', ('f1', 'f2', 'f0', 'f3')),
    ('status', 'desc', ('f3', 'f0', 'f2', 'f1')),
]


def test_sort_orders(client, catalog):
    names_of = {image_id: key for key, image_id in catalog.items()}
    failures = []
    for sort_key, sort_dir, expected in SORT_CASES:
        params = {}
        if sort_key:
            params['sort_key'] = sort_key
        if sort_dir:
            params['sort_dir'] = sort_dir
        got = [names_of.get(i, i) for i in ids(client, A, **params)]
        if got != list(expected):
            failures.append((params, got, expected))
    assert not failures, failures  # (params, got, expected)


def test_sort_orders_on_detail(client, catalog):
    for sort_key, sort_dir, expected in SORT_CASES[4::3]:
        got = ids(client, A, detail=True, sort_key=sort_key, sort_dir=sort_dir)
        assert got == [catalog[k] for k in expected], (sort_key, sort_dir)


def test_sort_by_id(client, catalog):
    everything = sorted(catalog.values())
    assert ids(client, A, sort_key='id', sort_dir='asc') == everything
    assert ids(client, A, sort_key='id') == everything[::-1]


def test_sort_by_updated_at(client, catalog):
    response = client.http.put('/v1/images/%s' % catalog['f1'], headers=dict(
        A, **{'x-image-meta-min_disk': '11', 'x-glance-registry-purge-props': 'false'}))
    assert response.status_code == 200
    want = [catalog[k] for k in ('f1', 'f3', 'f2', 'f0')]
    assert ids(client, A, sort_key='updated_at') == want
    assert ids(client, A, sort_key='updated_at', sort_dir='asc') == want[::-1]


def test_ties_broken_by_created_at_then_id_in_the_same_direction(client):
    made = [make(client, A, name='same' if i % 2 else '') for i in range(6)]
    images = detail_of(client, A, limit=100)
    assert len(images) == 6
    for direction in ('asc', 'desc'):
        got = ids(client, A, sort_key='name', sort_dir=direction)
        assert got == spec_order(images, 'name', direction == 'desc')
    # within equal names, creation order decides
    named = [i['id'] for i in made if i['name'] == 'same']
    unnamed = [i['id'] for i in made if i['name'] is None]
    assert ids(client, A, sort_key='name', sort_dir='asc') == unnamed + named
    assert ids(client, A, sort_key='name', sort_dir='desc') == named[::-1] + unnamed[::-1]


@pytest.mark.parametrize('sort_key', ['foo', 'NAME', 'owner', 'min_ram', 'checksum', ''])
def test_bad_sort_key(client, sort_key):
    assert_400(client, A, SORT_KEY_ERROR, sort_key=sort_key)
    assert_400(client, A, SORT_KEY_ERROR, detail=True, sort_key=sort_key)


@pytest.mark.parametrize('sort_dir', ['up', 'ASC', 'Desc', 'ascending', ''])
def test_bad_sort_dir(client, sort_dir):
    assert_400(client, A, SORT_DIR_ERROR, sort_dir=sort_dir)
    assert_400(client, A, SORT_DIR_ERROR, detail=True, sort_dir=sort_dir)


# -- limits ----------------------------------------------------------------------------------
@pytest.mark.parametrize('value', ['x', '1.5', '', 'ten'])
def test_limit_must_be_an_integer(client, value):
    assert_400(client, A, 'limit param must be an integer', limit=value)


@pytest.mark.parametrize('value', ['-1', '-100'])
def test_limit_must_not_be_negative(client, value):
    assert_400(client, A, 'limit param must be positive', limit=value)


def test_limit_zero_is_empty(client):
    make(client, A)
    for detail in (False, True):
        response = list_images(client, A, detail=detail, limit=0)
        assert response.status_code == 200
        assert response.body == b'{"images": []}'


@pytest.fixture
def thirty(client):
    return [make(client, A, name='img%02d' % i)['id'] for i in range(30)]


def test_default_limit_is_25(client, thirty):
    newest_first = thirty[::-1]
    assert ids(client, A) == newest_first[:25]
    assert ids(client, A, detail=True) == newest_first[:25]
    assert ids(client, A, limit=100) == newest_first
    assert ids(client, A, limit=30) == newest_first
    assert ids(client, A, limit=3) == newest_first[:3]
    assert ids(client, A, sort_key='name', sort_dir='asc') == thirty[:25]


def test_limit_capped_by_api_limit_max(client, thirty, settings_override):
    settings_override(api_limit_max=5)
    newest_first = thirty[::-1]
    assert ids(client, A, limit=10) == newest_first[:5]
    assert ids(client, A, limit=1000) == newest_first[:5]
    assert ids(client, A) == newest_first[:5]
    assert ids(client, A, limit=2) == newest_first[:2]
    assert ids(client, A, detail=True, sort_key='name', limit=50) == newest_first[:5]


def test_limit_param_default_setting(client, thirty, settings_override):
    settings_override(limit_param_default=7)
    assert ids(client, A) == thirty[::-1][:7]


# -- markers -------------------------------------------------------------------------------
def page_through(client, identity, limit, detail=False, **params):
    collected, marker, pages = [], None, 0
    while True:
        query = dict(params, limit=limit)
        if marker:
            query['marker'] = marker
        page = ids(client, identity, detail=detail, **query)
        pages += 1
        assert pages < 50
        collected.extend(page)
        if len(page) < limit:
            return collected, pages
        marker = page[-1]


@pytest.fixture
def pageable(client):
    """12 images visible to tenant-a: 9 own (repeated and null names, sizes 0-2, queued and
    active), 2 public ones of the admin, 1 shared by tenant-b; plus 1 invisible."""
    names = ['n1', 'n0', None, 'n2', 'n1', None, 'n0', 'n2', 'n1']
    mine = [make(client, A, name='' if n is None else n, data=b'x' * (i % 3) or None)['id']
            for i, n in enumerate(names)]
    public = [make(client, ADMIN, name=n, is_public='true')['id'] for n in ('n1', 'p')]
    shared = make(client, B, name='n0')['id']
    share(client, B, shared, 'tenant-a')
    make(client, B, name='n1')  # invisible to tenant-a
    return set(mine + public + [shared])


PAGING_ORDERS = [
    (None, None), ('created_at', 'asc'), ('name', 'asc'), ('name', 'desc'),
    ('size', 'asc'), ('status', 'desc'), ('id', 'asc'), ('updated_at', 'desc'),
]


def check_paging(client, identity, expected_ids, sort_key, sort_dir, limit, images,
                 detail=False):
    """Pages of `limit` concatenate to the full sorted list, in v1's order."""
    params = {}
    if sort_key:
        params['sort_key'] = sort_key
    if sort_dir:
        params['sort_dir'] = sort_dir
    full = ids(client, identity, detail=detail, limit=1000, **params)
    assert set(full) == expected_ids and len(full) == len(expected_ids), params
    assert full == spec_order(images, sort_key or 'created_at', sort_dir != 'asc'), params
    collected, pages = page_through(client, identity, limit, detail=detail, **params)
    assert collected == full, (params, limit)
    assert pages == len(full) // limit + 1, (params, limit)


def test_marker_paging_concatenates_to_the_sorted_list(client, pageable):
    images = detail_of(client, A, limit=1000)
    for sort_key, sort_dir in PAGING_ORDERS:
        check_paging(client, A, pageable, sort_key, sort_dir, 5, images)


def test_marker_paging_edge_limits(client, pageable):
    # one image per page, and a page exactly the size of the list (then an empty page)
    assert len(pageable) == 12
    images = detail_of(client, A, limit=1000)
    check_paging(client, A, pageable, None, None, 1, images, detail=True)
    check_paging(client, A, pageable, 'name', 'asc', 12, images)
    check_paging(client, A, pageable, 'name', 'desc', 7, images, detail=True)


def test_marker_paging_on_detail_with_filter(client, pageable):
    full = ids(client, A, detail=True, limit=1000, sort_key='name', sort_dir='asc',
               name='in:n0,n1')
    assert len(full) == 7  # 3 + 2 of tenant-a's, the public n1, the shared n0
    collected, _ = page_through(client, A, 3, detail=True, sort_key='name', sort_dir='asc',
                                name='in:n0,n1')
    assert collected == full


def test_marker_paging_admin_all_tenants(client, pageable):
    full = ids(client, ADMIN, is_public='none', limit=1000, sort_key='name')
    assert len(full) == len(pageable) + 1  # plus tenant-b's private image
    collected, _ = page_through(client, ADMIN, 5, is_public='none', sort_key='name')
    assert collected == full


def test_marker_of_last_image_gives_empty_page(client):
    first = make(client, A)['id']
    make(client, A)
    response = list_images(client, A, marker=first)
    assert response.status_code == 200
    assert response.body == b'{"images": []}'


@pytest.mark.parametrize('marker', ['abc', '1', 'not-a-uuid',
                                    '12345678-1234-1234-1234-12345678901'])
def test_marker_format(client, marker):
    assert_400(client, A, 'Invalid marker format', marker=marker)
    assert_400(client, A, 'Invalid marker format', detail=True, marker=marker)


def test_marker_uuid_forms_accepted(client):
    older = make(client, A)['id']
    odd = make(client, A, id='0A1B2C3D4E5F4A6B8C9D0E1F2A3B4C5D')['id']
    assert odd == '0A1B2C3D4E5F4A6B8C9D0E1F2A3B4C5D'
    make(client, A)
    # upper case, no hyphens: still UUID-like, and the image exists
    assert ids(client, A, marker=odd) == [older]


def test_unknown_marker(client):
    make(client, A)
    assert_400(client, A, 'Invalid marker. Image could not be found.', marker=str(uuid.uuid4()))


def test_invisible_marker(client):
    other = make(client, B)['id']
    make(client, A)
    assert_400(client, A, 'Invalid marker. Image could not be found.', marker=other)
    assert_400(client, A, 'Invalid marker. Image could not be found.', detail=True,
               marker=other)
    # the admin sees it, so for the admin it is a fine marker
    assert list_images(client, ADMIN, is_public='none', marker=other).status_code == 200


def test_deleted_marker_refused_unless_changes_since(client):
    older = make(client, A, name='older')['id']
    gone = make(client, A, name='gone')['id']
    newer = make(client, A, name='newer')['id']
    delete(client, A, gone)
    assert_400(client, A, 'Invalid marker. Image could not be found.', marker=gone)
    assert_400(client, ADMIN, 'Invalid marker. Image could not be found.', marker=gone,
               is_public='none')
    # with changes-since deleted images are listed, so they are valid markers (for those
    # who can see them)
    since = {'changes-since': '2013-01-01'}
    everything = ids(client, ADMIN, is_public='none', **since)
    assert set(everything) == {older, gone, newer}
    after = ids(client, ADMIN, is_public='none', marker=gone, **since)
    assert after == everything[everything.index(gone) + 1:]


def test_killed_marker_is_visible_so_accepted(client):
    older = make(client, A, name='older')['id']
    dead = killed(client, A, name='dead')
    newer = make(client, A, name='newer')['id']
    assert ids(client, A) == [newer, older]
    assert ids(client, A, marker=dead) == [older]
    assert ids(client, A, marker=dead, sort_dir='asc') == [newer]


# -- §4.1 rendering -------------------------------------------------------------------------
def test_index_has_exactly_six_keys_and_detail_all_fields(client):
    response, created = create_image(client, A, name='rendered', data=b'abc', min_ram=64,
                                     properties={'distro': 'cirros', 'empty': ''})
    assert response.status_code == 201
    brief = list_images(client, A)
    assert brief.status_code == 200
    assert get_header(brief, 'Content-Type') == 'application/json'
    [item] = body_json(brief)['images']
    assert set(item) == BRIEF_KEYS
    assert item == {key: created[key] for key in BRIEF_KEYS}
    detail = list_images(client, A, detail=True)
    assert detail.status_code == 200
    assert get_header(detail, 'Content-Type') == 'application/json'
    [full] = body_json(detail)['images']
    assert set(full) == DETAIL_KEYS
    assert full == created
    assert full['properties'] == {'distro': 'cirros', 'empty': None}
    assert full['min_ram'] == 64 and full['size'] == 3 and full['deleted'] is False
    assert full['is_public'] is False and full['protected'] is False
    assert full['virtual_size'] is None and full['deleted_at'] is None


def test_detail_never_shows_location(client):
    make(client, A, data=b'abc')
    [full] = detail_of(client, A)
    assert 'location' not in full and 'location_data' not in full
    assert 'store' not in full and 'visibility' not in full and 'tags' not in full


def test_empty_list_body_is_exact(client):
    for identity in (A, ADMIN):
        for detail in (False, True):
            response = list_images(client, identity, detail=detail)
            assert response.status_code == 200
            assert response.body == b'{"images": []}'
    make(client, A, name='mine')
    response = list_images(client, A, name='no-such-name')
    assert response.body == b'{"images": []}'
    response = list_images(client, B)
    assert response.body == b'{"images": []}'


# -- the exact name filter (read from the name-images index) -------------------------------
NO_TENANT = {'X-Identity-Status': 'Confirmed', 'X-Roles': 'member'}


@pytest.fixture
def namesakes(client):
    """Images named 'twin' everywhere a listing can find them or not, among others."""
    images = {
        'a_priv': make(client, A, name='twin')['id'],
        'a_pub': make(client, ADMIN, name='twin', owner='tenant-a', is_public='true')['id'],
        'b_priv': make(client, B, name='twin')['id'],
        'b_shared': make(client, B, name='twin')['id'],
        'adm_priv': make(client, ADMIN, name='twin')['id'],
        'adm_pub': make(client, ADMIN, name='twin', is_public='true')['id'],
        'orphan': make(client, ADMIN, name='twin', owner='')['id'],
        'killed': killed(client, A, name='twin'),
        'deleted': make(client, A, name='twin')['id'],
        'public_deleted': make(client, ADMIN, name='twin', is_public='true')['id'],
        'other': make(client, A, name='other')['id'],
        'b_other': make(client, B, name='other')['id'],
    }
    share(client, B, images['b_shared'], 'tenant-a')
    share(client, B, images['b_other'], 'tenant-a')
    share(client, A, images['deleted'], 'tenant-b')
    delete(client, A, images['deleted'])
    delete(client, ADMIN, images['public_deleted'])
    return images


def named_in_default_listing(client, identity, wanted, **params):
    """The default listing's images bearing one of `wanted` names, in its order."""
    return [image['id'] for image in detail_of(client, identity, limit=1000, **params)
            if image['name'] in wanted]


def test_name_filter_shows_public_own_and_shared_namesakes(client, namesakes):
    expected = {namesakes[k] for k in ('a_priv', 'a_pub', 'b_shared', 'adm_pub')}
    for value in ('twin', 'eq:twin', 'in:twin', 'in:twin,nothing'):
        assert id_set(client, A, name=value) == expected, value
    assert id_set(client, B, name='twin') == {
        namesakes[k] for k in ('b_priv', 'b_shared', 'a_pub', 'adm_pub')}
    assert id_set(client, C, name='twin') == {namesakes['a_pub'], namesakes['adm_pub']}
    assert id_set(client, NO_TENANT, name='twin') == {namesakes['a_pub'],
                                                       namesakes['adm_pub']}
    assert id_set(client, A, name='in:twin,other') == expected | {
        namesakes['other'], namesakes['b_other']}


@pytest.mark.parametrize('identity, params', [
    (A, {}), (B, {}), (C, {}), (NO_TENANT, {}), (ADMIN, {}), (ADMIN, {'is_public': 'true'}),
    (ADMIN, {'is_public': 'none'}), (ADMIN, {'is_public': 'false'}),
    (A, {'is_public': 'none'}), (A, {'sort_dir': 'asc'}), (ADMIN, {'disk_format': 'raw'}),
    (A, {'size_max': '0'}), (B, {'protected': 'false'}), (A, {'container_format': 'ovf'})])
def test_name_filter_is_the_default_listing_of_that_name(client, namesakes, identity, params):
    for value, wanted in (('twin', {'twin'}), ('in:other,twin', {'twin', 'other'}),
                          ('nothing', set())):
        assert ids(client, identity, detail=True, limit=1000, name=value, **params) \
            == named_in_default_listing(client, identity, wanted, **params), value


def test_admin_name_filter_across_tenants(client, namesakes):
    live = {k: namesakes[k] for k in ('a_priv', 'a_pub', 'b_priv', 'b_shared', 'adm_priv',
                                      'adm_pub', 'orphan')}
    assert id_set(client, ADMIN, name='twin', is_public='none') == set(live.values())
    assert id_set(client, ADMIN, name='twin', is_public='false') == set(live.values()) - {
        live['a_pub'], live['adm_pub']}
    assert id_set(client, ADMIN, name='twin') == {live['adm_priv'], live['adm_pub'],
                                                  live['a_pub']}


def test_name_filter_excludes_deleted_and_killed(client, lifecycle):
    for name in ('dead', 'gone', 'public_gone'):
        assert ids(client, A, name=name) == [], name
        assert ids(client, ADMIN, name=name, is_public='none') == [], name
    assert ids(client, A, name='live') == [lifecycle['live']]
    # changes-since still lists them (the visible set path)
    assert ids(client, A, name='dead', **{'changes-since': '2013-01-01'}) \
        == [lifecycle['killed']]


def test_name_filter_follows_renames_and_deletes(client):
    image = make(client, A, name='before')['id']
    response = client.http.put('/v1/images/%s' % image,
                               headers=dict(A, **{'x-image-meta-name': 'after'}))
    assert response.status_code == 200
    assert ids(client, A, name='before') == []
    assert ids(client, A, name='after') == [image]
    response = client.http.put('/v1/images/%s' % image,
                               headers=dict(A, **{'x-image-meta-name': ''}))
    assert response.status_code == 200
    assert ids(client, A, name='after') == []
    assert ids(client, A, name='') == []   # unnamed (None): the visible set path
    assert ids(client, A) == [image]
    client.http.put('/v1/images/%s' % image, headers=dict(A, **{'x-image-meta-name': 'x'}))
    assert ids(client, A, name='x') == [image]
    delete(client, A, image)
    assert ids(client, A, name='x') == []


@pytest.mark.slow
def test_name_filter_pages_through_many_namesakes(client):
    visible = []
    for i in range(23):
        visible.append(make(client, A, name='twin')['id'])
        make(client, B, name='twin')   # private to tenant-b
        make(client, A, name='not-twin')
        if i % 4 == 0:
            shared = make(client, B, name='twin')['id']
            share(client, B, shared, 'tenant-a')
            visible.append(shared)
    newest_first = visible[::-1]
    for limit in (1, 4, 7, 29, 30):
        collected, pages = page_through(client, A, limit, name='twin')
        assert collected == newest_first, limit
        assert pages == len(visible) // limit + 1
    collected, _ = page_through(client, A, 5, detail=True, name='twin', sort_dir='asc')
    assert collected == visible
    assert ids(client, A, name='twin') == newest_first[:25]
    # a marker need not bear the name: the page continues after it in created order
    unrelated = make(client, A, name='not-twin')['id']
    assert ids(client, A, name='twin', marker=unrelated, limit=3) == newest_first[:3]
    assert ids(client, A, name='twin', marker=visible[5], sort_dir='asc', limit=100) \
        == visible[6:]


def test_name_filter_values_the_index_cannot_hold(client):
    longest = make(client, A, name='\u00e9' * 255)['id']
    assert ids(client, A, name='\u00e9' * 255) == [longest]
    assert ids(client, A, name='x' * 3000) == []          # longer than a key: no index read
    assert ids(client, A, name='in:%s,%s' % ('\u00e9' * 255, 'y' * 2100)) == [longest]
    make(client, A, name='')
    assert ids(client, A, name='in:,%s' % ('\u00e9' * 255)) == [longest]
    assert ids(client, A, name='in:') == []


def test_reindex_brings_images_written_before_an_index_into_it(client):
    """`make deploy` runs ImageCatalog.reindex() after the stack: images saved before
    name-images existed have no listed_name until rewritten; nothing else changes."""
    from chalicelib.storage.catalog import ImageCatalog
    from chalicelib.storage.models import ImageModel
    older, current = make(client, A, name='old')['id'], make(client, A, name='new')['id']
    ImageModel.get(older).update(actions=[ImageModel.listed_name.remove()])  # as then
    assert ids(client, A, name='old') == []
    before = client.http.request('HEAD', '/v1/images/%s' % older, headers=A).headers

    assert ImageCatalog().reindex() == 1
    assert ids(client, A, name='old') == [older] and ids(client, A, name='new') == [current]
    after = client.http.request('HEAD', '/v1/images/%s' % older, headers=A).headers
    assert {k: v for k, v in after.items() if k.startswith('x-image-meta')} == {
        k: v for k, v in before.items() if k.startswith('x-image-meta')}
    assert ImageCatalog().reindex() == 0


# -- changes-since reads the caller's sets (public, own, memberships) by update time --------
SINCE = {'changes-since': '2013-01-01'}


@pytest.fixture
def changes_world(client):
    """Live, killed and deleted images of three tenants, public and private, shared,
    shared then deleted, shared then unshared, owner-less."""
    made = {
        'a_priv': make(client, A, name='a_priv')['id'],
        'a_pub': make(client, ADMIN, name='a_pub', owner='tenant-a', is_public='true')['id'],
        'a_killed': killed(client, A, name='a_killed'),
        'a_deleted': make(client, A, name='a_deleted')['id'],
        'a_for_b': make(client, A, name='a_for_b')['id'],
        'b_priv': make(client, B, name='b_priv')['id'],
        'b_shared': make(client, B, name='b_shared')['id'],
        'b_shared_killed': killed(client, B, name='b_shared_killed'),
        'b_shared_deleted': make(client, B, name='b_shared_deleted')['id'],
        'b_unshared': make(client, B, name='b_unshared')['id'],
        'b_pub_shared': make(client, ADMIN, name='b_pub_shared', owner='tenant-b',
                             is_public='true')['id'],
        'b_pub_deleted': make(client, ADMIN, name='b_pub_deleted', owner='tenant-b',
                              is_public='true')['id'],
        'c_pub_killed': killed(client, ADMIN, name='c_pub_killed', owner='tenant-c',
                               is_public='true'),
        'c_deleted': make(client, C, name='c_deleted')['id'],
        'orphan': make(client, ADMIN, name='orphan', owner='')['id'],
    }
    share(client, A, made['a_for_b'], 'tenant-b')
    for name in ('b_shared', 'b_shared_killed', 'b_shared_deleted', 'b_unshared',
                 'b_pub_shared'):
        share(client, B, made[name], 'tenant-a')
    share(client, ADMIN, made['orphan'], 'tenant-c')
    unshared = client.http.delete('/v1/images/%s/members/tenant-a' % made['b_unshared'],
                                  headers=B)
    assert unshared.status_code == 204
    # touched after its membership went: still not tenant-a's
    assert client.http.put('/v1/images/%s' % made['b_unshared'], headers=dict(
        B, **{'x-image-meta-name': 'b_unshared2'})).status_code == 200
    delete(client, A, made['a_deleted'])
    delete(client, B, made['b_shared_deleted'])
    delete(client, ADMIN, made['b_pub_deleted'])
    delete(client, C, made['c_deleted'])
    return made


def test_changes_since_lists_each_tenants_sets_with_deleted_and_killed(client, changes_world):
    public = {'a_pub', 'b_pub_shared', 'b_pub_deleted', 'c_pub_killed'}
    expected = [
        (A, public | {'a_priv', 'a_killed', 'a_deleted', 'a_for_b', 'b_shared',
                      'b_shared_killed'}),
        (B, public | {'b_priv', 'b_shared', 'b_shared_killed', 'b_shared_deleted',
                      'b_unshared', 'a_for_b'}),
        (C, public | {'c_deleted', 'orphan'}),
        ({'X-Identity-Status': 'Confirmed', 'X-Roles': 'member'}, public),
        (ADMIN, public),   # an admin without is_public lists as its own tenant
    ]
    for identity, wanted in expected:
        found = id_set(client, identity, **SINCE)
        assert found == names(changes_world, *wanted), identity
        assert {i['id'] for i in detail_of(client, identity, **SINCE)} == found
    everything = set(changes_world.values())
    assert id_set(client, ADMIN, is_public='none', **SINCE) == everything
    assert id_set(client, ADMIN, is_public='false', **SINCE) == everything - names(
        changes_world, *public)
    # the records behind the sets: deleted ones say so, killed ones too
    shown = {i['id']: i for i in detail_of(client, A, **SINCE)}
    assert shown[changes_world['b_pub_deleted']]['deleted'] is True
    assert shown[changes_world['c_pub_killed']]['status'] == 'killed'
    assert shown[changes_world['a_priv']]['deleted'] is False


def test_changes_since_sets_follow_the_update_time(client, changes_world):
    updated = {i['id']: i['updated_at']
               for i in detail_of(client, ADMIN, is_public='none', **SINCE)}
    latest = max(updated.values())
    assert id_set(client, A, **{'changes-since': latest}) == set()
    # a change to a shared, an own and a foreign private image: only the first two
    for identity, name in ((B, 'b_shared'), (A, 'a_priv'), (C, 'c_deleted')):
        client.http.put('/v1/images/%s' % changes_world[name],
                        headers=dict(identity, **{'x-image-meta-property-k': 'v'}))
    assert id_set(client, A, **{'changes-since': latest}) == names(
        changes_world, 'b_shared', 'a_priv')
    assert id_set(client, C, **{'changes-since': latest}) == set()  # c_deleted: refused


def test_changes_since_follows_visibility_changes(client):
    image = make(client, B, name='moving')['id']
    assert id_set(client, A, **SINCE) == set()
    # publicizing is an admin's (policy publicize_image)
    made_public = client.http.put('/v1/images/%s' % image,
                                  headers=dict(ADMIN, **{'x-image-meta-is_public': 'true'}))
    assert made_public.status_code == 200
    assert id_set(client, A, **SINCE) == {image}
    assert client.http.put('/v1/images/%s' % image, headers=dict(
        ADMIN, **{'x-image-meta-is_public': 'false'})).status_code == 200
    assert id_set(client, A, **SINCE) == set()
    assert id_set(client, B, **SINCE) == {image}
    given = client.http.put('/v1/images/%s' % image,
                            headers=dict(ADMIN, **{'x-image-meta-owner': 'tenant-a'}))
    assert given.status_code == 200
    assert id_set(client, A, **SINCE) == {image} and id_set(client, B, **SINCE) == set()


@pytest.mark.parametrize('sort_key, sort_dir', [
    (None, None), ('created_at', 'asc'), ('updated_at', 'desc'), ('name', 'asc'),
    ('status', 'desc')])
@pytest.mark.slow
def test_changes_since_pages_with_markers(client, changes_world, sort_key, sort_dir):
    params = dict(SINCE)
    if sort_key:
        params.update(sort_key=sort_key, sort_dir=sort_dir)
    for identity, query in ((A, {}), (B, {}), (ADMIN, {'is_public': 'none'})):
        full = ids(client, identity, limit=1000, **query, **params)
        images = {i['id']: i for i in detail_of(client, identity, limit=1000, **query,
                                                 **params)}
        assert full == spec_order(images.values(), sort_key or 'created_at',
                                  sort_dir != 'asc')
        for limit in (1, 3, 4):
            collected, pages = page_through(client, identity, limit, **query, **params)
            assert collected == full, (identity, limit)
            assert pages == len(full) // limit + 1
    # a deleted or killed image is a marker like any listed one
    full = ids(client, A, limit=1000, **params)
    for name in ('a_deleted', 'b_pub_deleted', 'a_killed'):
        position = full.index(changes_world[name])
        assert ids(client, A, marker=changes_world[name], limit=1000, **params) \
            == full[position + 1:]


def test_changes_since_marker_must_be_visible(client, changes_world):
    # (an owner-less image is anyone's to show, so a marker, though listed only to members)
    for name in ('b_priv', 'c_deleted', 'b_shared_deleted', 'b_unshared'):
        assert_400(client, A, 'Invalid marker. Image could not be found.',
                   marker=changes_world[name], **SINCE)


def test_reindex_brings_images_into_the_changes_sets(client):
    """Images written before audience-changes existed have no audience: out of the
    caller's changes until `make deploy` rewrites them."""
    from chalicelib.storage.catalog import ImageCatalog
    from chalicelib.storage.models import ImageModel
    own, public = make(client, A, name='own')['id'], make(
        client, ADMIN, name='public', is_public='true')['id']
    for image in (own, public):
        ImageModel.get(image).update(actions=[ImageModel.audience.remove()])  # as then
    assert id_set(client, A, **SINCE) == set()
    assert ImageCatalog().reindex() == 2
    assert id_set(client, A, **SINCE) == {own, public}
    assert id_set(client, C, **SINCE) == {public}
    assert ImageCatalog().reindex() == 0
