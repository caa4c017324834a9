"""The local runtime: embedded moto, the tables and bucket, the API on loopback.

`chalice local` drops chunked request bodies (python-glanceclient sends them),
so the HTTP front here is werkzeug's threaded server, which de-chunks, feeding
chalice's own LocalGateway: routing and events are those of the tests, but for
the path, which is routed encoded and its parameters decoded, as API Gateway does.
"""
import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time

LOOPBACK = '127.0.0.1'
QUIET_LIBRARIES = ('werkzeug', 'botocore', 'boto3', 'pynamodb', 'urllib3', 's3transfer')
STAGE = 'local'


def free_port():
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def load_stage_environment(project_dir, stage):
    """Put the stage's environment variables (.chalice/config.json) into os.environ."""
    from chalice.cli.factory import CLIFactory
    config = CLIFactory(project_dir).create_config_obj(chalice_stage_name=stage)
    for name, value in config.environment_variables.items():
        os.environ.setdefault(name, value)
    return config


class EmbeddedAWS:
    """moto's server as a child process on a free loopback port.

    A process of its own, so that the bytes it keeps in memory are not counted
    against the API's; it stops with the runtime.
    """

    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = 'http://%s:%d' % (LOOPBACK, self.port)
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'moto.server', '-H', LOOPBACK, '-p', str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit('the embedded AWS (moto) did not start on %s:%d: if that port is '
                                 'taken, choose another with GLANCE_AWS_PORT=...'
                                 % (LOOPBACK, self.port))
            time.sleep(0.1)

    def _answers(self):
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


RAW_HEADERS = 'glance.raw_headers'
REQUEST_TARGET = 'glance.request_target'


def request_handler():
    """werkzeug's handler, keeping the header names as sent.

    werkzeug drops headers whose names contain `_`, and v1 clients send
    `x-image-meta-disk_format`. The request target is kept as sent too: PATH_INFO
    is decoded, and routing needs the encoded path (see routing_path).
    """
    from werkzeug.serving import WSGIRequestHandler

    class RawHeadersRequestHandler(WSGIRequestHandler):
        def make_environ(self):
            environ = super().make_environ()
            environ[RAW_HEADERS] = list(self.headers.items())
            # http.server decodes the request line as latin-1: these are its bytes
            environ[REQUEST_TARGET] = self.path.encode('latin-1')
            return environ

        def log_request(self, code='-', size='-'):
            pass  # wsgi_front logs one plain line per request (werkzeug's is coloured)

    return RawHeadersRequestHandler


def routing_path(environ):
    """The path handed to chalice: the request's path with every byte but `/` and
    the unreserved ones percent-encoded.

    API Gateway routes on the encoded path and gives the captured values decoded.
    chalice's LocalGateway splits what it is given with urlparse, so a decoded `?`,
    `#` or `;` in a segment cut the path there and a TAB, CR or LF vanished; once
    encoded they stay inside their segment (DecodingRouteMatcher decodes them).
    `%2F` is decoded to a `/`, a separator, as werkzeug always did here: whether
    API Gateway keeps it inside a {param} is not established.
    """
    from urllib.parse import quote, unquote_to_bytes, urlsplit
    target = urlsplit(environ[REQUEST_TARGET])
    # as werkzeug: an origin-form target starting with `//` is not a netloc
    path = target.path if target.scheme or not target.netloc else (
        b'/' + target.netloc + target.path)
    return quote(unquote_to_bytes(path or b'/'), safe='/')


def local_gateway(app, config):
    """chalice's LocalGateway, its route matcher decoding the captured values."""
    from urllib.parse import unquote

    from chalice.local import LambdaEventConverter, LocalGateway, RouteMatcher

    class DecodingRouteMatcher(RouteMatcher):
        """API Gateway's pathParameters are decoded (UTF-8); chalice's are as in
        the path, and the path is encoded (routing_path)."""

        def match_route(self, url):
            match = super().match_route(url)
            return match._replace(captured={
                name: unquote(value, errors='replace')
                for name, value in match.captured.items()})

    gateway = LocalGateway(app, config)
    gateway.event_converter = LambdaEventConverter(
        DecodingRouteMatcher(list(app.routes)), app.api.binary_types)
    return gateway


