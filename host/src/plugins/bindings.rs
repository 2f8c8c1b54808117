//! Rust bindings for the `switchboard:plugin` world, generated from `wit/`,
//! and the conversions between the WIT's types and the host's own.
//!
//! Exports are async: calls run on the async threads as fibers that yield
//! at every epoch tick (see [`super::loaded`]), rather than being handed to
//! a blocking thread and back. Imports that consult the policy (guards are
//! plugin calls themselves) or the store (which commits to disk) are async.
#![allow(missing_docs, unreachable_pub)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: {
        "switchboard:plugin/host.notify-users": async,
        "switchboard:plugin/host.notify-channels": async,
        "switchboard:plugin/host.notify-clients": async,
        "switchboard:plugin/host.publish": async,
        "switchboard:plugin/host.channel-subscribe": async,
        "switchboard:plugin/host.channel-broadcast": async,
        "switchboard:plugin/host.presence-join": async,
        "switchboard:plugin/host.presence-list": async,
        "switchboard:plugin/host.store-get": async,
        "switchboard:plugin/host.store-list": async,
        "switchboard:plugin/host.store-insert": async,
        "switchboard:plugin/host.store-update": async,
        "switchboard:plugin/host.store-delete": async,
    },
    exports: { default: async },
});

pub use self::switchboard::plugin::host;
pub use self::switchboard::plugin::types;

use crate::error::ErrorCode as Code;
use types::ErrorCode as Wit;

/// Generates both conversions from one list, so the two enums cannot drift
/// apart silently (and the test below checks every host code round-trips).
macro_rules! codes {
    ($($name:ident),* $(,)?) => {
        impl From<Wit> for Code {
            fn from(code: Wit) -> Self {
                match code { $(Wit::$name => Code::$name,)* }
            }
        }
        impl From<Code> for Wit {
            fn from(code: Code) -> Self {
                match code { $(Code::$name => Wit::$name,)* }
            }
        }
    };
}

codes!(
    InvalidJson,
    UnknownMessageType,
    BadRequest,
    ResourceNotFound,
    NotFound,
    Forbidden,
    RateLimitExceeded,
    InternalError,
    PayloadTooLarge,
    Unauthorized,
    PluginError,
    Timeout,
    Conflict,
    TokenExpired,
    Unavailable,
);

impl From<crate::policy::Operation> for types::Operation {
    fn from(op: crate::policy::Operation) -> Self {
        use crate::policy::Operation as O;
        match op {
            O::Connect => Self::Connect,
            O::Subscribe => Self::Subscribe,
            O::Publish => Self::Publish,
            O::Send => Self::Send,
            O::Get => Self::Get,
            O::List => Self::List,
            O::Create => Self::Create,
            O::Update => Self::Update,
            O::Delete => Self::Delete,
        }
    }
}

impl From<crate::error::ClientError> for types::PluginError {
    fn from(e: crate::error::ClientError) -> Self {
        Self {
            code: e.code.into(),
            message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Code, Wit};

    #[test]
    fn every_error_code_crosses_the_wit_and_back() {
        for code in Code::ALL {
            assert_eq!(Code::from(Wit::from(code)), code);
        }
    }
}
