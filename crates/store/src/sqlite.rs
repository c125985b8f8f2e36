//! The embedded backend: SQLite in WAL mode behind one connection.
//!
//! One mutex-guarded connection is enough here: control-plane writes are rare, and log
//! events arrive in batches from a single writer task, never from the invoke path itself.

use std::path::Path;
use std::sync::Mutex;

use nimbus_model::time_fmt::now_millis;
use nimbus_model::{AliasRecord, FunctionRecord, HttpApiRecord, LayerVersionRecord};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::{
    ApiStore, LayerStore, LogEvent, LogGroupInfo, LogQuery, LogStore, LogStreamInfo, Result, Store,
    StoreError, StoredLayers, StoredLogEvent, UsageRow, UsageStore,
};

/// Schema migrations, applied in order; the index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE functions (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (name, version)
     );
     CREATE TABLE log_groups (
        name TEXT PRIMARY KEY,
        created INTEGER NOT NULL,
        retention_days INTEGER
     );
     CREATE TABLE log_streams (
        grp TEXT NOT NULL,
        name TEXT NOT NULL,
        created INTEGER NOT NULL,
        first_event INTEGER,
        last_event INTEGER,
        last_ingestion INTEGER,
        stored_bytes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (grp, name)
     );
     CREATE TABLE log_events (
        id INTEGER PRIMARY KEY,
        grp TEXT NOT NULL,
        stream TEXT NOT NULL,
        ts INTEGER NOT NULL,
        ingested INTEGER NOT NULL,
        message TEXT NOT NULL
     );
     CREATE INDEX log_events_grp ON log_events (grp, id);
     CREATE INDEX log_events_stream ON log_events (grp, stream, id);",
    // v2: aliases
    "CREATE TABLE aliases (
        function TEXT NOT NULL,
        name TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (function, name)
     );",
    // v3: layers
    "CREATE TABLE layers (
        name TEXT PRIMARY KEY,
        last_version INTEGER NOT NULL
     );
     CREATE TABLE layer_versions (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (name, version)
     );",
    // v4: the asynchronous-invocation queue, EventBridge rules, schedule ticks, stored messages
    "CREATE TABLE async_events (
        id INTEGER PRIMARY KEY,
        function TEXT NOT NULL,
        qualifier TEXT,
        request_id TEXT NOT NULL,
        payload BLOB NOT NULL,
        client_context TEXT,
        enqueued INTEGER NOT NULL,
        due INTEGER NOT NULL,
        leased INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        function_errors INTEGER NOT NULL DEFAULT 0,
        last_outcome TEXT
     );
     CREATE INDEX async_events_due ON async_events (due);
     CREATE INDEX async_events_function ON async_events (function, leased, due);
     CREATE TABLE event_rules (
        bus TEXT NOT NULL,
        name TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (bus, name)
     );
     CREATE TABLE schedule_ticks (
        rule TEXT PRIMARY KEY,
        tick INTEGER NOT NULL
     );
     CREATE TABLE stored_messages (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        body BLOB NOT NULL,
        attributes TEXT NOT NULL,
        created INTEGER NOT NULL
     );
     CREATE INDEX stored_messages_target ON stored_messages (target, id);",
    // v5: API Gateway HTTP APIs
    "CREATE TABLE http_apis (
        api_id TEXT PRIMARY KEY,
        record TEXT NOT NULL
     );",
    // v6: usage for the bill, per function version and minute
    "CREATE TABLE usage (
        minute INTEGER NOT NULL,
        function TEXT NOT NULL,
        version TEXT NOT NULL,
        architecture TEXT NOT NULL,
        memory_mb INTEGER NOT NULL,
        ephemeral_mb INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        billed_ms INTEGER NOT NULL,
        init_ms INTEGER NOT NULL,
        egress_bytes INTEGER NOT NULL,
        PRIMARY KEY (minute, function, version, architecture, memory_mb, ephemeral_mb)
     );",
];

mod queue;

