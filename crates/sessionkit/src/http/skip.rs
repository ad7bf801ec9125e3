//! Which requests get no session work at all: paths that need none (static
//! assets, files, health probes) and bots.

use http::Method;

use super::csrf::is_unsafe;

/// The paths the layer passes through untouched (no cookie read, no store
/// lookup, no `Set-Cookie`, no CSRF check). A handler behind a skipped
/// path still finds a [`Session`](super::Session), untracked.
///
/// The default skips static assets and health probes:
/// `/static`, `/assets`, `/images` and everything under them; `/health`,
/// `/ready`, `/healthz`, `/favicon.ico`, `/robots.txt`, `/sitemap.xml`,
/// `/manifest.json`; and any path whose last segment has a file extension
/// other than `.html` or `.htm`. An app's API may well want its sessions
/// (bearer tokens go through the layer), so add `/api` or `/mcp` with
/// [`SkipRules::with_prefix`] where they do not. Prefixes match whole
/// segments (`/static` skips `/static/app.js`, not `/staticky`). A tracked
/// prefix is never skipped, whatever else matches.
///
/// **State-changing requests** (`POST`, `PUT`, `PATCH`, `DELETE`, any
/// method but `GET`, `HEAD`, `OPTIONS` and `TRACE`) are skipped only by
/// the prefixes and paths the app names itself ([`SkipRules::with_prefix`],
/// [`SkipRules::with_path`]): the built-in static-asset guesses (the
/// default prefixes and paths, and the file-extension rule) never skip
/// one, so `POST /users/john.doe` keeps its session and its CSRF check. A
/// prefix the app names does skip them, CSRF check included: name only
/// paths whose handlers do not act on the cookie.
///
/// ```
/// use http::Method;
/// use sessionkit::http::SkipRules;
/// let rules = SkipRules::default().with_prefix("/api").with_tracked_prefix("/api/me");
/// assert!(rules.skips("/static/app.js"));
/// assert!(rules.skips("/report.pdf"));
/// assert!(!rules.skips("/index.html"));
/// assert!(rules.skips("/api/orders"));
/// assert!(!rules.skips("/api/me/cart"));
/// assert!(!rules.skips("/staticky"));
/// // A state change is skipped only where the app said so.
/// assert!(!rules.skips_request(&Method::POST, "/users/john.doe"));
/// assert!(!rules.skips_request(&Method::POST, "/static/upload"));
/// assert!(rules.skips_request(&Method::POST, "/api/orders"));
/// assert!(rules.skips_request(&Method::GET, "/users/john.doe"));
/// ```
#[derive(Clone, Debug)]
pub struct SkipRules {
    /// The built-in static-asset guesses: safe methods only.
    prefixes: Vec<String>,
    paths: Vec<String>,
    /// What the app named itself: every method.
    app_prefixes: Vec<String>,
    app_paths: Vec<String>,
    tracked: Vec<String>,
    file_extensions: bool,
}

impl Default for SkipRules {
    fn default() -> Self {
        SkipRules {
            prefixes: ["/static", "/assets", "/images"].map(String::from).to_vec(),
            paths: [
                "/health",
                "/ready",
                "/healthz",
                "/favicon.ico",
                "/robots.txt",
                "/sitemap.xml",
                "/manifest.json",
            ]
            .map(String::from)
            .to_vec(),
            app_prefixes: Vec::new(),
            app_paths: Vec::new(),
            tracked: Vec::new(),
            file_extensions: true,
        }
    }
}

/// `prefix` without its trailing slashes (`/` stays `/`).
fn normalise(prefix: &str) -> String {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        "/".to_owned()
    } else {
        p.to_owned()
    }
}

