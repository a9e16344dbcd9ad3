//! The Spin host interfaces the components import, generated with
//! `wasmtime::component::bindgen!` from spin-sdk 5.2's WIT
//! (`fermyon:spin/{key-value,sqlite,variables}@2.0.0`), and their
//! implementations:
//!
//! - key-value: SQLite-backed, like Spin's default store: one table
//!   `spin_key_value(store, key, value)` in `<data_dir>/sqlite_key_value.db`,
//!   one shared connection.
//! - sqlite: rusqlite, like Spin's in-process SQLite (`default` is
//!   `<data_dir>/sqlite_db.db`): every `open` by a guest gets its own
//!   connection, opened at its first statement, so each request pays for
//!   opening the file and reading the schema, and its prepared statements die
//!   with it. SQLite's own locking (rusqlite's 5 s busy timeout) orders
//!   concurrent writers.
//! - variables: the component's resolved `[component.<id>.variables]`.
//!
//! The host counts the SQLite statements guests run and the variables they
//! read (for benchmarks: on real Spin a `variables::get` costs 20–40 µs of
//! host time, which this host's cheap lookup would hide); the counts change
//! nothing a guest sees.
//!
//! A component may open only the stores and databases its manifest lists;
//! anything else is `access-denied`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::Connection;
use wasmtime::component::{Resource, ResourceTable};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin/host",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": super::KvStore,
            "fermyon:spin/sqlite.connection": super::SqliteConnection,
        },
    });
}

pub(crate) use bindings::fermyon::spin::{key_value, sqlite, variables};

/// A shared database connection, locked for the length of one statement.
pub(crate) type SharedConnection = Arc<Mutex<Connection>>;

/// An open key-value store, as seen by one guest.
pub struct KvStore {
    label: String,
    conn: SharedConnection,
}

/// An open SQLite connection, as seen by one guest: opened lazily, like
/// Spin's `InProcConnection`.
pub struct SqliteConnection {
    path: PathBuf,
    conn: Arc<Mutex<Option<Connection>>>,
}

/// The stores and databases of one application, shared by all requests.
#[derive(Default)]
pub(crate) struct Stores {
    key_value: HashMap<String, SharedConnection>,
    sqlite: HashMap<String, PathBuf>,
    /// An injected fault (tests): every operation on the store fails the way
    /// Spin reports a broken backend.
    pub fault: Faults,
    /// Statements guests have sent to a SQLite database since the host
    /// started (key-value operations not counted), as read by
    /// [`crate::SpinHost::sql_statements`].
    pub statements: std::sync::atomic::AtomicU64,
    /// `variables::get` calls guests have made since the host started, as
    /// read by [`crate::SpinHost::variable_reads`].
    pub variable_reads: std::sync::atomic::AtomicU64,
    /// The host time each `variables::get` takes ([`crate::HostConfig::variable_read_cost`]).
    pub variable_cost: std::time::Duration,
}

/// Which backends fail, as set by [`crate::SpinHost::inject_fault`].
#[derive(Default)]
pub(crate) struct Faults {
    pub key_value: std::sync::atomic::AtomicBool,
    pub sqlite: std::sync::atomic::AtomicBool,
}

/// What SQLite says when its file has gone read-only under a running app,
/// as seen on a real Spin host.
const FAULT_MESSAGE: &str = "attempt to write a readonly database";

impl Faults {
    fn key_value(&self) -> Result<(), key_value::Error> {
        if self.key_value.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(key_value::Error::Other(FAULT_MESSAGE.into()));
        }
        Ok(())
    }

    fn sqlite(&self) -> Result<(), sqlite::Error> {
        if self.sqlite.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(sqlite::Error::Io(FAULT_MESSAGE.into()));
        }
        Ok(())
    }
}

/// The labels the host knows: only `default`, like `spin up` without a
/// runtime configuration file.
const KNOWN_LABELS: &[&str] = &["default"];

