"""Loopback HTTP servers standing for external image sources (x-glance-api-copy-from,
x-image-meta-location); the fixtures `source_server` and `source` (tests/conftest.py)
run them, one per module (generators: the fixture yields what they yield)."""
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOURCE_DATA = os.urandom(1500)               # what `source_server` serves
COPY_SOURCE_DATA = os.urandom(20 << 20)      # what `source` serves: over many 1 MiB steps


def serve_source():
    """/image.raw serves SOURCE_DATA (HEAD and GET); anything else is 404."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, with_body):
            if self.path != '/image.raw':
                self.send_response(404)
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            self.send_response(200)
            self.send_header('Content-Length', str(len(SOURCE_DATA)))
            self.end_headers()
            if with_body:
                self.wfile.write(SOURCE_DATA)

        def do_HEAD(self):
            self._answer(False)

        def do_GET(self):
            self._answer(True)

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield 'http://127.0.0.1:%d' % server.server_address[1]
    server.shutdown()
    server.server_close()


def serve_copy_source():
    """/image.raw serves COPY_SOURCE_DATA and honours Range; /no-range.raw sends all of
    it whatever Range says; /changing.raw serves `served['changing']`. `served['ranges']`
    records each GET's Range header."""
    served = {'ranges': [], 'changing': COPY_SOURCE_DATA}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, with_body):
            data = {'/image.raw': COPY_SOURCE_DATA, '/no-range.raw': COPY_SOURCE_DATA,
                    '/changing.raw': served['changing']}.get(self.path)
            if data is None:
                self.send_response(404)
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            asked = self.headers.get('Range')
            if with_body:
                served['ranges'].append((self.path, asked))
            found = re.fullmatch(r'bytes=(\d+)-', asked or '')
            if found and self.path != '/no-range.raw':
                start = int(found.group(1))
                self.send_response(206)
                self.send_header('Content-Range', 'bytes %d-%d/%d' % (
                    start, len(data) - 1, len(data)))
                data = data[start:]
            else:
                self.send_response(200)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            if with_body:
                try:
                    self.wfile.write(data)
                except ConnectionError:
                    pass   # a step stops reading where its budget ends

        def do_HEAD(self):
            self._answer(False)

        def do_GET(self):
            self._answer(True)

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served['url'] = 'http://127.0.0.1:%d' % server.server_address[1]
    yield served
    server.shutdown()
    server.server_close()
