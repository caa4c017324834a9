"""Read a stage's resource names from .chalice/config.json (the one place they live).

    python infra/stage.py dev parameters   -> CloudFormation parameter overrides
    python infra/stage.py dev stack        -> the resources stack's name
"""
import json
import os
import sys

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      '.chalice', 'config.json')
PARAMETERS = {'ImagesTableName': 'GLANCE_IMAGES_TABLE',
              'MembersTableName': 'GLANCE_MEMBERS_TABLE',
              'ImageBucketName': 'GLANCE_IMAGE_BUCKET'}
with open(CONFIG) as _config:
    APP_NAME = json.load(_config)['app_name']


def function_name(stage, function):
    """What `chalice deploy` names a function (the API handler is just <app>-<stage>)."""
    suffix = '' if function == 'api_handler' else '-' + function
    return '%s-%s%s' % (APP_NAME, stage, suffix)


def dead_letter_queue(stage):
    """The SQS queue of the finalizer's and the copier's failed events (the functions'
    policies name it too)."""
    return '%s-%s-dead-events' % (APP_NAME, stage)


def stage_environment(stage):
    with open(CONFIG) as f:
        config = json.load(f)
    if stage not in config['stages']:
        raise SystemExit('unknown stage %r (stages: %s)' % (stage, ', '.join(config['stages'])))
    return dict(config.get('environment_variables', {}),
                **config['stages'][stage].get('environment_variables', {}))


def main(stage, what):
    if what == 'parameters':
        env = stage_environment(stage)
        print(' '.join('%s=%s' % (name, env[variable]) for name, variable in PARAMETERS.items()))
    elif what == 'stack':
        print('%s-%s-resources' % (json.load(open(CONFIG))['app_name'], stage))
    else:
        raise SystemExit('usage: stage.py STAGE parameters|stack')


if __name__ == '__main__':
    main(*sys.argv[1:3])
