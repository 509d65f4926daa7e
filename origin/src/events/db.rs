//! Event records in SQLite (`{data_dir}/events.sqlite3`): schema migrations, WAL, and the
//! queries the control plane needs. Blocking; async callers use `spawn_blocking`.
//!
//! Every value goes in through bound parameters: titles that look like SQL are stored
//! verbatim and never interpreted.

use super::record::{EventRecord, EventState, access_str, parse_access};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    // 1: events and their viewer-token keys.
    "CREATE TABLE events (
        id TEXT PRIMARY KEY NOT NULL,
        title TEXT NOT NULL,
        creator TEXT NOT NULL,
        start_unix INTEGER NOT NULL,
        duration_mins INTEGER NOT NULL,
        regions TEXT NOT NULL,
        viewer_cap INTEGER NOT NULL,
        ladder TEXT NOT NULL,
        access TEXT NOT NULL,
        state TEXT NOT NULL,
        key_hash BLOB NOT NULL UNIQUE,
        version INTEGER NOT NULL,
        created_unix INTEGER NOT NULL,
        updated_unix INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX events_by_start ON events (start_unix);
    CREATE TABLE event_keys (
        event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        kid TEXT NOT NULL,
        secret BLOB NOT NULL,
        created_unix INTEGER NOT NULL,
        PRIMARY KEY (event_id, kid)
    ) STRICT;",
    // 2: calendar listing, the time an event first went live (creators' track record), and
    // the lookup the per-creator daily cap makes.
    "ALTER TABLE events ADD COLUMN listed INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE events ADD COLUMN live_at_unix INTEGER;
    CREATE INDEX events_by_creator ON events (creator, start_unix);",
    // 3: the lifecycle timeline, which is also the webhook outbox (no foreign key: events
    // from the config file have no record but do have a timeline).
    "CREATE TABLE timeline (
        event_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        at_unix INTEGER NOT NULL,
        body TEXT NOT NULL,
        delivered_unix INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_unix INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        PRIMARY KEY (event_id, seq)
    ) STRICT;
    CREATE INDEX timeline_undelivered ON timeline (delivered_unix, event_id, seq);",
    // 4: an event's own webhook receiver (else the deployment's), and the lookup timeline
    // pruning makes.
    "ALTER TABLE events ADD COLUMN webhook_url TEXT;
    CREATE INDEX timeline_by_time ON timeline (at_unix);",
];

/// One moment of an event's lifecycle, as stored (its webhook body verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub event_id: String,
    pub seq: u64,
    pub kind: String,
    pub at: i64,
    pub body: String,
    pub delivered: Option<i64>,
    pub attempts: u32,
    pub next_attempt: i64,
    pub last_error: Option<String>,
}

fn timeline_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TimelineEntry> {
    Ok(TimelineEntry {
        event_id: r.get(0)?,
        seq: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
        kind: r.get(2)?,
        at: r.get(3)?,
        body: r.get(4)?,
        delivered: r.get(5)?,
        attempts: r.get::<_, i64>(6)?.try_into().unwrap_or(0),
        next_attempt: r.get(7)?,
        last_error: r.get(8)?,
    })
}

const TIMELINE_COLUMNS: &str =
    "event_id, seq, kind, at_unix, body, delivered_unix, attempts, next_attempt_unix, last_error";

/// Why a database call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("event database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("event {0:?} exists already")]
    Exists(String),
    #[error("another event has the same stream key")]
    DuplicateKey,
    #[error("no event {0:?}")]
    NotFound(String),
    #[error("event {id:?} is at version {current}, not {expected}: it was changed meanwhile")]
    VersionMismatch { id: String, expected: u64, current: u64 },
    #[error("event {id:?} cannot go from {from} to {to}")]
    BadTransition {
        id: String,
        from: EventState,
        to: EventState,
    },
    #[error("event database holds a bad row for {id:?}: {what}")]
    BadRow { id: String, what: String },
    #[error("event database schema version {found} is newer than this build's {known}")]
    NewerSchema { found: u32, known: u32 },
}

/// The event database.
#[derive(Debug)]
pub struct EventDb {
    conn: Mutex<Connection>,
}

