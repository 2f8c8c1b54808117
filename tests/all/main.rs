//! End-to-end tests: one module per area, all over real sockets.

mod api;
mod auth;
mod authz;
mod channels;
mod cluster;
mod dialects;
mod durability;
mod errors;
mod guards;
mod history;
mod hostile;
mod http;
mod limits;
mod listeners;
mod polyglot;
mod presence;
mod providers;
mod reload;
mod resources;
mod sandbox;
mod scaffold;
mod sdk;
mod shared_store;
mod sockets;
mod tokens;
mod walkers;
