"""The image bucket refuses every request not made over TLS. moto's CloudFormation
does not apply AWS::S3::BucketPolicy, so the template itself is read here."""
import os

from cfnlint.decode.cfn_yaml import load

from tests.helpers import PROJECT_DIR


def _resources():
    return load(os.path.join(PROJECT_DIR, 'infra', 'resources.yaml'))['Resources']


def test_the_bucket_policy_denies_everything_without_tls_on_the_bucket_and_its_objects():
    resources = _resources()
    [policy] = [r for r in resources.values() if r['Type'] == 'AWS::S3::BucketPolicy']
    properties = policy['Properties']
    assert properties['Bucket'] == {'Ref': 'ImageBucket'}
    assert resources['ImageBucket']['Type'] == 'AWS::S3::Bucket'
    statements = properties['PolicyDocument']['Statement']
    [deny] = [s for s in statements if s['Effect'] == 'Deny']
    assert deny['Principal'] == '*'
    assert deny['Action'] in ('s3:*', ['s3:*'])
    assert deny['Condition'] == {'Bool': {'aws:SecureTransport': 'false'}}
    assert deny['Resource'] == [{'Fn::GetAtt': ['ImageBucket', 'Arn']},
                                {'Fn::Sub': '${ImageBucket.Arn}/*'}]
    # nothing in the policy opens the bucket up again
    assert all(s['Effect'] == 'Deny' for s in statements)
