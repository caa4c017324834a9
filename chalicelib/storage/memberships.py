"""Image memberships in DynamoDB: the members table (hash image_id, range member) and
its `member-images` index (by member, in the order of the images' creation)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError

from chalicelib.domain.image_meta import created_key, now_string
from chalicelib.domain.ports import ImageRecord, Membership
from chalicelib.storage.dynamo import is_condition_failure, reporting_unavailable
from chalicelib.storage.models import ImageMemberModel, bind_tables

BATCH_GET_MAX = 100   # keys in one BatchGetItem

if TYPE_CHECKING:
    from chalicelib.config import Settings


def _membership(model):
    return {'image_id': model.image_id, 'member_id': model.member,
            'can_share': bool(model.can_share), 'created_at': model.created_at}


@reporting_unavailable
class ImageMemberships:
    """The members table: the domain's MemberStore."""

    def __init__(self, current: Settings | None = None):
        from chalicelib.config import settings
        bind_tables(current or settings())

    def get(self, image_id: str, member: str | None) -> Membership | None:
        if member is None:
            return None
        try:
            return _membership(ImageMemberModel.get(image_id, member, consistent_read=True))
        except DoesNotExist:
            return None

    def of_image(self, image_id: str) -> list[Membership]:
        """An image's memberships in the order they were made."""
        found = [_membership(m) for m in ImageMemberModel.query(image_id, consistent_read=True)]
        return sorted(found, key=lambda m: m['created_at'])

    def of_member(self, member: str, descending: bool = True, after: str | None = None,
                  page_size: int | None = None) -> Iterator[Membership]:
        """A member's memberships in the order of their images' creation; `after` is an
        image `created_key` to continue strictly after."""
        condition = None
        if after is not None:
            condition = (ImageMemberModel.image_created_key < after if descending
                         else ImageMemberModel.image_created_key > after)
        return (_membership(m) for m in ImageMemberModel.member_images.query(
            member, condition, scan_index_forward=not descending, page_size=page_size))

    def among(self, image_ids: Iterable[str], member: str | None) -> set[str]:
        """The ids among `image_ids` that have `member` as a member (BatchGetItem)."""
        keys = [(image_id, member) for image_id in set(image_ids)]
        if member is None or not keys:
            return set()
        found = set()
        for start in range(0, len(keys), BATCH_GET_MAX):
            found |= {m.image_id for m in ImageMemberModel.batch_get(
                keys[start:start + BATCH_GET_MAX])}
        return found

    def put(self, image: ImageRecord, member: str, can_share: bool | None = None) -> bool:
        """Create the membership (-> True), or change `can_share` of an existing one if
        given (-> False)."""
        now = now_string()
        while True:
            try:
                ImageMemberModel(image['id'], member, can_share=bool(can_share),
                                 created_at=now, updated_at=now,
                                 image_created_key=created_key(image)).save(
                    condition=ImageMemberModel.member.does_not_exist())
                return True
            except PutError as error:
                if not is_condition_failure(error):
                    raise
            if can_share is None:
                return False
            try:
                ImageMemberModel(image['id'], member).update(
                    actions=[ImageMemberModel.can_share.set(bool(can_share)),
                             ImageMemberModel.updated_at.set(now)],
                    condition=ImageMemberModel.member.exists())
                return False
            except UpdateError as error:  # removed in between: create it again
                if not is_condition_failure(error):
                    raise

    def delete(self, image_id: str, member: str) -> bool:
        """False when there was no such membership."""
        try:
            ImageMemberModel(image_id, member).delete(
                condition=ImageMemberModel.member.exists())
            return True
        except DeleteError as error:
            if is_condition_failure(error):
                return False
            raise

    def delete_all(self, image_id: str) -> None:
        with ImageMemberModel.batch_write() as batch:
            for membership in ImageMemberModel.query(image_id):
                batch.delete(membership)

