"""Deployment, checked offline: templates lint clean, packages hold what AWS needs,
every function has its own role, and each hand-written IAM policy grants exactly
what that function does."""
import collections
import contextlib
import itertools
import json
import os
import subprocess
import sys
from unittest import mock

import boto3
import pytest
from botocore.client import BaseClient
from chalice.app import AuthRequest
from moto import mock_aws

from chalicelib import composition
from chalicelib.api import common, keystone
from chalicelib.config import settings
from chalicelib.domain.ports import BlobStoreError
from chalicelib.events import copy_image, finalize_bucket_event, reap_abandoned_uploads
from chalicelib.storage.blobs import ImageBlobStore
from chalicelib.storage.models import ImageMemberModel, ImageModel
from infra import deploy
from infra import stage as stage_names
from tests.helpers import PROJECT_DIR, body_json, create_image, tenant
from tests.keystone_standin import (SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER,
                                    KeystoneStandIn)
from tests.sources import SOURCE_DATA as DATA

A, B = tenant('tenant-a'), tenant('tenant-b')
BIN = os.path.dirname(sys.executable)
DEPLOYED_STAGES = ('dev', 'prod')
# chalice's name of each Lambda function, and its resource in the packaged template
FUNCTIONS = {'api_handler': 'APIHandler', 'keystone': 'Keystone',
             'upload_finalizer': 'UploadFinalizer', 'upload_reaper': 'UploadReaper',
             'image_copier': 'ImageCopier'}
TEST_COPIER = 'glance-v1-test-image_copier'
TEST_FINALIZER = 'glance-v1-test-upload_finalizer'   # invokes itself for the next step
MIB = 1 << 20
ASYNCHRONOUS = ('upload_finalizer', 'image_copier')   # invoked as events: dead-lettered
TEST_PASSWORD_PARAMETER = '/glance-v1/test/keystone-password'

# IAM actions of each API operation the code (or a presigned URL it signs) performs.
S3_ACTIONS = {
    'GetObject': 's3:GetObject', 'HeadObject': 's3:GetObject',
    'PutObject': 's3:PutObject', 'CreateMultipartUpload': 's3:PutObject',
    'UploadPart': 's3:PutObject', 'CompleteMultipartUpload': 's3:PutObject',
    'CopyObject': 's3:PutObject', 'UploadPartCopy': 's3:PutObject',
    'DeleteObject': 's3:DeleteObject', 'AbortMultipartUpload': 's3:AbortMultipartUpload',
    'ListParts': 's3:ListMultipartUploadParts',
}
DYNAMODB_TABLE_OPERATIONS = {'DescribeTable', 'GetItem', 'PutItem', 'UpdateItem',
                             'DeleteItem', 'Query', 'Scan'}


def _stage_env(stage):
    config = json.load(open(os.path.join(PROJECT_DIR, '.chalice', 'config.json')))
    return dict(config['environment_variables'],
                **config['stages'][stage]['environment_variables'])


def _policy_file(stage, function):
    config = json.load(open(os.path.join(PROJECT_DIR, '.chalice', 'config.json')))
    return os.path.join(PROJECT_DIR, '.chalice', config['stages'][stage]['lambda_functions']
                        [function]['iam_policy_file'])


def _policy(stage, function):
    with open(_policy_file(stage, function)) as f:
        return json.load(f)


def _deployed_function_name(stage, function):
    """What `chalice deploy` names it (the API handler is just <app>-<stage>)."""
    suffix = '' if function == 'api_handler' else '-' + function
    return 'glance-v1-%s%s' % (stage, suffix)


def _granted(policy):
    """{(action, resource)} of an Allow-only policy without conditions."""
    pairs = set()
    for statement in policy['Statement']:
        assert statement['Effect'] == 'Allow'
        assert set(statement) <= {'Sid', 'Effect', 'Action', 'Resource'}, statement
        actions, resources = statement['Action'], statement['Resource']
        pairs.update(itertools.product([actions] if isinstance(actions, str) else actions,
                                       [resources] if isinstance(resources, str) else resources))
    return pairs


