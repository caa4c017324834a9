"""Fault injection: every S3 and DynamoDB call of each write flow fails, one at a time.

The flows: create with inline data, upload to a queued image, a presigned multipart
reservation, a presigned single PUT finalized by its bucket event, a presigned
multipart upload completed then finalized, a metadata update, a delete, and adding,
replacing and removing members.

1. Each flow runs once cleanly, recording the sequence of AWS calls it makes
   (botocore's `BaseClient._make_api_call` sees PynamoDB's calls and boto3's alike).
2. For each call i, the flow runs again on a fresh world with call i failing, once
   per kind of failure: `refused` (DynamoDB ProvisionedThroughputExceededException,
   S3 SlowDown), `unreachable` (EndpointConnectionError: nothing done) and `lost`
   (the call is done, then ReadTimeoutError: the answer never came back). The
   failure is raised above botocore's own retries: one that outlasted them.

What must hold afterwards:

* the request answers as it would have without the failure (the failing call was
  not needed, or the service repaired its failure), or 503 saying what is
  unavailable (also allowed for `lost` when the work was done: the service cannot
  know); never 500;
* the image is where the clean run leaves it, or where the flow's failure may leave
  it: unchanged, `killed` for a failed upload (v1 §6, §8), for a create no image
  or its `queued`/`killed` record (v1 §5);
* `tests.reliability.invariants.violations()` is empty: no orphan object or multipart upload,
  no image stuck in `saving`, no active image without its object, member counts
  true; and the member of a deleted image never sees it.

Designed recoveries applied before checking, as the deployment has them: a finalizer
that raises gets its event again (Lambda retries asynchronous invocations, the local
pump keeps the SQS message); a `PUT .../members` answered 503 is retried by the
client (replacing a list is idempotent, not atomic); a multipart upload S3 created
but whose answer was lost is aborted by the bucket's lifecycle rule (nothing else
knows its id). When every delivery of an event fails, the reaper cleans up (the
last test but one).

Run with `-s` for the totals (flows, failures injected, statuses by code).
"""
import collections
import contextlib
import hashlib
import json
import threading
import urllib.parse
from unittest import mock

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from chalicelib.config import settings
from tests.helpers import OCTET, create_image, meta_headers, tenant, wipe_catalog
from tests.reliability.invariants import violations

pytestmark = [pytest.mark.slow, pytest.mark.shared_world]

A = tenant('tenant-a')
JSON = {'Content-Type': 'application/json'}
IMAGE_ID = '0b0e5a4e-7f5e-4c31-9d0a-6a4f2c1f0a01'   # fixed: runs compare across worlds
DATA = bytes(range(256)) * 8                          # 2 KiB
PART = 5 << 20
KINDS = ('refused', 'unreachable', 'lost')
TOTALS = collections.Counter()
STATUSES = collections.Counter()

_real_make_api_call = BaseClient._make_api_call


# -- failures -----------------------------------------------------------------------
def failure(kind, service, operation):
    """The exception a failing call raises."""
    if kind == 'lost':
        return ReadTimeoutError(endpoint_url='https://%s.us-east-1.amazonaws.com' % service)
    if kind == 'unreachable':
        return EndpointConnectionError(endpoint_url='https://%s.us-east-1.amazonaws.com'
                                       % service)
    code, status = {'dynamodb': ('ProvisionedThroughputExceededException', 400),
                    's3': ('SlowDown', 503)}[service]
    if kind == 'invalid':
        code, status = 'ValidationException', 400
    return ClientError({'Error': {'Code': code, 'Message': 'injected: %s' % code},
                        'ResponseMetadata': {'HTTPStatusCode': status}}, operation)


class Calls:
    """Records every AWS call (service, operation); the failing one raises."""

    def __init__(self, fail_at=None, kind=None):
        """`fail_at`: a call number, or fail_at(index, service, operation, params)."""
        self.fails = fail_at if callable(fail_at) else lambda index, *_: index == fail_at
        self.kind = kind
        self.calls, self.failed = [], None
        self._lock = threading.Lock()

    def __call__(self, client, operation, params):
        service = client.meta.service_model.service_name
        with self._lock:
            index = len(self.calls)
            self.calls.append((service, operation))
        if not self.fails(index, service, operation, params):
            return _real_make_api_call(client, operation, params)
        self.failed = (service, operation)
        if self.kind == 'lost':   # done, but the answer never came back
            _real_make_api_call(client, operation, params)
        raise failure(self.kind, service, operation)

    @contextlib.contextmanager
    def active(self):
        with mock.patch.object(BaseClient, '_make_api_call',
                               lambda client, operation, params: self(client, operation,
                                                                      params)):
            yield self


