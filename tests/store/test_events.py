"""The ledger's port events: read back from each switch's latest whole table before a window."""

from __future__ import annotations

from slamon.model import Event
from slamon.store import Store


def test_port_history_starts_at_the_latest_whole_table(store_url: str) -> None:
    store = Store(store_url)
    try:
        with store.begin() as tx:
            tx.events.append(
                [
                    Event(0, "ports", "SW1", {"ports": {"g1": {"oper": "up"}}}),
                    Event(10, "port", "SW1", {"ports": {"g1": {"oper": "down"}}}),
                    Event(100, "ports", "SW1", {"ports": {"g1": {"oper": "down"}}}),
                    Event(110, "port", "SW1", {"ports": {"g1": {"oper": "up"}}}),
                    Event(5, "ports", "SW2", {"ports": {}}),
                    Event(120, "reboot", "SW1", {"uptime_s": 1}),
                    Event(300, "port", "SW1", {"ports": {"g1": None}}),
                ]
            )
        with store.read() as tx:
            late = tx.events.port_history(["SW1"], since=105, until=200)
            early = tx.events.port_history(["SW1", "SW2"], since=50, until=200)
            none = tx.events.port_history([], since=0, until=200)
        assert [(e.at, e.kind) for e in late] == [(100, "ports"), (110, "port")]
        assert [(e.at, e.subject) for e in early] == [
            (0, "SW1"), (5, "SW2"), (10, "SW1"), (100, "SW1"), (110, "SW1")
        ]  # fmt: skip
        assert none == []
        assert late[1].body == {"ports": {"g1": {"oper": "up"}}}
    finally:
        store.close()
