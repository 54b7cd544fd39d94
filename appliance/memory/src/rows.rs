//! The wire types read straight from query rows.
//!
//! The types are the memory API's contract and live in `daarion-memory-client`, which callers
//! link without sqlx; `sqlx::FromRow` cannot be implemented for them here (neither the trait nor
//! the type is this crate's), so queries read a [`Row`] of one and take it out. Each column list
//! below names every field of its type: a field added or renamed there fails to compile here
//! until the query gives it a column (or a value, for fields no column holds).

use daarion_memory_client::attachments::{
    Attachment, AttachmentState, Locator, Origin, ParseOptions, Progress,
};
use daarion_memory_client::audit::AuditRow;
use daarion_memory_client::documents::{Chunk, Document};
use daarion_memory_client::facts::Fact;
use daarion_memory_client::graph::{Edge, Node};
use daarion_memory_client::index::{Failed, StateCount};
use daarion_memory_client::search::Hit;
use daarion_memory_client::sessions::{Session, StoredMessage};
use daarion_memory_client::state::Entry;
use daarion_memory_client::usage::Bucket;
use daarion_memory_client::users::{Listed, User};

/// One `T` read from a row (`sqlx::query_as::<_, Row<T>>`).
#[derive(Debug)]
pub struct Row<T>(pub T);

impl<T> Row<T> {
    pub fn into_inner(self) -> T {
        self.0
    }

    /// Every row's `T`, in order.
    pub fn all(rows: Vec<Row<T>>) -> Vec<T> {
        rows.into_iter().map(Row::into_inner).collect()
    }
}

/// `from_row!(Type { column, … } else { field: value, … })`: each column into the field of its
/// name; the fields after `else` are not read from the row.
macro_rules! from_row {
    ($ty:ident { $($column:ident),* $(,)? } $(else { $($field:ident: $value:expr),* $(,)? })?) => {
        impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for Row<$ty> {
            fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok(Row($ty {
                    $($column: row.try_get(stringify!($column))?,)*
                    $($($field: $value,)*)?
                }))
            }
        }
    };
}

from_row!(User {
    id,
    display_name,
    created_at
});
from_row!(Listed {
    id,
    display_name,
    created_at,
    identities
});
from_row!(Session {
    id,
    user_id,
    agent_id,
    chat,
    started_at,
    ended_at
});
from_row!(StoredMessage {
    id,
    session_id,
    role,
    content,
    agent_id,
    model,
    prompt_tokens,
    completion_tokens,
    trace_id,
    versions,
    tool_calls,
    tool_call_id,
    created_at,
});
from_row!(Entry {
    key,
    value,
    updated_at,
    expires_at
});
from_row!(Fact {
    id,
    user_id,
    agent_id,
    content,
    valid_from,
    valid_to,
    supersedes,
    reason,
    source_message_id,
    forgotten,
    created_by,
});
from_row!(Document {
    id,
    user_id,
    agent_id,
    title,
    mime,
    source,
    bytes,
    created_by,
    created_at,
    chunks,
    indexed,
    pending,
    failed,
});
from_row!(Hit { kind, id, content, score, why } else { matched_by: Vec::new(), similarity: None, citation: None });
from_row!(StateCount { kind, state, count });
from_row!(Failed {
    kind,
    item_id,
    user_id,
    attempts,
    error,
    updated_at
});
from_row!(Bucket {
    start,
    requests,
    prompt_tokens,
    completion_tokens,
    cost,
    gpu_seconds
});
from_row!(AuditRow {
    id,
    at,
    actor,
    action,
    target,
    outcome,
    source,
    trace_id,
    before,
    after,
    detail,
});
from_row!(Node {
    id,
    user_id,
    kind,
    name
});
from_row!(Edge {
    id,
    from_node,
    to_node,
    relation,
    source_message_id,
    created_at,
    ended_at,
});

// Not by `from_row!`: the locator is JSON, the headings may be NULL.
impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for Row<Chunk> {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        use sqlx::types::Json;
        let locator: Option<Json<Locator>> = row.try_get("locator")?;
        let headings: Option<Vec<String>> = row.try_get("headings")?;
        Ok(Row(Chunk {
            id: row.try_get("id")?,
            ordinal: row.try_get("ordinal")?,
            content: row.try_get("content")?,
            state: row.try_get("state")?,
            error: row.try_get("error")?,
            locator: locator.map(|l| l.0),
            headings: headings.unwrap_or_default(),
        }))
    }
}

// Not by `from_row!`: the state is text, origin and options JSON, progress two columns.
impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for Row<Attachment> {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        use sqlx::types::Json;
        let state: String = row.try_get("state")?;
        let state = AttachmentState::parse(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("attachment state `{state}`").into()))?;
        let origin: Option<Json<Origin>> = row.try_get("origin")?;
        let options: Json<ParseOptions> = row.try_get("options")?;
        let done: Option<i32> = row.try_get("progress_done")?;
        let total: Option<i32> = row.try_get("progress_total")?;
        Ok(Row(Attachment {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            format: row.try_get("format")?,
            mime: row.try_get("mime")?,
            bytes: row.try_get("bytes")?,
            sha256: row.try_get("sha256")?,
            origin: origin.map(|o| o.0),
            options: options.0,
            state,
            attempt: row.try_get("attempt")?,
            progress: done.map(|done| Progress {
                done: done.max(0) as u32,
                total: total.map(|t| t.max(0) as u32),
            }),
            pages: row.try_get("pages")?,
            document_id: row.try_get("document_id")?,
            chunks: row.try_get("chunks")?,
            indexed: row.try_get("indexed")?,
            error: row.try_get("error")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            parsed_at: row.try_get("parsed_at")?,
            indexed_at: row.try_get("indexed_at")?,
        }))
    }
}