impl Stores {
    /// Opens the stores and databases the components use, refusing (as Spin
    /// does) any label the host does not define.
    pub fn open<'a>(
        data_dir: &Path,
        components: impl IntoIterator<Item = (&'a str, &'a ComponentAccess)>,
    ) -> anyhow::Result<Stores> {
        let mut stores = Stores::default();
        let mut unknown_dbs = Vec::new();
        for (id, access) in components {
            let mut kv: Vec<&String> = access.key_value_stores.iter().collect();
            kv.sort();
            for label in kv {
                anyhow::ensure!(
                    KNOWN_LABELS.contains(&label.as_str()),
                    "unknown key_value_stores label {label:?} for component {id:?}"
                );
                if !stores.key_value.contains_key(label) {
                    // Every label lives in the same file, under its own `store`.
                    let conn = match stores.key_value.values().next() {
                        Some(conn) => conn.clone(),
                        None => Arc::new(Mutex::new(open_key_value(
                            &data_dir.join("sqlite_key_value.db"),
                        )?)),
                    };
                    stores.key_value.insert(label.clone(), conn);
                }
            }
            let mut dbs: Vec<&String> = access.sqlite_databases.iter().collect();
            dbs.sort();
            for name in dbs {
                if !KNOWN_LABELS.contains(&name.as_str()) {
                    unknown_dbs.push(format!("- Component {id} uses database '{name}'"));
                    continue;
                }
                stores
                    .sqlite
                    .entry(name.clone())
                    .or_insert_with(|| data_dir.join("sqlite_db.db"));
            }
        }
        if !unknown_dbs.is_empty() {
            let mut lines = vec![
                "One or more components use SQLite databases which are not defined.".to_owned(),
                "Check the spelling, or pass a runtime configuration file that defines these stores."
                    .to_owned(),
                "Details:".to_owned(),
            ];
            lines.extend(unknown_dbs);
            anyhow::bail!(lines.join("\n"));
        }
        Ok(stores)
    }
}

fn open_key_value(path: &Path) -> anyhow::Result<Connection> {
    let conn =
        Connection::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS spin_key_value (
            store TEXT NOT NULL,
            key   TEXT NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (store, key)
        )",
        [],
    )
    .with_context(|| format!("failed to create the key-value table in {}", path.display()))?;
    Ok(conn)
}

/// What one component may open, and its resolved variables.
#[derive(Debug, Default)]
pub(crate) struct ComponentAccess {
    pub id: String,
    pub key_value_stores: HashSet<String>,
    pub sqlite_databases: HashSet<String>,
    pub variables: HashMap<String, String>,
}

/// The per-request state behind the Spin interfaces.
pub(crate) struct SpinCtx {
    pub access: Arc<ComponentAccess>,
    pub stores: Arc<Stores>,
}

/// Anything that owns a [`SpinCtx`] and the request's [`ResourceTable`].
pub(crate) trait SpinView: Send {
    fn spin(&mut self) -> (&mut SpinCtx, &mut ResourceTable);
}

/// What the generated `Host` traits are implemented for: a borrow of the
/// store's [`SpinCtx`] and resource table.
pub(crate) struct SpinHostView<'a> {
    ctx: &'a mut SpinCtx,
    table: &'a mut ResourceTable,
}

impl SpinHostView<'_> {
    fn spin(&mut self) -> (&mut SpinCtx, &mut ResourceTable) {
        (&mut *self.ctx, &mut *self.table)
    }
}

/// The [`HasData`](wasmtime::component::HasData) marker for [`SpinHostView`].
struct SpinData;

impl wasmtime::component::HasData for SpinData {
    type Data<'a> = SpinHostView<'a>;
}

/// Runs `f` on the shared connection in tokio's blocking pool, holding the
/// connection's lock for the duration of `f`.
async fn with_connection<T: Send + 'static>(
    conn: &SharedConnection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, String> {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        let guard = conn
            .lock()
            .map_err(|_| "database connection lock poisoned".to_owned())?;
        f(&guard).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("internal runtime error: {e}"))?
}

// ------------------------------------------------------------------ key-value

