"""`make deploy` checks before it changes anything, and `make destroy` removes a stage,
against moto: each refusal is one line naming the fix and leaves nothing behind; a
deploy/destroy round trip as far as moto's CloudFormation goes (`chalice deploy` and
`chalice delete` themselves are not run: moto cannot run them)."""
import os
import subprocess
import sys
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from infra import deploy, destroy
from infra.stage import PARAMETERS
from tests.helpers import PROJECT_DIR
from tests.keystone_standin import KeystoneStandIn

pytestmark = pytest.mark.slow   # moto servers and make subprocesses

STAGE = 'dev'


def _stage_env(**changes):
    return dict(deploy.stage_environment(STAGE), **changes)


@pytest.fixture
def keystone():
    with KeystoneStandIn() as standin:
        yield standin


@pytest.fixture
def session():
    with mock_aws():
        yield boto3.session.Session(region_name='us-east-1')


@pytest.fixture
def ready(session, keystone):
    """A stage whose preflight passes: a Keystone that answers, the password parameter."""
    env = _stage_env(GLANCE_KEYSTONE_URL=keystone.url)
    session.client('ssm').put_parameter(Name=env['GLANCE_KEYSTONE_PASSWORD_PARAMETER'],
                                        Value='secret', Type='SecureString')
    return env


def _nothing_created(session):
    assert session.client('cloudformation').list_stacks()['StackSummaries'] == []
    assert session.client('dynamodb').list_tables()['TableNames'] == []
    assert session.client('s3').list_buckets()['Buckets'] == []


def _refusal(stage_env, session, match):
    with pytest.raises(deploy.Refused, match=match) as refused:
        deploy.preflight(STAGE, stage_env, session)
    assert '\n' not in str(refused.value)
    return str(refused.value)


def _command(script, *args, **env):
    """The script as `make` runs it, in a clean environment (no AWS settings)."""
    clean = {'PATH': os.environ['PATH'], 'HOME': '/nonexistent',
             'AWS_CONFIG_FILE': '/nonexistent', 'AWS_SHARED_CREDENTIALS_FILE': '/nonexistent',
             'AWS_EC2_METADATA_DISABLED': 'true'}
    return subprocess.run([sys.executable, 'infra/%s' % script] + list(args), cwd=PROJECT_DIR,
                          env=dict(clean, **env), capture_output=True, text=True, timeout=120)


def test_without_a_region_make_deploy_says_one_line_and_exits_2():
    result = _command('deploy.py', STAGE)
    assert result.returncode == deploy.EXIT_REFUSED
    assert result.stdout == ''
    assert result.stderr.splitlines() == [
        'make deploy STAGE=dev refused: no AWS region: export AWS_DEFAULT_REGION=us-east-1 '
        '(or the region to deploy to), or set one with `aws configure set region REGION`']


def test_without_credentials_make_deploy_says_one_line_and_exits_2():
    result = _command('deploy.py', STAGE, AWS_DEFAULT_REGION='us-east-1')
    assert result.returncode == deploy.EXIT_REFUSED
    [line] = result.stderr.splitlines()
    assert line.startswith('make deploy STAGE=dev refused: no AWS credentials: run '
                           '`aws configure`')


def test_the_example_keystone_url_is_refused(session):
    assert deploy.stage_environment(STAGE)['GLANCE_KEYSTONE_URL'] == \
        deploy.PLACEHOLDER_KEYSTONE_URL   # what the repository ships with
    line = _refusal(_stage_env(), session, 'GLANCE_KEYSTONE_URL is the example')
    assert 'stages.dev.environment_variables in .chalice/config.json' in line
    _nothing_created(session)


def test_a_keystone_that_does_not_answer_is_refused(session):
    _refusal(_stage_env(GLANCE_KEYSTONE_URL='http://127.0.0.1:9'), session,
             r'Keystone does not answer at http://127.0.0.1:9 \(')
    _nothing_created(session)


def test_a_missing_password_parameter_is_refused(session, keystone):
    line = _refusal(_stage_env(GLANCE_KEYSTONE_URL=keystone.url), session,
                    'the Keystone service password is missing')
    assert 'aws ssm put-parameter --name /glance-v1/dev/keystone-password --type ' \
        'SecureString' in line
    _nothing_created(session)


def test_rejected_credentials_are_refused(ready, session):
    sts = session.client('sts')
    error = sts.exceptions.ClientError(
        {'Error': {'Code': 'ExpiredToken', 'Message': 'The security token has expired'}},
        'GetCallerIdentity')
    with mock.patch.object(boto3.session.Session, 'client') as client:
        client.return_value.get_caller_identity.side_effect = error
        _refusal(ready, session, r'AWS refused the credentials \(ExpiredToken')


