//! A small W3C WebDriver client: a real headless Chromium driven through chromedriver, over the
//! protocol's plain JSON on HTTP (reqwest is already here; a WebDriver crate would add a stack
//! of dependencies for the dozen calls the console tests make).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser (a chromedriver process and its session); both end when it is dropped.
pub struct Browser {
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    driver: Child,
}

/// An element found on the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of `width` x `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = crate::helpers::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian chromium-driver; `make deps` installs it)");
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = client.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--hide-scrollbars", format!("--window-size={width},{height}")]
            }
        }}});
        let res: Value = client
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {res}"))
            .to_string();
        let mut browser = Browser {
            client,
            session: format!("{base}/session/{id}"),
            driver,
        };
        browser.resize(width, height).await;
        browser
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res: Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(err) = res["value"].get("error") {
            panic!("WebDriver {path}: {err}: {}", res["value"]["message"]);
        }
        res["value"].clone()
    }

    /// Sets the window's outer size (the viewport of a headless window follows it).
    pub async fn resize(&mut self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Makes pages see `prefers-color-scheme: dark` (or light), through chromedriver's
    /// DevTools passthrough (W3C WebDriver has no media emulation).
    pub async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setEmulatedMedia",
                        "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]}})),
        )
        .await;
    }

    /// Loads `url` and waits for the page.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The address shown.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Elements matching a CSS selector (none is no error).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.call(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Element(e[ELEMENT].as_str().unwrap().to_string()))
        .collect()
    }

    /// The first element matching a CSS selector; fails the test when there is none.
    pub async fn find(&self, css: &str) -> Element {
        self.find_all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css:?} on the page"))
    }

    /// Waits up to `timeout` for an element matching `css`; how long it took.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if !self.find_all(css).await.is_empty() {
                return Some(start.elapsed());
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks an element.
    pub async fn click(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await;
    }

    /// Types into an element.
    pub async fn send_keys(&self, e: &Element, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// An element's rendered text.
    pub async fn text(&self, e: &Element) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.0),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// The text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.text(&e).await
    }

    /// Runs a script in the page; its return value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs a script that calls its last argument when done (e.g. after a `fetch`).
    pub async fn execute_async(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// A PNG of what the window shows.
    pub async fn screenshot(&self) -> Vec<u8> {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap()
    }

    /// A PNG of the whole page (the window grows to the document's height first).
    pub async fn screenshot_full(&mut self, width: u32, min_height: u32) -> Vec<u8> {
        let height = self
            .execute("return document.documentElement.scrollHeight;", json!([]))
            .await
            .as_u64()
            .unwrap_or(min_height as u64) as u32;
        self.resize(width, height.clamp(min_height, 6000)).await;
        let png = self.screenshot().await;
        self.resize(width, min_height).await;
        png
    }

    /// Ends the session (closing its pages' connections) and the driver.
    pub async fn quit(mut self) {
        let _ = self.client.delete(&self.session).send().await;
        // Nothing left for Drop to delete; it ends the driver.
        self.session.clear();
    }
}

impl Drop for Browser {
    /// A test that fails before `quit` still ends its browser: killing chromedriver alone would
    /// leave Chromium running, so the session is deleted first (plain HTTP/1.0, no runtime
    /// needed in a destructor).
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let rest = self.session.trim_start_matches("http://");
        if let Some((addr, path)) = rest.split_once('/').filter(|_| !rest.is_empty()) {
            if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(stream, "DELETE /{path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
