"""Request throughput of the local runtime under 1, 4 and 16 concurrent clients
(locust, headless, closed loop: each client sends its next request as soon as it has
the answer), beside the reference Glance v1 on the same machine in the same run.

Both servers in noauth mode get the same requests: HEAD of an active 1 KiB image,
a list page of 25 images (`GET /v1/images?is_public=none`: the noauth identity is an
admin without a tenant, whose default listing is public images only; both catalogs
hold 60 private images, seeded here), and `GET /versions` (no storage at all: the
floor of each server's HTTP stack). Figures: requests/s, median and 95th percentile
latency in ms, failed requests. The locust process shares the machine's cores with
the servers (and with their moto server / registry).
"""
import csv
import os
import subprocess
import sys
import tempfile
import uuid

from bench.report import PROJECT_DIR, fmt, fmt_ratio, ratio, save, table
from bench.servers import local_runtime, local_setting, reference_glance

CLIENTS = (1, 4, 16)
SECONDS = int(os.environ.get('BENCH_LOAD_SECONDS', '10'))
FLOOR_CALLS = 40
SEEDED = 60
LOCUST = os.path.join(os.path.dirname(sys.executable), 'locust')
LOCUSTFILE = os.path.join(PROJECT_DIR, 'bench', 'locustfile.py')
META = {'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare'}


def seed(base):
    """SEEDED queued images and one active 1 KiB image -> (ids, the active image's id)."""
    import requests
    session, ids = requests.Session(), []
    for n in range(SEEDED):
        response = session.post(base + '/v1/images', headers=dict(
            META, **{'x-image-meta-name': 'bench-load-%02d' % n}), timeout=30)
        response.raise_for_status()
        ids.append(response.json()['image']['id'])
    response = session.post(base + '/v1/images', data=os.urandom(1024), headers=dict(
        META, **{'x-image-meta-name': 'bench-load-head-%s' % uuid.uuid4().hex[:8],
                 'Content-Type': 'application/octet-stream'}), timeout=30)
    response.raise_for_status()
    image_id = response.json()['image']['id']
    page = session.get(base + '/v1/images?is_public=none', timeout=30).json()['images']
    assert len(page) == 25, len(page)
    return ids + [image_id], image_id


def unseed(base, ids):
    import requests
    session = requests.Session()
    for image_id in ids:
        session.delete(base + '/v1/images/%s' % image_id, timeout=30)


def requests_of(image_id):
    """(key, label, method, path) of the measured requests."""
    return [('head', 'HEAD /v1/images/{id}', 'HEAD', '/v1/images/%s' % image_id),
            ('list', 'list page (GET /v1/images?is_public=none)', 'GET',
             '/v1/images?is_public=none'),
            ('versions', 'GET /versions', 'GET', '/versions')]


def run_locust(host, method, path, clients, expect='200'):
    """One headless locust run -> {rps, median_ms, p95_ms, requests, failures, warnings}."""
    with tempfile.TemporaryDirectory(prefix='bench-locust-') as out:
        prefix = os.path.join(out, 'run')
        env = dict(os.environ, BENCH_METHOD=method, BENCH_PATH=path, BENCH_NAME='measured',
                   BENCH_EXPECT=expect)
        completed = subprocess.run(
            [LOCUST, '-f', LOCUSTFILE, '--headless', '-u', str(clients), '-r', str(clients),
             '-t', '%ds' % SECONDS, '--host', host, '--csv', prefix, '--only-summary',
             '-L', 'WARNING', '--exit-code-on-error', '0', '--stop-timeout', '5'],
            cwd=out, env=env, capture_output=True, text=True, timeout=SECONDS + 120)
        if completed.returncode != 0:
            raise RuntimeError('locust failed (%d): %s' % (completed.returncode,
                                                            completed.stderr[-2000:]))
        with open(prefix + '_stats.csv', encoding='utf-8') as stats:
            row = next(r for r in csv.DictReader(stats) if r['Name'] == 'Aggregated')
    warnings = sorted({line.split('/WARNING/')[-1].strip()[:120]
                       for line in completed.stderr.splitlines() if '/WARNING/' in line})
    return {'rps': float(row['Requests/s']), 'median_ms': float(row['50%']),
            'p95_ms': float(row['95%']), 'requests': int(row['Request Count']),
            'failures': int(row['Failure Count']), 'warnings': warnings}


