"""Identity from OpenStack Keystone v3 tokens, for the deployed stages.

The Chalice authorizer validates the client's X-Auth-Token against Keystone with
the service's own token (as keystonemiddleware does) and passes the identity to
the views in the authorizer context. It always lets the request through: the v1
view answers 401 itself when the identity is not confirmed, so that a missing,
expired or revoked token gets Glance's 401 wherever the app runs, and 503 when
Keystone could not be asked (down, slow, 5xx, our own login refused), as
keystonemiddleware does: valid clients are not told their credentials are bad.
"""
import collections
import datetime
import hashlib
import json
import logging
import threading

import boto3
from chalice import AuthResponse

from chalicelib.config import settings

LOG = logging.getLogger(__name__)

TOKEN_HEADER = 'X-Auth-Token'
CONFIRMED = 'Confirmed'
UNAVAILABLE = 'Unavailable'   # Keystone could not say: 503, never cached
# Bounds, so that a flood of distinct tokens cannot grow a container's memory.
TOKEN_CACHE_SIZE = 10_000
# Keystone's refusals are remembered briefly: a repeated bogus token costs one call.
INVALID_CACHE_SIZE = 1_000
INVALID_CACHE_SECONDS = 10
# Seconds to reach Keystone and to get its answer; past them Keystone is unavailable.
CONNECT_TIMEOUT, READ_TIMEOUT = 3, 10


def _parse_expiry(value):
    moment = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _later(seconds):
    return _now() + datetime.timedelta(seconds=seconds)


def _cache_key(token):
    # A digest, not the token: bounded memory per entry, no bearer secret kept as is;
    # surrogatepass keeps distinct strings distinct.
    return hashlib.sha256(token.encode('utf-8', 'surrogatepass')).hexdigest()


def _ssm_client():
    current = settings()
    return boto3.client('ssm', region_name=current.region,
                        endpoint_url=current.aws_endpoint_url)


class KeystoneError(Exception):
    """Keystone could not answer (unreachable, 5xx, our login refused): nothing is cached."""


class _ExpiringLRU:
    """At most `size` entries, each until its own deadline; the least recently used go first."""

    def __init__(self, size):
        self.size = size
        self.evictions = 0
        self._entries = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= _now():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key, value, until):
        with self._lock:
            self._entries[key] = (value, until)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
                self.evictions += 1

    def __len__(self):
        return len(self._entries)


