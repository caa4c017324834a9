"""python -m glance_upload FILE: reserve, upload the parts in parallel, complete, verify.

Exit status: 0 the image is active; 1 failure (message on stderr); 3 stopped before
completion (SIGINT/Ctrl-C or SIGTERM included): the state file is kept and the command
that resumes is printed. The final image record is printed on stdout as JSON;
everything else goes to stderr.

For tests only, the hidden option --stop-after-parts K uploads at most K missing parts
and then exits 3, leaving the state file, as an interruption would.
"""
import argparse
import contextlib
import hashlib
import json
import math
import os
import shlex
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import requests
from tqdm import tqdm

from glance_upload.api import ApiError, Glance

CHUNK = 1 << 20             # hashing granularity
ATTEMPTS = 4                # per part: a presigned PUT can simply be sent again
PUT_TIMEOUT = (10, 300)     # (connect, read) seconds
STATE_SUFFIX = '.glance-upload.json'
EXIT_FAILED, EXIT_STOPPED = 1, 3
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class UploadError(Exception):
    """A failure explained to the user."""


class Stopped(Exception):
    """Stopped before completion; the state file lets a rerun resume."""


class StopSignals:
    """SIGINT and SIGTERM stop the upload as Stopped, raised in the main thread (the
    parts in flight then give up at their next read). Inside `deferred()` (creating the
    image and saving the state file) a signal waits for its end, so that no image is
    left without the state file that resumes it."""

    def __init__(self):
        self.received, self._deferring = None, 0

    def __enter__(self):
        self._previous = {number: signal.signal(number, self._handle) for number in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number, frame):
        if self.received is not None:
            return  # stopping already: a second Ctrl-C does not break the clean-up
        self.received = signal.Signals(number).name
        if not self._deferring:
            raise Stopped('stopped by %s' % self.received)

    @contextlib.contextmanager
    def deferred(self):
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if self.received is not None and not self._deferring:
            raise Stopped('stopped by %s' % self.received)


def log(message):
    tqdm.write(message, file=sys.stderr)  # does not garble a progress bar


# -- the state file -----------------------------------------------------------------------
def load_state(path):
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError:
        raise UploadError('%s is not a valid state file; delete it to start over' % path)


def save_state(path, state):
    temporary = path + '.tmp'  # write then rename: never a half-written state file
    with open(temporary, 'w', encoding='utf-8') as handle:
        json.dump(state, handle, indent=2)
    os.replace(temporary, path)


