"""The Glance v1 Images API on Chalice. This module only wires things together."""
from chalice import Rate

from chalicelib.api.gateway import GlanceApp, glance_errors
from chalicelib.api.images import images_blueprint
from chalicelib.api.keystone import TOKEN_HEADER, keystone_authorizer
from chalicelib.api.members import members_blueprint
from chalicelib.api.uploads import uploads_blueprint
from chalicelib.api.versions import V1_PREFIXES, versions_blueprint
from chalicelib import logs
from chalicelib.config import settings
from chalicelib.events import copy_image, finalize_bucket_event, reap_abandoned_uploads


def create_app():
    app = GlanceApp(app_name='glance-v1')
    app.api.binary_types = ['application/octet-stream']  # API Gateway adds */* (infra/)
    if logs.configure(settings().log_level):   # in Lambda: JSON lines, one per request
        app.register_middleware(logs.log_requests, 'http')   # outermost: sees every answer
    app.register_middleware(glance_errors, 'http')
    # Deployed stages verify identity with Keystone; version discovery stays open.
    authorizer = None
    if settings().auth_mode == 'keystone':
        authorizer = app.authorizer(name='keystone', header=TOKEN_HEADER,
                                    ttl_seconds=0)(keystone_authorizer)
    for prefix in V1_PREFIXES:
        app.register_blueprint(images_blueprint(authorizer), url_prefix='/' + prefix)
        app.register_blueprint(members_blueprint(authorizer), url_prefix='/' + prefix)
        app.register_blueprint(uploads_blueprint(authorizer), url_prefix='/' + prefix)
    # Unversioned paths: v1 for an Accept of application/vnd.openstack.images-v1, else 300.
    app.register_blueprint(images_blueprint(authorizer, with_root=False))
    app.register_blueprint(members_blueprint(authorizer))
    app.register_blueprint(uploads_blueprint(authorizer))
    app.register_blueprint(versions_blueprint())
    # Presigned uploads: the bucket's ObjectCreated events, and the reaper.
    app.lambda_function(name='upload_finalizer')(finalize_bucket_event)
    app.schedule(Rate(15, unit=Rate.MINUTES), name='upload_reaper')(reap_abandoned_uploads)
    # copy-from and external locations are copied into the bucket in the background.
    app.lambda_function(name='image_copier')(copy_image)
    return app


app = create_app()