# -- the world ------------------------------------------------------------------------
class World:
    def __init__(self, client):
        from chalicelib.api.common import image_service
        self.client = client
        self.s3 = image_service().blobs.client
        self.bucket = settings().image_bucket

    def reset(self):
        wipe_catalog()
        listing = self.s3.list_multipart_uploads(Bucket=self.bucket)
        for upload in listing.get('Uploads', []):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=upload['Key'],
                                           UploadId=upload['UploadId'])
        for item in self.s3.list_objects_v2(Bucket=self.bucket).get('Contents', []):
            self.s3.delete_object(Bucket=self.bucket, Key=item['Key'])

    def expire_incomplete_uploads(self):
        """The bucket's lifecycle rule (infra/resources.yaml) aborting a multipart
        upload S3 created and the service never heard of (CreateMultipartUpload's
        answer lost): only that rule can, as nothing knows its id."""
        from chalicelib.storage.catalog import ImageCatalog
        image = ImageCatalog().get(IMAGE_ID)
        recorded = (image['pending_upload'] or {}).get('upload_id') if image else None
        listing = self.s3.list_multipart_uploads(Bucket=self.bucket)
        for upload in listing.get('Uploads', []):
            if upload['UploadId'] != recorded:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=upload['Key'],
                                               UploadId=upload['UploadId'])

    def state(self):
        """What a flow may change, without timestamps and versions."""
        from chalicelib.storage.catalog import _to_dict
        from chalicelib.storage.models import ImageMemberModel, ImageModel
        images = {}
        for model in ImageModel.scan(consistent_read=True):
            image = _to_dict(model)
            pending = image['pending_upload']
            images[image['id']] = {
                field: image[field] for field in (
                    'status', 'deleted', 'name', 'size', 'checksum', 'properties',
                    'location', 'cached_location')}
            images[image['id']].update(
                pending_upload=pending and pending['upload_id'] or bool(pending),
                purge_at=bool(image['purge_at']))
        # rows of a deleted image are never shown (tests.reliability.invariants, rule 6)
        members = sorted((m.image_id, m.member, bool(m.can_share))
                         for m in ImageMemberModel.scan(consistent_read=True)
                         if not images.get(m.image_id, {}).get('deleted'))
        objects = {item['Key']: item['Size'] for item in
                   self.s3.list_objects_v2(Bucket=self.bucket).get('Contents', [])}
        uploads = sorted(u['Key'] for u in self.s3.list_multipart_uploads(
            Bucket=self.bucket).get('Uploads', []))
        return {'images': images, 'members': members, 'objects': objects,
                'multipart': uploads}


@pytest.fixture(scope='module')
def world(shared_client):
    """This module's own view of the world (overrides conftest's `world`)."""
    return World(shared_client)


# -- the flows --------------------------------------------------------------------------
def _created(client, **fields):
    response, image = create_image(client, A, id=IMAGE_ID, **fields)
    assert response.status_code == 201, response.body
    return image


def _share(client, member, can_share=False):
    response = client.http.put('/v1/images/%s/members/%s' % (IMAGE_ID, member),
                               headers=dict(A, **JSON),
                               body=json.dumps({'member': {'can_share': can_share}}))
    assert response.status_code == 204, response.body


def _finalize():
    from chalicelib.events import finalize_bucket_event
    return finalize_bucket_event({'Records': [{
        'eventName': 'ObjectCreated:Put', 's3': {
            'bucket': {'name': settings().image_bucket},
            'object': {'key': urllib.parse.quote_plus('uploads/' + IMAGE_ID)}}}]})


class Flow:
    """prepare() sets the world up (no failures); act() is the flow under test and
    returns its HTTP response (None for a bucket event)."""
    name = ''
    retried_by_client = False     # a 503 is followed by the same request again
    settings = {}                 # settings in force for the flow's runs

    def prepare(self, client, world):
        pass

    def act(self, client, world):
        raise NotImplementedError

    def failed_states(self, before, image):
        """Whether a failure may leave IMAGE_ID so (besides as the clean run does)."""
        return image == before['images'].get(IMAGE_ID)

    def observe(self, client, outcome):
        """Problems a client would see after the run."""
        return []


