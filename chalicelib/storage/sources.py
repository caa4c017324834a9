"""External image sources: `x-image-meta-location` and `x-glance-api-copy-from` URLs.

Deny by default: a source URL is checked before anything is read from it.
- s3://bucket/key only for buckets listed in GLANCE_SOURCE_S3_BUCKETS, never the image
  bucket, however the URL spells it (a tenant would read another's bytes).
- http(s) only to globally routable addresses on GLANCE_SOURCE_PORTS, or to addresses
  inside GLANCE_SOURCE_ALLOWED_NETWORKS on any port; never with credentials in the URL.
  The host is resolved once and the checked address is the one connected to (a second
  lookup could answer differently: DNS rebinding); every redirect hop is checked so.
- A registration's HEAD has one total deadline and no retries; a stream has a total
  deadline and a minimum rate, so a silent or trickling source cannot hold a function.
"""
import dataclasses
import functools
import ipaddress
import re
import socket
import time
import urllib.parse

from chalicelib.config import settings
from chalicelib.domain.ports import SourceNotFound, SourceRefused, SourceUnavailable

MAX_REDIRECTS = 3
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0      # one socket read; the stream's deadline bounds the whole
RATE_GRACE = 5.0         # seconds before the minimum rate applies
_CHUNK = 1 << 20
_NOT_FOUND = 'HTTP datastore could not find image at URI.'
_S3_NOT_FOUND = 'S3 datastore could not find image at URI.'

# Never a source, whatever `is_global` says on this Python: loopback, unspecified,
# link-local (the metadata service), private, shared, reserved, documentation,
# benchmark, multicast, ULA, site-local, discard and translation ranges.
_NON_PUBLIC = tuple(ipaddress.ip_network(net) for net in (
    '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16',
    '172.16.0.0/12', '192.0.0.0/24', '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16',
    '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
    '::/128', '::1/128', '100::/64', '2001::/23', '2001:db8::/32', 'fc00::/7',
    'fe80::/10', 'fec0::/10', 'ff00::/8'))
_NAT64 = (ipaddress.ip_network('64:ff9b::/96'), ipaddress.ip_network('64:ff9b:1::/48'))
_S3_ENDPOINT = re.compile(r'^(?:(?P<bucket>.+)\.)?s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com$')
_BUCKET_NAME = re.compile(r'^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$')


def scheme_of(url):
    return urllib.parse.urlsplit(url).scheme.lower()


