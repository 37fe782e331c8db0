//! bottle-egress