def test_resources_template_lints_clean():
    result = subprocess.run([os.path.join(BIN, 'cfn-lint'), 'infra/resources.yaml'],
                            cwd=PROJECT_DIR, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize('stage', DEPLOYED_STAGES)
def test_each_function_of_a_stage_has_its_own_policy_file(stage):
    config = json.load(open(os.path.join(PROJECT_DIR, '.chalice', 'config.json')))
    stage_config = config['stages'][stage]
    # no stage-wide policy to fall back on; a function without its own fails to package
    assert stage_config['autogen_policy'] is False and 'iam_policy_file' not in stage_config
    assert 'iam_policy_file' not in config and 'lambda_functions' not in config
    files = {name: _policy_file(stage, name) for name in stage_config['lambda_functions']}
    assert set(files) == set(FUNCTIONS)
    assert len(set(files.values())) == len(FUNCTIONS)
    assert all(os.path.exists(path) for path in files.values())


@pytest.mark.parametrize('stage', DEPLOYED_STAGES)
def test_the_keystone_password_is_a_parameter_not_a_variable(stage):
    env = _stage_env(stage)
    assert 'GLANCE_KEYSTONE_PASSWORD' not in env
    assert env['GLANCE_KEYSTONE_PASSWORD_PARAMETER'] == '/glance-v1/%s/keystone-password' % stage


@pytest.fixture(scope='module', params=DEPLOYED_STAGES)
def package(request, tmp_path_factory):
    out = tmp_path_factory.mktemp('package-%s' % request.param)
    merge = out.parent / ('%s-merge.json' % out.name)   # as `make package` writes it
    subprocess.run([sys.executable, 'infra/gateway_responses.py', request.param, str(merge)],
                   cwd=PROJECT_DIR, check=True)
    subprocess.run([sys.executable, 'infra/vendor.py'], cwd=PROJECT_DIR, check=True)
    env = dict(os.environ, AWS_DEFAULT_REGION='us-east-1')
    result = subprocess.run(
        [os.path.join(BIN, 'chalice'), 'package', '--stage', request.param,
         '--merge-template', str(merge), str(out)],
        cwd=PROJECT_DIR, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return request.param, out


@pytest.mark.slow
def test_package_has_authorizer_finalizer_and_binary_types(package):
    stage, out = package
    template = json.load(open(out / 'sam.json'))
    resources = template['Resources']
    assert set(FUNCTIONS.values()) <= set(resources)
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


@pytest.mark.slow
def test_package_has_the_gateway_responses_in_glance_format(package):
    """API Gateway's own 401 (no X-Auth-Token, an authorizer's Deny) is keystonemiddleware's,
    its authorizer failures are 503, each body what the views render (wire.error_response)."""
    stage, out = package
    swagger = json.load(open(out / 'sam.json'))['Resources']['RestAPI']['Properties'][
        'DefinitionBody']
    responses = swagger['x-amazon-apigateway-gateway-responses']
    assert set(responses) == {'UNAUTHORIZED', 'ACCESS_DENIED', 'AUTHORIZER_FAILURE',
                              'AUTHORIZER_CONFIGURATION_ERROR'}
    auth_url = _stage_env(stage)['GLANCE_KEYSTONE_URL']
    for kind in ('UNAUTHORIZED', 'ACCESS_DENIED'):
        response = responses[kind]
        assert response['statusCode'] == '401'
        assert response['responseParameters'] == {
            'gatewayresponse.header.WWW-Authenticate': "'Keystone uri=\"%s\"'" % auth_url}
        body = json.loads(response['responseTemplates']['application/json'])
        assert body == {'message': common.UNAUTHORIZED + '<br /><br />\n\n\n',
                        'code': '401 Unauthorized', 'title': 'Unauthorized'}
        assert response['responseTemplates']['text/plain'].startswith(
            '401 Unauthorized\n\nThis server could not verify')
        assert '<h1>401 Unauthorized</h1>' in response['responseTemplates']['text/html']
    for kind in ('AUTHORIZER_FAILURE', 'AUTHORIZER_CONFIGURATION_ERROR'):
        response = responses[kind]
        assert response['statusCode'] == '503'
        assert response['responseParameters'] == {
            'gatewayresponse.header.Retry-After': "'%s'" % common.IDENTITY_RETRY_AFTER}
        body = json.loads(response['responseTemplates']['application/json'])
        assert (body['code'], body['title']) == ('503 Service Unavailable',
                                                 'Service Unavailable')
        assert body['message'].startswith(common.IDENTITY_UNAVAILABLE)
    # templates are not VTL, but $ and # would still be substituted: none may appear
    assert not any(c in t for r in responses.values() for t in r['responseTemplates'].values()
                   for c in '$#')


@pytest.mark.slow
def test_package_gives_each_function_its_own_role_and_policy(package):
    stage, out = package
    resources = json.load(open(out / 'sam.json'))['Resources']
    functions = {name for name, r in resources.items()
                 if r['Type'] == 'AWS::Serverless::Function'}
    assert functions == set(FUNCTIONS.values())
    roles = {}
    for function, resource in FUNCTIONS.items():
        properties = resources[resource]['Properties']
        [role, attribute] = properties['Role']['Fn::GetAtt']
        assert attribute == 'Arn'
        roles[function] = role
        [policy] = resources[role]['Properties']['Policies']
        assert policy['PolicyDocument'] == _policy(stage, function), function
        assert 'GLANCE_KEYSTONE_PASSWORD' not in properties['Environment']['Variables']
    assert len(set(roles.values())) == len(FUNCTIONS)
    assert {name for name, r in resources.items() if r['Type'] == 'AWS::IAM::Role'} \
        == set(roles.values())


class _Tour:
    """Records which (IAM action, resource) each function needs while the test
    plays that function: every botocore call, and every URL the blob store presigns
    (whoever sends it acts with the signer's permissions). Resources come out as
    ARNs with the stage's names as placeholders ({GLANCE_IMAGES_TABLE}...).

    An asynchronous Lambda invocation is recorded and kept, not sent: the test then
    runs it as the invoked function would (moto cannot run a function)."""

    def __init__(self):
        current = settings()
        self.tables = {current.images_table: '{GLANCE_IMAGES_TABLE}',
                       current.members_table: '{GLANCE_MEMBERS_TABLE}'}
        self.buckets = {current.image_bucket: '{GLANCE_IMAGE_BUCKET}'}
        self.functions = {TEST_COPIER: '{GLANCE_COPY_FUNCTION}',
                          TEST_FINALIZER: '{UPLOAD_FINALIZER}'}
        self.parameters = {TEST_PASSWORD_PARAMETER: '{GLANCE_KEYSTONE_PASSWORD_PARAMETER}'}
        self.needs = collections.defaultdict(set)
        self.invocations = []
        self._function = None

    @contextlib.contextmanager
    def recording(self):
        real_call, real_presign = BaseClient._make_api_call, ImageBlobStore._presign
        tour = self

        def make_api_call(client, operation, params):
            service = client.meta.service_model.service_name
            tour._record(service, operation, params)
            if (service, operation) == ('lambda', 'Invoke'):
                assert params['InvocationType'] == 'Event'
                tour.invocations.append(json.loads(params['Payload']))
                return {'StatusCode': 202}
            return real_call(client, operation, params)

        def presign(store, method, expiry, **params):
            tour._record('s3', store.client.meta.method_to_api_mapping[method],
                         dict(Bucket=store.bucket, **params))
            return real_presign(store, method, expiry, **params)

        with mock.patch.object(BaseClient, '_make_api_call', make_api_call), \
                mock.patch.object(ImageBlobStore, '_presign', presign):
            yield self

    @contextlib.contextmanager
    def playing(self, function):
        """A fresh container of `function` (named as Lambda names it): nothing connected
        or cached yet."""
        for model in (ImageModel, ImageMemberModel):
            model._connection = None   # so that its PynamoDB DescribeTable is seen
        composition.reset()
        keystone._validator.clear()
        self._function = function
        try:
            with mock.patch.dict(os.environ, AWS_LAMBDA_FUNCTION_NAME=_deployed_function_name(
                    'test', function)):
                yield
        finally:
            self._function = None

    def _record(self, service, operation, params):
        if self._function is None:
            return
        try:
            needed = self._needs(service, operation, params)
        except KeyError as unknown:   # kept, not raised: the code might swallow it
            needed = {('unmapped %s:%s' % (service, operation), str(unknown))}
        self.needs[self._function].update(needed)

    def _needs(self, service, operation, params):
        if service == 'dynamodb':
            return self._dynamodb(operation, params)
        if service == 's3':
            needed = {(S3_ACTIONS[operation], self._object(params['Bucket'], params['Key']))}
            if operation in ('CopyObject', 'UploadPartCopy'):
                source = params['CopySource']
                needed.add(('s3:GetObject', self._object(source['Bucket'], source['Key'])))
            return needed
        if (service, operation) == ('lambda', 'Invoke'):
            return {('lambda:InvokeFunction', 'arn:aws:lambda:*:*:function:%s'
                     % self.functions[params['FunctionName']])}
        if (service, operation) == ('ssm', 'GetParameter'):
            return {('ssm:GetParameter', 'arn:aws:ssm:*:*:parameter%s'
                     % self.parameters[params['Name']])}
        raise KeyError(operation)

    def _dynamodb(self, operation, params):
        if operation in DYNAMODB_TABLE_OPERATIONS:
            resource = 'arn:aws:dynamodb:*:*:table/%s' % self.tables[params['TableName']]
            if params.get('IndexName'):
                resource += '/index/*'
            return {('dynamodb:' + operation, resource)}
        if operation in ('BatchGetItem', 'BatchWriteItem'):
            return {('dynamodb:' + operation, 'arn:aws:dynamodb:*:*:table/%s' % self.tables[t])
                    for t in params['RequestItems']}
        raise KeyError(operation)

    def _object(self, bucket, key):
        return 'arn:aws:s3:::%s/%s/*' % (self.buckets[bucket], key.split('/', 1)[0])


def _implied(needs, function_name):
    """Granted without the tour calling them:
    - each function writes its own log group (Lambda does, with the function's role);
    - S3 answers 404 (not 403) for a missing key only to a caller allowed to list the
      bucket, and the code relies on that 404 wherever it reads objects;
    - boto3's transfer manager writes objects above 8 MB in parts, and aborts them
      when the stream fails, wherever a function writes."""
    group = 'arn:aws:logs:*:*:log-group:/aws/lambda/%s' % function_name
    implied = {('logs:CreateLogGroup', group + ':*'), ('logs:CreateLogStream', group + ':*'),
               ('logs:PutLogEvents', group + ':log-stream:*')}
    for action, resource in needs:
        if action == 's3:GetObject':
            implied.add(('s3:ListBucket', resource.split('/', 1)[0]))
        if action == 's3:PutObject':
            implied.add(('s3:AbortMultipartUpload', resource))
    return implied


def _operated(stage, function):
    """Granted for operations, not called by the code: X-Ray segments (tracing is on in
    the deployed stages) and, for the asynchronously invoked functions, the dead-letter
    queue Lambda sends their failed events to with the function's own role."""
    granted = {('xray:PutTraceSegments', '*'), ('xray:PutTelemetryRecords', '*')}
    if function in ASYNCHRONOUS:
        granted.add(('sqs:SendMessage', 'arn:aws:sqs:*:*:%s' % stage_names.dead_letter_queue(
            stage)))
    return granted


def _run_invocations(tour):
    """Each asynchronous invocation, by the function it names: the copier, or the next
    step of a chained finalization (the finalizer's own)."""
    while tour.invocations:
        event = tour.invocations.pop(0)
        if event['job'] == 'finalize':
            with tour.playing('upload_finalizer'):
                finalize_bucket_event(event)
        else:
            with tour.playing('image_copier'):
                copy_image(event)


def _bucket_event(key):
    return {'Records': [{'eventName': 'ObjectCreated:CompleteMultipartUpload',
                         's3': {'object': {'key': key}}}]}


def _tour_of_every_feature(client, settings_override, source_server, source):
    """Every AWS operation each function performs, from a tour of every feature."""
    settings_override(copy_function=TEST_COPIER, inline_download_limit=1000)
    s3 = boto3.client('s3', region_name='us-east-1')
    bucket = settings().image_bucket
    boto3.client('ssm', region_name='us-east-1').put_parameter(
        Name=TEST_PASSWORD_PARAMETER, Value=SERVICE_PASSWORD, Type='SecureString')
    tour = _Tour()
    with tour.recording(), tour.playing('api_handler'):
        _, image = create_image(client, A, data=b'x' * 100)
        path = '/v1/images/%s' % image['id']
        assert client.http.request('HEAD', path, headers=A).status_code == 200
        assert client.http.get(path, headers=dict(A, Accept='*/*')).body == b'x' * 100
        client.http.put(path, headers=dict(A, **{'x-image-meta-name': 'n'}))
        client.http.get('/v1/images/detail?sort_key=name', headers=A)
        client.http.get('/v1/images/detail?changes-since=2000-01-01', headers=A)
        client.http.put(path + '/members/tenant-b', headers=A)
        client.http.put(path + '/members/tenant-b', headers=dict(
            A, **{'Content-Type': 'application/json'}), body=b'{"member": {"can_share": true}}')
        client.http.get(path + '/members', headers=A)
        client.http.get('/v1/shared-images/tenant-b', headers=A)
        assert [i['id'] for i in body_json(client.http.get('/v1/images', headers=B))
                ['images']] == [image['id']]
        client.http.delete(path + '/members/tenant-b', headers=A)
        # presigned multipart upload: reserve, the client's part, show, complete
        _, queued = create_image(client, A)
        upload_path = '/v1/images/%s/upload' % queued['id']
        reserved = body_json(client.http.post(upload_path, headers=A, body=json.dumps(
            {'size': 6 << 20, 'part_size': 5 << 20}).encode()))['upload']
    for part in reserved['parts']:   # the client, with the URL the API handler signed
        s3.upload_part(Bucket=bucket, Key='uploads/%s' % queued['id'],
                       UploadId=reserved['upload_id'], PartNumber=part['part_number'],
                       Body=b'y' * part['size'])
    with tour.recording():
        with tour.playing('api_handler'):
            client.http.get(upload_path, headers=A)
            assert client.http.post(upload_path + '/complete', headers=A).status_code == 202
        with tour.playing('upload_finalizer'):
            assert finalize_bucket_event(_bucket_event('uploads/%s' % queued['id'])) == [
                ('uploads/%s' % queued['id'], 'active')]
        # a chained finalization: 6 MiB in steps of 2 MiB, the finalizer invoking itself
        with tour.playing('api_handler'):
            _, chained = create_image(client, A)
            chained_path = '/v1/images/%s/upload' % chained['id']
            reserved = body_json(client.http.post(chained_path, headers=A, body=json.dumps(
                {'size': 6 << 20, 'part_size': 5 << 20}).encode()))['upload']
        for part in reserved['parts']:
            s3.upload_part(Bucket=bucket, Key='uploads/%s' % chained['id'],
                           UploadId=reserved['upload_id'], PartNumber=part['part_number'],
                           Body=b'z' * part['size'])
        with tour.playing('api_handler'):
            assert client.http.post(chained_path + '/complete', headers=A).status_code == 202
        settings_override(step_bytes=2 * MIB)
        with tour.playing('upload_finalizer'):
            assert finalize_bucket_event(_bucket_event('uploads/%s' % chained['id'])) == [
                ('uploads/%s' % chained['id'], 'saving')]
        assert [e['offset'] for e in tour.invocations] == [2 * MIB]
        with tour.playing('upload_finalizer'):
            finalize_bucket_event(tour.invocations.pop(0))
            # the last step assembles the copy, then fails; delivered again, it hashes
            # the rest from the copy
            last, real_delete = tour.invocations.pop(0), ImageBlobStore.delete

            def delete_then_fail(store, key):
                real_delete(store, key)
                raise BlobStoreError('answer lost')
            with mock.patch.object(ImageBlobStore, 'delete', delete_then_fail), \
                    pytest.raises(BlobStoreError):
                finalize_bucket_event(last)
            assert finalize_bucket_event(last) == [(chained['id'], 'active')]
        settings_override(step_bytes=1 << 30)
        with tour.playing('api_handler'):
            # an aborted single reservation; an abandoned multipart one, for the reaper
            _, single = create_image(client, A)
            single_path = '/v1/images/%s/upload' % single['id']
            client.http.post(single_path, headers=A, body=b'{"size": 10}')
            client.http.post(single_path + '/complete', headers=A)
            client.http.delete(single_path, headers=A)
            client.http.post(single_path, headers=A, body=b'{"size": 10, "part_size": 5242880}')
            assert client.http.delete(single_path, headers=A).status_code == 204
            _, abandoned = create_image(client, A)
            settings_override(upload_timeout=-60)
            client.http.post('/v1/images/%s/upload' % abandoned['id'], headers=A,
                             body=b'{"size": 10, "part_size": 5242880}')
        with tour.playing('upload_reaper'):
            assert reap_abandoned_uploads({}) == [abandoned['id']]
        with tour.playing('api_handler'):
            # copy-from (and one the copier kills), and a location cached in the bucket
            created = [body_json(client.http.post('/v1/images', headers=dict(
                A, **{'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format':
                      'bare'}, **source)))['image']['id'] for source in (
                {'x-glance-api-copy-from': source_server + '/image.raw'},
                {'x-glance-api-copy-from': source_server + '/image.raw',
                 'x-image-meta-size': str(len(DATA) + 1)},
                {'x-image-meta-location': source_server + '/image.raw'},
                {'x-glance-api-copy-from': source['url'] + '/image.raw'})]
        assert len(tour.invocations) == 4
        settings_override(step_bytes=8 * MIB)   # the last one: a chained copy, 3 steps
        _run_invocations(tour)
        settings_override(step_bytes=1 << 30)
        with tour.playing('api_handler'):
            statuses = [client.http.request('HEAD', '/v1/images/%s' % i, headers=A)
                        .headers['x-image-meta-status'] for i in created]
            assert statuses == ['active', 'killed', 'active', 'active']
            assert client.http.request('HEAD', '/v1/images/%s' % chained['id'], headers=A) \
                .headers['x-image-meta-status'] == 'active'
            for image_id in (created[0], created[2]):   # larger than the inline limit
                assert client.http.get('/v1/images/%s' % image_id,
                                       headers=dict(A, Accept='*/*')).status_code == 302
            client.http.put(path + '/members/tenant-c', headers=A)
            assert client.http.delete(path, headers=A).status_code == 200
        with KeystoneStandIn() as standin:
            settings_override(auth_mode='keystone', keystone_url=standin.url,
                              keystone_username=SERVICE_USER, keystone_password=None,
                              keystone_project=SERVICE_PROJECT,
                              keystone_password_parameter=TEST_PASSWORD_PARAMETER)
            with tour.playing('keystone'):
                allowed = keystone.keystone_authorizer(AuthRequest(
                    'TOKEN', standin.issue('tenant-a'), 'arn:aws:execute-api:x'))
            keystone._validator.clear()
            assert allowed.context['identity_status'] == keystone.CONFIRMED
    return tour.needs


@pytest.mark.slow
def test_policies_grant_exactly_what_each_function_does(client, settings_override,
                                                        source_server, source):
    needs = _tour_of_every_feature(client, settings_override, source_server, source)
    assert set(needs) == set(FUNCTIONS)
    for stage in DEPLOYED_STAGES:
        env = dict(_stage_env(stage), UPLOAD_FINALIZER=_deployed_function_name(
            stage, 'upload_finalizer'))
        for function in FUNCTIONS:
            expected = {(action, resource.format(**env)) for action, resource in
                        needs[function]}
            expected |= _implied(expected, _deployed_function_name(stage, function))
            expected |= _operated(stage, function)
            assert _granted(_policy(stage, function)) == expected, (stage, function)


def test_deployed_copier_is_the_one_the_api_invokes():
    for stage in DEPLOYED_STAGES:
        assert _stage_env(stage)['GLANCE_COPY_FUNCTION'] == \
            _deployed_function_name(stage, 'image_copier')


@pytest.fixture
def deployer_aws():
    with mock_aws():
        yield


def test_deploy_needs_the_keystone_password_as_a_secure_parameter(deployer_aws):
    env = _stage_env('dev')
    ssm = boto3.client('ssm', region_name='us-east-1')
    with pytest.raises(deploy.Refused, match='password is missing'):
        deploy.check_keystone_password(env, ssm)
    name = env['GLANCE_KEYSTONE_PASSWORD_PARAMETER']
    ssm.put_parameter(Name=name, Value='secret', Type='String')
    with pytest.raises(deploy.Refused, match='must be a SecureString'):
        deploy.check_keystone_password(env, ssm)
    ssm.put_parameter(Name=name, Value='secret', Type='SecureString', Overwrite=True)
    assert deploy.check_keystone_password(env, ssm) is None
    with pytest.raises(deploy.Refused, match='GLANCE_KEYSTONE_PASSWORD is set'):
        deploy.check_keystone_password(dict(env, GLANCE_KEYSTONE_PASSWORD='secret'), ssm)


@pytest.mark.slow
def test_deploy_creates_then_updates_the_resources_stack(deployer_aws):
    env = _stage_env('dev')
    parameters = {name: env[variable] for name, variable in deploy.PARAMETERS.items()}
    cloudformation = boto3.client('cloudformation', region_name='us-east-1')
    deploy.deploy_stack(cloudformation, 'glance-v1-dev-resources', parameters)
    deploy.deploy_stack(cloudformation, 'glance-v1-dev-resources',
                        dict(parameters, IncompleteUploadDays='3'))
    [stack] = cloudformation.describe_stacks(StackName='glance-v1-dev-resources')['Stacks']
    assert stack['StackStatus'] == 'UPDATE_COMPLETE'
    tables = boto3.client('dynamodb', region_name='us-east-1').list_tables()['TableNames']
    assert sorted(tables) == sorted([env['GLANCE_IMAGES_TABLE'], env['GLANCE_MEMBERS_TABLE']])


@pytest.mark.slow
def test_package_holds_only_the_service_and_each_function_is_sized_traced_and_retained(
        package):
    """No test, bench, client or infra code in the zip; every function has the memory and
    timeout of its stage, X-Ray, and a log group kept log_retention_in_days."""
    import zipfile
    stage, out = package
    with zipfile.ZipFile(out / 'deployment.zip') as zipped:
        tops = {name.split('/', 1)[0] for name in zipped.namelist()}
    assert {'app.py', 'chalicelib', 'pynamodb', 'rehashes'} <= tops
    assert not tops & {'botocore', 'boto3'}   # the Lambda runtime provides them
    assert not tops & {'tests', 'bench', 'glance_upload', 'glance_replicate', 'tools',
                       'infra', 'docs', 'requirements-dev.txt'}
    config = json.load(open(os.path.join(PROJECT_DIR, '.chalice', 'config.json')))['stages'][
        stage]
    resources = json.load(open(out / 'sam.json'))['Resources']
    groups = {r['Properties']['LogGroupName']['Fn::Sub']: r['Properties']['RetentionInDays']
              for r in resources.values() if r['Type'] == 'AWS::Logs::LogGroup'}
    for function, resource in FUNCTIONS.items():
        properties = resources[resource]['Properties']
        wanted = config['lambda_functions'][function]
        assert (properties['MemorySize'], properties['Timeout'], properties['Tracing']) == (
            wanted['lambda_memory_size'], wanted['lambda_timeout'], 'Active')
        assert groups['/aws/lambda/${%s}' % resource] == config['log_retention_in_days'] == 30
    assert resources['RestAPI']['Properties']['TracingEnabled'] is True