class CreateInline(Flow):
    name = 'create with inline data'

    def act(self, client, world):
        response, _ = create_image(client, A, data=DATA, id=IMAGE_ID)
        return response

    def failed_states(self, before, image):
        # no record; or the record the create made, queued (no upload started) or
        # killed (the upload failed), without data
        return image is None or (image['status'] in ('queued', 'killed')
                                 and image['location'] is None)


class UploadToQueued(Flow):
    name = 'upload to a queued image'

    def prepare(self, client, world):
        _created(client)

    def act(self, client, world):
        return client.http.put('/v1/images/' + IMAGE_ID, headers=dict(A, **OCTET),
                               body=DATA)

    def failed_states(self, before, image):
        return image == before['images'][IMAGE_ID] or (
            image['status'] == 'killed' and image['location'] is None)


class Reserve(Flow):
    """POST .../upload: a multipart upload is created, then recorded on the image."""
    name = 'presigned multipart reservation'

    def prepare(self, client, world):
        _created(client)

    def act(self, client, world):
        return client.http.post('/v1/images/%s/upload' % IMAGE_ID, headers=dict(A, **JSON),
                                body=json.dumps({'size': len(DATA), 'part_size': PART}))

    def failed_states(self, before, image):
        return image == before['images'][IMAGE_ID]


class PresignedSingle(Flow):
    """The object lands by a presigned PUT; its ObjectCreated event finalizes it."""
    name = 'presigned single PUT finalized'

    def prepare(self, client, world):
        _created(client)
        response = client.http.post('/v1/images/%s/upload' % IMAGE_ID,
                                    headers=dict(A, **JSON),
                                    body=json.dumps({'size': len(DATA)}))
        assert response.status_code == 201, response.body
        world.s3.put_object(Bucket=world.bucket, Key='uploads/' + IMAGE_ID, Body=DATA,
                            ContentType='application/octet-stream')

    def act(self, client, world):
        _finalize()
        return None

    def failed_states(self, before, image):
        return False   # redelivered, the event must activate the image


class PresignedMultipart(Flow):
    """POST .../upload/complete assembles the parts; the bucket event finalizes."""
    name = 'presigned multipart completed and finalized'

    def prepare(self, client, world):
        _created(client)
        response = client.http.post(
            '/v1/images/%s/upload' % IMAGE_ID, headers=dict(A, **JSON),
            body=json.dumps({'size': len(DATA), 'part_size': PART,
                             'checksum': hashlib.md5(DATA).hexdigest()}))
        assert response.status_code == 201, response.body
        upload = json.loads(response.body)['upload']
        world.s3.upload_part(Bucket=world.bucket, Key='uploads/' + IMAGE_ID,
                             UploadId=upload['upload_id'], PartNumber=1, Body=DATA)

    def act(self, client, world):
        response = client.http.post('/v1/images/%s/upload/complete' % IMAGE_ID, headers=A)
        if response.status_code == 202:
            _finalize()   # the event CompleteMultipartUpload sends
        return response

    def failed_states(self, before, image):
        # complete failed: the reservation is intact, or the image was killed
        return image == before['images'][IMAGE_ID] or (
            image['status'] == 'killed' and image['location'] is None
            and not image['pending_upload'])


class UpdateMetadata(Flow):
    name = 'metadata update'

    def prepare(self, client, world):
        _created(client, data=DATA, properties={'kept': 'no'})

    def act(self, client, world):
        return client.http.put('/v1/images/' + IMAGE_ID, headers=dict(
            A, **meta_headers(name='renamed', min_ram=512, properties={'os': 'cirros'})))


class Delete(Flow):
    """With deleted records kept 30 days: a restored image must not keep the TTL."""
    name = 'delete'
    settings = {'deleted_retention_days': 30}

    def prepare(self, client, world):
        _created(client, data=DATA)
        _share(client, 'tenant-b')

    def act(self, client, world):
        return client.http.delete('/v1/images/' + IMAGE_ID, headers=A)

    def observe(self, client, outcome):
        image = outcome.state['images'][IMAGE_ID]
        member = tenant('tenant-b')
        shared = json.loads(client.http.get('/v1/shared-images/tenant-b',
                                            headers=member).body)['shared_images']
        listed = json.loads(client.http.get(
            '/v1/images/detail?changes-since=2000-01-01T00:00:00',
            headers=member).body)['images']
        seen = bool(shared) or any(i['id'] == IMAGE_ID for i in listed)
        if seen == image['deleted']:
            return ['the member sees %s image: shared %s, listed %s'
                    % (image['status'], shared, [i['id'] for i in listed])]
        return []


