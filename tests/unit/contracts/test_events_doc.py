"""docs/events.md's topics table says what the registry (contracts/topics.py) says."""

from __future__ import annotations

from pathlib import Path

from prodigy_users.contracts.topics import DAY_MS, EXTERNAL_OWNERS, TOPICS, UNLIMITED

EVENTS_DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def _topic_rows() -> dict[str, list[str]]:
    """Topic name -> the cells of its row in the table under '## Topics'."""
    text = EVENTS_DOC.read_text().split("## Topics", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 7:
            name = cells[0].split("`")[1]
            rows[name] = cells
    return rows


def test_the_topics_table_lists_every_topic_as_the_registry_has_it() -> None:
    rows = _topic_rows()
    assert sorted(rows) == sorted(t.name for t in TOPICS)
    for topic in TOPICS:
        name, written_by, _key, types, read_by, partitions, retention = rows[topic.name]
        assert ("(**private**)" in name) == topic.private, topic.name
        assert written_by.startswith(EXTERNAL_OWNERS.get(topic.owner, topic.owner)), topic.name
        assert types.split("<br>") == [f"`{p.TYPE}`" for p in topic.payloads], topic.name
        if topic.consumers:
            assert read_by == ", ".join(topic.consumers), topic.name
        else:
            assert read_by.startswith("\u2013"), topic.name  # an en dash: nobody
        assert partitions == str(topic.partitions), topic.name
        days = (
            "forever" if topic.retention_ms == UNLIMITED else f"{topic.retention_ms // DAY_MS} days"
        )
        assert retention == days, topic.name
