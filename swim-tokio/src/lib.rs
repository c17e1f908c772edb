//! Placeholder: the driver lands with its own issue.
#![forbid(unsafe_code)]