impl key_value::Host for SpinHostView<'_> {}

impl key_value::HostStore for SpinHostView<'_> {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<KvStore>, key_value::Error>> {
        let (ctx, table) = self.spin();
        if !ctx.access.key_value_stores.contains(&label) {
            return Ok(Err(key_value::Error::AccessDenied));
        }
        let Some(conn) = ctx.stores.key_value.get(&label).cloned() else {
            return Ok(Err(key_value::Error::NoSuchStore));
        };
        Ok(Ok(table.push(KvStore { label, conn })?))
    }

    async fn get(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, key_value::Error>> {
        if let Err(e) = kv_fault(self) {
            return Ok(Err(e));
        }
        let (conn, label) = kv_store(self, &store)?;
        Ok(with_connection(&conn, move |c| {
            use rusqlite::OptionalExtension;
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row([&label, &key], |row| row.get::<_, Vec<u8>>(0))
                .optional()
        })
        .await
        .map_err(key_value::Error::Other))
    }

    async fn set(
        &mut self,
        store: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        if let Err(e) = kv_fault(self) {
            return Ok(Err(e));
        }
        let (conn, label) = kv_store(self, &store)?;
        Ok(with_connection(&conn, move |c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(rusqlite::params![label, key, value])
            .map(|_| ())
        })
        .await
        .map_err(key_value::Error::Other))
    }

    async fn delete(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        if let Err(e) = kv_fault(self) {
            return Ok(Err(e));
        }
        let (conn, label) = kv_store(self, &store)?;
        Ok(with_connection(&conn, move |c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute([&label, &key])
                .map(|_| ())
        })
        .await
        .map_err(key_value::Error::Other))
    }

    async fn exists(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, key_value::Error>> {
        if let Err(e) = kv_fault(self) {
            return Ok(Err(e));
        }
        let (conn, label) = kv_store(self, &store)?;
        Ok(with_connection(&conn, move |c| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .exists([&label, &key])
        })
        .await
        .map_err(key_value::Error::Other))
    }

    async fn get_keys(
        &mut self,
        store: Resource<KvStore>,
    ) -> wasmtime::Result<Result<Vec<String>, key_value::Error>> {
        if let Err(e) = kv_fault(self) {
            return Ok(Err(e));
        }
        let (conn, label) = kv_store(self, &store)?;
        Ok(with_connection(&conn, move |c| {
            c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
                .query_map([&label], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
        .map_err(key_value::Error::Other))
    }

    async fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        let (_, table) = self.spin();
        table.delete(store)?;
        Ok(())
    }
}

fn kv_store(
    view: &mut SpinHostView<'_>,
    store: &Resource<KvStore>,
) -> wasmtime::Result<(SharedConnection, String)> {
    let (_, table) = view.spin();
    let store = table.get(store)?;
    Ok((store.conn.clone(), store.label.clone()))
}

/// The injected key-value fault, if any.
fn kv_fault(view: &mut SpinHostView<'_>) -> Result<(), key_value::Error> {
    view.spin().0.stores.fault.key_value()
}

// ------------------------------------------------------------------ sqlite

impl sqlite::Host for SpinHostView<'_> {}

impl sqlite::HostConnection for SpinHostView<'_> {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<SqliteConnection>, sqlite::Error>> {
        let (ctx, table) = self.spin();
        if !ctx.access.sqlite_databases.contains(&database) {
            return Ok(Err(sqlite::Error::AccessDenied));
        }
        let Some(path) = ctx.stores.sqlite.get(&database).cloned() else {
            return Ok(Err(sqlite::Error::NoSuchDatabase));
        };
        Ok(Ok(table.push(SqliteConnection {
            path,
            conn: Arc::new(Mutex::new(None)),
        })?))
    }

    async fn execute(
        &mut self,
        connection: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> wasmtime::Result<Result<sqlite::QueryResult, sqlite::Error>> {
        if let Err(e) = self.spin().0.stores.fault.sqlite() {
            return Ok(Err(e));
        }
        // Every statement that reaches SQLite, whatever it answers.
        self.spin()
            .0
            .stores
            .statements
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (path, conn) = {
            let (_, table) = self.spin();
            let c = table.get(&connection)?;
            (c.path.clone(), c.conn.clone())
        };
        let result = tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| "database connection lock poisoned".to_owned())?;
            if guard.is_none() {
                *guard = Some(Connection::open(&path).map_err(|e| e.to_string())?);
            }
            let c = guard.as_ref().ok_or("database connection missing")?;
            execute_query(c, &statement, parameters).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("internal runtime error: {e}"))
        .and_then(|r| r);
        Ok(result.map_err(sqlite::Error::Io))
    }

    async fn drop(&mut self, connection: Resource<SqliteConnection>) -> wasmtime::Result<()> {
        let (_, table) = self.spin();
        table.delete(connection)?;
        Ok(())
    }
}

