"""End-to-end fixtures: the local runtime as a real process, driven over real HTTP.

`glance_url` starts `python -m chalicelib.local` (GLANCE_AUTH_MODE=noauth) once per
session on a free loopback port; `glance_headers_url` starts a second one with
GLANCE_AUTH_MODE=trusted-headers.  Each start is a fresh, empty catalog (the runtime
embeds its own moto server).

To check that a test asserts the reference behaviour, point the suite at the
reference Glance instead of starting the runtime:

    E2E_GLANCE_URL=http://127.0.0.1:19292 E2E_GLANCE_HEADERS_URL=http://127.0.0.1:19293 \
        .venv/bin/python -m pytest tests/e2e -q
"""
import uuid

import pytest

from .support import make_runtime, run_glance_cli


@pytest.fixture(scope='session')
def glance_url():
    """Base URL (no /v1) of a runtime in noauth mode: every caller is an ownerless admin."""
    yield from make_runtime('noauth', 'E2E_GLANCE_URL')


@pytest.fixture(scope='session')
def glance_headers_url():
    """Base URL of a runtime in trusted-headers mode (identity from X-* headers)."""
    yield from make_runtime('trusted-headers', 'E2E_GLANCE_HEADERS_URL')


@pytest.fixture
def tag():
    """A unique marker for the images of one test (the catalog is shared per session)."""
    return 'e2e-%s' % uuid.uuid4().hex[:12]


@pytest.fixture
def gc(glance_url):
    """python-glanceclient's v1 client on the noauth runtime."""
    import glanceclient
    return glanceclient.Client('1', endpoint=glance_url, token='e2e-token')


@pytest.fixture
def glance_cli(glance_url):
    def run(*args, check=True):
        return run_glance_cli(glance_url, *args, check=check)
    return run
