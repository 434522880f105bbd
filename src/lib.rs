//! ftpwatch: watches FTP traffic, follows every transfer to its final reply, and ties
//! each 426 to what happened to the transfer's data connection.
//!
//! Data moves one way: `capture` → `decode` → `flow` → `ftp` (the engine) → `sink`,
//! glued by `pipeline`. The engine (`ftp`) imports nothing else of this crate. The
//! command line (`read`, `live`) is the binary's, not the library's.

pub mod capture;
pub mod decode;
pub mod flow;
pub mod ftp;
pub mod pipeline;
pub mod proxy;
pub mod sink;

pub use capture::{FileSource, Frame, FrameSource, FrameTime, Next};
pub use ftp::{Engine, Event};
pub use pipeline::{Pipeline, Settings};
pub use sink::{EventLog, EventSink, Metrics, Report};

/// Test kit: captures built by the project's own code, for tests and benchmarks.
#[doc(hidden)]
pub mod synth;

/// Fuzz entry points, for `fuzz/` and the corpus replay in `tests/fuzz_corpus.rs`.
#[doc(hidden)]
pub mod fuzzing;
