//! Authorization: the one policy every operation passes before it touches
//! the bus or the store, whichever dialect, scripted socket, HTTP call or
//! plugin host call asked for it.
//!
//! The order is always the same: identity (verified by [`crate::auth`],
//! expiry enforced by the session) → role lists from configuration →
//! plugin guards (allow / deny / filter / patch) → protected-field rules.
//! Each operation kind has one function here, so a rule written once holds
//! on every path:
//! - channels: [`Policy::read_channel`] (subscribe, presence join and list)
//!   and [`Policy::write_channel`] (publish, sends to channels, walker
//!   notifications to channels); a channel named like a resource takes that
//!   resource's role list, and writing to it counts as creating in it;
//! - targeted sends: [`Policy::send_direct`] (anonymous senders refused
//!   unless `auth.anonymous_send`);
//! - resources: [`Policy::resource`] (role list, guards for the operation —
//!   plus the read guards for by-id writes — and the client filter checked
//!   against protected fields);
//! - connections and Daptin topics.
//!
//! Guards are reached through the [`Guards`] trait, so this module depends
//! on nothing above it; an [`Access`] says whether a call acts as a client
//! (the default for plugins too) or with full rights.

mod frames;
mod guards;
mod resource;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock, Weak};

use serde_json::{json, Map, Value};

pub use frames::check_client_payload;
pub use guards::{GuardError, GuardOutcome, GuardQuery, Guards, Operation};
pub use resource::{protected_conflict, Grant};

use crate::auth::Identity;
use crate::bus::{Filter, FilterLimits};
use crate::config::{AuthConfig, ResourceConfig};
use crate::error::{ClientError, ErrorCode};
use crate::quota::ClientKey;

/// The role that may do everything the policy itself decides (destroying
/// others' Daptin topics). Guards decide the rest.
pub const ADMIN_ROLE: &str = "admin";

/// Who acts: a verified identity and, for socket clients, the connection.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The identity.
    pub identity: Arc<Identity>,
    /// The connection, when there is one (HTTP calls have none).
    pub conn: Option<Arc<str>>,
    /// The client's address, when known: anonymous clients' budgets are
    /// keyed by it.
    pub peer: Option<IpAddr>,
}

impl Actor {
    /// An actor.
    pub fn new(identity: Arc<Identity>, conn: Option<Arc<str>>) -> Self {
        Self {
            identity,
            conn,
            peer: None,
        }
    }

    /// The same actor, connecting from `peer`.
    pub fn with_peer(mut self, peer: Option<IpAddr>) -> Self {
        self.peer = peer;
        self
    }

    /// Nobody in particular: what a call without a client acts as.
    pub fn anonymous() -> Self {
        Self::new(Identity::anonymous().into_shared(), None)
    }

    /// Whose budgets this actor spends.
    pub fn key(&self) -> ClientKey {
        ClientKey::of(&self.identity, self.peer)
    }
}

/// How a call is checked.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    /// As this client: role lists, guards, protected fields.
    Client(&'a Actor),
    /// As this client, without asking guards: a guard's own host calls
    /// (asking the guards again from inside a guard would recurse).
    Guardless(&'a Actor),
    /// Full rights: a plugin the operator configured trusted.
    Trusted,
}

impl<'a> Access<'a> {
    /// The client acted for, unless trusted.
    pub fn actor(&self) -> Option<&'a Actor> {
        match self {
            Access::Client(a) | Access::Guardless(a) => Some(a),
            Access::Trusted => None,
        }
    }

    /// Whether the call has full rights.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Access::Trusted)
    }
}

/// The policy: configuration plus a late-bound handle on the guards.
pub struct Policy {
    resources: BTreeMap<String, ResourceConfig>,
    anonymous_send: bool,
    filters: FilterLimits,
    /// Set once the plugin host exists (it is built after the store and
    /// the resources it serves). Weak: the plugin host reaches the policy
    /// too, and a strong link both ways would never be freed.
    guards: OnceLock<Weak<dyn Guards>>,
}

