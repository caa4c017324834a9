"""Deployment, checked offline: templates lint clean, packages hold what AWS needs,
and the hand-written IAM policies grant exactly what the code does."""
import json
import os
import subprocess
import sys

import boto3
import pytest

from bench.counting import counting_aws_calls
from chalicelib.api import common
from chalicelib.storage.models import ImageMemberModel, ImageModel
from tests.conftest import PROJECT_DIR
from tests.helpers import create_image, tenant

A, B = tenant('tenant-a'), tenant('tenant-b')
BIN = os.path.dirname(sys.executable)
DEPLOYED_STAGES = ('dev', 'prod')

# IAM action of each API operation the code (or a presigned URL it signs) performs.
IAM_ACTIONS = {
    ('s3', 'GetObject'): 's3:GetObject', ('s3', 'HeadObject'): 's3:GetObject',
    ('s3', 'PutObject'): 's3:PutObject', ('s3', 'CreateMultipartUpload'): 's3:PutObject',
    ('s3', 'UploadPart'): 's3:PutObject', ('s3', 'CompleteMultipartUpload'): 's3:PutObject',
    ('s3', 'CopyObject'): 's3:PutObject', ('s3', 'UploadPartCopy'): 's3:PutObject',
    ('s3', 'DeleteObject'): 's3:DeleteObject',
    ('s3', 'AbortMultipartUpload'): 's3:AbortMultipartUpload',
    ('s3', 'ListParts'): 's3:ListMultipartUploadParts',
    ('lambda', 'Invoke'): 'lambda:InvokeFunction',
}
# Granted without being called: S3 answers 404 (not 403) for a missing key only
# to a caller allowed to list the bucket, and the code relies on that 404.
IMPLIED = {'s3:ListBucket'}
LOGGING = {'logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'}


def _stage_env(stage):
    config = json.load(open(os.path.join(PROJECT_DIR, '.chalice', 'config.json')))
    return dict(config['environment_variables'],
                **config['stages'][stage]['environment_variables'])


def _policy(stage):
    with open(os.path.join(PROJECT_DIR, '.chalice', 'policy-%s.json' % stage)) as f:
        return json.load(f)


def test_resources_template_lints_clean():
    result = subprocess.run([os.path.join(BIN, 'cfn-lint'), 'infra/resources.yaml'],
                            cwd=PROJECT_DIR, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope='module', params=DEPLOYED_STAGES)
