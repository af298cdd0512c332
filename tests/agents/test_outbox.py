"""What a remote agent keeps for the orchestrator until it is acknowledged, and how the orchestrator counts it."""

from __future__ import annotations

from robofleet.agents.client import Outbox
from robofleet.agents.hub import AgentHub


def test_the_outbox_numbers_messages_in_order_and_forgets_them_only_when_acknowledged() -> None:
    outbox = Outbox()
    outbox.add({"type": "output", "lines": [{"line": "a"}, {"line": "b"}]})
    outbox.add({"type": "exited", "run_id": "7", "outcome": {"exit_code": 0}})
    outbox.add({"type": "output", "lines": [{"line": "c"}]})
    assert [message["seq"] for message in outbox.after(0)] == [1, 2, 3]
    assert outbox.lines == 3
    assert [message["type"] for message in outbox.acknowledge(2)] == ["output", "exited"]
    assert [message["seq"] for message in outbox.after(0)] == [3]
    assert outbox.lines == 1
    assert outbox.acknowledge(2) == []  # an old acknowledgement again changes nothing
    outbox.add({"type": "output", "lines": []})
    assert [message["seq"] for message in outbox.after(3)] == [4]


def test_the_hub_knows_what_an_agent_process_sent_until_a_new_process_starts_counting_again() -> None:
    hub = AgentHub()
    inbox = hub.inbox("pc-01", "first-process")
    inbox.last_seq = 12
    assert hub.inbox("pc-01", "first-process").last_seq == 12  # a reconnect: the same process
    assert hub.inbox("pc-01", "restarted-process").last_seq == 0
    assert hub.inbox("pc-02", "first-process").last_seq == 0
