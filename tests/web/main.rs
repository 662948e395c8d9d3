//! The web pages against the real router over real HTTP on a temporary
//! SQLite file: plain HTTP checks of sign-in, sessions, form tokens and
//! headers; the `login-link` command; and headless Chromium driving the
//! pages as a person would (skipped, saying so, where it is missing).

mod browser;
mod cli;
mod harness;
mod http;
#[path = "../support/mod.rs"]
mod support;
