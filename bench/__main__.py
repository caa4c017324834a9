"""`python -m bench [group ...]`: every group, or the ones named.

Groups: costs (DynamoDB requests per operation), cold (cold start, package size),
datapath (MB/s of inline, presigned and raw S3 transfers), load (requests/s under
locust), sizing (MB/s hashed and copied on one core, per Lambda memory size).
Each prints its table and updates bench/results/bench.json.
"""
import contextlib
import importlib
import sys
import time

GROUPS = {
    'costs': 'bench.operation_costs',
    'cold': 'bench.cold_start',
    'datapath': 'bench.datapath',
    'load': 'bench.load',
    'replicate': 'bench.replicate',
    'sizing': 'bench.sizing',
}
USE_REFERENCE = ('datapath', 'load')


def main(argv):
    names = argv or list(GROUPS)
    unknown = [name for name in names if name not in GROUPS]
    if unknown:
        sys.exit('unknown group(s) %s; choose from: %s' % (', '.join(unknown), ', '.join(GROUPS)))
    from bench.servers import reference_glance
    started = time.monotonic()
    holding_reference = False
    with contextlib.ExitStack() as stack:
        for name in names:
            if name in USE_REFERENCE and not holding_reference:
                # the reference (if set up) is started once for the groups that compare
                # with it, and stopped after the last of them (if we started it)
                stack.enter_context(reference_glance())
                holding_reference = True
            group_started = time.monotonic()
            importlib.import_module(GROUPS[name]).main()
            print('[%s: %.0f s]' % (name, time.monotonic() - group_started))
            print(flush=True)
    seconds = time.monotonic() - started
    if not argv:
        from bench.report import save_run
        save_run(seconds, names)
    print('bench: %s in %.0f s; results in bench/results/bench.json' % (', '.join(names), seconds))


main(sys.argv[1:])
