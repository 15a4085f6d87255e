//! Vocabulary that every Brain crate and the portal's browser code share, without pulling in
//! any server dependency: the catalogue of error codes ([`Code`]).

mod code;

pub use code::Code;
