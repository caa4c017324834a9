"""Helpers of the end-to-end tests: the runtime process, the glance CLI, table parsing."""
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOOPBACK = '127.0.0.1'
START_TIMEOUT = 60
STOP_TIMEOUT = 10
CLI_TIMEOUT = 120
GLANCE_SCRIPT = os.path.join(os.path.dirname(sys.executable), 'glance')
# The service runs from its own virtualenv (`make test` says which python).
SERVICE_PYTHON = os.environ.get('GLANCE_SERVICE_PYTHON', sys.executable)


# -- the runtime as a subprocess --------------------------------------------------------
def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _child_environment(port, auth_mode, extra=None):
    env = {name: value for name, value in os.environ.items()
           # the unit tests' conftest puts the `test` stage and moto settings here
           if not name.startswith(('GLANCE_', 'AWS_'))}
    env.update(PORT=str(port), GLANCE_AUTH_MODE=auth_mode, PYTHONUNBUFFERED='1')
    env.update(extra or {})
    return env


def _answers_versions(base_url):
    try:
        with urllib.request.urlopen(base_url + '/versions', timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as error:
        return error.code == 200
    except (OSError, ValueError):
        return False


class LocalRuntime:
    """One `python -m chalicelib.local` process."""

    def __init__(self, auth_mode, extra_env=None):
        self.auth_mode = auth_mode
        self.extra_env = extra_env
        self.port = free_port()
        self.base_url = 'http://%s:%d' % (LOOPBACK, self.port)
        self.log = tempfile.NamedTemporaryFile(
            prefix='glance-e2e-%s-' % auth_mode, suffix='.log', delete=False)
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [SERVICE_PYTHON, '-m', 'chalicelib.local'], cwd=PROJECT_DIR,
            env=_child_environment(self.port, self.auth_mode, self.extra_env),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError('the local runtime exited with %s:\n%s'
                                   % (self.process.returncode, self.output()))
            if _answers_versions(self.base_url):
                return self.base_url
            time.sleep(0.2)
        self.stop()
        raise RuntimeError('the local runtime did not answer GET /versions within %d s:\n%s'
                           % (START_TIMEOUT, self.output()))

    def stop(self):
        """SIGTERM by PID, then SIGKILL after a grace period."""
        process = self.process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
        self.log.close()

    @property
    def aws_endpoint(self):
        """The AWS endpoint (the embedded moto server) the runtime prints at start."""
        import re
        match = re.search(r'AWS at (http://[0-9.:]+)', self.output_from_start())
        if match is None:
            raise RuntimeError('the runtime did not say where its AWS is:\n' + self.output())
        return match.group(1)

    def output_from_start(self):
        with open(self.log.name, encoding='utf-8', errors='replace') as log:
            return log.read(20000)

    def output(self):
        try:
            with open(self.log.name, encoding='utf-8', errors='replace') as log:
                return log.read()[-5000:]
        except OSError:
            return ''


def make_runtime(auth_mode, override_variable):
    """Generator for a fixture: the URL of a started runtime (or of E2E_* override)."""
    override = os.environ.get(override_variable)
    if override:
        yield override.rstrip('/')
        return
    runtime = LocalRuntime(auth_mode)
    try:
        yield runtime.start()
    finally:
        runtime.stop()
        os.unlink(runtime.log.name)


# -- clients -----------------------------------------------------------------------------
def identity_headers(tenant, roles='member', user='e2e-user'):
    return {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': tenant,
            'X-User-Id': user, 'X-Roles': roles}


class CliResult:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def __repr__(self):
        return 'CliResult(rc=%r, stdout=%r, stderr=%r)' % (
            self.returncode, self.stdout[-2000:], self.stderr[-2000:])


def run_glance_cli(base_url, *args, check=True, token='e2e-token'):
    """`glance --os-image-api-version 1 ... <args>` with a terminal on stdin.

    The v1 CLI reads image data from stdin whenever stdin is not a tty, so stdin is
    the slave side of a pseudo-terminal.
    """
    return run_glance('--os-image-url', base_url, '--os-auth-token', token, *args, check=check)


def run_glance(*args, check=True, env=None):
    """`glance --os-image-api-version 1 <args>`, with `env` (OS_* logins) added."""
    command = [GLANCE_SCRIPT, '--os-image-api-version', '1'] + [str(arg) for arg in args]
    master, slave = os.openpty()
    try:
        completed = subprocess.run(command, stdin=slave, capture_output=True,
                                   timeout=CLI_TIMEOUT, cwd=tempfile.gettempdir(),
                                   env=dict(os.environ, COLUMNS='250', **(env or {})))
    finally:
        os.close(slave)
        os.close(master)
    result = CliResult(completed.returncode, completed.stdout.decode('utf-8', 'replace'),
                       completed.stderr.decode('utf-8', 'replace'))
    if check and result.returncode != 0:
        raise AssertionError('glance %s failed: %r' % (' '.join(map(str, args)), result))
    return result


# -- prettytable output ------------------------------------------------------------------
def _table_rows(output):
    return [[cell.strip() for cell in line.strip()[1:-1].split('|')]
            for line in output.splitlines() if line.strip().startswith('|')]


def parse_show_table(output):
    """A `Property | Value` table -> {property: value}; `Property 'k'` -> 'property:k'."""
    rows = _table_rows(output)
    assert rows and rows[0] == ['Property', 'Value'], output
    fields = {}
    for name, value in rows[1:]:
        if name.startswith("Property '") and name.endswith("'"):
            name = 'property:' + name[len("Property '"):-1]
        fields[name] = value
    return fields


def parse_list_table(output):
    """An image-list table -> [{column: value}] in output order."""
    rows = _table_rows(output)
    if not rows:
        return []
    header = rows[0]
    return [dict(zip(header, row)) for row in rows[1:]]


def properties_of(fields):
    return {name[len('property:'):]: value for name, value in fields.items()
            if name.startswith('property:')}


def md5_of(data):
    return hashlib.md5(data).hexdigest()
