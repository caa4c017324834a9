"""External image sources: `x-image-meta-location` and `x-glance-api-copy-from` URLs.

http(s) URLs are read with urllib3 (it comes with botocore); s3://bucket/key
URLs with the service's S3 client.
"""
import urllib.parse

from chalicelib.domain.ports import SourceNotFound, SourceUnavailable

_TIMEOUT = {'connect': 5, 'read': 30}


def scheme_of(url):
    return urllib.parse.urlsplit(url).scheme.lower()


class ExternalSources:
    def __init__(self, s3_client_factory):
        self._s3_client_factory = s3_client_factory
        self._http = None
        self._s3 = None

    @property
    def http(self):
        if self._http is None:
            import urllib3
            self._http = urllib3.PoolManager(timeout=urllib3.Timeout(**_TIMEOUT),
                                             retries=urllib3.Retry(3, redirect=3))
        return self._http

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = self._s3_client_factory()
        return self._s3

    def size_of(self, url):
        """The size the source reports (None if it does not say)."""
        if scheme_of(url) == 's3':
            bucket, key = self._s3_location(url)
            return self._s3_call('head_object', bucket, key)['ContentLength']
        response = self._http_call('HEAD', url)
        length = response.headers.get('Content-Length')
        return int(length) if length and length.isdigit() else None

    def open(self, url):
        """A readable stream of the source's bytes (has read(n) and close())."""
        if scheme_of(url) == 's3':
            bucket, key = self._s3_location(url)
            return self._s3_call('get_object', bucket, key)['Body']
        return self._http_call('GET', url, preload_content=False)

    def _http_call(self, method, url, **kwargs):
        import urllib3
        try:
            response = self.http.request(method, url, **kwargs)
        except urllib3.exceptions.HTTPError as error:
            raise SourceNotFound('HTTP datastore could not find image at URI.') from error
        if response.status == 404 or response.status >= 400:
            response.release_conn()
            raise SourceNotFound('HTTP datastore could not find image at URI.')
        return response

    @staticmethod
    def _s3_location(url):
        parts = urllib.parse.urlsplit(url)
        return parts.netloc, parts.path.lstrip('/')

    def _s3_call(self, operation, bucket, key):
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return getattr(self.s3, operation)(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response['Error']['Code'] in ('404', 'NoSuchKey', 'NoSuchBucket'):
                raise SourceNotFound('S3 datastore could not find image at URI.') from error
            raise SourceUnavailable(str(error)) from error
        except BotoCoreError as error:
            raise SourceUnavailable(str(error)) from error
