"""The answers API Gateway gives itself, in the reference's error format.

API Gateway answers some requests without calling the app: no X-Auth-Token
(UNAUTHORIZED), an authorizer's Deny (ACCESS_DENIED), an authorizer that fails or
cannot be called (AUTHORIZER_FAILURE, AUTHORIZER_CONFIGURATION_ERROR). By default
those are `{"message":"Unauthorized"}` and the like. Here they are rendered by the
app's own code (wire.error_response) for the stage's settings, so that they are the
401 keystonemiddleware gives (with `WWW-Authenticate: Keystone uri="..."`) and the
503 the views give when Keystone cannot answer.

    python infra/gateway_responses.py STAGE OUT.json   -> the merge template of
        `chalice package` (infra/api-binary-media-types.json plus these responses)

`make deploy` puts the same responses on the deployed API (put_responses).
"""
import dataclasses
import json
import os
import sys

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY_MEDIA_TYPES = os.path.join(PROJECT_DIR, 'infra', 'api-binary-media-types.json')
# One template per format the views answer in; API Gateway picks by Accept, else JSON.
MEDIA_TYPES = ('application/json', 'text/html', 'text/plain')

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PROJECT_DIR)
from stage import stage_environment  # noqa: E402


def _errors():
    """{response type: the error the app would answer}, for the current settings."""
    from chalicelib.api import common
    unauthorized, unavailable = common.not_authenticated(), common.identity_unavailable()
    # a Deny means the token was refused: keystonemiddleware's 401, not a 403
    return {'UNAUTHORIZED': unauthorized, 'ACCESS_DENIED': unauthorized,
            'AUTHORIZER_FAILURE': unavailable, 'AUTHORIZER_CONFIGURATION_ERROR': unavailable}


def gateway_responses(stage):
    """x-amazon-apigateway-gateway-responses of the stage (its Keystone URL included)."""
    from chalicelib import config
    from chalicelib.api import wire
    previous = config.override(keystone_url=stage_environment(stage).get('GLANCE_KEYSTONE_URL'))
    try:
        errors = _errors()
    finally:
        config.override(**dataclasses.asdict(previous))
    responses = {}
    for kind, error in errors.items():
        rendered = {media_type: wire.error_response(error, media_type, 'GET')
                    for media_type in MEDIA_TYPES}
        headers = rendered['application/json'].headers
        responses[kind] = {
            'statusCode': str(error.code),
            # static values are quoted, as API Gateway wants them
            'responseParameters': {'gatewayresponse.header.%s' % name: "'%s'" % value
                                   for name, value in headers.items()
                                   if name != 'Content-Type'},
            'responseTemplates': {media_type: response.body
                                  for media_type, response in rendered.items()},
        }
    return responses


def merge_template(stage):
    with open(BINARY_MEDIA_TYPES) as f:
        template = json.load(f)
    template['Resources']['RestAPI']['Properties']['DefinitionBody'][
        'x-amazon-apigateway-gateway-responses'] = gateway_responses(stage)
    return template


def put_responses(apigateway, rest_api_id, stage):
    """The same responses on an API `chalice deploy` made (it knows no gateway responses)."""
    for kind, response in gateway_responses(stage).items():
        apigateway.put_gateway_response(restApiId=rest_api_id, responseType=kind,
                                        **response)


def main(stage, out):
    with open(out, 'w') as f:
        json.dump(merge_template(stage), f, indent=2)


if __name__ == '__main__':
    if len(sys.argv) != 3:
        raise SystemExit('usage: gateway_responses.py STAGE OUT.json')
    main(*sys.argv[1:])
