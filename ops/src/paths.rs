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
