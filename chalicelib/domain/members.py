"""Image memberships (v1 §14): who may share, member lists, shared images."""
from __future__ import annotations

import contextlib
from typing import Iterator

from chalicelib.domain import image_meta as im
from chalicelib.domain.context import RequestContext
from chalicelib.domain.errors import Conflict, Invalid, NotAuthenticated, NotFound
from chalicelib.domain.policy import Policy
from chalicelib.domain.ports import CatalogUnavailable, DomainSettings, ImageRecord, Membership
from chalicelib.domain.records import ImageRecords, check_count_quota, replaced
from chalicelib.domain.visibility import can_modify

# The reference's `member` column holds 255 characters; a DynamoDB key can be neither
# empty nor longer than 1024 bytes, so such a member id could not be stored at all.
MEMBER_ID_MAX = 255


def is_member_id(member: object) -> bool:
    return isinstance(member, str) and 0 < len(member) <= MEMBER_ID_MAX


def _check_member_id(member: object) -> None:
    if not is_member_id(member):
        raise Invalid('Invalid member id: it must be 1 to %d characters long.'
                         % MEMBER_ID_MAX)


class MemberService:
    def __init__(self, records: ImageRecords, policy: Policy, settings: DomainSettings):
        self.records, self.policy, self.settings = records, policy, settings
        self.memberships = records.memberships

    def list_members(self, context: RequestContext, image_id: str) -> list[Membership]:
        """[{member_id, can_share}] as the caller may see them (v1 §14.1)."""
        self.policy.enforce(context, 'get_members')
        image = self._live_visible_image(context, image_id)
        members = self.memberships.of_image(image_id)
        if not can_modify(context, image):
            members = [m for m in members if m['member_id'] == context.tenant]
        return members

    def add_member(self, context: RequestContext, image_id: str, member: str,
                   can_share: bool | None = None) -> None:
        image = self._image_to_share(context, image_id, 'modify_member')
        _check_member_id(member)
        # The quota is held by a counter on the image, checked and raised in one
        # conditional write, so racing adds never pass it (checked before the
        # existing-member lookup, as the reference does).
        with self._recounted_on_failure(image_id):
            self._count_members(image_id, +1, check=True)
            if not self.memberships.put(image, member, can_share):
                self._count_members(image_id, -1)  # an update of an existing member

    def replace_members(self, context: RequestContext, image_id: str,
                        memberships: list[tuple[str, bool | None]]) -> None:
        """`memberships`: [(member_id, can_share or None)]; the list becomes exactly this."""
        image = self._image_to_share(context, image_id, 'modify_member')
        self._check_quota(len(memberships))
        for member, _ in memberships:
            _check_member_id(member)
        wanted = dict(memberships)
        with self._recounted_on_failure(image_id):  # not atomic; a retry completes it
            self._count_members(image_id, len(wanted), absolute=True)
            for existing in self.memberships.of_image(image_id):
                if existing['member_id'] not in wanted:
                    self.memberships.delete(image_id, existing['member_id'])
            for member, can_share in wanted.items():
                self.memberships.put(image, member, can_share)

    def remove_member(self, context: RequestContext, image_id: str, member: str) -> None:
        self._image_to_share(context, image_id, 'delete_member')
        if not is_member_id(member):  # could never have been added
            raise NotFound('Membership could not be found.')
        with self._recounted_on_failure(image_id):
            found = self.memberships.delete(image_id, member)
        if not found:
            raise NotFound('Membership could not be found.')
        try:
            self._count_members(image_id, -1)
        except CatalogUnavailable:  # the membership is gone all the same
            self._forget_count(image_id)

    def shared_images(self, context: RequestContext, member: str) -> list[Membership]:
        """[{image_id, can_share}] of `member`'s memberships the caller may see (§14.5)."""
        if not (context.is_admin or context.tenant is not None):
            return []
        if not is_member_id(member):  # no such membership can exist
            return []
        memberships = list(self.memberships.of_member(member))
        if not memberships:
            return []
        images = self.records.catalog.get_many(m['image_id'] for m in memberships)
        # Memberships of deleted images are gone (§14.5), even rows a delete failed
        # to remove.
        memberships = [m for m in memberships if m['image_id'] in images
                       and not images[m['image_id']]['deleted']]
        if context.is_admin or context.tenant == member:
            return memberships
        return [m for m in memberships if images[m['image_id']]['owner'] == context.tenant]

    # -- shared checks --------------------------------------------------------------
    def _live_visible_image(self, context: RequestContext, image_id: str) -> ImageRecord:
        image = self.records.get_visible(context, image_id)
        if image['deleted'] or image['status'] in (im.DELETED, im.PENDING_DELETE):
            raise NotFound('Image with identifier %s has been deleted.' % image_id)
        return image

    def _image_to_share(self, context: RequestContext, image_id: str,
                        rule: str) -> ImageRecord:
        """Preconditions of every membership change, in the reference's order."""
        if context.tenant is None and not context.is_admin:
            raise NotAuthenticated('No authenticated user')
        self.policy.enforce(context, rule)
        image = self._live_visible_image(context, image_id)
        if not (can_modify(context, image) or self._member_can_share(context, image_id)):
            raise NotFound('No permission to share that image')
        return image

    def _member_can_share(self, context: RequestContext, image_id: str) -> bool:
        membership = self.memberships.get(image_id, context.tenant)
        return membership is not None and membership['can_share']

    def _count_members(self, image_id: str, change: int, check: bool = False,
                       absolute: bool = False) -> None:
        def count(current_image: ImageRecord) -> ImageRecord:
            known = current_image.get('member_count')
            if known is None:   # images from before the counter: count the rows once
                known = len(self.memberships.of_image(image_id))
            wanted = change if absolute else max(known + change, 0)
            if check:
                self._check_quota(wanted)
            return replaced(current_image, member_count=wanted)
        self.records.change(image_id, count)

    @contextlib.contextmanager
    def _recounted_on_failure(self, image_id: str) -> Iterator[None]:
        """Rows and their count are separate writes: when one fails half-way, forget
        the count, and the next change counts the rows."""
        try:
            yield
        except CatalogUnavailable:
            self._forget_count(image_id)
            raise

    def _forget_count(self, image_id: str) -> None:
        try:
            self.records.change(image_id, lambda current_image: replaced(
                current_image, member_count=None))
        except (CatalogUnavailable, Conflict, NotFound):
            pass  # the count stays off until a PUT of the whole list sets it again

    def _check_quota(self, count: int) -> None:
        check_count_quota(count, self.settings.image_member_quota,
                          'image members for this image')
