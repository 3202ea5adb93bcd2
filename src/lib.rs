//! wsgid: host Python WSGI applications behind any front-end web server.
//!
//! The master (`master`) binds or inherits listeners and supervises worker processes; it never
//! initialises Python. A worker (`worker`) runs one mio I/O thread that drives the sans-I/O
//! codecs in `protocol`, and a pool of Python threads (`python`) that run the application on
//! environs built by `environ`. `config` holds the settings both sides share.

pub mod config;
pub mod environ;
pub mod master;
pub mod protocol;
pub mod python;
pub mod worker;
