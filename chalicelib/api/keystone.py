"""Identity from OpenStack Keystone v3 tokens, for the deployed stages.

The Chalice authorizer validates the client's X-Auth-Token against Keystone with
the service's own token (as keystonemiddleware does) and passes the identity to
the views in the authorizer context. It always lets the request through: the v1
view answers 401 itself when the identity is not confirmed, so that a missing,
expired or revoked token gets Glance's 401 wherever the app runs.
"""
import datetime
import json
import threading

from chalice import AuthResponse

from chalicelib.config import settings

TOKEN_HEADER = 'X-Auth-Token'
CONFIRMED = 'Confirmed'


def _parse_expiry(value):
    moment = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class KeystoneError(Exception):
    pass


class KeystoneValidator:
    """Validates user tokens; results are cached for the token's lifetime."""

    def __init__(self, url, username, password, project, domain, http=None):
        self.url = url.rstrip('/')
        self._credentials = (username, password, project, domain)
        self._http = http
        self._service_token = None      # (token, expires_at)
        self._cache = {}                # user token -> (identity or None, expires_at)
        self._lock = threading.Lock()

    @property
    def http(self):
        if self._http is None:
            import urllib3
            self._http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3, read=10),
                                             retries=False)
        return self._http

    def identity(self, token):
        """{'tenant', 'user', 'roles'} of a valid token, or None."""
        if not token:
            return None
        with self._lock:
            cached = self._cache.get(token)
        if cached and cached[1] > _now():
            return cached[0]
        found, expires_at = self._validate(token)
        if found is not None:
            with self._lock:
                self._cache[token] = (found, expires_at)
        return found

    def _validate(self, token, retry=True):
        response = self.http.request('GET', self.url + '/v3/auth/tokens', headers={
            'X-Auth-Token': self._service(), 'X-Subject-Token': token,
            'Accept': 'application/json'})
        if response.status == 401 and retry:   # our own token expired or was revoked
            self._service_token = None
            return self._validate(token, retry=False)
        if response.status != 200:
            return None, None
        body = json.loads(response.data)['token']
        expires_at = _parse_expiry(body['expires_at'])
        if expires_at <= _now():
            return None, None
        identity = {
            'tenant': (body.get('project') or {}).get('id') or '',
            'user': (body.get('user') or {}).get('id') or '',
            'roles': ','.join(role['name'] for role in body.get('roles') or []),
        }
        return identity, expires_at

    def _service(self):
        if self._service_token and self._service_token[1] > _now():
            return self._service_token[0]
        username, password, project, domain = self._credentials
        payload = {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': username, 'password': password, 'domain': {'name': domain}}}},
            'scope': {'project': {'name': project, 'domain': {'name': domain}}}}}
        response = self.http.request('POST', self.url + '/v3/auth/tokens',
                                     body=json.dumps(payload).encode(),
                                     headers={'Content-Type': 'application/json'})
        if response.status != 201:
            raise KeystoneError('service login to Keystone failed: %d' % response.status)
        expires_at = _parse_expiry(json.loads(response.data)['token']['expires_at'])
        self._service_token = (response.headers['X-Subject-Token'], expires_at)
        return self._service_token[0]


_validator = []


def validator():
    if not _validator:
        current = settings()
        _validator.append(KeystoneValidator(
            current.keystone_url, current.keystone_username, current.keystone_password,
            current.keystone_project, current.keystone_domain))
    return _validator[0]


def keystone_authorizer(auth_request):
    """The Chalice authorizer: the identity of the token, or 'Invalid'."""
    try:
        identity = validator().identity(auth_request.token)
    except Exception:  # noqa: BLE001 - Keystone unreachable: nobody is confirmed
        identity = None
    context = {'identity_status': 'Invalid'}
    if identity is not None:
        context = dict(identity, identity_status=CONFIRMED)
    return AuthResponse(routes=['*'], principal_id=context.get('user') or 'anonymous',
                        context=context)
