//! Issue #4: TLS 1.3 and mutual TLS, with certificates made here (rcgen).

use std::{path::Path, sync::Arc};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Server, TempDir};

struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Self { ca_pem, issuer: Issuer::new(params, key) }
    }

    /// (certificate PEM, key PEM) for `names` (SANs; the first is also the CN).
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let key = KeyPair::generate().unwrap();
        (params.signed_by(&key, &self.issuer).unwrap().pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn client_config(ca_pem: &str, client: Option<&(String, String)>, tls12_only: bool) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls12_only { &[&rustls::version::TLS12] } else { &[&rustls::version::TLS13] };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes()).map(|c| c.unwrap()).collect();
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap()).unwrap()
        }
        None => builder.with_no_client_auth(),
    }
}

/// POSTs an initialize over TLS; `Ok(status)` or `Err(what failed)`.
async fn initialize(port: &str, config: ClientConfig) -> Result<u16, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"tls","version":"0"}}}"#;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), tls.read_to_end(&mut response)).await;
    match read {
        Ok(Ok(_)) | Ok(Err(_)) if response.starts_with(b"HTTP/1.1 ") => {
            Ok(String::from_utf8_lossy(&response[9..12]).parse().unwrap_or(0))
        }
        Ok(Ok(_)) => Err("closed without a response".into()),
        Ok(Err(error)) => Err(format!("read: {error}")),
        Err(_) => Err("timed out".into()),
    }
}

#[tokio::test]
async fn mutual_tls_accepts_trusted_certificates_only_and_tls_1_3_only() {
    let dir = TempDir::new("mtls");
    let pki = Pki::new("Rampart test CA");
    let rogue = Pki::new("Rogue CA");
    let (server_cert, server_key) = pki.leaf(&["localhost", "127.0.0.1"]);
    let trusted = pki.leaf(&["ci-bot.example.com"]);
    let unmapped = pki.leaf(&["stranger.example.com"]);
    let untrusted = rogue.leaf(&["ci-bot.example.com"]);
    let config = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n\n[tls.clients.\"ci-bot.example.com\"]\nroles = [\"reader\"]\n",
        write(&dir.0, "server.pem", &server_cert),
        write(&dir.0, "server.key", &server_key),
        write(&dir.0, "ca.pem", &pki.ca_pem),
    );
    let config_path = write(&dir.0, "rampart.toml", &config);
    let server = Server::start(&["--config", &config_path]);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    assert!(server.stderr().contains("client certificates required"), "{}", server.stderr());
    let port = server.url.rsplit(':').next().unwrap().trim_end_matches("/mcp").to_owned();

    assert_eq!(
        initialize(&port, client_config(&pki.ca_pem, Some(&trusted), false)).await,
        Ok(200),
        "trusted and mapped"
    );
    assert_eq!(
        initialize(&port, client_config(&pki.ca_pem, Some(&unmapped), false)).await,
        Ok(401),
        "trusted, not mapped"
    );
    let rogue_result = initialize(&port, client_config(&pki.ca_pem, Some(&untrusted), false)).await;
    assert!(rogue_result.is_err(), "a certificate from another CA: {rogue_result:?}");
    let missing = initialize(&port, client_config(&pki.ca_pem, None, false)).await;
    assert!(missing.is_err(), "no certificate: {missing:?}");
    let old = initialize(&port, client_config(&pki.ca_pem, Some(&trusted), true)).await;
    assert!(old.as_ref().is_err_and(|e| e.starts_with("handshake")), "TLS 1.2 is refused: {old:?}");

    assert_eq!(initialize(&port, client_config(&pki.ca_pem, Some(&trusted), false)).await, Ok(200), "still serving");
    let (_, failures, _) = server.cli_until(
        &["audit", "search", "--principal", "unauthenticated", "--json", "--config", &config_path],
        |audit| audit.contains("auth_failed"),
    );
    assert!(failures.contains("auth_failed"), "the unmapped certificate is audited: {failures}");
}