def _request_line_and_headers(environ):
    """(method, path with its query, headers) as chalice's LocalGateway takes them."""
    path = routing_path(environ)
    if environ.get('QUERY_STRING'):
        path += '?' + environ['QUERY_STRING']
    headers = {name.lower(): _from_wire(value) for name, value in environ[RAW_HEADERS]}
    # API Gateway gives the authorizer X-Auth-Token (its identity source);
    # chalice's LocalGateway always reads `authorization`. Without a token the
    # stage's UNAUTHORIZED gateway response is Glance's 401: here the view answers it.
    headers.pop('authorization', None)
    headers['authorization'] = headers.get('x-auth-token', '')
    return environ['REQUEST_METHOD'], path, headers


def wsgi_front(gateway):
    """A WSGI application that hands each request to chalice's LocalGateway."""
    from chalice.local import LocalGatewayException
    from werkzeug.wsgi import get_input_stream

    from chalicelib.api.common import streamed_body
    from chalicelib.domain.transfers import OCTET_STREAM

    def application(environ, start_response):
        started = time.monotonic()
        method, path, headers = _request_line_and_headers(environ)
        stream, body = _CountingStream(get_input_stream(environ)), None
        binary = headers.get('content-type', '').split(';')[0].strip() == OCTET_STREAM
        if binary:  # image bytes: streamed to the app, not copied into the event
            streamed_body.stream = stream
        else:
            body = stream.read() or None
        try:
            response = gateway.handle_request(method, path, headers, body)
            status, out_headers = response['statusCode'], dict(response['headers'])
            payload = response.get('body') or b''
            if response.get('isBase64Encoded'):
                payload = base64.b64decode(payload)
        except LocalGatewayException as error:
            status, out_headers, payload = error.CODE, dict(error.headers), error.body or b''
        finally:
            streamed_body.stream = None
        if isinstance(payload, str):
            payload = payload.encode('utf-8')
        if method == 'HEAD':
            payload = b''
        out_headers['Content-Length'] = str(len(payload))
        print('%s %s -> %d (request body %d bytes, response body %d bytes) %.1f ms %s' % (
            method, path.split('?')[0], status, stream.count, len(payload),
            (time.monotonic() - started) * 1000,
            out_headers.get('x-openstack-request-id', '-')), flush=True)
        reason = _reason(status)
        start_response('%d %s' % (status, reason),
                       [(name, _to_wire(value)) for name, value in out_headers.items()])
        return [payload]

    return application


class _CountingStream:
    """The request body, counted as the app reads it (the access log says how many
    image bytes went through the API)."""

    def __init__(self, stream):
        self._stream, self.count = stream, 0

    def read(self, *args):
        chunk = self._stream.read(*args)
        self.count += len(chunk)
        return chunk


def _from_wire(value):
    """Header bytes arrive as latin-1 text; v1 clients send UTF-8."""
    try:
        return value.encode('latin-1').decode('utf-8')
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _to_wire(value):
    return str(value).encode('utf-8').decode('latin-1')


def _reason(status):
    from http import HTTPStatus
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return 'Unknown'


REAP_EVERY_SECONDS = 60


def start_event_pump(stop):
    """Deliver bucket events to the finalizer and run the reaper, as AWS would."""
    import boto3

    from chalicelib.config import settings
    from chalicelib.events import pump_bucket_events, reap_abandoned_uploads
    from chalicelib.storage.resources import ensure_upload_events
    sqs = boto3.client('sqs', region_name=settings().region,
                       endpoint_url=settings().aws_endpoint_url)
    queue_url = ensure_upload_events(sqs)

    def pump():
        next_reap = time.monotonic() + REAP_EVERY_SECONDS
        while not stop.is_set():
            try:
                pump_bucket_events(sqs, queue_url)
                if time.monotonic() >= next_reap:
                    reap_abandoned_uploads()
                    next_reap = time.monotonic() + REAP_EVERY_SECONDS
            except Exception:  # noqa: BLE001 - the pump outlives a bad moment
                time.sleep(1)
    threading.Thread(target=pump, name='upload-events', daemon=True).start()


