//! The console over HTTPS (`[console] tls_cert`, `tls_key`): a rustls client that trusts the test
//! CA reaches the API and gets a `Secure` session cookie; plain HTTP on the same port gets no
//! answer. The pages and API used here read only the file, so no database is started.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

use crate::console_api::TOKEN;
use crate::support::{free_port, make_certificates};

async fn https(port: u16, ca: &std::path::Path, request: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("ca.pem") {
        roots.add(cert.expect("a certificate")).expect("a root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("the TLS handshake with the console");
    tls.write_all(request.as_bytes()).await.expect("send");
    let mut text = String::new();
    let _ = tls.read_to_string(&mut text).await;
    text
}

#[tokio::test]
async fn console_tls_serves_https_with_a_secure_cookie() {
    let dir = make_certificates();
    let port = free_port();
    let text = format!(
        "[nodes.crm]\nurl = \"postgres://u@127.0.0.1:1/crm\"\n[nodes.helpdesk]\nurl = \"mysql://u@127.0.0.1:1/desk\"\n\
         [[tables]]\nname = \"items\"\nkey = [\"id\"]\n\
         [console]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        dir.join("server.pem").display(),
        dir.join("server.key").display()
    );
    let (config, _) =
        tandem::config::Config::from_str_with_env(&text, "t.toml", &|_| None).expect("valid");
    let settings = config.console.clone().expect("[console]");
    let endpoint = tandem::console::start(&settings)
        .await
        .expect("the console starts with its certificate");
    let console = tandem::console::Console::new(Arc::new(config), &settings);
    let server = tokio::spawn(tandem::console::serve(endpoint, console));

    let rules = https(
        port,
        &dir.join("ca.pem"),
        &format!(
            "GET /api/rules HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        ),
    )
    .await;
    assert!(rules.starts_with("HTTP/1.1 200"), "{rules}");
    assert!(rules.contains("\"name\":\"items\""), "{rules}");
    let body = format!("token={TOKEN}&name=ana");
    let login = https(
        port,
        &dir.join("ca.pem"),
        &format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    let cookie = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("a cookie: {login}"));
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Plain HTTP to the HTTPS port: the handshake fails and no answer comes.
    let plain = crate::support::http_get(port, "/api/rules").await;
    assert!(plain.is_none(), "{plain:?}");
    server.abort();

    // A key that does not exist is named at start.
    let mut missing = settings.clone();
    missing.tls = Some((dir.join("server.pem"), dir.join("nope.key")));
    let err = tandem::console::start(&missing)
        .await
        .err()
        .expect("a missing key file fails the start");
    assert!(
        err.starts_with("console.tls_key:") && err.contains("nope.key"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
