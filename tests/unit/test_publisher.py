"""Every send is counted once, bounded by its timeout, and started in order, whether it completes at once or waits."""

from __future__ import annotations

import asyncio
import json

import pytest

from iotbench.codecs import get_codec
from iotbench.compression import get_compression
from iotbench.pipeline.consumer import Window
from iotbench.pipeline.deadletter import DeadLetter
from iotbench.pipeline.publisher import Publisher


class Sender:
    """Completes at once, waits for an acknowledgement, never answers, or fails, by the payload's number."""

    def __init__(self, how) -> None:  # noqa: ANN001
        self.how = how
        self.started: list[int] = []
        self.tasks: set[asyncio.Task | None] = set()

    async def send(self, key: str, payload: bytes) -> None:
        n = len(self.started)
        self.started.append(n)
        self.tasks.add(asyncio.current_task())
        kind = self.how(n)
        if kind == "raise":
            raise ConnectionError("broker said no")
        if kind in ("ack", "ack-then-raise"):
            await asyncio.sleep(0.001)
            if kind == "ack-then-raise":
                raise ConnectionError("connection lost")
        if kind == "hang":
            await asyncio.Event().wait()

    async def close(self) -> None:
        pass


def _publisher(tmp_path, sender, *, batch=1, max_inflight=1000, timeout=5.0) -> Publisher:  # noqa: ANN001
    return Publisher(
        [sender],
        get_codec("msgpack-array"),
        get_compression("none"),
        batch=batch,
        linger_s=0.01,
        max_inflight=max_inflight,
        send_timeout_s=timeout,
        window=Window(start=0.0, end=1e12),
        dead_letter=DeadLetter(tmp_path / "dead.jsonl"),
    )


async def _publish(publisher: Publisher, readings) -> None:  # noqa: ANN001
    for k, reading in enumerate(readings):
        publisher.offer(reading.observed_at.timestamp(), 0, reading)
        if k % 7 == 6:
            await publisher.wait_for_capacity()
            await asyncio.sleep(0)
    await publisher.finish()


@pytest.mark.parametrize(
    "how",
    [
        lambda n: "now",
        lambda n: "ack",
        lambda n: "ack" if n % 3 else "now",  # a connection that sometimes waits
        lambda n: "ack" if n < 20 else "now",  # waits, then stops waiting: its loop takes over again
    ],
    ids=["at-once", "waits", "mixed", "waits-then-not"],
)
def test_every_send_is_counted_once_and_started_in_order(tmp_path, readings, how):
    sender = Sender(how)
    publisher = _publisher(tmp_path, sender)
    asyncio.run(_publish(publisher, readings[:200]))
    assert sender.started == list(range(200))
    assert publisher.events_sent == publisher.events_acked == publisher.sends == 200
    assert publisher.events_failed == 0 and publisher.failed.total() == 0
    assert publisher.send_delay.count == publisher.publish.count == 200


def test_sends_that_complete_at_once_share_one_task(tmp_path, readings):
    sender = Sender(lambda n: "now")
    publisher = _publisher(tmp_path, sender, batch=10)

    async def main() -> None:
        for reading in readings[:200]:
            publisher.offer(reading.observed_at.timestamp(), 0, reading)
        await publisher.finish()  # 20 payloads queued at once: one send loop takes them all

    asyncio.run(main())
    assert publisher.sends == publisher.sends_acked == 20 and len(sender.tasks) == 1


def test_failed_sends_are_dead_lettered_with_their_reason(tmp_path, readings):
    sender = Sender(lambda n: {3: "raise", 5: "ack-then-raise"}.get(n, "now"))
    publisher = _publisher(tmp_path, sender)
    asyncio.run(_publish(publisher, readings[:10]))
    assert publisher.events_failed == 2 and publisher.events_acked == 8
    assert publisher.failed.pairs() == {(r.device_id, r.seq) for r in (readings[3], readings[5])}
    assert publisher.publish_failed.count == 2 and publisher.publish.count == 8
    publisher.dead_letter.close()
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in dead] == [
        "send failed: ConnectionError: broker said no",
        "send failed: ConnectionError: connection lost",
    ]


def test_a_send_that_never_answers_fails_at_its_timeout_and_the_rest_go_on(tmp_path, readings):
    sender = Sender(lambda n: "hang" if n in (2, 6) else "ack")
    publisher = _publisher(tmp_path, sender, timeout=0.3)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await _publish(publisher, readings[:12])
        return loop.time() - began

    took = asyncio.run(main())
    assert 0.3 <= took < 1.5
    assert publisher.events_failed == 2 and publisher.events_acked == 10
    assert publisher.publish_failed.count == 2 and publisher.publish_failed.summary_ms()["p50"] >= 290
    publisher.dead_letter.close()
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert {d["reason"] for d in dead} == {"send not acknowledged within 0.3 s"}


def test_max_inflight_holds_the_schedule(tmp_path, readings):
    sender = Sender(lambda n: "ack")
    publisher = _publisher(tmp_path, sender, max_inflight=3)
    most = 0

    async def main() -> None:
        nonlocal most
        for reading in readings[:30]:
            await publisher.wait_for_capacity()
            publisher.offer(reading.observed_at.timestamp(), 0, reading)
            most = max(most, publisher.sends - publisher.sends_acked - publisher.sends_failed)
        await publisher.finish()

    asyncio.run(main())
    assert most == 3 and publisher.events_acked == 30


def test_a_cancellation_that_is_not_a_timeout_is_not_swallowed(tmp_path, readings):
    sender = Sender(lambda n: "hang")
    publisher = _publisher(tmp_path, sender)

    async def main() -> None:
        publisher.offer(0.0, 0, readings[0])
        await asyncio.sleep(0.01)
        for task in list(publisher._tasks):
            task.cancel()
        await asyncio.sleep(0.01)

    asyncio.run(main())
    assert publisher.events_failed == publisher.events_acked == 0  # shut down, not counted as a failed send
