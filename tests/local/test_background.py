"""Background work locally: a failed job runs again, as Lambda retries an asynchronous
invocation twice; after that it is logged, and the worker does not die."""
from chalicelib import background
from chalicelib.background import BackgroundRunner, wait_for_background_jobs


def test_a_failed_job_runs_again_twice_at_most(monkeypatch, caplog):
    monkeypatch.setattr(background, 'RETRY_DELAY_SECONDS', 0)
    monkeypatch.delenv('AWS_LAMBDA_FUNCTION_NAME', raising=False)
    runs = []

    def flaky(event):
        runs.append(event['offset'])
        if len(runs) < 2:
            raise RuntimeError('S3 unavailable')
    BackgroundRunner(flaky).start('finalize', 'image-1', None, 7)
    wait_for_background_jobs()
    assert runs == [7, 7]

    always = []

    def broken(event):
        always.append(event['image_id'])
        raise RuntimeError('S3 unavailable')
    BackgroundRunner(broken).start('finalize', 'image-2')
    wait_for_background_jobs()
    assert always == ['image-2'] * 3
    assert 'finalize of image image-2 failed (attempt 3 of 3)' in caplog.text
