//! Arguments shared by the commands that open a platform.

use std::path::PathBuf;

pub use mebyo_platform::DataDir;
use mebyo_platform::{KekSource, Options};

#[derive(clap::Args, Clone)]
pub struct PlatformArgs {
    /// Data directory holding the platform.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Key-encryption key file (mode 0600). Default: DIR/keys/kek.
    #[arg(long, value_name = "FILE", conflicts_with = "kek_env")]
    pub kek_file: Option<PathBuf>,
    /// Name of an environment variable holding the KEK in hex.
    #[arg(long, value_name = "VAR")]
    pub kek_env: Option<String>,
}

impl PlatformArgs {
    pub fn options(&self) -> anyhow::Result<Options> {
        let kek = match (&self.kek_file, &self.kek_env) {
            (Some(f), _) => KekSource::File(f.clone()),
            (None, Some(var)) => KekSource::Hex(
                std::env::var(var)
                    .map_err(|_| anyhow::anyhow!("environment variable {var} is not set"))?,
            ),
            (None, None) => KekSource::DataDir,
        };
        Ok(Options {
            kek,
            ..Default::default()
        })
    }
}

/// A multi-threaded runtime for commands that run async library code.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A staff command's target (issue 15 §3): a stopped platform's data directory,
/// or the running server that holds it.
#[derive(clap::Args, Clone)]
pub struct StaffTarget {
    /// Data directory holding the platform, when no server runs it.
    #[arg(long, value_name = "DIR", conflicts_with = "server")]
    pub data: Option<PathBuf>,
    /// Key-encryption key file (mode 0600). Default: DIR/keys/kek.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "kek_env",
        requires = "data"
    )]
    pub kek_file: Option<PathBuf>,
    /// Name of an environment variable holding the KEK in hex.
    #[arg(long, value_name = "VAR", requires = "data")]
    pub kek_env: Option<String>,
    #[command(flatten)]
    pub server: crate::client::ServerArgs,
}

/// Where one staff command goes.
pub enum Via {
    Local(PlatformArgs),
    Server(crate::client::Remote),
}

impl StaffTarget {
    /// `--data` works on the directory, as before a server existed; otherwise the
    /// server named by `--server`, `$MEBYO_SERVER` or `mebyo login`'s session.
    /// `staff` (`--as`, `--by`) must then be who signed in, when given.
    pub fn via(&self, staff: Option<&str>) -> anyhow::Result<Via> {
        use crate::client::{Where, where_to};
        Ok(match where_to(self.data.as_deref(), &self.server, staff)? {
            Where::Server(r) => Via::Server(r),
            Where::Data(data) => Via::Local(PlatformArgs {
                data: data.to_path_buf(),
                kek_file: self.kek_file.clone(),
                kek_env: self.kek_env.clone(),
            }),
        })
    }
}

/// The hint a command that can go to a server adds when the server holds the ledger.
pub const SERVER_HINT: &str = "a running `mebyo serve` holds the ledger: send this command to it \
     with --server URL (sign in once with `mebyo login --server URL --as STAFF`)";

/// Opens the platform for a command that `--server` can send instead: a ledger
/// locked by a running server keeps its message and says so.
pub async fn open_or_hint(p: &PlatformArgs) -> anyhow::Result<mebyo_platform::Platform> {
    use mebyo_platform::PlatformError;
    use mebyo_store::embedded::OpenError;
    match mebyo_platform::Platform::open(&p.data, p.options()?).await {
        Ok(p) => Ok(p),
        Err(e @ PlatformError::Open(OpenError::Locked(_))) => {
            Err(anyhow::anyhow!("{e}\nhint: {SERVER_HINT}"))
        }
        Err(e) => Err(e.into()),
    }
}