class AddMember(Flow):
    name = 'member add'

    def prepare(self, client, world):
        _created(client, data=DATA)
        _share(client, 'tenant-b')

    def act(self, client, world):
        return client.http.put('/v1/images/%s/members/tenant-c' % IMAGE_ID, headers=A)


class ReplaceMembers(Flow):
    name = 'member replace'
    retried_by_client = True

    def prepare(self, client, world):
        _created(client, data=DATA)
        _share(client, 'tenant-b')
        _share(client, 'tenant-c')

    def act(self, client, world):
        return client.http.put('/v1/images/%s/members' % IMAGE_ID, headers=dict(A, **JSON),
                               body=json.dumps({'memberships': [
                                   {'member_id': 'tenant-c', 'can_share': True},
                                   {'member_id': 'tenant-d'}]}))


class RemoveMember(Flow):
    name = 'member remove'

    def prepare(self, client, world):
        _created(client, data=DATA)
        _share(client, 'tenant-b')
        _share(client, 'tenant-c')

    def act(self, client, world):
        return client.http.delete('/v1/images/%s/members/tenant-b' % IMAGE_ID, headers=A)


FLOWS = [CreateInline(), UploadToQueued(), Reserve(), PresignedSingle(), PresignedMultipart(),
         UpdateMetadata(), Delete(), AddMember(), ReplaceMembers(), RemoveMember()]


# -- running a flow ---------------------------------------------------------------------
Outcome = collections.namedtuple('Outcome', 'status body raised retried calls failed '
                                            'state violations before problems')


@contextlib.contextmanager
def overridden(changes):
    from chalicelib import config
    previous = config.override(**changes)
    try:
        yield
    finally:
        config.restore(previous)


def run(world, flow, fail_at=None, kind=None):
    """Prepare a fresh world, run the flow (call `fail_at` failing), apply the
    designed recovery, and look at what is left."""
    with overridden(flow.settings):
        world.reset()
        flow.prepare(world.client, world)
        before = world.state()
        calls = Calls(fail_at, kind)
        status = body = raised = None
        with calls.active():
            try:
                response = flow.act(world.client, world)
            except Exception as error:  # noqa: BLE001 - a finalizer delivery that failed
                raised = error
            else:
                if response is not None:
                    status, body = response.status_code, response.body
        if raised is not None:   # the event is delivered again
            _finalize()
        if calls.failed == ('s3', 'CreateMultipartUpload') and kind == 'lost':
            world.expire_incomplete_uploads()
        retried = status == 503 and flow.retried_by_client
        if retried:
            response = flow.act(world.client, world)
            assert response.status_code < 300, (response.status_code, response.body)
        outcome = Outcome(status, body, raised, retried, calls.calls, calls.failed,
                          world.state(), violations(), before, [])
        outcome.problems.extend(flow.observe(world.client, outcome))
        return outcome


_clean = {}


def clean_run(world, flow):
    if flow.name not in _clean:
        outcome = run(world, flow)
        assert outcome.raised is None, outcome.raised
        assert outcome.status is None or outcome.status < 300, (outcome.status,
                                                                outcome.body)
        assert outcome.violations == [] and outcome.problems == []
        _clean[flow.name] = outcome
    return _clean[flow.name]


def across_runs(state):
    """A state to compare with another run's: upload ids are S3's, new every run."""
    images = {image_id: dict(image, pending_upload=bool(image['pending_upload']))
              for image_id, image in state['images'].items()}
    return dict(state, images=images)


