"""Count AWS calls and the DynamoDB items they read (for tests and benchmarks).

Wraps botocore's single entry point for API calls, so it sees every client:
PynamoDB's connections as well as boto3's S3 client.
"""
import collections
import contextlib
import threading
from unittest import mock

from botocore.client import BaseClient

_real_make_api_call = BaseClient._make_api_call


class CallLog:
    def __init__(self):
        self.calls = []          # (service, operation, items read)
        self._lock = threading.Lock()

    def record(self, service, operation, items):
        with self._lock:
            self.calls.append((service, operation, items))

    def operations(self, service=None):
        return collections.Counter(op for svc, op, _ in self.calls
                                   if service is None or svc == service)

    def count(self, service='dynamodb'):
        return sum(1 for svc, _, _ in self.calls if svc == service)

    def items_read(self, service='dynamodb'):
        return sum(items for svc, _, items in self.calls if svc == service)


def _items_read(operation, response):
    if operation in ('Query', 'Scan'):
        return response.get('ScannedCount', response.get('Count', 0))
    if operation == 'GetItem':
        return 1 if 'Item' in response else 0
    if operation == 'BatchGetItem':
        return sum(len(items) for items in response.get('Responses', {}).values())
    return 0


@contextlib.contextmanager
def counting_aws_calls():
    """with counting_aws_calls() as log: ... log.count('dynamodb')"""
    log = CallLog()

    def make_api_call(client, operation, params):
        service = client.meta.service_model.service_name
        try:
            response = _real_make_api_call(client, operation, params)
        except Exception:
            log.record(service, operation, 0)  # refused calls count too
            raise
        log.record(service, operation, _items_read(operation, response))
        return response

    with mock.patch.object(BaseClient, '_make_api_call', make_api_call):
        yield log
