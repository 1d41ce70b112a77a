//! sea-orm entities, one per table. Rows are plain data; the repositories in the parent module give them meaning.

pub mod agent;
pub mod alert;
pub mod alert_rule;
pub mod api_key;
pub mod audit_run;
pub mod audit_schedule;
pub mod blocklist_check_request;
pub mod blocklist_event;
pub mod blocklist_listing;
pub mod blocklist_status;
pub mod blocklist_tenant_settings;
pub mod blocklist_zone_health;
pub mod delivery;
pub mod message;
pub mod observed_dkim_selector;
pub mod recipient_domain_provider;
pub mod sending_domain;
pub mod sending_ip;
pub mod tenant;
pub mod unrouted_sender;
pub mod user;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod webhook_event;
