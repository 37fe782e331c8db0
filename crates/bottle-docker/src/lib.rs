//! bottle-docker
