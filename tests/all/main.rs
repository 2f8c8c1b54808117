//! End-to-end tests: one module per area, all over real sockets.

mod auth;
mod channels;
mod errors;
mod http;
mod limits;
mod presence;
