"""The big-file uploader (`python -m glance_upload`) against the local runtime.

The runtime runs in trusted-headers mode so that the uploader's --header option
carries the identity; its embedded moto plays S3 behind the presigned URLs. It answers
reservations three parts a page, so that the uploader follows pages with small files.
"""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.parse

import pytest
import requests

from glance_upload import cli
from tests.e2e.support import PROJECT_DIR, LocalRuntime

TENANT = 'uploader-tenant'
IDENTITY = {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': TENANT, 'X-Roles': 'member'}
PART = 5 << 20
SIZE = 6 * PART + 12345      # seven parts, the last one small
PAGE = 3                     # parts a reservation answers at a time: pages of 3, 3, 1
TIMEOUT = 60


@pytest.fixture(scope='module')
def runtime():
    started = LocalRuntime('trusted-headers', extra_env={'GLANCE_UPLOAD_PARTS_PAGE': str(PAGE)})
    try:
        started.start()
        yield started
    finally:
        started.stop()
        os.unlink(started.log.name)


@pytest.fixture(scope='module')
def url(runtime):
    return runtime.base_url


def write_file(path, size):
    """Random bytes, written 1 MiB at a time; -> their MD5."""
    digest = hashlib.md5()
    with open(path, 'wb') as handle:
        for start in range(0, size, 1 << 20):
            chunk = os.urandom(min(1 << 20, size - start))
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


@pytest.fixture
def big_file(tmp_path):
    path = str(tmp_path / 'disk.raw')
    return path, write_file(path, SIZE)


def arguments(url, path, *extra):
    identity = [arg for name, value in IDENTITY.items()
                for arg in ('--header', '%s: %s' % (name, value))]
    return [path, '--url', url] + identity + [str(arg) for arg in extra]


def upload(url, path, *extra):
    """The uploader as a subprocess, as a user runs it."""
    command = [sys.executable, '-m', 'glance_upload'] + arguments(url, path, *extra)
    return subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=TIMEOUT)


def head(url, image_id):
    response = requests.head('%s/v1/images/%s' % (url, image_id), headers=IDENTITY, timeout=10)
    assert response.status_code == 200, response
    return response.headers


def every_part(url, image_id):
    """The parts of the reservation, following its `next` links; each part once."""
    parts, path = [], '/v1/images/%s/upload' % image_id
    while path:
        response = requests.get(url + path, headers=IDENTITY, timeout=10)
        assert response.status_code == 200, response.text
        upload = response.json()['upload']
        assert len(upload['parts']) <= PAGE
        parts += upload['parts']
        path = upload.get('next')
    assert [p['part_number'] for p in parts] == list(range(1, upload['part_count'] + 1))
    return parts


def reservation_gets(runtime, image_id):
    """How many times the image's reservation was fetched (the runtime's access log)."""
    with open(runtime.log.name, encoding='utf-8', errors='replace') as log:
        return log.read().count('GET /v1/images/%s/upload -> 200' % image_id)


def downloaded_md5(url, image_id):
    """GET the image data (large images answer with a redirect to S3)."""
    response = requests.get('%s/v1/images/%s' % (url, image_id),
                            headers=dict(IDENTITY, Accept='*/*'), timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:300]
    return hashlib.md5(response.content).hexdigest()


def state_of(path):
    with open(path + cli.STATE_SUFFIX, encoding='utf-8') as handle:
        return json.load(handle)


def test_uploads_a_big_file_in_parallel_parts(url, big_file, runtime):
    path, md5 = big_file
    result = upload(url, path, '--part-size', PART, '--parallel', 4, '--name', 'big-one')

    assert result.returncode == 0, result.stderr
    image = json.loads(result.stdout)
    assert (image['status'], image['checksum'], image['size']) == ('active', md5, SIZE)
    assert (image['name'], image['owner'], image['disk_format'], image['container_format']) \
        == ('big-one', TENANT, 'raw', 'bare')
    assert '7 parts, 0 already uploaded (skipped), 7 uploaded' in result.stderr
    assert reservation_gets(runtime, image['id']) == 2   # pages 2 and 3 (the POST: 1)
    assert not os.path.exists(path + cli.STATE_SUFFIX)
    headers = head(url, image['id'])
    assert (headers['x-image-meta-status'], headers['x-image-meta-checksum']) == ('active', md5)
    assert downloaded_md5(url, image['id']) == md5


