"""DynamoDB requests and items read per request, small catalog against large.

The small catalog is the baseline; a full-table Scan of the same catalog is
shown as the naive alternative the indexes avoid.
"""
import json
import os
import sys

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOG_SIZES = (50, 2000)
SHARED_CATALOG, SHARED_EVERY = 5000, 5      # 1,000 of 5,000 images shared with tenant-s
TENANT_A = {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': 'tenant-a', 'X-Roles': 'member'}
TENANT_S = {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': 'tenant-s', 'X-Roles': 'member'}


def _setup_environment():
    sys.path.insert(0, PROJECT_DIR)
    os.environ.update(AWS_ACCESS_KEY_ID='testing', AWS_SECRET_ACCESS_KEY='testing',
                      AWS_DEFAULT_REGION='us-east-1')
    os.environ.pop('AWS_ENDPOINT_URL', None)
    from chalicelib.local.server import load_stage_environment
    load_stage_environment(PROJECT_DIR, 'test')


def measure(size, shared=False):
    from chalice.test import Client
    from moto import mock_aws

    from bench.catalog import fill_catalog
    from bench.counting import counting_aws_calls
    from chalicelib.api import common
    from chalicelib.storage.models import ImageMemberModel, ImageModel
    from chalicelib.storage.resources import ensure_resources

    figures = {}
    with mock_aws():
        common._services.clear()
        ensure_resources()
        if shared:
            fill_catalog(size, shared_with='tenant-s', share_every=SHARED_EVERY)
        else:
            fill_catalog(size)
        from app import app
        with Client(app, stage_name='test', project_dir=PROJECT_DIR) as client:
            requests = {
                'default detail page (tenant-a)': ('GET', '/v1/images/detail', TENANT_A),
                'default index page (tenant-a)': ('GET', '/v1/images', TENANT_A),
                'filtered page name=image-00001': ('GET', '/v1/images/detail?name=image-00001',
                                                   TENANT_A),
            }
            if shared:
                requests['shared-with-me page (tenant-s)'] = ('GET', '/v1/images/detail',
                                                              TENANT_S)
                private_shared = next(
                    m.image_id for m in ImageMemberModel.member_images.query('tenant-s')
                    if not ImageModel.get(m.image_id).is_public)
                requests['HEAD private image shared with tenant-s'] = (
                    'HEAD', '/v1/images/%s' % private_shared, TENANT_S)
            first = next(ImageModel.owner_images.query('tenant-a'))
            requests['HEAD own image'] = ('HEAD', '/v1/images/%s' % first.id, TENANT_A)
            for label, (method, path, headers) in requests.items():
                with counting_aws_calls() as log:
                    response = client.http.request(method, path, headers=headers)
                assert response.status_code == 200, (label, response.status_code)
                figures[label] = (log.count('dynamodb'), log.items_read('dynamodb'),
                                  sorted(log.operations('dynamodb')))
            with counting_aws_calls() as log:
                sum(1 for _ in ImageModel.scan())
            figures['(naive) full Scan of the table'] = (
                log.count('dynamodb'), log.items_read('dynamodb'), ['Scan'])
        common._services.clear()
    return figures


def main():
    _setup_environment()
    results = {size: measure(size) for size in CATALOG_SIZES}
    small, large = CATALOG_SIZES
    print('DynamoDB requests / items read per request, catalog of %d (baseline) vs %d'
          % (small, large))
    print('%-34s %14s %14s  %s' % ('request', '%d images' % small, '%d images' % large,
                                   'operations'))
    for label in results[small]:
        (req_s, items_s, ops), (req_l, items_l, _) = results[small][label], results[large][label]
        print('%-34s %6d / %-6d %6d / %-6d  %s' % (label, req_s, items_s, req_l, items_l,
                                                    ','.join(ops)))
    shared = measure(SHARED_CATALOG, shared=True)
    print()
    print('Catalog of %d images, %d of them shared with tenant-s (not its own, not public)'
          % (SHARED_CATALOG, SHARED_CATALOG // SHARED_EVERY))
    for label in ('shared-with-me page (tenant-s)', 'HEAD private image shared with tenant-s',
                  'default detail page (tenant-a)', '(naive) full Scan of the table'):
        requests_made, items, ops = shared[label]
        print('%-34s %6d / %-6d  %s' % (label, requests_made, items, ','.join(ops)))
    results[SHARED_CATALOG] = shared
    os.makedirs(os.path.join(PROJECT_DIR, 'bench', 'results'), exist_ok=True)
    with open(os.path.join(PROJECT_DIR, 'bench', 'results', 'list_reads.json'), 'w') as out:
        json.dump({str(k): {label: {'requests': v[0], 'items_read': v[1]}
                            for label, v in figs.items()} for k, figs in results.items()},
                  out, indent=2)


if __name__ == '__main__':
    main()
