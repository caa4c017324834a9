"""`make deploy STAGE=dev`: resources stack, `chalice deploy`, then bucket events.

0. check the Keystone service password is an SSM SecureString parameter (only the
   authorizer's role may read it), not a variable every function would see;
1. create or update the resources stack (tables, bucket) with the stage's names
   from .chalice/config.json, then rewrite the images an index added since they
   were written does not hold yet (a scan; nothing is written when none);
2. `chalice deploy --stage STAGE` (functions, API, authorizer, schedule);
3. update the stack again with the upload finalizer's and the image copier's ARNs:
   the bucket's ObjectCreated notifications go to the finalizer, and the failed
   events of both to the dead-letter queue (alarmed; `make redrive` re-delivers);
4. X-Ray tracing on the API stage, and the stage's log retention on the API
   handler's log group (chalice's `xray` and `log_retention_in_days` do the rest).
"""
import json
import os
import subprocess
import sys

import boto3
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stage import (PARAMETERS, dead_letter_queue, function_name,  # noqa: E402
                   stage_environment)

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(PROJECT_DIR, 'infra', 'resources.yaml')


def deploy_stack(cloudformation, name, parameters):
    with open(TEMPLATE) as template:
        body = template.read()
    arguments = dict(StackName=name, TemplateBody=body, Parameters=[
        {'ParameterKey': k, 'ParameterValue': v} for k, v in parameters.items()])
    try:
        cloudformation.describe_stacks(StackName=name)
        exists = True
    except ClientError:
        exists = False
    try:
        if exists:
            cloudformation.update_stack(**arguments)
            waiter = 'stack_update_complete'
        else:
            cloudformation.create_stack(**arguments)
            waiter = 'stack_create_complete'
    except ClientError as error:
        if 'No updates are to be performed' in str(error):
            return
        raise
    cloudformation.get_waiter(waiter).wait(StackName=name)
    print('stack %s: %s' % (name, waiter.replace('_', ' ')))


def check_keystone_password(env, ssm):
    """Refuse to deploy a password in the stage's variables, or without its parameter
    (read without decryption: the deployer needs no KMS grant)."""
    name = env.get('GLANCE_KEYSTONE_PASSWORD_PARAMETER')
    if env.get('GLANCE_KEYSTONE_PASSWORD'):
        raise SystemExit('GLANCE_KEYSTONE_PASSWORD is set in the stage, where every function '
                         'sees it: store it in the SSM SecureString parameter that '
                         'GLANCE_KEYSTONE_PASSWORD_PARAMETER names instead')
    if env.get('GLANCE_AUTH_MODE') != 'keystone':
        return
    if not name:
        raise SystemExit('set GLANCE_KEYSTONE_PASSWORD_PARAMETER in the stage')
    try:
        found = ssm.get_parameter(Name=name)['Parameter']
    except ClientError as error:
        if error.response['Error']['Code'] != 'ParameterNotFound':
            raise
        raise SystemExit('the Keystone service password is missing: aws ssm put-parameter '
                         '--name %s --type SecureString --value ...' % name) from error
    if found['Type'] != 'SecureString':
        raise SystemExit('%s is a %s: it must be a SecureString' % (name, found['Type']))


def function_arn(stage, name):
    with open(os.path.join(PROJECT_DIR, '.chalice', 'deployed', '%s.json' % stage)) as f:
        deployed = json.load(f)
    for resource in deployed['resources']:
        if resource.get('name') == name and resource.get('lambda_arn'):
            return resource['lambda_arn']
    raise SystemExit('%s was not deployed' % name)


def operate(stage, apigateway, logs):
    """What chalice deploy misses of the stage's `xray` and `log_retention_in_days`:
    tracing on the API stage, and the API handler's retention (chalice sets it on a
    group named after `api_handler`, not on the function's, <app>-<stage>)."""
    with open(os.path.join(PROJECT_DIR, '.chalice', 'config.json')) as f:
        config = json.load(f)['stages'][stage]
    if config.get('xray'):
        with open(os.path.join(PROJECT_DIR, '.chalice', 'deployed', '%s.json' % stage)) as f:
            api = next(r for r in json.load(f)['resources']
                       if r.get('resource_type') == 'rest_api')
        apigateway.update_stage(restApiId=api['rest_api_id'], stageName='api',
                                patchOperations=[{'op': 'replace', 'path': '/tracingEnabled',
                                                  'value': 'true'}])
    if config.get('log_retention_in_days'):
        group = '/aws/lambda/%s' % function_name(stage, 'api_handler')
        try:
            logs.create_log_group(logGroupName=group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        logs.put_retention_policy(logGroupName=group,
                                  retentionInDays=config['log_retention_in_days'])


def add_binary_media_types(stage):
    """API Gateway answers `Accept: */*` (what v1 clients send) with binary only if
    */* is a binary media type; chalice sets just the app's (application/octet-stream)."""
    with open(os.path.join(PROJECT_DIR, '.chalice', 'deployed', '%s.json' % stage)) as f:
        deployed = json.load(f)
    api = next(r for r in deployed['resources'] if r.get('resource_type') == 'rest_api')
    apigateway = boto3.client('apigateway')
    current = apigateway.get_rest_api(restApiId=api['rest_api_id']).get('binaryMediaTypes', [])
    if '*/*' not in current:
        apigateway.update_rest_api(restApiId=api['rest_api_id'], patchOperations=[
            {'op': 'add', 'path': '/binaryMediaTypes/*~1*'}])
        apigateway.create_deployment(restApiId=api['rest_api_id'], stageName='api')


def reindex_images(env):
    os.environ.update(env)
    sys.path.insert(0, PROJECT_DIR)
    from chalicelib.storage.catalog import ImageCatalog
    print('images rewritten into the indexes: %d' % ImageCatalog().reindex())


def main(stage):
    env = stage_environment(stage)
    parameters = {name: env[variable] for name, variable in PARAMETERS.items()}
    parameters['DeadLetterQueueName'] = dead_letter_queue(stage)
    if os.environ.get('GLANCE_ALARM_TOPIC_ARN'):   # an SNS topic the alarms notify
        parameters['AlarmTopicArn'] = os.environ['GLANCE_ALARM_TOPIC_ARN']
    check_keystone_password(env, boto3.client('ssm'))
    stack = 'glance-v1-%s-resources' % stage
    cloudformation = boto3.client('cloudformation')
    deploy_stack(cloudformation, stack, parameters)
    reindex_images(env)
    subprocess.run([os.path.join(os.path.dirname(sys.executable), 'chalice'), 'deploy',
                    '--stage', stage], cwd=PROJECT_DIR, check=True)
    add_binary_media_types(stage)
    operate(stage, boto3.client('apigateway'), boto3.client('logs'))
    deploy_stack(cloudformation, stack, dict(
        parameters, FinalizerFunctionArn=function_arn(stage, 'upload_finalizer'),
        CopierFunctionArn=function_arn(stage, 'image_copier')))


if __name__ == '__main__':
    main(sys.argv[1])
