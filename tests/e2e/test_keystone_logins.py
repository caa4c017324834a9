"""Logins as users do them, against a real Keystone and the runtime in keystone mode.

The clients get a user name, a password (or an application credential) and the auth
URL, and find the image endpoint in Keystone's catalog: no --os-image-url, no token.
"""
import os

import openstack
import pytest

from tests.e2e.keystone_cloud import keystone_cloud
from tests.e2e.support import md5_of, parse_list_table, parse_show_table, run_glance
from tools.keystone_local import ADMIN, DOMAIN, REGION, USERS, application_credential

pytestmark = [pytest.mark.filterwarnings('ignore::DeprecationWarning'),
              pytest.mark.filterwarnings('ignore::Warning:openstack')]


@pytest.fixture(scope='module')
def cloud():
    with keystone_cloud() as (keystone, admin, [runtime]):
        yield keystone, admin, runtime.base_url


def _flags(keystone, user, password, project):
    return ['--os-auth-url', keystone.auth_url, '--os-username', user,
            '--os-password', password, '--os-project-name', project,
            '--os-user-domain-name', DOMAIN, '--os-project-domain-name', DOMAIN]


def test_glance_cli_password_login_and_sharing(cloud, tmp_path):
    keystone, admin, _ = cloud
    alice = _flags(keystone, *USERS['project-a'], 'project-a')
    bob_env = keystone.os_env(*USERS['project-b'], 'project-b')   # the same as OS_* variables
    project_a, project_b = admin.project('project-a'), admin.project('project-b')
    data = os.urandom(300 * 1024)
    source = tmp_path / 'shared.img'
    source.write_bytes(data)

    shared = parse_show_table(run_glance(*alice, 'image-create', '--name', 'shared',
                                         '--disk-format', 'raw', '--container-format', 'bare',
                                         '--file', source).stdout)
    private = parse_show_table(run_glance(*alice, 'image-create', '--name', 'private',
                                          '--disk-format', 'raw', '--container-format', 'bare',
                                          '--file', source).stdout)
    assert (shared['owner'], shared['is_public'], shared['checksum']) == \
        (project_a, 'False', md5_of(data))
    listed = {row['ID'] for row in parse_list_table(run_glance(*alice, 'image-list').stdout)}
    assert {shared['id'], private['id']} <= listed
    copy = tmp_path / 'copy.img'
    run_glance(*alice, 'image-download', '--file', copy, shared['id'])
    assert md5_of(copy.read_bytes()) == md5_of(data)

    bobs = parse_list_table(run_glance('image-list', env=bob_env).stdout)
    assert {row['ID'] for row in bobs} & {shared['id'], private['id']} == set()
    run_glance(*alice, 'member-create', shared['id'], project_b)
    bobs = parse_list_table(run_glance('image-list', env=bob_env).stdout)
    assert [row['ID'] for row in bobs if row['ID'] in (shared['id'], private['id'])] == \
        [shared['id']]                                   # the shared one only
    bob_copy = tmp_path / 'bob.img'
    run_glance('image-download', '--file', bob_copy, shared['id'], env=bob_env)
    assert md5_of(bob_copy.read_bytes()) == md5_of(data)
    hidden = run_glance('image-show', private['id'], env=bob_env, check=False)
    assert hidden.returncode != 0 and 'No image with a name or ID' in hidden.stderr
    refused = run_glance('image-delete', shared['id'], env=bob_env, check=False)
    assert 'HTTP 403 Forbidden' in refused.stdout + refused.stderr   # a member, not the owner
    assert parse_show_table(run_glance(*alice, 'image-show', shared['id']).stdout)[
        'status'] == 'active'


def test_wrong_password_is_refused_by_keystone(cloud):
    keystone, _, _ = cloud
    result = run_glance(*_flags(keystone, 'alice', 'not-her-password', 'project-a'),
                        'image-list', check=False)
    assert result.returncode != 0 and '401' in result.stderr


