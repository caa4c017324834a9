"""glance_replicate into the runtime in keystone mode: the target's identity is a Keystone
v3 password login taken from OS_TARGET_* variables, and the password is never printed."""
import json
import os
import subprocess
import sys
import uuid

import pytest
import requests

from tests.e2e.keystone_cloud import keystone_cloud
from tools.keystone_local import ADMIN as KEYSTONE_ADMIN, DOMAIN, issue_token

from .reference_glance import reference_glance  # noqa: F401 (a fixture)
from .support import PROJECT_DIR
from .test_replicate import seed

pytestmark = pytest.mark.timeout(300)


def test_copy_into_a_keystone_target(reference_glance):  # noqa: F811
    tenant = 'k-%s' % uuid.uuid4().hex[:8]
    ids = sorted(seed(reference_glance.url, tenant, 'k-%d' % n, os.urandom(500 + n),
                      members=['project-a'] if n == 0 else ()) for n in range(3))
    user, password, project = KEYSTONE_ADMIN
    with keystone_cloud() as (keystone, _, [runtime]):
        env = dict(os.environ, OS_TARGET_AUTH_URL=keystone.auth_url, OS_TARGET_USERNAME=user,
                   OS_TARGET_PASSWORD=password, OS_TARGET_PROJECT_NAME=project,
                   OS_TARGET_USER_DOMAIN_NAME=DOMAIN, OS_TARGET_PROJECT_DOMAIN_NAME=DOMAIN)

        def replicate(command):
            return subprocess.run(
                [sys.executable, '-m', 'glance_replicate', command, reference_glance.url,
                 runtime.base_url, '--json', '--tenant', tenant, '--source-api-version', '1',
                 '--source-trusted-tenant', 'replicator'],
                cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120)
        copied = replicate('copy')
        assert copied.returncode == 0, copied.stderr
        assert sorted(json.loads(copied.stdout)['created']) == ids
        compared = replicate('compare')
        assert compared.returncode == 0 and json.loads(compared.stdout)['in_sync']
        for output in (copied, compared):
            assert password not in output.stdout + output.stderr

        token = issue_token(keystone.url, user, password, project=project)
        image = requests.head('%s/v1/images/%s' % (runtime.base_url, ids[0]),
                              headers={'X-Auth-Token': token}, timeout=30)
        assert (image.headers['x-image-meta-owner'], image.headers['x-image-meta-status']) \
            == (tenant, 'active')

        env['OS_TARGET_PASSWORD'] = 'wrong'
        refused = replicate('compare')
        assert refused.returncode == 1
        assert 'refused the login: HTTP 401' in refused.stderr and 'wrong' not in refused.stderr
