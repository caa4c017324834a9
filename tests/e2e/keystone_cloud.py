"""A real Keystone (tools/keystone_local.py) and local runtimes in keystone mode."""
import contextlib
import os

from tests.e2e.support import LocalRuntime
from tools.keystone_local import LocalKeystone


@contextlib.contextmanager
def keystone_cloud(expiration=3600, cache_times=(None,)):
    """(keystone, admin, [a started LocalRuntime per token cache time]); the first runtime
    is the `image` endpoint of Keystone's catalog. Everything is stopped by PID at exit."""
    keystone = LocalKeystone(expiration)
    runtimes = []
    try:
        for cache_seconds in cache_times:
            runtime = LocalRuntime('keystone', extra_env=keystone.service_env(cache_seconds))
            runtime.extra_env['GLANCE_PUBLIC_ENDPOINT'] = runtime.base_url
            runtimes.append(runtime)
        keystone.start()
        admin = keystone.populate(runtimes[0].base_url)
        for runtime in runtimes:
            runtime.start()
        yield keystone, admin, runtimes
    finally:
        for runtime in runtimes:
            runtime.stop()
            os.unlink(runtime.log.name)
        keystone.destroy()