impl Policy {
    /// A policy over these resources, auth settings and filter bounds; no
    /// guards yet.
    pub fn new(
        resources: BTreeMap<String, ResourceConfig>,
        auth: &AuthConfig,
        filters: FilterLimits,
    ) -> Self {
        Self {
            resources,
            anonymous_send: auth.anonymous_send,
            filters,
            guards: OnceLock::new(),
        }
    }

    /// The bounds on client filters.
    pub fn filter_limits(&self) -> &FilterLimits {
        &self.filters
    }

    /// Binds the guards (once; later calls are ignored).
    pub fn set_guards(&self, guards: Weak<dyn Guards>) {
        let _ = self.guards.set(guards);
    }

    /// A resource's configuration.
    ///
    /// # Errors
    /// RESOURCE_NOT_FOUND when it is not configured.
    pub fn resource_config(&self, resource: &str) -> Result<&ResourceConfig, ClientError> {
        self.resources.get(resource).ok_or_else(|| {
            ClientError::new(
                ErrorCode::ResourceNotFound,
                format!("resource `{resource}` is not configured"),
            )
        })
    }

    /// Whether `name` is a configured resource.
    pub fn is_resource(&self, name: &str) -> bool {
        self.resources.contains_key(name)
    }

    /// The configured resources' names, sorted.
    pub fn resource_names(&self) -> impl Iterator<Item = &String> {
        self.resources.keys()
    }

    /// Asks the guards, when the access mode asks guards at all.
    ///
    /// # Errors
    /// A guard denied or failed; FORBIDDEN too when the guards are gone
    /// (the server is shutting down): fail closed.
    pub async fn guard(
        &self,
        access: &Access<'_>,
        op: Operation,
        target: &str,
        payload: &Value,
    ) -> Result<GuardOutcome, ClientError> {
        let Access::Client(actor) = access else {
            return Ok(GuardOutcome::default());
        };
        let Some(guards) = self.guards.get() else {
            return Ok(GuardOutcome::default());
        };
        let Some(guards) = guards.upgrade() else {
            return Err(ClientError::forbidden("guards are unavailable"));
        };
        let query = GuardQuery {
            op,
            target,
            actor,
            payload,
        };
        Ok(guards.check(query).await?)
    }

    /// The role-list check of a resource (skipped with full rights).
    ///
    /// # Errors
    /// RESOURCE_NOT_FOUND, or FORBIDDEN naming the roles.
    pub fn roles(
        &self,
        access: &Access<'_>,
        resource: &str,
    ) -> Result<&ResourceConfig, ClientError> {
        let config = self.resource_config(resource)?;
        let Some(actor) = access.actor() else {
            return Ok(config);
        };
        let roles = &actor.identity.roles;
        if !config.auth.is_empty() && !roles.iter().any(|r| config.auth.contains(r)) {
            return Err(ClientError::forbidden(format!(
                "resource `{resource}` requires one of the roles {:?}",
                config.auth
            )));
        }
        Ok(config)
    }

    /// A connection to `path`: the connect guards see the query string as
    /// an object (without the token).
    ///
    /// # Errors
    /// A connect guard refused.
    pub async fn connect(
        &self,
        actor: &Actor,
        path: &str,
        query: &[(String, String)],
    ) -> Result<(), ClientError> {
        let payload = Value::Object(
            query
                .iter()
                .filter(|(k, _)| k != "token" && k != "apiKey")
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        );
        self.guard(&Access::Client(actor), Operation::Connect, path, &payload)
            .await
            .map(|_| ())
    }

