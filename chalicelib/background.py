"""Work that continues after the answer: copy-from, location caching and the next step
of a chained finalization or copy. An asynchronous Lambda invocation in AWS (the copier,
GLANCE_COPY_FUNCTION; a finalization continues in the finalizer itself), a worker thread
elsewhere (the local runtime, the tests)."""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable

from chalicelib.config import settings

LOG = logging.getLogger(__name__)
Event = dict[str, Any]

_workers: list[threading.Thread] = []
LOCAL_RETRIES = 2            # Lambda's default for asynchronous invocations
RETRY_DELAY_SECONDS = 1.0


class BackgroundRunner:
    """The domain's `background(job, image_id, url, offset)`; `run_event` runs an event
    where no Lambda function is configured. Its `start` is what tests replace to keep
    the events and deliver them by hand."""

    def __init__(self, run_event: Callable[[Event], Any]):
        self.run_event = run_event

    def __call__(self, *job: Any) -> None:   # (job, image_id, url=None, offset=0)
        self.start(*job)

    def start(self, job: str, image_id: str, url: str | None = None, offset: int = 0) -> None:
        event = {'job': job, 'image_id': image_id, 'url': url, 'offset': offset}
        # read when sent, not when built: the settings in force decide (tests override)
        function = os.environ.get('AWS_LAMBDA_FUNCTION_NAME') if job == 'finalize' else \
            settings().copy_function
        if function:
            _invoke(function, event)
            return
        worker = threading.Thread(target=self._run_logged, args=(event,), daemon=True,
                                  name='%s-%s' % (job, image_id))
        _workers.append(worker)
        worker.start()

    def _run_logged(self, event: Event) -> None:
        """Run the event; on a failure run it again, twice at most, as Lambda does with
        an asynchronous invocation (a step that failed is delivered again)."""
        for attempt in range(1 + LOCAL_RETRIES):
            try:
                self.run_event(event)
                return
            except Exception:  # noqa: BLE001 - a worker must not die silently
                LOG.exception('%s of image %s failed (attempt %d of %d)', event['job'],
                              event['image_id'], attempt + 1, 1 + LOCAL_RETRIES)
                time.sleep(RETRY_DELAY_SECONDS * (attempt + 1))


def _invoke(function: str, event: Event) -> None:
    import boto3
    boto3.client('lambda', region_name=settings().region).invoke(
        FunctionName=function, InvocationType='Event', Payload=json.dumps(event).encode())


def wait_for_background_jobs(timeout: float = 30) -> None:
    """Tests and the local runtime: let running copies finish."""
    while _workers:
        _workers.pop().join(timeout)
