"""`make redrive STAGE=dev`: deliver the dead-lettered events of a stage again.

The finalizer's and the copier's asynchronous invocations that still fail after their
retries are sent by Lambda to the stage's dead-letter queue (infra/resources.yaml) as
on-failure records: {"requestContext": {"functionArn", "condition", ...},
"requestPayload": <the event>, ...}. Each event is invoked again, synchronously, on
the function that failed it, and its message deleted only once that invocation
succeeded; a failed one stays in the queue (visible again after the queue's
visibility timeout) for the next redrive. Delivering an event twice is harmless: the
finalizer and the copier ignore an event for an image already done.

Runs with the operator's credentials (sqs:ReceiveMessage, sqs:DeleteMessage,
sqs:GetQueueUrl on the queue; lambda:InvokeFunction on the two functions), outside
Lambda: no function's role grants it.

    python infra/redrive.py STAGE
"""
import json
import os
import sys

import boto3
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stage import dead_letter_queue, function_name  # noqa: E402

# the functions invoked asynchronously, whose failures are dead-lettered
REDRIVEN = ('upload_finalizer', 'image_copier')
INVOKE_TIMEOUT = 960   # seconds: the functions may run 900


class InvocationFailed(Exception):
    pass


def lambda_invoker(client):
    """invoke(function, event): synchronous, raising InvocationFailed on a function error."""
    def invoke(function, event):
        answer = client.invoke(FunctionName=function, InvocationType='RequestResponse',
                               Payload=json.dumps(event).encode())
        if answer.get('FunctionError'):
            raise InvocationFailed('%s: %s' % (answer['FunctionError'],
                                               answer['Payload'].read()[:500].decode()))
    return invoke


def _target(body, functions):
    """(function name, event) of an on-failure record, or raise ValueError."""
    record = json.loads(body)
    arn = record['requestContext']['functionArn']
    name = arn.split(':')[6]   # arn:aws:lambda:region:account:function:NAME[:qualifier]
    if name not in functions:
        raise ValueError('for %s, not a function this stage redrives' % name)
    return name, record['requestPayload']


def describe(event):
    """The image an event is about, for the operator's log."""
    if 'image_id' in event:
        return 'image %s (%s)' % (event['image_id'], event.get('job'))
    keys = [r.get('s3', {}).get('object', {}).get('key') for r in event.get('Records', [])]
    return 'object %s' % ', '.join(str(key) for key in keys)


def redrive(sqs, queue_url, invoke, functions, out=print):
    """Every message visible now: re-deliver, delete after success. -> counts."""
    counts = {'redriven': 0, 'failed': 0, 'kept': 0}
    seen = set()   # a message failed or kept in this run may come back: once is enough
    while True:
        messages = [m for m in sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get('Messages', [])
            if m['MessageId'] not in seen]
        if not messages:
            return counts
        for message in messages:
            seen.add(message['MessageId'])
            try:
                function, event = _target(message['Body'], functions)
            except (ValueError, KeyError, IndexError, TypeError) as error:
                # not ours to judge: left for the operator (and still alarmed)
                out('kept %s: not an on-failure record of %s (%s)'
                    % (message['MessageId'], ', '.join(sorted(functions)), error))
                counts['kept'] += 1
                continue
            try:
                invoke(function, event)
            except Exception as error:  # noqa: BLE001 - the message stays for the next run
                out('failed %s: %s %s: %s' % (message['MessageId'], function,
                                              describe(event), error))
                counts['failed'] += 1
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message['ReceiptHandle'])
            out('redriven %s: %s %s' % (message['MessageId'], function, describe(event)))
            counts['redriven'] += 1


def main(stage):
    sqs = boto3.client('sqs')
    queue_url = sqs.get_queue_url(QueueName=dead_letter_queue(stage))['QueueUrl']
    client = boto3.client('lambda', config=Config(read_timeout=INVOKE_TIMEOUT,
                                                  retries={'max_attempts': 1}))
    counts = redrive(sqs, queue_url, lambda_invoker(client),
                     {function_name(stage, name) for name in REDRIVEN})
    print('redrive of %s: %d redriven, %d failed, %d kept'
          % (stage, counts['redriven'], counts['failed'], counts['kept']))
    if counts['failed'] or counts['kept']:
        raise SystemExit(1)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        raise SystemExit('usage: redrive.py STAGE')
    main(sys.argv[1])
