//! One module per page of SPEC §5; each holds its server functions (the page's calls to the
//! gateway) next to its view.

pub mod agent;
pub mod agents;
pub mod audit;
pub mod chat;
pub mod connector;
pub mod connectors;
pub mod crew;
pub mod crews;
pub mod dashboard;
pub mod health;
pub mod integrations;
pub mod login;
pub mod task;
pub mod tasks;