const COLUMNS: &str = "id, title, creator, start_unix, duration_mins, regions, viewer_cap, ladder, access, state, key_hash, version, created_unix, updated_unix, listed, live_at_unix, webhook_url";

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<EventRecord, DbError>> {
    let id: String = row.get(0)?;
    let regions: String = row.get(5)?;
    let access: String = row.get(8)?;
    let state: String = row.get(9)?;
    let key_hash: Vec<u8> = row.get(10)?;
    let bad = |what: String| DbError::BadRow { id: id.clone(), what };
    let regions = match serde_json::from_str::<Vec<String>>(&regions) {
        Ok(r) => r,
        Err(e) => return Ok(Err(bad(format!("regions: {e}")))),
    };
    let Some(access) = parse_access(&access) else {
        return Ok(Err(bad(format!("access {access:?}"))));
    };
    let Some(state) = EventState::parse(&state) else {
        return Ok(Err(bad(format!("state {state:?}"))));
    };
    let Ok(key_hash) = <[u8; 32]>::try_from(key_hash.as_slice()) else {
        return Ok(Err(bad("key hash is not 32 bytes".into())));
    };
    Ok(Ok(EventRecord {
        title: row.get(1)?,
        creator: row.get(2)?,
        start: row.get(3)?,
        duration_mins: row.get(4)?,
        regions,
        viewer_cap: row.get(6)?,
        ladder: row.get(7)?,
        access,
        listed: row.get::<_, i64>(14)? != 0,
        state,
        live_at: row.get(15)?,
        webhook_url: row.get(16)?,
        key_hash,
        version: row.get::<_, i64>(11)?.try_into().unwrap_or(0),
        created: row.get(12)?,
        updated: row.get(13)?,
        id,
    }))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

impl EventDb {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// A database in memory (tests, `popcast up` without a data directory).
    pub fn in_memory() -> Result<Self, DbError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, DbError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let applied: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as u32;
        if applied > known {
            return Err(DbError::NewerSchema {
                found: applied,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as u32 + 1)?;
            tx.commit()?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a new event.
    pub fn insert(&self, r: &EventRecord) -> Result<(), DbError> {
        let conn = self.conn();
        let exists: bool = conn
            .query_row("SELECT 1 FROM events WHERE id = ?1", [&r.id], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if exists {
            return Err(DbError::Exists(r.id.clone()));
        }
        let regions = serde_json::to_string(&r.regions).unwrap_or_else(|_| "[]".into());
        conn.execute(
            &format!("INSERT INTO events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"),
            params![
                r.id,
                r.title,
                r.creator,
                r.start,
                r.duration_mins,
                regions,
                r.viewer_cap,
                r.ladder,
                access_str(r.access),
                r.state.as_str(),
                r.key_hash.as_slice(),
                r.version as i64,
                r.created,
                r.updated,
                i64::from(r.listed),
                r.live_at,
                r.webhook_url
            ],
        )
        .map_err(|e| if is_unique_violation(&e) { DbError::DuplicateKey } else { e.into() })?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<EventRecord, DbError> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM events WHERE id = ?1"),
                [id],
                row_to_record,
            )
            .optional()?
            .ok_or_else(|| DbError::NotFound(id.to_string()))?
    }

    /// Events overlapping `[from, to)` (Unix seconds; `None` = unbounded), by start time.
    pub fn list(&self, from: Option<i64>, to: Option<i64>) -> Result<Vec<EventRecord>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM events
             WHERE (?1 IS NULL OR start_unix + duration_mins * 60 > ?1)
               AND (?2 IS NULL OR start_unix < ?2)
             ORDER BY start_unix, id"
        ))?;
        let rows = stmt.query_map(params![from, to], row_to_record)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    /// Replaces an event's fields if it is still at `expected_version`; bumps the version.
    pub fn update(&self, r: &EventRecord, expected_version: u64, now: i64) -> Result<EventRecord, DbError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let current = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM events WHERE id = ?1"),
                [&r.id],
                row_to_record,
            )
            .optional()?
            .ok_or_else(|| DbError::NotFound(r.id.clone()))??;
        if current.version != expected_version {
            return Err(DbError::VersionMismatch {
                id: r.id.clone(),
                expected: expected_version,
                current: current.version,
            });
        }
        if !current.state.can_become(r.state) {
            return Err(DbError::BadTransition {
                id: r.id.clone(),
                from: current.state,
                to: r.state,
            });
        }
        let next = EventRecord {
            version: current.version + 1,
            created: current.created,
            live_at: current.live_at,
            updated: now,
            ..r.clone()
        };
        let regions = serde_json::to_string(&next.regions).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "UPDATE events SET title = ?2, creator = ?3, start_unix = ?4, duration_mins = ?5,
                regions = ?6, viewer_cap = ?7, ladder = ?8, access = ?9, state = ?10,
                key_hash = ?11, version = ?12, updated_unix = ?13, listed = ?14,
                webhook_url = ?15
             WHERE id = ?1",
            params![
                next.id,
                next.title,
                next.creator,
                next.start,
                next.duration_mins,
                regions,
                next.viewer_cap,
                next.ladder,
                access_str(next.access),
                next.state.as_str(),
                next.key_hash.as_slice(),
                next.version as i64,
                next.updated,
                i64::from(next.listed),
                next.webhook_url
            ],
        )
        .map_err(|e| {
            if is_unique_violation(&e) {
                DbError::DuplicateKey
            } else {
                e.into()
            }
        })?;
        tx.commit()?;
        Ok(next)
    }

    /// Moves an event to `state` (forward only), whatever its version.
    pub fn set_state(&self, id: &str, state: EventState, now: i64) -> Result<EventRecord, DbError> {
        let current = self.get(id)?;
        let next = EventRecord {
            state,
            ..current.clone()
        };
        self.update(&next, current.version, now)
    }

    /// Moves an event's lifecycle state forward (the scheduler's moves: not an operator edit,
    /// so the version stays).
    pub fn advance_state(&self, id: &str, state: EventState, now: i64) -> Result<EventRecord, DbError> {
        let current = self.get(id)?;
        if !current.state.can_become(state) {
            return Err(DbError::BadTransition {
                id: id.to_string(),
                from: current.state,
                to: state,
            });
        }
        let live_at = current.live_at.or((state == EventState::Live).then_some(now));
        self.conn().execute(
            "UPDATE events SET state = ?2, updated_unix = ?3, live_at_unix = ?4 WHERE id = ?1",
            params![id, state.as_str(), now, live_at],
        )?;
        Ok(EventRecord {
            state,
            updated: now,
            live_at,
            ..current
        })
    }

    /// A creator's record for the daily cap: how many of their events start in `[from, to)`,
    /// and how many of all their events went live and ended (their track record).
    pub fn creator_counts(&self, creator: &str, from: i64, to: i64) -> Result<(u32, u32), DbError> {
        Ok(self.conn().query_row(
            "SELECT
                COALESCE(SUM(start_unix >= ?2 AND start_unix < ?3), 0),
                COALESCE(SUM(live_at_unix IS NOT NULL AND state = 'ended'), 0)
             FROM events WHERE creator = ?1",
            params![creator, from, to],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?)
    }

    /// Adds a viewer-token key to an event.
    pub fn add_key(&self, id: &str, kid: &str, secret: &[u8], now: i64) -> Result<(), DbError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO event_keys (event_id, kid, secret, created_unix) VALUES (?1, ?2, ?3, ?4)",
            params![id, kid, secret, now],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
            {
                DbError::NotFound(id.to_string())
            }
            e if is_unique_violation(&e) => DbError::Exists(format!("{id}/{kid}")),
            e => e.into(),
        })?;
        Ok(())
    }

    /// An event's viewer-token keys, newest first: `(kid, secret, created)`.
    pub fn keys(&self, id: &str) -> Result<Vec<(String, Vec<u8>, i64)>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT kid, secret, created_unix FROM event_keys WHERE event_id = ?1
             ORDER BY created_unix DESC, rowid DESC",
        )?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Appends a lifecycle moment with the event's next sequence number; `body` is made from
    /// that number (the webhook body, stored so every retry sends the same bytes).
    pub fn append_timeline(
        &self,
        id: &str,
        kind: &str,
        now: i64,
        body: impl FnOnce(u64) -> String,
    ) -> Result<TimelineEntry, DbError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM timeline WHERE event_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let body = body(seq.try_into().unwrap_or(0));
        tx.execute(
            "INSERT INTO timeline (event_id, seq, kind, at_unix, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, seq, kind, now, body],
        )?;
        let entry = tx.query_row(
            &format!("SELECT {TIMELINE_COLUMNS} FROM timeline WHERE event_id = ?1 AND seq = ?2"),
            params![id, seq],
            timeline_row,
        )?;
        tx.commit()?;
        Ok(entry)
    }

    /// An event's timeline, oldest first (at most `limit`).
    pub fn timeline(&self, id: &str, limit: usize) -> Result<Vec<TimelineEntry>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {TIMELINE_COLUMNS} FROM timeline WHERE event_id = ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![id, limit as i64], timeline_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// An event's own webhook receiver: `None` when it has none, or no record (events
    /// from the config file).
    pub fn webhook_url(&self, id: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .conn()
            .query_row("SELECT webhook_url FROM events WHERE id = ?1", [id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?
            .flatten())
    }

    /// The ended events whose last moment is before `cutoff` (Unix seconds), each with
    /// whether every one of its moments was delivered: what timeline pruning may delete.
    /// Events still running (and the config file's, which have no record) are never
    /// pruned, so an event's numbering never restarts.
    pub fn quiet_timelines(&self, cutoff: i64) -> Result<Vec<(String, bool)>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.event_id, MIN(t.delivered_unix IS NOT NULL) FROM timeline t
             JOIN events e ON e.id = t.event_id AND e.state = 'ended'
             GROUP BY t.event_id HAVING MAX(t.at_unix) < ?1",
        )?;
        let rows = stmt.query_map([cutoff], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? != 0))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes an event's timeline if it still has no moment from `cutoff` on (one
    /// statement, so a moment appended meanwhile keeps it); how many moments went.
    pub fn delete_timeline(&self, id: &str, cutoff: i64) -> Result<usize, DbError> {
        Ok(self.conn().execute(
            "DELETE FROM timeline WHERE event_id = ?1
             AND NOT EXISTS (SELECT 1 FROM timeline WHERE event_id = ?1 AND at_unix >= ?2)",
            params![id, cutoff],
        )?)
    }

    /// Each event's oldest undelivered moment (deliveries go in order per event).
    pub fn undelivered_heads(&self) -> Result<Vec<TimelineEntry>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {TIMELINE_COLUMNS} FROM timeline t WHERE delivered_unix IS NULL
               AND seq = (SELECT MIN(seq) FROM timeline u
                          WHERE u.event_id = t.event_id AND u.delivered_unix IS NULL)
             ORDER BY next_attempt_unix"
        ))?;
        let rows = stmt.query_map([], timeline_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks a moment delivered.
    pub fn delivered(&self, id: &str, seq: u64, now: i64) -> Result<(), DbError> {
        self.conn().execute(
            "UPDATE timeline SET delivered_unix = ?3, attempts = attempts + 1, last_error = NULL
             WHERE event_id = ?1 AND seq = ?2",
            params![id, seq as i64, now],
        )?;
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    pub fn attempt_failed(&self, id: &str, seq: u64, next: i64, error: &str) -> Result<(), DbError> {
        self.conn().execute(
            "UPDATE timeline SET attempts = attempts + 1, next_attempt_unix = ?3, last_error = ?4
             WHERE event_id = ?1 AND seq = ?2",
            params![id, seq as i64, next, error],
        )?;
        Ok(())
    }

    /// Drops keys created before `before`, keeping each event's newest key.
    pub fn drop_keys_before(&self, id: &str, before: i64) -> Result<usize, DbError> {
        let conn = self.conn();
        Ok(conn.execute(
            "DELETE FROM event_keys WHERE event_id = ?1 AND created_unix < ?2
               AND kid <> (SELECT kid FROM event_keys WHERE event_id = ?1
                           ORDER BY created_unix DESC, rowid DESC LIMIT 1)",
            params![id, before],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::record::sample;

    fn temp_db(test: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("popcast-eventdb-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("events.sqlite3")
    }

    #[test]
    fn events_survive_a_reopen_with_their_keys_and_verbatim_titles() {
        let path = temp_db("reopen");
        {
            let db = EventDb::open(&path).unwrap();
            db.insert(&sample("clinic")).unwrap();
            db.add_key("clinic", "k1", b"secret one, thirty-two bytes long", 10)
                .unwrap();
            db.add_key("clinic", "k2", b"secret two, thirty-two bytes long", 20)
                .unwrap();
        }
        let db = EventDb::open(&path).unwrap();
        let r = db.get("clinic").unwrap();
        assert_eq!(r, sample("clinic"));
        assert_eq!(r.title, "Pop-up clinic: '; DROP TABLE events; --");
        let keys: Vec<String> = db.keys("clinic").unwrap().into_iter().map(|k| k.0).collect();
        assert_eq!(keys, ["k2", "k1"]);
        let mode: String = db
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_first_schema_database_is_migrated_and_keeps_its_events() {
        let path = temp_db("migrate");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO events VALUES ('old', 'Old', 'ana', 1000, 30, '[\"eu\"]', 10, 'default', 'public', 'scheduled', ?1, 1, 5, 5)",
                [[9u8; 32].as_slice()],
            )
            .unwrap();
        }
        let db = EventDb::open(&path).unwrap();
        let r = db.get("old").unwrap();
        assert!(r.listed && r.live_at.is_none(), "{r:?}");
        let v: u32 = db
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn going_live_is_remembered_and_counts_toward_the_creators_record() {
        let db = EventDb::in_memory().unwrap();
        for (id, start, hash) in [("a", 1_000, 1u8), ("b", 2_000, 2), ("c", 90_000, 3)] {
            let mut r = sample(id);
            r.start = start;
            r.key_hash = [hash; 32];
            db.insert(&r).unwrap();
        }
        let mut other = sample("z");
        other.creator = "bo".into();
        other.key_hash = [4; 32];
        db.insert(&other).unwrap();
        assert_eq!(db.creator_counts("ana", 0, 86_400).unwrap(), (2, 0));
        let live = db.advance_state("a", EventState::Live, 1_010).unwrap();
        assert_eq!(live.live_at, Some(1_010));
        // Ending keeps the first go-live time; an event that never went live earns nothing.
        let ended = db.advance_state("a", EventState::Ended, 2_800).unwrap();
        assert_eq!(ended.live_at, Some(1_010));
        db.advance_state("b", EventState::Ended, 3_800).unwrap();
        assert_eq!(db.get("a").unwrap().live_at, Some(1_010));
        assert_eq!(db.creator_counts("ana", 0, 86_400).unwrap(), (2, 1));
        assert_eq!(db.creator_counts("ana", 86_400, 172_800).unwrap(), (1, 1));
        assert_eq!(db.creator_counts("nobody", 0, 86_400).unwrap(), (0, 0));
    }

    #[test]
    fn conflicts_are_named() {
        let db = EventDb::in_memory().unwrap();
        db.insert(&sample("a")).unwrap();
        assert!(matches!(db.insert(&sample("a")), Err(DbError::Exists(_))));
        // The same stream key hash as "a".
        assert!(matches!(db.insert(&sample("b")), Err(DbError::DuplicateKey)));
        assert!(matches!(db.get("zzz"), Err(DbError::NotFound(_))));
        assert!(matches!(
            db.add_key("zzz", "k1", b"x", 1),
            Err(DbError::NotFound(_))
        ));
        db.add_key("a", "k1", b"x", 1).unwrap();
        assert!(matches!(db.add_key("a", "k1", b"y", 2), Err(DbError::Exists(_))));
    }

    #[test]
    fn an_update_from_a_stale_version_is_refused_and_states_only_move_forward() {
        let db = EventDb::in_memory().unwrap();
        db.insert(&sample("a")).unwrap();
        let mut edit = db.get("a").unwrap();
        edit.title = "New title".into();
        let v2 = db.update(&edit, 1, 100).unwrap();
        assert_eq!(
            (v2.version, v2.updated, v2.created),
            (2, 100, sample("a").created)
        );
        // A second editor still holding version 1.
        assert!(matches!(
            db.update(&edit, 1, 101),
            Err(DbError::VersionMismatch { current: 2, .. })
        ));
        let ended = db.set_state("a", EventState::Ended, 102).unwrap();
        assert_eq!(ended.state, EventState::Ended);
        assert!(matches!(
            db.set_state("a", EventState::Live, 103),
            Err(DbError::BadTransition { .. })
        ));
    }

    #[test]
    fn list_returns_events_overlapping_the_window_in_start_order() {
        let db = EventDb::in_memory().unwrap();
        for (id, start, hash) in [("late", 5_000, 1u8), ("early", 1_000, 2), ("mid", 3_000, 3)] {
            let mut r = sample(id);
            r.start = start;
            r.duration_mins = 10; // 600 s
            r.key_hash = [hash; 32];
            db.insert(&r).unwrap();
        }
        let ids = |v: Vec<EventRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(db.list(None, None).unwrap()), ["early", "mid", "late"]);
        // "early" runs 1000..1600: it overlaps [1500, 3001).
        assert_eq!(ids(db.list(Some(1_500), Some(3_001)).unwrap()), ["early", "mid"]);
        assert_eq!(ids(db.list(Some(5_600), None).unwrap()), Vec::<String>::new());
    }

    #[test]
    fn old_keys_are_dropped_but_never_the_newest() {
        let db = EventDb::in_memory().unwrap();
        db.insert(&sample("a")).unwrap();
        db.add_key("a", "k1", b"one", 10).unwrap();
        db.add_key("a", "k2", b"two", 20).unwrap();
        assert_eq!(db.drop_keys_before("a", 15).unwrap(), 1);
        assert_eq!(db.drop_keys_before("a", 1_000).unwrap(), 0);
        assert_eq!(db.keys("a").unwrap().len(), 1);
    }
}
