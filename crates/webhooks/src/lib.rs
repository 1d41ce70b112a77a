//! How Relaywatch talks to webhook receivers, shared by the API (which vets a URL when an endpoint is created or
//! changed) and the worker (which delivers):
//!
//! - [`sign`]: the Standard Webhooks signature scheme (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`);
//! - [`guard`]: the SSRF guard: resolve the host and refuse loopback, private, link-local, multicast, reserved and
//!   cloud-metadata addresses (IPv4 and IPv6, IPv4-mapped included) unless the installation allows the network;
//! - [`send`]: one POST to the addresses the guard vetted and nothing else (DNS is not asked again, so a name
//!   that changes its answer cannot redirect the request), no proxies, no redirects followed, bounded time;
//! - [`settings`]: the `[webhooks]` section of the configuration.

pub mod guard;
pub mod send;
pub mod settings;
pub mod sign;

pub use guard::{Guard, GuardError, Vetted};
pub use send::{Delivery, SendOutcome, Sender};
pub use settings::WebhookSettings;
