"""Migration 0009 turns message_subscription into event_subscription (messages and signals, and the
message/signal start events of processes): rows survive the upgrade and the downgrade."""

from alembic import command
from sqlalchemy import create_engine, inspect, text

from storage.migrate import alembic_config, upgrade


def test_0009_keeps_message_subscriptions_and_downgrades(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    upgrade(url, "0008")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO process_definition (id, key, version, kind, source_name, xml, content_hash, "
                          "dependencies, deployed_at) VALUES (1, 'p', 1, 'bpmn', 'p.bpmn', '<x/>', 'h', '[]', "
                          "'2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO process_instance (id, definition_id, process_key, process_version, status, "
                          "state, data, started_at, version) VALUES ('i1', 1, 'p', 1, 'running', x'', '{}', "
                          "'2026-01-01 00:00:00', 1)"))
        conn.execute(text("INSERT INTO message_subscription (instance_id, name, correlation) VALUES ('i1', 'go', 'k')"))
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT instance_id, kind, name, correlation, process_key FROM event_subscription"))
        assert [tuple(r) for r in rows] == [("i1", "message", "go", "k", None)]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO event_subscription (instance_id, kind, name, process_key) "
                          "VALUES (NULL, 'signal', 'alarm', 'p')"))
    command.downgrade(alembic_config(url), "0008")
    tables = set(inspect(engine).get_table_names())
    assert "message_subscription" in tables and "event_subscription" not in tables
    with engine.connect() as conn:  # the start-event row has no place there; the instance's wait stays
        assert [tuple(r) for r in conn.execute(text("SELECT instance_id, name FROM message_subscription"))] == [
            ("i1", "go")]
    upgrade(url)
    engine.dispose()
