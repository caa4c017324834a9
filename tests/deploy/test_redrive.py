"""`make redrive`: the dead-lettered events of the finalizer and the copier are delivered
again (moto's SQS, and an invoker that runs the real handlers in process), each message
deleted only after its function succeeded; twice is harmless."""
import hashlib
import io
import json
import os

import boto3
import pytest

from chalicelib import composition
from chalicelib.api import common
from chalicelib.config import settings
from chalicelib.events import copy_image, finalize_bucket_event
from infra import redrive
from infra.stage import dead_letter_queue, function_name
from tests.helpers import (PROJECT_DIR, body_json, create_image, head, stored_object_keys,
                           tenant)
from tests.reliability.invariants import violations
from tests.sources import SOURCE_DATA as DATA

A = tenant('tenant-a')
FUNCTIONS = {function_name('test', name) for name in redrive.REDRIVEN}
HANDLERS = {function_name('test', 'upload_finalizer'): finalize_bucket_event,
            function_name('test', 'image_copier'): copy_image}
UPLOADED = b'u' * 1000


def _on_failure_record(function, event):
    """What Lambda sends to an on-failure destination after the last retry."""
    return json.dumps({
        'version': '1.0', 'timestamp': '2026-12-03T07:00:00.000Z',
        'requestContext': {'requestId': 'r-1', 'condition': 'RetriesExhausted',
                           'approximateInvokeCount': 3, 'functionArn':
                           'arn:aws:lambda:us-east-1:123456789012:function:%s:$LATEST'
                           % function_name('test', function)},
        'requestPayload': event,
        'responseContext': {'statusCode': 200, 'functionError': 'Unhandled'},
        'responsePayload': {'errorMessage': 'Task timed out after 900.00 seconds'}})


class Invoker:
    """The functions, run in process; `failing` events fail once each."""

    def __init__(self, failing=()):
        self.failing, self.calls = list(failing), []

    def __call__(self, function, event):
        self.calls.append(function)
        if event in self.failing:
            self.failing.remove(event)
            raise redrive.InvocationFailed('Unhandled: injected')
        HANDLERS[function](event)


@pytest.fixture
def dead_letters(client, monkeypatch, settings_override):
    """The queue (visible again at once, so a second run sees what the first left),
    and copy-from jobs captured instead of running."""
    jobs = []
    monkeypatch.setattr(composition.services().background, 'start',
                        lambda *job: jobs.append(job))
    composition.reset()
    sqs = boto3.client('sqs', region_name='us-east-1')
    url = sqs.create_queue(QueueName=dead_letter_queue('test'),
                           Attributes={'VisibilityTimeout': '0'})['QueueUrl']
    yield sqs, url, jobs


def _uploaded_image(client):
    """A presigned single-PUT upload whose bytes arrived (its event then failed)."""
    _, image = create_image(client, A)
    path = '/v1/images/%s/upload' % image['id']
    assert client.http.post(path, headers=A, body=json.dumps(
        {'size': len(UPLOADED)}).encode()).status_code in (200, 201)
    key = 'uploads/%s' % image['id']
    common.image_service().blobs.client.put_object(Bucket=settings().image_bucket, Key=key,
                                                    Body=UPLOADED)
    return image['id'], {'Records': [{'eventName': 'ObjectCreated:Put',
                                      's3': {'object': {'key': key}}}]}


def _copied_image(client, source_server, jobs):
    created = client.http.post('/v1/images', headers=dict(A, **{
        'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare',
        'x-glance-api-copy-from': source_server + '/image.raw'}))
    image_id = body_json(created)['image']['id']
    [(job, job_image, url)] = [j for j in jobs if j[1] == image_id]
    return image_id, {'job': job, 'image_id': job_image, 'url': url}


def _status_and_checksum(client, image_id):
    headers = head(client, A, image_id).headers
    return headers['x-image-meta-status'], headers.get('x-image-meta-checksum')


def _messages_left(sqs, url):
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['All'])['Attributes']
    return (int(attributes['ApproximateNumberOfMessages'])
            + int(attributes['ApproximateNumberOfMessagesNotVisible']))


