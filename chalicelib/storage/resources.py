"""Create the tables and the bucket where they are missing (local runtime, tests).

In AWS the resources come from infra/; this is for moto and other emulators.
"""
from botocore.exceptions import ClientError

from chalicelib.config import settings
from chalicelib.storage.blobs import s3_client
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
