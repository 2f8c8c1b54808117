//! Role and tenant rules as a guard — the s3db.js multi-tenant example, for
//! every resource and channel:
//! - a connection that names a tenant (`?tenant=<t>`) must hold the claim
//!   `tenant == <t>`;
//! - `admin:*` channels need role `admin` to read (subscribe, presence) and
//!   to write (publish, send);
//! - `tenant:<t>:*` channels need the claim `tenant == <t>` (admins without a
//!   tenant pass);
//! - a caller with a `tenant` claim is scoped to it: subscriptions, lists,
//!   gets, updates and deletes get the filter `{"tenant": <t>}` (evaluated by
//!   the host per event and per record, with no further call into this
//!   plugin; a record outside it is NOT_FOUND), and creates are stamped
//!   with the tenant;
//! - deleting a record needs role `admin` (within the tenant for a tenant
//!   admin), as in the s3db.js example.
//!
//! Callers without a tenant claim (and admins without one) are not scoped.

use serde_json::json;
use switchboard_guest::{export_plugin, json, GuardRequest, Manifest, Operation, Plugin, Verdict};

struct Guard;

impl Plugin for Guard {
    fn manifest() -> Manifest {
        Manifest::new("guard", "1.1.0").guard(
            "*",
            &[
                Operation::Connect,
                Operation::Subscribe,
                Operation::Publish,
                Operation::Send,
                Operation::Get,
                Operation::List,
                Operation::Create,
                Operation::Update,
                Operation::Delete,
            ],
        )
    }

    fn guard(request: GuardRequest) -> Verdict {
        let claims = json(&request.identity.claims);
        let admin = request.identity.role.as_deref() == Some("admin");
        let tenant = claims["tenant"].as_str();
        let op = request.operation;
        if op == Operation::Connect {
            let wanted = json(&request.payload)["tenant"].as_str().map(str::to_owned);
            return match wanted {
                Some(t) if tenant != Some(t.as_str()) => {
                    Verdict::Deny(format!("not a member of tenant `{t}`"))
                }
                _ => Verdict::Allow,
            };
        }
        if request.target.starts_with("admin:") && !admin {
            return Verdict::Deny("admin channels need the admin role".into());
        }
        if let Some(rest) = request.target.strip_prefix("tenant:") {
            let owner = rest.split(':').next().unwrap_or_default();
            let global_admin = admin && tenant.is_none();
            if !global_admin && tenant != Some(owner) {
                return Verdict::Deny(format!("channel belongs to tenant `{owner}`"));
            }
        }
        if op == Operation::Delete && !admin {
            return Verdict::Deny("deleting needs the admin role".into());
        }
        let Some(t) = tenant else {
            return Verdict::Allow;
        };
        match op {
            Operation::Create => Verdict::Patch(json!({"tenant": t}).to_string()),
            Operation::Subscribe
            | Operation::Get
            | Operation::List
            | Operation::Update
            | Operation::Delete => Verdict::Filter(json!({"tenant": t}).to_string()),
            _ => Verdict::Allow,
        }
    }
}

export_plugin!(Guard);
