//! wsgid: host Python WSGI applications behind any front-end web server.
//!
//! The master (`master`) binds or inherits listeners and supervises worker processes; it never
//! initialises Python. In a worker (`worker`) a pool of Python threads takes turns at one mio
//! reactor that drives the sans-I/O codecs in `protocol`, and runs the application
//! (`python`) on environs built by `environ`, handing file responses to the front end
//! where configured (`offload`). `config` holds the settings both sides share;
//! `board` is the memory they share, where workers post how many connections they hold.

pub mod board;
pub mod config;
pub mod ctl;
pub mod environ;
pub mod inherit;
pub mod logging;
pub mod master;
pub mod offload;
pub mod protocol;
pub mod python;
pub mod worker;
