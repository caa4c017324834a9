"""`make deploy STAGE=dev`: a preflight that changes nothing, then the resources stack,
`chalice deploy`, and the bucket events.

0. preflight (each refusal is one line naming the fix, exit 2, nothing created):
   a region, credentials AWS accepts (STS GetCallerIdentity), a Keystone URL that is
   not the example placeholder and answers, the Keystone service password as an SSM
   SecureString parameter (only the authorizer's role may read it), not a variable
   every function would see, and table and bucket names free or this stage's own;
1. create or update the resources stack (tables, bucket) with the stage's names
   from .chalice/config.json, then rewrite the images an index added since they
   were written does not hold yet (a scan; nothing is written when none);
2. `chalice deploy --stage STAGE` (functions, API, authorizer, schedule), then the
   API's */* binary media type and gateway responses (infra/gateway_responses.py),
   the same ones `make package` merges into dist/STAGE/sam.json;
3. update the stack again with the upload finalizer's and the image copier's ARNs:
   the bucket's ObjectCreated notifications go to the finalizer, and the failed
   events of both to the dead-letter queue (alarmed; `make redrive` re-delivers);
4. X-Ray tracing on the API stage, and the stage's log retention on the API
   handler's log group (chalice's `xray` and `log_retention_in_days` do the rest).

    python infra/deploy.py STAGE [--preflight-only]
"""
import json
import os
import subprocess
import sys

import boto3
import urllib3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway_responses import put_responses  # noqa: E402
from vendor import vendor  # noqa: E402
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


class Refused(Exception):
    """A preflight refusal: one line, naming the fix."""


EXIT_REFUSED = 2
CONFIG = '.chalice/config.json'
# what .chalice/config.json ships with: a stage deployed with it would refuse everyone
PLACEHOLDER_KEYSTONE_URL = 'https://keystone.example.org:5000'
KEYSTONE_TIMEOUT = urllib3.Timeout(connect=5, read=10)


def stack_name(stage):
    return 'glance-v1-%s-resources' % stage


def check_region(session):
    if not session.region_name:
        raise Refused('no AWS region: export AWS_DEFAULT_REGION=us-east-1 (or the region '
                      'to deploy to), or set one with `aws configure set region REGION`')
    return session.region_name


def check_credentials(session):
    """-> the caller's ARN (STS GetCallerIdentity needs no permission)."""
    try:
        return session.client('sts').get_caller_identity()['Arn']
    except NoCredentialsError:
        raise Refused('no AWS credentials: run `aws configure` (or `aws sso login`), or '
                      'export AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY')
    except ClientError as error:
        raise Refused('AWS refused the credentials (%s: %s): renew them (`aws sso login`, '
                      'or new access keys) or choose another AWS_PROFILE'
                      % (error.response['Error']['Code'], error.response['Error']['Message']))
    except BotoCoreError as error:
        raise Refused('cannot reach AWS STS in %s (%s): check AWS_DEFAULT_REGION and the '
                      'network' % (session.region_name, error))


def check_keystone_url(stage, env, http=None):
    """Keystone mode only: a URL that is not the placeholder and answers GET /v3."""
    if env.get('GLANCE_AUTH_MODE') != 'keystone':
        return
    where = '(stages.%s.environment_variables in %s)' % (stage, CONFIG)
    url = env.get('GLANCE_KEYSTONE_URL')
    if not url:
        raise Refused('no GLANCE_KEYSTONE_URL: set it to your Keystone\'s public URL %s'
                      % where)
    if url.rstrip('/') == PLACEHOLDER_KEYSTONE_URL:
        raise Refused('GLANCE_KEYSTONE_URL is the example %s: set it to your Keystone\'s '
                      'public URL %s' % (PLACEHOLDER_KEYSTONE_URL, where))
    http = http or urllib3.PoolManager(timeout=KEYSTONE_TIMEOUT, retries=False)
    try:
        status = http.request('GET', url.rstrip('/') + '/v3',
                              headers={'Accept': 'application/json'}).status
    except urllib3.exceptions.HTTPError as error:
        raise Refused('Keystone does not answer at %s (%s): check GLANCE_KEYSTONE_URL %s '
                      'and that this machine can reach it' % (url, type(error).__name__, where))
    if status >= 500:
        raise Refused('Keystone at %s answers GET /v3 with %d: fix Keystone, or '
                      'GLANCE_KEYSTONE_URL %s' % (url, status, where))


