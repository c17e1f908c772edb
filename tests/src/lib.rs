//! Placeholder: the simulator lands with its own issue.
#![forbid(unsafe_code)]
