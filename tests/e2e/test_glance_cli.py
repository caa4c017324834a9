"""The python-glanceclient CLI (`glance --os-image-api-version 1 ...`) against the runtime.

Every caller is an ownerless admin (noauth), so new images are private and ownerless
and listings need `--all-tenants` (is_public=None) to show them.
"""
import io
import os
import random

import pytest

from .support import md5_of, parse_list_table, parse_show_table, properties_of

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')

MIB = 1024 * 1024


def _random_file(path, size):
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_create_with_file_show_and_download(glance_cli, tag, tmp_path):
    source = tmp_path / 'source.img'
    data = _random_file(source, 4 * MIB + 123)
    name = tag + '-upload'

    created = parse_show_table(glance_cli(
        'image-create', '--name', name, '--disk-format', 'raw', '--container-format', 'bare',
        '--property', 'origin=e2e', '--min-ram', '64', '--file', source).stdout)

    assert created['name'] == name
    assert created['status'] == 'active'
    assert created['size'] == str(len(data))
    assert created['checksum'] == md5_of(data)
    assert created['disk_format'] == 'raw'
    assert created['container_format'] == 'bare'
    assert created['is_public'] == 'False'
    assert created['protected'] == 'False'
    assert created['owner'] == 'None'
    assert created['min_ram'] == '64'
    assert created['min_disk'] == '0'
    assert created['deleted'] == 'False'
    assert properties_of(created) == {'origin': 'e2e'}

    shown = parse_show_table(glance_cli('image-show', created['id']).stdout)
    for field in ('id', 'name', 'status', 'size', 'checksum', 'disk_format',
                  'container_format', 'is_public', 'min_ram', 'created_at'):
        assert shown[field] == created[field], field
    assert properties_of(shown) == {'origin': 'e2e'}

    target = tmp_path / 'downloaded.img'
    glance_cli('image-download', '--file', target, created['id'])  # checks the MD5 itself
    assert target.read_bytes() == data


def test_create_queued_then_upload_with_update(glance_cli, tag, tmp_path):
    source = tmp_path / 'late.img'
    data = _random_file(source, MIB + 7)

    queued = parse_show_table(glance_cli(
        'image-create', '--name', tag, '--disk-format', 'qcow2',
        '--container-format', 'bare').stdout)
    assert queued['status'] == 'queued'
    assert queued['size'] == '0'

    updated = parse_show_table(glance_cli('image-update', '--file', source,
                                          queued['id']).stdout)
    assert updated['status'] == 'active'
    assert updated['size'] == str(len(data))
    assert updated['checksum'] == md5_of(data)

    target = tmp_path / 'out.img'
    glance_cli('image-download', '--file', target, queued['id'])
    assert target.read_bytes() == data


def test_update_merges_properties_then_purges(glance_cli, gc, tag):
    image = gc.images.create(name=tag, disk_format='raw', container_format='bare',
                             properties={'a': '1', 'b': '2'})

    merged = parse_show_table(glance_cli(
        'image-update', '--property', 'c=3', '--property', 'a=10', '--name', tag + '-renamed',
        '--min-disk', '2', image.id).stdout)
    assert properties_of(merged) == {'a': '10', 'b': '2', 'c': '3'}
    assert merged['name'] == tag + '-renamed'
    assert merged['min_disk'] == '2'

    shown = parse_show_table(glance_cli('image-show', image.id).stdout)
    assert properties_of(shown) == {'a': '10', 'b': '2', 'c': '3'}
    assert shown['min_disk'] == '2'

    purged = parse_show_table(glance_cli(
        'image-update', '--purge-props', '--property', 'd=4', image.id).stdout)
    assert properties_of(purged) == {'d': '4'}
    assert purged['name'] == tag + '-renamed'  # fields are not properties
    assert gc.images.get(image.id).properties == {'d': '4'}


def _create_batch(gc, tag, count):
    """`count` images named tag-00.., created in shuffled order; returns them by name."""
    numbers = list(range(count))
    random.Random(tag).shuffle(numbers)
    images = {}
    for number in numbers:
        name = '%s-%02d' % (tag, number)
        images[name] = gc.images.create(
            name=name, disk_format='qcow2' if number % 2 else 'raw', container_format='bare',
            properties={'batch': tag, 'parity': 'odd' if number % 2 else 'even'})
    return images


