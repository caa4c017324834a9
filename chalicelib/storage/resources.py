"""Create the tables and the bucket where they are missing (local runtime, tests).

In AWS the resources come from infra/; this is for moto and other emulators.
"""
import time
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.config import settings
from chalicelib.storage.blobs import UPLOAD_PREFIX, s3_client
from chalicelib.storage.models import ImageMemberModel, ImageModel, bind_tables


def ensure_resources():
    bind_tables(settings())
    for model in (ImageModel, ImageMemberModel):
        if not model.exists():
            model.create_table(wait=True, billing_mode='PAY_PER_REQUEST')
        elif _add_missing_indexes(model) and model is ImageModel:
            from chalicelib.storage.catalog import ImageCatalog
            ImageCatalog().reindex()   # as `make deploy` does after the stack
    client = s3_client()
    bucket = settings().image_bucket
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        create: dict[str, Any] = {'Bucket': bucket}
        if settings().region != 'us-east-1':
            create['CreateBucketConfiguration'] = {'LocationConstraint': settings().region}
        client.create_bucket(**create)


def _add_missing_indexes(model):
    """Create the indexes the model declares that a table kept from an earlier run
    (a persistent emulator) lacks, one UpdateTable each as DynamoDB requires.
    -> whether any was added."""
    current = settings()
    client = boto3.client('dynamodb', region_name=current.region,
                          endpoint_url=current.aws_endpoint_url)
    table_name = model.Meta.table_name
    present = {index['IndexName'] for index in client.describe_table(
        TableName=table_name)['Table'].get('GlobalSecondaryIndexes', [])}
    missing = [index for index in model._get_schema()['global_secondary_indexes']
               if index['index_name'] not in present]
    for index in missing:
        client.update_table(
            TableName=table_name, AttributeDefinitions=index['attribute_definitions'],
            GlobalSecondaryIndexUpdates=[{'Create': {
                'IndexName': index['index_name'], 'KeySchema': index['key_schema'],
                'Projection': index['projection']}}])
        while not _index_active(client, table_name, index['index_name']):
            time.sleep(1)
    return bool(missing)


def _index_active(client, table_name, index_name):
    table = client.describe_table(TableName=table_name)['Table']
    return any(index['IndexName'] == index_name and index.get('IndexStatus', 'ACTIVE') ==
               'ACTIVE' for index in table.get('GlobalSecondaryIndexes', []))


def ensure_upload_events(sqs):
    """Local runtime: the bucket's ObjectCreated events under uploads/ go to a queue
    (in AWS they invoke the finalizer function directly). Returns the queue URL."""
    current = settings()
    queue_url = sqs.create_queue(QueueName=current.upload_events_queue)['QueueUrl']
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
    s3_client().put_bucket_notification_configuration(
        Bucket=current.image_bucket, NotificationConfiguration={'QueueConfigurations': [{
            'QueueArn': queue_arn, 'Events': ['s3:ObjectCreated:*'],
            'Filter': {'Key': {'FilterRules': [{'Name': 'prefix', 'Value': UPLOAD_PREFIX}]}},
        }]})
    return queue_url
