"""The servers a bench group measures: our local runtime and, when it is set up on
this machine, the reference Glance v1 (noauth stack). Both on 127.0.0.1 only; we
stop only what we started (the runtime by its PID, the reference with its stop.sh,
and only if it was not already running)."""
import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from bench.report import PROJECT_DIR

REFERENCE_KIT = os.environ.get('REFERENCE_GLANCE_KIT', '/work/shared/reference-glance')
REFERENCE_PORT = int(os.environ.get('REFERENCE_GLANCE_NOAUTH_PORT', '19292'))
REFERENCE_URL = 'http://127.0.0.1:%d' % REFERENCE_PORT


@contextlib.contextmanager
def local_runtime(auth_mode='noauth', extra_env=None):
    """A `python -m chalicelib.local` of our own -> the LocalRuntime (base_url,
    aws_endpoint)."""
    import sys
    sys.path.insert(0, PROJECT_DIR)
    from tests.e2e.support import LocalRuntime
    runtime = LocalRuntime(auth_mode, extra_env=extra_env)
    try:
        runtime.start()
        yield runtime
    finally:
        runtime.stop()
        try:
            os.unlink(runtime.log.name)
        except OSError:
            pass


def local_setting(name):
    """A variable of the `local` stage (.chalice/config.json), as the runtime sees it."""
    with open(os.path.join(PROJECT_DIR, '.chalice', 'config.json'), encoding='utf-8') as f:
        config = json.load(f)
    stage = config['stages']['local'].get('environment_variables', {})
    return stage.get(name, config['environment_variables'].get(name))


def aws_endpoint(runtime, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return runtime.aws_endpoint
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def reference_home():
    return os.environ.get('REFERENCE_GLANCE_HOME',
                          os.path.join(os.path.expanduser('~'), '.cache', 'reference-glance'))


def reference_status():
    """(True, '') when the reference can be used, else (False, why not)."""
    if not os.path.isfile(os.path.join(REFERENCE_KIT, 'start.sh')):
        return False, 'no reference kit at %s' % REFERENCE_KIT
    if not os.access(os.path.join(reference_home(), 'venv', 'bin', 'glance-api'), os.X_OK):
        return False, 'reference Glance not set up (%s/setup.sh; home %s)' % (
            REFERENCE_KIT, reference_home())
    return True, ''


def _reference_answers():
    try:
        with urllib.request.urlopen(REFERENCE_URL + '/versions', timeout=2):
            return True
    except urllib.error.HTTPError:
        return True   # any HTTP answer: a server is there
    except OSError:
        return False


_started = []   # the reference while a reference_glance() of ours holds it


@contextlib.contextmanager
def reference_glance():
    """-> (base URL or None, a line saying what happened)."""
    usable, why = reference_status()
    if not usable:
        yield None, 'reference Glance skipped: %s' % why
        return
    if _reference_answers():
        yield REFERENCE_URL, 'reference Glance 15.0.2 (noauth) %s at %s' % (
            'started by this bench run' if _started else 'already running (left running)',
            REFERENCE_URL)
        return
    started = subprocess.run([os.path.join(REFERENCE_KIT, 'start.sh'), 'noauth'],
                             capture_output=True, text=True, timeout=180)
    if started.returncode != 0 or not _reference_answers():
        yield None, 'reference Glance skipped: start.sh noauth failed: %s' % (
            (started.stdout + started.stderr).strip()[-500:])
        return
    _started.append(REFERENCE_URL)
    try:
        yield REFERENCE_URL, 'reference Glance 15.0.2 (noauth) started by this bench run at %s' \
            % REFERENCE_URL
    finally:
        _started.remove(REFERENCE_URL)
        subprocess.run([os.path.join(REFERENCE_KIT, 'stop.sh'), 'noauth'],
                       capture_output=True, timeout=60)