    /// Reading a channel: subscribing (`payload` is the filter) or its
    /// presence (`{"presence": "join" | "list", ...}`). Returns the filter
    /// to deliver with: the client's AND the guards'.
    ///
    /// # Errors
    /// A bad filter, a resource's role list, or a guard.
    pub async fn read_channel(
        &self,
        access: &Access<'_>,
        channel: &str,
        client_filter: &Value,
        payload: &Value,
    ) -> Result<Option<Filter>, ClientError> {
        let client = self.filters.compile(client_filter)?;
        if self.is_resource(channel) {
            self.roles(access, channel)?;
        }
        let guard = self
            .guard(access, Operation::Subscribe, channel, payload)
            .await?;
        Ok(self.filters.check(Filter::and(client, guard.filter))?)
    }

    /// Writing to a channel (a publish, a send to it, a plugin's notify or
    /// broadcast). A channel named like a resource is written as the
    /// resource (its role list, its create guards: as s3db.js, such a
    /// publish reaches the resource's subscribers). Returns the data to
    /// deliver, with the guards' patches merged in.
    ///
    /// # Errors
    /// A role list or guard refused.
    pub async fn write_channel(
        &self,
        access: &Access<'_>,
        channel: &str,
        data: &Value,
    ) -> Result<Value, ClientError> {
        let mut data = data.clone();
        if self.is_resource(channel) {
            self.roles(access, channel)?;
            let guard = self
                .guard(access, Operation::Create, channel, &data)
                .await?;
            data = patched(data, guard.patch);
            if guard.filter.is_some_and(|f| !f.matches(&data)) {
                return Err(ClientError::forbidden(format!(
                    "this message may not be published to resource `{channel}`"
                )));
            }
        }
        let guard = self
            .guard(access, Operation::Publish, channel, &data)
            .await?;
        Ok(patched(data, guard.patch))
    }

    /// A send to users and client ids. Anonymous senders are refused unless
    /// `auth.anonymous_send`; the guards on `direct` decide the rest (they
    /// see `{"users", "clients", "data"}`). Returns the data to deliver.
    ///
    /// # Errors
    /// FORBIDDEN.
    pub async fn send_direct(
        &self,
        access: &Access<'_>,
        users: &[String],
        clients: &[String],
        data: &Value,
    ) -> Result<Value, ClientError> {
        if !self.may_send_direct(access) {
            return Err(ClientError::forbidden(
                "anonymous clients may not send to users or clients (auth.anonymous_send)",
            ));
        }
        let payload = json!({"users": users, "clients": clients, "data": data});
        let guard = self
            .guard(access, Operation::Send, "direct", &payload)
            .await?;
        Ok(patched(data.clone(), guard.patch))
    }

    /// Whether the anonymous-send rule lets this caller send to users and
    /// clients; also whether it may see other connections' ids (in presence
    /// lists and events): ids are only useful for messaging them.
    pub fn may_send_direct(&self, access: &Access<'_>) -> bool {
        access
            .actor()
            .is_none_or(|a| self.anonymous_send || !a.identity.is_anonymous())
    }

    /// Whether `actor` may destroy a Daptin topic created by `creator_user`
    /// (or, for an anonymous creator, by connection `creator_conn`): its
    /// creator or an admin.
    ///
    /// # Errors
    /// FORBIDDEN.
    pub fn destroy_topic(
        &self,
        actor: &Actor,
        name: &str,
        creator_user: Option<&str>,
        creator_conn: &str,
    ) -> Result<(), ClientError> {
        let identity = &actor.identity;
        let creator = match creator_user {
            Some(user) => identity.user_id.as_deref() == Some(user),
            None => actor.conn.as_deref() == Some(creator_conn),
        };
        if creator || identity.has_role(ADMIN_ROLE) {
            Ok(())
        } else {
            Err(ClientError::forbidden(format!(
                "only the creator of topic `{name}` or an admin may destroy it"
            )))
        }
    }
}

/// `data` with a guard's patch merged in (objects only: a patch cannot
/// apply to a scalar payload).
pub fn patched(data: Value, patch: Map<String, Value>) -> Value {
    match data {
        Value::Object(mut map) if !patch.is_empty() => {
            map.extend(patch);
            Value::Object(map)
        }
        other => other,
    }
}
