//! [`Queue`] and [`RuleStore`] on SQLite.
//!
//! The queue has its own connection with `synchronous = FULL`: an event is on disk before
//! its 202 is answered. Callers batch their writes (group commit), so one fsync covers many
//! events.

use nimbus_model::RuleRecord;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::SqliteStore;
use crate::queue::{
    NewEvent, Queue, QueueDepth, QueuedEvent, RuleStore, Settlement, StoredMessage, Tick,
};
use crate::{Result, StoreError};

fn insert_events(tx: &Transaction<'_>, events: &[NewEvent]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO async_events
            (function, qualifier, request_id, payload, client_context, enqueued, due)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for e in events {
        stmt.execute(params![
            e.function,
            e.qualifier,
            e.request_id,
            e.payload,
            e.client_context,
            e.enqueued_ms,
            e.due_ms
        ])?;
    }
    Ok(())
}

fn insert_messages(tx: &Transaction<'_>, messages: &[StoredMessage]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO stored_messages (target, body, attributes, created) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for m in messages {
        stmt.execute(params![m.target_arn, m.body, m.attributes, m.created_ms])?;
    }
    Ok(())
}

/// Leasing without scanning the backlog: the functions with queued events are found by
/// index seeks (a loose index scan), then each one's oldest due events by its own index
/// range, so the cost grows with the number of functions, not of events.
fn lease_in(
    conn: &Connection,
    now_ms: i64,
    visible_ms: i64,
    limit: usize,
    per_function: usize,
    skip: &[String],
) -> Result<Vec<QueuedEvent>> {
    let functions: Vec<String> = conn
        .prepare_cached(
            "WITH RECURSIVE f(name) AS (
                SELECT MIN(function) FROM async_events
                UNION ALL
                SELECT (SELECT MIN(function) FROM async_events WHERE function > f.name)
                FROM f WHERE f.name IS NOT NULL)
             SELECT name FROM f WHERE name IS NOT NULL",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    let mut candidates: Vec<(i64, i64)> = Vec::new();
    let mut due = conn.prepare_cached(
        "SELECT due, id FROM async_events
         WHERE function = ?1 AND leased = 0 AND due <= ?2 ORDER BY due LIMIT ?3",
    )?;
    for f in functions.iter().filter(|f| !skip.contains(f)) {
        let rows = due.query_map(
            params![f, now_ms, i64::try_from(per_function).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        for row in rows {
            candidates.push(row?);
        }
    }
    if candidates.is_empty() {
        return Ok(vec![]);
    }
    candidates.sort_unstable();
    candidates.truncate(limit);
    let ids = serde_json::to_string(&candidates.iter().map(|c| c.1).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into());
    let mut stmt = conn.prepare_cached(
        "UPDATE async_events SET due = ?2, leased = 1
         WHERE id IN (SELECT value FROM json_each(?1))
         RETURNING id, function, qualifier, request_id, payload, client_context, enqueued,
                   attempts, function_errors, last_outcome",
    )?;
    let rows = stmt.query_map(params![ids, visible_ms], |r| {
        Ok(QueuedEvent {
            id: r.get(0)?,
            event: NewEvent {
                function: r.get(1)?,
                qualifier: r.get(2)?,
                request_id: r.get(3)?,
                payload: r.get(4)?,
                client_context: r.get(5)?,
                enqueued_ms: r.get(6)?,
                due_ms: now_ms,
            },
            attempts: r.get(7)?,
            function_errors: r.get(8)?,
            last_outcome: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

impl Queue for SqliteStore {
    fn enqueue(&self, events: &[NewEvent], tick: Option<&Tick>) -> Result<()> {
        let mut conn = self.queue_conn();
        let tx = conn.transaction()?;
        insert_events(&tx, events)?;
        if let Some(t) = tick {
            tx.execute(
                "INSERT INTO schedule_ticks (rule, tick) VALUES (?1, ?2)
                 ON CONFLICT (rule) DO UPDATE SET tick = excluded.tick",
                params![t.rule_key, t.tick_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn lease(
        &self,
        now_ms: i64,
        visible_ms: i64,
        limit: usize,
        per_function: usize,
        skip: &[String],
    ) -> Result<Vec<QueuedEvent>> {
        let conn = self.queue_conn();
        // Leases are released at start, so they need no fsync of their own: the next
        // durable commit carries them.
        conn.pragma_update(None, "synchronous", "OFF")?;
        let leased = lease_in(&conn, now_ms, visible_ms, limit, per_function, skip);
        conn.pragma_update(None, "synchronous", "FULL")?;
        leased
    }

    fn settle(&self, settlements: &[Settlement]) -> Result<()> {
        let mut conn = self.queue_conn();
        let tx = conn.transaction()?;
        for s in settlements {
            match s {
                Settlement::Done {
                    id,
                    follow_ups,
                    messages,
                } => {
                    tx.prepare_cached("DELETE FROM async_events WHERE id = ?1")?
                        .execute(params![id])?;
                    insert_events(&tx, follow_ups)?;
                    insert_messages(&tx, messages)?;
                }
                Settlement::Retry {
                    id,
                    due_ms,
                    attempts,
                    function_errors,
                    last_outcome,
                } => {
                    tx.prepare_cached(
                        "UPDATE async_events SET due = ?2, leased = 0, attempts = ?3,
                            function_errors = ?4, last_outcome = ?5 WHERE id = ?1",
                    )?
                    .execute(params![
                        id,
                        due_ms,
                        attempts,
                        function_errors,
                        last_outcome
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn next_due(&self) -> Result<Option<i64>> {
        Ok(self
            .queue_conn()
            .query_row(
                "SELECT due FROM async_events WHERE leased = 0 ORDER BY due LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn release_leases(&self, now_ms: i64) -> Result<u64> {
        let n = self.queue_conn().execute(
            "UPDATE async_events SET leased = 0, due = MIN(due, ?1) WHERE leased = 1",
            params![now_ms],
        )?;
        Ok(n as u64)
    }

    fn depth(&self) -> Result<QueueDepth> {
        Ok(self.queue_conn().query_row(
            "SELECT COUNT(*), COALESCE(SUM(leased), 0), MIN(enqueued) FROM async_events",
            [],
            |r| {
                Ok(QueueDepth {
                    events: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
                    leased: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                    oldest_enqueued_ms: r.get(2)?,
                })
            },
        )?)
    }

    fn ticks(&self) -> Result<Vec<Tick>> {
        let conn = self.queue_conn();
        let mut stmt = conn.prepare("SELECT rule, tick FROM schedule_ticks")?;
        let rows = stmt.query_map([], |r| {
            Ok(Tick {
                rule_key: r.get(0)?,
                tick_ms: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn forget_tick(&self, rule_key: &str) -> Result<()> {
        self.queue_conn().execute(
            "DELETE FROM schedule_ticks WHERE rule = ?1",
            params![rule_key],
        )?;
        Ok(())
    }

    fn messages(&self, target_arn: Option<&str>, limit: usize) -> Result<Vec<StoredMessage>> {
        let conn = self.queue_conn();
        let mut stmt = conn.prepare(
            "SELECT target, body, attributes, created FROM stored_messages
             WHERE ?1 IS NULL OR target = ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![target_arn, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(StoredMessage {
                    target_arn: r.get(0)?,
                    body: r.get(1)?,
                    attributes: r.get(2)?,
                    created_ms: r.get(3)?,
                })
            },
        )?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

impl RuleStore for SqliteStore {
    fn load_rules(&self) -> Result<Vec<RuleRecord>> {
        self.load_json(
            "SELECT 'rule ' || bus || '/' || name, record FROM event_rules ORDER BY bus, name",
        )
    }

    fn put_rule(&self, rule: &RuleRecord) -> Result<()> {
        let json = serde_json::to_string(rule).map_err(|source| StoreError::Corrupt {
            what: rule.key(),
            source,
        })?;
        self.conn().execute(
            "INSERT INTO event_rules (bus, name, record) VALUES (?1, ?2, ?3)
             ON CONFLICT (bus, name) DO UPDATE SET record = excluded.record",
            params![rule.bus, rule.name, json],
        )?;
        Ok(())
    }

    fn delete_rule(&self, bus: &str, name: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM event_rules WHERE bus = ?1 AND name = ?2",
            params![bus, name],
        )?;
        self.forget_tick(&format!("{bus}/{name}"))
    }
}

/// Opens the queue's own connection to the same database file.
pub(super) fn open_queue_connection(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(request_id: &str, due_ms: i64) -> NewEvent {
        NewEvent {
            function: "f".into(),
            qualifier: None,
            request_id: request_id.into(),
            payload: b"{}".to_vec(),
            client_context: None,
            enqueued_ms: due_ms,
            due_ms,
        }
    }

    #[test]
    fn leases_hide_events_until_settled_and_restarts_release_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let store = SqliteStore::open(&path).unwrap();
        store
            .enqueue(&[event("a", 10), event("b", 20), event("c", 1_000)], None)
            .unwrap();
        let leased = store.lease(100, 5_000, 10, 10, &[]).unwrap();
        assert_eq!(leased.len(), 2, "only due events are leased");
        assert!(store.lease(100, 5_000, 10, 10, &[]).unwrap().is_empty());
        assert_eq!(store.next_due().unwrap(), Some(1_000));

        let a = leased.iter().find(|e| e.event.request_id == "a").unwrap();
        let b = leased.iter().find(|e| e.event.request_id == "b").unwrap();
        store
            .settle(&[
                Settlement::Done {
                    id: a.id,
                    follow_ups: vec![event("a-destination", 100)],
                    messages: vec![],
                },
                Settlement::Retry {
                    id: b.id,
                    due_ms: 200,
                    attempts: 1,
                    function_errors: 1,
                    last_outcome: Some("{}".into()),
                },
            ])
            .unwrap();
        drop(store);

        // Settlements are durable: the follow-up and the retry's counts survive a reopen.
        let store = SqliteStore::open(&path).unwrap();
        let mut leased = store.lease(300, 5_000, 10, 10, &[]).unwrap();
        leased.sort_by(|x, y| x.event.request_id.cmp(&y.event.request_id));
        let ids: Vec<&str> = leased.iter().map(|e| e.event.request_id.as_str()).collect();
        assert_eq!(ids, ["a-destination", "b"]);
        assert_eq!(leased[1].attempts, 1);
        assert_eq!(leased[1].function_errors, 1);
        // A restart releases the leases of anything still in flight.
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.release_leases(400).unwrap(), 2);
        assert_eq!(store.depth().unwrap().events, 3);
        assert_eq!(store.lease(400, 5_000, 10, 10, &[]).unwrap().len(), 2);
    }

    #[test]
    fn leases_are_shared_fairly_between_functions() {
        let store = SqliteStore::in_memory().unwrap();
        let mut events: Vec<NewEvent> = (0..5).map(|i| event(&format!("f{i}"), i)).collect();
        for i in 0..3 {
            let mut e = event(&format!("g{i}"), 10 + i);
            e.function = "g".into();
            events.push(e);
        }
        store.enqueue(&events, None).unwrap();
        let leased = store.lease(100, 5_000, 100, 2, &[]).unwrap();
        let per = |f: &str| leased.iter().filter(|e| e.event.function == f).count();
        assert_eq!((per("f"), per("g")), (2, 2), "at most two of each function");
        let leased = store
            .lease(100, 5_000, 100, 10, &["f".to_string()])
            .unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].event.function, "g");
    }
}
