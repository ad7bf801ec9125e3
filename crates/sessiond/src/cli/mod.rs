//! The command line: `sessiond serve`, `sessiond config check`,
//! `sessiond completions <shell>`, and the operator commands, which talk to
//! a running server (`--server`: `http://host:port`, or a bare `host:port`)
//! with an API key (`--api-key` or `SESSIOND_API_KEY`; by default the admin
//! key in `<data dir>/admin.key`, when readable). `--config` goes before or
//! after the subcommand.

mod client;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::Config;

/// sessiond: the session server and its operator CLI.
#[derive(Debug, Parser)]
#[command(name = "sessiond", version, about)]
pub struct Cli {
    /// Base URL of the server (operator commands).
    #[arg(
        long,
        env = "SESSIOND_SERVER",
        default_value = "http://127.0.0.1:7700",
        global = true
    )]
    pub server: String,
    /// API key (operator commands); default: `<data dir>/admin.key`.
    #[arg(long, env = "SESSIOND_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// PEM certificate(s) to trust for an `https://` server, besides the
    /// system's roots (a private CA, or the server's self-signed
    /// certificate).
    #[arg(long, env = "SESSIOND_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// TOML config file (default: $SESSIOND_CONFIG, else none; an empty
    /// file means all defaults). Operator commands read the admin key from
    /// its `data_dir`.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the server.
    Serve,
    /// Configuration.
    Config {
        /// What to do.
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Sessions.
    Session {
        /// What to do.
        #[command(subcommand)]
        cmd: SessionCmd,
    },
    /// Subjects.
    Subject {
        /// What to do.
        #[command(subcommand)]
        cmd: SubjectCmd,
    },
    /// Session counts of the key's tenant.
    Stats,
    /// Remove expired sessions now.
    Purge,
    /// API keys.
    ApiKey {
        /// What to do.
        #[command(subcommand)]
        cmd: ApiKeyCmd,
    },
    /// The signing keys of access tokens (admin of the `default` tenant).
    Keys {
        /// What to do.
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Print a shell completion script to stdout
    /// (`sessiond completions bash > /etc/bash_completion.d/sessiond`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `sessiond config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Validate a config (file + SESSIOND_* environment); names the bad field.
    Check,
}

/// `sessiond session …`.
#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// List the live sessions of a subject (newest first).
    List {
        /// The subject.
        #[arg(long)]
        subject: String,
        /// Page size (1..=1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue after this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one session.
    Show {
        /// Session id.
        id: String,
    },
    /// Revoke one session; idempotent: an already revoked or unknown id
    /// succeeds too, and says so.
    Revoke {
        /// Session id.
        id: String,
    },
}

/// `sessiond subject …`.
#[derive(Debug, Subcommand)]
pub enum SubjectCmd {
    /// The subjects with a live session (who is logged in), one page.
    List {
        /// Page size (1..=1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Revoke every session of a subject (or all but one).
    Revoke {
        /// The subject.
        subject: String,
        /// Keep this live session of the subject.
        #[arg(long)]
        except: Option<String>,
    },
}

/// `sessiond api-key …`.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCmd {
    /// Create a key; prints the secret once.
    Create {
        /// Scopes: sessions:validate, sessions:read, sessions:write, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// A label.
        #[arg(long)]
        name: Option<String>,
        /// The key's tenant (default: the caller's; another tenant needs an
        /// admin key of the `default` tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id; idempotent: an already revoked or unknown id
    /// succeeds too, and says so.
    Revoke {
        /// Key id.
        id: String,
    },
}

/// `sessiond keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// List the signing keys, oldest first (never their secrets); `*`
    /// marks the active one.
    List {
        /// Print the server's JSON instead of one key per line.
        #[arg(long)]
        json: bool,
    },
    /// Rotate: a new key signs from now on; the old one keeps verifying
    /// until its `retires_at`.
    Rotate {
        /// Print the server's JSON instead of one key per line.
        #[arg(long)]
        json: bool,
        /// Rotate the vault key that seals upstream grants instead, in the
        /// data dir of the config (no server call): the new key seals from
        /// the next start; older keys keep opening. Copy `vault.keys` to
        /// every node, then restart them.
        #[arg(long, conflicts_with = "json")]
        vault: bool,
    },
}

/// Runs the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve => serve(cli.config),
        Cmd::Completions { shell } => completions(shell),
        Cmd::Config {
            cmd: ConfigCmd::Check,
        } => match Config::from_process(cli.config.as_deref()) {
            Ok(c) => {
                println!(
                    "config ok: listen {}, data dir {}, store {:?}",
                    c.listen,
                    c.data_dir.display(),
                    c.store
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Keys {
            cmd: KeysCmd::Rotate { vault: true, .. },
        } => rotate_vault(cli.config.as_deref()),
        cmd => {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let target = client::Target {
                server: cli.server,
                api_key: cli.api_key,
                config: cli.config,
                ca_cert: cli.ca_cert,
            };
            match rt.block_on(client::run(target, cmd)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `sessiond keys rotate --vault`: adds a vault key in the data dir.
fn rotate_vault(config: Option<&std::path::Path>) -> ExitCode {
    let cfg = match Config::from_process(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match crate::vault_keys::rotate(&cfg.data_dir) {
        Ok(id) => {
            println!(
                "vault key {id} added to {}; copy it to every node and restart them to seal with it",
                cfg.data_dir
                    .join(crate::vault_keys::VAULT_KEYS_FILE)
                    .display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the completion script of `shell` to stdout; a closed stdout is
/// an error, not a panic.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sessiond", &mut script);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the completion script: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Option<PathBuf>) -> ExitCode {
    let cfg = match Config::from_process(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::server::init_logging(&cfg);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(crate::server::serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        // Printed once: the log goes to stderr too.
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