def package(request, tmp_path_factory):
    out = tmp_path_factory.mktemp('package-%s' % request.param)
    env = dict(os.environ, AWS_DEFAULT_REGION='us-east-1')
    result = subprocess.run(
        [os.path.join(BIN, 'chalice'), 'package', '--stage', request.param,
         '--merge-template', 'infra/api-binary-media-types.json', str(out)],
        cwd=PROJECT_DIR, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return request.param, out


def test_package_has_authorizer_finalizer_and_binary_types(package):
    stage, out = package
    template = json.load(open(out / 'sam.json'))
    resources = template['Resources']
    assert {'UploadFinalizer', 'UploadReaper', 'ImageCopier', 'Keystone', 'APIHandler'} \
        <= set(resources)
    swagger = resources['RestAPI']['Properties']['DefinitionBody']
    assert swagger['x-amazon-apigateway-binary-media-types'] == [
        'application/octet-stream', '*/*']
    assert 'keystone' in swagger['securityDefinitions']
    secured = swagger['paths']['/v1/images/{image_id}']['get']
    assert secured['security'] == [{'keystone': []}]
    assert 'security' not in swagger['paths']['/versions']['get']
    env = resources['APIHandler']['Properties']['Environment']['Variables']
    assert env['GLANCE_AUTH_MODE'] == 'keystone'
    lint = subprocess.run([os.path.join(BIN, 'cfn-lint'), str(out / 'sam.json')],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert (out / 'deployment.zip').stat().st_size > 0


@pytest.mark.parametrize('stage', DEPLOYED_STAGES)
def test_policy_resources_are_the_stage_tables_bucket_and_keys(stage):
    env, policy = _stage_env(stage), _policy(stage)
    resources = set()
    for statement in policy['Statement']:
        found = statement['Resource']
        resources.update([found] if isinstance(found, str) else found)
    images, members, bucket = (env['GLANCE_IMAGES_TABLE'], env['GLANCE_MEMBERS_TABLE'],
                               env['GLANCE_IMAGE_BUCKET'])
    assert resources == {
        'arn:aws:dynamodb:*:*:table/%s' % images, 'arn:aws:dynamodb:*:*:table/%s/index/*' % images,
        'arn:aws:dynamodb:*:*:table/%s' % members,
        'arn:aws:dynamodb:*:*:table/%s/index/*' % members,
        'arn:aws:s3:::%s' % bucket, 'arn:aws:s3:::%s/images/*' % bucket,
        'arn:aws:s3:::%s/uploads/*' % bucket,
        'arn:aws:lambda:*:*:function:%s' % env['GLANCE_COPY_FUNCTION'],
        'arn:aws:logs:*:*:*'}


def _performed_actions(client, settings_override):
    """Every AWS operation the service performs in a full tour of its features."""
    for model in (ImageModel, ImageMemberModel):
        model._connection = None  # so that the tour sees PynamoDB's DescribeTable
    common._services.clear()
    s3 = boto3.client('s3', region_name='us-east-1')
    bucket = common.image_service().blobs.bucket
    performed = set()

    def tour(step):
        with counting_aws_calls() as log:
            step()
        performed.update((svc, op) for svc, op, _ in log.calls)

    images = {}
    tour(lambda: images.update(inline=create_image(client, A, data=b'x' * 100)[1]))
    image = images['inline']
    path = '/v1/images/%s' % image['id']
    tour(lambda: client.http.request('HEAD', path, headers=A))
    tour(lambda: client.http.get(path, headers=dict(A, Accept='*/*')))
    tour(lambda: client.http.put(path, headers=dict(A, **{'x-image-meta-name': 'n'})))
    tour(lambda: client.http.get('/v1/images/detail?sort_key=name', headers=A))
    tour(lambda: client.http.get('/v1/images/detail?changes-since=2000-01-01', headers=A))
    tour(lambda: client.http.put(path + '/members/tenant-b', headers=A))
    tour(lambda: client.http.put(path + '/members/tenant-b', headers=dict(
        A, **{'Content-Type': 'application/json'}), body=b'{"member": {"can_share": true}}'))
    tour(lambda: client.http.get(path + '/members', headers=A))
    tour(lambda: client.http.get('/v1/shared-images/tenant-b', headers=A))
    tour(lambda: client.http.get('/v1/images', headers=B))
    tour(lambda: client.http.delete(path + '/members/tenant-b', headers=A))
    # presigned multipart upload: reserve, show, the client's part, complete, finalize
    _, queued = create_image(client, A)
    upload_path = '/v1/images/%s/upload' % queued['id']
    reserved = {}
    tour(lambda: reserved.update(json.loads(client.http.post(
        upload_path, headers=A, body=json.dumps({'size': 6 << 20, 'part_size': 5 << 20})
        .encode()).body)['upload']))
    for part in reserved['parts']:
        tour(lambda: s3.upload_part(Bucket=bucket, Key='uploads/%s' % queued['id'],
                                    UploadId=reserved['upload_id'],
                                    PartNumber=part['part_number'], Body=b'y' * part['size']))
    tour(lambda: client.http.get(upload_path, headers=A))
    tour(lambda: client.http.post(upload_path + '/complete', headers=A))
    tour(lambda: common.upload_service().finalize('uploads/%s' % queued['id']))
    # an aborted single reservation, an abandoned multipart one reaped
    _, single = create_image(client, A)
    tour(lambda: client.http.post('/v1/images/%s/upload' % single['id'], headers=A,
                                  body=b'{"size": 10}'))
    tour(lambda: client.http.request('POST', '/v1/images/%s/upload/complete' % single['id'],
                                     headers=A))
    tour(lambda: client.http.delete('/v1/images/%s/upload' % single['id'], headers=A))
    _, abandoned = create_image(client, A)
    tour(lambda: client.http.post('/v1/images/%s/upload' % abandoned['id'], headers=A,
                                  body=b'{"size": 10, "part_size": 5242880}'))
    tour(lambda: common.upload_service().reap('9999-01-01T00:00:00.000000'))
    # copy-from in AWS: an asynchronous Lambda invocation (moto cannot run it)
    settings_override(copy_function='glance-v1-test-image_copier')

    def invoke():
        try:
            common.run_in_background('copy_image', image['id'], 's3://b/k')
        except Exception:  # noqa: BLE001 - moto has no such function; the call is what counts
            pass
    tour(invoke)
    tour(lambda: client.http.put(path + '/members/tenant-c', headers=A))
    tour(lambda: client.http.delete(path, headers=A))  # its memberships go too
    return performed


def test_policies_grant_exactly_what_the_code_does(client, settings_override):
    performed = _performed_actions(client, settings_override)
    needed = {('dynamodb:%s' % op) if svc == 'dynamodb' else IAM_ACTIONS[(svc, op)]
              for svc, op in performed}
    print('operations performed:', sorted('%s:%s' % p for p in performed))
    print('IAM actions needed:', sorted(needed))
    for stage in DEPLOYED_STAGES:
        granted = {action for statement in _policy(stage)['Statement']
                   for action in statement['Action']}
        assert granted - LOGGING - IMPLIED == needed, stage
