//! `mebyo` as a client of a running server (issue 15 §3): the staff commands
//! that a serving platform's ledger lock used to refuse are sent to its JSON
//! endpoints under `/api/v1/ops/` with the staff member's bearer token, and the
//! answer is printed the way the local command prints. The server decides; this
//! only carries requests and answers.
//!
//! Exit codes as for the local commands: 0 done, 1 refused (the refusal, with
//! its clause, on stderr), 2 could not run (no server, no session, transport).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use mebyo_web::error::{ErrorBody, ErrorEnvelope};
use mebyo_web::ops_api::Recorded;
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};

use crate::login::Session;

/// Environment variable naming the server when `--server` is not given.
pub const SERVER_ENV: &str = "MEBYO_SERVER";

/// Where a running server is, and how to trust its certificate.
#[derive(clap::Args, Clone, Default)]
pub struct ServerArgs {
    /// Send the command to this running server (https://…; plain http only to
    /// loopback). Default: $MEBYO_SERVER, else the server `mebyo login` signed in to.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// A PEM root certificate to trust for the server, e.g. serve's self-signed
    /// DATA/tls/cert.pem. Default: the one given at `mebyo login`.
    #[arg(long, value_name = "FILE", env = "MEBYO_CA")]
    pub ca: Option<PathBuf>,
}

impl ServerArgs {
    /// The server named by `--server`, then `$MEBYO_SERVER`.
    pub fn named(&self) -> Option<String> {
        self.server
            .clone()
            .or_else(|| std::env::var(SERVER_ENV).ok().filter(|s| !s.is_empty()))
    }
}

/// A server URL with no trailing slash, checked: https, or http to loopback only
/// (a bearer token never crosses a network in the clear).
pub fn server_url(s: &str) -> anyhow::Result<Url> {
    let url = Url::parse(s.trim_end_matches('/')).with_context(|| format!("{s:?} is not a URL"))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = match host.trim_start_matches('[').trim_end_matches(']').parse() {
        Ok(ip) => std::net::IpAddr::is_loopback(&ip),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => bail!("{s}: plain http only to a loopback address; use https"),
        other => bail!("{s}: scheme {other:?} is not https"),
    }
    if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        bail!("{s}: give the server as https://HOST[:PORT]");
    }
    Ok(url)
}

/// The same server, however it was spelled.
pub fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// What a server answered: the value asked for, or its refusal.
pub enum Answer<T> {
    Done(T),
    /// A refusal (4xx) or a recorded failure of the machinery (5xx), both with
    /// code and clause.
    Refused(StatusCode, ErrorBody),
}

/// An HTTPS client for one server.
pub struct Client {
    http: reqwest::Client,
    base: Url,
}

impl Client {
    pub fn new(server: &str, ca: Option<&Path>) -> anyhow::Result<Self> {
        let base = server_url(server)?;
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("mebyo/", env!("CARGO_PKG_VERSION")))
            // The token is for this server only: never follow an answer elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            // A backup of a large ledger takes a while; a hung server does not
            // hold the terminal for ever.
            .timeout(Duration::from_secs(30 * 60));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default();
            if certs.is_empty() {
                bail!("{} holds no PEM certificate", ca.display());
            }
            for cert in certs {
                b = b.add_root_certificate(cert);
            }
        }
        Ok(Self {
            http: b.build().context("setting up the HTTPS client")?,
            base,
        })
    }

    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// Sends one request; a JSON answer, or the refusal the server gave.
    /// Anything else (no connection, TLS, an answer that is not the API's) is an
    /// error: exit 2.
    pub async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> anyhow::Result<Answer<T>> {
        let url = format!("{}{path}", self.base());
        let mut req = self.http.request(method, &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| {
            let why = chain(&e);
            // The usual first stumble: serve's own self-signed certificate.
            let hint = if why.contains("invalid peer certificate") {
                "\nhint: trust the server's certificate with --ca FILE (serve's is DATA/tls/cert.pem)"
            } else {
                ""
            };
            anyhow!("could not reach {}: {why}{hint}", self.base())
        })?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| anyhow!("reading the answer of {url}: {}", chain(&e)))?;
        if status.is_success() {
            let text: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            let v = serde_json::from_slice(text)
                .with_context(|| format!("{url} answered {status} with unexpected JSON"))?;
            return Ok(Answer::Done(v));
        }
        match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
            Ok(e) => Ok(Answer::Refused(status, e.error)),
            Err(_) => bail!("{url} answered {status} without a refusal the API gives"),
        }
    }
}

