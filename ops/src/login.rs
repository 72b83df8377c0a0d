//! `mebyo login` and `mebyo logout` (issue 15 §3): a staff member signs in to a
//! running server once; the bearer token is kept in a session file only they can
//! read, and the staff commands given `--server` send it. The password and the
//! token are never printed.
//!
//! The sign-in may ask for more (`next` in the answer): a TOTP code is asked for
//! here; a password change or a second factor's enrolment is done once in the
//! browser, since it needs the server's own pages.

use std::io::{BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Answer, Client, ServerArgs, refused};
use crate::paths::runtime;

/// What the session file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub server: String,
    pub staff: String,
    pub token: String,
    /// The root certificate given at sign-in, so later commands trust the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

/// `$MEBYO_CONFIG_DIR`, else `$XDG_CONFIG_HOME/mebyo`, else `~/.config/mebyo`.
fn config_dir() -> anyhow::Result<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = var("MEBYO_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = var("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("mebyo"));
    }
    match var("HOME") {
        Some(h) => Ok(PathBuf::from(h).join(".config").join("mebyo")),
        None => bail!("no $HOME: set MEBYO_CONFIG_DIR to where the session is kept"),
    }
}

const SESSION_FILE: &str = "session.json";

pub fn session_path() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join(SESSION_FILE))
}

