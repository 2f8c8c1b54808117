//! Write Switchboard plugins in Rust.
//!
//! A plugin is a WebAssembly component of the `switchboard:plugin` world
//! (the WIT package in `wit/`). This crate wraps the generated bindings:
//! implement [`Plugin`] — only `manifest` is required, every other method
//! has a harmless default — and export it with [`export_plugin!`].
//!
//! ```ignore
//! use switchboard_guest::{export_plugin, reply, walker, Manifest, Plugin, PluginError, WalkerReply, WalkerRequest};
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn manifest() -> Manifest {
//!         Manifest::new("hello", "1.0.0").walker(walker("hello"))
//!     }
//!
//!     fn walker(request: WalkerRequest) -> Result<WalkerReply, PluginError> {
//!         let context = switchboard_guest::json(&request.context);
//!         Ok(reply(serde_json::json!({"hello": context["name"]})))
//!     }
//! }
//!
//! export_plugin!(Hello);
//! ```
//!
//! Build for `wasm32-unknown-unknown` and turn the module into a component
//! (`wasm-tools component new`); `scripts/build-guests.sh` does both.
#![deny(missing_docs)]

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

pub use bindings::switchboard::plugin::host;
pub use bindings::switchboard::plugin::types::{
    ChannelMessage, GuardDecl, GuardRequest, Identity, Level, Manifest, Operation, PluginError, PresenceEvent,
    PresenceKind, SocketOpen, Transport, Transports, Verdict, WalkerDecl, WalkerReply, WalkerRequest,
};
pub use serde_json;

/// A plugin. Only [`Plugin::manifest`] is required; the manifest says which
/// of the other methods the host will call.
pub trait Plugin {
    /// What the plugin serves; read once per loaded version.
    fn manifest() -> Manifest;

    /// Runs a walker named in the manifest.
    ///
    /// # Errors
    /// Whatever the walker reports; the client sees it as an error frame.
    fn walker(request: WalkerRequest) -> Result<WalkerReply, PluginError> {
        Err(error("NOT_FOUND", &format!("walker `{}` is not implemented", request.walker)))
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

impl Manifest {
    /// A manifest with a name and version and nothing served yet.
    pub fn new(name: &str, version: &str) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            walkers: Vec::new(),
            guards: Vec::new(),
            sockets: Vec::new(),
        }
    }

    /// Adds a walker.
    pub fn walker(mut self, walker: WalkerDecl) -> Self {
        self.walkers.push(walker);
        self
    }

    /// Adds a guard on `target` (`*`, `prefix*` or an exact name) for `operations`.
    pub fn guard(mut self, target: &str, operations: &[Operation]) -> Self {
        self.guards.push(GuardDecl {
            target: target.into(),
            operations: operations.to_vec(),
        });
        self
    }

    /// Adds a scripted socket path.
    pub fn socket(mut self, path: &str) -> Self {
        self.sockets.push(path.into());
        self
    }
}

/// A walker served over websocket and HTTP.
pub fn walker(name: &str) -> WalkerDecl {
    WalkerDecl {
        name: name.into(),
        transports: Transports::WS | Transports::HTTP,
    }
}

/// A successful walker reply returning `value` (also reported once).
pub fn reply(value: serde_json::Value) -> WalkerReply {
    WalkerReply {
        status: 200,
        reports: vec![value.to_string()],
        returns: Some(value.to_string()),
    }
}

/// A plugin error.
pub fn error(code: &str, message: &str) -> PluginError {
    PluginError {
        code: code.into(),
        message: message.into(),
    }
}

/// Parses JSON text from the host (null when it is not JSON).
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// Exports a [`Plugin`] implementation as the component's exports.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ident) => {
        impl $crate::bindings::exports::switchboard::plugin::meta::Guest for $ty {
            fn describe() -> $crate::Manifest {
                <$ty as $crate::Plugin>::manifest()
            }
        }
        impl $crate::bindings::exports::switchboard::plugin::walker::Guest for $ty {
            fn call(request: $crate::WalkerRequest) -> Result<$crate::WalkerReply, $crate::PluginError> {
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
            fn on_channel(conn_id: String, message: $crate::ChannelMessage) -> Result<(), $crate::PluginError> {
                <$ty as $crate::Plugin>::socket_channel(conn_id, message)
            }
            fn on_presence(conn_id: String, event: $crate::PresenceEvent) -> Result<(), $crate::PluginError> {
                <$ty as $crate::Plugin>::socket_presence(conn_id, event)
            }
            fn on_close(conn_id: String) {
                <$ty as $crate::Plugin>::socket_close(conn_id)
            }
        }
        $crate::bindings::export!($ty with_types_in $crate::bindings);
    };
}