def test_redrive_delivers_each_dead_event_and_deletes_it_after_success(
        client, dead_letters, source_server):
    sqs, url, jobs = dead_letters
    uploaded, upload_event = _uploaded_image(client)
    copied, copy_event = _copied_image(client, source_server, jobs)
    failing, failing_event = _uploaded_image(client)
    for function, event in (('upload_finalizer', upload_event),
                            ('image_copier', copy_event),
                            ('upload_finalizer', failing_event)):
        sqs.send_message(QueueUrl=url, MessageBody=_on_failure_record(function, event))
    sqs.send_message(QueueUrl=url, MessageBody='not json')
    sqs.send_message(QueueUrl=url, MessageBody=_on_failure_record('upload_reaper', {}))
    assert [_status_and_checksum(client, i)[0] for i in (uploaded, copied, failing)] == \
        ['queued'] * 3

    lines = []
    invoker = Invoker(failing=[failing_event])
    counts = redrive.redrive(sqs, url, invoker, FUNCTIONS, out=lines.append)
    assert counts == {'redriven': 2, 'failed': 1, 'kept': 2}
    assert len(invoker.calls) == 3
    assert sum(line.startswith('redriven') for line in lines) == 2
    assert any(line.startswith('failed') and 'object uploads/%s' % failing in line
               for line in lines)
    assert _status_and_checksum(client, uploaded) == (
        'active', hashlib.md5(UPLOADED).hexdigest())
    assert _status_and_checksum(client, copied) == ('active', hashlib.md5(DATA).hexdigest())
    assert _status_and_checksum(client, failing)[0] == 'queued'
    assert _messages_left(sqs, url) == 3   # the failed one and the two kept

    # the next run delivers what failed; what is not ours stays for the operator
    counts = redrive.redrive(sqs, url, Invoker(), FUNCTIONS, out=lines.append)
    assert counts == {'redriven': 1, 'failed': 0, 'kept': 2}
    assert _status_and_checksum(client, failing)[0] == 'active'
    assert _messages_left(sqs, url) == 2
    keys = stored_object_keys()
    assert keys == sorted('images/%s' % i for i in (uploaded, copied, failing))
    assert violations() == []


@pytest.mark.slow
def test_an_event_delivered_twice_changes_nothing(client, dead_letters, source_server):
    """A redrive that died between the invocation and the delete delivers again."""
    sqs, url, jobs = dead_letters
    uploaded, upload_event = _uploaded_image(client)
    copied, copy_event = _copied_image(client, source_server, jobs)
    records = [_on_failure_record('upload_finalizer', upload_event),
               _on_failure_record('image_copier', copy_event)]
    for body in records:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    assert redrive.redrive(sqs, url, Invoker(), FUNCTIONS, out=list().append) == \
        {'redriven': 2, 'failed': 0, 'kept': 0}
    done = {i: _status_and_checksum(client, i) for i in (uploaded, copied)}
    keys = stored_object_keys()
    for body in records:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    assert redrive.redrive(sqs, url, Invoker(), FUNCTIONS, out=list().append) == \
        {'redriven': 2, 'failed': 0, 'kept': 0}
    assert {i: _status_and_checksum(client, i) for i in (uploaded, copied)} == done
    assert [status for status, _ in done.values()] == ['active', 'active']
    assert stored_object_keys() == keys and len(keys) == 2
    assert _messages_left(sqs, url) == 0
    assert violations() == []


def test_lambda_invoker_raises_on_a_function_error():
    class FakeLambda:
        def __init__(self, answer):
            self.answer, self.calls = answer, []

        def invoke(self, **params):
            self.calls.append(params)
            return self.answer

    failed = FakeLambda({'StatusCode': 200, 'FunctionError': 'Unhandled',
                         'Payload': io.BytesIO(b'{"errorMessage": "boom"}')})
    with pytest.raises(redrive.InvocationFailed, match='boom'):
        redrive.lambda_invoker(failed)('f', {'a': 1})
    assert failed.calls[0]['InvocationType'] == 'RequestResponse'
    assert json.loads(failed.calls[0]['Payload']) == {'a': 1}
    succeeded = FakeLambda({'StatusCode': 200, 'Payload': io.BytesIO(b'null')})
    assert redrive.lambda_invoker(succeeded)('f', {}) is None


def test_the_stage_names_match_the_policies_and_the_template():
    assert FUNCTIONS == {'glance-v1-test-upload_finalizer', 'glance-v1-test-image_copier'}
    for stage in ('dev', 'prod'):
        for function in ('upload-finalizer', 'image-copier'):
            with open(os.path.join(PROJECT_DIR, '.chalice', 'policy-%s-%s.json'
                                   % (stage, function))) as f:
                statements = json.load(f)['Statement']
            [dead_events] = [s for s in statements if s['Sid'] == 'DeadEvents']
            assert dead_events['Resource'].endswith(':' + dead_letter_queue(stage))
