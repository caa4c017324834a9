"""The Glance v1 Images API on Chalice. This module only wires things together."""
from chalice import Chalice

from chalicelib.api.images import images_blueprint
from chalicelib.api.members import members_blueprint
from chalicelib.api.versions import V1_PREFIXES, versions_api

app = Chalice(app_name='glance-v1')
app.api.binary_types = ['application/octet-stream']

for prefix in V1_PREFIXES:
    app.register_blueprint(images_blueprint(), url_prefix='/' + prefix)
    app.register_blueprint(members_blueprint(), url_prefix='/' + prefix)
app.register_blueprint(versions_api)
