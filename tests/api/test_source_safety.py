"""External sources are safe by default: no tenant reads the image bucket through a
location or copy-from, no request reaches the service's network, a source cannot hold
a request or store more than its record says, and bytes never pass under a checksum
they do not match. Every refusal is a 400 that stores nothing."""
import hashlib
import os
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from chalicelib import composition
from chalicelib.api import common
from chalicelib.background import wait_for_background_jobs
from chalicelib.storage import sources as sources_module
from chalicelib.storage.sources import ExternalSources
from chalicelib.domain.ports import SourceRefused
from tests.helpers import ADMIN, body_json, create_image, error_text, head, tenant
from tests.reliability.invariants import violations

A, B = tenant('tenant-a'), tenant('tenant-b')
DATA = os.urandom(3000)
MD5 = hashlib.md5(DATA).hexdigest()
FORMATS = {'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare'}
BUCKET = 'test-glance-images'
SOURCE_HEADERS = ('x-image-meta-location', 'x-glance-api-copy-from')


class Source:
    """A loopback HTTP source whose behaviour each test sets: `routes` maps a path to
    (HEAD length, body, delay per 100 bytes, redirect target)."""

    def __init__(self):
        self.routes, self.requests = {}, []
        self.release = threading.Event()
        self.release.set()
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                source.requests.append(('HEAD', self.path, self.headers.get('Host')))
                self._answer(False)

            def do_GET(self):
                source.requests.append(('GET', self.path, self.headers.get('Host')))
                self._answer(True)

            def _answer(self, with_body):
                route = source.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                if route.get('redirect'):
                    self.send_response(302)
                    self.send_header('Location', route['redirect'])
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                if route.get('silent'):
                    time.sleep(route['silent'])
                    return
                body = route.get('body', DATA)
                self.send_response(200)
                # what HEAD says may differ from what GET sends
                length = route.get('length', len(body)) if not with_body else len(body)
                self.send_header('Content-Length', str(length))
                self.end_headers()
                if not with_body:
                    return
                source.release.wait(30)
                step = route.get('trickle')
                try:
                    for start in range(0, len(body), 100 if step else len(body) or 1):
                        self.wfile.write(body[start:start + (100 if step else len(body))])
                        self.wfile.flush()
                        if step:
                            time.sleep(step)
                except OSError:
                    pass
                self.close_connection = True

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def source():
    served = Source()
    yield served
    served.close()


@pytest.fixture
def default_sources(settings_override):
    """The settings a deployment starts with: no network, no bucket allowed."""
    settings_override(source_allowed_networks=(), source_s3_buckets=())


def _create(client, identity=A, **headers):
    return client.http.post('/v1/images', headers=dict(identity, **FORMATS, **headers))


def _download(client, image_id, identity=A):
    return client.http.get('/v1/images/%s' % image_id, headers=dict(identity, Accept='*/*'))


def _bucket_keys():
    listed = boto3.client('s3', region_name='us-east-1').list_objects_v2(Bucket=BUCKET)
    return sorted(o['Key'] for o in listed.get('Contents', []))


def _catalog(client):
    listed = client.http.get('/v1/images/detail?is_public=none', headers=ADMIN)
    return body_json(listed)['images']


def _assert_refused(client, response, reason=''):
    assert response.status_code == 400, (response.status_code, response.body)
    assert 'External source is not allowed' in error_text(response)
    assert reason in error_text(response)
    assert _catalog(client) == [] and _bucket_keys() == []


def _resolver(table, calls=None):
    """getaddrinfo answering from `table` (name -> addresses or a function of the call
    count); other names as the system does."""
    def resolve(host, port, type=0, **_):
        if calls is not None:
            calls.append(host)
        if host not in table:
            return socket.getaddrinfo(host, port, type=type)
        found = table[host]
        found = found(len(calls or ())) if callable(found) else found
        return [(socket.AF_INET6 if ':' in a else socket.AF_INET, socket.SOCK_STREAM, 6, '',
                 (a, port)) for a in found]
    return resolve


