//! The interception CA and the per-host leaf certificates it mints.
//!
//! The CA is ECDSA P-256 with a Subject Key Identifier, `keyUsage` (certificate and CRL
//! signing, digital signature) and a critical `basicConstraints` with `pathlen: 0`. Leaves carry
//! the host as both SAN and CN, an Authority Key Identifier (Python 3.13's strict verification
//! rejects leaves without one), `serverAuth`, a random serial, their own key and a short life.
//! These are exactly the properties `openssl verify -x509_strict` checks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::EgressError;

/// How long a CA minted by [`CertificateAuthority::generate`] is valid: long enough for a
/// bottle's life (bottles can be resumed for weeks), short enough that a leaked per-bottle CA
/// soon stops mattering.
pub const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);

/// How long a leaf is valid. Leaves are re-minted before they expire, so a long-running proxy
/// never serves an expired one.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// Backdating of `notBefore`, so a client whose clock is a little behind accepts new certs.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// A leaf is re-minted when less than this remains of its life.
const LEAF_RENEW_MARGIN: Duration = Duration::from_secs(3600);

/// An ECDSA P-256 certificate authority that signs the leaves presented to the proxy's clients.
///
/// Mint one with [`generate`](Self::generate) (the Docker backend does this on the host at
/// launch, one CA per bottle) or load one with [`from_pem`](Self::from_pem).
///
/// ```
/// let ca = bottle_egress::CertificateAuthority::generate()?;
/// assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// assert!(ca.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
/// let again = bottle_egress::CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem())?;
/// assert_eq!(again.cert_pem(), ca.cert_pem());
/// # Ok::<(), bottle_egress::EgressError>(())
/// ```
pub struct CertificateAuthority {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CertificateAuthority")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Mint a new CA named "bottle-egress CA", valid for [`DEFAULT_CA_VALIDITY`].
    ///
    /// # Errors
    ///
    /// [`EgressError::Certificate`] if key generation or signing fails.
    pub fn generate() -> Result<Self, EgressError> {
        Self::generate_named("bottle-egress CA", DEFAULT_CA_VALIDITY)
    }

    /// Mint a new CA with the given common name (e.g. naming the bottle) and validity.
    ///
    /// # Errors
    ///
    /// [`EgressError::Certificate`] if key generation or signing fails.
    pub fn generate_named(common_name: &str, validity: Duration) -> Result<Self, EgressError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(cert_err)?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "bottle-egress");
        params.distinguished_name = dn;
        // rcgen writes basicConstraints as critical for CAs and always adds a SKI.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + validity;
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key).map_err(cert_err)?;
        Self::from_pem(&cert.pem(), &key.serialize_pem())
    }

    /// Load a CA from its PEM certificate and PEM (PKCS#8) private key.
    ///
    /// # Errors
    ///
    /// [`EgressError::Certificate`] if either does not parse, or the key is not ECDSA P-256.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, EgressError> {
        let key = KeyPair::from_pem(key_pem).map_err(cert_err)?;
        if key.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err(EgressError::Certificate {
                message: "the CA key must be ECDSA P-256".to_owned(),
            });
        }
        let cert_der = first_pem_cert(cert_pem)?;
        let not_after = not_after_of(&cert_der)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key).map_err(cert_err)?;
        Ok(CertificateAuthority {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            cert_der,
            issuer,
            not_after,
        })
    }

    /// The CA certificate, PEM. This is what clients must trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PEM (PKCS#8). Keep it away from the agent.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Mint a leaf for `host` (a DNS name or an IP literal), with a fresh P-256 key.
    ///
    /// # Errors
    ///
    /// [`EgressError::Certificate`] if the name is not a valid SAN or signing fails.
    pub fn issue_leaf(&self, host: &str) -> Result<Leaf, EgressError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(cert_err)?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.to_owned().try_into().map_err(cert_err)?),
        };
        params.subject_alt_names = vec![san];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        params.not_before = now - CLOCK_SKEW;
        // Never outlive the CA: a client would reject the chain.
        params.not_after = (now + LEAF_VALIDITY).min(self.not_after);
        let cert = params.signed_by(&key, &self.issuer).map_err(cert_err)?;
        Ok(Leaf {
            chain: vec![cert.der().clone(), self.cert_der.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            not_after: params.not_after,
        })
    }
}

