//! Test and benchmark helpers (feature `testkit`): a private nats-server process
//! with its own configuration (optionally TLS-only with a PKI made on the spot),
//! restartable on the same port and store, and a platform with an organisation,
//! providers and people set up through the real commands.
//!
//! A missing nats-server is a failure with a clear message, never a skip.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use mebyo_crypto::IdentityRecord;
pub use {async_nats, bytes, mebyo_domain, mebyo_platform, mebyo_store};

use crate::TlsConfig;

/// The nats-server binary: `$MEBYO_NATS_SERVER`, else `/usr/sbin/nats-server`,
/// else `nats-server` on the PATH.
pub fn nats_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MEBYO_NATS_SERVER") {
        return PathBuf::from(p);
    }
    let sbin = PathBuf::from("/usr/sbin/nats-server");
    if sbin.exists() {
        return sbin;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("nats-server"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| {
            panic!(
                "nats-server not found (looked at $MEBYO_NATS_SERVER, /usr/sbin/nats-server and PATH); \
                 these tests need it: install it (apt-get install nats-server) or set MEBYO_NATS_SERVER"
            )
        })
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("binding a loopback port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A test PKI: a CA, a server certificate for 127.0.0.1/localhost, and a client
/// certificate, all PEM files in `dir`.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Client certificates whose subject is `CN=<name>`, by name, as
    /// `(cert, key)` files `<name>.pem` and `<name>.key` (a NATS server with
    /// `verify_and_map` maps each to the user of that name).
    pub named: std::collections::BTreeMap<String, (PathBuf, PathBuf)>,
}

impl TestPki {
    pub fn generate(dir: &Path) -> TestPki {
        Self::generate_with(dir, &[])
    }

    /// With a client certificate for each of `names` as well.
    pub fn generate_with(dir: &Path, names: &[&str]) -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            SanType,
        };
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mebyo test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let leaf = |name: &str, eku: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("leaf key");
            let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
            p.subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
            p.distinguished_name.push(DnType::CommonName, name);
            p.extended_key_usages = vec![eku];
            let cert = p.signed_by(&key, &ca, &ca_key).expect("leaf certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key) = leaf("nats-server", ExtendedKeyUsagePurpose::ServerAuth);
        let (client_pem, client_key) = leaf("mebyo-bus", ExtendedKeyUsagePurpose::ClientAuth);
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("writing PEM");
            p
        };
        let mut named = std::collections::BTreeMap::new();
        for name in names {
            // Subject only, no SAN: the user is found by the subject's DN.
            let key = KeyPair::generate().expect("client key");
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
            p.distinguished_name.push(DnType::CommonName, *name);
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = p.signed_by(&key, &ca, &ca_key).expect("client certificate");
            let files = (
                write(&format!("{name}.pem"), &cert.pem()),
                write(&format!("{name}.key"), &key.serialize_pem()),
            );
            named.insert(name.to_string(), files);
        }
        TestPki {
            named,
            ca: write("ca.pem", &ca.pem()),
            server_cert: write("server.pem", &server_pem),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_pem),
            client_key: write("client.key", &client_key),
        }
    }

    /// The TLS settings of the named client certificate.
    pub fn named_tls(&self, name: &str) -> TlsConfig {
        let (cert, key) = self
            .named
            .get(name)
            .unwrap_or_else(|| panic!("no test certificate for {name}"));
        TlsConfig {
            ca: self.ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        }
    }

    pub fn client_tls(&self) -> TlsConfig {
        TlsConfig {
            ca: self.ca.clone(),
            cert: self.client_cert.clone(),
            key: self.client_key.clone(),
        }
    }
}

/// A nats-server child process with JetStream, on a free loopback port.
pub struct NatsServer {
    pub port: u16,
    pub tls: Option<TestPki>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Configuration text after `listen` and `jetstream`, instead of the
    /// test's own `tls` block (`start_configured`).
    custom: Option<String>,
}

impl NatsServer {
    /// Plain TCP (loopback only), JetStream on.
    pub fn start() -> NatsServer {
        Self::start_with(None)
    }

    /// TLS-only, client certificates required.
    pub fn start_tls() -> NatsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = TestPki::generate(dir.path());
        let mut s = Self::start_in(dir, Some(pki));
        s.wait_ready();
        s
    }

    fn start_with(tls: Option<TestPki>) -> NatsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Self::start_in(dir, tls);
        s.wait_ready();
        s
    }

    fn start_in(dir: tempfile::TempDir, tls: Option<TestPki>) -> NatsServer {
        let port = free_port();
        let mut s = NatsServer {
            port,
            tls,
            dir,
            child: None,
            custom: None,
        };
        s.spawn();
        s
    }

    /// TLS with a PKI holding a client certificate for each of `names`, and
    /// `config` (e.g. a deployment guide's `tls` and `authorization` blocks)
    /// after the test's `listen` and `jetstream`. The server runs in the PKI's
    /// directory, so `config` names the files as `ca.pem`, `server.pem`,
    /// `server.key`.
    pub fn start_configured(names: &[&str], config: &str) -> NatsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = TestPki::generate_with(dir.path(), names);
        let mut s = NatsServer {
            port: free_port(),
            tls: Some(pki),
            dir,
            child: None,
            custom: Some(config.to_string()),
        };
        s.spawn();
        s.wait_ready();
        s
    }

    fn config(&self) -> String {
        let store = self.dir.path().join("js");
        let mut c = format!(
            "listen: 127.0.0.1:{}\nserver_name: mebyo-test-{}\nmax_payload: 1MB\njetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 256MB\n  max_file_store: 1GB\n}}\n",
            self.port,
            self.port,
            store.display()
        );
        if let Some(custom) = &self.custom {
            c.push_str(custom);
            c.push('\n');
        } else if let Some(p) = &self.tls {
            // With a tls block the server speaks TLS only; `verify` demands a
            // client certificate signed by the CA (P4.6(1)).
            c.push_str(&format!(
                "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}\n",
                p.server_cert.display(),
                p.server_key.display(),
                p.ca.display()
            ));
        }
        c
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("nats.conf");
        let mut f = std::fs::File::create(&conf).expect("writing nats.conf");
        f.write_all(self.config().as_bytes())
            .expect("writing nats.conf");
        let log = std::fs::File::create(self.dir.path().join("nats.log")).expect("log file");
        let child = Command::new(nats_server_bin())
            .arg("-c")
            .arg(&conf)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", nats_server_bin().display()));
        self.child = Some(child);
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "nats-server exited ({status}) at start:\n{}",
                    std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on 127.0.0.1:{} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("tls://127.0.0.1:{}", self.port),
            None => format!("nats://127.0.0.1:{}", self.port),
        }
    }

    /// Kills the server (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same JetStream store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A made-up identity for test individuals (never a real person).
pub fn identity(n: u32) -> IdentityRecord {
    IdentityRecord {
        name: format!("神奈川 花子{n}"),
        address: format!("横浜市中区日本大通{n}"),
        birth_date: "1980-04-01".into(),
        phone: Some(format!("045-210-{:04}", n % 10_000)),
        email: Some(format!("hanako{n}@example.jp")),
    }
}
