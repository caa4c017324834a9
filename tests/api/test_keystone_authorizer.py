"""Deployed-stage identity: Keystone tokens through the Chalice authorizer.

A Keystone stand-in answers on loopback; the app is built in `keystone` mode,
where client-sent identity headers must change nothing.
"""
import datetime
import logging

import boto3
import pytest
from chalice.test import Client

from app import create_app
from chalicelib import config
from chalicelib.api import keystone
from tests.helpers import (PROJECT_DIR, body_json, meta_headers, stored_image_ids,
                           stored_object_keys)
from tests.keystone_standin import (SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER,
                                    KeystoneStandIn)

# a Keystone stand-in over HTTP, and cache windows that pass in real time
pytestmark = pytest.mark.slow


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
        assert response.headers['WWW-Authenticate'] == 'Keystone uri="%s"' % standin.url


def _assert_identity_unavailable(response):
    """keystonemiddleware's answer when Keystone cannot be asked: 503, not 401 or 500."""
    assert response.status_code == 503
    assert response.headers['Retry-After'] == '5'
    assert 'The identity service is unavailable; try again later.' in \
        response.body.decode()
    assert 'WWW-Authenticate' not in response.headers


def test_keystone_unreachable_is_503_not_401(cloud, standin, settings_override):
    settings_override(keystone_url='http://127.0.0.1:9')
    keystone._validator.clear()
    response = cloud.http.get('/v1/images', headers={'X-Auth-Token': standin.issue('p')})
    _assert_identity_unavailable(response)
    created = _create(cloud, standin.issue('p'))
    _assert_identity_unavailable(created)
    assert stored_image_ids() == [] and stored_object_keys() == []


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


# --- Safe by default: bounded caches, scoped tokens only, the password from SSM ---

PASSWORD_PARAMETER = '/glance-v1/test/keystone-password'


@pytest.fixture
def clock(monkeypatch):
    """The validator's clock, moved forward by hand (the stand-in keeps real time)."""
    real_now, offset = keystone._now, []

    def advance(seconds):
        offset.append(seconds)
    monkeypatch.setattr(keystone, '_now', lambda: real_now() + datetime.timedelta(
        seconds=sum(offset)))
    return advance


def _get(client, token):
    return client.http.get('/v1/images', headers={'X-Auth-Token': token}).status_code


def test_revoked_token_is_refused_once_the_cache_time_passed(cloud, standin, clock,
                                                             settings_override):
    settings_override(token_cache_seconds=60)
    token = standin.issue('project-a')
    assert _get(cloud, token) == 200
    standin.revoked.add(token)
    assert _get(cloud, token) == 200          # still trusted from the cache
    assert standin.validations == 1
    clock(61)
    assert _get(cloud, token) == 401
    assert standin.validations == 2


def test_token_is_not_trusted_past_its_expiry_whatever_the_cache_time(
        cloud, standin, clock, settings_override):
    settings_override(token_cache_seconds=3600)
    token = standin.issue('project-a', lifetime=30)
    assert _get(cloud, token) == 200
    clock(31)
    assert _get(cloud, token) == 401
    assert standin.validations == 2           # asked again, not answered from the cache


def test_cache_off_refuses_a_revoked_token_at_once(cloud, standin, settings_override):
    settings_override(token_cache_seconds=0)
    token = standin.issue('project-a')
    assert _get(cloud, token) == 200
    assert _get(cloud, token) == 200
    standin.revoked.add(token)
    assert _get(cloud, token) == 401
    assert _create(cloud, token).status_code == 401
    assert standin.validations == 3           # every request asked Keystone
    assert stored_image_ids() == [] and stored_object_keys() == []
    assert len(keystone.validator().valid) == 0


def test_token_cache_is_a_bounded_lru(cloud, standin, monkeypatch):
    monkeypatch.setattr(keystone, 'TOKEN_CACHE_SIZE', 2)
    a, b, c = (standin.issue('project-a') for _ in range(3))
    for token in (a, b, a, c, a, b):          # c pushes out b (a was used since)
        assert _get(cloud, token) == 200
    assert standin.validations == 4           # a, b, c, then b again
    cache = keystone.validator().valid
    assert (len(cache), cache.evictions) == (2, 2)


def test_repeated_bogus_token_costs_one_keystone_call(cloud, standin, clock):
    revoked = standin.issue('project-a')
    standin.revoked.add(revoked)
    for _ in range(20):
        assert _get(cloud, 'bogus-token') == 401
        assert _get(cloud, revoked) == 401
    assert standin.validations == 2
    clock(keystone.INVALID_CACHE_SECONDS + 1)  # remembered only briefly
    assert _get(cloud, 'bogus-token') == 401
    assert standin.validations == 3


def test_negative_cache_is_bounded(cloud, standin, monkeypatch):
    monkeypatch.setattr(keystone, 'INVALID_CACHE_SIZE', 3)
    for number in range(5):
        assert _get(cloud, 'bogus-%d' % number) == 401
    cache = keystone.validator().invalid
    assert (len(cache), cache.evictions) == (3, 2)
    assert _get(cloud, 'bogus-0') == 401      # pushed out: asked again
    assert standin.validations == 6


