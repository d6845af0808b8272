//! In-process stand-ins for external services, for tests.

pub mod qdrant;
