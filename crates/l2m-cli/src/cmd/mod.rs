//! One module per command; `train` is the run flow `compare`, `reproduce` and `run` share.

pub mod compare;
pub mod data;
pub mod list;
pub mod predict;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod sweep;
pub mod train;