/// An error with its causes, e.g. "error sending request: invalid peer certificate".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Prints a refusal the way the local commands do (exit 1).
pub fn refused(status: StatusCode, e: &ErrorBody) -> ExitCode {
    let what = if status.is_server_error() {
        "failed"
    } else {
        "refused"
    };
    eprintln!("{what}: {} ({}): {}", e.code, e.clause, e.message);
    if matches!(e.code.as_str(), "auth.required" | "session.expired") {
        eprintln!("sign in again with `mebyo login`");
    }
    ExitCode::from(1)
}

/// Where a staff command goes: the data directory given with `--data`, as before
/// there was a server; otherwise the server (see [`Remote::connect`]), which must
/// then be named somewhere.
pub enum Where<'a> {
    Data(&'a Path),
    Server(Remote),
}

pub fn where_to<'a>(
    data: Option<&'a Path>,
    args: &ServerArgs,
    staff: Option<&str>,
) -> anyhow::Result<Where<'a>> {
    if let Some(d) = data {
        return Ok(Where::Data(d));
    }
    match Remote::connect(args, staff)? {
        Some(r) => Ok(Where::Server(r)),
        None => bail!(
            "say where: --data DIR while no server runs, or --server URL (after `mebyo login`) while one does"
        ),
    }
}

/// A signed-in staff member's connection to the server their session is for.
pub struct Remote {
    pub client: Client,
    pub session: Session,
}

impl Remote {
    /// The server named by `--server`, `$MEBYO_SERVER` or the session file, with
    /// the session's token; `None` when no server is named anywhere. `staff`, when
    /// given (`--as`, `--by`), must be who the session signed in as.
    pub fn connect(args: &ServerArgs, staff: Option<&str>) -> anyhow::Result<Option<Self>> {
        let session = Session::load()?;
        let Some(server) = args
            .named()
            .or_else(|| session.as_ref().map(|s| s.server.clone()))
        else {
            return Ok(None);
        };
        let login_hint = format!("sign in first: `mebyo login --server {server} --as STAFF`");
        let Some(session) = session else {
            bail!("not signed in to {server}; {login_hint}");
        };
        if !same_server(&session.server, &server) {
            bail!(
                "signed in to {}, not to {server}; {login_hint}",
                session.server
            );
        }
        if let Some(s) = staff.filter(|s| *s != session.staff) {
            bail!(
                "signed in to {server} as {}, not as {s}; the server acts as who signed in",
                session.staff
            );
        }
        let ca = args.ca.as_deref().or(session.ca.as_deref());
        let client = Client::new(&server, ca)?;
        Ok(Some(Self { client, session }))
    }

    /// POSTs a staff command and prints where its event landed (exit 0), or the
    /// refusal (exit 1). `done` prints what the local command prints first.
    pub async fn command(
        &self,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        done: impl FnOnce(&Recorded),
    ) -> anyhow::Result<ExitCode> {
        self.command_as::<Recorded>(path, body, done).await
    }

    /// [`Remote::command`] for an endpoint whose answer carries more than where
    /// its event landed (an erasure's destroyed keys, a rotation's KEK ids): `done`
    /// sees the whole answer, and the position and hash are printed as for any.
    pub async fn command_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        done: impl FnOnce(&T),
    ) -> anyhow::Result<ExitCode> {
        let token = Some(self.session.token.as_str());
        let v = match self
            .client
            .send::<serde_json::Value>(Method::POST, path, token, body)
            .await?
        {
            Answer::Done(v) => v,
            Answer::Refused(status, e) => return Ok(refused(status, &e)),
        };
        let unexpected = || format!("{}{path} answered with unexpected JSON", self.client.base());
        let answer = T::deserialize(&v).with_context(unexpected)?;
        let recorded = Recorded::deserialize(&v).with_context(unexpected)?;
        done(&answer);
        self.print_recorded(&recorded);
        Ok(ExitCode::SUCCESS)
    }

    fn print_recorded(&self, r: &Recorded) {
        println!(
            "recorded at ledger position {}, hash {} ({}{})",
            r.position,
            r.hash,
            self.client.base(),
            r.link
        );
    }
}

/// A path segment as the server's router reads it (one home: the web crate).
pub use mebyo_web::path_segment as segment;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_travel_over_https_or_to_loopback_only() {
        assert!(server_url("https://ops.example.jp").is_ok());
        assert!(server_url("https://127.0.0.1:8443/").is_ok());
        assert!(server_url("http://127.0.0.1:8080").is_ok());
        assert!(server_url("http://[::1]:8080").is_ok());
        assert!(server_url("http://localhost:8080").is_ok());
        assert!(server_url("http://ops.example.jp").is_err());
        assert!(server_url("http://10.0.0.1").is_err());
        assert!(server_url("ftp://127.0.0.1").is_err());
        assert!(server_url("not a url").is_err());
    }
}
