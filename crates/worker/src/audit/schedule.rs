//! Scheduled and requested audit runs.
