"""In keystone mode the local runtime answers a missing or bad token as keystonemiddleware
does, and as the deployed stages' gateway responses do: 401, `WWW-Authenticate: Keystone
uri="<auth url>"`, the body in the service's error format."""
import json
import os

import pytest
import requests

from chalicelib.api import common
from tests.e2e.support import LocalRuntime
from tests.keystone_standin import (SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER,
                                    KeystoneStandIn)

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def keystone_runtime():
    with KeystoneStandIn() as standin:
        local = LocalRuntime('keystone', extra_env={
            'GLANCE_KEYSTONE_URL': standin.url, 'GLANCE_KEYSTONE_USERNAME': SERVICE_USER,
            'GLANCE_KEYSTONE_PASSWORD': SERVICE_PASSWORD,
            'GLANCE_KEYSTONE_PROJECT': SERVICE_PROJECT})
        local.start()
        try:
            yield local, standin
        finally:
            local.stop()
            os.unlink(local.log.name)


@pytest.mark.parametrize('token', [None, 'not-a-token'])
def test_a_missing_or_bad_token_is_keystonemiddlewares_401(keystone_runtime, token):
    local, standin = keystone_runtime
    headers = {'Accept': 'application/json'}
    if token:
        headers['X-Auth-Token'] = token
    response = requests.get(local.base_url + '/v1/images', headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.headers['WWW-Authenticate'] == 'Keystone uri="%s"' % standin.url
    assert response.headers['Content-Type'] == 'application/json'
    assert json.loads(response.text) == {
        'message': common.UNAUTHORIZED + '<br /><br />\n\n\n',
        'code': '401 Unauthorized', 'title': 'Unauthorized'}
    plain = requests.post(local.base_url + '/v1/images', timeout=30,
                          headers=dict(headers, Accept='text/plain'))
    assert plain.status_code == 401
    assert plain.text.startswith('401 Unauthorized\n\nThis server could not verify')
    assert plain.headers['WWW-Authenticate'] == 'Keystone uri="%s"' % standin.url


def test_a_good_token_still_gets_in(keystone_runtime):
    local, standin = keystone_runtime
    response = requests.get(local.base_url + '/v1/images', timeout=30,
                            headers={'X-Auth-Token': standin.issue('project-a')})
    assert response.status_code == 200, response.text
    assert response.json() == {'images': []}