def check_keystone_password(env, ssm):
    """Refuse to deploy a password in the stage's variables, or without its parameter
    (read without decryption: the deployer needs no KMS grant)."""
    name = env.get('GLANCE_KEYSTONE_PASSWORD_PARAMETER')
    if env.get('GLANCE_KEYSTONE_PASSWORD'):
        raise Refused('GLANCE_KEYSTONE_PASSWORD is set in the stage, where every function '
                      'sees it: store it in the SSM SecureString parameter that '
                      'GLANCE_KEYSTONE_PASSWORD_PARAMETER names instead')
    if env.get('GLANCE_AUTH_MODE') != 'keystone':
        return
    if not name:
        raise Refused('set GLANCE_KEYSTONE_PASSWORD_PARAMETER in the stage (%s)' % CONFIG)
    try:
        found = ssm.get_parameter(Name=name)['Parameter']
    except ClientError as error:
        if error.response['Error']['Code'] != 'ParameterNotFound':
            raise Refused('cannot read the SSM parameter %s (%s): the deployer needs '
                          'ssm:GetParameter on it' % (name, error.response['Error']['Code']))
        raise Refused('the Keystone service password is missing: aws ssm put-parameter '
                      '--name %s --type SecureString --value ...' % name) from error
    if found['Type'] != 'SecureString':
        raise Refused('%s is a %s: it must be a SecureString (aws ssm put-parameter --name %s '
                      '--type SecureString --overwrite --value ...)'
                      % (name, found['Type'], name))


def owned_by_stack(cloudformation, stage):
    """Physical ids of the resources the stage's stack holds (none: no stack)."""
    try:
        resources = cloudformation.describe_stack_resources(
            StackName=stack_name(stage))['StackResources']
    except ClientError:
        return set()
    return {r.get('PhysicalResourceId') for r in resources
            if r['ResourceStatus'] != 'DELETE_COMPLETE'}


def check_names(stage, env, session):
    """Tables and bucket are free, or this stage's stack holds them: CloudFormation would
    fail half-way on a name someone else has (or a destroy kept)."""
    owned = owned_by_stack(session.client('cloudformation'), stage)
    dynamodb, s3 = session.client('dynamodb'), session.client('s3')
    for variable in ('GLANCE_IMAGES_TABLE', 'GLANCE_MEMBERS_TABLE'):
        table = env[variable]
        try:
            dynamodb.describe_table(TableName=table)
        except dynamodb.exceptions.ResourceNotFoundException:
            continue
        if table not in owned:
            raise Refused('the table %s exists outside the stack %s (kept by `make destroy`, '
                          'or someone else\'s): delete it, or set another %s for stage %s '
                          'in %s' % (table, stack_name(stage), variable, stage, CONFIG))
    bucket = env['GLANCE_IMAGE_BUCKET']
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        code = error.response['Error']['Code']
        if code in ('404', 'NoSuchBucket'):
            return
        if code in ('403', 'AccessDenied'):
            raise Refused('the bucket name %s is taken (another AWS account has it): set '
                          'another GLANCE_IMAGE_BUCKET for stage %s in %s'
                          % (bucket, stage, CONFIG))
        raise
    if bucket not in owned:
        raise Refused('the bucket %s exists outside the stack %s (kept by `make destroy`, or '
                      'someone else\'s): delete it, or set another GLANCE_IMAGE_BUCKET for '
                      'stage %s in %s' % (bucket, stack_name(stage), stage, CONFIG))


