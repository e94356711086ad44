//! Namespacing exactly like the Python SDK: the namespace is lower-cased and suffixed with `_`, then prefixed to
//! workflow names, event keys and the worker name.

/// Normalises a namespace as Python's config validator does: empty stays empty, otherwise `_` is appended if
/// missing and the result lower-cased.
pub fn normalize(namespace: &str) -> String {
    if namespace.is_empty() {
        return String::new();
    }
    let mut ns = namespace.to_owned();
    if !ns.ends_with('_') {
        ns.push('_');
    }
    ns.to_lowercase()
}

/// Python's `apply_namespace`: prefixes `name` unless it already starts with the namespace.
pub fn apply(namespace: &str, name: &str) -> String {
    if namespace.is_empty() || name.starts_with(namespace) {
        name.to_owned()
    } else {
        format!("{namespace}{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_python() {
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("Staging"), "staging_");
        assert_eq!(normalize("prod_"), "prod_");
    }

    #[test]
    fn applies_once() {
        assert_eq!(apply("", "user:created"), "user:created");
        assert_eq!(apply("ns_", "user:created"), "ns_user:created");
        assert_eq!(apply("ns_", "ns_user:created"), "ns_user:created");
    }
}