class KeystoneValidator:
    """Validates user tokens as keystonemiddleware does.

    A valid token is trusted for at most `cache_seconds` (0: every request asks
    Keystone) and never past its expiry, so a revocation takes effect within that
    time. The service password comes from `password`, or when `password_parameter`
    names an SSM SecureString, from there, read once at the first service login.
    """

    def __init__(self, url, username, password, project, domain, password_parameter=None,
                 cache_seconds=300, http=None):
        self.url = url.rstrip('/')
        self._login = (username, project, domain)
        self._password, self._password_parameter = password, password_parameter
        self.cache_seconds = cache_seconds
        self._http = http
        self._service_token = None      # (token, expires_at)
        self._login_lock = threading.Lock()
        self.valid = _ExpiringLRU(TOKEN_CACHE_SIZE)        # digest -> identity
        self.invalid = _ExpiringLRU(INVALID_CACHE_SIZE)    # digest -> True

    @property
    def http(self):
        if self._http is None:
            import urllib3
            self._http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT,
                                                                     read=READ_TIMEOUT),
                                             retries=False)
        return self._http

    def _call(self, method, path, what, **kwargs):
        import urllib3
        try:
            return self.http.request(method, self.url + path, **kwargs)
        except urllib3.exceptions.HTTPError as error:   # refused, timed out, reset
            raise KeystoneError('%s: Keystone at %s unreachable (%s)'
                                % (what, self.url, type(error).__name__)) from error

    def identity(self, token):
        """{'tenant', 'user', 'roles'} of a valid project-scoped token, or None.

        Raises KeystoneError when Keystone cannot say."""
        if not token:
            return None
        key = _cache_key(token)
        if self.invalid.get(key):
            return None
        found = self.valid.get(key)
        if found is not None:
            return found
        found, expires_at = self._validate(token)
        if found is None:
            self.invalid.put(key, True, _later(INVALID_CACHE_SECONDS))
        elif self.cache_seconds > 0:
            self.valid.put(key, found, min(expires_at, _later(self.cache_seconds)))
        return found

    def _validate(self, token, retry=True):
        """(identity, expires_at), or (None, None) when Keystone refuses the token."""
        response = self._call('GET', '/v3/auth/tokens', 'token validation', headers={
            'X-Auth-Token': self._service(), 'X-Subject-Token': token,
            'Accept': 'application/json'})
        if response.status == 401 and retry:   # our own token expired or was revoked
            self._service_token = None
            return self._validate(token, retry=False)
        if response.status == 404:             # unknown, expired, revoked, or its user,
            return None, None                  # project or domain disabled or deleted
        if response.status in (401, 403):      # the service user may not validate tokens
            raise KeystoneError(
                'token validation: Keystone answered %d to the service user %r; it needs '
                'the service or admin role in its project' % (response.status, self._login[0]))
        if response.status != 200:
            raise KeystoneError('token validation: Keystone at %s answered %d'
                                % (self.url, response.status))
        body = json.loads(response.data)['token']
        expires_at = _parse_expiry(body['expires_at'])
        project = (body.get('project') or {}).get('id')
        # Unscoped and domain-scoped tokens name no project: nothing to act as (an
        # empty owner would make images every tenant reads and none but admins delete).
        if expires_at <= _now() or not project:
            return None, None
        identity = {
            'tenant': project,
            'user': (body.get('user') or {}).get('id') or '',
            'roles': ','.join(role['name'] for role in body.get('roles') or []),
        }
        return identity, expires_at

    def _service(self):
        with self._login_lock:   # one login (and one SSM read) however many requests wait
            if self._service_token and self._service_token[1] > _now():
                return self._service_token[0]
            username, project, domain = self._login
            payload = {'auth': {
                'identity': {'methods': ['password'], 'password': {'user': {
                    'name': username, 'password': self._service_password(),
                    'domain': {'name': domain}}}},
                'scope': {'project': {'name': project, 'domain': {'name': domain}}}}}
            response = self._call('POST', '/v3/auth/tokens', 'service login',
                                  body=json.dumps(payload).encode(),
                                  headers={'Content-Type': 'application/json'})
            if response.status != 201:   # 401: GLANCE_KEYSTONE_* or the password is wrong
                raise KeystoneError(
                    'service login of user %r in project %r (domain %r) to Keystone at %s '
                    'refused: %d' % (username, project, domain, self.url, response.status))
            expires_at = _parse_expiry(json.loads(response.data)['token']['expires_at'])
            self._service_token = (response.headers['X-Subject-Token'], expires_at)
            return self._service_token[0]

    def _service_password(self):
        if self._password_parameter:   # once per container; a failed read is retried
            answer = _ssm_client().get_parameter(Name=self._password_parameter,
                                                 WithDecryption=True)
            self._password, self._password_parameter = answer['Parameter']['Value'], None
        return self._password


_validator: list[KeystoneValidator] = []


def validator():
    if not _validator:
        current = settings()
        _validator.append(KeystoneValidator(
            current.keystone_url, current.keystone_username, current.keystone_password,
            current.keystone_project, current.keystone_domain,
            password_parameter=current.keystone_password_parameter,
            cache_seconds=current.token_cache_seconds))
    return _validator[0]


def keystone_authorizer(auth_request):
    """The Chalice authorizer: the identity of the token, 'Invalid', or 'Unavailable'
    when Keystone could not be asked."""
    try:
        identity = validator().identity(auth_request.token)
    except Exception as error:  # noqa: BLE001 - nobody is confirmed, nobody refused
        # the cause, for the operator; messages name users and URLs, never the password
        LOG.warning('token not validated, identity service unavailable: %s: %s',
                    type(error).__name__, error)
        return _allow({'identity_status': UNAVAILABLE})
    context = {'identity_status': 'Invalid'}
    if identity is not None:
        context = dict(identity, identity_status=CONFIRMED)
    return _allow(context)


def _allow(context):
    return AuthResponse(routes=['*'], principal_id=context.get('user') or 'anonymous',
                        context=context)