def test_resumes_an_interrupted_upload_with_the_missing_parts_only(url, big_file, monkeypatch,
                                                                   capsys):
    path, md5 = big_file
    stopped = upload(url, path, '--part-size', PART, '--parallel', 4, '--stop-after-parts', 4)

    assert stopped.returncode == cli.EXIT_STOPPED, stopped.stderr
    assert 'run the same command again to resume' in stopped.stderr
    assert '-m glance_upload %s --url %s' % (path, url) in stopped.stderr
    assert stopped.stdout == ''
    state = state_of(path)
    assert state['url'] == url + '/v1' and state['checksum'] == md5
    image_id = state['image_id']
    assert head(url, image_id)['x-image-meta-status'] == 'queued'
    parts = every_part(url, image_id)   # the first page, and one part of the second
    assert [p['part_number'] for p in parts if p['uploaded']] == [1, 2, 3, 4]
    assert all(p['etag'] for p in parts if p['uploaded'])

    # the second run, in this process, to see every PUT it sends to S3 and every page
    # it asks for
    sent, asked = [], []
    real_put = requests.Session.put

    def spy(session, put_url, *args, **kwargs):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(put_url).query)
        sent.append(int(query['partNumber'][0]))
        return real_put(session, put_url, *args, **kwargs)
    monkeypatch.setattr(requests.Session, 'put', spy)
    real_reservation = cli.Glance.reservation

    def reservation_spy(glance, image_id, part_marker=None):
        asked.append(part_marker)
        return real_reservation(glance, image_id, part_marker)
    monkeypatch.setattr(cli.Glance, 'reservation', reservation_spy)
    assert cli.main(arguments(url, path, '--parallel', 4)) == 0

    out, err = capsys.readouterr()
    assert sorted(sent) == [5, 6, 7]
    assert asked == [None, 3, 6]   # the first page, then the others as reached
    assert '7 parts, 4 already uploaded (skipped), 3 uploaded' in err
    image = json.loads(out)
    assert (image['id'], image['status'], image['checksum'], image['size']) == \
        (image_id, 'active', md5, SIZE)
    assert not os.path.exists(path + cli.STATE_SUFFIX)
    assert downloaded_md5(url, image_id) == md5


def test_single_put_into_an_existing_image(url, tmp_path):
    path = str(tmp_path / 'small.iso')
    md5 = write_file(path, 3 << 20)  # under the service's part size: one presigned PUT
    created = requests.post(url + '/v1/images', headers=dict(
        IDENTITY, **{'x-image-meta-name': 'made-first', 'x-image-meta-disk_format': 'iso',
                     'x-image-meta-container_format': 'bare'}), timeout=10)
    assert created.status_code == 201, created.text
    image_id = created.json()['image']['id']

    result = upload(url, path, '--image-id', image_id)

    assert result.returncode == 0, result.stderr
    assert '1 parts, 0 already uploaded' in result.stderr
    image = json.loads(result.stdout)
    assert (image['id'], image['name'], image['status'], image['checksum'], image['size']) == \
        (image_id, 'made-first', 'active', md5, 3 << 20)


def test_an_expired_part_url_is_replaced(url, tmp_path, monkeypatch, capsys):
    """S3 answers 403 to an expired presigned URL (moto does not expire them, so the
    first PUT of part 2 gets a 403 here): the uploader asks for a fresh URL."""
    path = str(tmp_path / 'two-parts.raw')
    md5 = write_file(path, PART + 1)
    urls = []
    real_put = requests.Session.put

    def expire_first_url_of_part_2(session, put_url, *args, **kwargs):
        urls.append(put_url)
        if 'partNumber=2' in put_url and len([u for u in urls if 'partNumber=2' in u]) == 1:
            kwargs['data'].read()  # as if sent
            expired = requests.Response()
            expired.status_code, expired._content = 403, b'<Error>Request has expired</Error>'
            return expired
        return real_put(session, put_url, *args, **kwargs)
    monkeypatch.setattr(requests.Session, 'put', expire_first_url_of_part_2)
    asked = []
    real_reservation = cli.Glance.reservation

    def reservation_spy(glance, image_id, part_marker=None):
        asked.append(part_marker)
        return real_reservation(glance, image_id, part_marker)
    monkeypatch.setattr(cli.Glance, 'reservation', reservation_spy)

    assert cli.main(arguments(url, path, '--part-size', PART)) == 0

    # part 2 went twice, the second time to a URL from the page that begins with it
    assert len([u for u in urls if 'partNumber=2' in u]) == 2
    assert asked == [1]
    image = json.loads(capsys.readouterr().out)
    assert (image['status'], image['checksum']) == ('active', md5)


