"""The v1 policy rules of Glance's stock etc/policy.json.

A rule is "" (anyone) or "role:<name>" (a caller holding that role). A deployer
may override rules with a JSON file (GLANCE_POLICY_FILE) mapping rule -> rule.
"""
from __future__ import annotations

import json

from chalicelib.domain.context import RequestContext
from chalicelib.domain.errors import Forbidden

DEFAULT_RULES = {
    'add_image': '', 'delete_image': '', 'get_image': '', 'get_images': '',
    'modify_image': '', 'publicize_image': 'role:admin', 'copy_from': '',
    'download_image': '', 'upload_image': '', 'set_image_location': '',
    'get_members': '', 'modify_member': '', 'delete_member': '',
    # v2's image actions, offered under v1; the stock rules are open, ours admin-only
    'deactivate': 'role:admin', 'reactivate': 'role:admin',
}


class Policy:
    def __init__(self, rules: dict[str, str] | None = None):
        self.rules = dict(DEFAULT_RULES, **(rules or {}))

    @classmethod
    def from_file(cls, path: str | None) -> Policy:
        if not path:
            return cls()
        with open(path) as f:
            return cls(json.load(f))

    def allows(self, context: RequestContext, rule: str) -> bool:
        expression = self.rules.get(rule, 'role:admin')
        if expression in ('', '@'):
            return True
        if expression.startswith('role:'):
            return expression[len('role:'):].lower() in context.roles
        return False

    def enforce(self, context: RequestContext, rule: str) -> None:
        if not self.allows(context, rule):
            raise Forbidden('Access was denied to this resource.')
