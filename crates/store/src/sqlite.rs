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
    // v7: log retention sweeps find a group's expired events by timestamp
    "CREATE INDEX log_events_ts ON log_events (grp, ts);",
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
        // One group insert and one stream update per distinct stream of the batch, not per
        // event: (first ts, last ts, bytes) per stream, in the order streams first appear.
        let mut streams: Vec<BatchStream<'_>> = Vec::new();
        let mut index: std::collections::HashMap<(&str, &str), usize> =
            std::collections::HashMap::new();
        for e in events {
            let key = (e.group.as_str(), e.stream.as_str());
            let bytes = e.message.len() as i64;
            match index.get(&key) {
                Some(&i) => {
                    let s = &mut streams[i];
                    s.first = s.first.min(e.timestamp);
                    s.last = s.last.max(e.timestamp);
                    s.bytes += bytes;
                }
                None => {
                    index.insert(key, streams.len());
                    streams.push(BatchStream {
                        group: key.0,
                        stream: key.1,
                        first: e.timestamp,
                        last: e.timestamp,
                        bytes,
                    });
                }
            }
        }
        let now = now_millis();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut group = tx.prepare_cached(
                "INSERT OR IGNORE INTO log_groups (name, created) VALUES (?1, ?2)",
            )?;
            let mut stream = tx.prepare_cached(
                "INSERT INTO log_streams (grp, name, created, first_event, last_event, last_ingestion, stored_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?3, ?6)
                 ON CONFLICT (grp, name) DO UPDATE SET
                   first_event = MIN(COALESCE(first_event, excluded.first_event), excluded.first_event),
                   last_event = MAX(COALESCE(last_event, excluded.last_event), excluded.last_event),
                   last_ingestion = excluded.last_ingestion,
                   stored_bytes = stored_bytes + excluded.stored_bytes",
            )?;
            let mut last_group = None;
            for s in &streams {
                if last_group != Some(s.group) {
                    group.execute(params![s.group, now])?;
                    last_group = Some(s.group);
                }
                stream.execute(params![s.group, s.stream, now, s.first, s.last, s.bytes])?;
            }
            let mut ins = tx.prepare_cached(
                "INSERT INTO log_events (grp, stream, ts, ingested, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in events {
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

    fn set_log_retention(&self, group: &str, days: Option<i64>) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE log_groups SET retention_days = ?2 WHERE name = ?1",
            params![group, days],
        )?;
        Ok(n == 1)
    }

    fn enforce_retention(&self, now_ms: i64) -> Result<u64> {
        let groups: Vec<(String, i64)> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT name, retention_days FROM log_groups WHERE retention_days IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<std::result::Result<_, _>>()?
        };
        let mut deleted = 0;
        for (group, days) in groups {
            let cutoff = now_ms.saturating_sub(days.saturating_mul(86_400_000));
            loop {
                // Through the (grp, ts) index: only the expired events are visited.
                let n = self.delete_log_events(
                    "DELETE FROM log_events WHERE id IN
                       (SELECT id FROM log_events WHERE grp = ?1 AND ts < ?2 LIMIT ?3)
                     RETURNING grp, stream, octet_length(message)",
                    params![group, cutoff, LOG_DELETE_CHUNK],
                )?;
                deleted += n;
                if n < LOG_DELETE_CHUNK as u64 {
                    break;
                }
            }
            // Streams whose every event expired (checked in the same statement, so a line
            // written meanwhile keeps its stream).
            self.conn().execute(
                "DELETE FROM log_streams WHERE grp = ?1 AND last_event < ?2
                   AND NOT EXISTS (SELECT 1 FROM log_events e
                                   WHERE e.grp = log_streams.grp AND e.stream = log_streams.name)",
                params![group, cutoff],
            )?;
        }
        Ok(deleted)
    }

    fn enforce_size_cap(&self, max_bytes: u64) -> Result<u64> {
        let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        let mut deleted = 0;
        loop {
            let total: i64 = self.conn().query_row(
                "SELECT COALESCE(SUM(stored_bytes), 0) FROM log_streams",
                [],
                |r| r.get(0),
            )?;
            if total <= max {
                break;
            }
            // The oldest events (ids grow with ingestion) that free the excess, at most a
            // chunk at a time. Events written meanwhile get higher ids and are not touched.
            let cutoff: Option<i64> = {
                let conn = self.conn();
                let mut stmt = conn.prepare_cached(
                    "SELECT id, octet_length(message) FROM log_events ORDER BY id LIMIT ?1",
                )?;
                let mut rows = stmt.query(params![LOG_DELETE_CHUNK])?;
                let (mut freed, mut last) = (0i64, None);
                while let Some(r) = rows.next()? {
                    last = Some(r.get::<_, i64>(0)?);
                    freed += r.get::<_, i64>(1)?;
                    if freed >= total - max {
                        break;
                    }
                }
                last
            };
            let Some(cutoff) = cutoff else {
                // Nothing left to delete: the counters were stale.
                self.conn()
                    .execute("UPDATE log_streams SET stored_bytes = 0", [])?;
                break;
            };
            deleted += self.delete_log_events(
                "DELETE FROM log_events WHERE id <= ?1 RETURNING grp, stream, octet_length(message)",
                params![cutoff],
            )?;
        }
        Ok(deleted)
    }
}

