//! A real PostgreSQL for store tests: `initdb` into a temp directory, the
//! server on a free loopback port (as the `postgres` user when the tests
//! run as root: PostgreSQL refuses root), one database per test. A shell
//! watchdog stops the server when the test process goes, even when it
//! never runs destructors (a shared server in a static).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running PostgreSQL.
pub struct PgServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    root: bool,
    watchdog: Option<Child>,
    fsync: bool,
}

/// The newest installed server's `bin` directory (Debian keeps it off PATH).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|b| b.join("postgres").exists());
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!("no PostgreSQL server in /usr/lib/postgresql: install it with scripts/install-services.sh")
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgServer {
    /// A new server for tests: durability settings off (`fsync`), fast.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A new server; `fsync` on for benchmarks that measure durable commits.
    pub fn start_with(fsync: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let dir = tempfile::tempdir().expect("pg dir");
        let root = is_root();
        let bin = bin_dir();
        if root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the PostgreSQL directory to postgres");
        }
        let mut server = Self {
            port,
            dir,
            bin,
            root,
            watchdog: None,
            fsync,
        };
        let data = server.data();
        let out = server
            .as_postgres(&server.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.spawn();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command run as the `postgres` user when this process is root.
    fn as_postgres(&self, program: &Path) -> Command {
        if self.root {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid",
                "postgres",
                "--regid",
                "postgres",
                "--init-groups",
            ])
            .arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn spawn(&mut self) {
        let postgres = self.bin.join("postgres");
        let prefix = if self.root {
            "setpriv --reuid postgres --regid postgres --init-groups "
        } else {
            ""
        };
        let fsync = if self.fsync { "on" } else { "off" };
        // The watchdog: runs the server, stops it (fast shutdown) on TERM
        // or when the test process is gone. In that second case nothing
        // will drop the `TempDir` (the shared server lives in a static), so
        // the watchdog removes the directory itself: a run of the suite on
        // PostgreSQL otherwise leaves 1.7 GB behind in /tmp.
        let script = format!(
            "{prefix}\"$1\" -D \"$2\" -p \"$3\" -k \"$4\" -c listen_addresses=127.0.0.1 \
             -c fsync={fsync} -c synchronous_commit={fsync} -c full_page_writes={fsync} \
             -c max_connections=300 -c shared_buffers=32MB >\"$4/log\" 2>&1 & pg=$!; \
             trap 'kill -INT $pg; wait $pg; exit 0' TERM; \
             while kill -0 \"$5\" 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 0.5; done; \
             kill -INT $pg 2>/dev/null; wait $pg; \
             kill -0 \"$5\" 2>/dev/null || rm -rf \"$4\""
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&postgres)
            .arg(self.data())
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        self.watchdog = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: committed data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.watchdog.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Stops and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// A client program (`psql`, `pgbench`) aimed at this server as `postgres`.
    fn client(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ]);
        command
    }

    /// Runs SQL in database `db` (as `postgres`) and returns what psql printed.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self
            .client(&self.bin.join("psql"))
            .args(["-d", db, "-tAc", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// PostgreSQL's own rate for Switchboard's write shape, as a baseline:
    /// `pgbench` with `clients` connections for `secs` seconds, each
    /// transaction inserting a record and its change-log row (the store's
    /// tables and JSON), on a fresh database. Returns transactions/s.
    pub fn pgbench_inserts(&self, clients: usize, secs: u64) -> f64 {
        let url = self.database();
        let db = url.rsplit('/').next().unwrap_or_default().to_owned();
        self.sql(
            &db,
            "CREATE TABLE records (resource text NOT NULL, id text COLLATE \"C\" NOT NULL, \
             seq bigint NOT NULL, record json NOT NULL, PRIMARY KEY (resource, id)); \
             CREATE SEQUENCE seq; \
             CREATE TABLE changes (seq bigint PRIMARY KEY, resource text NOT NULL, \
             op text NOT NULL, id text NOT NULL, record json NOT NULL)",
        );
        let script = self.dir.path().join("insert.sql");
        std::fs::write(
            &script,
            "\\set w random(0, 7)\n\
             BEGIN;\n\
             SELECT nextval('seq') AS s \\gset\n\
             INSERT INTO records VALUES ('bench', 'r' || :s, :s, json_build_object('id', 'r' || :s, 'w', :w, 'text', 'hello world'));\n\
             INSERT INTO changes VALUES (:s, 'bench', 'insert', 'r' || :s, json_build_object('id', 'r' || :s, 'w', :w, 'text', 'hello world'));\n\
             END;\n",
        )
        .expect("pgbench script");
        let out = self
            .client(Path::new("pgbench"))
            .args([
                "-n",
                "-j",
                "2",
                "-c",
                &clients.to_string(),
                "-T",
                &secs.to_string(),
            ])
            .arg("-f")
            .arg(&script)
            .arg(&db)
            .output()
            .expect("pgbench (postgresql-client)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "pgbench: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("tps = "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no tps in pgbench's output: {stdout}"))
    }

    /// A fresh database's URL.
    pub fn database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "sb_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One server for the whole test process (`SB_TEST_STORE=postgres`).
pub fn shared() -> &'static PgServer {
    static SHARED: std::sync::OnceLock<PgServer> = std::sync::OnceLock::new();
    SHARED.get_or_init(PgServer::start)
}