# -- 1. the image bucket is never a source -------------------------------------------
def _own_bucket_spellings(image_id):
    key = 'images/%s' % image_id
    return [
        's3://%s/%s' % (BUCKET, key),
        's3://%s/%s' % (BUCKET.upper(), key),
        's3://%s./%s' % (BUCKET, key),
        's3://%s//%s' % (BUCKET, key),
        's3://%s/./%s' % (BUCKET, key),
        's3://%s/images/./%s' % (BUCKET, image_id),
        's3://%s/%s' % (BUCKET.replace('-', '%2D'), key),
        's3://%s/%s' % (BUCKET, key.replace('/', '%2F')),
        's3://%s/uploads/%s' % (BUCKET, image_id),
        's3:///%s/%s' % (BUCKET, key),
        's3://s3.amazonaws.com/%s/%s' % (BUCKET, key),
        's3://s3.us-east-1.amazonaws.com/%s/%s' % (BUCKET, key),
        's3://%s.s3.amazonaws.com/%s' % (BUCKET, key),
        's3://%s.s3.us-east-1.amazonaws.com/%s' % (BUCKET, key),
        's3://key:secret@%s/%s' % (BUCKET, key),
        'S3://%s/%s' % (BUCKET, key),
        'https://%s.s3.amazonaws.com/%s' % (BUCKET, key),
        'https://%s.s3.us-east-1.amazonaws.com/%s' % (BUCKET, key),
        'https://s3.amazonaws.com/%s/%s' % (BUCKET, key),
        'http://S3.US-EAST-1.AMAZONAWS.COM/%s/%s' % (BUCKET.upper(), key),
        'https://%s.s3-us-east-1.amazonaws.com./%s' % (BUCKET, key),
    ]


def test_own_bucket_spellings_are_refused_and_reveal_nothing(client, settings_override):
    _, theirs = create_image(client, B, data=b'secret bytes of tenant b')
    missing = str(uuid.uuid4())
    # even a deployer listing the image bucket cannot open it
    settings_override(source_s3_buckets=(BUCKET,), source_allowed_networks=())
    spellings = _own_bucket_spellings(theirs['id'])
    answers = set()
    for header in SOURCE_HEADERS:
        for image_id in (theirs['id'], missing):
            for url in _own_bucket_spellings(image_id):
                response = _create(client, **{header: url})
                assert response.status_code == 400, (header, url, response.body)
                answers.add(error_text(response))
    # one answer whether the object exists or not
    assert len(answers) <= 2 and all('not allowed' in a for a in answers)
    assert [i['id'] for i in _catalog(client)] == [theirs['id']]
    assert _bucket_keys() == ['images/%s' % theirs['id']]
    assert len(spellings) >= 20


def test_s3_sources_are_refused_unless_their_bucket_is_listed(client, default_sources,
                                                              settings_override):
    s3 = boto3.client('s3', region_name='us-east-1')
    s3.create_bucket(Bucket='public-images')
    s3.put_object(Bucket='public-images', Key='cirros.raw', Body=DATA)
    for header in SOURCE_HEADERS:
        _assert_refused(client, _create(client, **{header: 's3://public-images/cirros.raw'}),
                        'GLANCE_SOURCE_S3_BUCKETS')
    settings_override(source_s3_buckets=('public-images',))
    response = _create(client, **{'x-image-meta-location': 's3://public-images/cirros.raw'})
    assert response.status_code == 201
    assert _download(client, body_json(response)['image']['id']).body == DATA
    assert _create(client, **{'x-image-meta-location': 's3://public-images/'}).status_code == 400


# -- 2. http(s): no address of the service's network --------------------------------
INWARD_ADDRESSES = [
    # IPv4
    '127.0.0.1', '127.1.2.3', '0.0.0.0', '10.0.0.1', '172.16.0.1', '172.31.255.255',
    '192.168.1.1', '169.254.169.254', '100.64.0.1', '100.127.255.254', '224.0.0.1',
    '239.255.255.250', '240.0.0.1', '255.255.255.255', '192.0.2.1', '198.51.100.1',
    '203.0.113.1', '198.18.0.1', '192.0.0.8', '192.88.99.1',
    # numeric spellings the resolver reads as loopback or private
    '2130706433', '0x7f.1', '0177.0.0.1', '0x7f000001', '017700000001', '127.1',
    '0', '0x0a.0.0.1', '3232235777',
    # IPv6
    '[::1]', '[::]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[::127.0.0.1]', '[fe80::1]',
    '[fd00:ec2::254]', '[fc00::1]', '[ff02::1]', '[64:ff9b::a9fe:a9fe]', '[2002:7f00:1::]',
    '[2001:db8::1]', '[::ffff:169.254.169.254]', '[fec0::1]', '[::ffff:10.0.0.1]',
    '[0:0:0:0:0:ffff:127.0.0.1]', '[100::1]',
    # names resolving inward
    'localhost', 'localhost.', 'LOCALHOST', 'metadata.test', 'internal.test', 'mixed.test',
]
NAMES = {'metadata.test': ['169.254.169.254'], 'internal.test': ['10.1.2.3'],
         'mixed.test': ['93.184.216.34', '10.0.0.1'], 'public.test': ['93.184.216.34'],
         'public6.test': ['2606:2800:220:1:248:1893:25c8:1946']}


