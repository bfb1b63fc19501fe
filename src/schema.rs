//! What the jobs need from the database, read from `migrations/` itself, and whether a
//! database has it.
//!
//! Production applies the additive migrations by hand (it never runs `run-job migrate`
//! implicitly), so `_sqlx_migrations` proves nothing there. Instead each migration's SQL
//! is read for what it creates (tables, added columns, added enum values) and the
//! database is asked for each, so `run-job check --connect` can name what is missing
//! and the migration that adds it. The list cannot drift from the migrations: it is
//! them.

use sqlx::PgPool;

/// One thing a migration creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Object {
    Table(String),
    Column { table: String, column: String },
    EnumValue { ty: String, value: String },
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Object::Table(t) => write!(f, "table {t}"),
            Object::Column { table, column } => write!(f, "column {table}.{column}"),
            Object::EnumValue { ty, value } => write!(f, "value '{value}' of type {ty}"),
        }
    }
}

/// A migration, by file name, and what it creates.
pub(crate) struct Expected {
    pub migration: String,
    pub objects: Vec<Object>,
}

/// Every migration this binary carries, with the objects its SQL creates.
pub(crate) fn expected() -> Vec<Expected> {
    sqlx::migrate!("./migrations")
        .iter()
        .map(|m| Expected {
            migration: format!("{}_{}", m.version, m.description.replace(' ', "_")),
            objects: created_by(m.sql.as_str()),
        })
        .collect()
}

/// The tables, added columns and added enum values a migration's SQL creates.
pub(crate) fn created_by(sql: &str) -> Vec<Object> {
    let tokens = tokens(sql);
    let mut objects = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let rest = &tokens[i..];
        if starts(rest, &["create", "table"]) {
            if let Some(name) = name_after(rest, 2, &["if", "not", "exists"]) {
                objects.push(Object::Table(name));
            }
        } else if starts(rest, &["alter", "table"]) {
            let mut j = 2;
            for optional in [&["if", "exists"][..], &["only"][..]] {
                if starts(rest.get(j..).unwrap_or_default(), optional) {
                    j += optional.len();
                }
            }
            if let Some(table) = rest.get(j).map(|t| unqualified(t)) {
                // Every `ADD COLUMN` up to the end of the statement.
                while let Some(token) = rest.get(j)
                    && token != ";"
                {
                    if starts(&rest[j..], &["add", "column"])
                        && let Some(column) = name_after(&rest[j..], 2, &["if", "not", "exists"])
                    {
                        objects.push(Object::Column {
                            table: table.clone(),
                            column,
                        });
                    }
                    j += 1;
                }
            }
        } else if starts(rest, &["alter", "type"])
            && let Some(ty) = rest.get(2)
            && starts(rest.get(3..).unwrap_or_default(), &["add", "value"])
            && let Some(value) = name_after(&rest[3..], 2, &["if", "not", "exists"])
        {
            objects.push(Object::EnumValue {
                ty: unqualified(ty),
                value: value.trim_matches('\'').to_string(),
            });
        }
        i += 1;
    }
    objects
}

/// Lower-case words of the SQL without comments; `;` kept as a token of its own.
fn tokens(sql: &str) -> Vec<String> {
    sql.lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .flat_map(|line| {
            line.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ','))
                .flat_map(|word| {
                    let word = word.to_lowercase();
                    match word.strip_suffix(';') {
                        Some(w) => vec![w.to_string(), ";".to_string()],
                        None => vec![word],
                    }
                })
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn starts(tokens: &[String], words: &[&str]) -> bool {
    tokens.len() >= words.len() && tokens.iter().zip(words).all(|(t, w)| t == w)
}

/// The name at `at`, after an optional `IF [NOT] EXISTS`.
fn name_after(tokens: &[String], at: usize, optional: &[&str]) -> Option<String> {
    let at = if starts(tokens.get(at..).unwrap_or_default(), optional) {
        at + optional.len()
    } else {
        at
    };
    tokens.get(at).map(|n| unqualified(n))
}

fn unqualified(name: &str) -> String {
    let name = name.trim_matches('"');
    name.strip_prefix("public.").unwrap_or(name).to_string()
}

/// What of `expected` the database lacks, by migration.
pub(crate) async fn missing<'a>(
    pool: &PgPool,
    expected: &'a [Expected],
) -> Result<Vec<(&'a str, &'a Object)>, sqlx::Error> {
    let mut missing = Vec::new();
    for m in expected {
        for object in &m.objects {
            if !exists(pool, object).await? {
                missing.push((m.migration.as_str(), object));
            }
        }
    }
    Ok(missing)
}

async fn exists(pool: &PgPool, object: &Object) -> Result<bool, sqlx::Error> {
    match object {
        Object::Table(table) => {
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(pool)
                .await
        }
        Object::Column { table, column } => {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                                 WHERE table_schema = current_schema()
                                   AND table_name = $1 AND column_name = $2)",
            )
            .bind(table)
            .bind(column)
            .fetch_one(pool)
            .await
        }
        Object::EnumValue { ty, value } => {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
                                 WHERE t.typname = $1 AND e.enumlabel = $2)",
            )
            .bind(ty)
            .bind(value)
            .fetch_one(pool)
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_each_kind_of_statement_creates() {
        let sql = "-- CREATE TABLE commented_out (x int);
            CREATE TABLE IF NOT EXISTS whatsapp_message_statuses (id int);
            ALTER TABLE notifications
                ADD COLUMN lease_until timestamptz,
                ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz;
            ALTER TABLE public.notification_batch_items ADD COLUMN merged_at timestamptz;
            CREATE INDEX x ON notifications (lease_until);
            ALTER TYPE job_run_outcome ADD VALUE IF NOT EXISTS 'lock_lost' AFTER 'interrupted';";
        let column = |table: &str, column: &str| Object::Column {
            table: table.into(),
            column: column.into(),
        };
        assert_eq!(
            created_by(sql),
            [
                Object::Table("whatsapp_message_statuses".into()),
                column("notifications", "lease_until"),
                column("notifications", "next_attempt_at"),
                column("notification_batch_items", "merged_at"),
                Object::EnumValue {
                    ty: "job_run_outcome".into(),
                    value: "lock_lost".into()
                },
            ]
        );
    }

    #[test]
    fn every_migration_creates_something_the_check_can_look_for() {
        let expected = expected();
        assert!(expected.len() >= 6);
        for m in &expected {
            assert!(
                !m.objects.is_empty(),
                "{} creates nothing visible",
                m.migration
            );
        }
        let runner = expected
            .iter()
            .find(|m| m.migration.ends_with("job_runs"))
            .unwrap();
        assert!(runner.objects.contains(&Object::Table("job_runs".into())));
    }
}
