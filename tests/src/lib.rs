//! Test support: real servers on loopback, started and stopped by the tests.
//!
//! - [`S3Server`] runs moto's S3-compatible server (`moto_server`).
//! - [`Watch`] runs a function under `cargo lambda watch`.
//! - [`registry`] builds model registries from the committed example and
//!   fixture models.
//!
//! The tools come from the virtual environment that `make test` installs
//! (`target/venv`); the tests fail with a message naming the tool when it is
//! missing. Every child process is killed when the test process exits.

pub mod registry;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Returns the workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Returns a port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind a loopback port").port()
}

/// Process groups to kill when the test process exits.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

extern "C" fn kill_groups() {
    if let Ok(groups) = GROUPS.lock() {
        for &group in groups.iter() {
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    }
}

/// A child process in its own process group, killed with everything it
/// started when dropped or when the test process exits.
#[derive(Debug)]
pub struct Child {
    child: std::process::Child,
    pub log: PathBuf,
}

impl Child {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> Self {
        static ATEXIT: std::sync::Once = std::sync::Once::new();
        ATEXIT.call_once(|| unsafe {
            libc::atexit(kill_groups);
        });
        let file = std::fs::File::create(&log).expect("create child log");
        command.stdout(file.try_clone().expect("clone log handle")).stderr(file).stdin(Stdio::null());
        command.process_group(0);
        let program = format!("{:?}", command.get_program());
        let child = command.spawn().unwrap_or_else(|err| {
            panic!("failed to start {program}: {err}; run the tests with `make test`, which installs the tools into target/venv")
        });
        GROUPS.lock().unwrap().push(child.id() as i32);
        Child { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn kill(&mut self) {
        let group = self.child.id() as i32;
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
        GROUPS.lock().unwrap().retain(|&g| g != group);
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends a bare HTTP GET and returns the status code, or `None` when nothing
/// answers. Used to wait for servers without depending on an HTTP client.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Sends a bare HTTP POST with a JSON body and returns the status code, or
/// `None` when nothing responds.
pub fn http_post_status(port: u16, path: &str, body: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn wait_until(what: &str, child: &mut Child, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        if !child.is_running() {
            panic!("{what} exited during start-up; its log:\n{}", child.log_text());
        }
        if started.elapsed() > timeout {
            panic!("{what} was not ready after {timeout:?}; its log:\n{}", child.log_text());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn log_dir() -> PathBuf {
    let dir = repo_root().join("target").join("test-logs");
    std::fs::create_dir_all(&dir).expect("create target/test-logs");
    dir
}

/// Settings that keep the AWS SDK on loopback with dummy credentials, so no
/// test can reach AWS or an instance metadata address.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_S3_FORCE_PATH_STYLE", "true".into()),
    ]
}

/// moto's S3-compatible server on a loopback port.
#[derive(Debug)]
pub struct S3Server {
    pub port: u16,
    pub endpoint: String,
    child: Child,
}

impl S3Server {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a server on `port`, for example to bring back a stopped one.
    /// moto keeps its data in memory, so the new server starts empty.
    pub fn start_on(port: u16) -> Self {
        Self::spawn(port, format!("moto-{port}.log"))
    }

    fn spawn(port: u16, log_name: String) -> Self {
        let mut command = Command::new("moto_server");
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let log = log_dir().join(log_name);
        let mut child = Child::spawn(command, log);
        wait_until("moto_server", &mut child, Duration::from_secs(60), || http_status(port, "/moto-api/").is_some());
        S3Server { port, endpoint: format!("http://127.0.0.1:{port}"), child }
    }

    /// Stops the server, as an outage would.
    pub fn stop(&mut self) {
        self.child.kill();
    }

    /// Starts an empty server on the port of this stopped one.
    pub fn restart(&mut self) {
        let port = self.port;
        *self = Self::spawn(port, format!("moto-{port}-restarted.log"));
    }

    /// A client with dummy credentials and path-style addressing.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
            .force_path_style(true)
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder().connect_timeout(Duration::from_secs(2)).build(),
            )
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub async fn create_bucket(&self, bucket: &str) -> aws_sdk_s3::Client {
        let client = self.client();
        client.create_bucket().bucket(bucket).send().await.expect("create bucket on moto");
        client
    }
}

/// A function running under `cargo lambda watch` on a loopback port.
#[derive(Debug)]
pub struct Watch {
    pub port: u16,
    pub base_url: String,
    child: Child,
}

impl Watch {
    /// Starts `package` with `env` and waits until the function process has
    /// logged `<package> function started` and `ready_path` answers.
    ///
    /// NOTE: `cargo lambda watch` 1.9.2 starts the function on the first
    /// request and loses that request (the client hangs until its timeout),
    /// so a throwaway request starts it and real requests wait for the line.
    pub fn start(package: &str, env: &[(&str, String)], ready_path: &str) -> Self {
        Self::launch(package, env, |port| http_status(port, ready_path))
    }

    /// Starts a function that takes events instead of HTTP requests (SQS,
    /// S3), and waits until it has logged `<package> function started` and
    /// an invocation with an S3 notification of no objects succeeds.
    pub fn start_event_function(package: &str, env: &[(&str, String)]) -> Self {
        let path = Self::invoke_path(package);
        Self::launch(package, env, |port| http_post_status(port, &path, r#"{"Records": []}"#))
    }

    /// Path that invokes `package` with an event, as the Lambda API has it.
    pub fn invoke_path(package: &str) -> String {
        format!("/2015-03-31/functions/{package}/invocations")
    }

    /// Starts the function and sends `probe` until it has started and the
    /// probe answers with neither 500 nor 502.
    fn launch(package: &str, env: &[(&str, String)], mut probe: impl FnMut(u16) -> Option<u16>) -> Self {
        let port = free_port();
        let mut command = Command::new("cargo");
        command
            .current_dir(repo_root())
            .args(["lambda", "watch", "--ignore-changes", "--quiet", "-A", "127.0.0.1", "-P", &port.to_string(), "-p", package]);
        for (name, value) in env {
            command.arg("--env-var").arg(format!("{name}={value}"));
            command.env(name, value);
        }
        let log_path = log_dir().join(format!("watch-{package}-{port}.log"));
        let mut child = Child::spawn(command, log_path.clone());
        // The first start compiles the function when the build is not current.
        let started_line = format!("{package} function started");
        let mut last_trigger: Option<Instant> = None;
        wait_until("cargo lambda watch", &mut child, Duration::from_secs(900), || {
            if std::fs::read_to_string(&log_path).is_ok_and(|text| text.contains(&started_line)) {
                return true;
            }
            if last_trigger.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                last_trigger = Some(Instant::now());
                probe(port);
            }
            false
        });
        wait_until("cargo lambda watch", &mut child, Duration::from_secs(60), || {
            probe(port).is_some_and(|status| status != 502 && status != 500)
        });
        Watch { port, base_url: format!("http://127.0.0.1:{port}"), child }
    }

    pub fn log_text(&self) -> String {
        self.child.log_text()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}
