//! ftpwatch: watches FTP traffic, follows every transfer to its final reply, and ties
//! each 426 to what happened to the transfer's data connection.
//!
//! Data moves one way: `capture` → `decode` → `flow` → `ftp` (the engine) → `sink`,
//! glued by `pipeline`. The engine (`ftp`) imports nothing else of this crate.

pub mod capture;
pub mod cli;
pub mod decode;
pub mod explain;
pub mod flow;
pub mod ftp;
pub mod fuzzing;
pub mod live;
pub mod pipeline;
pub mod read;
pub mod sink;
pub mod synth;
