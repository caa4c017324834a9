"""Two tenants with the glance CLI: the runtime in keystone mode, tokens from a
Keystone stand-in on loopback (the CLI can only send a token, so this is how a
tenant is chosen from the command line)."""
import os

import pytest

from tests.e2e.support import LocalRuntime, parse_list_table, parse_show_table, run_glance_cli
from tests.keystone_standin import (SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER,
                                    KeystoneStandIn)


@pytest.fixture(scope='module')
def cloud():
    with KeystoneStandIn() as keystone:
        runtime = LocalRuntime('keystone', extra_env={
            'GLANCE_KEYSTONE_URL': keystone.url, 'GLANCE_KEYSTONE_USERNAME': SERVICE_USER,
            'GLANCE_KEYSTONE_PASSWORD': SERVICE_PASSWORD,
            'GLANCE_KEYSTONE_PROJECT': SERVICE_PROJECT})
        try:
            url = runtime.start()
            yield url, keystone.issue('tenant-a'), keystone.issue('tenant-b')
        finally:
            runtime.stop()
            os.unlink(runtime.log.name)


def test_share_with_another_tenant(cloud, tmp_path):
    url, token_a, token_b = cloud
    source = tmp_path / 'private.img'
    source.write_bytes(os.urandom(256 * 1024))

    def as_a(*args, **kw):
        return run_glance_cli(url, *args, token=token_a, **kw)

    def as_b(*args, **kw):
        return run_glance_cli(url, *args, token=token_b, **kw)

    image = parse_show_table(as_a('image-create', '--name', 'a-private', '--disk-format',
                                  'raw', '--container-format', 'bare', '--file',
                                  str(source)).stdout)
    assert image['owner'] == 'tenant-a' and image['is_public'] == 'False'
    hidden = as_b('image-show', image['id'], check=False)
    assert hidden.returncode != 0 and 'No image with a name or ID' in hidden.stderr

    as_a('member-create', image['id'], 'tenant-b')
    shared = parse_list_table(as_b('member-list', '--tenant-id', 'tenant-b').stdout)
    assert [(row['Image ID'], row['Member ID']) for row in shared] == [(image['id'], 'tenant-b')]
    listed = parse_list_table(as_b('image-list').stdout)
    assert image['id'] in [row['ID'] for row in listed]
    target = tmp_path / 'copy.img'
    as_b('image-download', '--file', str(target), image['id'])
    assert target.read_bytes() == source.read_bytes()

    as_a('member-delete', image['id'], 'tenant-b')
    again = as_b('image-show', image['id'], check=False)
    assert again.returncode != 0 and 'No image with a name or ID' in again.stderr
