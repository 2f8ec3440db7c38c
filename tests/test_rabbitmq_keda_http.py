"""KEDA v2.20.2's management API tests (TestGetQueueInfo, TestGetPageSizeWithRegex,
TestRegexQueueMissingError), on the management client with a stub transport: the same request
URIs, the same activity from the same answers, the same errors.

One deliberate difference: KEDA's stub answers give ``messages`` and
``messages_unacknowledged`` but no ``messages_ready``. RabbitMQ sends the three together; we
read an answer without them as counts not known yet (an error, never 0), so the ported answers
carry ``messages_ready`` = ``messages`` - ``messages_unacknowledged``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from scaler.backends.rabbitmq import RabbitMQBackend
from scaler.errors import BackendError, UnsupportedResource
from tests.rabbitmq_support import answer_with, parse_metadata
from tests.test_rabbitmq_keda import ROOT

STUB = "http://stub.test"


class Stub:
    """The management API's answer to every request, and the request URIs seen."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {}
        self.seen: list[str] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url.raw_path.decode())
        if isinstance(self.body, str):
            return httpx.Response(self.status, text=self.body)
        return httpx.Response(self.status, json=self.body)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Stub:
    stub = Stub()
    answer_with(monkeypatch, stub.answer)
    return stub


async def evaluate(metadata: dict[str, str]) -> bool:
    trigger = parse_metadata({"backend": "rabbitmq", "protocol": "http", **metadata})
    client = RabbitMQBackend(1.0).connect(trigger.connection)
    try:
        return trigger.evaluate(await client.measure(trigger.resource)).active
    finally:
        await client.aclose()


def queue_info(messages: int, unacked: int, publish: float, deliver: float) -> dict[str, Any]:
    return {
        "messages": messages,
        "messages_ready": messages - unacked,
        "messages_unacknowledged": unacked,
        "message_stats": {
            "publish_details": {"rate": publish},
            "deliver_get_details": {"rate": deliver},
        },
        "name": "evaluate_trials",
    }


QL = {"queueLength": "10"}
MODE_QL, MODE_MR = {"value": "100", "mode": "QueueLength"}, {"value": "100", "mode": "MessageRate"}
MODE_DG = {"value": "100", "mode": "DeliverGetRate"}


@pytest.mark.parametrize(
    ("answer", "extra", "active"),
    # testQueueInfoTestData: (messages, unacknowledged, publish rate, deliver/get rate)
    [
        *(
            ((m, u, p, d), options, active)
            for options in (QL, MODE_QL)
            for (m, u, p, d), active in [
                ((4, 1, 0, 0), True),
                ((1, 1, 0, 0), True),
                ((1, 0, 0, 0), True),
                ((0, 0, 0, 0), False),
                ((4, 1, 1.4, 0.8), True),
                ((1, 1, 1.4, 1.2), True),
                ((1, 0, 1.4, 1.6), True),
                ((0, 0, 1.4, 2), False),
            ]
        ),
        ((4, 1, 0, 1.3), MODE_MR, True),
        ((1, 1, 0, 1), MODE_MR, True),
        ((1, 0, 0, 1), MODE_MR, True),
        ((0, 0, 0, 0), MODE_MR, False),
        ((4, 1, 1.4, 1.3), MODE_MR, True),
        ((1, 1, 1.4, 1), MODE_MR, True),
        ((1, 0, 1.4, 1), MODE_MR, True),
        ((0, 0, 1.4, 0), MODE_MR, True),
        ((30, 10, 5, 1), MODE_DG, True),
        ((20, 0, 0, 10), MODE_DG, True),
        ((10, 0, 0, 12.5), MODE_DG, True),
        ((0, 0, 0, 0), MODE_DG, False),
        ((45, 5, 5.5, 1.5), MODE_DG, True),
        ((22, 0, 1.5, 23), MODE_DG, True),
        ((3, 0, 0, 18.5), MODE_DG, True),
    ],
)
async def test_kedas_queue_info_table(
    stub: Stub, answer: tuple[int, int, float, float], extra: dict[str, str], active: bool
) -> None:
    stub.body = queue_info(*answer)
    assert await evaluate({"hostFromEnv": STUB, "queueName": "evaluate_trials", **extra}) is active
    assert stub.seen == ["/api/queues/%2F/evaluate_trials"]