def check_aws(session):
    """Region and credentials: what every command here needs first."""
    check_region(session)
    return check_credentials(session)


def preflight(stage, env, session, http=None):
    """Every check, in order; changes nothing. -> the caller's ARN."""
    caller = check_aws(session)
    check_keystone_url(stage, env, http)
    check_keystone_password(env, session.client('ssm'))
    try:
        check_names(stage, env, session)
    except ClientError as error:
        raise Refused('cannot check the table and bucket names (%s): the deployer needs '
                      'dynamodb:DescribeTable, s3:ListBucket and '
                      'cloudformation:DescribeStackResources' % error.response['Error']['Code'])
    return caller


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


def finish_api(stage):
    """What `chalice deploy` leaves out and `make package` merges in: API Gateway answers
    `Accept: */*` (what v1 clients send) with binary only if */* is a binary media type
    (chalice sets just the app's), and its own 401 and 503 in Glance's format."""
    with open(os.path.join(PROJECT_DIR, '.chalice', 'deployed', '%s.json' % stage)) as f:
        deployed = json.load(f)
    api = next(r for r in deployed['resources'] if r.get('resource_type') == 'rest_api')
    apigateway = boto3.client('apigateway')
    current = apigateway.get_rest_api(restApiId=api['rest_api_id']).get('binaryMediaTypes', [])
    if '*/*' not in current:
        apigateway.update_rest_api(restApiId=api['rest_api_id'], patchOperations=[
            {'op': 'add', 'path': '/binaryMediaTypes/*~1*'}])
    put_responses(apigateway, api['rest_api_id'], stage)
    apigateway.create_deployment(restApiId=api['rest_api_id'], stageName='api')


def reindex_images(env):
    os.environ.update(env)
    sys.path.insert(0, PROJECT_DIR)
    from chalicelib.storage.catalog import ImageCatalog
    print('images rewritten into the indexes: %d' % ImageCatalog().reindex())


def run_preflight(stage, env):
    """The preflight of a command line: a refusal is one line on stderr, exit 2."""
    try:
        caller = preflight(stage, env, boto3.session.Session())
    except Refused as refusal:
        print('make deploy STAGE=%s refused: %s' % (stage, refusal), file=sys.stderr)
        raise SystemExit(EXIT_REFUSED)
    print('preflight of stage %s passed (as %s)' % (stage, caller))


def main(stage, preflight_only=False):
    env = stage_environment(stage)
    parameters = {name: env[variable] for name, variable in PARAMETERS.items()}
    parameters['DeadLetterQueueName'] = dead_letter_queue(stage)
    if os.environ.get('GLANCE_ALARM_TOPIC_ARN'):   # an SNS topic the alarms notify
        parameters['AlarmTopicArn'] = os.environ['GLANCE_ALARM_TOPIC_ARN']
    run_preflight(stage, env)
    if preflight_only:
        return
    stack = stack_name(stage)
    cloudformation = boto3.client('cloudformation')
    deploy_stack(cloudformation, stack, parameters)
    reindex_images(env)
    vendor()   # PynamoDB without botocore, which the Lambda runtime has
    subprocess.run([os.path.join(os.path.dirname(sys.executable), 'chalice'), 'deploy',
                    '--stage', stage], cwd=PROJECT_DIR, check=True)
    finish_api(stage)
    operate(stage, boto3.client('apigateway'), boto3.client('logs'))
    deploy_stack(cloudformation, stack, dict(
        parameters, FinalizerFunctionArn=function_arn(stage, 'upload_finalizer'),
        CopierFunctionArn=function_arn(stage, 'image_copier')))


if __name__ == '__main__':
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ['--preflight-only']):
        raise SystemExit('usage: deploy.py STAGE [--preflight-only]')
    main(sys.argv[1], preflight_only=sys.argv[2:] == ['--preflight-only'])