/// Whether `path` is `prefix` or lies under it, segment-wise.
fn under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl SkipRules {
    /// Skips nothing.
    #[must_use]
    pub fn none() -> Self {
        SkipRules {
            prefixes: Vec::new(),
            paths: Vec::new(),
            app_prefixes: Vec::new(),
            app_paths: Vec::new(),
            tracked: Vec::new(),
            file_extensions: false,
        }
    }

    /// Also skips `prefix` and everything under it (an API or MCP prefix
    /// whose clients send bearer tokens through another layer, say), for
    /// every method: state-changing requests there skip the CSRF check.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.app_prefixes.push(normalise(prefix));
        self
    }

    /// Also skips exactly `path`, for every method (state-changing
    /// requests there skip the CSRF check).
    #[must_use]
    pub fn with_path(mut self, path: &str) -> Self {
        self.app_paths.push(path.to_owned());
        self
    }

    /// Never skips `prefix` or anything under it.
    #[must_use]
    pub fn with_tracked_prefix(mut self, prefix: &str) -> Self {
        self.tracked.push(normalise(prefix));
        self
    }

    /// Whether a last segment with a file extension (other than `.html`
    /// and `.htm`) is skipped; on by default.
    #[must_use]
    pub fn with_file_extensions(mut self, skip: bool) -> Self {
        self.file_extensions = skip;
        self
    }

    /// Whether the layer leaves a safe request (`GET`, `HEAD`, `OPTIONS`,
    /// `TRACE`) for `path` alone.
    #[must_use]
    pub fn skips(&self, path: &str) -> bool {
        self.skips_request(&Method::GET, path)
    }

    /// Whether the layer leaves a `method` request for `path` alone. A
    /// state-changing method is skipped only by the prefixes and paths the
    /// app named ([`SkipRules::with_prefix`], [`SkipRules::with_path`]).
    #[must_use]
    pub fn skips_request(&self, method: &Method, path: &str) -> bool {
        if self.tracked.iter().any(|p| under(path, p)) {
            return false;
        }
        if self.app_paths.iter().any(|p| p == path)
            || self.app_prefixes.iter().any(|p| under(path, p))
        {
            return true;
        }
        // The static-asset guesses: never for a state change.
        !is_unsafe(method)
            && (self.paths.iter().any(|p| p == path)
                || self.prefixes.iter().any(|p| under(path, p))
                || (self.file_extensions && has_file_extension(path)))
    }
}

/// Whether the last segment of `path` names a file other than a page.
fn has_file_extension(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((_, ext)) if !ext.is_empty() => {
            !ext.eq_ignore_ascii_case("html") && !ext.eq_ignore_ascii_case("htm")
        }
        _ => false,
    }
}

/// Substrings of a lower-cased user agent that mark a crawler, a link
/// previewer or a scripted client.
const BOT_MARKERS: &[&str] = &[
    "crawl",
    "spider",
    "slurp",
    "bingpreview",
    "facebookexternalhit",
    "embedly",
    "link preview",
    "headlesschrome",
    "python-requests",
    "curl/",
    "wget/",
];

/// Whether one product token of a user agent (`Googlebot/2.1`,
/// `Slackbot-LinkExpanding`) names a bot: its name ends in `bot` or `Bot`,
/// or has `bot-`/`Bot-` in it. A name in capitals (`CUBOT`, a phone maker)
/// is not one.
fn bot_token(token: &str) -> bool {
    let name = token.split('/').next().unwrap_or(token);
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        return false;
    }
    name.ends_with("bot") || name.ends_with("Bot") || name.contains("bot-") || name.contains("Bot-")
}

