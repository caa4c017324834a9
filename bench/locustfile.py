"""One request, over and over, by every simulated client (bench/load.py runs this
with locust --headless). BENCH_METHOD, BENCH_PATH and BENCH_NAME say which; each
client sends its next request as soon as the previous answer arrived."""
import os

from locust import FastHttpUser, constant, task

METHOD = os.environ.get('BENCH_METHOD', 'GET')
PATH = os.environ.get('BENCH_PATH', '/versions')
NAME = os.environ.get('BENCH_NAME', METHOD + ' ' + PATH)
EXPECTED = tuple(int(code) for code in os.environ.get('BENCH_EXPECT', '200').split(','))


class Client(FastHttpUser):
    wait_time = constant(0)

    @task
    def request(self):
        with self.client.request(METHOD, PATH, name=NAME, catch_response=True) as response:
            if response.status_code in EXPECTED:
                response.success()
            else:
                response.failure('HTTP %s' % response.status_code)
