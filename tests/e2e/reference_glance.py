"""The reference Glance 15.0.2 (v1 and v2 APIs) as a running source, for the tests that
replicate a real catalog.

`reference_glance` (session scoped) installs it with the kit's setup.sh (idempotent, about
a minute the first time, cached afterwards) into a home of its own outside the checkout
(REPLICATE_REFERENCE_HOME, default ~/.cache/reference-glance-replicate), starts its
`headers` stack (identity from X-* headers) on free loopback ports with an empty catalog
(start.sh --reset) and stops it by stop.sh, which kills only the PIDs that home saved.
The kit is found at ../shared/reference-glance beside the checkout (REFERENCE_GLANCE_KIT).
"""
import contextlib
import os
import subprocess

import pytest

from .support import PROJECT_DIR, free_port

KIT = os.environ.get('REFERENCE_GLANCE_KIT', os.path.join(
    os.path.dirname(PROJECT_DIR), 'shared', 'reference-glance'))
HOME = os.environ.get('REPLICATE_REFERENCE_HOME',
                      os.path.expanduser('~/.cache/reference-glance-replicate'))
SETUP_TIMEOUT = 600


class Reference:
    def __init__(self, url, home):
        self.url, self.home = url, home

    def image_file(self, image_id):
        """Where the file store keeps an image's bytes."""
        return os.path.join(self.home, 'images', image_id)


def _run(script, *args, env, timeout=120):
    return subprocess.run([os.path.join(KIT, script)] + list(args), env=env, cwd=KIT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


@contextlib.contextmanager
def running_reference():
    """Set up (idempotent), start with an empty catalog on free ports, stop -> Reference.
    Raises SkipReference when this machine has no CPython 3.6 for it."""
    ports = set()
    while len(ports) < 4:
        ports.add(free_port())
    api, api_registry, noauth, noauth_registry = sorted(ports)
    env = dict(os.environ, REFERENCE_GLANCE_HOME=HOME,
               REFERENCE_GLANCE_HEADERS_PORT=str(api),
               REFERENCE_GLANCE_HEADERS_REGISTRY_PORT=str(api_registry),
               REFERENCE_GLANCE_NOAUTH_PORT=str(noauth),
               REFERENCE_GLANCE_NOAUTH_REGISTRY_PORT=str(noauth_registry))
    setup = _run('setup.sh', env=env, timeout=SETUP_TIMEOUT)
    if setup.returncode != 0:
        output = setup.stdout + setup.stderr
        if 'Python 3.6' in output or 'python3.6' in output:
            raise SkipReference('the reference Glance needs a CPython 3.6: ' + output[-500:])
        raise RuntimeError('reference setup.sh failed:\n' + output[-3000:])
    _run('stop.sh', 'headers', env=env)  # a server an aborted session left behind
    started = _run('start.sh', '--reset', 'headers', env=env)
    try:
        if started.returncode != 0:
            raise RuntimeError('reference start.sh failed:\n'
                               + (started.stdout + started.stderr)[-3000:])
        yield Reference('http://127.0.0.1:%d' % api, HOME)
    finally:
        _run('stop.sh', 'headers', env=env)


class SkipReference(Exception):
    """The reference cannot be installed on this machine."""


@pytest.fixture(scope='session')
def reference_glance():
    if not os.path.isfile(os.path.join(KIT, 'setup.sh')):
        pytest.skip('the reference Glance kit is not at %s (REFERENCE_GLANCE_KIT)' % KIT)
    try:
        with running_reference() as reference:
            yield reference
    except SkipReference as reason:
        pytest.skip(str(reason))
