"""Racing member adds never take an image past its member quota."""
import threading

from chalicelib.api.common import member_service
from chalicelib.domain.context import from_identity
from chalicelib.domain.errors import TooLarge
from chalicelib.storage.models import ImageMemberModel
from tests.helpers import create_image, tenant

A = tenant('tenant-a')


def test_concurrent_member_adds_stop_at_the_quota(client, settings_override,
                                                 atomic_aws):
    settings_override(image_member_quota=5)
    _, image = create_image(client, A)
    owner = from_identity('tenant-a', 'user-a', ['member'])
    barrier, outcomes, lock = threading.Barrier(20), [], threading.Lock()

    def add(n):
        barrier.wait()
        try:
            member_service().add_member(owner, image['id'], 'tenant-%02d' % n)
            outcome = 'added'
        except TooLarge:
            outcome = 'over quota'
        with lock:
            outcomes.append(outcome)
    threads = [threading.Thread(target=add, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stored = list(ImageMemberModel.query(image['id']))
    assert sorted(outcomes) == ['added'] * 5 + ['over quota'] * 15
    assert len(stored) == 5
