"""A real OpenStack Keystone on loopback, for the end-to-end tests and the local demo.

    python tools/keystone_local.py serve     # Keystone + the service in keystone mode

Keystone (pinned) and uwsgi are installed once into their own virtualenv under
~/.cache/glance-v1-keystone (GLANCE_KEYSTONE_CACHE), never into .venv nor the Lambda
package; later runs use that cache (only the package index is ever contacted). Each
start is a fresh Keystone on sqlite in a temporary folder with fernet tokens:
db_sync, fernet_setup, credential_setup, bootstrap, then, through the v3 API, the
service user `glance` (role `service` in project `service`, as keystonemiddleware
needs to validate tokens), projects `project-a` and `project-b` with one `member`
user each, the `admin` user, and an `image` service whose public endpoint is the
local runtime. Standard library only: the e2e tests import it from .venv-clients.
"""
import contextlib
import fcntl
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

KEYSTONE_VERSION = '30.0.0'
UWSGI_VERSION = '2.0.31'
LOOPBACK = '127.0.0.1'
CACHE = os.environ.get('GLANCE_KEYSTONE_CACHE') or os.path.join(
    os.path.expanduser('~'), '.cache', 'glance-v1-keystone')
START_TIMEOUT = 90
STOP_TIMEOUT = 15
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = 'RegionOne'
DOMAIN = 'Default'
ADMIN = ('admin', 'admin-secret', 'admin')                   # user, password, project
SERVICE = ('glance', 'glance-secret', 'service')
USERS = {'project-a': ('alice', 'alice-secret'), 'project-b': ('bob', 'bob-secret')}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


# -- the cached install ---------------------------------------------------------------
def venv_dir():
    return os.path.join(CACHE, 'keystone-%s-uwsgi-%s-py%d.%d' % (
        KEYSTONE_VERSION, UWSGI_VERSION, sys.version_info[0], sys.version_info[1]))


def ensure_installed(log=sys.stderr):
    """The venv's bin folder, installing Keystone and uwsgi the first time (about 45 s)."""
    if sys.version_info < (3, 10):
        raise RuntimeError('keystone %s needs Python 3.10 or later' % KEYSTONE_VERSION)
    target = venv_dir()
    stamp = os.path.join(target, '.installed')
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # parallel test sessions install once
        if not os.path.exists(stamp):
            print('installing keystone==%s and uwsgi==%s into %s (once)'
                  % (KEYSTONE_VERSION, UWSGI_VERSION, target), file=log, flush=True)
            shutil.rmtree(target, ignore_errors=True)
            subprocess.run([sys.executable, '-m', 'venv', target], check=True)
            pip = subprocess.run([os.path.join(target, 'bin', 'pip'), 'install', '--quiet',
                                  'keystone==' + KEYSTONE_VERSION, 'uwsgi==' + UWSGI_VERSION],
                                 capture_output=True, text=True)
            if pip.returncode:
                raise RuntimeError('pip install failed:\n%s' % pip.stderr[-5000:])
            with open(stamp, 'w') as done:
                done.write('keystone==%s uwsgi==%s\n' % (KEYSTONE_VERSION, UWSGI_VERSION))
    return os.path.join(target, 'bin')


# -- the v3 API, as the admin or any user -----------------------------------------------
class KeystoneError(Exception):
    def __init__(self, status, body):
        super().__init__('Keystone answered %s: %s' % (status, body[:500]))
        self.status = status


def call(url, method, path, token=None, body=None, headers=None):
    """(status, headers, json body) of one v3 call; 4xx/5xx raise KeystoneError."""
    request = urllib.request.Request(
        url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers=dict({'Content-Type': 'application/json', 'Accept': 'application/json'},
                     **({'X-Auth-Token': token} if token else {}), **(headers or {})))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read()
            return response.status, response.headers, json.loads(data) if data else None
    except urllib.error.HTTPError as error:
        raise KeystoneError(error.code, error.read().decode('utf-8', 'replace')) from None