impl Session {
    /// The session file, if there is one. One that others can read is refused:
    /// its token acts as the staff member.
    pub fn load() -> anyhow::Result<Option<Self>> {
        let path = session_path()?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mode = std::fs::metadata(&path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} can be read by others (mode {:o}): `mebyo logout` and sign in again",
                path.display(),
                mode & 0o777
            );
        }
        let s = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a mebyo session", path.display()))?;
        Ok(Some(s))
    }

    /// Writes the session file (0600, its folder 0700 when made here), replacing
    /// any earlier one at once, so no reader sees half a file.
    fn save(&self) -> anyhow::Result<PathBuf> {
        let dir = config_dir()?;
        let path = dir.join(SESSION_FILE);
        let dir = dir.as_path();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(".session.json.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

#[derive(clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Your staff id, e.g. soa-0001.
    #[arg(long = "as", value_name = "STAFF")]
    pub staff: String,
    /// Read the password from the first line of standard input instead of the terminal.
    #[arg(long)]
    pub password_stdin: bool,
    /// The 6-digit code of your authenticator, if the server asks for one.
    #[arg(long, value_name = "CODE")]
    pub totp: Option<String>,
}

#[derive(clap::Args)]
pub struct LogoutArgs {}

/// The parts of the sign-in answer the CLI reads.
#[derive(Deserialize)]
struct SignedIn {
    #[serde(default)]
    token: Option<String>,
    /// What the server still wants before the session may act.
    #[serde(default)]
    next: Option<String>,
}

pub fn login(a: LoginArgs) -> anyhow::Result<ExitCode> {
    let Some(server) = a.server.named() else {
        bail!("say which server with --server URL (or $MEBYO_SERVER)");
    };
    let client = Client::new(&server, a.server.ca.as_deref())?;
    let password = if a.password_stdin {
        read_stdin_line()?
    } else {
        ask_hidden(&format!("password for {} at {}: ", a.staff, client.base()))?
    };
    let body = serde_json::json!({"kind": "staff", "login": a.staff, "password": password});
    drop(password);
    runtime()?.block_on(async {
        let answer = client
            .send::<SignedIn>(Method::POST, "/api/v1/session", None, Some(&body))
            .await?;
        drop(body);
        let first = match answer {
            Answer::Done(s) => s,
            Answer::Refused(status, e) => return Ok(refused(status, &e)),
        };
        let Some(mut token) = first.token else {
            bail!("the server's sign-in answer has no token");
        };
        let mut next = first.next;
        if next.as_deref() == Some("second_factor") {
            match second_factor(&client, &token, a.totp.as_deref()).await? {
                Ok(s) => {
                    token = s.token.unwrap_or(token);
                    next = s.next;
                }
                Err(code) => return Ok(code),
            }
        }
        if let Some(step) = next {
            // Not usable yet: end the half-made session rather than leave it.
            let _ = client
                .send::<serde_json::Value>(
                    Method::DELETE,
                    "/api/v1/session",
                    Some(&token),
                    None::<&()>,
                )
                .await;
            eprintln!("{}", unfinished(&step, client.base()));
            return Ok(ExitCode::from(1));
        }
        let session = Session {
            server: client.base().to_string(),
            staff: a.staff.clone(),
            token,
            ca: a.server.ca.as_deref().map(absolute).transpose()?,
        };
        let path = session.save()?;
        println!(
            "signed in to {} as {} (session kept in {})",
            session.server,
            session.staff,
            path.display()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// Sends the TOTP code the server asked for; its answer, or the exit of its refusal.
async fn second_factor(
    client: &Client,
    token: &str,
    totp: Option<&str>,
) -> anyhow::Result<Result<SignedIn, ExitCode>> {
    let code = match totp {
        Some(c) => c.trim().to_string(),
        None => ask_visible("6-digit code from your authenticator: ")?,
    };
    let body = serde_json::json!({"code": code});
    let path = "/api/v1/session/second-factor";
    Ok(
        match client
            .send(Method::POST, path, Some(token), Some(&body))
            .await?
        {
            Answer::Done(s) => Ok(s),
            Answer::Refused(status, e) => Err(refused(status, &e)),
        },
    )
}

/// What to tell someone whose sign-in needs a step only the browser offers.
fn unfinished(step: &str, base: &str) -> String {
    let what = match step {
        "change_password" => "asks you to choose a new password",
        "enrol_second_factor" => "asks you to enrol a second factor (TOTP)",
        "second_factor" => "asks for the second factor again",
        _ => "asks for a step this mebyo does not know",
    };
    format!(
        "not signed in: the server {what}. Finish signing in once in the browser at \
         {base}/ops/login, then run `mebyo login` again"
    )
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

pub fn logout(_: LogoutArgs) -> anyhow::Result<ExitCode> {
    let path = session_path()?;
    let Some(session) = Session::load()? else {
        println!("not signed in ({} does not exist)", path.display());
        return Ok(ExitCode::SUCCESS);
    };
    // The server ends the session at once; the file goes even if it cannot be
    // reached (the session then ends at its idle timeout).
    match end_on_server(&session) {
        Ok(Answer::Done(_)) => {}
        Ok(Answer::Refused(_, e))
            if matches!(e.code.as_str(), "session.expired" | "auth.required") => {}
        Ok(Answer::Refused(_, e)) => {
            eprintln!("warning: the server did not end the session: {}", e.message)
        }
        Err(e) => eprintln!("warning: the server did not end the session: {e:#}"),
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    println!(
        "signed out of {} ({} removed)",
        session.server,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn end_on_server(s: &Session) -> anyhow::Result<Answer<serde_json::Value>> {
    let c = Client::new(&s.server, s.ca.as_deref())?;
    let path = "/api/v1/session";
    runtime()?.block_on(c.send(Method::DELETE, path, Some(&s.token), None::<&()>))
}

/// The first line of standard input, without its line end.
fn read_stdin_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw)
}

fn tty() -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to ask on: pipe the password in with --password-stdin (and the code with --totp)")
}

/// Asks on the terminal with echo off, restored afterwards even on error.
fn ask_hidden(prompt: &str) -> anyhow::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let mut t = tty()?;
    let before = tcgetattr(&t).context("reading the terminal's settings")?;
    let mut quiet = before.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    t.write_all(prompt.as_bytes())?;
    tcsetattr(&t, OptionalActions::Flush, &quiet).context("turning the echo off")?;
    let line = read_line(&t);
    let restored = tcsetattr(&t, OptionalActions::Flush, &before);
    let line = line?;
    restored.context("turning the echo back on")?;
    Ok(line)
}

fn ask_visible(prompt: &str) -> anyhow::Result<String> {
    let mut t = tty()?;
    t.write_all(prompt.as_bytes())?;
    read_line(&t)
}

fn read_line(t: &std::fs::File) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::BufReader::new(t).read_line(&mut line)?;
    let s = line.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        bail!("nothing was typed");
    }
    Ok(s)
}