@pytest.mark.parametrize('status', [500, 502, 503, 403])
def test_keystone_in_trouble_is_cached_neither_way(cloud, standin, status, caplog):
    token = standin.issue('project-a')
    standin.failing = status       # 403: the service user lacks the role to validate
    with caplog.at_level(logging.WARNING):
        assert [_get(cloud, token) for _ in range(3)] == [503, 503, 503]
    assert 'answered %d' % status in caplog.text
    assert standin.validations == 3
    standin.failing = None
    assert _get(cloud, token) == 200          # not remembered as invalid
    cache = keystone.validator()
    assert (len(cache.valid), len(cache.invalid)) == (1, 0)


def test_keystone_unreachable_caches_nothing(cloud, standin, settings_override):
    settings_override(keystone_url='http://127.0.0.1:9')
    keystone._validator.clear()
    token = standin.issue('project-a')
    assert _get(cloud, token) == 503
    assert _get(cloud, 'bogus-token') == 503   # nobody is refused while Keystone is away
    cache = keystone.validator()
    assert (len(cache.valid), len(cache.invalid)) == (0, 0)


def test_slow_keystone_is_503_then_recovers(cloud, standin, monkeypatch, caplog):
    monkeypatch.setattr(keystone, 'READ_TIMEOUT', 0.3)
    token = standin.issue('project-a')
    standin.delay = 1
    with caplog.at_level(logging.WARNING):
        response = cloud.http.get('/v1/images', headers={'X-Auth-Token': token})
    _assert_identity_unavailable(response)
    assert 'unreachable (ReadTimeoutError)' in caplog.text
    standin.delay = 0
    assert _get(cloud, token) == 200          # by itself, nothing remembered
    assert standin.validations == 2


@pytest.mark.parametrize('scope', ['unscoped', 'domain'])
def test_token_without_a_project_is_401_and_writes_nothing(cloud, standin, scope):
    token = standin.issue(None, domain='Default' if scope == 'domain' else None)
    response = _create(cloud, token)
    assert response.status_code == 401
    assert response.headers['WWW-Authenticate'] == 'Keystone uri="%s"' % standin.url
    assert _get(cloud, token) == 401
    assert stored_image_ids() == [] and stored_object_keys() == []
    assert standin.validations == 1           # a definite answer: remembered as refused


@pytest.fixture
def ssm_calls(monkeypatch):
    """The GetParameter calls of the validator's SSM clients, with their parameters."""
    calls, build = [], keystone._ssm_client

    def counted():
        client = build()
        client.meta.events.register('before-parameter-build.ssm.GetParameter',
                                    lambda params, **_: calls.append(dict(params)))
        return client
    monkeypatch.setattr(keystone, '_ssm_client', counted)
    return calls


def test_service_password_is_read_from_ssm_once(cloud, standin, settings_override,
                                                ssm_calls):
    boto3.client('ssm', region_name='us-east-1').put_parameter(
        Name=PASSWORD_PARAMETER, Value=SERVICE_PASSWORD, Type='SecureString')
    settings_override(keystone_password=None, keystone_password_parameter=PASSWORD_PARAMETER)
    keystone._validator.clear()
    assert _get(cloud, standin.issue('project-a')) == 200
    standin.service_tokens.clear()            # our service token revoked: log in again
    assert _get(cloud, standin.issue('project-b')) == 200
    assert standin.logins == 2
    assert ssm_calls == [{'Name': PASSWORD_PARAMETER, 'WithDecryption': True}]


def test_missing_password_parameter_is_401_then_read_once_it_exists(
        cloud, standin, settings_override, ssm_calls):
    settings_override(keystone_password=None, keystone_password_parameter=PASSWORD_PARAMETER)
    keystone._validator.clear()
    token = standin.issue('project-a')
    assert _get(cloud, token) == 503          # not a 500 nor a 401, and not remembered
    boto3.client('ssm', region_name='us-east-1').put_parameter(
        Name=PASSWORD_PARAMETER, Value=SERVICE_PASSWORD, Type='SecureString')
    assert _get(cloud, token) == 200
    assert _get(cloud, token) == 200
    assert (len(ssm_calls), standin.logins) == (2, 1)


def test_the_service_password_is_never_logged(cloud, standin, settings_override, caplog):
    settings_override(keystone_password='wrong-password-1f3a')
    keystone._validator.clear()
    with caplog.at_level(logging.DEBUG):
        assert _get(cloud, standin.issue('project-a')) == 503
    # the cause, for the operator: who logged in where, and Keystone's answer
    assert ("KeystoneError: service login of user 'glance' in project 'service' (domain "
            "'Default') to Keystone at %s refused: 401" % standin.url) in caplog.text
    assert 'wrong-password-1f3a' not in caplog.text


def test_deployed_stage_refuses_a_plain_text_keystone_password():
    env = {'AWS_LAMBDA_FUNCTION_NAME': 'glance-v1-prod', 'GLANCE_AUTH_MODE': 'keystone'}
    with pytest.raises(ValueError, match='GLANCE_KEYSTONE_PASSWORD_PARAMETER'):
        config.from_environ(dict(env, GLANCE_KEYSTONE_PASSWORD='secret'))
    deployed = config.from_environ(dict(env, GLANCE_KEYSTONE_PASSWORD_PARAMETER='/p'))
    assert (deployed.keystone_password, deployed.keystone_password_parameter) == (None, '/p')
    local = config.from_environ({'GLANCE_AUTH_MODE': 'keystone',
                                 'GLANCE_KEYSTONE_PASSWORD': 'secret'})
    assert local.keystone_password == 'secret'


def test_token_cache_time_setting():
    assert config.from_environ({}).token_cache_seconds == 300
    assert config.from_environ({'GLANCE_TOKEN_CACHE_SECONDS': '0'}).token_cache_seconds == 0