def _first_commands(url, auth_mode):
    """What to try first, as commands that run as printed in that identity mode."""
    glance = '.venv-clients/bin/glance --os-image-api-version 1'
    if auth_mode == 'keystone':
        return ['Try: %s --os-image-url %s image-list   (with your OS_* variables; '
                'make clients installs glance)' % (glance, url)]
    if auth_mode == 'trusted-headers':
        return ['Try: curl -s %s/v1/images -H "X-Identity-Status: Confirmed" '
                '-H "X-Tenant-Id: tenant-a" -H "X-Roles: member"' % url]
    return ['Try: curl -s "%s/v1/images/detail?is_public=none"' % url,
            '  or: %s --os-image-url %s --os-auth-token any image-list --all-tenants'
            '   (make clients installs it)' % (glance, url)]


def _configure_logging():
    import logging

    from chalicelib.config import settings
    logging.basicConfig(level=settings().log_level, stream=sys.stdout,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    for library in QUIET_LIBRARIES:   # their INFO lines say nothing about requests
        logging.getLogger(library).setLevel(max(logging.WARNING, logging.root.level))


def _print_banner(url, embedded_moto):
    from chalicelib.config import settings
    print('Glance v1 API on %s (auth mode %s, AWS at %s%s)' % (
        url, os.environ.get('GLANCE_AUTH_MODE', 'noauth'), os.environ['AWS_ENDPOINT_URL'],
        ', embedded moto: state lives in memory' if embedded_moto else ''), flush=True)
    for line in _first_commands(url, settings().auth_mode):
        print(line, flush=True)
    print('The embedded AWS: AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing '
          'AWS_DEFAULT_REGION=%s .venv/bin/aws --endpoint-url %s dynamodb scan --table-name %s'
          % (settings().region, os.environ['AWS_ENDPOINT_URL'], settings().images_table),
          flush=True)


def main():
    project_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, project_dir)
    os.environ.setdefault('AWS_DEFAULT_REGION', 'us-east-1')
    os.environ.setdefault('AWS_ACCESS_KEY_ID', 'testing')
    os.environ.setdefault('AWS_SECRET_ACCESS_KEY', 'testing')
    config = load_stage_environment(project_dir, STAGE)
    port = int(os.environ.get('PORT', '9292'))
    moto_server = None
    if not os.environ.get('AWS_ENDPOINT_URL'):
        moto_server = EmbeddedAWS(int(os.environ.get('GLANCE_AWS_PORT') or 0) or None)
        os.environ['AWS_ENDPOINT_URL'] = moto_server.url
    try:   # the embedded AWS stops with the runtime, however it ends
        _serve(config, port, moto_server is not None)
    finally:
        if moto_server is not None:
            moto_server.stop()


def _serve(config, port, embedded):
    from werkzeug.serving import make_server

    _configure_logging()
    from app import app
    from chalicelib.storage.resources import ensure_resources
    ensure_resources()
    try:
        server = make_server(LOOPBACK, port, wsgi_front(local_gateway(app, config)),
                             threaded=True, request_handler=request_handler())
    except OSError as error:
        raise SystemExit('make serve: %s:%d is not free (%s): stop what uses it, or choose '
                         'another port with PORT=...' % (LOOPBACK, port, error.strerror)) from None
    stop_events = threading.Event()
    start_event_pump(stop_events)
    _print_banner('http://%s:%d' % (LOOPBACK, server.port), embedded)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop_events.set()
        server.server_close()
        print('stopped', flush=True)


if __name__ == '__main__':
    main()
