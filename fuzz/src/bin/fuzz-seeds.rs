//! Writes the fuzz seeds (made from real valid inputs, see `mebyo_fuzz::seeds`)
//! under the directory given, by default `fuzz/seeds`.

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/seeds").into());
    mebyo_fuzz::seeds::write_all(std::path::Path::new(&dir))?;
    println!("seeds written to {dir}");
    Ok(())
}