@pytest.fixture
def resolver(monkeypatch):
    calls = []
    monkeypatch.setattr(composition.services().sources, '_resolve', _resolver(NAMES, calls))
    return calls


@pytest.mark.slow
def test_every_inward_address_is_refused(client, default_sources, resolver):
    tried = 0
    for host in INWARD_ADDRESSES:
        for port in ('', ':80', ':9292'):
            for header in SOURCE_HEADERS:
                url = 'http://%s%s/image.raw' % (host, port)
                _assert_refused(client, _create(client, **{header: url}), 'publicly routable')
                tried += 1
    https = _create(client, **{'x-image-meta-location': 'https://169.254.169.254/latest'})
    _assert_refused(client, https, 'publicly routable')
    assert tried == len(INWARD_ADDRESSES) * 6 and len(INWARD_ADDRESSES) >= 50


def test_public_addresses_only_on_the_open_ports(client, default_sources, resolver,
                                                 settings_override):
    for url in ('http://public.test:8080/x', 'https://public.test:22/x',
                'http://93.184.216.34:6379/x', 'http://[2606:2800:220:1:248:1893:25c8:1946]:25/x'):
        _assert_refused(client, _create(client, **{'x-image-meta-location': url}),
                        'is not open to external sources')
    checker = composition.services().sources
    for url in ('http://public.test/x', 'https://public.test:443/x', 'http://public6.test/x'):
        checker.check(url)   # allowed: nothing read, nothing raised
    settings_override(source_ports=(80, 443, 8080))
    checker.check('http://public.test:8080/x')


def test_credentials_in_source_urls_are_refused(client, source):
    source.routes['/image.raw'] = {}
    for url in (source.url.replace('//', '//user:pw@') + '/image.raw',
                source.url.replace('//', '//user@') + '/image.raw'):
        for header in SOURCE_HEADERS:
            _assert_refused(client, _create(client, **{header: url}), 'credentials')
    assert source.requests == []


def test_allowed_networks_open_any_port(client, source, settings_override):
    settings_override(source_allowed_networks=('127.0.0.1/32',))
    source.routes['/image.raw'] = {}
    response = _create(client, **{'x-image-meta-location': source.url + '/image.raw'})
    assert response.status_code == 201
    settings_override(source_allowed_networks=('10.0.0.0/8',))
    _assert_refused_after = _create(client, **{'x-image-meta-location':
                                               source.url + '/image.raw'})
    assert _assert_refused_after.status_code == 400


def test_the_checked_address_is_the_one_connected_to(client, source, settings_override,
                                                     monkeypatch):
    """DNS rebinding: one lookup per request, and the connection goes to its answer;
    a later lookup answering inward is refused, not followed."""
    settings_override(source_allowed_networks=('127.0.0.0/8',))
    source.routes['/image.raw'] = {}
    calls = []
    answers = {'rebind.test': lambda n: ['127.0.0.1'] if n <= 1 else ['10.0.0.1']}
    monkeypatch.setattr(composition.services().sources, '_resolve', _resolver(answers, calls))
    url = 'http://rebind.test:%d/image.raw' % source.port
    response = _create(client, **{'x-image-meta-location': url})
    assert response.status_code == 201 and calls == ['rebind.test']
    assert source.requests == [('HEAD', '/image.raw', 'rebind.test:%d' % source.port)]
    download = _download(client, body_json(response)['image']['id'])
    assert download.status_code == 502 and 'publicly routable' in error_text(download)
    assert calls == ['rebind.test', 'rebind.test'] and len(source.requests) == 1


def test_every_redirect_hop_is_checked(client, source, settings_override):
    settings_override(source_allowed_networks=('127.0.0.1/32',))
    source.routes['/image.raw'] = {}
    for target in ('http://169.254.169.254/latest/meta-data/', 'http://127.0.0.2:%d/image.raw'
                   % source.port, 'http://[::1]:%d/image.raw' % source.port,
                   'http://10.0.0.1/', 's3://%s/images/x' % BUCKET, 'file:///etc/passwd',
                   'http://user:pw@127.0.0.1:%d/image.raw' % source.port):
        source.routes['/hop'] = {'redirect': target}
        for header in SOURCE_HEADERS:
            _assert_refused(client, _create(client, **{header: source.url + '/hop'}))
    # three hops are followed, a fourth is refused
    for hop in range(4):
        source.routes['/r%d' % hop] = {'redirect': '/r%d' % (hop + 1)}
    source.routes['/r4'] = {}
    _assert_refused(client, _create(client, **{'x-image-meta-location': source.url + '/r0'}),
                    'more than 3 redirects')
    response = _create(client, **{'x-image-meta-location': source.url + '/r1'})
    assert response.status_code == 201
    assert _download(client, body_json(response)['image']['id']).body == DATA


