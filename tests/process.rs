//! A server under test as its own process, so what it costs is its own:
//! resident memory, open descriptors and CPU time, read from /proc.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `switchboard serve`; killed on drop.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `exe serve --config config` with the test secret and `env`,
    /// and waits for its banner.
    pub fn spawn(exe: &Path, config: &Path, env: &[(&str, &str)]) -> Self {
        Self::start(Command::new(exe), config, env)
    }

    /// As [`ServerProcess::spawn`], with at most `nofile` open files (soft
    /// and hard limit, so the server cannot raise it).
    pub fn spawn_with_nofile(exe: &Path, config: &Path, nofile: u32) -> Self {
        let mut command = Command::new("prlimit");
        command.arg(format!("--nofile={nofile}:{nofile}")).arg(exe);
        Self::start(command, config, &[])
    }

    fn start(mut command: Command, config: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = command
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .env("SWITCHBOARD_AUTH__JWT_SECRET", crate::TEST_SECRET)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start switchboard");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("banner");
        let addr = line
            .trim()
            .rsplit("ws://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected banner: {line:?}"));
        Self { child, addr }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory, in bytes.
    pub fn rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// CPU time used so far (user + system), in clock ticks (1/100 s here).
    pub fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start at ")".
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        field(11) + field(12)
    }

    /// Waits for it to exit by itself.
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }

    /// Kills it with SIGKILL and waits.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Writes a config for a server process: port 0, its store and plugins
/// folder inside `dir`, plus `extra` TOML (which must not open `[store]`
/// or `[plugins]`). Returns the file's path.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n{extra}\n[store]\npath = \"{}\"\n[plugins]\ndir = \"{}\"\nwatch = false\n",
            dir.join("data.redb").display(),
            dir.join("plugins").display(),
        ),
    )
    .expect("config");
    config
}
