//! Relaywatch's REST API: an actix-web application with settings, authentication, one error table and an OpenAPI
//! document generated from the handlers.
//!
//! Handlers are thin: they take an [`auth::Auth`] extractor that states the scope they need, parse the request into
//! domain types and call the store. SQL lives in `relaywatch-store`, never here.

pub mod auth;
pub mod error;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod statsd;

pub use settings::Settings;
pub use startup::Application;
