//! The seed systems' clients, unchanged but for host and port.

mod cross;
mod daptin;
mod jac;
mod rtbdp;
mod s3db;
