"""The two sides: who we are on each (Keystone v3 or plain identity headers) and what
is read from them. The source speaks Glance v1 or v2; the target is this service (v1).

Every image is read into one shape, the v1 record: id, name, status, disk_format,
container_format, size, checksum, min_disk, min_ram, protected, owner, is_public,
properties, plus `hash` ((os_hash_algo, os_hash_value) when a v2 source has one).
"""
import requests
from requests.adapters import HTTPAdapter

from glance_upload.api import ApiError, Glance

PAGE = 100
# v2 image keys that are not custom properties (v1 has a column, or nothing, for them)
V2_CORE = frozenset((
    'id', 'name', 'status', 'visibility', 'protected', 'checksum', 'owner', 'size',
    'virtual_size', 'min_ram', 'min_disk', 'container_format', 'disk_format', 'created_at',
    'updated_at', 'tags', 'self', 'file', 'schema', 'direct_url', 'locations',
    'os_hash_algo', 'os_hash_value', 'os_hidden', 'stores'))


class AuthError(Exception):
    """Keystone refused us, or answered something we cannot use."""


class Identity:
    """How one side is called: a Keystone v3 token (password or token method, renewed
    when it expires), a given token, or plain headers (trusted-headers deployments)."""

    def __init__(self, headers=None, auth_url=None, username=None, user_id=None,
                 password=None, token=None, project_name=None, project_id=None,
                 user_domain_name='Default', project_domain_name='Default'):
        self.headers = dict(headers or {})
        self.auth_url = auth_url
        self.username, self.user_id, self.password, self.token = \
            username, user_id, password, token
        self.project_name, self.project_id = project_name, project_id
        self.user_domain_name, self.project_domain_name = user_domain_name, project_domain_name

    @property
    def renewable(self):
        return bool(self.auth_url and (self.password or self.token))

    def request_headers(self):
        """Headers for the API, logging in to Keystone first when it is configured."""
        headers = dict(self.headers)
        if self.renewable:
            headers['X-Auth-Token'] = self.login()
        elif self.token:
            headers['X-Auth-Token'] = self.token
        return headers

    def login(self):
        if self.password:
            user = {'password': self.password}
            if self.user_id:
                user['id'] = self.user_id
            else:
                user.update(name=self.username, domain={'name': self.user_domain_name})
            identity = {'methods': ['password'], 'password': {'user': user}}
        else:
            identity = {'methods': ['token'], 'token': {'id': self.token}}
        body = {'auth': {'identity': identity}}
        if self.project_id:
            body['auth']['scope'] = {'project': {'id': self.project_id}}
        elif self.project_name:
            body['auth']['scope'] = {'project': {'name': self.project_name,
                                                 'domain': {'name': self.project_domain_name}}}
        url = self.auth_url.rstrip('/')
        if not url.endswith('/v3'):
            url += '/v3'
        try:
            response = requests.post(url + '/auth/tokens', json=body, timeout=(10, 60))
        except requests.RequestException as error:
            raise AuthError('Keystone at %s cannot be reached: %s' % (url, error)) from None
        token = response.headers.get('X-Subject-Token')
        if response.status_code != 201 or not token:
            # never the request body: it holds the password
            raise AuthError('Keystone at %s refused the login: HTTP %d'
                            % (url, response.status_code))
        return token


class Endpoint(Glance):
    """A Glance API at one version, renewing a Keystone token once on a 401."""

    def __init__(self, url, identity, version=1, pool=16):
        root = url.rstrip('/')
        for suffix in ('/v1', '/v2'):
            if root.endswith(suffix):
                root = root[:-len(suffix)]
        super().__init__(root, identity.request_headers())
        self.root, self.version, self.identity = root, version, identity
        self.base = '%s/v%d' % (root, version)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool)  # one per worker
        self.session.mount('http://', adapter)
        self.session.mount('https://', adapter)

    def at_version(self, version):
        other = Endpoint.__new__(Endpoint)
        other.__dict__.update(self.__dict__)
        other.version, other.base = version, '%s/v%d' % (self.root, version)
        return other

    def call(self, method, path, expect=(200,), **kwargs):
        try:
            return super().call(method, path, expect, **kwargs)
        except ApiError as error:
            if error.status != 401 or not self.identity.renewable:
                raise
        self.session.headers['X-Auth-Token'] = self.identity.login()
        return super().call(method, path, expect, **kwargs)


