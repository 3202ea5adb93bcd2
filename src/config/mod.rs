//! Configuration: the command line (`cli`), the TOML file (`file`), the value syntaxes both
//! share (`values`), and their merge into validated `Settings` (`resolve`).
//!
//! `settings` is the contract between master and worker; everything else here runs in the
//! master only.

pub mod cli;
pub mod file;
pub mod files;
pub mod resolve;
pub mod settings;
pub mod values;

pub use settings::*;
