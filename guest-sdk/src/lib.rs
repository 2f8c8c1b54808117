//! Write Switchboard plugins in Rust.
//!
//! A plugin is a WebAssembly component of the `switchboard:plugin` world
//! (the WIT package in `wit/`). This crate wraps the generated bindings:
//! implement [`Plugin`] — only `manifest` is required, every other method
//! has a harmless default — and export it with [`export_plugin!`]. The
//! manifest tells the host which walkers, guards and socket paths to route
//! here; the defaults only answer calls the manifest did not ask for.
//!
//! ```no_run
//! use serde_json::json;
//! use switchboard_guest::{
//!     error, export_plugin, notify_channels, reply, walker, ErrorCode, GuardRequest, Manifest,
//!     Operation, Plugin, PluginError, Verdict, WalkerReply, WalkerRequest,
//! };
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn manifest() -> Manifest {
//!         Manifest::new("hello", "1.0.0")
//!             .walker(walker("hello").anonymous()) // anyone may call it
//!             .walker(walker("shout")) // authenticated callers only
//!             .guard("secret:*", &[Operation::Subscribe])
//!     }
//!
//!     fn walker(request: WalkerRequest) -> Result<WalkerReply, PluginError> {
//!         let context = switchboard_guest::json(&request.context);
//!         match request.walker.as_str() {
//!             "hello" => Ok(reply(json!({"hello": context["name"]}))),
//!             "shout" => {
//!                 let channel = context["channel"].as_str();
//!                 let channel = channel.ok_or_else(|| error(ErrorCode::BadRequest, "no channel"))?;
//!                 let shout = json!({"type": "shout", "text": context["text"]});
//!                 let delivered = notify_channels(&[channel], &shout)?;
//!                 Ok(reply(json!({"delivered": delivered})))
//!             }
//!             other => Err(error(ErrorCode::NotFound, other)),
//!         }
//!     }
//!
//!     fn guard(request: GuardRequest) -> Verdict {
//!         match request.identity.role.as_deref() {
//!             Some("admin") => Verdict::Allow,
//!             _ => Verdict::Deny("admins only".into()),
//!         }
//!     }
//! }
//!
//! export_plugin!(Hello);
//! ```
//!
//! Build for `wasm32-unknown-unknown` and turn the module into a component
//! (`wasm-tools component new`); `scripts/build-guests.sh` does both for
//! every crate under `plugins/`.
#![deny(missing_docs)]

mod helpers;

pub use helpers::{
    broadcast, error, json, notify_channels, notify_clients, notify_self, notify_self_binary,
    notify_self_text, notify_users, now_ms, publish, reply, walker,
};

/// The generated bindings (types, host functions, export traits).
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "switchboard_guest::bindings",
    });
}

/// Host functions as generated, taking JSON text (see the crate-root
/// wrappers for `serde_json::Value` versions).
pub use bindings::switchboard::plugin::host;
pub use bindings::switchboard::plugin::types::{
    ChannelMessage, ErrorCode, GuardDecl, GuardRequest, Identity, Level, Manifest, Operation,
    PluginError, PresenceEvent, PresenceKind, SocketOpen, Transport, Transports, Verdict,
    WalkerDecl, WalkerReply, WalkerRequest,
};
pub use serde_json;

/// A plugin. Only [`Plugin::manifest`] is required; the manifest says which
/// of the other methods the host will call.
pub trait Plugin {
    /// What the plugin serves; read once per loaded version.
    fn manifest() -> Manifest;

    /// Runs a walker named in the manifest. The default answers `NOT_FOUND`.
    ///
    /// The host may run later calls — for any user — on the same instance,
    /// so statics can outlive a call: keep per-user state in the host's
    /// store or kv. Host calls made from here act as the calling client
    /// (its roles, guards and protected fields apply).
    ///
    /// # Errors
    /// Whatever the walker reports; the client sees it as an error frame.
    fn walker(request: WalkerRequest) -> Result<WalkerReply, PluginError> {
        Err(helpers::error(
            ErrorCode::NotFound,
            &format!("walker `{}` is not implemented", request.walker),
        ))
    }

    /// Decides a guarded operation. Allows by default.
    fn guard(_request: GuardRequest) -> Verdict {
        Verdict::Allow
    }

    /// A connection opened on one of the manifest's socket paths.
    ///
    /// # Errors
    /// Refuses the connection.
    fn socket_open(_conn: SocketOpen) -> Result<(), PluginError> {
        Ok(())
    }

    /// A client frame on a scripted socket.
    ///
    /// # Errors
    /// Reported to the client as an error frame.
    fn socket_message(_conn_id: String, _message: String) -> Result<(), PluginError> {
        Ok(())
    }

    /// A binary frame on a scripted socket, as the client sent it.
    /// Ignored by default.
    ///
    /// # Errors
    /// Reported to the client as an error frame.
    fn socket_binary(_conn_id: String, _data: Vec<u8>) -> Result<(), PluginError> {
        Ok(())
    }

    /// A broadcast on a channel the connection subscribed to.
    ///
    /// # Errors
    /// Reported to the client as an error frame.
    fn socket_channel(_conn_id: String, _message: ChannelMessage) -> Result<(), PluginError> {
        Ok(())
    }

    /// A presence change on a channel the connection watches.
    ///
    /// # Errors
    /// Reported to the client as an error frame.
    fn socket_presence(_conn_id: String, _event: PresenceEvent) -> Result<(), PluginError> {
        Ok(())
    }

    /// The connection closed.
    fn socket_close(_conn_id: String) {}
}

/// Exports a [`Plugin`] implementation as the component's `meta`, `walker`,
/// `guard` and `socket` exports. Use it once per crate, with a type name.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ident) => {
        impl $crate::bindings::exports::switchboard::plugin::meta::Guest for $ty {
            fn describe() -> $crate::Manifest {
                <$ty as $crate::Plugin>::manifest()
            }
        }
        impl $crate::bindings::exports::switchboard::plugin::walker::Guest for $ty {
            fn call(
                request: $crate::WalkerRequest,
            ) -> Result<$crate::WalkerReply, $crate::PluginError> {
                <$ty as $crate::Plugin>::walker(request)
            }
        }
        impl $crate::bindings::exports::switchboard::plugin::guard::Guest for $ty {
            fn check(request: $crate::GuardRequest) -> $crate::Verdict {
                <$ty as $crate::Plugin>::guard(request)
            }
        }
        impl $crate::bindings::exports::switchboard::plugin::socket::Guest for $ty {
            fn on_open(conn: $crate::SocketOpen) -> Result<(), $crate::PluginError> {
                <$ty as $crate::Plugin>::socket_open(conn)
            }
            fn on_message(conn_id: String, message: String) -> Result<(), $crate::PluginError> {
                <$ty as $crate::Plugin>::socket_message(conn_id, message)
            }
            fn on_binary(conn_id: String, data: Vec<u8>) -> Result<(), $crate::PluginError> {
                <$ty as $crate::Plugin>::socket_binary(conn_id, data)
            }
            fn on_channel(
                conn_id: String,
                message: $crate::ChannelMessage,
            ) -> Result<(), $crate::PluginError> {
                <$ty as $crate::Plugin>::socket_channel(conn_id, message)
            }
            fn on_presence(
                conn_id: String,
                event: $crate::PresenceEvent,
            ) -> Result<(), $crate::PluginError> {
                <$ty as $crate::Plugin>::socket_presence(conn_id, event)
            }
            fn on_close(conn_id: String) {
                <$ty as $crate::Plugin>::socket_close(conn_id)
            }
        }
        $crate::bindings::export!($ty with_types_in $crate::bindings);
    };
}
