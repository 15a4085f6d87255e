//! The automation domain: rules (a trigger, a condition and steps, with templated arguments)
//! and crews (agents working a list of tasks in order or under a manager), as the API accepts
//! them, validates them and stores them.
//!
//! Invariant: nothing here knows Temporal or the actor tree; running rules and crews is the
//! `tasks` crate's job.

pub mod crews;
pub mod rules;
