"""DynamoDB failures as the domain knows them: the one place where a throttled, erring
or unreachable table becomes CatalogUnavailable, for every store of this package."""
import functools
import types

from botocore.exceptions import (BotoCoreError, ClientError, HTTPClientError,
                                 ConnectionError as EndpointUnreachable)
from pynamodb.exceptions import PynamoDBConnectionError

from chalicelib.domain.ports import CatalogUnavailable

_FAILURES = (PynamoDBConnectionError, ClientError, BotoCoreError)
# Answers that say "not now": the same request may succeed later.
_UNAVAILABLE_CODES = frozenset((
    'ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded',
    'InternalServerError', 'ServiceUnavailable'))


def is_unavailable(error):
    """Throttled, erring or unreachable; not a request DynamoDB refuses as invalid
    (a ValidationException is a bug here, and stays a 500)."""
    cause = error.cause if isinstance(error, PynamoDBConnectionError) else error
    if isinstance(cause, (EndpointUnreachable, HTTPClientError)):
        return True
    if isinstance(cause, ClientError):
        return (cause.response.get('Error', {}).get('Code') in _UNAVAILABLE_CODES or
                cause.response.get('ResponseMetadata', {}).get('HTTPStatusCode', 0) >= 500)
    return False


def _reported(method):
    """PynamoDB's failures to reach a table as CatalogUnavailable, also those raised
    while a listing is iterated."""
    def translated(iterator):
        try:
            yield from iterator
        except _FAILURES as error:
            if is_unavailable(error):
                raise CatalogUnavailable(str(error)) from error
            raise

    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            result = method(*args, **kwargs)
        except _FAILURES as error:
            if is_unavailable(error):
                raise CatalogUnavailable(str(error)) from error
            raise
        return translated(result) if isinstance(result, types.GeneratorType) else result
    return call


def reporting_unavailable(cls):
    """Every public method of the catalog through _reported: the one place where a
    throttled, erring or unreachable DynamoDB becomes the domain's CatalogUnavailable."""
    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith('_'):
            setattr(cls, name, _reported(member))
    return cls


def is_condition_failure(error):
    return getattr(error, 'cause_response_code', None) in (
        'ConditionalCheckFailedException', 'TransactionCanceledException')
