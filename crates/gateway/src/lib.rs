//! The ConvertIQ gateway binary's library: configuration, command line, database
//! set-up and the application itself. `main.rs` only calls [`cli::run`]; tests start
//! the very same [`Application`].

pub mod allocator;
pub mod app;
pub mod cli;
pub mod database;
pub mod retention;
pub mod webhook_key;

pub use app::{Application, Settings};
