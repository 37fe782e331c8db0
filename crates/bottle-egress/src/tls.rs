//! TLS plumbing: the one crypto provider (ring), PEM reading and the upstream client config.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::EgressError;

/// The crypto provider every TLS object of the egress uses, passed explicitly so that no
/// process-wide default (or a second provider in the graph) can change it.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM document.
pub(crate) fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))
}

/// The roots upstream certificates are verified against: the Mozilla roots compiled in via
/// `webpki-roots`, plus `extra` PEM files. There is deliberately no way to disable this.
pub(crate) fn root_store(extra: &[PathBuf]) -> Result<RootCertStore, EgressError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in extra {
        let pem = std::fs::read(path).map_err(|source| EgressError::Io {
            path: path.clone(),
            source,
        })?;
        let certs = certs_from_pem(&pem).map_err(|message| EgressError::Tls {
            message: format!("{}: {message}", path.display()),
        })?;
        if certs.is_empty() {
            return Err(EgressError::Tls {
                message: format!("{}: no certificate found", path.display()),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| EgressError::Tls {
                message: format!("{}: {e}", path.display()),
            })?;
        }
    }
    Ok(roots)
}

/// A verifying client config over `roots` (ALPN is set by the connector).
pub(crate) fn client_config(roots: RootCertStore) -> Result<ClientConfig, EgressError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| EgressError::Tls {
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