def problems_of(flow, clean, outcome, index, kind):
    """What is wrong with a run where call `index` failed."""
    where = '%s, call %d %s' % (flow.name, index, '/'.join(clean.calls[index]))
    found = []
    if outcome.failed != clean.calls[index]:
        return ['%s: the run made other calls (%s failed): %s' % (
            where, outcome.failed, outcome.calls)]
    image = outcome.state['images'].get(IMAGE_ID)
    succeeded = across_runs(outcome.state) == across_runs(clean.state)
    text = outcome.body.decode() if isinstance(outcome.body, bytes) else outcome.body
    if outcome.status == 500:
        found.append('%s: 500 %s' % (where, text))
    elif outcome.status is not None and (outcome.retried or not succeeded or (
            kind == 'lost' and outcome.status == 503)):   # done? the service cannot know
        if outcome.status != 503 or 'unavailable' not in text:
            found.append('%s: %s %r (expected 503 "... unavailable")'
                         % (where, outcome.status, text))
    elif outcome.status is not None and outcome.status != clean.status:
        found.append('%s: %s although the flow completed' % (where, outcome.status))
    if outcome.retried and not succeeded:
        found.append('%s: retried, the request did not complete' % where)
    if not succeeded and not flow.failed_states(outcome.before, image):
        found.append('%s: left image %s\n  (clean run leaves %s)' % (
            where, image, clean.state['images'].get(IMAGE_ID)))
    found += ['%s: %s' % (where, p) for p in outcome.violations + outcome.problems]
    return found


# -- the tests -----------------------------------------------------------------------------
@pytest.mark.parametrize('flow', FLOWS, ids=[f.name.replace(' ', '-') for f in FLOWS])
def test_clean_run(world, flow):
    outcome = clean_run(world, flow)
    services = {service for service, _ in outcome.calls}
    assert 'dynamodb' in services
    TOTALS['flows'] += 1


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('flow', FLOWS, ids=[f.name.replace(' ', '-') for f in FLOWS])
def test_every_call_failing_once(world, flow, kind):
    clean = clean_run(world, flow)
    problems = []
    for index in range(len(clean.calls)):
        outcome = run(world, flow, index, kind)
        TOTALS['injected'] += 1
        STATUSES[outcome.status or ('event redelivered' if outcome.raised
                                     else 'event handled')] += 1
        TOTALS['violations'] += len(outcome.violations)
        problems += problems_of(flow, clean, outcome, index, kind)
    assert not problems, '\n'.join(problems)


def test_finalizer_failing_every_delivery_is_reaped(world):
    """Every delivery of the event fails after moving the object (the activation
    write keeps failing): past the reservation's expiry, the reaper kills the image
    and drops the moved bytes."""
    import datetime

    from chalicelib.composition import services
    from chalicelib.domain import image_meta as im
    from chalicelib.domain.ports import CatalogUnavailable
    world.reset()
    PresignedSingle().prepare(world.client, world)

    def activation(index, service, operation, params):
        return operation == 'PutItem' and params['Item']['status'] == {'S': 'active'}
    with Calls(activation, 'refused').active():
        for _ in range(3):   # Lambda: the invocation and its two retries
            with pytest.raises(CatalogUnavailable):
                _finalize()
    assert world.state()['images'][IMAGE_ID]['status'] == 'saving'
    assert violations() == ['orphan object images/%s (%d bytes): image %s is saving'
                            % (IMAGE_ID, len(DATA), IMAGE_ID)]

    later = im.format_time(im.utcnow() + datetime.timedelta(
        seconds=settings().upload_timeout + 60))
    assert services().finalizer.reap(now=later) == [IMAGE_ID]
    state = world.state()
    assert state['images'][IMAGE_ID]['status'] == 'killed'
    assert state['objects'] == {} and state['multipart'] == []
    assert violations() == []


def test_a_request_dynamodb_refuses_as_invalid_is_not_unavailable(world):
    """Only throttling, server errors and unreachable endpoints are 503: a
    ValidationException is a bug of the service, and says so (500)."""
    world.reset()
    _created(world.client)

    def invalid(index, service, operation, params):
        return operation == 'GetItem'
    with Calls(invalid, 'invalid').active():
        response = world.client.http.request('HEAD', '/v1/images/' + IMAGE_ID, headers=A)
    assert response.status_code == 500


def test_totals():
    """The closing numbers (printed with -s); nothing may have answered 500."""
    if not TOTALS['injected']:
        pytest.skip('no fault test ran')
    fives = sum(n for status, n in STATUSES.items() if isinstance(status, int)
                and status >= 500)
    print('\nfault injection: %d flows, %d failures injected, %d x 5xx, %d x 500, '
          '%d invariant violations; outcomes %s' % (
              TOTALS['flows'], TOTALS['injected'], fives, STATUSES[500],
              TOTALS['violations'], dict(sorted(STATUSES.items(), key=str))))
    assert STATUSES[500] == 0
    assert TOTALS['violations'] == 0

