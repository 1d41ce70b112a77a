//! Relaywatch's shared vocabulary.
//!
//! Types here are parsed, not validated: a [`DomainName`], [`EmailAddress`] or [`IpNetwork`] can only be built through its
//! `parse` constructor, so every other crate can trust a value it holds. No I/O happens in this crate.

pub mod auth;
pub mod events;
pub mod ids;
pub mod names;
pub mod network;
pub mod provider;
pub mod wire;

pub use auth::{Role, Scope, ScopeSet};
pub use ids::{ApiKeyId, SendingDomainId, SendingIpId, TenantId, UserId};
pub use names::{DkimSelector, DomainName, EmailAddress, NameError};
pub use network::{IpNetwork, NetworkError};
