//! bottle-core
