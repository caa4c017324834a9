"""A soak: thousands of mixed operations from concurrent clients against the local
runtime over real HTTP, bounded in count and time.

Each client acts on its own images (so every expected status is known in advance)
and reads what others share with its tenant and what is public. Counted, not timed:
every response has the status the API promises, none is a 5xx, every download's MD5
is that of the bytes uploaded, and the table and bucket hold no orphan afterwards.
"""
import collections
import hashlib
import os
import random
import threading
import time

import pytest
import requests

from tests.reliability.invariants import violations

pytestmark = pytest.mark.slow

CLIENTS = 8
TENANTS = ('soak-a', 'soak-b', 'soak-c', 'soak-d')
OPERATIONS = int(os.environ.get('SOAK_OPERATIONS', '2500'))
TIME_LIMIT_SECONDS = 240
MAX_IMAGE_BYTES = 96 * 1024


def identity(tenant, client_number):
    return {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': tenant,
            'X-User-Id': 'soak-user-%d' % client_number, 'X-Roles': 'member'}


class SoakClient:
    """One client: a session, its tenant, the images it made and their MD5s."""

    def __init__(self, number, base_url, budget, tally):
        self.number, self.tenant = number, TENANTS[number % len(TENANTS)]
        self.url, self.budget, self.tally = base_url + '/v1', budget, tally
        self.http = requests.Session()
        self.http.headers.update(identity(self.tenant, number))
        self.random = random.Random(number)
        self.images = {}           # id -> md5 of its data, None while queued
        self.downloads_checked = 0

    def call(self, label, expected, method, path, **kwargs):
        response = self.http.request(method, self.url + path, timeout=60, **kwargs)
        self.tally.record(label, response.status_code, expected)
        return response

    # -- operations ------------------------------------------------------------------
    def create(self):
        data = self.random.randbytes(self.random.randrange(0, MAX_IMAGE_BYTES))
        headers = {'x-image-meta-name': 'soak-%d' % self.number,
                   'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare',
                   'Content-Type': 'application/octet-stream'}
        response = self.call('create with data', 201, 'POST', '/images', headers=headers,
                             data=data)
        if response.status_code == 201:
            image = response.json()['image']
            assert image['checksum'] == hashlib.md5(data).hexdigest()
            self.images[image['id']] = image['checksum']

    def create_then_upload(self):
        headers = {'x-image-meta-name': 'soak-queued-%d' % self.number,
                   'x-image-meta-disk_format': 'qcow2', 'x-image-meta-container_format': 'bare'}
        response = self.call('create queued', 201, 'POST', '/images', headers=headers)
        if response.status_code != 201:
            return
        image_id = response.json()['image']['id']
        self.images[image_id] = None
        data = self.random.randbytes(self.random.randrange(1, MAX_IMAGE_BYTES))
        response = self.call('upload to queued', 200, 'PUT', '/images/%s' % image_id,
                             headers={'Content-Type': 'application/octet-stream'}, data=data)
        if response.status_code == 200:
            self.images[image_id] = hashlib.md5(data).hexdigest()

    def head(self):
        self.call('HEAD own image', 200, 'HEAD', '/images/%s' % self.some_image())

    def download(self):
        image_id = self.some_image(with_data=True)
        response = self.call('download own image', 200, 'GET', '/images/%s' % image_id)
        if response.status_code == 200:
            assert hashlib.md5(response.content).hexdigest() == self.images[image_id]
            assert response.headers['x-image-meta-checksum'] == self.images[image_id]
            self.downloads_checked += 1

    def update(self):
        key = 'x-image-meta-property-k%d' % self.random.randrange(5)
        self.call('update properties', 200, 'PUT', '/images/%s' % self.some_image(),
                  headers={key: 'v%d' % self.random.randrange(1000)})

    def share(self):
        other = self.random.choice([t for t in TENANTS if t != self.tenant])
        image = '/images/%s/members/%s' % (self.some_image(), other)
        self.call('member add', 204, 'PUT', image)
        if self.random.random() < 0.5:
            self.call('member remove', 204, 'DELETE', image)

    def list_page(self):
        path = self.random.choice(['/images', '/images/detail', '/images/detail?limit=5',
                                   '/images/detail?disk_format=raw',
                                   '/images/detail?name=soak-%d' % self.number])
        self.call('list page', 200, 'GET', path)

    def shared_with_me(self):
        self.call('shared-with-me', 200, 'GET', '/shared-images/%s' % self.tenant)

    def delete(self):
        image_id = self.some_image()
        response = self.call('delete own image', 200, 'DELETE', '/images/%s' % image_id)
        if response.status_code == 200:
            del self.images[image_id]
            self.call('HEAD deleted image', 404, 'HEAD', '/images/%s' % image_id)

    def some_image(self, with_data=False):
        choices = [i for i, md5 in self.images.items() if md5 or not with_data]
        return self.random.choice(sorted(choices))

    def step(self):
        if len(self.images) < 3:
            return self.random.choice([self.create, self.create_then_upload])()
        operation = self.random.choices(
            [self.create, self.create_then_upload, self.head, self.download, self.update,
             self.share, self.list_page, self.shared_with_me, self.delete],
            weights=[8, 4, 20, 15, 12, 6, 15, 5, 8])[0]
        operation()

    def run(self, deadline):
        while time.monotonic() < deadline and self.budget.take():
            self.step()


class Budget:
    """The number of steps left, shared by every client."""

    def __init__(self, steps):
        self.left, self.lock = steps, threading.Lock()

    def take(self):
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


class Tally:
    """Requests by label and status; the unexpected ones in full."""

    def __init__(self):
        self.statuses, self.unexpected = collections.Counter(), []
        self.lock = threading.Lock()

    def record(self, label, status, expected):
        with self.lock:
            self.statuses[(label, status)] += 1
            if status != expected:
                self.unexpected.append((label, status, expected))

    @property
    def requests(self):
        return sum(self.statuses.values())


def test_soak_of_mixed_operations(runtime):
    budget, tally = Budget(OPERATIONS), Tally()
    clients = [SoakClient(n, runtime.base_url, budget, tally) for n in range(CLIENTS)]
    failures = []

    def run(client):
        try:
            client.run(time.monotonic() + TIME_LIMIT_SECONDS)
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(repr(error))
    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIME_LIMIT_SECONDS + 60)
    elapsed = time.monotonic() - started

    five_hundreds = sum(n for (_, status), n in tally.statuses.items() if status >= 500)
    downloads = sum(c.downloads_checked for c in clients)
    found = violations(endpoint_url=runtime.aws_endpoint, stage='local')
    print('\nsoak: %d steps, %d requests by %d clients in %.0f s; %d 5xx; %d unexpected '
          'statuses; %d downloads MD5-checked; %d invariant violations'
          % (OPERATIONS - budget.left, tally.requests, CLIENTS, elapsed, five_hundreds,
             len(tally.unexpected), downloads, len(found)))
    for (label, status), count in sorted(tally.statuses.items()):
        print('  %-20s %3d  x%d' % (label, status, count))
    assert not failures, failures
    assert budget.left == 0, 'the soak ran out of time after %d steps' % (
        OPERATIONS - budget.left)
    assert five_hundreds == 0
    assert tally.unexpected == []
    assert downloads > OPERATIONS // 20
    assert found == []