#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The queue's own connection (see [`queue`]); `None` for an in-memory database, whose
    /// connections cannot share it.
    queue: Option<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut store = Self::init(Connection::open(path)?)?;
        store.queue = Some(Mutex::new(queue::open_queue_connection(path)?));
        Ok(store)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode is durable across process crashes, which is what we promise.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::FutureSchema {
                found: version,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            queue: None,
        })
    }

    /// Decodes the JSON records a query returns as `(label, record)` rows.
    fn load_json<T: serde::de::DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (what, json) = row?;
            out.push(
                serde_json::from_str(&json)
                    .map_err(|source| StoreError::Corrupt { what, source })?,
            );
        }
        Ok(out)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions
        // roll back), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue_conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.queue
            .as_ref()
            .unwrap_or(&self.conn)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for SqliteStore {
    fn load_functions(&self) -> Result<Vec<FunctionRecord>> {
        self.load_json(
            "SELECT name || ':' || version, record FROM functions ORDER BY name, version",
        )
    }

    fn put_function(&self, record: &FunctionRecord) -> Result<()> {
        let json = serde_json::to_string(record).map_err(|source| StoreError::Corrupt {
            what: record.name.clone(),
            source,
        })?;
        self.conn().execute(
            "INSERT INTO functions (name, version, record) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, version) DO UPDATE SET record = excluded.record",
            params![record.name, record.version, json],
        )?;
        Ok(())
    }

    fn delete_function(&self, name: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM functions WHERE name = ?1", params![name])?;
        tx.execute("DELETE FROM aliases WHERE function = ?1", params![name])?;
        tx.commit()?;
        Ok(())
    }

    fn delete_version(&self, name: &str, version: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM functions WHERE name = ?1 AND version = ?2",
            params![name, version],
        )?;
        Ok(())
    }

    fn load_aliases(&self) -> Result<Vec<AliasRecord>> {
        self.load_json(
            "SELECT function || ' alias ' || name, record FROM aliases ORDER BY function, name",
        )
    }

    fn put_alias(&self, alias: &AliasRecord) -> Result<()> {
        let json = serde_json::to_string(alias).map_err(|source| StoreError::Corrupt {
            what: alias.name.clone(),
            source,
        })?;
        self.conn().execute(
            "INSERT INTO aliases (function, name, record) VALUES (?1, ?2, ?3)
             ON CONFLICT (function, name) DO UPDATE SET record = excluded.record",
            params![alias.function, alias.name, json],
        )?;
        Ok(())
    }

    fn delete_alias(&self, function: &str, name: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM aliases WHERE function = ?1 AND name = ?2",
            params![function, name],
        )?;
        Ok(())
    }
}

impl ApiStore for SqliteStore {
    fn load_apis(&self) -> Result<Vec<HttpApiRecord>> {
        self.load_json("SELECT 'api ' || api_id, record FROM http_apis ORDER BY api_id")
    }

    fn put_api(&self, api: &HttpApiRecord) -> Result<()> {
        let json = serde_json::to_string(api).map_err(|source| StoreError::Corrupt {
            what: api.api_id.clone(),
            source,
        })?;
        self.conn().execute(
            "INSERT INTO http_apis (api_id, record) VALUES (?1, ?2)
             ON CONFLICT (api_id) DO UPDATE SET record = excluded.record",
            params![api.api_id, json],
        )?;
        Ok(())
    }

    fn delete_api(&self, api_id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM http_apis WHERE api_id = ?1", params![api_id])?;
        Ok(())
    }
}

