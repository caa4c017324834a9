"""Create the tables and the bucket where they are missing (local runtime, tests).

In AWS the resources come from infra/; this is for moto and other emulators.
"""
from botocore.exceptions import ClientError

from chalicelib.config import settings
from chalicelib.storage.blobs import UPLOAD_PREFIX, s3_client
from chalicelib.storage.models import ImageMemberModel, ImageModel


def ensure_resources():
    for model in (ImageModel, ImageMemberModel):
        if not model.exists():
            model.create_table(wait=True, billing_mode='PAY_PER_REQUEST')
    client = s3_client()
    bucket = settings().image_bucket
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        create = {'Bucket': bucket}
        if settings().region != 'us-east-1':
            create['CreateBucketConfiguration'] = {'LocationConstraint': settings().region}
        client.create_bucket(**create)


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