def issue_token(url, user, password, project=None, domain=None, unscoped=False):
    """A token by password: scoped to `project` (a name), or to `domain`, or unscoped."""
    auth = {'identity': {'methods': ['password'], 'password': {'user': {
        'name': user, 'password': password, 'domain': {'name': DOMAIN}}}}}
    if project:
        auth['scope'] = {'project': {'name': project, 'domain': {'name': DOMAIN}}}
    elif domain:
        auth['scope'] = {'domain': {'name': domain}}
    elif unscoped:
        auth['scope'] = 'unscoped'
    status, headers, body = call(url, 'POST', '/v3/auth/tokens', body={'auth': auth})
    return headers['X-Subject-Token']


class Admin:
    """What the tests and the demo set up, through the v3 API with an admin token."""

    def __init__(self, url):
        self.url = url
        self.token = None

    def call(self, method, path, body=None, headers=None):
        for attempt in (1, 2):   # a fresh admin token when a short [token] expiration passed
            if self.token is None:
                self.token = issue_token(self.url, ADMIN[0], ADMIN[1], project=ADMIN[2])
            try:
                return call(self.url, method, path, self.token, body, headers)[2]
            except KeystoneError as error:
                if error.status != 401 or attempt == 2:
                    raise
                self.token = None

    def _id(self, kind, name):
        found = self.call('GET', '/v3/%s?name=%s' % (kind, name))[kind]
        return found[0]['id'] if found else None

    def domain_id(self):
        return self._id('domains', DOMAIN)

    def role_id(self, name):
        return self._id('roles', name) or self.call(
            'POST', '/v3/roles', {'role': {'name': name}})['role']['id']

    def project(self, name):
        return self._id('projects', name) or self.call('POST', '/v3/projects', {'project': {
            'name': name, 'domain_id': self.domain_id()}})['project']['id']

    def user(self, name, password, project=None, role='member'):
        """A user with `role` in `project` (both created when missing): its id."""
        user_id = self._id('users', name) or self.call('POST', '/v3/users', {'user': {
            'name': name, 'password': password, 'domain_id': self.domain_id()}})['user']['id']
        if project:
            self.call('PUT', '/v3/projects/%s/users/%s/roles/%s'
                      % (self.project(project), user_id, self.role_id(role)))
        return user_id

    def grant_on_domain(self, user_id, role='member'):
        self.call('PUT', '/v3/domains/%s/users/%s/roles/%s'
                  % (self.domain_id(), user_id, self.role_id(role)))

    def register_image_endpoint(self, image_url):
        """The catalog entry clients look up: service type `image`, public interface."""
        service = self._id('services', 'glance') or self.call('POST', '/v3/services', {
            'service': {'name': 'glance', 'type': 'image',
                        'description': 'Glance v1 API (serverless)'}})['service']['id']
        for interface in ('public', 'internal'):
            self.call('POST', '/v3/endpoints', {'endpoint': {
                'service_id': service, 'interface': interface, 'region_id': REGION,
                'url': image_url}})

    def revoke(self, token):
        self.call('DELETE', '/v3/auth/tokens', headers={'X-Subject-Token': token})

    def disable_user(self, user_id):
        self.call('PATCH', '/v3/users/%s' % user_id, {'user': {'enabled': False}})

    def delete_project(self, name):
        project_id = self.project(name)
        self.call('PATCH', '/v3/projects/%s' % project_id, {'project': {'enabled': False}})
        self.call('DELETE', '/v3/projects/%s' % project_id)


def application_credential(url, user, password, project, name):
    """(id, secret) of a new application credential of `user` in `project`."""
    token = issue_token(url, user, password, project=project)
    _, _, who = call(url, 'GET', '/v3/auth/tokens', token,
                     headers={'X-Subject-Token': token})
    body = call(url, 'POST', '/v3/users/%s/application_credentials' % who['token']['user']['id'],
                token, {'application_credential': {'name': name}})[2]
    return body['application_credential']['id'], body['application_credential']['secret']


