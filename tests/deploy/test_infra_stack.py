"""infra/resources.yaml deployed into moto's CloudFormation: the app runs on what
the stack creates (no ensure_resources here)."""
import hashlib
import os

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib import composition
from chalicelib.config import settings
from chalicelib.storage.models import ImageMemberModel, ImageModel
from tests.helpers import PROJECT_DIR, create_image, tenant

pytestmark = pytest.mark.slow

A = tenant('tenant-a')


@pytest.fixture
def stack():
    with mock_aws():
        composition.reset()
        current = settings()
        with open(os.path.join(PROJECT_DIR, 'infra', 'resources.yaml')) as template:
            body = template.read()
        cloudformation = boto3.client('cloudformation', region_name=current.region)
        cloudformation.create_stack(StackName='glance-v1-test-resources', TemplateBody=body,
                                    Parameters=[
            {'ParameterKey': 'ImagesTableName', 'ParameterValue': current.images_table},
            {'ParameterKey': 'MembersTableName', 'ParameterValue': current.members_table},
            {'ParameterKey': 'ImageBucketName', 'ParameterValue': current.image_bucket}])
        described = cloudformation.describe_stacks(StackName='glance-v1-test-resources')
        yield described['Stacks'][0]
        composition.reset()


def _keys(key_schema):
    return sorted((key['KeyType'], key['AttributeName']) for key in key_schema)


def _model_indexes(model):
    """{index name: (its keys, projection)} as the PynamoDB model declares them."""
    return {index['index_name']: (_keys(index['key_schema']), index['projection'])
            for index in model._get_schema()['global_secondary_indexes']}


def _table_indexes(table):
    return {index['IndexName']: (_keys(index['KeySchema']), index['Projection'])
            for index in table['GlobalSecondaryIndexes']}


def test_stack_creates_the_tables_indexes_and_bucket(stack):
    assert stack['StackStatus'] == 'CREATE_COMPLETE'
    current = settings()
    dynamodb = boto3.client('dynamodb', region_name=current.region)
    images = dynamodb.describe_table(TableName=current.images_table)['Table']
    # the indexes the code queries are those the template creates, key for key
    assert _table_indexes(images) == _model_indexes(ImageModel)
    assert set(_table_indexes(images)) == {
        'public-images', 'owner-images', 'name-images', 'catalog', 'changes',
        'audience-changes', 'pending-uploads'}
    members = dynamodb.describe_table(TableName=current.members_table)['Table']
    assert _table_indexes(members) == _model_indexes(ImageMemberModel)
    assert [i['IndexName'] for i in members['GlobalSecondaryIndexes']] == ['member-images']
    s3 = boto3.client('s3', region_name=current.region)
    s3.head_bucket(Bucket=current.image_bucket)
    outputs = {o['OutputKey']: o['OutputValue'] for o in stack['Outputs']}
    assert outputs == {'ImagesTable': current.images_table,
                       'MembersTable': current.members_table,
                       'ImageBucket': current.image_bucket}


def test_template_recovery_ttl_and_bucket_protection():
    # moto's CloudFormation does not apply these settings; read them from the template
    from cfnlint.decode.cfn_yaml import load
    resources = load(os.path.join(PROJECT_DIR, 'infra', 'resources.yaml'))['Resources']
    for table in ('ImagesTable', 'MembersTable'):
        properties = resources[table]['Properties']
        assert properties['PointInTimeRecoverySpecification'] == {
            'PointInTimeRecoveryEnabled': True}
    assert resources['ImagesTable']['Properties']['TimeToLiveSpecification'] == {
        'AttributeName': 'purge_at', 'Enabled': True}
    bucket = resources['ImageBucket']['Properties']
    assert all(bucket['PublicAccessBlockConfiguration'].values())
    assert bucket['BucketEncryption']['ServerSideEncryptionConfiguration'][0][
        'ServerSideEncryptionByDefault'] == {'SSEAlgorithm': 'AES256'}
    [rule] = bucket['LifecycleConfiguration']['Rules']
    assert rule['AbortIncompleteMultipartUpload'] == {
        'DaysAfterInitiation': {'Ref': 'IncompleteUploadDays'}}


def test_the_app_runs_on_the_stack(stack):
    from app import app
    data = os.urandom(4096)
    with Client(app, stage_name='test', project_dir=PROJECT_DIR) as client:
        response, image = create_image(client, A, data=data)
        assert response.status_code == 201 and image['status'] == 'active'
        assert image['checksum'] == hashlib.md5(data).hexdigest()
        path = '/v1/images/%s' % image['id']
        download = client.http.get(path, headers=dict(A, Accept='*/*'))
        assert download.status_code == 200 and download.body == data
        listed = client.http.get('/v1/images/detail', headers=A)
        assert image['id'] in listed.body.decode()
        assert client.http.delete(path, headers=A).status_code == 200
        assert client.http.request('HEAD', path, headers=A).status_code == 404


def test_ensure_resources_adds_the_indexes_a_kept_table_lacks():
    """A persistent emulator's tables from before an index: ensure_resources adds it
    and rewrites the images into it, as `make deploy` does in AWS."""
    from chalicelib.storage.catalog import ImageCatalog
    from chalicelib.storage.resources import ensure_resources
    with mock_aws():
        composition.reset()
        current = settings()
        schema = ImageModel._get_schema()
        dynamodb = boto3.client('dynamodb', region_name=current.region)
        kept = [i for i in schema['global_secondary_indexes']
                if i['index_name'] != 'audience-changes']
        dynamodb.create_table(
            TableName=current.images_table, BillingMode='PAY_PER_REQUEST',
            KeySchema=schema['key_schema'],
            AttributeDefinitions=[a for a in schema['attribute_definitions']
                                  if a['AttributeName'] != 'audience'],
            GlobalSecondaryIndexes=[{'IndexName': i['index_name'], 'KeySchema': i['key_schema'],
                                     'Projection': i['projection']} for i in kept])
        ensure_resources()   # creates the members table and the bucket, adds the index
        images = dynamodb.describe_table(TableName=current.images_table)['Table']
        assert _table_indexes(images) == _model_indexes(ImageModel)
        assert ImageCatalog().reindex() == 0   # an empty table: nothing to rewrite
        from app import app
        with Client(app, stage_name='test', project_dir=PROJECT_DIR) as client:
            _, image = create_image(client, A)
            # an image written before the index: no audience until ensure_resources
            ImageModel.get(image['id']).update(actions=[ImageModel.audience.remove()])
            dynamodb.update_table(TableName=current.images_table, GlobalSecondaryIndexUpdates=[
                {'Delete': {'IndexName': 'audience-changes'}}])
            ensure_resources()
            listed = client.http.get('/v1/images?changes-since=2000-01-01', headers=A)
            assert listed.status_code == 200 and image['id'] in listed.body.decode()
        composition.reset()
