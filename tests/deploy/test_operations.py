"""Operable in Lambda: JSON log lines with the Glance fields, one per request; an
embedded-metric line per finalizer outcome; the reaper names what it kills. Locally
nothing of this is printed."""
import json
import logging

import pytest
from chalice.test import Client

from chalicelib import logs
from chalicelib.events import finalize_bucket_event, reap_abandoned_uploads
from tests.helpers import create_image, tenant

A = tenant('tenant-a')


@pytest.fixture
def in_lambda(monkeypatch):
    monkeypatch.setenv('AWS_LAMBDA_FUNCTION_NAME', 'glance-v1-test')


class Lines(logging.Handler):
    """Log records as the Lambda handler would write them (JsonFormatter)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logs.JsonFormatter())
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_lines():
    handler = Lines()
    logging.getLogger().addHandler(handler)
    yield handler.lines
    logging.getLogger().removeHandler(handler)


def _emf(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"')]


def test_each_request_is_one_json_line_with_request_image_tenant_outcome(
        aws, in_lambda, json_lines, monkeypatch):
    monkeypatch.setattr(logging.getLogger(), 'handlers', list(logging.getLogger().handlers))
    from app import create_app
    with Client(create_app()) as client:
        _, image = create_image(client, A)
        missing = client.http.get('/v1/images/nope', headers=A)
    assert missing.status_code == 404
    requests = [line for line in json_lines if line['logger'] == 'glance.requests']
    assert [(r['method'], r['status'], r['outcome']) for r in requests] == [
        ('POST', 201, 'ok'), ('GET', 404, 'refused')]
    found = requests[1]
    assert found['image_id'] == 'nope' and found['tenant'] == 'tenant-a'
    assert found['request_id'] == missing.headers['x-openstack-request-id']
    assert found['function'] == 'glance-v1-test' and found['level'] == 'INFO'


def test_the_local_app_logs_no_json_and_adds_no_middleware():
    from app import create_app
    assert logs.configure() is False
    handlers = [handler for handler, _ in create_app().middleware_handlers]
    assert logs.log_requests not in handlers and len(handlers) == 1


def test_a_metric_per_finalizer_outcome(client, in_lambda, json_lines, capsys):
    _, image = create_image(client, A)
    event = {'Records': [{'eventName': 'ObjectCreated:Put',
                          's3': {'object': {'key': 'uploads/%s' % image['id']}}}]}
    assert finalize_bucket_event(event) == [('uploads/%s' % image['id'], None)]
    [metric] = _emf(capsys.readouterr().out)
    assert metric['Outcome'] == 'ignored' and metric['UploadsFinalized'] == 1
    [definition] = metric['_aws']['CloudWatchMetrics']
    assert definition == {'Namespace': 'GlanceV1', 'Dimensions': [['Outcome']],
                          'Metrics': [{'Name': 'UploadsFinalized', 'Unit': 'Count'}]}
    [line] = [line for line in json_lines if line['logger'] == 'chalicelib.events']
    assert (line['image_id'], line['outcome']) == (image['id'], 'ignored')


def test_the_reaper_names_each_image_it_kills_and_counts_them(
        client, in_lambda, json_lines, capsys, settings_override):
    settings_override(upload_timeout=-60)
    abandoned = []
    for _ in range(2):
        _, image = create_image(client, A)
        client.http.post('/v1/images/%s/upload' % image['id'], headers=A, body=b'{"size": 10}')
        abandoned.append(image['id'])
    assert sorted(reap_abandoned_uploads({})) == sorted(abandoned)
    reaped = [line for line in json_lines if line.get('outcome') == 'killed']
    assert sorted(line['image_id'] for line in reaped) == sorted(abandoned)
    assert all(line['level'] == 'WARNING' for line in reaped)
    [metric] = _emf(capsys.readouterr().out)
    assert metric['UploadsReaped'] == 2


def test_no_metric_lines_outside_lambda(capsys):
    line = logs.metric('UploadsFinalized', Outcome='active')
    assert line['UploadsFinalized'] == 1 and capsys.readouterr().out == ''
