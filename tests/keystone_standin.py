"""A small Keystone v3 stand-in on loopback: service login and token validation.

Real HTTP, real status codes (201 login, 200 valid, 404 unknown/expired/revoked,
401 for a bad service token, `failing` when set: a Keystone in trouble, `delay`:
a slow one), so the service's Keystone client is tested as is.

Kept only for what a real Keystone cannot show: it counts logins and validations
(the token caches, the LRU bounds, one SSM read), it revokes our own service token
on demand, and it issues tokens to any project name instantly. Real logins,
refusals of real tokens and real outages are in tests/e2e/test_keystone_real.py,
against the Keystone that tools/keystone_local.py runs.
"""
import datetime
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE_USER, SERVICE_PASSWORD, SERVICE_PROJECT = 'glance', 'glance-secret', 'service'


def _expiry(seconds):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


class KeystoneStandIn:
    def __init__(self):
        self.tokens = {}            # token -> token body
        self.revoked = set()
        self.validations = 0
        self.logins = 0
        self.failing = None         # a status every validation answers (e.g. 503)
        self.delay = 0              # seconds every validation waits before answering
        self.service_tokens = set()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body=None, headers=None):
                data = json.dumps(body).encode() if body is not None else b''
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):   # a client that timed out
                    pass

            def do_POST(self):
                length = int(self.headers.get('Content-Length', 0))
                auth = json.loads(self.rfile.read(length))['auth']
                user = auth['identity']['password']['user']
                if (user['name'], user['password']) != (SERVICE_USER, SERVICE_PASSWORD):
                    return self._send(401, {'error': {'code': 401}})
                standin.logins += 1
                token = uuid.uuid4().hex
                standin.service_tokens.add(token)
                self._send(201, {'token': {'expires_at': _expiry(3600)}},
                           {'X-Subject-Token': token})

            def do_GET(self):
                if self.headers.get('X-Auth-Token') not in standin.service_tokens:
                    return self._send(401, {'error': {'code': 401}})
                standin.validations += 1
                time.sleep(standin.delay)
                if standin.failing:
                    return self._send(standin.failing, {'error': {'code': standin.failing}})
                token = self.headers.get('X-Subject-Token')
                body = standin.tokens.get(token)
                if body is None or token in standin.revoked or \
                        body['expires_at'] < _expiry(0):
                    return self._send(404, {'error': {'code': 404}})
                self._send(200, {'token': body})

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def issue(self, project, roles=('member',), user='user', lifetime=3600, domain=None):
        """A token scoped to `project`, or to `domain`, or (neither) unscoped."""
        token = uuid.uuid4().hex
        body = {'expires_at': _expiry(lifetime), 'user': {'id': user, 'name': user},
                'roles': [{'name': role} for role in roles]}
        if project:
            body['project'] = {'id': project, 'name': project}
        if domain:
            body['domain'] = {'id': domain, 'name': domain}
        if not (project or domain):
            del body['roles']   # Keystone gives an unscoped token no roles
        self.tokens[token] = body
        return token

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