impl UsageStore for SqliteStore {
    fn add_usage(&self, rows: &[UsageRow]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO usage (minute, function, version, architecture, memory_mb, ephemeral_mb,
                                    requests, errors, billed_ms, init_ms, egress_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (minute, function, version, architecture, memory_mb, ephemeral_mb)
                 DO UPDATE SET requests = requests + excluded.requests,
                               errors = errors + excluded.errors,
                               billed_ms = billed_ms + excluded.billed_ms,
                               init_ms = init_ms + excluded.init_ms,
                               egress_bytes = egress_bytes + excluded.egress_bytes",
            )?;
            for r in rows {
                stmt.execute(params![
                    r.minute,
                    r.function,
                    r.version,
                    r.architecture,
                    r.memory_mb,
                    r.ephemeral_mb,
                    r.requests,
                    r.errors,
                    r.billed_ms,
                    r.init_ms,
                    r.egress_bytes
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn usage_since(&self, minute: i64) -> Result<Vec<UsageRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT minute, function, version, architecture, memory_mb, ephemeral_mb,
                    requests, errors, billed_ms, init_ms, egress_bytes
             FROM usage WHERE minute >= ?1 ORDER BY function, minute",
        )?;
        let rows = stmt.query_map(params![minute], |r| {
            Ok(UsageRow {
                minute: r.get(0)?,
                function: r.get(1)?,
                version: r.get(2)?,
                architecture: r.get(3)?,
                memory_mb: r.get(4)?,
                ephemeral_mb: r.get(5)?,
                requests: r.get(6)?,
                errors: r.get(7)?,
                billed_ms: r.get(8)?,
                init_ms: r.get(9)?,
                egress_bytes: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

impl LayerStore for SqliteStore {
    fn load_layers(&self) -> Result<StoredLayers> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name, last_version FROM layers")?;
        let last = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .map(|r| r.map(|(n, v)| (n, u64::try_from(v).unwrap_or(0))))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        drop(stmt);
        drop(conn);
        let versions = self.load_json(
            "SELECT 'layer ' || name || ':' || version, record FROM layer_versions ORDER BY name, version",
        )?;
        Ok(StoredLayers {
            last_versions: last,
            versions,
        })
    }

    fn put_layer_version(&self, layer: &LayerVersionRecord) -> Result<()> {
        let json = serde_json::to_string(layer).map_err(|source| StoreError::Corrupt {
            what: layer.name.clone(),
            source,
        })?;
        let version = i64::try_from(layer.version).unwrap_or(i64::MAX);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO layer_versions (name, version, record) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, version) DO UPDATE SET record = excluded.record",
            params![layer.name, version, json],
        )?;
        tx.execute(
            "INSERT INTO layers (name, last_version) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET last_version = MAX(last_version, excluded.last_version)",
            params![layer.name, version],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn delete_layer_version(&self, name: &str, version: u64) -> Result<()> {
        self.conn().execute(
            "DELETE FROM layer_versions WHERE name = ?1 AND version = ?2",
            params![name, i64::try_from(version).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }
}

impl LogStore for SqliteStore {
    fn append_logs(&self, events: &[LogEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let now = now_millis();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO log_events (grp, stream, ts, ingested, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut group = tx.prepare_cached(
                "INSERT OR IGNORE INTO log_groups (name, created) VALUES (?1, ?2)",
            )?;
            let mut stream = tx.prepare_cached(
                "INSERT INTO log_streams (grp, name, created, first_event, last_event, last_ingestion, stored_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?3, ?5)
                 ON CONFLICT (grp, name) DO UPDATE SET
                   first_event = MIN(COALESCE(first_event, excluded.first_event), excluded.first_event),
                   last_event = MAX(COALESCE(last_event, excluded.last_event), excluded.last_event),
                   last_ingestion = excluded.last_ingestion,
                   stored_bytes = stored_bytes + excluded.stored_bytes",
            )?;
            for e in events {
                group.execute(params![e.group, now])?;
                stream.execute(params![
                    e.group,
                    e.stream,
                    now,
                    e.timestamp,
                    e.message.len() as i64
                ])?;
                ins.execute(params![e.group, e.stream, e.timestamp, now, e.message])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn query_logs(&self, q: &LogQuery) -> Result<Vec<StoredLogEvent>> {
        let mut sql =
            String::from("SELECT id, stream, ts, ingested, message FROM log_events WHERE grp = ?");
        let mut args: Vec<rusqlite::types::Value> = vec![q.group.clone().into()];
        if !q.streams.is_empty() {
            sql.push_str(" AND stream IN (");
            sql.push_str(&vec!["?"; q.streams.len()].join(","));
            sql.push(')');
            args.extend(q.streams.iter().map(|s| s.clone().into()));
        }
        if let Some(p) = &q.stream_prefix {
            sql.push_str(" AND substr(stream, 1, ?) = ?");
            args.push((p.len() as i64).into());
            args.push(p.clone().into());
        }
        if let Some(t) = q.start_time {
            sql.push_str(" AND ts >= ?");
            args.push(t.into());
        }
        if let Some(t) = q.end_time {
            sql.push_str(" AND ts <= ?");
            args.push(t.into());
        }
        if let Some(id) = q.after_id {
            sql.push_str(if q.backward {
                " AND id < ?"
            } else {
                " AND id > ?"
            });
            args.push(id.into());
        }
        for c in &q.contains {
            sql.push_str(" AND instr(message, ?) > 0");
            args.push(c.clone().into());
        }
        sql.push_str(if q.backward {
            " ORDER BY id DESC LIMIT ?"
        } else {
            " ORDER BY id LIMIT ?"
        });
        args.push((q.limit.max(1) as i64).into());
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok(StoredLogEvent {
                id: r.get(0)?,
                stream: r.get(1)?,
                timestamp: r.get(2)?,
                ingestion_time: r.get(3)?,
                message: r.get(4)?,
            })
        })?;
        let mut out: Vec<StoredLogEvent> = rows.collect::<std::result::Result<_, _>>()?;
        if q.backward {
            out.reverse();
        }
        Ok(out)
    }

    fn log_groups(&self, prefix: Option<&str>) -> Result<Vec<LogGroupInfo>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT g.name, g.created, g.retention_days,
                    (SELECT COALESCE(SUM(stored_bytes), 0) FROM log_streams s WHERE s.grp = g.name)
             FROM log_groups g WHERE substr(g.name, 1, ?1) = ?2 ORDER BY g.name",
        )?;
        let p = prefix.unwrap_or("");
        let rows = stmt.query_map(params![p.len() as i64, p], |r| {
            Ok(LogGroupInfo {
                name: r.get(0)?,
                created: r.get(1)?,
                retention_days: r.get(2)?,
                stored_bytes: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn log_streams(&self, group: &str, prefix: Option<&str>) -> Result<Vec<LogStreamInfo>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, created, first_event, last_event, last_ingestion, stored_bytes
             FROM log_streams WHERE grp = ?1 AND substr(name, 1, ?2) = ?3 ORDER BY name",
        )?;
        let p = prefix.unwrap_or("");
        let rows = stmt.query_map(params![group, p.len() as i64, p], |r| {
            Ok(LogStreamInfo {
                name: r.get(0)?,
                created: r.get(1)?,
                first_event: r.get(2)?,
                last_event: r.get(3)?,
                last_ingestion: r.get(4)?,
                stored_bytes: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn create_log_group(&self, name: &str) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO log_groups (name, created) VALUES (?1, ?2)",
            params![name, now_millis()],
        )?;
        Ok(n == 1)
    }

    fn delete_log_group(&self, name: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existed = tx
            .query_row(
                "SELECT 1 FROM log_groups WHERE name = ?1",
                params![name],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        tx.execute("DELETE FROM log_events WHERE grp = ?1", params![name])?;
        tx.execute("DELETE FROM log_streams WHERE grp = ?1", params![name])?;
        tx.execute("DELETE FROM log_groups WHERE name = ?1", params![name])?;
        tx.commit()?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stream: &str, ts: i64, msg: &str) -> LogEvent {
        LogEvent {
            group: "/aws/lambda/f".into(),
            stream: stream.into(),
            timestamp: ts,
            message: msg.into(),
        }
    }

    #[test]
    fn migrations_are_idempotent_and_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.append_logs(&[event("a", 1, "hello")]).unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let got = s
            .query_logs(&LogQuery {
                group: "/aws/lambda/f".into(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].message, "hello");
    }

    #[test]
    fn log_queries_filter_and_page() {
        let s = SqliteStore::in_memory().unwrap();
        s.append_logs(&[
            event("a", 10, "START x"),
            event("b", 20, "hello b"),
            event("a", 30, "END x"),
        ])
        .unwrap();
        let all = |q: LogQuery| s.query_logs(&q).unwrap();
        let base = LogQuery {
            group: "/aws/lambda/f".into(),
            limit: 100,
            ..Default::default()
        };
        assert_eq!(all(base.clone()).len(), 3);
        assert_eq!(
            all(LogQuery {
                streams: vec!["a".into()],
                ..base.clone()
            })
            .len(),
            2
        );
        assert_eq!(
            all(LogQuery {
                start_time: Some(15),
                ..base.clone()
            })
            .len(),
            2
        );
        assert_eq!(
            all(LogQuery {
                contains: vec!["x".into()],
                ..base.clone()
            })
            .len(),
            2
        );
        let page1 = all(LogQuery {
            limit: 2,
            ..base.clone()
        });
        let page2 = all(LogQuery {
            after_id: Some(page1[1].id),
            ..base.clone()
        });
        assert_eq!(page2.len(), 1);
        assert_eq!(page2[0].message, "END x");
        let streams = s.log_streams("/aws/lambda/f", None).unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(streams[0].first_event, Some(10));
        assert_eq!(streams[0].last_event, Some(30));
        assert!(s.delete_log_group("/aws/lambda/f").unwrap());
        assert!(all(base).is_empty());
    }
}
