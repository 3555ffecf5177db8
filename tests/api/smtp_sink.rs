//! Postfix's smtp-sink: a second real SMTP server, one that offers
//! PIPELINING (the in-process server does not), writing each message it
//! accepts to a file of its own.
//!
//! `SmtpSink::start(&[])` without smtp-sink on the machine says so and gives
//! `None`, so the test passes, unless MASTHEAD_REQUIRE_SMTP_SINK=1 makes that
//! a failure (CI sets it and installs Debian's postfix package).

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::ReceivedEmail;

const LOCATIONS: [&str; 3] = ["/usr/sbin", "/usr/lib/postfix/sbin", "/usr/bin"];

pub struct SmtpSink {
    pub port: u16,
    child: Child,
    dumps: tempfile::TempDir,
}

impl SmtpSink {
    /// smtp-sink on a free loopback port; `options` go before the address
    /// (`-A 0` refuses every message after DATA, `-q RCPT` hangs up after
    /// RCPT).
    pub fn start(options: &[&str]) -> Option<Self> {
        let Some(binary) = LOCATIONS
            .iter()
            .map(|dir| Path::new(dir).join("smtp-sink"))
            .find(|path| path.is_file())
        else {
            let required = std::env::var("MASTHEAD_REQUIRE_SMTP_SINK").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "smtp-sink is not installed (Debian's postfix package)"
            );
            eprintln!("skipped: smtp-sink is not installed (Debian's postfix package)");
            return None;
        };
        let dumps = tempfile::tempdir().expect("a folder for the dumps");
        // smtp-sink drops to the postfix user when started as root.
        std::fs::set_permissions(dumps.path(), std::fs::Permissions::from_mode(0o777))
            .expect("the dump folder opened to smtp-sink");
        // The port was free when it was picked; another test may take it
        // first, and then smtp-sink exits and another port is tried.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut command = Command::new(&binary);
            if running_as_root() {
                command.args(["-u", "postfix"]);
            }
            let mut child = command
                .arg("-d")
                .arg(dumps.path().join("%M."))
                .args(options)
                .arg(format!("127.0.0.1:{port}"))
                .arg("64")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("smtp-sink starts");
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if greets_as_smtp_sink(port) {
                    return Some(Self { port, child, dumps });
                }
                if child.try_wait().expect("smtp-sink's state").is_some() {
                    break;
                }
                assert!(Instant::now() < deadline, "smtp-sink did not listen");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("smtp-sink found no free port");
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<ReceivedEmail> {
        let files: Vec<PathBuf> = std::fs::read_dir(self.dumps.path())
            .expect("the dump folder")
            .map(|entry| entry.expect("a dump").path())
            .collect();
        files.iter().filter_map(|path| parse_dump(path)).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether smtp-sink answers on `port` (and not whoever else took it).
fn greets_as_smtp_sink(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut greeting = [0; 64];
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    stream
        .read(&mut greeting)
        .is_ok_and(|n| greeting[..n].starts_with(b"220 smtp-sink"))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// A dump is smtp-sink's own headers (the envelope among them) and then the
/// message as received; `None` while smtp-sink is still writing it.
fn parse_dump(path: &Path) -> Option<ReceivedEmail> {
    let raw = std::fs::read(path).expect("a dump file");
    let text = String::from_utf8_lossy(&raw);
    let own_headers = || {
        text.lines()
            .take_while(|line| !line.starts_with("Received:"))
    };
    let address = |args: &str| {
        args.trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    };
    let sender = own_headers()
        .find_map(|line| line.strip_prefix("X-Mail-Args: "))
        .map(address)?;
    let recipients = own_headers()
        .filter_map(|line| line.strip_prefix("X-Rcpt-Args: "))
        .map(address)
        .collect();
    // The Received: header smtp-sink adds is three lines long.
    let start = text.find("\nReceived:")?;
    let after: usize = text[start + 1..]
        .match_indices('\n')
        .nth(2)
        .map(|(at, _)| start + 1 + at + 1)?;
    let message = raw[after..].to_vec();
    (!message.is_empty()).then_some(ReceivedEmail {
        sender,
        recipients,
        raw: message,
    })
}
