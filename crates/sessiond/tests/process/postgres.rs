//! PostgreSQL for the multi-node tests: the shared server's URL (never
//! stopped), schemas dropped after a test, and a throwaway instance of its
//! own (`initdb` in a temporary directory, on a free loopback port) that a
//! fault test may stop and start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The shared server of the tests.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `DATABASE_URL`, else [`DEFAULT_URL`]; `None` (with a notice) when
/// nothing answers there, which fails under `CI=true`.
pub fn pg_url() -> Option<String> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    let u = url.clone();
    let up = run(async move |c| c.simple_query("SELECT 1").await.is_ok(), &u) == Some(true);
    if up {
        return Some(url);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but no PostgreSQL answers at {url}"
    );
    eprintln!("NOTICE: no PostgreSQL at {url} (set DATABASE_URL); multi-node test skipped");
    None
}

/// Runs `f` with a plain connection to `url` on a runtime of its own.
pub fn run<T: Send + 'static>(
    f: impl AsyncFnOnce(&tokio_postgres::Client) -> T + Send + 'static,
    url: &str,
) -> Option<T> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async move {
            let mut cfg: tokio_postgres::Config = url.parse().ok()?;
            cfg.connect_timeout(Duration::from_secs(2));
            let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.ok()?;
            tokio::spawn(conn);
            Some(f(&client).await)
        })
    })
    .join()
    .ok()
    .flatten()
}

/// Drops `schema` and everything in it.
pub fn drop_schema(url: &str, schema: &str) {
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    let _ = run(async move |c| c.batch_execute(&sql).await.is_ok(), url);
}

/// The newest PostgreSQL server binaries installed (Debian's layout).
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

/// Whether this process runs as root (then the server runs as `postgres`:
/// PostgreSQL refuses to run as root).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A PostgreSQL instance of a test's own, stopped (immediately) when
/// dropped.
pub struct Instance {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    root: bool,
    pub port: u16,
}

impl Instance {
    /// Creates and starts an instance on `port`; `None` (with a notice)
    /// when PostgreSQL's binaries are not installed, which fails under
    /// `CI=true`.
    pub fn create(port: u16) -> Option<Instance> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but no PostgreSQL binaries under /usr/lib/postgresql"
            );
            eprintln!("NOTICE: no PostgreSQL binaries; PostgreSQL fault test skipped");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let root = is_root();
        if root {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&data)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the data dir to postgres");
        }
        let inst = Instance {
            _dir: dir,
            data,
            bin,
            root,
            port,
        };
        let ok = inst
            .cmd("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&inst.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "initdb");
        inst.start();
        Some(inst)
    }

    fn cmd(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts it (waits until it accepts connections).
    pub fn start(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.data.display()
        );
        let ok = self
            .cmd("pg_ctl")
            .args(["-w", "-t", "30", "-D"])
            .arg(&self.data)
            .args(["-o", &opts, "-l"])
            .arg(self.data.join("server.log"))
            .arg("start")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "pg_ctl start: {}", self.log());
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it (`fast`: sessions are cut, a checkpoint is written).
    pub fn stop(&self) {
        self.stop_mode("fast");
    }

    fn stop_mode(&self, mode: &str) {
        let _ = self
            .cmd("pg_ctl")
            .args(["-w", "-m", mode, "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Its server log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
    }

    /// Its data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop_mode("immediate");
    }
}
