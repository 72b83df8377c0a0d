//! `mebyo serve` signs checkpoints on its own and publishes them on the bus
//! (issue 8 §2): a witness subscribed to `mebyo.v1.checkpoints` receives a signed
//! note that verifies with the platform's published key. The same note is at
//! `GET /checkpoint`, without signing in (issue 19 §8), for witnesses that poll.

use std::time::Duration;

use futures::StreamExt;
use mebyo_bus::testkit::NatsServer;

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
    let nats_url = nats.url();
    let served = mebyo_tests::serve(
        &data,
        &[
            "--nats",
            &nats_url,
            "--checkpoint-secs",
            "1",
            "--tick-secs",
            "3600",
        ],
    );
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
    let cp = got.expect("no signed checkpoint was published within 60 s");
    assert!(cp.size > 0, "the checkpoint covers the bootstrap events");

    // The same, over HTTPS, public: a signed note that verifies, as far as the bus's.
    let http = mebyo_tests::served_client(&data);
    let vkey = std::fs::read_to_string(data.join("keys/checkpoint.vkey")).unwrap();
    let verifier = mebyo_tlog::NoteVerifier::from_vkey(vkey.trim()).unwrap();
    let url = format!("{}/checkpoint", served.url);
    let mut last = String::new();
    for _ in 0..100 {
        let r = http.get(&url).send().await.unwrap();
        let status = r.status();
        let kind = r.headers()["content-type"].to_str().unwrap().to_string();
        last = r.text().await.unwrap();
        if status == 200 {
            assert!(kind.starts_with("text/plain"), "{kind}");
            let web = mebyo_tlog::checkpoint::parse_and_verify_checkpoint(&last, &verifier)
                .unwrap_or_else(|e| panic!("GET /checkpoint does not verify: {e}: {last}"));
            assert!(web.size >= cp.size, "the newest one");
            mebyo_tests::stop(served);
            return;
        }
        assert_eq!(status, 404, "{last}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("GET /checkpoint never served the checkpoint: {last}");
}