def _listed(glance_cli, *args):
    return parse_list_table(glance_cli('image-list', *args).stdout)


def test_image_list_pages_and_filters(glance_cli, gc, tag):
    images = _create_batch(gc, tag, 25)
    names = sorted(images)
    batch = ('--property-filter', 'batch=' + tag)

    # Default page size 20 and default order name asc: two pages.
    rows = _listed(glance_cli, '--all-tenants', *batch)
    assert [row['Name'] for row in rows] == names
    assert [row['ID'] for row in rows] == [images[name].id for name in names]
    assert {row['Status'] for row in rows} == {'queued'}
    assert {row['Container Format'] for row in rows} == {'bare'}
    assert rows[0]['Disk Format'] == 'raw' and rows[1]['Disk Format'] == 'qcow2'

    # Many small pages, both directions.
    rows = _listed(glance_cli, '--all-tenants', '--page-size', '5', *batch)
    assert [row['Name'] for row in rows] == names
    rows = _listed(glance_cli, '--all-tenants', '--page-size', '7', '--sort-key', 'name',
                   '--sort-dir', 'desc', *batch)
    assert [row['Name'] for row in rows] == names[::-1]

    # A non-unique sort key: the marker must still page through every image once.
    rows = _listed(glance_cli, '--all-tenants', '--page-size', '4', '--sort-key',
                   'disk_format', '--sort-dir', 'asc', *batch)
    assert sorted(row['Name'] for row in rows) == names
    assert [row['Disk Format'] for row in rows] == ['qcow2'] * 12 + ['raw'] * 13

    # Filters.
    rows = _listed(glance_cli, '--all-tenants', '--name', names[7])
    assert [row['ID'] for row in rows] == [images[names[7]].id]
    rows = _listed(glance_cli, '--all-tenants', '--disk-format', 'qcow2', '--sort-key',
                   'name', '--sort-dir', 'asc', *batch)
    assert [row['Name'] for row in rows] == names[1::2]
    rows = _listed(glance_cli, '--all-tenants', '--property-filter', 'parity=even',
                   '--page-size', '6', *batch)
    assert [row['Name'] for row in rows] == names[0::2]
    rows = _listed(glance_cli, '--all-tenants', '--container-format', 'ovf', *batch)
    assert rows == []

    # Without --all-tenants a noauth caller sees only public images: none of these.
    rows = _listed(glance_cli, *batch)
    assert rows == []


def test_image_delete(glance_cli, gc, tag):
    image = gc.images.create(name=tag, disk_format='raw', container_format='bare',
                             data=io.BytesIO(b'x' * 1000))
    kept = gc.images.create(name=tag + '-kept', disk_format='raw', container_format='bare')
    assert image.status == 'active'

    deleted = glance_cli('image-delete', image.id)
    assert deleted.stdout.strip() == ''

    shown = parse_show_table(glance_cli('image-show', image.id).stdout)  # admins see it
    assert shown['status'] == 'deleted'
    assert shown['deleted'] == 'True'
    assert shown['deleted_at'] != 'None'

    rows = _listed(glance_cli, '--all-tenants', '--name', tag)
    assert rows == []
    rows = _listed(glance_cli, '--all-tenants', '--name', tag + '-kept')
    assert [row['ID'] for row in rows] == [kept.id]

    again = glance_cli('image-delete', image.id, check=False)
    assert again.returncode == 1
    assert "No image with an ID of '%s' exists." % image.id in again.stderr


def test_image_show_unknown(glance_cli):
    unknown = '6bcdb9d5-0d34-4b41-9e26-c0f8b6df1f1e'
    result = glance_cli('image-show', unknown, check=False)
    assert result.returncode == 1
    assert "No image with a name or ID of '%s' exists." % unknown in result.stderr


