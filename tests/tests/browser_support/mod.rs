//! Headless Chromium for the browser tests, driven over WebDriver by
//! chromedriver: starting both, filling and submitting forms, waiting for the
//! next page. Needs `chromium` and `chromedriver` (Debian: `apt-get install -y
//! chromium chromium-driver`); fails with that message when they are missing.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(bin))
            .find(|f| f.is_file())
    })
}

pub struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn chromedriver() -> Driver {
    let chromium = which("chromium").or_else(|| which("chromium-browser"));
    let driver = which("chromedriver");
    assert!(
        chromium.is_some() && driver.is_some(),
        "the browser tests need chromium and chromedriver on PATH \
         (Debian: apt-get install -y chromium chromium-driver)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver.unwrap())
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    // Owned by the guard at once, so every path below kills and waits for it.
    let driver = Driver { child, port };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return driver;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("chromedriver did not start listening on port {port}");
}

pub async fn browser(driver: &Driver, profile: &std::path::Path, mobile: bool) -> Client {
    let chromium = which("chromium")
        .or_else(|| which("chromium-browser"))
        .unwrap();
    let mut options = json!({
        "binary": chromium,
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage",
            // The server's certificate is the self-signed default of a throwaway data
            // directory; the API tests check it properly with a pinned root.
            "--ignore-certificate-errors",
            format!("--user-data-dir={}", profile.display()),
            "--window-size=1280,900",
        ]
    });
    if mobile {
        options["mobileEmulation"] =
            json!({"deviceMetrics": {"width": 375, "height": 812, "pixelRatio": 2.0}});
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with headless chromium")
}

pub async fn fill(c: &Client, id: &str, value: &str) {
    let e = c
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|_| panic!("input #{id}"));
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

/// Clicks the form's submit button and waits for the next document to load: a
/// marker set on the old page's window is gone once the new page is there.
pub async fn submit(c: &Client, form_action: &str) {
    c.execute("window.__mebyoOld = true", vec![]).await.unwrap();
    c.find(Locator::Css(&format!(
        "form[action='{form_action}'] button[type=submit]"
    )))
    .await
    .unwrap_or_else(|_| panic!("form {form_action}"))
    .click()
    .await
    .unwrap();
    wait_new_page(c).await;
}

pub async fn wait_new_page(c: &Client) {
    for _ in 0..400 {
        let fresh = c
            .execute(
                "return typeof window.__mebyoOld === 'undefined' && document.readyState === 'complete'",
                vec![],
            )
            .await;
        if matches!(fresh, Ok(Value::Bool(true))) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the next page did not load");
}

pub async fn click_and_wait(c: &Client, css: &str) {
    c.execute("window.__mebyoOld = true", vec![]).await.unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("{css}"))
        .click()
        .await
        .unwrap();
    wait_new_page(c).await;
}

pub async fn text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}
