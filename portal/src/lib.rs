//! The portal: Brain's web UI on :3003, a Leptos app rendered on the server and hydrated in
//! the browser. It is a client of the gateway and the auth service over their public HTTP
//! APIs — with the signed-in user's own token — never of the database.
//!
//! The server side (`ssr`) is [`router`]; the browser side (`hydrate`) is [`hydrate`], built
//! to WebAssembly by `cargo xtask` (`xtask/src/portal.rs`).

#![recursion_limit = "256"]

pub mod app;
pub mod charts;
pub mod model;
mod pages;
pub mod providers;
pub mod session;

#[cfg(feature = "ssr")]
mod api;
#[cfg(feature = "ssr")]
mod server;

#[cfg(feature = "ssr")]
pub use server::{PortalConfig, router};

/// The name of the browser bundle: `pkg/brain_portal.js` and `pkg/brain_portal_bg.wasm`
/// under the site root.
pub const BUNDLE_NAME: &str = "brain_portal";

/// The browser entry point: takes over the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
