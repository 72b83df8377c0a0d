//! `mebyo demo` installations (issue 22 §7): two demos, even with the same
//! `--seed`, share no key material, and `serve` warns when it serves a demo
//! directory.

use std::process::{Command, Stdio};

use mebyo_tests::{mebyo, mebyo_bin, path_str};

fn demo(data: &std::path::Path) {
    let out = mebyo(&[
        "demo",
        "--data",
        path_str(data),
        "--people",
        "1",
        "--seed",
        "1",
    ]);
    assert!(
        out.status.success(),
        "mebyo demo failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_demos_share_no_key_and_serve_warns_about_a_demo_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    demo(&a);
    demo(&b);
    let files: Vec<_> = std::fs::read_dir(a.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        files.iter().any(|f| f == "kek"),
        "the KEK is in keys/: {files:?}"
    );
    for f in &files {
        let (ka, kb) = (a.join("keys").join(f), b.join("keys").join(f));
        if ka.is_file() {
            assert_ne!(
                std::fs::read(&ka).unwrap(),
                std::fs::read(&kb).unwrap(),
                "keys/{f:?} is the same in two demo directories"
            );
        }
    }
    assert!(a.join("DEMO").is_file(), "a demo directory is marked");

    let mut child = Command::new(mebyo_bin())
        .args(["serve", "--data", path_str(&a), "--listen", "127.0.0.1:0"])
        .env("MEBYO_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running mebyo serve");
    let (_, printed) = mebyo_tests::wait_for_listening(&mut child);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        printed.contains("WARNING") && printed.contains("`mebyo demo` directory"),
        "serve printed no demo warning before listening: {printed}"
    );
}
