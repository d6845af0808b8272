//! Where a redirect may go: same-site paths only.

/// The default page after login and after a form.
pub const DEFAULT_PAGE: &str = "/peertube/review";
/// Longest redirect target kept (a longer one falls back to the default).
const MAX_REDIRECT: usize = 2048;

/// True for a same-site absolute path a `Location` header may carry: starts
/// with one `/` (never `//` or `/\`, which browsers read as another host), and
/// holds only printable ASCII without backslashes (browsers drop tabs and
/// newlines, so `/<TAB>/evil` would become `//evil`; control characters cannot
/// be in a header at all).
pub fn is_safe_redirect(target: &str) -> bool {
    let b = target.as_bytes();
    !b.is_empty() && b.len() <= MAX_REDIRECT && b[0] == b'/' && !matches!(b.get(1), Some(b'/' | b'\\')) && b.iter().all(|c| c.is_ascii_graphic() && *c != b'\\')
}

/// A redirect target (`next`, `back`, …) if it is safe, else `default`.
pub fn safe_redirect(target: Option<&str>, default: &str) -> String {
    match target {
        Some(t) if is_safe_redirect(t) => t.to_string(),
        _ => default.to_string(),
    }
}

/// A local path to go back to after login; anything else becomes the review page.
pub fn safe_next(next: Option<&str>) -> String {
    safe_redirect(next, DEFAULT_PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_be_local() {
        assert_eq!(safe_next(Some("/runs?x=1")), "/runs?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/peertube/review");
        assert_eq!(safe_next(Some("https://evil.example/")), "/peertube/review");
        assert_eq!(safe_next(Some("/\\evil")), "/peertube/review");
        assert_eq!(safe_next(None), "/peertube/review");
        // Browsers drop tabs and newlines: "/\t/evil" would become "//evil".
        for bad in ["/\t/evil.example", "/\n", "/\r\n/evil", "/\\evil", "/a\\b", "", "evil", "/ /x", "/caf\u{e9}", "/\u{0}", "\t/x"] {
            assert_eq!(safe_next(Some(bad)), "/peertube/review", "{bad:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/peertube/review", "overlong");
        assert_eq!(safe_redirect(Some("/runs/x?y=http://z"), "/runs"), "/runs/x?y=http://z", "a query may hold a URL: it stays a path");
        assert_eq!(safe_redirect(Some("//x"), "/runs"), "/runs");
    }
}
