//! Writes that want no answer but that they ran, sent to the database
//! together.
//!
//! On PostgreSQL they go out as one statement, each but the last in a
//! data-modifying `WITH`: one round trip for all of them, atomic as any
//! single statement is, so that a request whose reads are done needs
//! neither `BEGIN` nor `COMMIT` (each a round trip of its own, which cost
//! masthead and the database more than the statements themselves). The
//! statements of one `WITH` share a snapshot and do not see each other's
//! rows, so they must not depend on one another except through foreign
//! keys, which are checked at the end of the statement. On SQLite, where a
//! statement is a function call, they run one after the other.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl};

use super::{transaction, DbConnection};

/// A statement both backends can run.
pub trait Write: QueryFragment<Pg> + QueryFragment<Sqlite> {}

impl<T: QueryFragment<Pg> + QueryFragment<Sqlite>> Write for T {}

/// Writes gathered to be run together, in the order they were pushed.
#[derive(Default)]
pub struct Writes<'a> {
    statements: Vec<Box<dyn Write + 'a>>,
}

impl<'a> Writes<'a> {
    pub fn push(&mut self, statement: impl Write + 'a) {
        self.statements.push(Box::new(statement));
    }

    /// Runs them in the caller's transaction, if there is one.
    pub fn run(self, conn: &mut DbConnection) -> QueryResult<()> {
        match conn {
            DbConnection::Postgres(pg) => {
                if !self.statements.is_empty() {
                    Together(&self.statements).execute(pg)?;
                }
            }
            DbConnection::Sqlite(sqlite) => {
                for statement in &self.statements {
                    Alone(&**statement).execute(sqlite)?;
                }
            }
        }
        Ok(())
    }

    /// Runs them as one unit of their own: on PostgreSQL the one statement
    /// is, on SQLite they take the database's write turn together.
    pub fn commit(self, conn: &mut DbConnection) -> QueryResult<()> {
        match conn {
            DbConnection::Postgres(_) => {
                self.run(conn)?;
                super::note_commit(conn);
                Ok(())
            }
            DbConnection::Sqlite(_) => transaction(conn, |conn| self.run(conn)),
        }
    }
}

/// `WITH w0 AS (first), w1 AS (second) last`.
struct Together<'s, 'a>(&'s [Box<dyn Write + 'a>]);

impl QueryFragment<Pg> for Together<'_, '_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let Some((last, before)) = self.0.split_last() else {
            return Ok(());
        };
        for (i, statement) in before.iter().enumerate() {
            out.push_sql(if i == 0 { "WITH " } else { ", " });
            out.push_sql(&format!("w{i} AS ("));
            QueryFragment::<Pg>::walk_ast(&**statement, out.reborrow())?;
            out.push_sql(") ");
        }
        QueryFragment::<Pg>::walk_ast(&**last, out.reborrow())
    }
}

/// Its text is the key diesel keeps its prepared statement under.
impl QueryId for Together<'_, '_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn> RunQueryDsl<Conn> for Together<'_, '_> {}

struct Alone<'s, 'a>(&'s (dyn Write + 'a));

impl QueryFragment<Sqlite> for Alone<'_, '_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        QueryFragment::<Sqlite>::walk_ast(self.0, out)
    }
}

impl QueryId for Alone<'_, '_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn> RunQueryDsl<Conn> for Alone<'_, '_> {}
