//! TLS 1.3 (rustls, ring provider) and mutual TLS: the acceptor the listener wraps each
//! connection in, and the client identity a verified certificate carries.
//!
//! Only TLS 1.3 is offered; a client that cannot speak it fails the handshake. With
//! `client_ca`, the handshake requires a client certificate chaining to it (and not in
//! the CRLs); the certificate's subject CN and DNS/URI/email SANs become the
//! [`ClientIdentity`] that authentication maps to a principal through `[tls.clients]`.

use std::sync::Arc;

use rampart_config::TlsConfig;
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use tokio_rustls::TlsAcceptor;

/// TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("tls: {0}")]
pub struct TlsError(String);

/// The identities a verified client certificate carries: subject CN first, then SANs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity(pub Vec<String>);

fn read_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{}: no certificate in the file", path.display())));
    }
    Ok(certs)
}

/// Builds the acceptor from `[tls]`.
///
/// # Errors
/// [`TlsError`] naming the unreadable or invalid file.
pub(crate) fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&config.cert)?;
    let key =
        PrivateKeyDer::from_pem_file(&config.key).map_err(|e| TlsError(format!("{}: {e}", config.key.display())))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match &config.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots.add(cert).map_err(|e| TlsError(format!("{}: {e}", ca.display())))?;
            }
            let mut crls = Vec::new();
            for path in &config.crls {
                let list = CertificateRevocationListDer::pem_file_iter(path)
                    .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
                crls.extend(list);
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .with_crls(crls)
                .build()
                .map_err(|e| TlsError(format!("client_ca: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_single_cert(certs, key).map_err(|e| TlsError(format!("cert/key: {e}")))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The identities in a (verified) client certificate.
pub(crate) fn identity(certificate: &CertificateDer<'_>) -> ClientIdentity {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let mut names = Vec::new();
    let Ok((_, parsed)) = X509Certificate::from_der(certificate.as_ref()) else { return ClientIdentity(names) };
    for cn in parsed.subject().iter_common_name() {
        if let Ok(cn) = cn.as_str() {
            names.push(cn.to_owned());
        }
    }
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) | GeneralName::URI(n) | GeneralName::RFC822Name(n) => {
                    names.push((*n).to_owned())
                }
                _ => {}
            }
        }
    }
    ClientIdentity(names)
}