/// One statement, as Spin's in-process SQLite runs it: prepared (so a string
/// with several statements is an error), every row of every column returned.
fn execute_query(
    conn: &Connection,
    statement: &str,
    parameters: Vec<sqlite::Value>,
) -> rusqlite::Result<sqlite::QueryResult> {
    use rusqlite::types::{Value, ValueRef};
    let mut prepared = conn.prepare_cached(statement)?;
    let columns: Vec<String> = prepared.column_names().map(ToOwned::to_owned).collect();
    let column_count = columns.len();
    let params = parameters.into_iter().map(|p| match p {
        sqlite::Value::Null => Value::Null,
        sqlite::Value::Integer(i) => Value::Integer(i),
        sqlite::Value::Real(r) => Value::Real(r),
        sqlite::Value::Text(t) => Value::Text(t),
        sqlite::Value::Blob(b) => Value::Blob(b),
    });
    let rows = prepared
        .query_map(rusqlite::params_from_iter(params), |row| {
            let mut values = Vec::with_capacity(column_count);
            for i in 0..column_count {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => sqlite::Value::Null,
                    ValueRef::Integer(i) => sqlite::Value::Integer(i),
                    ValueRef::Real(r) => sqlite::Value::Real(r),
                    ValueRef::Text(t) => {
                        sqlite::Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                    ValueRef::Blob(b) => sqlite::Value::Blob(b.to_vec()),
                });
            }
            Ok(sqlite::RowResult { values })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(sqlite::QueryResult { columns, rows })
}

// ------------------------------------------------------------------ variables

impl variables::Host for SpinHostView<'_> {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        if let Err(reason) = crate::variables::check_name(&name) {
            return Ok(Err(variables::Error::InvalidName(reason)));
        }
        let (ctx, _) = self.spin();
        ctx.stores
            .variable_reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        spend(ctx.stores.variable_cost);
        Ok(match ctx.access.variables.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(variables::Error::Undefined(format!(
                "no variable for {:?}.{name:?}",
                ctx.access.id
            ))),
        })
    }
}

/// Keeps the CPU busy for `cost`, as real Spin's variable resolution does
/// (its providers and template expansion run on the request's thread).
fn spend(cost: std::time::Duration) {
    if cost.is_zero() {
        return;
    }
    let start = std::time::Instant::now();
    while start.elapsed() < cost {
        std::hint::spin_loop();
    }
}

/// Adds the three Spin interfaces to `linker`.
pub(crate) fn add_to_linker<T: SpinView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> anyhow::Result<()> {
    fn view<T: SpinView>(t: &mut T) -> SpinHostView<'_> {
        let (ctx, table) = t.spin();
        SpinHostView { ctx, table }
    }
    key_value::add_to_linker::<T, SpinData>(linker, view::<T>).map_err(anyhow::Error::from)?;
    sqlite::add_to_linker::<T, SpinData>(linker, view::<T>).map_err(anyhow::Error::from)?;
    variables::add_to_linker::<T, SpinData>(linker, view::<T>).map_err(anyhow::Error::from)?;
    Ok(())
}