def test_upload_with_wrong_checksum_kills_the_image(glance_cli, gc, tag, tmp_path):
    source = tmp_path / 'bad.img'
    data = _random_file(source, 300 * 1024)
    wrong = '0' * 32

    result = glance_cli('image-create', '--name', tag, '--disk-format', 'raw',
                        '--container-format', 'bare', '--checksum', wrong, '--file', source,
                        check=False)
    assert result.returncode == 1
    assert result.stdout.strip() == ''
    assert 'HTTP 400 Bad Request' in result.stderr
    assert ('Supplied checksum (%s) and checksum generated from uploaded image (%s) did '
            'not match.' % (wrong, md5_of(data))) in result.stderr

    # Killed images are left out of listings, except with changes-since.
    assert _listed(glance_cli, '--all-tenants', '--name', tag) == []
    rows = _listed(glance_cli, '--all-tenants', '--name', tag, '--changes-since',
                   '2000-01-01T00:00:00')
    assert [(row['Name'], row['Status']) for row in rows] == [(tag, 'killed')]
    killed = gc.images.get(rows[0]['ID'])
    assert killed.status == 'killed' and killed.checksum == wrong


def test_error_message_quotes_are_html_escaped(glance_cli, tag, tmp_path):
    source = tmp_path / 'small.img'
    _random_file(source, 1000)
    result = glance_cli('image-create', '--name', tag, '--disk-format', 'raw',
                        '--container-format', 'bare', '--size', '5', '--file', source,
                        check=False)
    assert result.returncode == 1
    assert ('HTTP 400 Bad Request: Supplied size (5) and size generated from uploaded image '
            "(1000) did not match. Setting image status to &#x27;killed&#x27;.") in result.stderr

    result = glance_cli('image-create', '--name', tag, '--disk-format', 'ami',
                        '--container-format', 'bare', check=False)
    assert result.returncode == 1
    assert ("one of &#x27;aki&#x27;, &#x27;ari&#x27;, or &#x27;ami&#x27;, the container and "
            "disk formats must match.") in result.stderr


def test_protected_image_cannot_be_deleted(glance_cli, tag):
    created = parse_show_table(glance_cli(
        'image-create', '--name', tag, '--disk-format', 'raw', '--container-format', 'bare',
        '--is-protected', 'True').stdout)
    assert created['protected'] == 'True'

    refused = glance_cli('image-delete', created['id'])  # the CLI reports, exits 0
    assert refused.stdout.strip() == ('HTTP 403 Forbidden: Image is protected: '
                                      'Unable to delete image %s' % created['id'])
    assert parse_show_table(glance_cli('image-show', created['id']).stdout)['status'] == 'queued'

    updated = parse_show_table(glance_cli('image-update', '--is-protected', 'False',
                                          created['id']).stdout)
    assert updated['protected'] == 'False'
    glance_cli('image-delete', created['id'])
    assert parse_show_table(glance_cli('image-show', created['id']).stdout)['status'] == 'deleted'


def test_members(glance_cli, gc, tag):
    image = gc.images.create(name=tag, disk_format='raw', container_format='bare')
    tenant_a, tenant_b = tag + '-a', tag + '-b'

    assert glance_cli('member-create', image.id, tenant_a).stdout.strip() == ''
    glance_cli('member-create', '--can-share', image.id, tenant_b)
    rows = parse_list_table(glance_cli('member-list', '--image-id', image.id).stdout)
    assert sorted((row['Image ID'], row['Member ID'], row['Can Share']) for row in rows) == [
        (image.id, tenant_a, ''), (image.id, tenant_b, 'True')]
    rows = parse_list_table(glance_cli('member-list', '--tenant-id', tenant_b).stdout)
    assert [(row['Image ID'], row['Can Share']) for row in rows] == [(image.id, 'True')]

    glance_cli('member-delete', image.id, tenant_a)
    rows = parse_list_table(glance_cli('member-list', '--image-id', image.id).stdout)
    assert [row['Member ID'] for row in rows] == [tenant_b]
    again = glance_cli('member-delete', image.id, tenant_a, check=False)
    assert again.returncode == 1
    assert 'HTTP 404 Not Found: Membership could not be found.' in again.stderr