def _int(value):
    return int(value) if value not in (None, '') else 0


def v1_record(image):
    return {
        'id': image['id'], 'name': image.get('name'), 'status': image.get('status'),
        'disk_format': image.get('disk_format'),
        'container_format': image.get('container_format'),
        'size': _int(image.get('size')), 'checksum': image.get('checksum'),
        'min_disk': _int(image.get('min_disk')), 'min_ram': _int(image.get('min_ram')),
        'protected': bool(image.get('protected')), 'owner': image.get('owner'),
        'is_public': bool(image.get('is_public')),
        'properties': dict(image.get('properties') or {}), 'hash': None}


def v2_record(image):
    properties = {name: value if isinstance(value, str) else str(value)
                  for name, value in image.items()
                  if name not in V2_CORE and value is not None}
    record = v1_record(dict(image, properties=properties))
    # v1 has only public and private: shared, community and private are all private
    record['is_public'] = image.get('visibility') == 'public'
    record['visibility'] = image.get('visibility')
    if image.get('os_hash_algo') and image.get('os_hash_value'):
        record['hash'] = (image['os_hash_algo'], image['os_hash_value'])
    return record


class V1Catalog:
    """The images and members of a v1 API, seen by an admin (every tenant)."""
    version = 1

    def __init__(self, endpoint):
        self.api = endpoint

    def images(self):
        marker = None
        while True:
            params = {'is_public': 'none', 'limit': PAGE}
            if marker:
                params['marker'] = marker
            page = self.api.call('GET', '/images/detail', params=params).json()['images']
            if not page:
                return
            for image in page:
                yield v1_record(image)
            marker = page[-1]['id']

    def image(self, image_id):
        """HEAD: the record (deleted ones too), or None."""
        try:
            response = self.api.call('HEAD', '/images/%s' % image_id)
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        from glance_upload.api import image_from_headers
        return v1_record(image_from_headers(response.headers))

    def members(self, image_id):
        members = self.api.call('GET', '/images/%s/members' % image_id).json()['members']
        return sorted(({'member_id': m['member_id'], 'can_share': bool(m.get('can_share'))}
                       for m in members), key=lambda member: member['member_id'])

    def open(self, image_id):
        """The image data, streamed (the caller closes the response)."""
        return self.api.call('GET', '/images/%s' % image_id, stream=True)


class V2Catalog(V1Catalog):
    """A v2 source. Member statuses have no v1 equivalent: every member (pending,
    accepted or rejected) is copied, as in v2 each of them may use the image by id."""
    version = 2

    def images(self):
        seen = set()
        for query in ({'visibility': 'all', 'member_status': 'all'},
                      {'visibility': 'all', 'member_status': 'all', 'os_hidden': 'true'}):
            try:
                for image in self._pages(query):
                    if image['id'] not in seen:
                        seen.add(image['id'])
                        yield image
            except ApiError as error:
                if error.status != 400 or 'os_hidden' not in query:
                    raise  # before Rocky there is no os_hidden: nothing hidden to add

    def _pages(self, query):
        path, params = '/images', dict(query, limit=PAGE)
        while path:
            page = self.api.call('GET', path, params=params).json()
            for image in page['images']:
                yield v2_record(image)
            following = page.get('next')
            # `next` is /v2/images?marker=...: the query is in it already
            path = following[len('/v2'):] if following else None
            params = None

    def image(self, image_id):
        try:
            return v2_record(self.api.call('GET', '/images/%s' % image_id).json())
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def members(self, image_id):
        try:
            members = self.api.call('GET', '/images/%s/members' % image_id).json()['members']
        except ApiError as error:
            if error.status in (403, 404):  # v2: only `shared` images have members
                return []
            raise
        return sorted(({'member_id': m['member_id'], 'can_share': False} for m in members),
                      key=lambda member: member['member_id'])

    def open(self, image_id):
        return self.api.call('GET', '/images/%s/file' % image_id, stream=True)


def catalog(endpoint, version):
    """The catalog of `endpoint` at API `version` (1, 2, or 'auto': v2 when it answers)."""
    if version == 'auto':
        try:
            endpoint.at_version(2).call('GET', '/images', params={'limit': 1})
            version = 2
        except ApiError as error:
            if error.status in (401, 403):
                raise
            version = 1
    api = endpoint.at_version(int(version))
    return V2Catalog(api) if int(version) == 2 else V1Catalog(api)