def test_refusal_counts(client, default_sources, resolver):
    """The table of the closing note: spellings tried, all refused."""
    groups = {
        'IPv4': [h for h in INWARD_ADDRESSES[:20]],
        'numeric': INWARD_ADDRESSES[20:29],
        'IPv6': INWARD_ADDRESSES[29:46],
        'names': INWARD_ADDRESSES[46:],
    }
    for name, hosts in groups.items():
        refused = sum(_create(client, **{'x-image-meta-location': 'http://%s/x' % h})
                      .status_code == 400 for h in hosts)
        print('%-8s %d tried, %d refused' % (name, len(hosts), refused))
        assert refused == len(hosts)


# -- 3. deadlines and caps -------------------------------------------------------------
def test_a_silent_source_is_given_up_without_retries(client, source, settings_override):
    settings_override(source_head_timeout=0.5)
    source.routes['/silent'] = {'silent': 3}
    response = _create(client, **{'x-image-meta-location': source.url + '/silent'})
    assert response.status_code == 404
    assert [r[0] for r in source.requests] == ['HEAD']   # tried once
    assert _catalog(client) == []


def test_a_trickling_source_is_dropped(client, source, settings_override, monkeypatch):
    monkeypatch.setattr(sources_module, 'RATE_GRACE', 0.3)
    settings_override(source_min_rate=10000)
    source.routes['/slow'] = {'trickle': 0.1}
    response = _create(client, **{'x-image-meta-location': source.url + '/slow'})
    assert response.status_code == 201
    image_id = body_json(response)['image']['id']
    download = _download(client, image_id)
    assert download.status_code == 502 and 'too slowly' in error_text(download)
    copied = _create(client, **{'x-glance-api-copy-from': source.url + '/slow'})
    wait_for_background_jobs()
    assert head(client, A, body_json(copied)['image']['id']).headers[
        'x-image-meta-status'] == 'killed'
    assert _bucket_keys() == [] and violations() == []


def test_a_source_past_its_deadline_is_dropped(client, source, settings_override):
    settings_override(source_deadline=0.5, source_min_rate=0)
    source.routes['/slow'] = {'trickle': 0.2}
    copied = _create(client, **{'x-glance-api-copy-from': source.url + '/slow'})
    wait_for_background_jobs()
    assert head(client, A, body_json(copied)['image']['id']).headers[
        'x-image-meta-status'] == 'killed'
    assert _bucket_keys() == []


def test_a_source_sending_more_than_it_said(client, source, settings_override):
    """HEAD says 1000 bytes, GET sends 3000: never served, cached or copied."""
    source.routes['/liar'] = {'length': 1000, 'body': DATA}
    response = _create(client, **{'x-image-meta-location': source.url + '/liar'})
    image = body_json(response)['image']
    assert image['size'] == 1000
    download = _download(client, image['id'])
    assert download.status_code == 502 and 'more bytes' in error_text(download)
    copied = body_json(_create(client, **{'x-glance-api-copy-from': source.url + '/liar'}))
    wait_for_background_jobs()
    assert head(client, A, copied['image']['id']).headers['x-image-meta-status'] == 'killed'
    settings_override(inline_download_limit=500)    # large: cached in the background
    cached = body_json(_create(client, **{'x-image-meta-location': source.url + '/liar'}))
    wait_for_background_jobs()
    refused = _download(client, cached['image']['id'])
    assert refused.status_code == 502 and 'more than 1000 bytes' in error_text(refused)
    assert _bucket_keys() == [] and violations() == []


def test_a_source_sending_less_than_it_said(client, source):
    source.routes['/short'] = {'length': 5000, 'body': DATA[:100]}
    image = body_json(_create(client, **{'x-image-meta-location': source.url + '/short'}))
    download = _download(client, image['image']['id'])
    assert download.status_code == 502 and '100 bytes' in error_text(download)


