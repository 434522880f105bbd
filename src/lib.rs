//! ftpwatch: watches FTP traffic, follows every transfer to its final reply, and ties
//! each 426 to what happened to the transfer's data connection.
//!
//! Data moves one way: `capture` → `decode` → `flow` → `ftp` (the engine) → `sink`.
//! See DESIGN.md in the shared folder and the README for the shape.

pub mod capture;
pub mod decode;
pub mod ftp;
pub mod synth;
