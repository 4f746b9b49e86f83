//! Tests of the own-data loaders, on files they write themselves.
