//! [`MemoryClient`]: the memory API over HTTP, on `daarion_client::Service`.

use std::time::Duration;

use daarion_client::reqwest::{Method, RequestBuilder};
use daarion_client::{Service, Timeouts, http_client, segment};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::MemoryError;
use crate::attachments::{
    Attachment, AttachmentsQuery, Created, Deleted, NewAttachment, NewSections, ParseDone,
    ParseFailed, ReportProgress, Retry,
};
use crate::audit::{AuditQuery, AuditRow};
use crate::documents::{Document, DocumentWithChunks, NewDocument};
use crate::facts::{Fact, FactsQuery, Forget, NewFact, Supersede};
use crate::graph::{
    AroundQuery, Edge, End, FindQuery, NewRelation, Node, NodeRef, Path, PathQuery, Related,
    Subgraph,
};
use crate::index::{IndexStatus, Requeued};
use crate::search::{Hit, SearchQuery};
use crate::sessions::{MessagesQuery, NewMessage, NewSession, Session, StoredMessage};
use crate::state::{Entry, PutEntry};
use crate::usage::{Usage, UsageQuery};
use crate::users::{Listed, Profile, Resolve, Resolved, UsersQuery};

/// How long one call may take: the memory API answers from PostgreSQL and Redis on the box.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The memory API as one caller sees it: where it is, the credential it shows and, optionally,
/// the user it acts for. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryClient {
    service: Service,
    acting_for: Option<Uuid>,
}

impl MemoryClient {
    /// How errors name the service.
    pub const NAME: &'static str = "the memory API";

    /// `base` like `http://127.0.0.1:8000`; `token` the credential every call shows (services
    /// use the appliance's root token: they act for every user).
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> MemoryClient {
        MemoryClient::from_service(Service::new(
            Self::NAME,
            base,
            Some(token.into()),
            http_client(Timeouts::total(TIMEOUT)),
        ))
    }