def remove_state(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def file_identity(path):
    """Size and mtime: enough to notice the file changed between two runs."""
    status = os.stat(path)
    return {'size': status.st_size, 'mtime_ns': status.st_mtime_ns}


def md5_of(path, size):
    digest = hashlib.md5()
    with open(path, 'rb') as handle, tqdm(total=size, desc='md5', unit='B', unit_scale=True,
                                          unit_divisor=1024, disable=None, leave=False) as bar:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


# -- sending the bytes ---------------------------------------------------------------------
class FileWindow:
    """`size` bytes of a file from `offset`, read by requests as it sends them.

    Memory stays at a few small buffers per thread, whatever the part size.
    """

    def __init__(self, path, offset, size, on_read, stop):
        self.file = open(path, 'rb')
        self.file.seek(offset)
        self.size = self.left = size
        self.sent = 0
        self.on_read, self.stop = on_read, stop

    def __len__(self):  # requests sends Content-Length, which the presigned URL signs
        return self.size

    def __iter__(self):  # requests streams objects that are iterable
        return iter(lambda: self.read(CHUNK), b'')

    def read(self, amount=-1):
        if self.stop.is_set():
            raise Stopped('interrupted')
        amount = self.left if amount is None or amount < 0 else min(amount, self.left)
        data = self.file.read(amount)
        if amount and not data:
            raise UploadError('%s shrank while it was being uploaded' % self.file.name)
        self.left -= len(data)
        self.sent += len(data)
        self.on_read(len(data))
        return data

    def close(self):
        self.file.close()


class Uploader:
    """Uploads the parts of a reservation that are not uploaded yet, in parallel."""

    def __init__(self, glance, path, parallel, stop_after=None):
        self.glance, self.path, self.parallel, self.stop_after = glance, path, parallel, stop_after
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.local = threading.local()
        self.bar = None

    def upload(self, image_id, upload):
        """-> [{part_number, etag}] of every part (multipart), or None (single PUT).

        The parts come a page at a time: the next page is asked for when the uploads
        reach it, so its URLs are fresh when they are used.
        """
        count = 1 if upload['mode'] == 'single' else \
            math.ceil(upload['size'] / upload['part_size'])
        log('image %s: %d parts' % (image_id, count))
        etags, skipped, sent = {}, 0, 0
        with tqdm(total=upload['size'], desc='upload', unit='B', unit_scale=True,
                  unit_divisor=1024, disable=None) as self.bar:
            pool = ThreadPoolExecutor(self.parallel)
            running = {}

            def collect(until):
                while len(running) > until:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        etags[running.pop(future)['part_number']] = future.result()
            try:
                for part in self.parts(image_id, upload):
                    if part['uploaded']:
                        etags[part['part_number']] = part['etag']
                        skipped += 1
                        self.progress(part['size'])
                        continue
                    if self.stop_after is not None and sent >= self.stop_after:
                        break
                    collect(2 * self.parallel - 1)  # a few queued, no more
                    running[pool.submit(self.put_part, image_id, upload, part)] = part
                    sent += 1
                collect(0)
            except BaseException:
                self.stop.set()  # the other threads give up at their next read
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        log('image %s: %d parts, %d already uploaded (skipped), %d uploaded'
            % (image_id, count, skipped, sent))
        if len(etags) < count:
            raise Stopped('stopped after %d parts (--stop-after-parts)' % sent)
        if upload['mode'] == 'single':
            return None
        return [{'part_number': number, 'etag': etag} for number, etag in sorted(etags.items())]

    def parts(self, image_id, upload):
        """Every part of the reservation, asking for its pages one after the other."""
        if upload['mode'] == 'single':
            yield {'part_number': 1, 'size': upload['size'], 'uploaded': False,
                   'url': upload['url'], 'headers': upload['headers']}
            return
        page = upload
        while True:
            yield from page['parts']
            if page.get('next_part_marker') is None:
                return
            page = self.glance.reservation(image_id, page['next_part_marker'])
            if page.get('upload_id') != upload['upload_id']:
                raise UploadError('the upload of image %s was replaced by another one '
                                  'meanwhile' % image_id)

    def put_part(self, image_id, upload, part):
        number, url = part['part_number'], part['url']
        offset = (number - 1) * (upload.get('part_size') or 0)
        headers = part.get('headers') or {'Content-Length': str(part['size'])}
        failure = None
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(2 ** attempt)
            if self.stop.is_set():
                raise Stopped('interrupted')
            body = FileWindow(self.path, offset, part['size'], self.progress, self.stop)
            response = None
            try:
                response = self.session().put(url, data=body, headers=headers,
                                              timeout=PUT_TIMEOUT)
            except requests.RequestException as error:
                failure = error
            finally:
                body.close()
            if response is not None and response.ok:
                return response.headers.get('ETag')
            self.progress(-body.sent)  # those bytes go again
            if response is not None:
                failure = 'HTTP %d %s' % (response.status_code, response.text[:300])
                if response.status_code == 403:  # most likely an expired URL
                    url = self.fresh_url(image_id, number)
        raise UploadError('part %d failed after %d attempts: %s' % (number, ATTEMPTS, failure))

    def fresh_url(self, image_id, number):
        upload = self.glance.reservation(image_id, number - 1)  # the page it begins
        if upload['mode'] == 'single':
            return upload['url']
        part = next(p for p in upload['parts'] if p['part_number'] == number)
        if part['uploaded']:
            raise UploadError('part %d was uploaded by someone else meanwhile' % number)
        return part['url']

    def progress(self, amount):
        with self.lock:  # tqdm counters are not thread-safe
            self.bar.update(amount)

    def session(self):
        if not hasattr(self.local, 'session'):  # one connection pool per thread
            self.local.session = requests.Session()
        return self.local.session


# -- the steps -----------------------------------------------------------------------------
def check_state(state, glance, args, identity, state_path):
    start_over = 'delete %s to start over' % state_path
    if state.get('url') != glance.base:
        raise UploadError('%s is for an upload to %s, not %s; %s'
                          % (state_path, state.get('url'), glance.base, start_over))
    if args.image_id and args.image_id != state.get('image_id'):
        raise UploadError('%s is for image %s, not %s; %s'
                          % (state_path, state.get('image_id'), args.image_id, start_over))
    if {key: state.get(key) for key in identity} != identity:
        raise UploadError('%s changed since its upload started; %s' % (args.file, start_over))


def resume(glance, state, part_size):
    """The reservation to continue, or None when only the outcome is missing."""
    image_id = state['image_id']
    if glance.image(image_id)['status'] != 'queued':
        return None  # completed already: saving, active or killed
    try:
        return glance.reservation(image_id)
    except ApiError as error:
        if error.status != 409:
            raise
    # queued without a reservation: it was aborted; reserve again
    return glance.reserve(image_id, state['size'], state['checksum'], part_size)


def start(glance, args, identity, checksum):
    """Create the image (unless --image-id) and reserve the upload -> (state, upload)."""
    image_id = args.image_id
    if not image_id:
        image_id = glance.create_image(args.name or os.path.basename(args.file),
                                       args.disk_format, args.container_format)['id']
        log('created image %s' % image_id)
    try:
        upload = glance.reserve(image_id, identity['size'], checksum, args.part_size)
    except ApiError:
        if not args.image_id:  # leave no empty image behind, if we can
            try:
                glance.call('DELETE', '/images/%s' % image_id, (200, 204, 404))
            except (ApiError, OSError):
                pass
        raise
    state = dict(identity, url=glance.base, image_id=image_id,
                 file=os.path.abspath(args.file), checksum=checksum)
    return state, upload


def complete(glance, image_id, parts):
    try:
        glance.complete(image_id, parts)
    except ApiError as error:
        # a single PUT completes by itself when the finalizer sees the object first
        if error.status != 409 or glance.image(image_id)['status'] == 'queued':
            raise


def wait_for_outcome(glance, image_id, seconds):
    log('image %s: waiting for the service to verify size and MD5' % image_id)
    deadline, delay = time.monotonic() + seconds, 0.2
    while True:
        image = glance.image(image_id)
        if image['status'] in ('active', 'killed') or time.monotonic() >= deadline:
            return image
        time.sleep(delay)
        delay = min(delay * 2, 2)


def run(args, signals):
    if not os.path.isfile(args.file):
        raise UploadError('%s is not a file' % args.file)
    state_path = args.state_file
    glance = Glance(args.url, args.headers)
    identity = file_identity(args.file)
    if identity['size'] == 0:
        raise UploadError('%s is empty: a presigned upload needs at least one byte' % args.file)
    state = load_state(state_path)
    if state:
        check_state(state, glance, args, identity, state_path)
        log('resuming the upload of %s to image %s (%s)' % (args.file, state['image_id'],
                                                             state_path))
        upload = resume(glance, state, args.part_size)
    else:
        checksum = md5_of(args.file, identity['size'])
        with signals.deferred():
            state, upload = start(glance, args, identity, checksum)
            save_state(state_path, state)  # from here on, a rerun resumes this image
    image_id = state['image_id']
    if upload is not None:
        parts = Uploader(glance, args.file, args.parallel, args.stop_after_parts).upload(
            image_id, upload)
        complete(glance, image_id, parts)
    image = wait_for_outcome(glance, image_id, args.wait)
    if image['status'] not in ('active', 'killed'):
        raise UploadError('image %s is still %s after %d s; run again to keep waiting'
                          % (image_id, image['status'], args.wait))
    remove_state(state_path)  # the outcome is final either way
    print(json.dumps(image, indent=2, sort_keys=True))
    if image['status'] == 'killed':
        raise UploadError('image %s was killed: the service rejected the upload (size or '
                          'MD5 mismatch, size cap or storage quota)' % image_id)
    if image.get('checksum') != state['checksum']:
        raise UploadError('image %s is active with checksum %s, but %s has MD5 %s'
                          % (image_id, image.get('checksum'), args.file, state['checksum']))
    return 0


# -- the command line ----------------------------------------------------------------------
def header(text):
    name, colon, value = text.partition(':')
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError("expected 'Name: value', got %r" % text)
    return name.strip(), value.strip()


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be a positive integer')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m glance_upload',
        description='Upload a big file to a Glance v1 image through presigned S3 URLs, '
                    'in parallel parts; run the same command again to resume.')
    parser.add_argument('file')
    parser.add_argument('--url', default=os.environ.get('OS_IMAGE_URL', 'http://127.0.0.1:9292'),
                        help='the API (default $OS_IMAGE_URL or %(default)s)')
    parser.add_argument('--name', help='image name (default: the file name)')
    parser.add_argument('--disk-format', default='raw')
    parser.add_argument('--container-format', default='bare')
    parser.add_argument('--token', default=os.environ.get('OS_AUTH_TOKEN'),
                        help='sent as X-Auth-Token (default $OS_AUTH_TOKEN)')
    parser.add_argument('--header', type=header, action='append', default=[],
                        metavar="'NAME: VALUE'", help='extra API header (repeatable), e.g. '
                        "'X-Identity-Status: Confirmed'")
    parser.add_argument('--part-size', type=positive, metavar='BYTES',
                        help='forces a multipart upload with parts of this size '
                             '(the service rounds it up to at least 5 MiB)')
    parser.add_argument('--parallel', type=positive, default=4, metavar='N',
                        help='parts uploaded at once (default %(default)s)')
    parser.add_argument('--image-id', help='upload into this queued image instead of '
                                           'creating one')
    parser.add_argument('--state-file', metavar='PATH',
                        help='resume state (default: FILE%s)' % STATE_SUFFIX)
    parser.add_argument('--wait', type=positive, default=600, metavar='SECONDS',
                        help='how long to wait for the verification (default %(default)s)')
    # for tests: upload at most K missing parts, then stop as an interruption would
    parser.add_argument('--stop-after-parts', type=int, metavar='K', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.state_file = args.state_file or args.file + STATE_SUFFIX
    args.headers = dict(args.header)
    if args.token:
        args.headers['X-Auth-Token'] = args.token
    return args


def resume_command(argv):
    """The command that resumes: this one, from this directory; a token given on the
    command line is shown as $OS_AUTH_TOKEN (the uploader's default), not printed."""
    shown, hidden, words = [], False, list(argv)
    while words:
        word = words.pop(0)
        if word == '--token' and words:
            words.pop(0)
            shown.append('--token "$OS_AUTH_TOKEN"')
            hidden = True
        elif word.startswith('--token='):
            shown.append('--token "$OS_AUTH_TOKEN"')
            hidden = True
        elif word == '--header' and words and \
                words[0].partition(':')[0].strip().lower() == 'x-auth-token':
            words.pop(0)
            shown.append('--header "X-Auth-Token: $OS_AUTH_TOKEN"')
            hidden = True
        else:
            shown.append(shlex.quote(word))
    command = 'cd %s && %s -m glance_upload %s' % (
        shlex.quote(os.getcwd()), shlex.quote(sys.executable), ' '.join(shown))
    return command + (' (with OS_AUTH_TOKEN set to your token)' if hidden else '')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        with StopSignals() as signals:
            return run(args, signals)
    except Stopped as stop:
        if os.path.exists(args.state_file):
            log('%s; %s is kept: run the same command again to resume:\n  %s'
                % (stop, args.state_file, resume_command(argv)))
        else:
            log('%s before any image was made; to start again, run:\n  %s'
                % (stop, resume_command(argv)))
        return EXIT_STOPPED
    except (UploadError, ApiError, OSError) as error:  # requests' errors are OSErrors
        log('error: %s' % error)
        return EXIT_FAILED
