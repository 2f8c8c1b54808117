//! Role and tenant rules as a guard:
//! - a connection that names a tenant (`?tenant=<t>`) must hold the claim
//!   `tenant == <t>`;
//! - publishing to `admin:*` needs role `admin`;
//! - anything on `tenant:<t>:*` needs the claim `tenant == <t>` (admins pass);
//! - a non-admin with a `tenant` claim who subscribes (to any channel or
//!   resource) or lists gets a filter `{"tenant": <their tenant>}`, so only
//!   their tenant's messages and rows reach them — evaluated by the host per
//!   event, with no further call into this plugin.

use serde_json::json;
use switchboard_guest::{export_plugin, json, GuardRequest, Manifest, Operation, Plugin, Verdict};

struct Guard;

impl Plugin for Guard {
    fn manifest() -> Manifest {
        Manifest::new("guard", "1.0.0").guard(
            "*",
            &[
                Operation::Connect,
                Operation::Subscribe,
                Operation::Publish,
                Operation::Send,
                Operation::List,
            ],
        )
    }

    fn guard(request: GuardRequest) -> Verdict {
        let claims = json(&request.identity.claims);
        let admin = request.identity.role.as_deref() == Some("admin");
        let tenant = claims["tenant"].as_str();
        if request.operation == Operation::Connect {
            let wanted = json(&request.payload)["tenant"].as_str().map(str::to_owned);
            return match wanted {
                Some(t) if tenant != Some(t.as_str()) => {
                    Verdict::Deny(format!("not a member of tenant `{t}`"))
                }
                _ => Verdict::Allow,
            };
        }
        if request.operation == Operation::Publish && request.target.starts_with("admin:") && !admin
        {
            return Verdict::Deny("publishing to admin channels needs the admin role".into());
        }
        if let Some(rest) = request.target.strip_prefix("tenant:") {
            let owner = rest.split(':').next().unwrap_or_default();
            if !admin && tenant != Some(owner) {
                return Verdict::Deny(format!("channel belongs to tenant `{owner}`"));
            }
        }
        match (request.operation, tenant) {
            (Operation::Subscribe | Operation::List, Some(t)) if !admin => {
                Verdict::Filter(json!({"tenant": t}).to_string())
            }
            _ => Verdict::Allow,
        }
    }
}

export_plugin!(Guard);