    /// On a service the caller built (its own HTTP client or timeouts).
    pub fn from_service(service: Service) -> MemoryClient {
        MemoryClient {
            service,
            acting_for: None,
        }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The same client confined to `user`'s data (what a `memory:user` token needs).
    pub fn acting_for(&self, user: Uuid) -> MemoryClient {
        MemoryClient {
            acting_for: Some(user),
            ..self.clone()
        }
    }

    /// The same client showing another credential.
    pub fn with_token(&self, token: Option<String>) -> MemoryClient {
        MemoryClient {
            service: self.service.with_token(token),
            ..self.clone()
        }
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.service.request(method, path);
        match self.acting_for {
            Some(user) => request.header(crate::ACTING_FOR, user.to_string()),
            None => request,
        }
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, MemoryError> {
        Ok(self.service.json(request).await?)
    }

    /// For readiness: the memory service answers its health check.
    pub async fn ping(&self) -> Result<(), MemoryError> {
        Ok(self.service.ping().await?)
    }

    // -- attachments ------------------------------------------------------------------------

    /// Records a file already in the blob store (or finds the one this user has for the same
    /// content: `created` is false then).
    pub async fn create_attachment(&self, new: &NewAttachment) -> Result<Created, MemoryError> {
        self.json(self.request(Method::POST, "/v1/attachments").json(new))
            .await
    }

    pub async fn attachment(&self, id: Uuid) -> Result<Attachment, MemoryError> {
        self.json(self.request(Method::GET, &format!("/v1/attachments/{id}")))
            .await
    }

    /// Newest first.
    pub async fn attachments(
        &self,
        query: &AttachmentsQuery,
    ) -> Result<Vec<Attachment>, MemoryError> {
        self.json(self.request(Method::GET, "/v1/attachments").query(query))
            .await
    }

    /// Back to `received` with the next attempt; its earlier text is dropped.
    pub async fn retry_attachment(
        &self,
        id: Uuid,
        retry: &Retry,
    ) -> Result<Attachment, MemoryError> {
        self.json(
            self.request(Method::POST, &format!("/v1/attachments/{id}/retry"))
                .json(retry),
        )
        .await
    }

    /// Deletes the record, its document, chunks and vectors (audited).
    pub async fn delete_attachment(&self, id: Uuid) -> Result<Deleted, MemoryError> {
        self.json(self.request(Method::DELETE, &format!("/v1/attachments/{id}")))
            .await
    }

    /// Parser: `done` of `total` read; the state becomes `parsing`.
    pub async fn attachment_progress(
        &self,
        id: Uuid,
        progress: &ReportProgress,
    ) -> Result<Attachment, MemoryError> {
        self.attachment_step(id, "progress", progress).await
    }

    /// Parser: appends sections to the attachment's (not yet searchable) text; a batch sent
    /// again adds nothing.
    pub async fn attachment_sections(
        &self,
        id: Uuid,
        sections: &NewSections,
    ) -> Result<Attachment, MemoryError> {
        self.attachment_step(id, "sections", sections).await
    }

    /// Parser: all text is in; it becomes searchable.
    pub async fn attachment_parsed(
        &self,
        id: Uuid,
        done: &ParseDone,
    ) -> Result<Attachment, MemoryError> {
        self.attachment_step(id, "parsed", done).await
    }

    /// Parser: it could not be read, and why.
    pub async fn attachment_failed(
        &self,
        id: Uuid,
        failed: &ParseFailed,
    ) -> Result<Attachment, MemoryError> {
        self.attachment_step(id, "failed", failed).await
    }

    /// The parser's calls: each carries its attempt, and one of an earlier attempt is a 409
    /// (`MemoryError`'s conflict), which the parser acks and drops.
    async fn attachment_step<B: serde::Serialize>(
        &self,
        id: Uuid,
        step: &str,
        body: &B,
    ) -> Result<Attachment, MemoryError> {
        self.json(
            self.request(Method::POST, &format!("/v1/attachments/{id}/{step}"))
                .json(body),
        )
        .await
    }

    // -- users ------------------------------------------------------------------------------

    /// The user behind a channel identity, created on first contact.
    pub async fn resolve(
        &self,
        channel: &str,
        external_id: &str,
        display_name: &str,
    ) -> Result<Uuid, MemoryError> {
        let resolve = Resolve {
            channel: channel.to_owned(),
            external_id: external_id.to_owned(),
            display_name: display_name.to_owned(),
        };
        Ok(self.resolve_identity(&resolve).await?.user_id)
    }

    /// [`MemoryClient::resolve`], saying also whether the user was created by this call.
    pub async fn resolve_identity(&self, resolve: &Resolve) -> Result<Resolved, MemoryError> {
        self.json(
            self.request(Method::POST, "/v1/identities/resolve")
                .json(resolve),
        )
        .await
    }

    /// The user and their identities; `Refused { status: 404 }` when there is no such user.
    pub async fn user(&self, user: Uuid) -> Result<Profile, MemoryError> {
        self.json(self.request(Method::GET, &format!("/v1/users/{user}")))
            .await
    }

    /// The user's display name; `Refused { status: 404 }` when there is no such user.
    pub async fn display_name(&self, user: Uuid) -> Result<String, MemoryError> {
        Ok(self.user(user).await?.user.display_name)
    }

    /// Users, newest first (needs `memory:read` across users).
    pub async fn users(&self, query: &UsersQuery) -> Result<Vec<Listed>, MemoryError> {
        self.json(self.request(Method::GET, "/v1/users").query(query))
            .await
    }

    // -- sessions and messages --------------------------------------------------------------

    /// Always a new session.
    pub async fn create_session(&self, session: &NewSession) -> Result<Session, MemoryError> {
        self.json(self.request(Method::POST, "/v1/sessions").json(session))
            .await
    }

    /// The open session of this user with this agent in this chat, or a new one.
    pub async fn open_session(
        &self,
        user: Uuid,
        agent: &str,
        chat: &str,
    ) -> Result<Session, MemoryError> {
        let open = NewSession {
            user_id: user,
            agent_id: agent.to_owned(),
            chat: chat.to_owned(),
        };
        self.json(self.request(Method::POST, "/v1/sessions/open").json(&open))
            .await
    }

    pub async fn session(&self, session: Uuid) -> Result<Session, MemoryError> {
        self.json(self.request(Method::GET, &format!("/v1/sessions/{session}")))
            .await
    }

    /// Ends the session (idempotent: an ended one keeps its end); its state goes with it.
    pub async fn end_session(&self, session: Uuid) -> Result<Session, MemoryError> {
        self.json(self.request(Method::POST, &format!("/v1/sessions/{session}/end")))
            .await
    }

    /// The last `limit` messages, oldest first.
    pub async fn history(
        &self,
        session: Uuid,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, MemoryError> {
        let page = MessagesQuery {
            limit: i64::from(limit),
        };
        self.json(
            self.request(Method::GET, &format!("/v1/sessions/{session}/messages"))
                .query(&page),
        )
        .await
    }

    /// Stores a message; `Refused { status: 409 }` once the session has ended.
    pub async fn add_message(
        &self,
        session: Uuid,
        message: NewMessage,
    ) -> Result<StoredMessage, MemoryError> {
        self.json(
            self.request(Method::POST, &format!("/v1/sessions/{session}/messages"))
                .json(&message),
        )
        .await
    }

    // -- session state ----------------------------------------------------------------------

    /// The session's entries that have not expired, by key.
    pub async fn state(&self, session: Uuid) -> Result<Vec<Entry>, MemoryError> {
        self.json(self.request(Method::GET, &format!("/v1/sessions/{session}/state")))
            .await
    }

    /// One entry; `Refused { status: 404 }` once it expired.
    pub async fn state_entry(&self, session: Uuid, key: &str) -> Result<Entry, MemoryError> {
        self.json(self.request(Method::GET, &state_path(session, key)))
            .await
    }

    pub async fn put_state(
        &self,
        session: Uuid,
        key: &str,
        entry: &PutEntry,
    ) -> Result<Entry, MemoryError> {
        self.json(
            self.request(Method::PUT, &state_path(session, key))
                .json(entry),
        )
        .await
    }

    /// Deletes an entry, whether or not it was there.
    pub async fn delete_state(&self, session: Uuid, key: &str) -> Result<(), MemoryError> {
        Ok(self
            .service
            .call(self.request(Method::DELETE, &state_path(session, key)))
            .await?)
    }

    // -- facts ------------------------------------------------------------------------------

    /// The user's current facts.
    pub async fn facts(&self, user: Uuid) -> Result<Vec<Fact>, MemoryError> {
        self.facts_with(user, FactsQuery::default()).await
    }

    /// The user's facts, superseded and forgotten ones too when `query.history`.
    pub async fn facts_with(
        &self,
        user: Uuid,
        query: FactsQuery,
    ) -> Result<Vec<Fact>, MemoryError> {
        self.json(
            self.request(Method::GET, &format!("/v1/users/{user}/facts"))
                .query(&query),
        )
        .await
    }

    /// Remembers a fact an agent learnt, from the message it came from.
    pub async fn add_fact(
        &self,
        user: Uuid,
        content: &str,
        agent: &str,
        source_message: Option<Uuid>,
    ) -> Result<Fact, MemoryError> {
        let fact = NewFact {
            content: content.to_owned(),
            agent_id: Some(agent.to_owned()),
            source_message_id: source_message,
        };
        self.new_fact(user, &fact).await
    }

    pub async fn new_fact(&self, user: Uuid, fact: &NewFact) -> Result<Fact, MemoryError> {
        self.json(
            self.request(Method::POST, &format!("/v1/users/{user}/facts"))
                .json(fact),
        )
        .await
    }

    /// The new fact; `Refused { status: 409 }` when `fact` is no longer current.
    pub async fn supersede(&self, fact: Uuid, with: &Supersede) -> Result<Fact, MemoryError> {
        self.json(
            self.request(Method::POST, &format!("/v1/facts/{fact}/supersede"))
                .json(with),
        )
        .await
    }

    /// Ends the fact's validity, audited with `reason`.
    pub async fn forget(&self, fact: Uuid, reason: &str) -> Result<Fact, MemoryError> {
        let forget = Forget {
            reason: reason.to_owned(),
        };
        self.json(
            self.request(Method::POST, &format!("/v1/facts/{fact}/forget"))
                .json(&forget),
        )
        .await
    }

    /// The chain of facts this one belongs to, oldest first.
    pub async fn fact_history(&self, fact: Uuid) -> Result<Vec<Fact>, MemoryError> {
        self.json(self.request(Method::GET, &format!("/v1/facts/{fact}/history")))
            .await
    }

    // -- documents --------------------------------------------------------------------------

    pub async fn add_document(
        &self,
        user: Uuid,
        document: &NewDocument,
    ) -> Result<Document, MemoryError> {
        self.json(
            self.request(Method::POST, &format!("/v1/users/{user}/documents"))
                .json(document),
        )
        .await
    }

    /// The user's documents with their index state, newest first.
    pub async fn documents(&self, user: Uuid) -> Result<Vec<Document>, MemoryError> {
        self.json(self.request(Method::GET, &format!("/v1/users/{user}/documents")))
            .await
    }

    pub async fn document(&self, document: Uuid) -> Result<DocumentWithChunks, MemoryError> {
        self.json(self.request(Method::GET, &format!("/v1/documents/{document}")))
            .await
    }

    // -- search -----------------------------------------------------------------------------

    /// Hybrid search (words, meaning and the graph) over the user's messages, facts and
    /// document chunks.
    pub async fn search(
        &self,
        user: Uuid,
        query: &str,
        limit: u32,
    ) -> Result<Vec<Hit>, MemoryError> {
        let query = SearchQuery {
            user_id: user,
            q: query.to_owned(),
            limit: i64::from(limit),
        };
        self.json(self.request(Method::GET, "/v1/search").query(&query))
            .await
    }

    // -- the knowledge graph ----------------------------------------------------------------

    /// Stores `subject —relation→ object` (each `(kind, name)`) in the user's graph
    /// (idempotent).
    pub async fn relate(
        &self,
        user: Uuid,
        subject: (&str, &str),
        relation: &str,
        object: (&str, &str),
        source_message: Option<Uuid>,
    ) -> Result<Related, MemoryError> {
        let relation = NewRelation {
            user_id: Some(user),
            from: NodeRef::new(subject.0, subject.1),
            relation: relation.to_owned(),
            to: NodeRef::new(object.0, object.1),
            source_message_id: source_message,
        };
        self.add_relation(&relation).await
    }

    pub async fn add_relation(&self, relation: &NewRelation) -> Result<Related, MemoryError> {
        self.json(
            self.request(Method::POST, "/v1/graph/relations")
                .json(relation),
        )
        .await
    }

    /// The relation no longer holds (it is kept, ended); ending it again changes nothing.
    pub async fn end_relation(&self, edge: Uuid, reason: &str) -> Result<Edge, MemoryError> {
        let end = End {
            reason: reason.to_owned(),
        };
        self.json(
            self.request(Method::POST, &format!("/v1/graph/relations/{edge}/end"))
                .json(&end),
        )
        .await
    }

    pub async fn find_nodes(&self, query: &FindQuery) -> Result<Vec<Node>, MemoryError> {
        self.json(self.request(Method::GET, "/v1/graph/nodes").query(query))
            .await
    }

    pub async fn neighbourhood(
        &self,
        node: Uuid,
        query: AroundQuery,
    ) -> Result<Subgraph, MemoryError> {
        self.json(
            self.request(
                Method::GET,
                &format!("/v1/graph/nodes/{node}/neighbourhood"),
            )
            .query(&query),
        )
        .await
    }

    /// A shortest chain between two nodes, or `None`.
    pub async fn path(&self, query: &PathQuery) -> Result<Option<Path>, MemoryError> {
        self.json(self.request(Method::GET, "/v1/graph/path").query(query))
            .await
    }

    /// What the user's graph holds around the best match for `name`: `None` when nothing
    /// matches.
    pub async fn explore(&self, user: Uuid, name: &str) -> Result<Option<Subgraph>, MemoryError> {
        let found = self
            .find_nodes(&FindQuery {
                user_id: Some(user),
                q: name.to_owned(),
                limit: 1,
            })
            .await?;
        let Some(node) = found.first() else {
            return Ok(None);
        };
        let around = AroundQuery {
            depth: 2,
            limit: 50,
        };
        Ok(Some(self.neighbourhood(node.id, around).await?))
    }

    // -- usage, audit, index ----------------------------------------------------------------

    pub async fn usage(&self, query: &UsageQuery) -> Result<Usage, MemoryError> {
        self.json(self.request(Method::GET, "/v1/usage").query(query))
            .await
    }

    /// The audit log, newest first (administrators only).
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, MemoryError> {
        self.json(self.request(Method::GET, "/v1/audit").query(query))
            .await
    }

    pub async fn index_status(&self) -> Result<IndexStatus, MemoryError> {
        self.json(self.request(Method::GET, "/v1/index/status"))
            .await
    }

    /// Failed items back to pending, now (administrators only).
    pub async fn retry_index(&self) -> Result<Requeued, MemoryError> {
        self.json(self.request(Method::POST, "/v1/index/retry"))
            .await
    }
}

/// A state key is the caller's text: it stays one path segment whatever it holds.
fn state_path(session: Uuid, key: &str) -> String {
    format!("/v1/sessions/{session}/state/{}", segment(key))
}