@pytest.mark.parametrize('taken', ['GLANCE_IMAGES_TABLE', 'GLANCE_MEMBERS_TABLE',
                                   'GLANCE_IMAGE_BUCKET'])
def test_a_name_someone_else_has_is_refused(ready, session, taken):
    if taken == 'GLANCE_IMAGE_BUCKET':
        session.client('s3').create_bucket(Bucket=ready[taken])
    else:
        session.client('dynamodb').create_table(
            TableName=ready[taken], BillingMode='PAY_PER_REQUEST',
            AttributeDefinitions=[{'AttributeName': 'id', 'AttributeType': 'S'}],
            KeySchema=[{'AttributeName': 'id', 'KeyType': 'HASH'}])
    line = _refusal(ready, session, '%s exists outside the stack glance-v1-dev-resources'
                    % ready[taken])
    assert 'set another %s for stage dev' % taken in line
    assert session.client('cloudformation').list_stacks()['StackSummaries'] == []


@pytest.mark.slow
def test_deploy_and_destroy_round_trip(ready, session, monkeypatch):
    deleted_functions = []
    monkeypatch.setattr(destroy, 'delete_functions', deleted_functions.append)
    cloudformation = session.client('cloudformation')
    stack = deploy.stack_name(STAGE)
    assert deploy.preflight(STAGE, ready, session).startswith('arn:aws:sts::')
    parameters = {name: ready[variable] for name, variable in PARAMETERS.items()}
    deploy.deploy_stack(cloudformation, stack, parameters)
    # the stage's own tables and bucket do not stop a second deploy
    deploy.preflight(STAGE, ready, session)

    # a refused confirmation deletes nothing
    with pytest.raises(destroy.Refused, match='not confirmed: nothing deleted'):
        destroy.destroy(STAGE, session, answer=lambda prompt: 'prod')
    assert cloudformation.describe_stacks(StackName=stack)['Stacks']
    assert deleted_functions == []

    prompts = []
    destroy.destroy(STAGE, session, answer=lambda prompt: prompts.append(prompt) or STAGE)
    assert 'the tables and the bucket are kept' in prompts[0]
    assert deleted_functions == [STAGE]
    assert [s['StackStatus'] for s in cloudformation.list_stacks()['StackSummaries']
            if s['StackName'] == stack] == ['DELETE_COMPLETE']
    tables = session.client('dynamodb').list_tables()['TableNames']
    assert sorted(tables) == sorted([ready['GLANCE_IMAGES_TABLE'],
                                     ready['GLANCE_MEMBERS_TABLE']])
    s3 = session.client('s3')
    s3.put_object(Bucket=ready['GLANCE_IMAGE_BUCKET'], Key='images/kept', Body=b'x')
    # kept data outside any stack: a new deploy would fail half-way, the preflight says so
    _refusal(ready, session, 'exists outside the stack')

    destroy.destroy(STAGE, session, yes=True, with_data=True)
    assert session.client('dynamodb').list_tables()['TableNames'] == []
    assert s3.list_buckets()['Buckets'] == []
    deploy.preflight(STAGE, ready, session)   # free again


def test_destroy_without_a_terminal_needs_yes(session, monkeypatch):
    monkeypatch.setattr(sys.stdin, 'isatty', lambda: False, raising=False)
    with pytest.raises(destroy.Refused, match='make destroy STAGE=dev YES=yes'):
        destroy.destroy(STAGE, session)


def test_destroy_without_a_region_says_one_line():
    result = _command('destroy.py', STAGE, '--yes')
    assert result.returncode == deploy.EXIT_REFUSED
    assert result.stderr.splitlines() == [
        'make destroy STAGE=dev refused: no AWS region: export AWS_DEFAULT_REGION=us-east-1 '
        '(or the region to deploy to), or set one with `aws configure set region REGION`']


def test_make_deploy_puts_the_packaged_gateway_responses_on_the_api(session):
    """`chalice deploy` knows no gateway responses: deploy.finish_api puts the ones
    `make package` merges in (infra/gateway_responses.py) on the deployed API."""
    from infra import gateway_responses
    apigateway = session.client('apigateway')
    api = apigateway.create_rest_api(name='glance-v1-dev')['id']
    expected = gateway_responses.gateway_responses(STAGE)
    gateway_responses.put_responses(apigateway, api, STAGE)
    for kind, response in expected.items():
        put = apigateway.get_gateway_response(restApiId=api, responseType=kind)
        assert (put['statusCode'], put['responseParameters'], put['responseTemplates']) == (
            response['statusCode'], response['responseParameters'],
            response['responseTemplates'])
