//! TLS to PostgreSQL on rustls, with libpq's `sslmode`s.
//!
//! tokio-postgres itself knows `disable`, `prefer` and `require` and leaves
//! the certificate check to the TLS connector, so the mode is read here and
//! each one gets the connector libpq would use:
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | no | – |
//! | `prefer` | when the server offers it | no |
//! | `require` | yes | no (as libpq: it stops passive eavesdropping, not an active attacker) |
//! | `verify-ca` | yes | chains to a trusted root |
//! | `verify-full` | yes | chains to a trusted root and names the host |
//!
//! **Without an `sslmode`** the ledger does not take tokio-postgres's
//! `prefer` for every host: a loopback host (or a Unix socket) gets
//! `prefer`, any other host `verify-full`. A session ledger reached over a
//! network must not fall back to plaintext silently, nor accept any
//! certificate; a URL that says `sslmode=prefer` or `require` still gets
//! exactly that.
//!
//! Trusted roots: the platform's (`rustls-native-certs`: the same store the
//! operating system's tools trust, so a corporate CA installed there works),
//! or only the CA certificates of a PEM bundle
//! ([`PostgresOptions::trust_pem`](super::PostgresOptions::trust_pem)).

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as WireMode};

use crate::error::StoreError;

/// libpq's `sslmode`, as far as the ledger supports it (`allow`, which
/// tries plaintext first, is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            _ => Err(StoreError::new(
                "sslmode must be disable, prefer, require, verify-ca or verify-full (allow is not supported)",
            )),
        }
    }

    /// What tokio-postgres is told: whether to ask for TLS, and whether to
    /// insist.
    fn wire(self) -> WireMode {
        match self {
            Self::Disable => WireMode::Disable,
            Self::Prefer => WireMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => WireMode::Require,
        }
    }
}

/// Takes `sslmode` out of `url` (a `postgres://` URL's query, or a
/// key=value string), since tokio-postgres refuses the verifying modes.
/// Returns the rest and the mode, if one was given.
pub(super) fn take_sslmode(url: &str) -> Result<(String, Option<SslMode>), StoreError> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let mut mode = None;
    let mut keep = |part: &str| -> Result<bool, StoreError> {
        match part.strip_prefix("sslmode=") {
            Some(value) => {
                mode = Some(SslMode::parse(value)?);
                Ok(false)
            }
            None => Ok(true),
        }
    };
    let rest = if is_url {
        match url.split_once('?') {
            Some((base, query)) => {
                let mut kept = Vec::new();
                for part in query.split('&') {
                    if keep(part)? {
                        kept.push(part);
                    }
                }
                if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) }
            }
            None => url.to_owned(),
        }
    } else {
        let mut kept = Vec::new();
        for part in url.split_whitespace() {
            if keep(part)? {
                kept.push(part);
            }
        }
        kept.join(" ")
    };
    Ok((rest, mode))
}

/// The mode when the URL gives none: `prefer` on loopback or a Unix
/// socket, `verify-full` elsewhere.
pub(super) fn default_mode(hosts: &[Host]) -> SslMode {
    let local = |host: &Host| match host {
        Host::Tcp(name) => {
            name == "localhost" || name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    };
    if !hosts.is_empty() && hosts.iter().all(local) { SslMode::Prefer } else { SslMode::VerifyFull }
}

/// The connector for `mode`, trusting `roots` (a PEM bundle) or the
/// platform's roots; and the mode tokio-postgres is told.
pub(super) fn connector(
    mode: SslMode,
    roots: Option<&[u8]>,
) -> Result<(tokio_postgres_rustls::MakeRustlsConnect, WireMode), StoreError> {
    // ring, not aws-lc-rs: aws-lc-rs would build a C library for every user
    // of the `postgres` feature. The price (rustls deprecates ring's
    // provider for it) is no post-quantum key exchange on the ledger link.
    #[expect(deprecated, reason = "ring's provider lacks post-quantum key exchange; see above")]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(StoreError::new)?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(Lenient { provider, chain: None }),
        SslMode::VerifyCa => {
            let chain = webpki(roots, Arc::clone(&provider))?;
            Arc::new(Lenient { provider, chain: Some(chain) })
        }
        SslMode::VerifyFull => webpki(roots, provider)?,
    };
    let config = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
    Ok((tokio_postgres_rustls::MakeRustlsConnect::new(config), mode.wire()))
}

/// The standard verifier: the chain to a trusted root, the validity dates,
/// and the host name.
fn webpki(roots: Option<&[u8]>, provider: Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, StoreError> {
    let mut store = RootCertStore::empty();
    match roots {
        Some(pem) => {
            for certificate in CertificateDer::pem_slice_iter(pem) {
                let certificate = certificate.map_err(|_| StoreError::new("the CA bundle is not PEM certificates"))?;
                store.add(certificate).map_err(StoreError::new)?;
            }
        }
        None => {
            // Certificates the platform lists but rustls cannot read are
            // skipped, as every rustls-native-certs user does.
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
        }
    }
    if store.is_empty() {
        return Err(StoreError::new("no trusted root certificate to verify the PostgreSQL server with"));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider).build().map_err(StoreError::new)
}

/// The verifier of `prefer`, `require` (no chain: any certificate) and
/// `verify-ca` (the chain, whatever name the certificate carries). The
/// handshake's signatures are always checked, so the session is keyed to the
/// certificate's key: `require` stops eavesdropping, as libpq's does.
#[derive(Debug)]
struct Lenient {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_leaves_the_url() {
        let take = |url: &str| take_sslmode(url).map_err(|e| e.to_string());
        assert_eq!(take("postgres://h/db?sslmode=require"), Ok(("postgres://h/db".to_owned(), Some(SslMode::Require))));
        assert_eq!(
            take("postgres://u:p@h/db?application_name=a&sslmode=verify-full&connect_timeout=3"),
            Ok(("postgres://u:p@h/db?application_name=a&connect_timeout=3".to_owned(), Some(SslMode::VerifyFull)))
        );
        assert_eq!(take("postgres://h/db"), Ok(("postgres://h/db".to_owned(), None)));
        assert_eq!(
            take("host=h sslmode=verify-ca dbname=d"),
            Ok(("host=h dbname=d".to_owned(), Some(SslMode::VerifyCa)))
        );
        assert!(take("postgres://h/db?sslmode=allow").is_err());
        assert!(take("postgres://h/db?sslmode=").is_err());
    }

    #[test]
    fn only_loopback_defaults_to_prefer() {
        let tcp = |name: &str| Host::Tcp(name.to_owned());
        assert_eq!(default_mode(&[tcp("127.0.0.1")]), SslMode::Prefer);
        assert_eq!(default_mode(&[tcp("localhost"), tcp("::1"), tcp("[::1]")]), SslMode::Prefer);
        assert_eq!(default_mode(&[tcp("db.internal")]), SslMode::VerifyFull);
        assert_eq!(default_mode(&[tcp("127.0.0.1"), tcp("10.0.0.5")]), SslMode::VerifyFull);
        assert_eq!(default_mode(&[]), SslMode::VerifyFull);
    }
}