async def test_kedas_error_answer_is_an_error_quoting_it(stub: Stub) -> None:
    stub.status, stub.body = 401, "Password is incorrect"
    with pytest.raises(BackendError, match="Password is incorrect"):
        await evaluate({"hostFromEnv": STUB, "queueName": "evaluate_trials"})


# the vhost rows of getVhostAndPathFromURLTestData as KEDA resolves them: (path prefix, vhost
# path, vhostName), each making the host of TestGetQueueInfo
VHOST_ROWS = [
    ("", "/myVhost", ""),
    ("", "/%2FmyVhost", ""),
    ("", ROOT, ""),
    ("/sub1", "/myVhost", ""),
    ("/sub1", "/overridenVhost", "overridenVhost"),
    ("", "/overridenVhost", "overridenVhost"),
    ("/sub1", "/%2FmyVhost", ""),
    ("/sub1", ROOT, ""),
    ("/sub1/sub2", "/myVhost", ""),
    ("/sub1/sub2", "/overridenVhost", "overridenVhost"),
    ("/sub1/sub2", "/%2FmyVhost", ""),
    ("/sub1/sub2", ROOT, ""),
]


@pytest.mark.parametrize(("prefix", "vhost", "vhost_name"), VHOST_ROWS)
async def test_kedas_request_path_by_vhost_and_prefix(
    stub: Stub, prefix: str, vhost: str, vhost_name: str
) -> None:
    stub.body = queue_info(4, 1, 1.4, 1.6)
    metadata = {"hostFromEnv": f"{STUB}{prefix}{vhost}", "queueName": "evaluate_trials"}
    if vhost_name:
        metadata["vhostName"] = vhost_name
    assert await evaluate(metadata) is True
    assert stub.seen == [f"{prefix}/api/queues{vhost}/evaluate_trials"]


@pytest.mark.parametrize("page_size", [100, 200, 500])
@pytest.mark.parametrize(("prefix", "vhost", "vhost_name"), VHOST_ROWS)
async def test_kedas_regex_query_by_page_size(
    stub: Stub, page_size: int, prefix: str, vhost: str, vhost_name: str
) -> None:
    two = [queue_info(4, 1, 0, 0), {**queue_info(4, 1, 0, 0), "name": "evaluate_trial2"}]
    stub.body = {"items": two}  # testRegexQueueInfoTestData[0]
    metadata = {
        "hostFromEnv": f"{STUB}{prefix}{vhost}",
        "queueName": "^evaluate_trials$",
        "useRegex": "true",
        "pageSize": str(page_size),
    }
    if vhost_name:
        metadata["vhostName"] = vhost_name
    assert await evaluate(metadata) is True
    query = (
        f"page=1&use_regex=true&pagination=false&name=%5Eevaluate_trials%24&page_size={page_size}"
    )
    assert stub.seen == [f"{prefix}/api/queues{vhost}?{query}"]


@pytest.mark.parametrize(
    ("answer", "error"),
    # testRegexQueueInfoNavigationTestData
    [
        ('{"items":[], "filtered_count": 250, "page": 1, "page_count": 3}', True),
        ('{"items":[], "filtered_count": 250, "page": 1, "page_count": 1}', False),
    ],
)
async def test_kedas_regex_matching_more_than_one_page(
    stub: Stub, answer: str, error: bool
) -> None:
    stub.body = json.loads(answer)
    metadata = {"hostFromEnv": STUB, "queueName": "evaluate_trials", "useRegex": "true"}
    if error:
        with pytest.raises(UnsupportedResource, match="raise pageSize"):
            await evaluate(metadata)
    else:
        assert await evaluate(metadata) is False
    query = "page=1&use_regex=true&pagination=false&name=evaluate_trials&page_size=100"
    assert stub.seen == [f"/api/queues/%2F?{query}"]
