//! echo: a scripted socket at `/echo` that sends every frame back as it
//! came — text as text, binary as binary. It is the target of the
//! Autobahn|Testsuite runs (`../shared/peers/ab/run.sh ws://host/echo`)
//! and of the binary-frame tests.

use switchboard_guest::{
    export_plugin, notify_self_binary, notify_self_text, Manifest, Plugin, PluginError,
};

struct Echo;

impl Plugin for Echo {
    fn manifest() -> Manifest {
        Manifest::new("echo", "1.0.0").socket("/echo")
    }

    fn socket_message(_conn_id: String, message: String) -> Result<(), PluginError> {
        notify_self_text(&message)
    }

    fn socket_binary(_conn_id: String, data: Vec<u8>) -> Result<(), PluginError> {
        notify_self_binary(&data)
    }
}

export_plugin!(Echo);
