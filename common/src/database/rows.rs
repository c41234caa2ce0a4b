//! [`insert_rows`]: multi-row statements in a few prepared shapes, with each backend's
//! placeholders.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Transaction};

use super::Backend;

/// The most rows one multi-row statement carries.
const MAX_ROWS: usize = 256;

/// Runs `head VALUES (..), (..) tail` for `rows`, `bind` binding each row's `columns` values,
/// and returns what the statements returned. Rows go in chunks of a power of two (a group of
/// 200 is 128 + 64 + 8): each connection then caches at most nine prepared texts per
/// statement, whatever the group sizes, instead of one per size.
pub async fn insert_rows<'r, R>(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    head: &str,
    tail: &str,
    columns: usize,
    rows: &'r [R],
    bind: impl Fn(Query<'r, Any, AnyArguments>, &'r R) -> Query<'r, Any, AnyArguments>,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut returned = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let size = 1 << rest.len().min(MAX_ROWS).ilog2();
        let (chunk, after) = rest.split_at(size);
        let sql = format!(
            "{head} VALUES {} {tail}",
            placeholders(backend, size, columns)
        );
        let query = chunk.iter().fold(sqlx::query(AssertSqlSafe(sql)), &bind);
        returned.extend(query.fetch_all(&mut **tx).await?);
        rest = after;
    }
    Ok(returned)
}

/// `($1, $2), ($3, $4), ..` on PostgreSQL (sqlx's `QueryBuilder` writes `?` for the `Any`
/// driver, which PostgreSQL rejects), `(?, ?), (?, ?), ..` on SQLite: `rows` rows of `columns`
/// parameters. One row is an `IN (..)` list.
pub fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * columns + column + 1).to_string());
                }
                Backend::Sqlite => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_rows_and_columns() {
        assert_eq!(placeholders(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(Backend::Postgres, 1, 3), "($1, $2, $3)");
        assert_eq!(placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }
}