def embedded_ipv4(address):
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, NAT64), or None."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if int(address) >> 32 == 0 or any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address):
    """Globally routable: what a source may resolve to without being allowed."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_link_local
        or any(address in net for net in _NON_PUBLIC if net.version == address.version))


@functools.lru_cache(maxsize=8)
def _networks(cidrs):
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def is_allowed_network(address, cidrs):
    candidates = [address] + [a for a in (embedded_ipv4(address),) if a is not None]
    return any(candidate in net for candidate in candidates
               for net in _networks(cidrs) if net.version == candidate.version)


def _refused(reason):
    return SourceRefused('External source is not allowed: %s.' % reason)


@dataclasses.dataclass(frozen=True)
class HttpTarget:
    """An http(s) URL whose host was resolved and checked: connect to `address`."""
    scheme: str
    host: str
    port: int
    address: str
    path: str

    @property
    def host_header(self):
        name = '[%s]' % self.host if ':' in self.host else self.host
        default = 443 if self.scheme == 'https' else 80
        return name if self.port == default else '%s:%d' % (name, self.port)


def _decoded_host(value):
    """A host as S3 and a resolver would read it: percent-decoded, lower-case, no
    trailing dot."""
    return urllib.parse.unquote(value or '').strip().lower().rstrip('.')


def addressed_object(url, endpoint_url=None):
    """(bucket, key) of the S3 object a URL names, in any spelling (s3://bucket/key,
    s3:///bucket/key, path or virtual-host style, the configured S3 endpoint), or
    None for a URL that does not address S3."""
    parts = urllib.parse.urlsplit(url)
    scheme, host = parts.scheme.lower(), _decoded_host(parts.hostname)
    segments = [s for s in urllib.parse.unquote(parts.path).split('/') if s not in ('', '.')]
    match = _S3_ENDPOINT.match(host)
    if match and match.group('bucket'):          # virtual-host style
        return _decoded_host(match.group('bucket')), '/'.join(segments)
    path_style = bool(match) or (scheme == 's3' and not host)
    if not path_style and scheme != 's3' and endpoint_url:
        endpoint = urllib.parse.urlsplit(endpoint_url)
        path_style = (host, parts.port) == (_decoded_host(endpoint.hostname), endpoint.port)
    if path_style:
        if not segments:
            return '', ''
        return _decoded_host(segments[0]), '/'.join(segments[1:])
    if scheme == 's3':
        return host, '/'.join(segments)
    return None


class ExternalSources:
    def __init__(self, s3_client_factory, resolve=socket.getaddrinfo):
        self._s3_client_factory = s3_client_factory
        self._resolve = resolve
        self._s3 = None

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = self._s3_client_factory()
        return self._s3

    # -- checks ------------------------------------------------------------------
    def check(self, url):
        """Refuse (SourceRefused) a URL the service must not read; resolves http(s)
        hosts. Nothing is read from the source."""
        if scheme_of(url) == 's3':
            self._s3_location(url)
        else:
            self._http_target(url)

    @staticmethod
    def _refuse_image_bucket(url):
        """The image bucket is never a source (a tenant would read another's bytes)."""
        current = settings()
        found = addressed_object(url, current.aws_endpoint_url)
        if found is not None and found[0] == current.image_bucket.lower():
            raise _refused("the image store's own bucket is not a source")
        return found

    def _s3_location(self, url):
        if '@' in urllib.parse.urlsplit(url).netloc:
            raise _refused('credentials in the URL are not accepted')
        bucket, key = self._refuse_image_bucket(url)
        if bucket not in settings().source_s3_buckets or not _BUCKET_NAME.match(bucket):
            raise _refused('s3:// sources are limited to the buckets the service is '
                           'configured to read (GLANCE_SOURCE_S3_BUCKETS)')
        if not key:
            raise _refused('an s3:// source names an object: s3://bucket/key')
        return bucket, key

    def _http_target(self, url):
        current = settings()
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            raise _refused('the URL is malformed') from None
        scheme = parts.scheme.lower()
        if scheme not in ('http', 'https'):
            raise _refused('only http, https and s3 URLs are sources')
        if '@' in parts.netloc:
            raise _refused('credentials in the URL are not accepted')
        host = (parts.hostname or '').rstrip('.')
        if not host:
            raise _refused('the URL has no host')
        self._refuse_image_bucket(url)
        port = port or (443 if scheme == 'https' else 80)
        try:
            found = self._resolve(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, ValueError):
            raise SourceNotFound(_NOT_FOUND) from None
        addresses = [ipaddress.ip_address(info[4][0].split('%', 1)[0]) for info in found]
        if not addresses:
            raise SourceNotFound(_NOT_FOUND)
        # every address: the resolver's order may change
        public = [a for a in addresses
                  if not is_allowed_network(a, current.source_allowed_networks)]
        if not all(is_public(address) for address in public):
            raise _refused('http(s) sources must resolve to publicly routable addresses')
        if public and port not in current.source_ports:
            raise _refused('port %d is not open to external sources' % port)
        path = urllib.parse.urlunsplit(('', '', parts.path or '/', parts.query, ''))
        return HttpTarget(scheme, host, port, str(addresses[0]), path)

    # -- reading -----------------------------------------------------------------
    def size_of(self, url):
        """The size the source reports (None if it does not say)."""
        if scheme_of(url) == 's3':
            bucket, key = self._s3_location(url)
            return self._s3_call('head_object', bucket, key)['ContentLength']
        deadline = time.monotonic() + settings().source_head_timeout
        response = self._http_request('HEAD', url, deadline, stream=False)
        length = response.headers.get('Content-Length')
        return int(length) if length and length.isdigit() else None

    def open(self, url, start=None):
        """A readable stream of the source's bytes (read(n) and close()), held to the
        sources' total deadline and minimum rate; from byte `start` on when given (a
        chained copy continuing: a Range request, which the source must honour)."""
        current = settings()
        deadline = time.monotonic() + current.source_deadline
        ranged = {} if start is None else {'Range': 'bytes=%d-' % start}
        if scheme_of(url) == 's3':
            bucket, key = self._s3_location(url)
            body = self._s3_call('get_object', bucket, key, **ranged)['Body']
        else:
            body = self._http_request('GET', url, deadline, stream=True, headers=ranged)
            if start is not None:
                _require_range(body, start)
        return SourceStream(body, deadline, current.source_min_rate)

    def _http_request(self, method, url, deadline, stream, headers=None):
        import urllib3
        for _ in range(MAX_REDIRECTS + 1):
            target = self._http_target(url)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SourceNotFound(_NOT_FOUND)
            response = _send(urllib3, target, method, remaining, stream, headers)
            location = response.headers.get('Location')
            if response.status in REDIRECT_STATUSES and location:
                _close(response)
                url = urllib.parse.urljoin(url, location)
                continue
            if response.status >= 400:
                _close(response)
                raise SourceNotFound(_NOT_FOUND)
            return response
        raise _refused('more than %d redirects' % MAX_REDIRECTS)

    def _s3_call(self, operation, bucket, key, **params):
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return getattr(self.s3, operation)(Bucket=bucket, Key=key, **params)
        except ClientError as error:
            if error.response['Error']['Code'] in ('404', 'NoSuchKey', 'NoSuchBucket'):
                raise SourceNotFound(_S3_NOT_FOUND) from error
            raise SourceUnavailable(str(error)) from error
        except BotoCoreError as error:
            raise SourceUnavailable(str(error)) from error


_CONTENT_RANGE = re.compile(r'bytes (\d+)-\d+/(?:\d+|\*)')
RANGE_IGNORED = ('The external source does not honour Range requests (it answered %s to '
                 '"Range: bytes=%d-"): an image this large is copied in several steps, '
                 'each continuing where the previous one stopped.')


def _require_range(response, start):
    """A ranged GET's answer must be 206 with the bytes from `start` on: a source that
    sends the whole image again (200) or another range cannot continue a copy."""
    found = _CONTENT_RANGE.fullmatch(response.headers.get('Content-Range') or '')
    if response.status != 206 or not found or int(found.group(1)) != start:
        _close(response)
        raise SourceUnavailable(RANGE_IGNORED % (
            response.status if response.status != 206 else
            '206 with Content-Range %r' % response.headers.get('Content-Range'), start))


def _send(urllib3, target, method, remaining, stream, headers=None):
    """One request to the checked address, no retries, no redirects followed."""
    if target.scheme == 'https':
        pool = urllib3.HTTPSConnectionPool(
            target.address, target.port, server_hostname=target.host,
            assert_hostname=target.host, cert_reqs='CERT_REQUIRED', maxsize=1)
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, maxsize=1)
    timeout = urllib3.Timeout(connect=min(remaining, CONNECT_TIMEOUT),
                              read=min(remaining, READ_TIMEOUT))
    try:
        return pool.urlopen(method, target.path, headers=dict(
            headers or {}, Host=target.host_header, **{'Accept-Encoding': 'identity'}),
            redirect=False, retries=False, assert_same_host=False, timeout=timeout,
            preload_content=not stream, decode_content=False, release_conn=not stream)
    except urllib3.exceptions.HTTPError as error:
        pool.close()
        raise SourceNotFound(_NOT_FOUND) from error


def _close(response):
    try:
        response.drain_conn()
    except Exception:  # noqa: BLE001 - the connection is dropped either way
        pass
    response.release_conn()


class SourceStream:
    """The bytes of a source: read(n) returns n bytes until the end, like a file,
    but gives up (SourceUnavailable) past the deadline or below the minimum rate."""

    def __init__(self, body, deadline, min_rate):
        self._body, self._deadline, self._min_rate = body, deadline, min_rate
        self._started = time.monotonic()
        self._read_some = getattr(body, 'read1', None) or body.read
        self.count = 0

    def read(self, amount=-1):
        amount = _CHUNK if amount is None or amount < 0 else amount
        chunks, wanted = [], amount
        while wanted > 0:
            self._check_pace()
            try:
                chunk = self._read_some(wanted)
            except Exception as error:  # noqa: BLE001 - any transport failure
                if isinstance(error, SourceUnavailable):
                    raise
                raise SourceUnavailable('The external source stopped sending the image '
                                        'data: %s' % type(error).__name__) from error
            if not chunk:
                break
            self.count += len(chunk)
            chunks.append(chunk)
            wanted -= len(chunk)
        return b''.join(chunks)

    def _check_pace(self):
        now = time.monotonic()
        if now > self._deadline:
            raise SourceUnavailable('The external source did not send the image data '
                                    'within the deadline.')
        elapsed = now - self._started
        if elapsed > RATE_GRACE and self.count < self._min_rate * elapsed:
            raise SourceUnavailable('The external source sends the image data too slowly '
                                    '(under %d bytes/s).' % self._min_rate)

    def close(self):
        release = getattr(self._body, 'release_conn', None)
        self._body.close()
        if release is not None:
            release()
