//! Vocabulary that every Brain crate and the portal's browser code share, without pulling in
//! any server dependency: the catalogue of error codes ([`Code`]), roles and permissions
//! ([`access`]), and the statuses of tasks and their steps ([`status`]).

pub mod access;
mod code;
pub mod status;

pub use access::{Permission, Role, UnknownRole};
pub use code::Code;