def test_storage_quota_is_charged_on_the_bytes_stored(client, source, settings_override):
    settings_override(user_storage_quota=2000)
    source.routes['/liar'] = {'length': 1000, 'body': DATA}
    copied = body_json(_create(client, **{'x-glance-api-copy-from': source.url + '/liar'}))
    wait_for_background_jobs()
    assert head(client, A, copied['image']['id']).headers['x-image-meta-status'] == 'killed'
    source.routes['/undeclared'] = {'body': DATA, 'length': ''}
    undeclared = body_json(_create(client, **{
        'x-glance-api-copy-from': source.url + '/undeclared'}))
    wait_for_background_jobs()
    assert head(client, A, undeclared['image']['id']).headers[
        'x-image-meta-status'] == 'killed'   # 3000 bytes past a 2000-byte quota
    assert _bucket_keys() == []


# -- 4. checksums ------------------------------------------------------------------------
def test_a_location_checksum_is_verified_before_bytes_pass(client, source, settings_override):
    source.routes['/image.raw'] = {}
    wrong = '0' * 32
    image = body_json(_create(client, **{'x-image-meta-location': source.url + '/image.raw',
                                         'x-image-meta-checksum': wrong}))['image']
    download = _download(client, image['id'])
    assert download.status_code == 502 and 'does not match' in error_text(download)
    assert download.headers.get('ETag') != wrong
    right = body_json(_create(client, **{'x-image-meta-location': source.url + '/image.raw',
                                         'x-image-meta-checksum': MD5}))['image']
    served = _download(client, right['id'])
    assert served.status_code == 200 and served.body == DATA
    assert served.headers['ETag'] == MD5
    settings_override(inline_download_limit=500)
    large = body_json(_create(client, **{'x-image-meta-location': source.url + '/image.raw',
                                         'x-image-meta-checksum': wrong}))['image']
    wait_for_background_jobs()
    assert _download(client, large['id']).status_code == 502
    assert _bucket_keys() == []
    copied = body_json(_create(client, **{'x-glance-api-copy-from': source.url + '/image.raw',
                                          'x-image-meta-checksum': wrong}))['image']
    wait_for_background_jobs()
    assert head(client, A, copied['id']).headers['x-image-meta-status'] == 'killed'
    assert _bucket_keys() == [] and violations() == []


# -- 5. no orphans ---------------------------------------------------------------------------
@pytest.mark.parametrize('header', SOURCE_HEADERS)
def test_delete_during_a_background_copy_leaves_no_object(client, source, settings_override,
                                                          header):
    settings_override(inline_download_limit=500)
    source.routes['/image.raw'] = {}
    source.release.clear()   # the copy waits for the delete
    image = body_json(_create(client, **{header: source.url + '/image.raw'}))['image']
    for _ in range(100):
        if any(r[0] == 'GET' for r in source.requests):
            break
        time.sleep(0.05)
    assert client.http.delete('/v1/images/%s' % image['id'], headers=A).status_code == 200
    source.release.set()
    wait_for_background_jobs()
    assert _bucket_keys() == [] and violations() == []


def test_a_copy_that_lands_before_the_delete_is_deleted_with_it(client, source,
                                                                settings_override,
                                                                monkeypatch):
    """The delete read the image before the copy recorded its object: the object goes
    all the same (the delete uses the record it replaced)."""
    settings_override(inline_download_limit=500)
    source.routes['/image.raw'] = {}
    jobs = []
    service = common.image_service()
    monkeypatch.setattr(composition.services().background, 'start',
                        lambda *job: jobs.append(job))
    image = body_json(_create(client, **{'x-image-meta-location': source.url + '/image.raw'}))
    original = service.records.get_visible

    def read_then_copy(context, image_id):
        found = original(context, image_id)
        composition.run_job(*jobs[0])            # the copy lands after the delete's read
        return found
    monkeypatch.setattr(service.records, 'get_visible', read_then_copy)
    assert client.http.delete('/v1/images/%s' % image['image']['id'],
                              headers=A).status_code == 200
    assert _bucket_keys() == [] and violations() == []


def test_source_checks_are_unit_sized():
    """The address rules themselves, without the API."""
    checker = ExternalSources(None, resolve=_resolver(NAMES))
    import chalicelib.config as config
    saved = config.override(source_allowed_networks=(), source_s3_buckets=())
    try:
        for url in ('http://metadata.test/', 'http://mixed.test/', 'http://[::1]/',
                    'ftp://public.test/', 'http:///x', 'http://public.test:99999/'):
            with pytest.raises(SourceRefused):
                checker.check(url)
        checker.check('http://public.test/')
    finally:
        config.restore(saved)
