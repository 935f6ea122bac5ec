//! The `fs` toolbox's one integration test binary: the attacks it must stop
//! (`attacks`) and generated ones (`props`, property tests), each tool's behaviour against
//! the reference server's (`tools`), and the configuration, roots and policy around them
//! (`setup`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attacks;
mod common;
mod props;
mod setup;
mod tools;