/// One stream's share of an `append_logs` batch.
struct BatchStream<'a> {
    group: &'a str,
    stream: &'a str,
    first: i64,
    last: i64,
    bytes: i64,
}

/// Events deleted per transaction by the retention and size sweeps, so that the log writer
/// (which shares the connection) waits at most one chunk.
const LOG_DELETE_CHUNK: i64 = 5_000;

impl SqliteStore {
    /// Runs a `DELETE … RETURNING grp, stream, bytes` on log events and takes the bytes off
    /// their streams' `stored_bytes`, in one transaction. Returns the number of events deleted.
    fn delete_log_events(&self, sql: &str, args: impl rusqlite::Params) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut freed: std::collections::HashMap<(String, String), i64> =
            std::collections::HashMap::new();
        let mut n = 0;
        {
            let mut stmt = tx.prepare_cached(sql)?;
            let mut rows = stmt.query(args)?;
            while let Some(r) = rows.next()? {
                n += 1;
                *freed.entry((r.get(0)?, r.get(1)?)).or_default() += r.get::<_, i64>(2)?;
            }
        }
        {
            let mut update = tx.prepare_cached(
                "UPDATE log_streams SET stored_bytes = MAX(0, stored_bytes - ?3)
                 WHERE grp = ?1 AND name = ?2",
            )?;
            for ((group, stream), bytes) in &freed {
                update.execute(params![group, stream, bytes])?;
            }
        }
        tx.commit()?;
        Ok(n)
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

    fn group_event(group: &str, stream: &str, ts: i64, msg: &str) -> LogEvent {
        LogEvent {
            group: group.into(),
            stream: stream.into(),
            timestamp: ts,
            message: msg.into(),
        }
    }

    fn count(s: &SqliteStore, group: &str) -> usize {
        s.query_logs(&LogQuery {
            group: group.into(),
            limit: 100_000,
            ..Default::default()
        })
        .unwrap()
        .len()
    }

