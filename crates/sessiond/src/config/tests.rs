//! Tests of the configuration: defaults, the file, the environment, and
//! the fields each error names.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults() {
    let c = Config::load(None, &env(&[])).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.listen_addr().unwrap().port(), 7700);
}

#[test]
fn a_short_idle_timeout_alone_is_enough() {
    let c = Config::load(None, &env(&[("SESSIOND_POLICY__IDLE_TIMEOUT_SECS", "2")])).unwrap();
    c.validate().unwrap();
    assert_eq!(c.policy().unwrap().touch_interval.as_secs(), 1);
}

#[test]
fn tokens_from_the_environment() {
    let c = Config::load(
        None,
        &env(&[
            ("SESSIOND_TOKENS__CLAIMS", "role,plan"),
            ("SESSIOND_TOKENS__ALGORITHM", "ES256"),
            ("SESSIOND_TOKENS__ACCESS_TTL_SECS", "300"),
            ("SESSIOND_TOKENS__AUDIENCES__ACME", "api.acme.test"),
        ]),
    )
    .unwrap();
    assert_eq!(c.tokens.algorithm, "ES256");
    assert_eq!(c.tokens.claims, ["role", "plan"]);
    assert_eq!(c.tokens.access_ttl_secs, 300);
    assert_eq!(c.tokens.audiences["acme"], "api.acme.test");
    c.validate().unwrap();
    let refused = |k: &str, v: &str| {
        Config::load(None, &env(&[(k, v)]))
            .and_then(|c| c.validate())
            .unwrap_err()
            .to_string()
    };
    assert!(refused("SESSIOND_TOKENS__ALGORITHM", "RS256").contains("tokens.algorithm"));
    assert!(refused("SESSIOND_TOKENS__ALGORITHM", "HS256").contains("hs256_secret"));
    assert!(refused("SESSIOND_TOKENS__LEEWAY_SECS", "61").contains("leeway"));
}

#[test]
fn env_overrides_and_ignores_non_fields() {
    let c = Config::load(
        None,
        &env(&[
            ("SESSIOND_LISTEN", "127.0.0.1:9000"),
            ("SESSIOND_DATA_DIR", "/tmp/x"),
            ("SESSIOND_POLICY__IDLE_TIMEOUT_SECS", "900"),
            ("SESSIOND_ADMIN_KEY", "whatever"),
            ("SESSIOND_CONFIG", "/nonexistent-is-not-read-here"),
            ("OTHER", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(c.listen, "127.0.0.1:9000");
    assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(c.policy.idle_timeout_secs, 900);
}

#[test]
fn file_and_bad_fields_are_named() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("c.toml");
    std::fs::write(
        &f,
        "listen = \"0.0.0.0:1\"\n[policy]\nidle_timeout_secs = 10\ntouch_interval_secs = 6\n",
    )
    .unwrap();
    let e = Config::load(Some(&f), &env(&[])).unwrap_err().to_string();
    assert!(e.contains("policy.touch_interval_secs"), "{e}");
    std::fs::write(&f, "[policy]\nidle_timeout_secs = \"x\"\n").unwrap();
    let e = Config::load(Some(&f), &env(&[])).unwrap_err().to_string();
    assert!(e.contains("idle_timeout_secs"), "{e}");
    std::fs::write(&f, "bogus = 1\n").unwrap();
    let e = Config::load(Some(&f), &env(&[])).unwrap_err().to_string();
    assert!(e.contains("bogus"), "{e}");
    let e = Config::load(None, &env(&[("SESSIOND_LISTEN", "nope")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`listen`"), "{e}");
    let e = Config::load(None, &env(&[("SESSIOND_POLICY__IDLE_TIMEOUT_SECS", "-5")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("idle_timeout_secs"), "{e}");
    std::fs::write(
        &f,
        "[policy]\nidle_timeout_secs = 100\nabsolute_timeout_secs = 50\n",
    )
    .unwrap();
    let e = Config::load(Some(&f), &env(&[])).unwrap_err().to_string();
    assert!(e.contains("policy.idle_timeout_secs"), "{e}");
}

#[test]
fn redis_urls_are_checked_by_scheme() {
    let load = |url: &str| {
        Config::load(
            None,
            &env(&[("SESSIOND_STORE", "redis"), ("SESSIOND_STORE_URL", url)]),
        )
    };
    for ok in [
        "redis://127.0.0.1:6379/0",
        "rediss://h:6380",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
    ] {
        assert!(load(ok).is_ok(), "{ok}");
    }
    for bad in ["", "postgres://x", "127.0.0.1:6379"] {
        let e = load(bad).unwrap_err().to_string();
        assert!(e.contains("store_url"), "{bad}: {e}");
    }
}

#[test]
fn postgres_urls_and_schema_names() {
    let load = |url: &str, prefix: &str| {
        Config::load(
            None,
            &env(&[
                ("SESSIOND_STORE", "postgres"),
                ("SESSIOND_STORE_URL", url),
                ("SESSIOND_STORE_PREFIX", prefix),
            ]),
        )
    };
    for ok in [
        "postgres://postgres@127.0.0.1:5432/test",
        "postgresql://u:p@db/app?connect_timeout=2",
    ] {
        assert!(load(ok, "sessiond").is_ok(), "{ok}");
    }
    for bad in ["", "redis://127.0.0.1:6379", "host=db user=x"] {
        let e = load(bad, "sessiond").unwrap_err().to_string();
        assert!(e.contains("store_url"), "{bad}: {e}");
    }
    let schema = |prefix: &str| load("postgres://h/db", prefix).unwrap().postgres_schema();
    assert_eq!(schema("sessiond"), "sessiond");
    assert_eq!(schema("Sessiond-Test:1"), "sessiond_test_1");
    assert_eq!(schema("9lives"), "_9lives");
    assert_eq!(schema("pg_x"), "sk_pg_x");
    assert_eq!(schema(&"a".repeat(100)).len(), 63);
    for p in ["sessiond", "Sessiond-Test:1", "9lives", "pg_x", "é"] {
        assert!(
            sessionkit_postgres::check_schema_name(&schema(p)).is_ok(),
            "{p}"
        );
    }
}

#[test]
fn an_empty_file_or_dev_null_is_all_defaults_and_a_missing_one_is_named() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("empty.toml");
    std::fs::write(&f, "").unwrap();
    assert_eq!(
        Config::load(Some(&f), &env(&[])).unwrap(),
        Config::default()
    );
    let null = Path::new("/dev/null");
    assert_eq!(
        Config::load(Some(null), &env(&[])).unwrap(),
        Config::default()
    );
    let missing = d.path().join("nope.toml");
    let e = Config::load(Some(&missing), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
    assert!(e.contains("does not exist"), "{e}");
    let e = Config::load(Some(d.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&d.path().display().to_string()), "{e}");
}
