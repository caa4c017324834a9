"""The Glance v1 Images API on Chalice. This module only wires things together."""
from chalice import Chalice

from chalicelib.api.images import images_blueprint
from chalicelib.api.keystone import TOKEN_HEADER, keystone_authorizer
from chalicelib.api.members import members_blueprint
from chalicelib.api.versions import V1_PREFIXES, versions_blueprint
from chalicelib.config import settings


def create_app():
    app = Chalice(app_name='glance-v1')
    app.api.binary_types = ['application/octet-stream']
    # Deployed stages verify identity with Keystone; version discovery stays open.
    authorizer = None
    if settings().auth_mode == 'keystone':
        authorizer = app.authorizer(name='keystone', header=TOKEN_HEADER,
                                    ttl_seconds=0)(keystone_authorizer)
    for prefix in V1_PREFIXES:
        app.register_blueprint(images_blueprint(authorizer), url_prefix='/' + prefix)
        app.register_blueprint(members_blueprint(authorizer), url_prefix='/' + prefix)
    app.register_blueprint(versions_blueprint())
    return app


app = create_app()
