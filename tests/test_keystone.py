"""Deployed-stage identity: Keystone tokens through the Chalice authorizer.

A Keystone stand-in answers on loopback; the app is built in `keystone` mode,
where client-sent identity headers must change nothing.
"""
import pytest
from chalice.test import Client

from app import create_app
from chalicelib import config
from chalicelib.api import keystone
from tests.conftest import PROJECT_DIR
from tests.helpers import body_json, meta_headers
from tests.keystone_standin import (SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER,
                                    KeystoneStandIn)


@pytest.fixture
def standin():
    with KeystoneStandIn() as running:
        yield running


class _IdentitySourceHTTP:
    """chalice's local gateway reads an authorizer's token from `Authorization`
    whatever header the authorizer names; API Gateway reads X-Auth-Token, so
    hand the local gateway the same value (and only that)."""

    def __init__(self, http):
        self._http = http

    def request(self, method, path, headers=None, body=b''):
        headers = dict(headers or {})
        token = {k.lower(): v for k, v in headers.items()}.get('x-auth-token')
        headers.pop('Authorization', None)
        if token is not None:
            headers['Authorization'] = token
        return self._http.request(method, path, headers=headers, body=body)

    def get(self, path, **kwargs):
        return self.request('GET', path, **kwargs)

    def post(self, path, **kwargs):
        return self.request('POST', path, **kwargs)


class _CloudClient:
    def __init__(self, client):
        self.http = _IdentitySourceHTTP(client.http)


@pytest.fixture
def cloud(aws, standin, settings_override):
    settings_override(auth_mode='keystone', keystone_url=standin.url,
                      keystone_username=SERVICE_USER, keystone_password=SERVICE_PASSWORD,
                      keystone_project=SERVICE_PROJECT)
    keystone._validator.clear()
    with Client(create_app(), stage_name='test', project_dir=PROJECT_DIR) as client:
        yield _CloudClient(client)
    keystone._validator.clear()


def _create(client, token, **extra):
    headers = dict({'X-Auth-Token': token}, **meta_headers(name='img', disk_format='raw',
                                                             container_format='bare'))
    headers.update(extra)
    return client.http.post('/v1/images', headers=headers)


def test_valid_token_acts_as_its_project(cloud, standin):
    token = standin.issue('project-a')
    response = _create(cloud, token)
    assert response.status_code == 201
    assert body_json(response)['image']['owner'] == 'project-a'


def test_validation_is_cached_for_the_token_lifetime(cloud, standin):
    token = standin.issue('project-a')
    for _ in range(3):
        assert cloud.http.get('/v1/images', headers={'X-Auth-Token': token}).status_code == 200
    assert standin.validations == 1


@pytest.mark.parametrize('token_kind', ['missing', 'unknown', 'expired', 'revoked'])
def test_bad_tokens_get_401(cloud, standin, token_kind):
    headers = {}
    if token_kind == 'unknown':
        headers['X-Auth-Token'] = 'not-a-token'
    elif token_kind == 'expired':
        headers['X-Auth-Token'] = standin.issue('project-a', lifetime=-10)
    elif token_kind == 'revoked':
        headers['X-Auth-Token'] = standin.issue('project-a')
        standin.revoked.add(headers['X-Auth-Token'])
    response = cloud.http.get('/v1/images', headers=headers)
    assert response.status_code == 401
    if token_kind != 'missing':  # a missing token never reaches the app (API Gateway 401)
        assert response.headers['WWW-Authenticate'] == "Keystone uri='%s'" % standin.url


def test_keystone_unreachable_is_401_not_500(cloud, standin, settings_override):
    settings_override(keystone_url='http://127.0.0.1:9')
    keystone._validator.clear()
    response = cloud.http.get('/v1/images', headers={'X-Auth-Token': standin.issue('p')})
    assert response.status_code == 401


def test_version_discovery_needs_no_token(cloud):
    assert cloud.http.get('/versions').status_code == 200


@pytest.mark.parametrize('forged', [
    {'X-Tenant-Id': 'project-b'},
    {'X-Project-Id': 'project-b'},
    {'X-Roles': 'admin'},
    {'X-Identity-Status': 'Confirmed'},
])
def test_forged_identity_headers_change_nothing(cloud, standin, forged):
    token = standin.issue('project-a', roles=('member',))
    if 'X-Identity-Status' in forged:  # without a valid token, still 401
        assert cloud.http.get('/v1/images', headers=forged).status_code == 401
        return
    response = _create(cloud, token, **forged)
    assert response.status_code == 201
    assert body_json(response)['image']['owner'] == 'project-a'
    # a member may not publicize, whatever X-Roles says
    public = _create(cloud, token, **dict(forged, **{'x-image-meta-is_public': 'true'}))
    assert public.status_code == 403


def test_wrong_project_token_cannot_see_other_projects_images(cloud, standin):
    created = _create(cloud, standin.issue('project-a'))
    image_id = body_json(created)['image']['id']
    other = standin.issue('project-b')
    response = cloud.http.request('HEAD', '/v1/images/%s' % image_id,
                                  headers={'X-Auth-Token': other, 'X-Tenant-Id': 'project-a'})
    assert response.status_code == 404


def test_admin_role_from_keystone(cloud, standin):
    token = standin.issue('project-admin', roles=('Admin',))
    response = _create(cloud, token, **{'x-image-meta-is_public': 'true'})
    assert response.status_code == 201


def test_deployed_stage_refuses_unverified_modes():
    env = {'AWS_LAMBDA_FUNCTION_NAME': 'glance-v1-prod', 'GLANCE_AUTH_MODE': 'noauth'}
    with pytest.raises(ValueError):
        config.from_environ(env)
    with pytest.raises(ValueError):
        config.from_environ(dict(env, GLANCE_AUTH_MODE='trusted-headers'))
    assert config.from_environ(dict(env, GLANCE_AUTH_MODE='keystone')).auth_mode == 'keystone'
