//! Captures built by the project's own code, for tests and benchmarks: frames from
//! etherparse's packet builder, TCP connections that keep their sequence numbers
//! straight, and scripted FTP sessions on top.
//!
//! Nothing here is used by `read` or `live`; it is public so that integration tests and
//! the benchmark binary can share it.

pub mod frame;
pub mod ftp;
pub mod tcp;

pub use frame::Link;
pub use ftp::FtpSim;
pub use tcp::{Capture, Tcp};
