//! The schema: plain `.sql` migrations embedded in the binary, applied in
//! one transaction under a transaction-level advisory lock (so two nodes
//! starting at once are safe: the second waits, then finds the work done),
//! with the version recorded in `schema_version`. A schema newer than this
//! build is refused, naming both versions.

use std::fmt;

use tokio_postgres::Client;

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i32 = 2;

/// Every migration, in order: `(version it brings the schema to, SQL)`.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_subject_index.sql")),
];

/// Why a store would not start on its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaError {
    /// The schema name is not `[a-z_][a-z0-9_]*` of at most 63 bytes, or
    /// starts with `pg_` (reserved by PostgreSQL).
    InvalidName(String),
    /// The schema was migrated by a newer build than this one.
    TooNew {
        /// The schema.
        schema: String,
        /// Its version.
        found: i32,
        /// The newest version this build knows.
        supported: i32,
    },
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::InvalidName(n) => write!(
                f,
                "invalid PostgreSQL schema name {n:?}: use [a-z_][a-z0-9_]*, at most 63 bytes, not starting with pg_"
            ),
            SchemaError::TooNew {
                schema,
                found,
                supported,
            } => write!(
                f,
                "PostgreSQL schema {schema:?} is at sessionkit-postgres schema version {found}, \
                 but this build knows versions up to {supported}: run a newer build"
            ),
        }
    }
}

impl std::error::Error for SchemaError {}

/// Checks a schema name: `[a-z_][a-z0-9_]*`, 1 to 63 bytes, not `pg_…`.
///
/// # Errors
/// [`SchemaError::InvalidName`].
pub fn check_schema_name(name: &str) -> Result<(), SchemaError> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        && !name.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(SchemaError::InvalidName(name.to_owned()))
    }
}

/// What a migration run can fail with.
#[derive(Debug)]
pub(crate) enum MigrateError {
    /// The schema is newer than this build.
    Schema(SchemaError),
    /// PostgreSQL refused or could not be reached.
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Db(e)
    }
}

/// Brings `schema` (a checked name) to [`SCHEMA_VERSION`], creating it if
/// need be, in one transaction.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<i32, MigrateError> {
    let tx = client.transaction().await?;
    let key = format!("sessionkit-postgres:{schema}");
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key],
    )
    .await?;
    // The name was checked: only [a-z0-9_], so it needs no quoting.
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         SET LOCAL search_path = {schema};
         CREATE TABLE IF NOT EXISTS schema_version (
           one boolean PRIMARY KEY DEFAULT true CHECK (one),
           version integer NOT NULL);"
    ))
    .await?;
    let found: i32 = match tx
        .query_opt("SELECT version FROM schema_version", &[])
        .await?
    {
        Some(row) => row.try_get(0)?,
        None => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(MigrateError::Schema(SchemaError::TooNew {
            schema: schema.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }));
    }
    for (version, sql) in MIGRATIONS {
        if *version > found {
            tx.batch_execute(sql).await?;
        }
    }
    tx.execute(
        "INSERT INTO schema_version (one, version) VALUES (true, $1)
         ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
        &[&SCHEMA_VERSION],
    )
    .await?;
    tx.commit().await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for ok in ["sessions", "_x", "a1_b2", &"a".repeat(63)] {
            assert!(check_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Abc",
            "a-b",
            "a b",
            "a;drop",
            "pg_catalog",
            "é",
            &"a".repeat(64),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }
}
