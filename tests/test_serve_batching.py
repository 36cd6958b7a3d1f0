"""Dynamic batching in `slotfill serve`: concurrent requests share forward passes, and each
gets exactly what tagging it alone gives."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from slotfill.serving.batcher import Batcher

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")


class Recorder:
    """A `run` that records its calls, doubles its items and takes `seconds`."""

    def __init__(self, seconds: float = 0.0, fail_on=None) -> None:
        self.calls: list[list] = []
        self.seconds, self.fail_on = seconds, fail_on
        self.threads: set[str] = set()

    def __call__(self, items: list) -> list:
        self.calls.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError("broken item")
        return [2 * item for item in items]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_passes_and_get_their_own_results():
    recorder = Recorder(seconds=0.02)
    batcher = Batcher(recorder, max_batch=64, max_wait=0.0)

    async def main():
        return await asyncio.gather(*(batcher.submit([i, 100 + i]) for i in range(10)))

    results = run(main())
    assert results == [[2 * i, 200 + 2 * i] for i in range(10)]
    assert len(recorder.calls) < 10  # while the first pass ran, the others queued
    assert sorted(x for call in recorder.calls for x in call) == \
        sorted([i for i in range(10)] + [100 + i for i in range(10)])
    assert batcher.passes == len(recorder.calls)
    assert threading.main_thread().name not in recorder.threads  # off the event loop


def test_a_lone_request_does_not_wait():
    batcher = Batcher(Recorder(), max_batch=64, max_wait=5.0)  # nobody is arriving

    async def main():
        started = time.perf_counter()
        result = await batcher.submit([1])
        return result, time.perf_counter() - started

    result, seconds = run(main())
    assert result == [2] and seconds < 2.5


def test_passes_never_exceed_max_batch_and_never_split_a_request():
    recorder = Recorder(seconds=0.01)
    batcher = Batcher(recorder, max_batch=5, max_wait=0.0)

    async def main():
        sizes = [1, 3, 2, 4, 1, 2, 7, 1, 1, 3]  # the 7 is larger than max_batch
        requests = [list(range(100 * i, 100 * i + n)) for i, n in enumerate(sizes)]
        results = await asyncio.gather(*(batcher.submit(r) for r in requests))
        return requests, results

    requests, results = run(main())
    assert results == [[2 * x for x in r] for r in requests]
    for call in recorder.calls:
        assert len(call) <= 5 or call == requests[6]
        groups = {x // 100 for x in call}
        for g in groups:  # every request present in full, in order
            assert [x for x in call if x // 100 == g] == requests[g]


def test_a_pass_waits_for_requests_being_received_at_most_max_wait():
    async def scenario(max_wait: float) -> int:
        recorder = Recorder()
        batcher = Batcher(recorder, max_batch=64, max_wait=max_wait)

        async def slow_client():
            with batcher.receiving():  # its body takes 50 ms to arrive
                await asyncio.sleep(0.05)
            return await batcher.submit([2])

        task = asyncio.create_task(slow_client())
        await asyncio.sleep(0)
        first = await batcher.submit([1])
        assert first == [2] and await task == [4]
        return len(recorder.calls)

    assert run(scenario(max_wait=2.0)) == 1  # waited for the second request
    assert run(scenario(max_wait=0.0)) == 2  # did not wait


def test_a_failing_pass_fails_its_requests_and_the_batcher_goes_on():
    recorder = Recorder(seconds=0.02, fail_on=13)
    batcher = Batcher(recorder, max_batch=64, max_wait=0.0)

    async def main():
        outcomes = await asyncio.gather(*(batcher.submit([i]) for i in (1, 13, 14)),
                                        return_exceptions=True)
        after = await batcher.submit([5])
        return outcomes, after

    outcomes, after = run(main())
    failed_pass = next(call for call in recorder.calls if 13 in call)
    for item, outcome in zip((1, 13, 14), outcomes):
        if item in failed_pass:
            assert isinstance(outcome, RuntimeError)
        else:
            assert outcome == [2 * item]
    assert after == [10]


def test_empty_request_runs_nothing():
    recorder = Recorder()
    assert run(Batcher(recorder).submit([])) == []
    assert recorder.calls == []


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(Recorder(), max_batch=0)
    with pytest.raises(ValueError, match="max_wait"):
        Batcher(Recorder(), max_wait=-1)


# ---------------------------------------------------------------- through the API

def same_result(batched: dict, alone: dict) -> bool:
    """Equal, except that probabilities may differ in the last float digits (a batch's
    matrix products round differently from one utterance's)."""
    if batched.keys() != alone.keys():
        return False
    for key, value in batched.items():
        if key == "slots":
            if len(value) != len(alone[key]) or not all(
                    same_result(a, b) for a, b in zip(value, alone[key])):
                return False
        elif isinstance(value, float):
            if not math.isclose(value, alone[key], abs_tol=1e-5):
                return False
        elif value != alone[key]:
            return False
    return True


def test_concurrent_api_requests_equal_tagging_each_alone(trained_run):
    from slotfill.serving.predict import Predictor
    from slotfill.serving.serve import Batching, Limits, create_app

    predictor = Predictor(trained_run / "best.pt")
    app = create_app(predictor, Limits(), batching=Batching(max_batch=8, max_wait_ms=5))
    texts = ["flights from Boston to Denver on Nov 2nd", "to Tokyo", "arrive Taipei",
             "leave Boston in the morning", "", "vols de Zürich à São Paulo",
             "from denver to boston on friday at 5 pm please"] * 4
    batches = [texts[:3], texts[3:9]]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            singles = [client.post("/predict", json={"text": t}) for t in texts]
            lists = [client.post("/predict", json={"texts": b}) for b in batches]
            return await asyncio.gather(*singles, *lists)

    responses = run(main())
    assert all(r.status_code == 200 for r in responses)
    for text, response in zip(texts, responses):
        assert same_result(response.json(), predictor.predict([text])[0]), text
    for batch, response in zip(batches, responses[len(texts):]):
        assert all(same_result(a, b) for a, b in zip(response.json(),
                                                     predictor.predict(batch)))
    assert app.state.batcher.passes < len(responses)  # requests shared passes


def test_a_pass_waits_for_as_many_requests_as_the_previous_one_took():
    async def scenario(max_wait: float) -> list[int]:
        recorder = Recorder(seconds=0.01)
        batcher = Batcher(recorder, max_batch=64, max_wait=max_wait)
        await asyncio.gather(*(batcher.submit([i]) for i in range(4)))  # one pass of 4
        assert [len(call) for call in recorder.calls] == [4]

        async def late(i: int):  # the next round: four clients, a few ms apart
            await asyncio.sleep(0.005 * i)
            return await batcher.submit([10 + i])
        before = len(recorder.calls)
        await asyncio.gather(*(late(i) for i in range(4)))
        return [len(call) for call in recorder.calls[before:]]

    assert run(scenario(max_wait=1.0)) == [4]  # waited 15 ms for the fourth
    assert len(run(scenario(max_wait=0.0))) >= 2


def test_clients_drifted_into_two_groups_are_gathered_into_one_pass_again():
    async def scenario(max_wait: float) -> list[list[int]]:
        recorder = Recorder(seconds=0.02)
        batcher = Batcher(recorder, max_batch=64, max_wait=max_wait)

        async def client(i: int, start: float):  # its next request 5 ms after its answer
            await asyncio.sleep(start)
            await batcher.submit([i])
            await asyncio.sleep(0.005)
            await batcher.submit([10 + i])

        # clients 0 and 1 start a pass; 2 and 3 arrive while it runs
        await asyncio.gather(client(0, 0), client(1, 0), client(2, 0.005), client(3, 0.005))
        return [sorted(call) for call in recorder.calls]

    calls = run(scenario(max_wait=0.2))
    assert calls[:2] == [[0, 1], [2, 3, 10, 11]]  # waited for 0 and 1 to send again
    assert run(scenario(max_wait=0.0))[:2] == [[0, 1], [2, 3]]  # did not wait


# ---------------------------------------------------------------- load shedding

def slowed(predictor, seconds: float):
    """`predictor` whose every forward pass takes at least `seconds`."""
    real = predictor.predict

    def predict(texts, tokenized=None):
        time.sleep(seconds)
        return real(texts, tokenized)
    predictor.predict = predict
    return predictor


def test_a_burst_beyond_max_queue_is_refused_at_once_and_the_accepted_all_answered(
        trained_run):
    from slotfill.serving.predict import Predictor
    from slotfill.serving.serve import Batching, Limits, create_app

    predictor = Predictor(trained_run / "best.pt")
    expected = predictor.predict(["fly to boston"])[0]
    app = create_app(slowed(predictor, 0.3), Limits(),
                     batching=Batching(max_batch=2, max_queue=5))

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            async def timed():
                started = time.perf_counter()
                response = await client.post("/predict", json={"text": "fly to boston"})
                return response, time.perf_counter() - started
            burst = [asyncio.create_task(timed()) for _ in range(20)]
            await asyncio.sleep(0.1)  # all arrived; the first pass is running
            busy = await client.get("/ready")
            answered = await asyncio.gather(*burst)
            ready = await client.get("/ready")
            return busy, answered, ready

    busy, answered, ready = run(main())
    accepted = [(r, s) for r, s in answered if r.status_code == 200]
    refused = [(r, s) for r, s in answered if r.status_code == 503]
    assert len(accepted) == 5 and len(refused) == 15  # none lost, none queued past 5
    assert all(r.json() == expected for r, _ in accepted)
    assert max(s for _, s in accepted) > 0.8  # three passes of 0.3 s (two, two, one)
    assert max(s for _, s in refused) < 0.25  # told at once, not after the queue
    for response, _ in refused:
        assert response.headers["retry-after"] == "1"
        assert "server busy" in response.json()["error"]
        assert "--max-queue 5" in response.json()["error"]
    assert busy.status_code == 503 and busy.json()["status"] == "saturated"
    assert busy.json()["pending"] == 5 and busy.headers["retry-after"] == "1"
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "pending": 0,
                                                          "max_queue": 5}


def test_max_queue_is_checked():
    from slotfill.serving.serve import Batching

    with pytest.raises(ValueError, match="max_queue"):
        Batching(max_queue=0)
