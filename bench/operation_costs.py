"""DynamoDB requests and items read per operation, catalog of 100 (baseline) against
10,000 images: the cost of a request should not depend on the size of the catalog.

Counted, never timed: every AWS call of one request through the API (in-process
`chalice.test.Client` on moto, `test` stage, trusted-headers identities) is seen by
botocore's `_make_api_call` hook (bench/counting.py). "Items read" is what DynamoDB
reads for the caller: GetItem 1 when found, BatchGetItem the items returned, Query
and Scan their ScannedCount. In v1 the metadata of one image is `HEAD
/v1/images/{id}` (a GET returns the image data), so HEAD is "show".
"""
import collections
import json
import os
import re
import sys
import time

from bench.report import PROJECT_DIR, fmt, fmt_ratio, ratio, save, table

SIZES = (100, 10000)
UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
SHARE_EVERY = 5     # tenant-s is a member of every 5th image (2,000 of 10,000)
TENANT_A = {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': 'tenant-a', 'X-Roles': 'member'}
TENANT_S = {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': 'tenant-s', 'X-Roles': 'member'}
META = {'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare'}
OCTET = {'Content-Type': 'application/octet-stream'}

# The fill (bench/catalog.py) gives image n the owner OWNERS[n % 4], public if n % 3 == 0,
# shared with tenant-s if n % 5 == 0. The images each operation works on:
OWN = 4            # tenant-a, private, not shared
SHARED = 5         # tenant-b, private, shared with tenant-s
UPDATED = 8        # tenant-a, private
MEMBER_ADDED = 16  # tenant-a, private
DELETED = 28       # tenant-a, private, no members
SELECTIVE_NAME = 'image-00001'   # one image matches; the oldest end of the catalog
ADMIN = {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': 'tenant-admin', 'X-Roles': 'admin'}
TENANT_B = dict(TENANT_A, **{'X-Tenant-Id': 'tenant-b'})
SINCE = '2000-01-01'
CHANGES_PAGE = 'changes-since page of a tenant (others\' images private)'
CHANGES_BEFORE = '(before) changes-since read the changes index'


def operations(ids, data_image):
    """(label, method, path, headers, body, expected status) in the order they run:
    reads first, then the writes (each on its own image)."""
    def image(n):
        return '/v1/images/%s' % ids[n]
    return [
        ('HEAD own image (show metadata)', 'HEAD', image(OWN), TENANT_A, b'', 200),
        ('HEAD image shared with the caller', 'HEAD', image(SHARED), TENANT_S, b'', 200),
        ('GET image data (1 KiB, inline)', 'GET', '/v1/images/%s' % data_image,
         dict(TENANT_A, Accept='application/octet-stream'), b'', 200),
        ('default list page (GET /v1/images/detail)', 'GET', '/v1/images/detail',
         TENANT_A, b'', 200),
        ('filtered page, broad (disk_format=raw)', 'GET',
         '/v1/images/detail?disk_format=raw', TENANT_A, b'', 200),
        ('filtered page, selective (name=one image)', 'GET',
         '/v1/images/detail?name=%s' % SELECTIVE_NAME, TENANT_A, b'', 200),
        ('shared-with-me list page (tenant-s detail)', 'GET', '/v1/images/detail',
         TENANT_S, b'', 200),
        ('GET /v1/shared-images/tenant-s (all)', 'GET', '/v1/shared-images/tenant-s',
         TENANT_S, b'', 200),
        ('create (POST, no data)', 'POST', '/v1/images',
         dict(TENANT_A, **META, **{'x-image-meta-name': 'bench-created'}), b'', 201),
        ('update (PUT x-image-meta-* headers)', 'PUT', image(UPDATED),
         dict(TENANT_A, **{'x-image-meta-name': 'bench-renamed',
                           'x-image-meta-property-os_distro': 'cirros'}), b'', 200),
        ('member add (PUT .../members/tenant-x)', 'PUT',
         image(MEMBER_ADDED) + '/members/tenant-x', TENANT_A, b'', 204),
        ('delete (DELETE, no data)', 'DELETE', image(DELETED), TENANT_A, b'', 200),
    ]


def _setup_environment():
    sys.path.insert(0, PROJECT_DIR)
    os.environ.update(AWS_ACCESS_KEY_ID='testing', AWS_SECRET_ACCESS_KEY='testing',
                      AWS_DEFAULT_REGION='us-east-1')
    os.environ.pop('AWS_ENDPOINT_URL', None)
    from chalicelib.local.server import load_stage_environment
    load_stage_environment(PROJECT_DIR, 'test')


def _ops_text(log):
    counted = collections.Counter((svc, op) for svc, op, _ in log.calls)
    return ', '.join('%s%s%s' % ('' if svc == 'dynamodb' else svc + ':', op,
                                 '' if n == 1 else ' x%d' % n)
                     for (svc, op), n in sorted(counted.items()))


def _count_by_scan(table_name):
    """What a listing without indexes would read: the whole table, page by page
    (Select=COUNT: the same pages and ScannedCount, without shipping the items)."""
    import boto3
    client = boto3.client('dynamodb', region_name=os.environ['AWS_DEFAULT_REGION'])
    arguments, scanned = {'TableName': table_name, 'Select': 'COUNT'}, 0
    while True:
        page = client.scan(**arguments)
        scanned += page['ScannedCount']
        if 'LastEvaluatedKey' not in page:
            return scanned
        arguments['ExclusiveStartKey'] = page['LastEvaluatedKey']


def _figure(request, log):
    return {'request': request, 'requests': log.count('dynamodb'),
            'items_read': log.items_read('dynamodb'), 's3_requests': log.count('s3'),
            'operations': _ops_text(log)}


def measure_changes(size):
    """The changes-since page of tenant-a beside `size` private images of three other
    tenants, and what the `changes` index (every tenant's changes) held for it."""
    from chalice.test import Client
    from moto import mock_aws

    from bench.catalog import fill_catalog
    from bench.counting import counting_aws_calls
    from chalicelib import composition
    from chalicelib.storage.models import CATALOG_PARTITION, ImageModel
    from chalicelib.storage.resources import ensure_resources

    figures = {}
    with mock_aws():
        composition.reset()
        ensure_resources()
        fill_catalog(size, owners=('tenant-b', 'tenant-c', 'tenant-d'), public_every=0)
        from app import app
        with Client(app, stage_name='test', project_dir=PROJECT_DIR) as client:
            # what tenant-a sees: 2 own images, 1 public, 1 shared with it
            made = [json.loads(client.http.post('/v1/images', headers=dict(
                identity, **META, **extra)).body)['image']['id']
                for identity, extra in ((TENANT_A, {}), (TENANT_A, {}),
                                        (ADMIN, {'x-image-meta-is_public': 'true'}),
                                        (TENANT_B, {}))]
            client.http.put('/v1/images/%s/members/tenant-a' % made[-1], headers=TENANT_B)
            path = '/v1/images/detail?changes-since=%s' % SINCE
            with counting_aws_calls() as log:
                response = client.http.get(path, headers=TENANT_A)
            assert response.status_code == 200, response.body[:300]
            assert len(json.loads(response.body)['images']) == len(made)
            figures[CHANGES_PAGE] = _figure('GET %s' % path, log)
            with counting_aws_calls() as log:
                ImageModel.changes.count(CATALOG_PARTITION, ImageModel.updated_key > SINCE)
            figures[CHANGES_BEFORE] = _figure('Query changes (Select=COUNT)', log)
        composition.reset()
    return figures


def measure(size):
    """{label: {requests, items_read, operations, path}} for a catalog of `size`."""
    from chalice.test import Client
    from moto import mock_aws

    from bench.catalog import fill_catalog
    from bench.counting import counting_aws_calls
    from chalicelib import composition
    from chalicelib.storage.models import ImageModel
    from chalicelib.storage.resources import ensure_resources

    figures = {}
    with mock_aws():
        composition.reset()
        ensure_resources()
        started = time.perf_counter()
        ids = fill_catalog(size, shared_with='tenant-s', share_every=SHARE_EVERY)
        fill_seconds = time.perf_counter() - started
        from app import app
        with Client(app, stage_name='test', project_dir=PROJECT_DIR) as client:
            created = client.http.post('/v1/images', body=b'x' * 1024, headers=dict(
                TENANT_A, **META, **OCTET, **{'x-image-meta-name': 'bench-data'}))
            assert created.status_code == 201, created.body
            data_image = json.loads(created.body)['image']['id']
            for label, method, path, headers, body, status in operations(ids, data_image):
                with counting_aws_calls() as log:
                    response = client.http.request(method, path, headers=headers, body=body)
                assert response.status_code == status, (label, response.status_code,
                                                        response.body[:300])
                figures[label] = _figure('%s %s' % (method, UUID.sub('{id}', path)), log)
            with counting_aws_calls() as log:
                scanned = _count_by_scan(ImageModel.Meta.table_name)
            figures['(naive) full Scan of the images table'] = {
                'request': 'Scan (Select=COUNT)', 'requests': log.count('dynamodb'),
                'items_read': log.items_read('dynamodb'), 's3_requests': 0,
                'operations': _ops_text(log), 'items_in_table': scanned}
        composition.reset()
    figures.update(measure_changes(size))
    return figures, fill_seconds


def main():
    _setup_environment()
    small, large = SIZES
    measured, fills = {}, {}
    for size in SIZES:
        measured[size], fills[size] = measure(size)
    rows, figures = [], {}
    for label, base in measured[small].items():
        big = measured[large][label]
        req_ratio = ratio(big['requests'], base['requests'])
        item_ratio = ratio(big['items_read'], base['items_read'])
        rows.append([label, fmt(big['requests']), fmt(base['requests']), fmt_ratio(req_ratio),
                     fmt(big['items_read']), fmt(base['items_read']), fmt_ratio(item_ratio),
                     big['operations']])
        figures[label] = {
            'requests': {str(large): big['requests'], str(small): base['requests'],
                         'ratio': req_ratio},
            'items_read': {str(large): big['items_read'], str(small): base['items_read'],
                           'ratio': item_ratio},
            'operations': {str(large): big['operations'], str(small): base['operations']},
            'request': big['request'],
        }
    table('DynamoDB cost per request: catalog of %s images (ours) vs %s (baseline), '
          'ratio = %s/%s' % (fmt(large), fmt(small), fmt(large), fmt(small)),
          ['figure', 'req %s' % fmt(large), 'req %s' % fmt(small), 'ratio',
           'items %s' % fmt(large), 'items %s' % fmt(small), 'ratio',
           'calls at %s' % fmt(large)], rows,
          notes=['trusted-headers identities; tenant-a owns every 4th image, every 3rd is '
                 'public, tenant-s is a member of every 5th;',
                 'default page 25 images; "items" = items DynamoDB read (Query/Scan '
                 'ScannedCount, GetItem/BatchGetItem found);',
                 'name= reads the name-images index (image-00001 is tenant-b\'s, private: '
                 'read, its membership checked, not listed);',
                 'grow with the catalog by design: a filter the indexes do not serve reads '
                 'the caller\'s visible set until the page is full,',
                 'and /v1/shared-images is unpaged in v1 (every membership of the tenant); the '
                 'shared-with-me page reads up to limit+1 per source (tenant-s has 20 '
                 'memberships at 100),',
                 'changes-since (since %s) of tenant-a: its own catalog of %s / %s private images '
                 'of three other tenants, and tenant-a\'s 2 own, 1 public, 1 shared;'
                 % (SINCE, fmt(large), fmt(small)),
                 'catalog filled in %.1f s (%s) and %.1f s (%s) with BatchWriteItem.'
                 % (fills[small], fmt(small), fills[large], fmt(large))])
    save('costs', {'catalog_sizes': list(SIZES), 'figures': figures,
                   'fill_seconds': {str(k): round(v, 2) for k, v in fills.items()}})
    return figures


if __name__ == '__main__':
    main()
