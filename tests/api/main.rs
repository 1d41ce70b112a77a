//! API tests: each test spawns Relaywatch on port 0 with its own database (SQLite, or PostgreSQL when
//! `RELAYWATCH_TEST_DATABASE_URL` is set) and talks to it over HTTP.

mod alerts;
mod api_keys;
mod audits;
mod auth;
mod auth_matrix;
mod blocklists;
mod errors;
mod health;
mod history;
mod ingest;
mod isolation;
mod openapi;
mod providers;
mod sending_domains;
mod sending_ips;
mod storage;
mod tenants;
mod users;
mod webhook_delivery;
mod webhooks;
