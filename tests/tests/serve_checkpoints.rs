//! `mebyo serve` signs checkpoints on its own and publishes them on the bus
//! (issue 8 §2): a witness subscribed to `mebyo.v1.checkpoints` receives a signed
//! note that verifies with the platform's published key.

use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use mebyo_bus::testkit::{NatsServer, free_port};
use mebyo_tests::{mebyo_bin, path_str};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_signs_checkpoints_and_publishes_them_on_the_bus() {
    let nats = NatsServer::start();
    let witness = async_nats::connect(nats.url())
        .await
        .expect("connecting to the test nats-server");
    let mut notes = witness.subscribe("mebyo.v1.checkpoints").await.unwrap();
    witness.flush().await.unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(mebyo_bin())
        .args([
            "serve",
            "--data",
            path_str(&data),
            "--listen",
            &listen,
            "--nats",
            &nats.url(),
        ])
        .args(["--checkpoint-secs", "1", "--tick-secs", "3600"])
        .env("MEBYO_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let msg = notes.next().await.expect("subscription open");
            let note = String::from_utf8(msg.payload.to_vec()).unwrap();
            let Ok(vkey) = std::fs::read_to_string(data.join("keys/checkpoint.vkey")) else {
                continue;
            };
            let verifier = mebyo_tlog::NoteVerifier::from_vkey(vkey.trim()).unwrap();
            if let Ok(cp) = mebyo_tlog::checkpoint::parse_and_verify_checkpoint(&note, &verifier) {
                return cp;
            }
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let cp = got.expect("no signed checkpoint was published within 60 s");
    assert!(cp.size > 0, "the checkpoint covers the bootstrap events");
}
