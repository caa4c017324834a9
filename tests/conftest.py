"""Test set-up: the `test` stage's environment and moto before `import app`, and the
fixtures every directory shares.

chalice.test.Client only sets a stage's variables during a request, so they are
loaded here first (DESIGN §8), with fake credentials for moto.

Layout (as the code): api/ (routes, wire, identity, uploads, gateway events, the
Keystone authorizer), domain/ (rules on the in-memory stores), storage/ (the stores'
contract, DynamoDB read costs), reliability/ (faults, races, soak, fuzzing, chained
steps, invariants.py), deploy/ (templates, packages, policies, preflight, redrive,
operations), local/ (the local runtime as a process), e2e/ (real clients, own venv).
Shared helpers are in helpers.py (no test module imports another).

`client` is the one chalice.test.Client fixture: a fresh moto world per test, or in
a module marked `pytest.mark.shared_world` one world per module (`shared_client`,
creating the tables costs ~0.3 s) with the catalog emptied before each test.
`pytest.mark.slow` marks what `make check` leaves out (processes, the soak, the
fuzzer, chalice package, moto's CloudFormation, anything over ~2 s).
"""
import os
import sys

import pytest

# tests/e2e drive the running service with real clients from their own virtualenv
# (`make test` runs them separately, with --confcutdir so this file stays out).
collect_ignore = ['e2e']

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.update(AWS_ACCESS_KEY_ID='testing', AWS_SECRET_ACCESS_KEY='testing',
                  AWS_SECURITY_TOKEN='testing', AWS_SESSION_TOKEN='testing',
                  AWS_DEFAULT_REGION='us-east-1')
os.environ.pop('AWS_ENDPOINT_URL', None)

from chalicelib.local.server import load_stage_environment  # noqa: E402
from tests.helpers import PROJECT_DIR, World, wipe_catalog  # noqa: E402

load_stage_environment(PROJECT_DIR, 'test')

from moto import mock_aws  # noqa: E402

from chalicelib import composition, config  # noqa: E402


@pytest.fixture
def aws():
    """A fresh moto world with the tables and bucket, per test."""
    with mock_aws():
        from chalicelib.storage.resources import ensure_resources
        composition.reset()
        ensure_resources()
        yield
        composition.reset()


@pytest.fixture
def settings_override():
    """Change settings for one test: settings_override(image_size_cap=10)."""
    saved = []

    def apply(**changes):
        saved.append(config.override(**changes))
    yield apply
    if saved:
        config.restore(saved[0])


@pytest.fixture
def client(request):
    """chalice.test.Client on moto: a fresh world per test, or the module's
    `shared_client` (catalog emptied) in a module marked `shared_world`."""
    if request.node.get_closest_marker('shared_world'):
        shared = request.getfixturevalue('shared_client')
        wipe_catalog()
        yield shared
        return
    request.getfixturevalue('aws')
    from chalice.test import Client

    from app import app
    with Client(app, stage_name='test', project_dir=PROJECT_DIR) as test_client:
        yield test_client


@pytest.fixture(scope='module')
def shared_client():
    """One moto world (tables, bucket) and its client for a whole module."""
    with mock_aws():
        from chalicelib.storage.resources import ensure_resources
        composition.reset()
        ensure_resources()
        from chalice.test import Client

        from app import app
        with Client(app, stage_name='test', project_dir=PROJECT_DIR) as test_client:
            yield test_client
        composition.reset()


@pytest.fixture(scope='module')
def world(shared_client):
    """The bucket and the bucket-events queue of a `shared_world` module."""
    return World()


@pytest.fixture
def empty_world(client, world):
    """Before each test: the bucket and the queue emptied too (use with shared_world)."""
    world.empty()


@pytest.fixture
def handler(aws):
    """The Lambda handler (the chalice app), called with proxy events."""
    from app import app
    return app


@pytest.fixture(scope='module')
def source_server():
    """A loopback source serving tests.sources.SOURCE_DATA at /image.raw."""
    from tests.sources import serve_source
    yield from serve_source()


@pytest.fixture(scope='module')
def source():
    """A loopback source of tests.sources.COPY_SOURCE_DATA honouring Range."""
    from tests.sources import serve_copy_source
    yield from serve_copy_source()


@pytest.fixture
def atomic_aws(monkeypatch):
    """DynamoDB and S3 apply each request atomically; moto does not lock, so two
    threads can both pass one conditional write, or a GetObject can read a key that
    a DeleteObject is tearing down. Serialize moto's requests, as the real services
    behave, so that race tests test the service and not moto."""
    import threading

    from moto.core.botocore_stubber import BotocoreStubber
    lock, original = threading.RLock(), BotocoreStubber.process_request

    def atomic(self, request):
        with lock:
            return original(self, request)
    monkeypatch.setattr(BotocoreStubber, 'process_request', atomic)


@pytest.fixture(scope='module')
def runtime():
    """The local runtime as a real process in trusted-headers mode, one per module
    (its own moto: a fresh, empty catalog); stopped by PID."""
    from tests.e2e.support import LocalRuntime
    local = LocalRuntime('trusted-headers')
    local.start()
    try:
        yield local
    finally:
        local.stop()
        os.unlink(local.log.name)


@pytest.fixture(autouse=True)
def _shared_world_emptied(request):
    """Every test of a `shared_world` module starts from an empty catalog, whether it
    asks for `client` or not."""
    if request.node.get_closest_marker('shared_world'):
        request.getfixturevalue('client')