    fn stored_bytes(s: &SqliteStore, group: &str) -> i64 {
        s.log_groups(Some(group))
            .unwrap()
            .iter()
            .find(|g| g.name == group)
            .map(|g| g.stored_bytes)
            .unwrap()
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn retention_is_set_shown_and_removed() {
        let s = SqliteStore::in_memory().unwrap();
        assert!(s.create_log_group("/g").unwrap());
        assert!(s.set_log_retention("/g", Some(7)).unwrap());
        assert_eq!(s.log_groups(Some("/g")).unwrap()[0].retention_days, Some(7));
        assert!(s.set_log_retention("/g", None).unwrap());
        assert_eq!(s.log_groups(Some("/g")).unwrap()[0].retention_days, None);
        assert!(!s.set_log_retention("/missing", Some(1)).unwrap());
    }

    #[test]
    fn retention_deletes_expired_events_and_emptied_streams() {
        let s = SqliteStore::in_memory().unwrap();
        let now = 100 * DAY;
        s.append_logs(&[
            group_event("/a", "old", now - 10 * DAY, "aaaa"),
            group_event("/a", "mixed", now - 8 * DAY, "bb"),
            group_event("/a", "mixed", now - DAY, "ccc"),
            group_event("/b", "old", now - 10 * DAY, "kept: no retention"),
        ])
        .unwrap();
        assert_eq!(stored_bytes(&s, "/a"), 9);
        assert_eq!(s.enforce_retention(now).unwrap(), 0, "no retention set yet");
        s.set_log_retention("/a", Some(7)).unwrap();
        assert_eq!(s.enforce_retention(now).unwrap(), 2);
        let left = s
            .query_logs(&LogQuery {
                group: "/a".into(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].message, "ccc");
        assert_eq!(stored_bytes(&s, "/a"), 3);
        let streams: Vec<_> = s
            .log_streams("/a", None)
            .unwrap()
            .into_iter()
            .map(|st| (st.name, st.stored_bytes))
            .collect();
        assert_eq!(
            streams,
            vec![("mixed".to_string(), 3)],
            "the emptied stream went"
        );
        assert_eq!(count(&s, "/b"), 1);
        assert_eq!(s.log_streams("/b", None).unwrap().len(), 1);
        // The boundary: exactly 7 days old is kept.
        s.append_logs(&[group_event("/a", "mixed", now - 7 * DAY, "edge")])
            .unwrap();
        assert_eq!(s.enforce_retention(now).unwrap(), 0);
        assert_eq!(s.enforce_retention(now + 1).unwrap(), 1);
    }

    #[test]
    fn retention_sweeps_in_chunks() {
        let s = SqliteStore::in_memory().unwrap();
        let n = (LOG_DELETE_CHUNK as usize) * 2 + 17;
        let events: Vec<_> = (0..n)
            .map(|i| group_event("/big", &format!("s{}", i % 3), i as i64, "x"))
            .collect();
        s.append_logs(&events).unwrap();
        s.append_logs(&[group_event("/big", "s0", 10 * DAY, "new")])
            .unwrap();
        s.set_log_retention("/big", Some(1)).unwrap();
        assert_eq!(s.enforce_retention(10 * DAY).unwrap(), n as u64);
        assert_eq!(count(&s, "/big"), 1);
        assert_eq!(stored_bytes(&s, "/big"), 3);
        assert_eq!(s.log_streams("/big", None).unwrap().len(), 1);
    }

    #[test]
    fn retention_sweep_uses_the_timestamp_index() {
        let s = SqliteStore::in_memory().unwrap();
        let conn = s.conn();
        let plan: Vec<String> = conn
            .prepare("EXPLAIN QUERY PLAN SELECT id FROM log_events WHERE grp = ?1 AND ts < ?2")
            .unwrap()
            .query_map(params!["/g", 1], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert!(plan.iter().any(|p| p.contains("log_events_ts")), "{plan:?}");
    }

    #[test]
    fn size_cap_deletes_the_oldest_events_across_groups() {
        let s = SqliteStore::in_memory().unwrap();
        // 10 bytes each, alternating groups, in ingestion order.
        for i in 0..10 {
            let group = if i % 2 == 0 { "/even" } else { "/odd" };
            s.append_logs(&[group_event(
                group,
                "s",
                1_000 - i,
                &format!("message-{i:02}"),
            )])
            .unwrap();
        }
        let total = |s: &SqliteStore| stored_bytes(s, "/even") + stored_bytes(s, "/odd");
        assert_eq!(total(&s), 100);
        assert_eq!(s.enforce_size_cap(100).unwrap(), 0);
        // 35 bytes over 65: the 4 oldest go (by ingestion, not by timestamp).
        assert_eq!(s.enforce_size_cap(65).unwrap(), 4);
        assert_eq!(total(&s), 60);
        let even = s
            .query_logs(&LogQuery {
                group: "/even".into(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            even.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["message-04", "message-06", "message-08"]
        );
        // Multi-byte characters count as bytes, as storedBytes does.
        s.append_logs(&[group_event("/odd", "s", 0, "ééééé")])
            .unwrap();
        assert_eq!(total(&s), 70);
        assert_eq!(s.enforce_size_cap(0).unwrap(), 7);
        assert_eq!(total(&s), 0);
        assert_eq!(count(&s, "/odd") + count(&s, "/even"), 0);
    }

    #[test]
    fn size_cap_works_in_chunks() {
        let s = SqliteStore::in_memory().unwrap();
        let n = LOG_DELETE_CHUNK as usize + 500;
        let events: Vec<_> = (0..n)
            .map(|i| group_event("/g", "s", i as i64, "0123456789"))
            .collect();
        s.append_logs(&events).unwrap();
        assert_eq!(s.enforce_size_cap(1_000).unwrap(), (n - 100) as u64);
        assert_eq!(count(&s, "/g"), 100);
        assert_eq!(stored_bytes(&s, "/g"), 1_000);
    }
}