/// Whether a request with this `User-Agent` comes from a bot: a crawler's
/// or previewer's product token (`Googlebot/2.1`, `DuckDuckBot`), a known
/// marker (`facebookexternalhit`, `HeadlessChrome`, `curl/`), or no user
/// agent at all (every browser sends one). A bot gets an untracked
/// session: nothing is stored for it. The layer asks only when a request
/// has no live session; `SessionLayer::with_bot_detection(false)` turns it
/// off.
///
/// ```
/// use sessionkit::http::is_bot;
/// assert!(is_bot(Some("Mozilla/5.0 (compatible; Googlebot/2.1)")));
/// assert!(is_bot(None));
/// assert!(!is_bot(Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")));
/// assert!(!is_bot(Some("Mozilla/5.0 (Linux; Android 10; CUBOT_X30) Chrome/120.0 Mobile")));
/// ```
#[must_use]
pub fn is_bot(user_agent: Option<&str>) -> bool {
    let Some(ua) = user_agent.map(str::trim).filter(|u| !u.is_empty()) else {
        return true;
    };
    if ua
        .split(|c: char| c.is_ascii_whitespace() || matches!(c, ';' | '(' | ')' | ','))
        .any(bot_token)
    {
        return true;
    }
    let ua = ua.to_ascii_lowercase();
    BOT_MARKERS.iter().any(|m| ua.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_follow_s1() {
        let r = SkipRules::default();
        for p in [
            "/static",
            "/static/a/b.css",
            "/assets/x",
            "/images/logo.png",
            "/health",
            "/ready",
            "/healthz",
            "/favicon.ico",
            "/robots.txt",
            "/sitemap.xml",
            "/manifest.json",
            "/docs/guide.pdf",
            "/x/.env",
        ] {
            assert!(r.skips(p), "{p}");
        }
        for p in [
            "/",
            "/login",
            "/staticky",
            "/cart/",
            "/page.html",
            "/old.HTM",
            "/v1.2/",
        ] {
            assert!(!r.skips(p), "{p}");
        }
    }

    #[test]
    fn a_tracked_prefix_wins() {
        let r = SkipRules::default()
            .with_prefix("/api/")
            .with_tracked_prefix("/static/track");
        assert!(r.skips("/api"));
        assert!(r.skips("/api/v1/x"));
        assert!(!r.skips("/static/track/pixel.gif"));
        assert!(r.skips("/static/other.gif"));
    }

    #[test]
    fn a_state_change_is_skipped_only_where_the_app_said_so() {
        let r = SkipRules::default()
            .with_prefix("/hooks")
            .with_path("/ping");
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            for p in [
                "/users/john.doe",
                "/docs/guide.pdf",
                "/static/upload",
                "/assets/x",
                "/health",
                "/favicon.ico",
            ] {
                assert!(!r.skips_request(&m, p), "{m} {p}");
            }
            assert!(r.skips_request(&m, "/hooks/github"), "{m}");
            assert!(r.skips_request(&m, "/ping"), "{m}");
        }
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(r.skips_request(&m, "/users/john.doe"), "{m}");
            assert!(r.skips_request(&m, "/static/upload"), "{m}");
        }
        let custom = Method::from_bytes(b"PROPFIND").unwrap_or(Method::POST);
        assert!(!r.skips_request(&custom, "/a.txt"));
        let tracked = SkipRules::default()
            .with_prefix("/hooks")
            .with_tracked_prefix("/hooks/mine");
        assert!(!tracked.skips_request(&Method::POST, "/hooks/mine/x"));
    }

    #[test]
    fn none_skips_nothing() {
        let r = SkipRules::none();
        assert!(!r.skips("/static/a.js"));
        assert!(!r.skips("/favicon.ico"));
    }

    #[test]
    fn bots() {
        for ua in [
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0)",
            "facebookexternalhit/1.1",
            "Slackbot-LinkExpanding 1.0",
            "Mozilla/5.0 HeadlessChrome/120.0",
            "curl/8.5.0",
            "  ",
            "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "TelegramBot (like TwitterBot)",
            "Discordbot/2.0",
            "Mozilla/5.0 (compatible; MJ12bot/v1.4.8)",
        ] {
            assert!(is_bot(Some(ua)), "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
        ] {
            assert!(!is_bot(Some(ua)), "{ua}");
        }
        assert!(!is_bot(Some(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
        )));
    }
}