def test_admin_publicizes_and_sets_an_owner(cloud, tmp_path):
    keystone, admin, _ = cloud
    as_admin = keystone.os_env(ADMIN[0], ADMIN[1], ADMIN[2])
    alice = keystone.os_env(*USERS['project-a'], 'project-a')
    project_b = admin.project('project-b')
    source = tmp_path / 'public.img'
    source.write_bytes(b'public bytes')
    denied = run_glance('image-create', '--name', 'alice-public', '--disk-format', 'raw',
                        '--container-format', 'bare', '--is-public', 'True', '--file', source,
                        env=alice, check=False)
    assert denied.returncode != 0 and '403' in denied.stderr   # publicize_image: admin only
    image = parse_show_table(run_glance(
        'image-create', '--name', 'admin-public', '--disk-format', 'raw',
        '--container-format', 'bare', '--is-public', 'True', '--file', source,
        env=as_admin).stdout)
    assert image['is_public'] == 'True'
    updated = parse_show_table(run_glance('image-update', '--owner', project_b, image['id'],
                                          env=as_admin).stdout)
    assert updated['owner'] == project_b
    seen = {row['ID'] for row in parse_list_table(run_glance('image-list', env=alice).stdout)}
    assert image['id'] in seen                           # public: every project sees it


def _clouds_yaml(tmp_path, monkeypatch, name, auth_type, auth):
    path = tmp_path / 'clouds.yaml'
    lines = ['clouds:', '  %s:' % name, '    auth_type: %s' % auth_type, '    auth:']
    lines += ['      %s: %s' % item for item in auth.items()]
    lines += ['    region_name: %s' % REGION, '    image_api_version: "1"',
              '    identity_api_version: 3']
    path.write_text('\n'.join(lines) + '\n')
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(path))
    for variable in [v for v in os.environ if v.startswith('OS_') and v != 'OS_CLIENT_CONFIG_FILE']:
        monkeypatch.delenv(variable)
    return openstack.connect(cloud=name)


def _share_one_image(keystone, tmp_path, name):
    data = os.urandom(64 * 1024)
    source = tmp_path / (name + '.img')
    source.write_bytes(data)
    image = parse_show_table(run_glance(
        'image-create', '--name', name, '--disk-format', 'raw', '--container-format', 'bare',
        '--file', source, env=keystone.os_env(*USERS['project-a'], 'project-a')).stdout)
    return image['id'], data


def _list_and_download(conn, image_id, data):
    assert image_id in [image.id for image in conn.image.images()]
    # the v1 proxy cannot download (its download is v2's); its session can, at the
    # endpoint it took from the catalog
    response = conn.image.get('/images/%s' % image_id)
    assert response.status_code == 200 and md5_of(response.content) == md5_of(data)
    assert conn.image.get_endpoint().rstrip('/').endswith('/v1')


def test_openstacksdk_clouds_yaml_password(cloud, tmp_path, monkeypatch):
    keystone, _, _ = cloud
    image_id, data = _share_one_image(keystone, tmp_path, 'sdk-password')
    user, password = USERS['project-a']
    conn = _clouds_yaml(tmp_path, monkeypatch, 'glance-a', 'password', {
        'auth_url': keystone.auth_url, 'username': user, 'password': password,
        'project_name': 'project-a', 'user_domain_name': DOMAIN,
        'project_domain_name': DOMAIN})
    _list_and_download(conn, image_id, data)


def test_openstacksdk_application_credential(cloud, tmp_path, monkeypatch):
    keystone, _, _ = cloud
    image_id, data = _share_one_image(keystone, tmp_path, 'sdk-appcred')
    credential_id, secret = application_credential(
        keystone.url, *USERS['project-a'], 'project-a', 'glance-e2e')
    conn = _clouds_yaml(tmp_path, monkeypatch, 'glance-appcred', 'v3applicationcredential', {
        'auth_url': keystone.auth_url, 'application_credential_id': credential_id,
        'application_credential_secret': secret})
    _list_and_download(conn, image_id, data)
    assert conn.current_project_id == cloud[1].project('project-a')