# -- the server ------------------------------------------------------------------------
CONFIG = """[DEFAULT]
log_file = {folder}/keystone.log
[database]
connection = sqlite:///{folder}/keystone.db
[token]
provider = fernet
expiration = {expiration}
[fernet_tokens]
key_repository = {folder}/fernet-keys
[fernet_receipts]
key_repository = {folder}/fernet-keys
[credential]
key_repository = {folder}/credential-keys
"""


class LocalKeystone:
    """One Keystone under uwsgi on a free loopback port, on sqlite in a temporary folder.

    `expiration`: the [token] expiration in seconds (short, to see tokens expire)."""

    def __init__(self, expiration=3600, port=None):
        self.expiration = expiration
        self.port = port or free_port()
        self.url = 'http://%s:%d' % (LOOPBACK, self.port)
        self.folder = None
        self.process = None
        self.paused = False

    @property
    def auth_url(self):
        return self.url + '/v3'

    def _manage(self, bin_dir, *args):
        subprocess.run([os.path.join(bin_dir, 'keystone-manage'), '--config-file',
                        self.config_file] + list(args), check=True, capture_output=True)

    def setup(self):
        """Install (cached), configure and bootstrap; the server is not running yet."""
        self.bin_dir = ensure_installed()
        self.folder = tempfile.mkdtemp(prefix='glance-keystone-')
        self.config_file = os.path.join(self.folder, 'keystone.conf')
        with open(self.config_file, 'w') as config:
            config.write(CONFIG.format(folder=self.folder, expiration=self.expiration))
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        self._manage(self.bin_dir, 'db_sync')
        self._manage(self.bin_dir, 'fernet_setup', '--keystone-user', user,
                     '--keystone-group', group)
        self._manage(self.bin_dir, 'credential_setup', '--keystone-user', user,
                     '--keystone-group', group)
        self._manage(self.bin_dir, 'bootstrap', '--bootstrap-password', ADMIN[1],
                     '--bootstrap-username', ADMIN[0], '--bootstrap-project-name', ADMIN[2],
                     '--bootstrap-admin-url', self.auth_url,
                     '--bootstrap-public-url', self.auth_url,
                     '--bootstrap-internal-url', self.auth_url,
                     '--bootstrap-region-id', REGION)
        return self

    def start(self):
        """Runs uwsgi (again, after stop(), on the same port and data) until /v3 answers."""
        if self.folder is None:
            self.setup()
        self.log = open(os.path.join(self.folder, 'uwsgi.log'), 'ab')
        self.process = subprocess.Popen(
            [os.path.join(self.bin_dir, 'uwsgi'), '--http-socket',
             '%s:%d' % (LOOPBACK, self.port), '--module', 'keystone.wsgi.api:application',
             '--home', os.path.dirname(self.bin_dir), '--master', '--processes', '2',
             '--threads', '2', '--die-on-term', '--need-app', '--disable-logging',
             # uwsgi's http-socket closes every connection: say so, or clients reuse it
             '--add-header', 'Connection: close',
             '--env', 'OS_KEYSTONE_CONFIG_FILES=' + self.config_file],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('uwsgi exited with %s; see %s'
                                   % (self.process.returncode, self.log.name))
            try:
                call(self.url, 'GET', '/v3')
                return self
            except (OSError, KeystoneError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError('Keystone did not answer on %s within %d s' % (self.url, START_TIMEOUT))

    def populate(self, image_url):
        """The service user, two projects with a member each, the image endpoint."""
        admin = Admin(self.url)
        admin.user(SERVICE[0], SERVICE[1], SERVICE[2], role='service')
        for project, (user, password) in USERS.items():
            admin.user(user, password, project)
        admin.register_image_endpoint(image_url)
        return admin

    def pause(self):
        """A hung Keystone: its processes stopped, connections accepted but never answered."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        os.killpg(self.process.pid, signal.SIGCONT)
        self.paused = False

    def break_keys(self):
        """A Keystone answering 500: its fernet keys gone (it reads them at each token)."""
        keys = os.path.join(self.folder, 'fernet-keys')
        os.rename(keys, keys + '.away')

    def repair_keys(self):
        keys = os.path.join(self.folder, 'fernet-keys')
        os.rename(keys + '.away', keys)

    def stop(self):
        """SIGTERM to uwsgi's master by PID (its workers follow), SIGKILL after a grace."""
        process = self.process
        if process is not None and process.poll() is None:
            if self.paused:
                self.resume()
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
        self.process = None
        if getattr(self, 'log', None):
            self.log.close()

    def destroy(self):
        self.stop()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def service_env(self, cache_seconds=None):
        """The runtime's keystone-mode variables for this Keystone."""
        env = {'GLANCE_KEYSTONE_URL': self.url, 'GLANCE_KEYSTONE_USERNAME': SERVICE[0],
               'GLANCE_KEYSTONE_PASSWORD': SERVICE[1], 'GLANCE_KEYSTONE_PROJECT': SERVICE[2],
               'GLANCE_KEYSTONE_DOMAIN': DOMAIN}
        if cache_seconds is not None:
            env['GLANCE_TOKEN_CACHE_SECONDS'] = str(cache_seconds)
        return env

    def os_env(self, user, password, project):
        """The OS_* variables a user exports for the glance CLI and openstacksdk."""
        return {'OS_AUTH_URL': self.auth_url, 'OS_USERNAME': user, 'OS_PASSWORD': password,
                'OS_PROJECT_NAME': project, 'OS_USER_DOMAIN_NAME': DOMAIN,
                'OS_PROJECT_DOMAIN_NAME': DOMAIN, 'OS_IDENTITY_API_VERSION': '3',
                'OS_IMAGE_API_VERSION': '1', 'OS_REGION_NAME': REGION}


@contextlib.contextmanager
def running(expiration=3600):
    keystone = LocalKeystone(expiration)
    try:
        yield keystone.start()
    finally:
        keystone.destroy()


# -- make serve-keystone ---------------------------------------------------------------
def _interrupt(signum, frame):
    raise KeyboardInterrupt   # SIGTERM stops both servers like Ctrl-C


def serve():
    """Keystone and the service in keystone mode, until Ctrl-C or SIGTERM."""
    service_python = os.environ.get('GLANCE_SERVICE_PYTHON') or os.path.join(
        PROJECT_DIR, '.venv', 'bin', 'python')
    image_port = int(os.environ.get('PORT') or free_port())
    image_url = 'http://%s:%d' % (LOOPBACK, image_port)
    signal.signal(signal.SIGTERM, _interrupt)
    keystone = LocalKeystone(port=int(os.environ.get('KEYSTONE_PORT') or 0) or None)
    service = None
    try:
        keystone.start()
        keystone.populate(image_url)
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(('GLANCE_', 'AWS_', 'OS_'))}
        env.update(keystone.service_env(), PORT=str(image_port), GLANCE_AUTH_MODE='keystone',
                   GLANCE_PUBLIC_ENDPOINT=image_url, PYTHONUNBUFFERED='1')
        service = subprocess.Popen([service_python, '-m', 'chalicelib.local'],
                                   cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and service.poll() is None:
            try:
                urllib.request.urlopen(image_url + '/versions', timeout=2).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.3)
        if service.poll() is not None:
            raise RuntimeError('the service exited with %s' % service.returncode)
        user, password = USERS['project-a']
        print('\nKeystone %s on %s (data in %s); the image endpoint in its catalog: %s'
              % (KEYSTONE_VERSION, keystone.auth_url, keystone.folder, image_url))
        print('Log in as a user of project-a (project-b: bob / bob-secret; admin: '
              'admin / admin-secret in project admin):\n')
        for name, value in keystone.os_env(user, password, 'project-a').items():
            print('export %s=%s' % (name, value))
        print('\nthen: .venv-clients/bin/glance image-list   (Ctrl-C stops both)\n',
              flush=True)
        service.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if service is not None and service.poll() is None:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                service.kill()
        keystone.destroy()
        print('Keystone stopped', flush=True)


if __name__ == '__main__':
    if sys.argv[1:] == ['serve']:
        serve()
    elif sys.argv[1:] == ['install']:
        print(ensure_installed())
    else:
        sys.exit(__doc__)