def measure(base, image_id):
    results = {}
    for key, label, method, path in requests_of(image_id):
        for clients in CLIENTS:
            results['%s/%d' % (key, clients)] = run_locust(base, method, path, clients,
                                                           expect='200,300')
    return results


def storage_floor(runtime, image_id):
    """Median ms of the DynamoDB calls behind HEAD and the list page, made directly
    with boto3 against the runtime's moto server, one at a time."""
    import statistics
    import time

    import boto3
    from bench.servers import aws_endpoint
    table_name = local_setting('GLANCE_IMAGES_TABLE')
    dynamodb = boto3.client('dynamodb', endpoint_url=aws_endpoint(runtime),
                            region_name='us-east-1', aws_access_key_id='testing',
                            aws_secret_access_key='testing')
    calls = {
        'GetItem (HEAD reads 1)': lambda: dynamodb.get_item(
            TableName=table_name, Key={'id': {'S': image_id}}, ConsistentRead=True),
        'Query of 26 items (the list page reads 1)': lambda: dynamodb.query(
            TableName=table_name, IndexName='catalog', Limit=26, ScanIndexForward=False,
            KeyConditionExpression='catalog = :c',
            ExpressionAttributeValues={':c': {'S': 'image'}}),
    }
    floor = {}
    for label, call in calls.items():
        times = []
        for _ in range(FLOOR_CALLS):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        floor[label] = statistics.median(times)
    return floor


def main():
    sys.path.insert(0, PROJECT_DIR)
    with local_runtime('noauth') as runtime:
        seeded, image_id = seed(runtime.base_url)
        ours = measure(runtime.base_url, image_id)
        ours_labels = requests_of(image_id)
        floor = storage_floor(runtime, image_id)
    with reference_glance() as (reference_url, reference_line):
        reference = None
        if reference_url:
            ref_seeded, ref_image = seed(reference_url)
            try:
                reference = measure(reference_url, ref_image)
            finally:
                unseed(reference_url, ref_seeded)
    rows, figures, warnings = [], {}, set()
    for key, label, _, _ in ours_labels:
        for clients in CLIENTS:
            name = '%s/%d' % (key, clients)
            mine = ours[name]
            theirs = reference[name] if reference else None
            figures[name] = {'ours': mine, 'reference': theirs,
                             'rps_ratio': ratio(mine['rps'], theirs and theirs['rps'])}
            warnings.update(mine['warnings'] + (theirs['warnings'] if theirs else []))
            rows.append(['%s, %d client%s' % (label, clients, '' if clients == 1 else 's'),
                         fmt(mine['rps'], 1), fmt(theirs and theirs['rps'], 1),
                         fmt_ratio(figures[name]['rps_ratio']),
                         '%s / %s' % (fmt(mine['median_ms'], 0), fmt(mine['p95_ms'], 0)),
                         '%s / %s' % (fmt(theirs and theirs['median_ms'], 0),
                                      fmt(theirs and theirs['p95_ms'], 0)),
                         '%d / %s' % (mine['failures'],
                                      fmt(theirs and theirs['failures']))])
    notes = ['locust %ds headless per row, closed loop; ratio = ours / reference requests/s;'
             % SECONDS, reference_line]
    notes += ['storage floor, one boto3 call at a time to the runtime\'s moto server, median '
              'of %d: %s' % (FLOOR_CALLS, '; '.join('%s %.1f ms' % item
                                                    for item in floor.items()))]
    notes += ['locust warned: ' + warning for warning in sorted(warnings)]
    table('Throughput of the local runtime (ours) vs the reference Glance v1 (baseline), '
          'noauth, same machine', ['figure', 'ours req/s', 'ref req/s', 'ratio',
                                   'ours p50/p95 ms', 'ref p50/p95 ms', 'failures'],
          rows, notes=notes)
    save('load', {'clients': list(CLIENTS), 'seconds_per_run': SECONDS,
                  'figures': figures, 'reference': reference_line,
                  'storage_floor_ms': floor})
    return figures


if __name__ == '__main__':
    main()