/// A minted leaf: the chain (leaf, then CA) and its private key.
#[derive(Debug)]
pub struct Leaf {
    /// The leaf certificate followed by the CA certificate.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// When the leaf expires.
    pub not_after: OffsetDateTime,
}

fn cert_err(e: impl std::fmt::Display) -> EgressError {
    EgressError::Certificate {
        message: e.to_string(),
    }
}

fn random_serial() -> Result<SerialNumber, EgressError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| cert_err("the system random generator failed"))?;
    // A positive integer: clear the top bit so DER needs no sign byte.
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

fn first_pem_cert(pem: &str) -> Result<CertificateDer<'static>, EgressError> {
    let mut certs = crate::tls::certs_from_pem(pem.as_bytes()).map_err(cert_err)?;
    if certs.is_empty() {
        return Err(cert_err("no certificate found in the CA PEM"));
    }
    Ok(certs.swap_remove(0))
}

fn not_after_of(der: &CertificateDer<'_>) -> Result<OffsetDateTime, EgressError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| cert_err(format!("the CA certificate does not parse: {e}")))?;
    Ok(cert.validity().not_after.to_datetime())
}

/// Server TLS configurations per intercepted host, minted once and shared.
///
/// Minting happens under the lock, so concurrent first requests for one host mint exactly once
/// (single flight). The set of hosts is bounded by the route table except for wildcard routes,
/// so the cache is capped; past the cap it is emptied (simple, and a mint costs ~30 µs).
pub(crate) struct LeafCache {
    ca: CertificateAuthority,
    provider: Arc<CryptoProvider>,
    entries: Mutex<HashMap<String, CachedLeaf>>,
    mints: std::sync::atomic::AtomicU64,
}

struct CachedLeaf {
    config: Arc<ServerConfig>,
    renew_after: OffsetDateTime,
}

/// Hosts kept at most; see [`LeafCache`].
const LEAF_CACHE_CAP: usize = 4096;

impl LeafCache {
    pub(crate) fn new(ca: CertificateAuthority, provider: Arc<CryptoProvider>) -> Self {
        LeafCache {
            ca,
            provider,
            entries: Mutex::new(HashMap::new()),
            mints: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// How many leaves were minted so far (for tests and metrics).
    pub(crate) fn mint_count(&self) -> u64 {
        self.mints.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The TLS server configuration presenting a leaf for `host`, minted on first use.
    pub(crate) fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, EgressError> {
        let now = OffsetDateTime::now_utc();
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = entries.get(host)
            && entry.renew_after > now
        {
            return Ok(entry.config.clone());
        }
        let leaf = self.ca.issue_leaf(host)?;
        self.mints
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let renew_after = leaf.not_after - LEAF_RENEW_MARGIN;
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(cert_err)?
            .with_no_client_auth()
            .with_single_cert(leaf.chain, leaf.key)
            .map_err(cert_err)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        if entries.len() >= LEAF_CACHE_CAP {
            entries.clear();
        }
        entries.insert(
            host.to_owned(),
            CachedLeaf {
                config: config.clone(),
                renew_after,
            },
        );
        Ok(config)
    }
}

impl std::fmt::Debug for LeafCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafCache")
            .field("mints", &self.mint_count())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_first_requests_mint_once() {
        let ca = CertificateAuthority::generate().unwrap();
        let cache = Arc::new(LeafCache::new(
            ca,
            Arc::new(rustls::crypto::ring::default_provider()),
        ));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let cache = cache.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    cache.server_config("api.example.com").unwrap()
                })
            })
            .collect();
        let configs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(cache.mint_count(), 1);
        assert!(configs.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
        cache.server_config("other.example.com").unwrap();
        assert_eq!(cache.mint_count(), 2);
    }

    #[test]
    fn leaf_outlives_neither_its_life_nor_the_ca() {
        let ca = CertificateAuthority::generate_named("t", Duration::from_secs(600)).unwrap();
        let leaf = ca.issue_leaf("127.0.0.1").unwrap();
        assert!(leaf.not_after <= ca.not_after);
        assert_eq!(leaf.chain.len(), 2);
    }
}
