"""Handlers that are not HTTP: the upload finalizer and the upload reaper.

In AWS the finalizer receives the bucket's ObjectCreated notifications (a plain
Lambda function wired in infra/, since `chalice package` rejects on_s3_event)
and the reaper runs on a schedule. Locally the runtime feeds both (pump below).
"""
from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

from chalicelib import logs
from chalicelib.composition import run_event, services, step_budget
from chalicelib.storage.blobs import UPLOAD_PREFIX

LOG = logging.getLogger(__name__)


def finalize_bucket_event(event: dict[str, Any], context: Any = None) -> list[tuple]:
    """An S3 event ({"Records": [...]}) -> finalize each uploaded object; or the next
    step of a chained finalization ({"job": "finalize", "image_id", "offset"}), which
    this function sends itself."""
    budget = step_budget(context)
    if event.get('job') == 'finalize':
        image = run_event(event, budget)
        return _report_finalized([(event['image_id'], image['status'] if image else None)])
    finalized = []
    for record in event.get('Records', []):
        if not record.get('eventName', '').startswith('ObjectCreated'):
            continue
        key = urllib.parse.unquote_plus(record['s3']['object']['key'])
        if key.startswith(UPLOAD_PREFIX):
            image = services().finalizer.finalize(key, budget)
            finalized.append((key, image['status'] if image else None))
    return _report_finalized(finalized)


def reap_abandoned_uploads(event: Any = None, context: Any = None) -> list[str]:
    reaped = services().finalizer.reap()
    for image_id in reaped:   # each image it kills, and how many
        LOG.warning('reaped image %s: its upload was never completed', image_id,
                    extra={'image_id': image_id, 'outcome': 'killed'})
    logs.metric('UploadsReaped', len(reaped))
    return reaped


def copy_image(event: dict[str, Any], context: Any = None) -> None:
    """The asynchronous half of copy-from and location caching in AWS, a step at a
    time: {"job", "image_id", "url", "offset"}."""
    run_event(event, step_budget(context))


def pump_bucket_events(sqs: Any, queue_url: str, wait_seconds: int = 1) -> int:
    """Deliver queued S3 notifications to the finalizer once (the local runtime)."""
    handled = 0
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=wait_seconds).get('Messages', [])
    for message in messages:
        try:
            finalize_bucket_event(json.loads(message['Body']))
        except Exception:  # noqa: BLE001 - keep pumping; the message is retried
            LOG.exception('finalizing %s failed', message['MessageId'])
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message['ReceiptHandle'])
        handled += 1
    return handled


def _report_finalized(finalized: list[tuple]) -> list[tuple]:
    """A log line and an `UploadsFinalized` metric per outcome (active, killed, saving
    for a step that continues, ignored for a duplicate or stale event)."""
    for key, status in finalized:
        image_id = key[len(UPLOAD_PREFIX):] if key.startswith(UPLOAD_PREFIX) else key
        outcome = status or 'ignored'
        LOG.info('finalized image %s: %s', image_id, outcome,
                 extra={'image_id': image_id, 'outcome': outcome})
        logs.metric('UploadsFinalized', Outcome=outcome)
    return finalized