def test_bytes_changed_behind_the_uploader_kill_the_image(url, tmp_path):
    """The reservation carries the MD5 of the file; the service checks it."""
    path = str(tmp_path / 'tampered.raw')
    write_file(path, PART + 100)
    assert upload(url, path, '--part-size', PART, '--stop-after-parts', 1).returncode == \
        cli.EXIT_STOPPED
    image_id = state_of(path)['image_id']
    status = os.stat(path)
    with open(path, 'r+b') as handle:  # change part 2, keep size and mtime
        handle.seek(PART + 10)
        handle.write(b'tampered')
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))

    result = upload(url, path)

    assert result.returncode == 1
    assert 'image %s was killed' % image_id in result.stderr
    assert json.loads(result.stdout)['status'] == 'killed'
    assert head(url, image_id)['x-image-meta-status'] == 'killed'
    assert not os.path.exists(path + cli.STATE_SUFFIX)


def test_a_changed_file_is_not_resumed(url, tmp_path):
    path = str(tmp_path / 'grown.raw')
    write_file(path, PART + 100)
    assert upload(url, path, '--part-size', PART, '--stop-after-parts', 1).returncode == \
        cli.EXIT_STOPPED
    with open(path, 'ab') as handle:
        handle.write(b'more')

    result = upload(url, path)

    assert result.returncode == 1
    assert 'changed since its upload started' in result.stderr
    assert os.path.exists(path + cli.STATE_SUFFIX)  # kept: the user decides


# The uploader with every 1 MiB it reads from the file slowed down, so that a signal
# finds parts in flight (the real uploader, only slower).
SLOW_UPLOADER = """
import sys, time
from glance_upload import cli
read = cli.FileWindow.read
def slow_read(window, amount=-1):
    time.sleep(0.2)
    return read(window, amount)
cli.FileWindow.read = slow_read
sys.exit(cli.main(sys.argv[1:]))
"""


def wait_for(condition, what, seconds=TIMEOUT):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, 'no %s after %d s' % (what, seconds)
        time.sleep(0.05)


@pytest.mark.parametrize('signal_number', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_upload_and_the_printed_command_resumes_it(url, big_file,
                                                                       signal_number):
    path, md5 = big_file
    command = [sys.executable, '-c', SLOW_UPLOADER] + arguments(
        url, path, '--part-size', PART, '--parallel', 2)
    uploader = subprocess.Popen(command, cwd=PROJECT_DIR, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        # the state file exists once the image is made and reserved; then a random moment
        wait_for(lambda: os.path.exists(path + cli.STATE_SUFFIX), 'state file')
        time.sleep(random.uniform(0, 2))
        uploader.send_signal(signal_number)
        out, err = uploader.communicate(timeout=TIMEOUT)
    finally:
        if uploader.poll() is None:
            uploader.kill()
            uploader.wait()

    name = signal.Signals(signal_number).name
    assert uploader.returncode == cli.EXIT_STOPPED, err
    assert out == '' and 'Traceback' not in err
    assert 'stopped by %s; %s is kept' % (name, path + cli.STATE_SUFFIX) in err
    image_id = state_of(path)['image_id']
    assert head(url, image_id)['x-image-meta-status'] == 'queued'
    uploaded = [p['part_number'] for p in every_part(url, image_id) if p['uploaded']]
    assert len(uploaded) < 7   # stopped with parts still to send

    printed = err.split('run the same command again to resume:\n', 1)[1].strip()
    assert printed.startswith('cd ') and ' -m glance_upload ' in printed
    resumed = subprocess.run(printed, shell=True, capture_output=True, text=True,
                             timeout=TIMEOUT)

    assert resumed.returncode == 0, resumed.stderr
    assert '7 parts, %d already uploaded (skipped), %d uploaded' % (
        len(uploaded), 7 - len(uploaded)) in resumed.stderr
    image = json.loads(resumed.stdout)
    assert (image['id'], image['status'], image['checksum'], image['size']) == \
        (image_id, 'active', md5, SIZE)
    assert not os.path.exists(path + cli.STATE_SUFFIX)
    assert downloaded_md5(url, image_id) == md5


def test_the_resume_command_does_not_print_a_token():
    shown = cli.resume_command(['disk.raw', '--token', 'secret-1', '--header',
                                'X-Auth-Token: secret-2', '--name', 'my disk'])
    assert 'secret' not in shown
    assert shown.endswith("-m glance_upload disk.raw --token \"$OS_AUTH_TOKEN\" --header "
                          "\"X-Auth-Token: $OS_AUTH_TOKEN\" --name 'my disk' "
                          "(with OS_AUTH_TOKEN set to your token)")
