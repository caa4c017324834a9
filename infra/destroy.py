"""`make destroy STAGE=dev`: remove a stage, keeping its images unless asked.

1. `chalice delete --stage STAGE` (functions, API, authorizer, schedule), when
   .chalice/deployed/STAGE.json says it was deployed from here;
2. delete the resources stack: the tables and the bucket stay (DeletionPolicy
   Retain), with every image; a later `make deploy` refuses their names until they
   are deleted or renamed;
3. with --delete-data (`make destroy DESTROY_DATA=yes`): delete the two tables, and
   empty and delete the bucket.

Asks for the stage name first; --yes (`make destroy YES=yes`) does not ask.

    python infra/destroy.py STAGE [--yes] [--delete-data]
"""
import argparse
import os
import subprocess
import sys

import boto3
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy import EXIT_REFUSED, PROJECT_DIR, Refused, check_aws, stack_name  # noqa: E402
from stage import stage_environment  # noqa: E402


def confirm(stage, delete_data, answer=input):
    what = ('its functions, API, resources stack, AND its tables and bucket with every '
            'image' if delete_data else 'its functions, API and resources stack (the '
            'tables and the bucket are kept)')
    if not sys.stdin.isatty() and answer is input:
        raise Refused('no terminal to confirm on: run `make destroy STAGE=%s YES=yes` to '
                      'delete %s' % (stage, what))
    try:
        typed = answer('This deletes stage %s: %s. Type the stage name to go on: '
                       % (stage, what))
    except EOFError:
        typed = ''
    if typed.strip() != stage:
        raise Refused('not confirmed: nothing deleted')


def delete_functions(stage):
    if not os.path.exists(os.path.join(PROJECT_DIR, '.chalice', 'deployed', '%s.json' % stage)):
        print('no .chalice/deployed/%s.json: no functions deployed from here' % stage)
        return
    subprocess.run([os.path.join(os.path.dirname(sys.executable), 'chalice'), 'delete',
                    '--stage', stage], cwd=PROJECT_DIR, check=True)


def delete_stack(cloudformation, stage):
    name = stack_name(stage)
    try:
        cloudformation.describe_stacks(StackName=name)
    except ClientError:
        print('stack %s: not there' % name)
        return
    cloudformation.delete_stack(StackName=name)
    cloudformation.get_waiter('stack_delete_complete').wait(StackName=name)
    print('stack %s: deleted (tables and bucket kept)' % name)


def delete_data(session, env):
    dynamodb, s3 = session.client('dynamodb'), session.client('s3')
    for table in (env['GLANCE_IMAGES_TABLE'], env['GLANCE_MEMBERS_TABLE']):
        try:
            dynamodb.delete_table(TableName=table)
            dynamodb.get_waiter('table_not_exists').wait(TableName=table)
            print('table %s: deleted' % table)
        except dynamodb.exceptions.ResourceNotFoundException:
            print('table %s: not there' % table)
    bucket = env['GLANCE_IMAGE_BUCKET']
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        print('bucket %s: not there' % bucket)
        return
    for page in s3.get_paginator('list_multipart_uploads').paginate(Bucket=bucket):
        for upload in page.get('Uploads', []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload['Key'],
                                      UploadId=upload['UploadId'])
    for page in s3.get_paginator('list_object_versions').paginate(Bucket=bucket):
        doomed = [{'Key': v['Key'], 'VersionId': v['VersionId']}
                  for v in page.get('Versions', []) + page.get('DeleteMarkers', [])]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={'Objects': doomed, 'Quiet': True})
    s3.delete_bucket(Bucket=bucket)
    print('bucket %s: emptied and deleted' % bucket)


def destroy(stage, session, yes=False, with_data=False, answer=input):
    env = stage_environment(stage)
    check_aws(session)
    if not yes:
        confirm(stage, with_data, answer)
    delete_functions(stage)
    delete_stack(session.client('cloudformation'), stage)
    if with_data:
        delete_data(session, env)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='infra/destroy.py')
    parser.add_argument('stage')
    parser.add_argument('--yes', action='store_true', help='do not ask')
    parser.add_argument('--delete-data', action='store_true',
                        help='delete the tables and the bucket too')
    args = parser.parse_args(argv)
    try:
        destroy(args.stage, boto3.session.Session(), args.yes, args.delete_data)
    except Refused as refusal:
        print('make destroy STAGE=%s refused: %s' % (args.stage, refusal), file=sys.stderr)
        raise SystemExit(EXIT_REFUSED)


if __name__ == '__main__':
    main()
