"""Test set-up: the `test` stage's environment and moto before `import app`.

chalice.test.Client only sets a stage's variables during a request, so they are
loaded here first (DESIGN §8), with fake credentials for moto.
"""
import os
import sys

import pytest

# tests/e2e drive the running service with real clients from their own virtualenv
# (`make test` runs them separately, with --confcutdir so this file stays out).
collect_ignore = ['e2e']

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PROJECT_DIR)

os.environ.update(AWS_ACCESS_KEY_ID='testing', AWS_SECRET_ACCESS_KEY='testing',
                  AWS_SECURITY_TOKEN='testing', AWS_SESSION_TOKEN='testing',
                  AWS_DEFAULT_REGION='us-east-1')
os.environ.pop('AWS_ENDPOINT_URL', None)

from chalicelib.local.server import load_stage_environment  # noqa: E402

load_stage_environment(PROJECT_DIR, 'test')

from moto import mock_aws  # noqa: E402

from chalicelib import config  # noqa: E402
from chalicelib.api import common  # noqa: E402


@pytest.fixture
def aws():
    """A fresh moto world with the tables and bucket, per test."""
    with mock_aws():
        from chalicelib.storage.resources import ensure_resources
        common._services.clear()
        ensure_resources()
        yield
        common._services.clear()


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
def client(aws):
    from chalice.test import Client

    from app import app
    with Client(app, stage_name='test', project_dir=PROJECT_DIR) as test_client:
        yield test_client


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
